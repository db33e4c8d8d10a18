//! Rate limits: `429 rate_limit_exceeded` with `Retry-After`, per IP on the token,
//! authorization and registration endpoints, per confidential client in tiers by scope;
//! metadata, keys and health never limited.

use gatehouse_core::keys::SigningAlg;
use gatehouse_server::config::ClientRateTier;
use serde_json::Value;

use crate::helpers::TestApp;

/// Asserts a `429` in the OAuth shape and returns its `Retry-After` in seconds.
async fn assert_limited(resp: reqwest::Response) -> u64 {
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "Retry-After {wait}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "rate_limit_exceeded", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("retry")
    );
    wait
}

#[tokio::test]
async fn token_requests_are_limited_per_ip_and_discovery_never_is() {
    let app = TestApp::spawn_with(|c| c.token_requests_per_ip_per_minute = 3).await;
    let r = app
        .add_server("https://mcp.example/mcp", SigningAlg::ES256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    app.token("", &c, &[]).await;
    // Refused requests count too: the limit is on the address, before authentication.
    let bad = app
        .post_form("/oauth/token", &[("grant_type", "nope")], None)
        .await;
    assert_eq!(bad.status(), 400);
    app.token(&format!("/resources/{}", r.id), &c, &[]).await;
    let form = [("grant_type", "client_credentials")];
    assert_limited(app.post_form("/oauth/token", &form, Some(&c)).await).await;
    assert_limited(
        app.post_form(&format!("/resources/{}/oauth/token", r.id), &form, Some(&c))
            .await,
    )
    .await;

    for path in [
        "/.well-known/oauth-authorization-server".to_owned(),
        format!("/.well-known/oauth-authorization-server/resources/{}", r.id),
        "/keys".to_owned(),
        "/health".to_owned(),
        "/ready".to_owned(),
    ] {
        for _ in 0..20 {
            assert_eq!(app.get(&path).await.status(), 200, "{path} is exempt");
        }
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gatehouse_rate_limited_total{limit=\"token_ip\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn confidential_clients_get_their_tier_by_scope() {
    let app = TestApp::spawn_with(|c| {
        c.token_requests_per_client_per_minute = 2;
        c.client_rate_limits = vec![ClientRateTier {
            server: None,
            scope: Some("todo:write".into()),
            per_minute: 5,
        }];
    })
    .await;
    let r = app
        .add_server("https://mcp.example/mcp", SigningAlg::ES256)
        .await;
    let premium = app.add_client(&r, "todo:read todo:write").await;
    let basic = app.add_client(&r, "todo:read").await;
    for _ in 0..5 {
        app.token("", &premium, &[]).await;
    }
    for _ in 0..2 {
        app.token("", &basic, &[]).await;
    }
    let form = [("grant_type", "client_credentials")];
    assert_limited(app.post_form("/oauth/token", &form, Some(&premium)).await).await;
    let refused = app.post_form("/oauth/token", &form, Some(&basic)).await;
    assert_limited(refused).await;
    // A wrong secret is not the client: it is refused as such and uses none of its quota.
    let other = app.add_client(&r, "todo:read").await;
    let impostor = crate::helpers::AgentClient {
        id: other.id.clone(),
        secret: "wrong".into(),
    };
    for _ in 0..3 {
        let resp = app.post_form("/oauth/token", &form, Some(&impostor)).await;
        assert_eq!(resp.status(), 401);
    }
    app.token("", &other, &[]).await;

    let audit = app.get("/metrics").await.text().await.unwrap();
    assert!(audit.contains("gatehouse_rate_limited_total{limit=\"token_client\"} 2"));
    assert!(audit.contains("gatehouse_token_errors_total{error=\"rate_limit_exceeded\"} 2"));
}

#[tokio::test]
async fn authorization_and_sign_in_are_limited_per_ip() {
    let app = TestApp::spawn_with(|c| c.page_requests_per_ip_per_minute = 2).await;
    assert_eq!(app.get("/login").await.status(), 200);
    // An authorization request without parameters is refused, and still counted.
    assert_eq!(app.get("/oauth/authorize").await.status(), 400);
    assert_limited(app.get("/oauth/authorize").await).await;
    assert_limited(
        app.http
            .post(format!("{}/login", app.base))
            .form(&[("email", "a@example.com"), ("password", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The dashboard and the account page are not sign-in.
    assert_ne!(app.get("/admin").await.status(), 429);
}

#[tokio::test]
async fn registrations_are_limited_per_ip_with_the_same_answer() {
    let app = TestApp::spawn_with(|c| c.registrations_per_ip_per_hour = 1).await;
    app.add_server("https://mcp.example/mcp", SigningAlg::ES256)
        .await;
    let register = || {
        app.http
            .post(format!("{}/oauth/register", app.base))
            .json(&serde_json::json!({ "redirect_uris": ["http://127.0.0.1:3000/cb"] }))
            .send()
    };
    assert_eq!(register().await.unwrap().status(), 201);
    let wait = assert_limited(register().await.unwrap()).await;
    assert!(wait > 1, "one an hour: the wait is long ({wait} s)");
}
