//! Loopback benchmark (not a test): client-credentials tokens per second for each signing
//! algorithm, with a client secret and with `private_key_jwt`, and what the guard adds to an
//! MCP `tools/list`.
//!
//! `cargo run --release -p gatehouse-bench -- --seconds 5 --connections 16`
//!
//! Everything runs in this process on 127.0.0.1: Gatehouse on a temporary SQLite database
//! (or, with `--database-url postgres://…`, on an empty PostgreSQL database),
//! the to-do MCP server with and without the guard, and a load generator that keeps
//! `--connections` HTTP/1.1 keep-alive connections busy for `--seconds` per measurement.
//! The load generator shares the machine's cores with the servers, so figures are a floor.
//! For `private_key_jwt` it also serves the agent's key set (`jwks_uri`, counting fetches)
//! and signs one assertion per request, before the measurement.

mod load;
mod private_key_jwt;

use std::sync::Arc;
use std::time::Duration;

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
use http::{Method, header};
use tokio::net::TcpListener;

use crate::load::{BoxError, RequestSpec, fetch_token, latency, throughput};
use crate::private_key_jwt::{AssertionPool, ClientKey, JwksHost, add_agent};

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
    // And an agent of the ES256 server signing its requests, its key set at a jwks_uri here.
    let key = ClientKey::generate(SigningAlg::ES256)?;
    let jwks_host = JwksHost::start(key.jwks.clone()).await?;
    let es256 = &clients
        .iter()
        .find(|c| c.0 == SigningAlg::ES256)
        .ok_or("no ES256 server")?
        .1;
    let op = Operator::new(store.as_ref(), &recorder, "bench", SystemClock.now())
        .with_dev_loopback(true);
    let agent = add_agent(&op, es256, &jwks_host.url).await?;
    let signed = Arc::new(AssertionPool::new(key, &agent, &public, es256));
    // The benchmark is one abusive client on one address: lift the limits. The key set is
    // on loopback, which Gatehouse fetches in development mode only.
    let config = Config {
        token_requests_per_ip_per_minute: 1_000_000,
        token_requests_per_client_per_minute: 1_000_000,
        registrations_per_ip_per_hour: 1_000_000,
        dev_loopback_metadata_documents: true,
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
    let mut es256_basic = None;
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
        if *alg == SigningAlg::ES256 {
            es256_basic = Some(r);
        }
    }
    let es256_basic = es256_basic.ok_or("no ES256 measurement")?;

    // The same issuance, the client authenticating with a signed assertion (RFC 7523).
    println!();
    println!(
        "Client-credentials token issuance (POST /resources/{{id}}/oauth/token, private_key_jwt):"
    );
    let (status, body) = signed.send_one(as_addr).await?;
    if status != 200 {
        return Err(format!("the first private_key_jwt request got {status}: {body}").into());
    }
    let fetched_first = jwks_host.fetches();
    // Enough assertions for the measurement and its warm-up second at the client-secret rate,
    // which this, doing strictly more, cannot exceed.
    let ahead = (es256_basic.per_second * (args.seconds + 1) as f64 * 1.25) as usize + 1000;
    let took = tokio::task::block_in_place(|| signed.sign_ahead(ahead));
    let r = throughput(
        as_addr,
        signed.clone(),
        args.connections,
        Duration::from_secs(args.seconds),
    )
    .await?;
    let fetched_during = jwks_host.fetches() - fetched_first;
    println!(
        "  ES256  {:>9.0} tokens/s   (p50 {:>6.0} µs, p99 {:>6.0} µs, {} errors)",
        r.per_second, r.p50_us, r.p99_us, r.errors
    );
    println!(
        "  jwks_uri fetches: {fetched_first} by the first request, {fetched_during} during the measurement"
    );
    println!(
        "  against client_secret_basic ES256: {:.0} % of its rate, p50 {:+.0} µs",
        r.per_second / es256_basic.per_second * 100.0,
        r.p50_us - es256_basic.p50_us
    );
    println!(
        "  assertions (ES256, one jti each) signed by the load generator: {ahead} before the measurement in {:.1} s, {} during it",
        took.as_secs_f64(),
        signed.signed_late()
    );

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
