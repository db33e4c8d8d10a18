//! The guard protecting the to-do MCP server, against a real Gatehouse: challenges, every kind
//! of bad token, per-tool scopes, PRM.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use gatehouse_core::admin;
use gatehouse_core::keys::{SigningAlg, StoredKey};
use gatehouse_core::model::Resource;
use gatehouse_guard::{Guard, GuardBuilder, Principal};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{AgentClient, TestApp, claims, now};

pub(crate) struct Protected {
    pub(crate) app: TestApp,
    pub(crate) resource: Resource,
    client: AgentClient,
    pub(crate) mcp: String,
}

/// Gatehouse, an MCP server registered with `alg`, and the to-do server behind the guard.
async fn setup(alg: SigningAlg, guard_min_refetch: Duration) -> Protected {
    setup_with(alg, |b| {
        b.jwks_timing(Duration::from_secs(3600), guard_min_refetch)
    })
    .await
}

/// The same, with the guard's builder tuned by `tune`.
async fn setup_with(alg: SigningAlg, tune: impl FnOnce(GuardBuilder) -> GuardBuilder) -> Protected {
    setup_on(TestApp::spawn().await, alg, tune).await
}

/// A guard-protected to-do server using `app` as its authorization server.
pub(crate) async fn setup_on(
    app: TestApp,
    alg: SigningAlg,
    tune: impl FnOnce(GuardBuilder) -> GuardBuilder,
) -> Protected {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp = format!("http://{}/mcp", listener.local_addr().unwrap());
    let resource = app.add_server(&mcp, alg).await;
    let client = app.add_client(&resource, "todo:read todo:write").await;
    let mut builder = tune(
        Guard::builder(&mcp, app.issuer_of(&resource))
            .scopes_supported(["todo:read", "todo:write"]),
    );
    for (tool, scope) in todo_mcp::TOOL_SCOPES {
        builder = builder.tool_scopes(tool, [scope]);
    }
    let guard = builder.build().unwrap();
    let router = todo_mcp::app(Some(guard), vec!["127.0.0.1".into()]);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Protected {
        app,
        resource,
        client,
        mcp,
    }
}

fn mcp_body(method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
}

