//! `/health`, `/ready` and `/metrics`.

use gatehouse_core::keys::SigningAlg;
use gatehouse_server::config::Redacted;
use serde_json::Value;

use crate::helpers::{AgentClient, TestApp};

#[tokio::test]
async fn health_is_liveness_and_ready_follows_the_database() {
    let app = TestApp::spawn().await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        (&body["status"], &body["database"], &body["signing_keys"]),
        (&"ready".into(), &"ok".into(), &"ok".into())
    );

    app.store.close().await;
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(
        (&body["status"], &body["database"]),
        (&"unavailable".into(), &"unavailable".into())
    );
    // Restarting the process would not bring the database back: liveness stays 200.
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
}

/// The value of the sample `series` (name and labels), or 0 if it is absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_tokens_errors_and_the_pool() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://mcp.example/mcp", SigningAlg::ES256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    app.token("", &c, &[]).await;
    app.token(&format!("/resources/{}", r.id), &c, &[]).await;
    let wrong = AgentClient {
        id: c.id.clone(),
        secret: "not the secret".into(),
    };
    let refused = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(&wrong),
        )
        .await;
    assert_eq!(refused.status(), 401);
    app.get("/no/such/path").await;

    let resp = app.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.text().await.unwrap();
    let issued = format!(
        "gatehouse_tokens_issued_total{{grant_type=\"client_credentials\",server=\"{}\"}}",
        r.id
    );
    assert_eq!(sample(&text, &issued), 2.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "gatehouse_token_errors_total{error=\"invalid_client\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_http_requests_total{route=\"/oauth/token\",method=\"POST\",status=\"401\"}"
        ),
        1.0
    );
    let per_server = "gatehouse_http_requests_total{route=\"/resources/{id}/oauth/token\",method=\"POST\",status=\"200\"}";
    assert_eq!(
        sample(&text, per_server),
        1.0,
        "the route template, not the id"
    );
    assert!(
        !text.contains("/no/such/path"),
        "unmatched paths are not labels"
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_http_request_duration_seconds_count{route=\"/oauth/token\",method=\"POST\"}"
        ),
        2.0
    );
    assert!(sample(&text, "gatehouse_database_connections{state=\"max\"}") >= 1.0);
    assert!(sample(&text, "gatehouse_database_connections{state=\"open\"}") >= 1.0);
    assert_eq!(
        sample(
            &text,
            "gatehouse_audit_events_total{event=\"token.issued\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn metrics_are_for_this_machine_or_the_token_holder() {
    let app = TestApp::spawn().await;
    let forwarded = app
        .http
        .get(format!("{}/metrics", app.base))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forwarded.status(),
        403,
        "a proxy forwarded it from elsewhere"
    );
    assert_eq!(
        forwarded.json::<Value>().await.unwrap()["error"],
        "forbidden"
    );

    let token = "scrape-me-0123456789abcdef";
    let app = TestApp::spawn_with(|c| c.metrics_token = Some(Redacted(token.into()))).await;
    assert_eq!(
        app.get("/metrics").await.status(),
        403,
        "loopback is not enough"
    );
    let with = |t: &str| {
        app.http
            .get(format!("{}/metrics", app.base))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(
        with("scrape-me-0123456789abcdeX").await.unwrap().status(),
        403
    );
    let ok = with(token).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("gatehouse_build_info"));
}
