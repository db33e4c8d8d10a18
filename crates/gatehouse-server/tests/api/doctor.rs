//! `gatehouse doctor`: against the guard-protected to-do server (every step passes) and
//! against set-ups broken the ways operators break them.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use gatehouse_core::admin;
use gatehouse_core::keys::SigningAlg;
use gatehouse_server::cli::doctor::{self, Report};
use serde_json::json;
use tokio::net::TcpListener;

use crate::guard::setup_on;
use crate::helpers::TestApp;

fn failed(r: &Report) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.step.as_str())
        .collect()
}

#[tokio::test]
async fn the_to_do_server_passes_every_step() {
    let p = setup_on(TestApp::spawn().await, SigningAlg::ES256, |b| b).await;
    let r = doctor::run(&p.mcp, None).await.unwrap();
    assert!(r.ok, "{}", r.text());
    let steps: Vec<&str> = r.checks.iter().map(|c| c.step.as_str()).collect();
    for s in [
        "401 challenge",
        "RFC 8414 metadata",
        "OpenID discovery",
        "PKCE",
        "JWKS",
        "registration",
    ] {
        assert!(steps.contains(&s), "{s} in {steps:?}");
    }
    let issuer = p.app.issuer_of(&p.resource);
    assert!(doctor::run(&p.mcp, Some(&issuer)).await.unwrap().ok);
}

/// An MCP server on loopback that answers 401 and serves `prm` as its metadata.
async fn fake_mcp(prm: impl Fn(&str) -> serde_json::Value + Send + Sync + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let doc = prm(&format!("{base}/mcp"));
    let challenge =
        format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
    let routes = Router::new()
        .route(
            "/mcp",
            post(move || {
                let c = challenge.clone();
                async move {
                    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, c)]).into_response()
                }
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(move || {
                let d = doc.clone();
                async move { axum::Json(d) }
            }),
        );
    tokio::spawn(async move { axum::serve(l, routes).await });
    format!("{base}/mcp")
}

#[tokio::test]
async fn broken_set_ups_fail_at_the_step_that_is_wrong_and_say_what_to_change() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://mcp.example/mcp", SigningAlg::RS256)
        .await;
    let issuer = app.issuer_of(&r);

    // The MCP server's metadata names another URL as the resource (the audience tokens get).
    let iss = issuer.clone();
    let url = fake_mcp(
        move |_| json!({"resource": "https://other.example/mcp", "authorization_servers": [iss]}),
    )
    .await;
    let report = doctor::run(&url, None).await.unwrap();
    assert!(!report.ok);
    assert!(
        failed(&report).contains(&"the challenge's resource_metadata"),
        "{}",
        report.text()
    );
    assert!(
        report
            .text()
            .contains("register the MCP server with exactly this URL")
    );

    // It names another authorization server than the one the operator means.
    let url = fake_mcp(
        |me| json!({"resource": me, "authorization_servers": ["https://auth.elsewhere.example"]}),
    )
    .await;
    let report = doctor::run(&url, Some(&issuer)).await.unwrap();
    assert_eq!(
        failed(&report),
        ["authorization server"],
        "{}",
        report.text()
    );
    assert!(report.text().contains("auth.elsewhere.example"));

    // Registration is off and documents are off: no host can get a client.
    let change = admin::ResourceChange {
        dynamic_registration: Some(false),
        metadata_documents: Some(false),
        ..Default::default()
    };
    app.change_server(&r, change).await;
    let iss = issuer.clone();
    let url = fake_mcp(move |me| json!({"resource": me, "authorization_servers": [iss]})).await;
    let report = doctor::run(&url, None).await.unwrap();
    assert_eq!(failed(&report), ["registration"], "{}", report.text());
    assert!(report.text().contains("--dynamic-registration on"));

    // Nothing protects the endpoint at all.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = format!("http://{}/mcp", l.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(l, Router::new().route("/mcp", post(|| async { "{}" }))).await
    });
    // The later steps still run (a PRM may be published while the guard is not wired),
    // but the first failure is the one to fix.
    let report = doctor::run(&open, None).await.unwrap();
    assert_eq!(failed(&report)[0], "401 challenge", "{}", report.text());
    assert!(report.text().contains("protect the MCP endpoint"));

    // Nothing answers: one failure, not one per URL tried.
    let report = doctor::run("http://127.0.0.1:1/mcp", None).await.unwrap();
    assert_eq!(failed(&report), ["401 challenge"], "{}", report.text());
    assert!(report.text().contains("start the MCP server"));
}