async fn mcp(p: &Protected, token: Option<&str>, body: &Value) -> reqwest::Response {
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("batch");
    let mut req = p
        .app
        .http
        .post(&p.mcp)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .json(body);
    if let Some(name) = body.pointer("/params/name").and_then(Value::as_str) {
        req = req.header("mcp-name", name);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn challenge(resp: &reqwest::Response) -> String {
    resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn without_a_token_the_challenge_points_at_the_metadata() {
    let p = setup(SigningAlg::RS256, Duration::from_secs(30)).await;
    let resp = mcp(&p, None, &mcp_body("tools/list", json!({}))).await;
    assert_eq!(resp.status(), 401);
    let prm = p
        .mcp
        .replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        challenge(&resp),
        format!(r#"Bearer realm="OAuth", resource_metadata="{prm}", scope="todo:read todo:write""#),
        "no error code without a token (RFC 6750 §3.1)"
    );
    assert_eq!(
        resp.headers()["access-control-expose-headers"],
        "WWW-Authenticate"
    );
    // A token in the query string is refused even if valid.
    let t = p.app.token("", &p.client, &[]).await;
    let resp = p
        .app
        .http
        .post(format!("{}?access_token={t}", p.mcp))
        .json(&mcp_body("tools/list", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(challenge(&resp).contains(r#"error="invalid_request""#));
}

#[tokio::test]
async fn protected_resource_metadata_is_served_at_both_well_known_urls() {
    let p = setup(SigningAlg::RS256, Duration::from_secs(30)).await;
    let origin = p.mcp.trim_end_matches("/mcp");
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let resp = p
            .app
            .http
            .get(format!("{origin}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["resource"], p.mcp.as_str());
        assert_eq!(
            doc["authorization_servers"],
            json!([p.app.issuer_of(&p.resource)])
        );
        let golden = crate::helpers::redact(
            &crate::helpers::redact(&doc, &p.app.base, "{public}"),
            origin,
            "{mcp_origin}",
        );
        let golden = crate::helpers::redact(&golden, p.resource.id.as_str(), "{res_id}");
        crate::helpers::assert_golden("protected_resource_metadata", &golden);
    }
}

#[tokio::test]
async fn tokens_with_the_right_scopes_pass_and_missing_scopes_get_one_full_challenge() {
    let p = setup(SigningAlg::RS256, Duration::from_secs(30)).await;
    let full = p
        .app
        .token(&format!("/resources/{}", p.resource.id), &p.client, &[])
        .await;
    let resp = mcp(
        &p,
        Some(&full),
        &mcp_body(
            "tools/call",
            json!({ "name": "create_todo", "arguments": { "title": "milk" } }),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let read = p.app.token("", &p.client, &[("scope", "todo:read")]).await;
    assert_eq!(
        mcp(&p, Some(&read), &mcp_body("tools/list", json!({})))
            .await
            .status(),
        200,
        "root issuer accepted"
    );
    assert_eq!(
        mcp(
            &p,
            Some(&read),
            &mcp_body(
                "tools/call",
                json!({ "name": "list_todos", "arguments": {} })
            )
        )
        .await
        .status(),
        200
    );
    let resp = mcp(
        &p,
        Some(&read),
        &mcp_body(
            "tools/call",
            json!({ "name": "delete_todo", "arguments": { "id": 1 } }),
        ),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let c = challenge(&resp);
    // Every scope the call needs, with the ones the token has, so that a host authorizing
    // again with the challenge's scopes alone keeps them; the description names what is missing.
    assert!(
        c.contains(r#"error="insufficient_scope""#)
            && c.contains(r#"scope="todo:read todo:write""#)
            && c.contains(r#"error_description="this request needs the scopes: todo:write""#),
        "{c}"
    );
    assert!(c.contains("resource_metadata="), "{c}");
    // A batch needing both scopes names both in one challenge.
    let batch = json!([
        mcp_body(
            "tools/call",
            json!({ "name": "list_todos", "arguments": {} })
        ),
        mcp_body(
            "tools/call",
            json!({ "name": "create_todo", "arguments": { "title": "x" } })
        ),
    ]);
    let none = p.app.token("", &p.client, &[("scope", "todo:read")]).await;
    let resp = mcp(&p, Some(&none), &batch).await;
    assert_eq!(resp.status(), 403);
    assert!(
        challenge(&resp).contains(r#"scope="todo:read todo:write""#),
        "{}",
        challenge(&resp)
    );
}

/// Signs `claims` under `header` with the server's stored ES256 key (full control of the header).
async fn sign_es256(app: &TestApp, header: &jsonwebtoken::Header, claims: &Value) -> String {
    let keys = app.store.keys().await.unwrap();
    let stored: &StoredKey = keys.iter().find(|k| k.alg == SigningAlg::ES256).unwrap();
    jsonwebtoken::encode(
        header,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&stored.private_pkcs8),
    )
    .unwrap()
}

#[tokio::test]
async fn every_kind_of_bad_token_is_invalid_token() {
    let p = setup(SigningAlg::ES256, Duration::from_secs(30)).await;
    let good = p.app.token("", &p.client, &[]).await;
    let base = claims(&good);
    let kid = crate::helpers::header(&good)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some(kid.clone());
    h.typ = Some("at+jwt".into());
    assert_eq!(
        mcp(
            &p,
            Some(&sign_es256(&p.app, &h, &base).await),
            &mcp_body("tools/list", json!({}))
        )
        .await
        .status(),
        200,
        "control: a well-formed token passes"
    );

    let with = |f: &str, v: Value| {
        let mut c = base.clone();
        c[f] = v;
        c
    };
    let mut cases: Vec<(&str, String)> = vec![
        (
            "expired",
            sign_es256(&p.app, &h, &with("exp", json!(now() - 120))).await,
        ),
        (
            "not yet valid",
            sign_es256(&p.app, &h, &with("nbf", json!(now() + 600))).await,
        ),
        (
            "issued in the future",
            sign_es256(&p.app, &h, &with("iat", json!(now() + 600))).await,
        ),
        (
            "wrong audience",
            sign_es256(
                &p.app,
                &h,
                &with("aud", json!(["https://elsewhere.example/mcp", "res_x"])),
            )
            .await,
        ),
        (
            "wrong issuer",
            sign_es256(&p.app, &h, &with("iss", json!("https://evil.example"))).await,
        ),
        (
            "unknown kid",
            crate::helpers::foreign_key(SigningAlg::ES256).sign_jwt(&base),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    let mut typ_jwt = h.clone();
    typ_jwt.typ = Some("JWT".into());
    cases.push(("typ JWT", sign_es256(&p.app, &typ_jwt, &base).await));
    let mut tampered: Vec<String> = good.split('.').map(str::to_owned).collect();
    tampered[1] = B64.encode(with("scope", json!("todo:read todo:write admin")).to_string());
    cases.push(("tampered claims", tampered.join(".")));
    let none_header = B64.encode(json!({ "alg": "none", "typ": "at+jwt", "kid": kid }).to_string());
    cases.push((
        "alg none",
        format!("{none_header}.{}.", B64.encode(base.to_string())),
    ));
    // The classic confusion: HMAC keyed with the public key the JWKS publishes.
    let jwks: Value = p
        .app
        .http
        .get(format!("{}/keys", p.app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    hs.typ = Some("at+jwt".into());
    let public = jwks.to_string();
    cases.push((
        "HS256 keyed with the public key",
        jsonwebtoken::encode(
            &hs,
            &base,
            &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
        )
        .unwrap(),
    ));

    for (what, token) in cases {
        let resp = mcp(&p, Some(&token), &mcp_body("tools/list", json!({}))).await;
        assert_eq!(resp.status(), 401, "{what}");
        let c = challenge(&resp);
        assert!(c.contains(r#"error="invalid_token""#), "{what}: {c}");
        assert!(c.contains("resource_metadata="), "{what}: {c}");
    }
}

#[tokio::test]
async fn broader_scopes_satisfy_narrower_ones() {
    let p = setup(SigningAlg::ES256, Duration::from_secs(30)).await;
    let good = p.app.token("", &p.client, &[("scope", "todo:read")]).await;
    let kid = crate::helpers::header(&good)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some(kid);
    h.typ = Some("at+jwt".into());
    let mut wide = claims(&good);
    wide["scope"] = json!("todo:*");
    let token = sign_es256(&p.app, &h, &wide).await;
    let resp = mcp(
        &p,
        Some(&token),
        &mcp_body(
            "tools/call",
            json!({ "name": "create_todo", "arguments": { "title": "x" } }),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200, "todo:* covers todo:write");
}

#[tokio::test]
async fn a_new_signing_key_is_picked_up_when_a_token_names_it() {
    let p = setup(SigningAlg::ES256, Duration::from_millis(100)).await;
    let before = p.app.token("", &p.client, &[]).await;
    assert_eq!(
        mcp(&p, Some(&before), &mcp_body("tools/list", json!({})))
            .await
            .status(),
        200
    );
    // Made by another node a moment later, signing at once.
    let mut newer =
        StoredKey::generate(SigningAlg::ES256, gatehouse_core::UnixTime(now() + 1)).unwrap();
    newer.activates_at = gatehouse_core::UnixTime(now());
    p.app.store.insert_key(&newer).await.unwrap();
    p.app.engine.reload_keys().await.unwrap();
    let after = p.app.token("", &p.client, &[]).await;
    assert_eq!(crate::helpers::header(&after)["kid"], newer.kid.as_str());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        mcp(&p, Some(&after), &mcp_body("tools/list", json!({})))
            .await
            .status(),
        200,
        "refetched on the unknown kid"
    );
    assert_eq!(
        mcp(&p, Some(&before), &mcp_body("tools/list", json!({})))
            .await
            .status(),
        200,
        "old key still valid"
    );
}

#[tokio::test]
async fn handlers_see_the_principal_but_not_the_token() {
    let app = TestApp::spawn().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/echo", listener.local_addr().unwrap());
    let r = app.add_server(&url, SigningAlg::RS256).await;
    let c = app.add_client(&r, "todo:read").await;
    let guard = Guard::builder(&url, app.issuer_of(&r))
        .required_scopes(["todo:read"])
        .build()
        .unwrap();
    let echo = Router::new()
        .route(
            "/echo",
            get(|req: axum::extract::Request| async move {
                let p = req.extensions().get::<Principal>().cloned().unwrap();
                axum::Json(json!({
                    "authorization": req.headers().get("authorization").is_some(),
                    "sub": p.subject, "client_id": p.client_id, "scopes": p.scopes,
                }))
            }),
        )
        .layer(guard.layer());
    tokio::spawn(async move { axum::serve(listener, echo).await });
    let t = app.token("", &c, &[]).await;
    let body: Value = app
        .http
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({ "authorization": false, "sub": c.id, "client_id": c.id, "scopes": ["todo:read"] })
    );
    // A token for this server without the required scope.
    let c2 = app.add_client(&r, "todo:write").await;
    let t2 = app.token("", &c2, &[]).await;
    assert_eq!(
        app.http
            .get(&url)
            .bearer_auth(&t2)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

/// Calls `tools/list` with `token` until the guard refuses it (or `limit` passes); returns
/// how long that took and the refusal.
async fn until_refused(
    p: &Protected,
    token: &str,
    limit: Duration,
) -> (Duration, reqwest::Response) {
    let start = std::time::Instant::now();
    loop {
        let r = mcp(p, Some(token), &mcp_body("tools/list", json!({}))).await;
        if r.status() != 200 || start.elapsed() > limit {
            return (start.elapsed(), r);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_deleted_client_s_unexpired_token_is_refused_within_one_poll_interval() {
    let poll = Duration::from_millis(300);
    let p = setup_with(SigningAlg::RS256, |b| b.revocation_poll(Some(poll))).await;
    let token = p.app.token("", &p.client, &[]).await;
    let ok = mcp(&p, Some(&token), &mcp_body("tools/list", json!({}))).await;
    assert_eq!(ok.status(), 200);

    p.app.op().remove_client(&p.client.id).await.unwrap();
    let (took, refused) = until_refused(&p, &token, Duration::from_secs(5)).await;
    assert_eq!(refused.status(), 401, "still accepted after {took:?}");
    assert!(took <= poll + Duration::from_millis(250), "took {took:?}");
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(challenge.contains("revoked"), "{challenge}");
}

#[tokio::test]
async fn a_disabled_client_s_tokens_are_refused_and_after_enabling_only_new_ones_pass() {
    let poll = Duration::from_millis(300);
    let p = setup_with(SigningAlg::ES256, |b| b.revocation_poll(Some(poll))).await;
    let old = p.app.token("", &p.client, &[]).await;
    p.app
        .op()
        .set_client_disabled(&p.client.id, true)
        .await
        .unwrap();
    let (took, refused) = until_refused(&p, &old, Duration::from_secs(5)).await;
    assert_eq!(refused.status(), 401, "still accepted after {took:?}");
    // Enabled a second later: a token issued now passes, the old one stays refused.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    p.app
        .op()
        .set_client_disabled(&p.client.id, false)
        .await
        .unwrap();
    p.app.engine.refresh().await.unwrap();
    let new = p.app.token("", &p.client, &[]).await;
    tokio::time::sleep(poll * 2).await;
    let ok = mcp(&p, Some(&new), &mcp_body("tools/list", json!({}))).await;
    assert_eq!(ok.status(), 200);
    let still = mcp(&p, Some(&old), &mcp_body("tools/list", json!({}))).await;
    assert_eq!(still.status(), 401);
}

/// The `kid` in a JWT's header.
fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn key_rotation_publishes_ahead_and_the_guard_never_refuses_a_valid_token() {
    let app = TestApp::spawn_with(|c| c.key_publish_ahead_secs = 2).await;
    // The guard caches the JWKS for as long as keys are published ahead, and never refetches
    // on an unknown kid in this test: publishing ahead alone must be enough.
    let p = setup_on(app, SigningAlg::ES256, |b| {
        b.jwks_timing(Duration::from_secs(2), Duration::from_secs(600))
    })
    .await;
    let old = p.app.token("", &p.client, &[]).await;
    let jwks = || async {
        let v: Value = p
            .app
            .http
            .get(format!("{}/keys", p.app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let before = jwks().await;
    assert!(before.contains(&kid_of(&old)));
    // The guard has fetched the JWKS once, before the rotation.
    assert_eq!(
        mcp(&p, Some(&old), &mcp_body("tools/list", json!({})))
            .await
            .status(),
        200
    );

    let rotated = std::time::Instant::now();
    let made = p
        .app
        .engine
        .rotate_keys("test", Some(SigningAlg::ES256))
        .await
        .unwrap();
    let next = made[0].kid.to_string();
    // Published at once, not signing yet.
    let published = jwks().await;
    assert!(published.contains(&next) && published.contains(&kid_of(&old)));
    assert_eq!(published.len(), before.len() + 1);
    let during = p.app.token("", &p.client, &[]).await;
    assert_eq!(
        kid_of(&during),
        kid_of(&old),
        "the next key signs only after publish-ahead"
    );

    // After publish-ahead the server's refresh loop switches keys by itself.
    let start = std::time::Instant::now();
    let new = loop {
        let t = p.app.token("", &p.client, &[]).await;
        if kid_of(&t) == next || start.elapsed() > Duration::from_secs(6) {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kid_of(&new), next);
    assert!(rotated.elapsed() >= Duration::from_secs(2), "too early");
    // Old and new tokens both pass the guard; the old key stays published.
    for t in [&old, &during, &new] {
        let r = mcp(&p, Some(t), &mcp_body("tools/list", json!({}))).await;
        assert_eq!(r.status(), 200, "{}", kid_of(t));
    }
    assert!(jwks().await.contains(&kid_of(&old)));
    let states: Vec<&str> = admin::signing_keys(p.app.store.as_ref(), p.app.engine.now())
        .await
        .unwrap()
        .iter()
        .filter(|k| k.alg == SigningAlg::ES256)
        .map(|k| k.state.as_str())
        .collect();
    assert_eq!(states, ["retired", "active"]);
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_the_client_s_other_tokens_still_pass() {
    let poll = Duration::from_millis(300);
    let p = setup_with(SigningAlg::ES256, |b| b.revocation_poll(Some(poll))).await;
    let revoked = p.app.token("", &p.client, &[]).await;
    let kept = p.app.token("", &p.client, &[]).await;
    for t in [&revoked, &kept] {
        assert_eq!(
            mcp(&p, Some(t), &mcp_body("tools/list", json!({})))
                .await
                .status(),
            200
        );
    }
    let r = p
        .app
        .post_form("/oauth/revoke", &[("token", &revoked)], Some(&p.client))
        .await;
    assert_eq!(r.status(), 200);
    let (took, refused) = until_refused(&p, &revoked, Duration::from_secs(5)).await;
    assert_eq!(refused.status(), 401, "still accepted after {took:?}");
    assert!(took <= poll + Duration::from_millis(250), "took {took:?}");
    let still = mcp(&p, Some(&kept), &mcp_body("tools/list", json!({}))).await;
    assert_eq!(still.status(), 200);
}

#[tokio::test]
async fn without_polling_a_revoked_token_passes_until_it_expires() {
    let p = setup_with(SigningAlg::RS256, |b| b.revocation_poll(None)).await;
    let token = p.app.token("", &p.client, &[]).await;
    let r = p
        .app
        .post_form("/oauth/revoke", &[("token", &token)], Some(&p.client))
        .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = mcp(&p, Some(&token), &mcp_body("tools/list", json!({}))).await;
    assert_eq!(
        r.status(),
        200,
        "the documented trade-off of turning polling off"
    );
}

#[tokio::test]
async fn the_revocation_feed_answers_per_server_and_at_the_root() {
    let p = setup_with(SigningAlg::RS256, |b| b.revocation_poll(None)).await;
    let token = p.app.token("", &p.client, &[]).await;
    p.app
        .post_form("/oauth/revoke", &[("token", &token)], Some(&p.client))
        .await;
    let jti = claims(&token)["jti"].as_str().unwrap().to_owned();
    let get = |url: String| {
        let http = p.app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let cache = r
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, cache, r.json::<Value>().await.unwrap())
        }
    };
    let issuer = p.app.issuer_of(&p.resource);
    let (status, cache, feed) = get(format!("{issuer}/revocations")).await;
    assert_eq!(status, 200);
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(feed["resource"], p.mcp.as_str());
    assert_eq!(feed["tokens"][0]["jti"], jti.as_str());
    assert_eq!(feed["clients"], json!([]));
    let next = feed["next_since"].as_i64().unwrap();
    assert!(next > 0 && next <= now());

    let (_, _, root) = get(format!("{}/revocations?resource={}", p.app.base, p.mcp)).await;
    assert_eq!(root["tokens"], feed["tokens"]);
    let (_, _, by_id) = get(format!(
        "{}/revocations?resource={}",
        p.app.base, p.resource.id
    ))
    .await;
    assert_eq!(by_id["tokens"], feed["tokens"]);
    let (_, _, later) = get(format!("{issuer}/revocations?since={}", now() + 60)).await;
    assert_eq!(later["tokens"], json!([]), "since narrows");

    for (url, error) in [
        (format!("{}/revocations", p.app.base), "invalid_request"),
        (
            format!(
                "{}/revocations?resource=https://nope.example/mcp",
                p.app.base
            ),
            "invalid_target",
        ),
        (
            format!("{issuer}/revocations?since=yesterday"),
            "invalid_request",
        ),
        (
            format!("{issuer}/revocations?resource=https://nope.example/mcp"),
            "invalid_target",
        ),
    ] {
        let (status, _, body) = get(url.clone()).await;
        assert_eq!(status, 400, "{url}");
        assert_eq!(body["error"], error, "{url}");
    }
    let (status, _, _) = get(format!("{}/resources/res_nothere/revocations", p.app.base)).await;
    assert_eq!(status, 404);
}
