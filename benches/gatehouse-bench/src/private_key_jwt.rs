//! `private_key_jwt` (RFC 7523) client-credentials issuance: an agent signs each token
//! request with its ES256 key, and its key set is at a `jwks_uri` this process serves on
//! loopback, counting how often Gatehouse fetches it.
//!
//! Every `jti` is single use, so every request needs a new assertion. They are signed here,
//! on the same cores as the server, but before the measurement: [`AssertionPool`] holds
//! enough for it, and counts any it had to sign during it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use gatehouse_core::admin::Operator;
use gatehouse_core::keys::{KeyRing, SigningAlg, SigningKey, StoredKey};
use gatehouse_core::{ClientId, Clock, Issuer, Resource, SystemClock};
use http::{Method, Request, header};
use http_body_util::Full;
use serde_json::json;
use tokio::net::TcpListener;

use crate::load::{BoxError, Requests, send_once};

/// RFC 7523 §2.2, form-encoded.
const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// A key set served at `http://127.0.0.1:{port}/jwks.json`, counting its requests.
pub struct JwksHost {
    pub url: String,
    fetches: Arc<AtomicU64>,
}

impl JwksHost {
    pub async fn start(jwks: String) -> Result<JwksHost, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/jwks.json", listener.local_addr()?);
        let fetches = Arc::new(AtomicU64::new(0));
        let counter = fetches.clone();
        let routes = Router::new().route(
            "/jwks.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = jwks.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, routes).await });
        Ok(JwksHost { url, fetches })
    }

    /// How many times the key set was fetched so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The agent's key pair: `signer` signs its assertions, `jwks` is the public half.
pub struct ClientKey {
    signer: SigningKey,
    pub jwks: String,
}

impl ClientKey {
    pub fn generate(alg: SigningAlg) -> Result<ClientKey, BoxError> {
        let stored = StoredKey::generate(alg, SystemClock.now())?;
        let ring = KeyRing::load(std::slice::from_ref(&stored), SystemClock.now())?;
        Ok(ClientKey {
            signer: SigningKey::load(&stored)?,
            jwks: ring.jwks_json().to_owned(),
        })
    }
}

/// Creates an agent of `resource` whose keys are at `jwks_uri`, as `gatehouse clients add
/// --jwks-uri` does (in development mode, which accepts a key set on loopback).
pub async fn add_agent(
    op: &Operator<'_>,
    resource: &Resource,
    jwks_uri: &str,
) -> Result<ClientId, BoxError> {
    let client = op
        .create_agent_client_with_keys(
            resource.id.as_str(),
            "bench private_key_jwt",
            resource.scope_set(),
            json!({ "jwks_uri": jwks_uri }),
        )
        .await?;
    Ok(client.id)
}

/// Client-credentials token requests at one MCP server's token endpoint, each with an
/// assertion used once: taken from those signed in advance, or signed on the spot when they
/// run out.
pub struct AssertionPool {
    key: ClientKey,
    client: String,
    /// The MCP server's issuer: the assertions' `aud`.
    audience: String,
    /// The token endpoint's path.
    path: String,
    next_jti: AtomicU64,
    signed: Mutex<Vec<Bytes>>,
    signed_late: AtomicU64,
}

impl AssertionPool {
    /// Requests for `client`, an agent of `resource`, at the Gatehouse whose public URL is
    /// `public`.
    pub fn new(
        key: ClientKey,
        client: &ClientId,
        public: &Issuer,
        resource: &Resource,
    ) -> AssertionPool {
        let issuer = resource.issuer(public);
        let audience = issuer.as_str().to_owned();
        let token_endpoint = issuer.join(gatehouse_core::metadata::paths::TOKEN);
        // The token endpoint is under the public URL.
        let path = token_endpoint[public.as_str().len()..].to_owned();
        AssertionPool {
            key,
            client: client.as_str().to_owned(),
            audience,
            path,
            next_jti: AtomicU64::new(0),
            signed: Mutex::new(Vec::new()),
            signed_late: AtomicU64::new(0),
        }
    }

    /// Signs `n` assertions on every core before a measurement; how long it took.
    pub fn sign_ahead(&self, n: usize) -> Duration {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let started = Instant::now();
        let bodies: Vec<Bytes> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let share = n / threads + usize::from(t < n % threads);
                    s.spawn(move || (0..share).map(|_| self.body()).collect::<Vec<_>>())
                })
                .collect();
            workers
                .into_iter()
                // A worker only signs and collects: it does not panic.
                .flat_map(|w| w.join().expect("signing thread"))
                .collect()
        });
        let took = started.elapsed();
        // No holder of the lock panics: it only pushes or pops.
        *self.signed.lock().expect("pool lock") = bodies;
        took
    }

    /// Assertions signed during the measurement because the pool ran out.
    pub fn signed_late(&self) -> u64 {
        self.signed_late.load(Ordering::Relaxed)
    }

    /// One token request, sent on its own connection; its status and body.
    pub async fn send_one(&self, addr: SocketAddr) -> Result<(u16, String), BoxError> {
        let (status, body) = send_once(addr, self.request(addr, self.body())).await?;
        Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
    }

    /// A token request body with a new assertion: iss = sub = the client, aud = the issuer,
    /// a `jti` never used before, expiring in 60 s.
    fn body(&self) -> Bytes {
        let now = SystemClock.now().0;
        let jti = self.next_jti.fetch_add(1, Ordering::Relaxed);
        let assertion = self.key.signer.sign_jwt(&json!({
            "iss": self.client, "sub": self.client, "aud": self.audience,
            "iat": now, "exp": now + 60, "jti": format!("bench-{jti}"),
        }));
        Bytes::from(format!(
            "grant_type=client_credentials&client_assertion_type={JWT_BEARER}&client_assertion={assertion}"
        ))
    }

    fn request(&self, addr: SocketAddr, body: Bytes) -> Request<Full<Bytes>> {
        Request::builder()
            .method(Method::POST)
            .uri(&self.path)
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(body))
            // A path from the issuer and fixed header values: always a valid request.
            .expect("valid request")
    }
}

impl Requests for AssertionPool {
    fn next(&self, addr: SocketAddr) -> Request<Full<Bytes>> {
        // No holder of the lock panics: it only pushes or pops.
        let ahead = self.signed.lock().expect("pool lock").pop();
        let body = ahead.unwrap_or_else(|| {
            self.signed_late.fetch_add(1, Ordering::Relaxed);
            self.body()
        });
        self.request(addr, body)
    }
}
