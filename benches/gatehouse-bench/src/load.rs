//! The load generator: HTTP/1.1 keep-alive connections to a loopback address, kept busy for
//! a throughput figure or used one request at a time for a latency figure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a measurement sends: the same request each time, or a new one each time.
pub trait Requests: Send + Sync + 'static {
    /// The next request for `addr`.
    fn next(&self, addr: SocketAddr) -> Request<Full<Bytes>>;
}

/// One request, sent again and again.
pub struct RequestSpec {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Requests for RequestSpec {
    fn next(&self, addr: SocketAddr) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header(header::HOST, addr.to_string());
        for (k, v) in &self.headers {
            b = b.header(*k, v);
        }
        // The parts above are all valid header names and values.
        b.body(Full::new(self.body.clone())).expect("valid request")
    }
}

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub async fn connect(addr: SocketAddr) -> Result<Sender, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one request; `true` if the answer was 2xx. The body is read to the end.
pub async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<bool, BoxError> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let ok = resp.status().is_success();
    resp.into_body().collect().await?;
    Ok(ok)
}

/// Sends one request on a new connection; the status and the body.
pub async fn send_once(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<(http::StatusCode, Bytes), BoxError> {
    let mut s = connect(addr).await?;
    s.ready().await?;
    let resp = s.send_request(req).await?;
    let status = resp.status();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

pub async fn fetch_token(addr: SocketAddr, id: &str, secret: &str) -> Result<String, BoxError> {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let req = Request::post("/oauth/token")
        .header(header::HOST, addr.to_string())
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))?;
    let (_, body) = send_once(addr, req).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned())
}

pub struct Throughput {
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub errors: u64,
}

/// Keeps `connections` connections busy for `duration` (after a one-second warm-up).
pub async fn throughput(
    addr: SocketAddr,
    requests: Arc<dyn Requests>,
    connections: usize,
    duration: Duration,
) -> Result<Throughput, BoxError> {
    let warm = Instant::now() + Duration::from_secs(1);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let requests = requests.clone();
        let stop = stop.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let req = requests.next(addr);
                let t = Instant::now();
                let ok = send(&mut sender, req).await?;
                if t >= warm {
                    samples.push(t.elapsed());
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok::<_, BoxError>(samples)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1) + duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let (p50, p99) = percentiles(&mut all);
    Ok(Throughput {
        per_second: all.len() as f64 / duration.as_secs_f64(),
        p50_us: p50,
        p99_us: p99,
        errors: errors.load(Ordering::Relaxed),
    })
}

pub struct Latency {
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// `n` sequential requests on one connection, after `n / 10` warm-up requests.
pub async fn latency(
    addr: SocketAddr,
    requests: Arc<dyn Requests>,
    n: usize,
) -> Result<Latency, BoxError> {
    let mut sender = connect(addr).await?;
    for _ in 0..n / 10 {
        if !send(&mut sender, requests.next(addr)).await? {
            return Err(format!("warm-up request to {addr} failed").into());
        }
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let req = requests.next(addr);
        let t = Instant::now();
        if !send(&mut sender, req).await? {
            return Err(format!("request to {addr} failed").into());
        }
        samples.push(t.elapsed());
    }
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64 * 1e6;
    let (p50, p99) = percentiles(&mut samples);
    Ok(Latency {
        mean_us: mean,
        p50_us: p50,
        p99_us: p99,
    })
}

fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}
