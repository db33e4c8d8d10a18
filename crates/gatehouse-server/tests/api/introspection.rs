//! RFC 7662 introspection and RFC 7009 revocation.

use gatehouse_core::keys::SigningAlg;
use gatehouse_core::token::AccessTokenClaims;
use serde_json::Value;

use crate::helpers::{TestApp, claims, now};

async fn introspect(app: &TestApp, c: &crate::helpers::AgentClient, token: &str) -> Value {
    let resp = app
        .post_form("/oauth/introspect", &[("token", token)], Some(c))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn an_active_token_introspects_with_its_claims() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    let t = app.token(&format!("/resources/{}", r.id), &c, &[]).await;
    let body = introspect(&app, &c, &t).await;
    let cl = claims(&t);
    assert_eq!(body["active"], true);
    for f in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "jti",
    ] {
        assert_eq!(body[f], cl[f], "{f}");
    }
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn inactive_for_garbage_foreign_expired_other_servers_and_removed_clients() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let other = app
        .add_server("https://other.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    let c_other = app.add_client(&other, "todo:read").await;
    let t = app.token("", &c, &[]).await;
    assert_eq!(
        introspect(&app, &c, "not-a-token").await,
        serde_json::json!({ "active": false })
    );
    assert_eq!(
        introspect(&app, &c_other, &t).await["active"],
        false,
        "another server's client may not see it"
    );

    let mut expired: AccessTokenClaims = serde_json::from_value(claims(&t)).unwrap();
    expired.exp = now() - 10;
    let signed = app.signing_key(SigningAlg::RS256).await.sign_jwt(&expired);
    assert_eq!(
        introspect(&app, &c, &signed).await["active"],
        false,
        "expired"
    );
    let foreign = crate::helpers::foreign_key(SigningAlg::RS256).sign_jwt(&claims(&t));
    assert_eq!(
        introspect(&app, &c, &foreign).await["active"],
        false,
        "signed by a key that is not ours"
    );

    let c2 = app.add_client(&r, "todo:read").await;
    let t2 = app.token("", &c2, &[]).await;
    app.op().remove_client(&c2.id).await.unwrap();
    app.engine.refresh().await.unwrap();
    assert_eq!(
        introspect(&app, &c, &t2).await["active"],
        false,
        "client removed"
    );
}

#[tokio::test]
async fn introspection_and_revocation_need_client_authentication() {
    let app = TestApp::spawn().await;
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let resp = app.post_form(path, &[("token", "x")], None).await;
        assert_eq!(resp.status(), 401, "{path}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
        let resp = app.post_form(path, &[], None).await;
        assert_eq!(resp.status(), 400, "{path}: token is required");
    }
}

#[tokio::test]
async fn a_revoked_token_introspects_as_inactive() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    let t = app.token("", &c, &[]).await;
    let keep = app.token("", &c, &[]).await;
    let resp = app
        .post_form(
            "/oauth/revoke",
            &[("token", &t), ("token_type_hint", "access_token")],
            Some(&c),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(introspect(&app, &c, &t).await["active"], false);
    assert_eq!(
        introspect(&app, &c, &keep).await["active"],
        true,
        "only that token"
    );
    // Revoking again, or revoking garbage, still succeeds (RFC 7009 §2.2).
    assert_eq!(
        app.post_form("/oauth/revoke", &[("token", &t)], Some(&c))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_form("/oauth/revoke", &[("token", "garbage")], Some(&c))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let a = app.add_client(&r, "todo:read").await;
    let b = app.add_client(&r, "todo:read").await;
    let t = app.token("", &a, &[]).await;
    let resp = app
        .post_form("/oauth/revoke", &[("token", &t)], Some(&b))
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    assert_eq!(introspect(&app, &a, &t).await["active"], true);
}
