//! The audit log over HTTP: what a host's whole life (registration, sign-in, consent, codes,
//! refresh, reuse, revocation) and an agent's token leave behind, and that no secret does.

use gatehouse_core::audit::{AuditEvent, EventType, Outcome};
use gatehouse_core::keys::SigningAlg;
use serde_json::json;

use crate::helpers::TestApp;
use crate::people::*;

/// The stored events, oldest first, without the set-up the test made as an operator.
async fn events(app: &TestApp) -> Vec<AuditEvent> {
    app.audit_log().await
}

fn kinds(events: &[AuditEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[tokio::test]
async fn every_step_of_the_flow_is_audited_without_secrets() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    let client = app.register_public(&path).await;
    let refused = app
        .http
        .post(format!("{}{path}/oauth/register", app.base))
        .json(&json!({"redirect_uris": ["http://evil.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    // A wrong password, then the right one, consent, the code for tokens.
    let b = app.browser();
    let p = pkce();
    let q = authorize_query(&client, &p, &[("scope", "todo:read offline_access")]);
    let login = b
        .get(&format!("{path}/oauth/authorize?{q}"))
        .await
        .location
        .unwrap();
    assert_eq!(
        b.sign_in(&login, EMAIL, "not the password").await.status,
        401
    );
    let to = b.authorize(&path, &q).await;
    let code = param(&to, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", client.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    let (status, tokens) = app.token_request(&path, &form).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client.as_str()),
    ];
    let (status, rotated) = app.token_request(&path, &refresh_form).await;
    assert_eq!(status, 200, "{rotated}");
    // The code again: refused, and everything it issued revoked.
    let (status, _) = app.token_request(&path, &form).await;
    assert_eq!(status, 400);
    // The person says no to a second request.
    let consent = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(&client, &pkce(), &[("prompt", "consent")])
        ))
        .await;
    assert_eq!(b.decide(&consent, "deny").await.status, 303);
    // An agent.
    let agent = app.add_client(&r, "todo:read").await;
    app.token(&path, &agent, &[]).await;

    let log = events(&app).await;
    assert_eq!(
        kinds(&log),
        [
            "client.registered",
            "client.registration_refused",
            "sign_in.failed",
            "sign_in.succeeded",
            "consent.granted",
            "authorization.granted",
            "token.issued",
            "token.issued",
            "token.refused",
            "authorization.denied",
            "token.issued",
        ]
    );
    let person = app.store.user_by_email(EMAIL).await.unwrap().unwrap().id;
    let by = |kind: &'static str| log.iter().filter(move |e| e.event.as_str() == kind);

    let registered = by("client.registered").next().unwrap();
    assert_eq!(registered.client.as_deref(), Some(client.as_str()));
    assert_eq!(registered.resource.as_deref(), Some(r.id.as_str()));
    let failed = by("sign_in.failed").next().unwrap();
    assert_eq!(failed.outcome, Outcome::Failure);
    assert_eq!(failed.details["email"], EMAIL);
    assert_eq!(failed.details["ip"], "127.0.0.1");

    let issued: Vec<&AuditEvent> = by("token.issued").collect();
    assert_eq!(issued[0].details["grant_type"], "authorization_code");
    assert_eq!(issued[0].details["scope"], "todo:read offline_access");
    assert_eq!(issued[0].details["refresh_token"], true);
    assert_eq!(issued[0].user.as_ref(), Some(&person.to_string()));
    assert_eq!(issued[1].details["grant_type"], "refresh_token");
    assert_eq!(issued[2].details["grant_type"], "client_credentials");
    assert_eq!(issued[2].client.as_deref(), Some(agent.id.as_str()));
    assert_eq!(issued[2].user, None);
    for e in &issued {
        assert!(e.details["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert_eq!(e.resource.as_deref(), Some(r.id.as_str()));
    }

    let replay = by("token.refused").next().unwrap();
    assert_eq!(replay.details["error"], "invalid_grant");
    assert_eq!(replay.details["grant_type"], "authorization_code");
    assert_eq!(replay.client.as_deref(), Some(client.as_str()));

    let denied = by("authorization.denied").next().unwrap();
    assert_eq!(denied.user.as_ref(), Some(&person.to_string()));
    assert_eq!(denied.details["redirect_uri"], REDIRECT);

    // Nothing secret, anywhere in the log.
    let text = serde_json::to_string(&log).unwrap();
    for secret in [
        PASSWORD,
        "not the password",
        code.as_str(),
        refresh.as_str(),
        rotated["refresh_token"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
        agent.secret.as_str(),
        p.verifier.as_str(),
    ] {
        assert!(!text.contains(secret), "a secret is in the audit log");
    }
}

#[tokio::test]
async fn revocation_and_a_refused_client_are_audited() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    let path = format!("/resources/{}", r.id);
    let agent = app.add_client(&r, "todo:read").await;
    let token = app.token(&path, &agent, &[]).await;
    let resp = app
        .post_form(
            &format!("{path}/oauth/revoke"),
            &[("token", &token)],
            Some(&agent),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let bad = crate::helpers::AgentClient {
        id: agent.id.clone(),
        secret: "ghs_wrong".into(),
    };
    let resp = app
        .post_form(
            &format!("{path}/oauth/token"),
            &[("grant_type", "client_credentials")],
            Some(&bad),
        )
        .await;
    assert_eq!(resp.status(), 401);

    let log = events(&app).await;
    assert_eq!(
        kinds(&log),
        ["token.issued", "token.revoked", "token.refused"]
    );
    assert_eq!(log[1].details["jti"], log[0].details["jti"]);
    assert_eq!(log[1].client.as_deref(), Some(agent.id.as_str()));
    assert_eq!(log[2].details["error"], "invalid_client");
    assert_eq!(log[2].client.as_deref(), Some(agent.id.as_str()));
    assert_eq!(log[2].resource.as_deref(), Some(r.id.as_str()));
    assert!(!serde_json::to_string(&log).unwrap().contains("ghs_wrong"));
    assert_eq!(EventType::parse("token.revoked"), Some(log[1].event));
}
