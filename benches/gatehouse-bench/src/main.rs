//! Loopback benchmark (not a test): client-credentials tokens per second for each signing
//! algorithm, and what the guard adds to an MCP `tools/list`.
//!
//! `cargo run --release -p gatehouse-bench -- --seconds 5 --connections 16`
//!
//! Everything runs in this process on 127.0.0.1: Gatehouse on a temporary SQLite database
//! (or, with `--database-url postgres://…`, on an empty PostgreSQL database),
//! the to-do MCP server with and without the guard, and a load generator that keeps
//! `--connections` HTTP/1.1 keep-alive connections busy for `--seconds` per measurement.
//! The load generator shares the machine's cores with the servers, so figures are a floor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use gatehouse_core::admin::Operator;
use gatehouse_core::audit::Recorder;
use gatehouse_core::keys::SigningAlg;
use gatehouse_core::model::{NewResource, ScopeDef};
use gatehouse_core::store::Store;
use gatehouse_core::{Clock, Issuer, ResourceUri, ScopeSet, SystemClock};
use gatehouse_server::config::Config;
use gatehouse_server::serve::{RunningServer, open_sqlite, start_app};
use gatehouse_store::{Migrations, PgStore, PoolSettings};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Parser)]
#[command(about = "Gatehouse loopback benchmark")]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive connections for throughput measurements.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Sequential requests for the latency comparison.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// An empty PostgreSQL database to run on instead of a temporary SQLite file.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = match &args.database_url {
        Some(url) => Arc::new(PgStore::connect(url, PoolSettings::default()).await?),
        None => Arc::new(open_sqlite(dir.path(), Migrations::Apply).await?),
    };
    let recorder = Recorder::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let as_addr = listener.local_addr()?;
    let public = Issuer::parse(&format!("http://{as_addr}"))?;

    // One MCP server (and agent client) per algorithm; the RS256 one is the guarded to-do app.
    let mcp_listener = TcpListener::bind("127.0.0.1:0").await?;
    let mcp_addr = mcp_listener.local_addr()?;
    let mut clients = Vec::new();
    for alg in SigningAlg::ALL {
        let url = match alg {
            SigningAlg::RS256 => format!("http://{mcp_addr}/mcp"),
            other => format!(
                "https://{}.bench.example/mcp",
                other.as_str().to_lowercase()
            ),
        };
        let mut new = NewResource::new(
            format!("bench {alg}"),
            ResourceUri::parse(&url)?,
            vec![
                ScopeDef::parse("todo:read")?,
                ScopeDef::parse("todo:write")?,
            ],
        );
        new.signing_alg = Some(alg);
        let op = Operator::new(store.as_ref(), &recorder, "bench", SystemClock.now());
        let r = op.register_resource(new).await?;
        let (c, s) = op
            .create_agent_client(
                r.id.as_str(),
                "bench",
                ScopeSet::parse("todo:read todo:write")?,
            )
            .await?;
        clients.push((alg, r, c.id.to_string(), s.expose_secret().to_owned()));
    }
    // The benchmark is one abusive client on one address: lift the limits.
    let config = Config {
        token_requests_per_ip_per_minute: 1_000_000,
        token_requests_per_client_per_minute: 1_000_000,
        registrations_per_ip_per_hour: 1_000_000,
        ..Config::default()
    };
    let state = start_app(public.clone(), store.clone(), &config).await?;
    let _server = RunningServer::start_with(state, listener, Duration::from_secs(1))?;

    println!(
        "Gatehouse benchmark: {} s per measurement, {} connections, {} cores",
        args.seconds,
        args.connections,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!("Client-credentials token issuance (POST /oauth/token, client_secret_basic):");
    for (alg, _, id, secret) in &clients {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        let req = Arc::new(RequestSpec {
            method: Method::POST,
            path: "/oauth/token".into(),
            headers: vec![
                (header::AUTHORIZATION.as_str(), format!("Basic {basic}")),
                (
                    header::CONTENT_TYPE.as_str(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: Bytes::from_static(b"grant_type=client_credentials"),
        });
        let r = throughput(
            as_addr,
            req,
            args.connections,
            Duration::from_secs(args.seconds),
        )
        .await?;
        println!(
            "  {:<6} {:>9.0} tokens/s   (p50 {:>6.0} µs, p99 {:>6.0} µs, {} errors)",
            alg.as_str(),
            r.per_second,
            r.p50_us,
            r.p99_us,
            r.errors
        );
    }

    // A write to the database per request: a client registering itself.
    println!();
    println!(
        "Dynamic Client Registration (POST /resources/{{id}}/oauth/register), one write each:"
    );
    let reg = Arc::new(RequestSpec {
        method: Method::POST,
        path: format!("/resources/{}/oauth/register", clients[1].1.id),
        headers: vec![(header::CONTENT_TYPE.as_str(), "application/json".into())],
        body: Bytes::from_static(
            br#"{"client_name":"bench host","redirect_uris":["http://127.0.0.1:33418/callback"],"application_type":"native"}"#,
        ),
    });
    let r = throughput(
        as_addr,
        reg,
        args.connections,
        Duration::from_secs(args.seconds),
    )
    .await?;
    println!(
        "  {:>9.0} registrations/s   (p50 {:>6.0} µs, p99 {:>6.0} µs, {} errors)",
        r.per_second, r.p50_us, r.p99_us, r.errors
    );

    // The guarded and the unguarded to-do server, same app.
    let (alg, resource, id, secret) = &clients[0];
    debug_assert_eq!(*alg, SigningAlg::RS256);
    let hosts = vec!["127.0.0.1".to_owned()];
    let guard = todo_mcp::guard(resource.url.as_str(), resource.issuer(&public).as_str())?;
    tokio::spawn(todo_mcp::serve(
        mcp_listener,
        todo_mcp::app(Some(guard), hosts),
        std::future::pending(),
    ));
    let open_listener = TcpListener::bind("127.0.0.1:0").await?;
    let open_addr = open_listener.local_addr()?;
    tokio::spawn(todo_mcp::serve(
        open_listener,
        todo_mcp::app(None, vec!["127.0.0.1".into()]),
        std::future::pending(),
    ));

    let token = fetch_token(as_addr, id, secret).await?;
    let list = |auth: Option<&str>| {
        let mut headers = vec![
            (header::CONTENT_TYPE.as_str(), "application/json".to_owned()),
            (
                header::ACCEPT.as_str(),
                "application/json, text/event-stream".to_owned(),
            ),
            ("mcp-protocol-version", "2026-07-28".to_owned()),
            ("mcp-method", "tools/list".to_owned()),
        ];
        if let Some(t) = auth {
            headers.push((header::AUTHORIZATION.as_str(), format!("Bearer {t}")));
        }
        Arc::new(RequestSpec {
            method: Method::POST,
            path: "/mcp".into(),
            headers,
            body: Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#),
        })
    };
    let open_req = list(None);
    let guarded_req = list(Some(&token));
    println!();
    println!(
        "MCP tools/list, sequential on one connection ({} requests each, after warm-up):",
        args.requests
    );
    let open = latency(open_addr, open_req.clone(), args.requests).await?;
    let guarded = latency(mcp_addr, guarded_req.clone(), args.requests).await?;
    println!(
        "  unprotected      mean {:>6.0} µs   p50 {:>6.0} µs   p99 {:>6.0} µs",
        open.mean_us, open.p50_us, open.p99_us
    );
    println!(
        "  guard-protected  mean {:>6.0} µs   p50 {:>6.0} µs   p99 {:>6.0} µs",
        guarded.mean_us, guarded.p50_us, guarded.p99_us
    );
    println!(
        "  guard cost       mean {:>+6.0} µs   p50 {:>+6.0} µs",
        guarded.mean_us - open.mean_us,
        guarded.p50_us - open.p50_us
    );
    println!();
    println!(
        "MCP tools/list throughput ({} connections):",
        args.connections
    );
    let open = throughput(
        open_addr,
        open_req,
        args.connections,
        Duration::from_secs(args.seconds),
    )
    .await?;
    let guarded = throughput(
        mcp_addr,
        guarded_req,
        args.connections,
        Duration::from_secs(args.seconds),
    )
    .await?;
    println!(
        "  unprotected      {:>9.0} req/s ({} errors)",
        open.per_second, open.errors
    );
    println!(
        "  guard-protected  {:>9.0} req/s ({} errors)",
        guarded.per_second, guarded.errors
    );
    Ok(())
}

struct RequestSpec {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl RequestSpec {
    fn build(&self, addr: SocketAddr) -> Request<Full<Bytes>> {
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

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends one request; `true` if the answer was 2xx. The body is read to the end.
async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<bool, BoxError> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let ok = resp.status().is_success();
    resp.into_body().collect().await?;
    Ok(ok)
}

async fn fetch_token(addr: SocketAddr, id: &str, secret: &str) -> Result<String, BoxError> {
    let mut s = connect(addr).await?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let req = Request::post("/oauth/token")
        .header(header::HOST, addr.to_string())
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))?;
    s.ready().await?;
    let body = s
        .send_request(req)
        .await?
        .into_body()
        .collect()
        .await?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned())
}

struct Throughput {
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
}

/// Keeps `connections` connections busy for `duration` (after a one-second warm-up).
async fn throughput(
    addr: SocketAddr,
    spec: Arc<RequestSpec>,
    connections: usize,
    duration: Duration,
) -> Result<Throughput, BoxError> {
    let warm = Instant::now() + Duration::from_secs(1);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let spec = spec.clone();
        let stop = stop.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = send(&mut sender, spec.build(addr)).await?;
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

struct Latency {
    mean_us: f64,
    p50_us: f64,
    p99_us: f64,
}

/// `n` sequential requests on one connection, after `n / 10` warm-up requests.
async fn latency(addr: SocketAddr, spec: Arc<RequestSpec>, n: usize) -> Result<Latency, BoxError> {
    let mut sender = connect(addr).await?;
    for _ in 0..n / 10 {
        if !send(&mut sender, spec.build(addr)).await? {
            return Err(format!("warm-up request to {addr} failed").into());
        }
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        if !send(&mut sender, spec.build(addr)).await? {
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
