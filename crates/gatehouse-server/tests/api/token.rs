//! The token endpoint with client credentials: claims, issuers, scopes, resources, errors.

use gatehouse_core::keys::SigningAlg;
use serde_json::Value;

use crate::helpers::{TestApp, claims, header};

async fn error_of(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = resp.json().await.unwrap();
    assert!(body["error_description"].is_string(), "{body}");
    (status, cache, body)
}

#[tokio::test]
async fn client_credentials_token_has_exactly_the_contract_claims() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read todo:write").await;
    let resp = app
        .post_form(
            &format!("/resources/{}/oauth/token", r.id),
            &[("grant_type", "client_credentials")],
            Some(&c),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "todo:read todo:write");
    let token = body["access_token"].as_str().unwrap();
    let h = header(token);
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "at+jwt");
    assert!(h["kid"].is_string());
    let cl = claims(token);
    let mut names: Vec<&str> = cl.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "aud",
            "client_id",
            "exp",
            "iat",
            "iss",
            "jti",
            "nbf",
            "scope",
            "scopes",
            "sub"
        ]
    );
    assert_eq!(
        cl["iss"],
        app.issuer_of(&r),
        "per-resource endpoint mints per-resource iss"
    );
    assert_eq!(
        cl["aud"],
        serde_json::json!(["https://todo.example/mcp", r.id.as_str()])
    );
    assert_eq!(cl["sub"], c.id.as_str());
    assert_eq!(cl["client_id"], c.id.as_str());
    assert_eq!(cl["scopes"], serde_json::json!(["todo:read", "todo:write"]));
    assert_eq!(cl["nbf"], cl["iat"]);
    assert_eq!(
        cl["exp"].as_i64().unwrap() - cl["iat"].as_i64().unwrap(),
        600
    );
    assert!(cl["iat"].as_i64().unwrap() <= crate::helpers::now());
}

#[tokio::test]
async fn root_endpoint_mints_root_issuer_and_post_auth_ignores_a_bearer_header() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    // The Scalekit Python SDK sends its own token as Bearer along with body credentials.
    let resp = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .bearer_auth("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", &c.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["iss"],
        app.base
    );
}

#[tokio::test]
async fn scopes_default_to_the_allowed_ones_and_cannot_exceed_them() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::ES256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    let t = app.token("", &c, &[]).await;
    assert_eq!(claims(&t)["scope"], "todo:read");
    assert_eq!(header(&t)["alg"], "ES256");
    let t = app.token("", &c, &[("scope", "todo:read")]).await;
    assert_eq!(claims(&t)["scopes"], serde_json::json!(["todo:read"]));
    for scope in ["todo:write", "todo:read todo:write", "admin", "bad\"scope"] {
        let resp = app
            .post_form(
                "/oauth/token",
                &[("grant_type", "client_credentials"), ("scope", scope)],
                Some(&c),
            )
            .await;
        let (status, cache, body) = error_of(resp).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, "invalid_scope"),
            "{scope}: {body}"
        );
        assert_eq!(cache, "no-store");
    }
}

#[tokio::test]
async fn resource_and_audience_must_name_the_clients_server() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::EdDSA)
        .await;
    let other = app
        .add_server("https://other.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    for ok in [
        "https://todo.example/mcp",
        "HTTPS://TODO.example/mcp/",
        r.id.as_str(),
    ] {
        let t = app.token("", &c, &[("resource", ok)]).await;
        assert_eq!(claims(&t)["aud"][0], "https://todo.example/mcp", "{ok}");
        assert_eq!(header(&t)["alg"], "EdDSA");
        app.token("", &c, &[("audience", ok)]).await;
    }
    let cases: [&[(&str, &str)]; 4] = [
        &[("resource", "https://unknown.example/mcp")],
        &[("resource", "https://other.example/mcp")],
        &[("audience", other.id.as_str())],
        &[
            ("resource", "https://todo.example/mcp"),
            ("resource", "https://other.example/mcp"),
        ],
    ];
    for extra in cases {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let (status, _, body) =
            error_of(app.post_form("/oauth/token", &form, Some(&c)).await).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, "invalid_target"),
            "{extra:?}"
        );
    }
}

#[tokio::test]
async fn client_authentication_failures_are_invalid_client_with_a_basic_challenge() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    let wrong = crate::helpers::AgentClient {
        id: c.id.clone(),
        secret: "ghs_wrong".into(),
    };
    let unknown = crate::helpers::AgentClient {
        id: "m2m_nobody".into(),
        secret: c.secret.clone(),
    };
    for who in [&wrong, &unknown] {
        let resp = app
            .post_form(
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                Some(who),
            )
            .await;
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        let (status, _, body) = error_of(resp).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (401, "invalid_client")
        );
    }
    let bodies: [&[(&str, &str)]; 3] = [
        &[("grant_type", "client_credentials")],
        &[("grant_type", "client_credentials"), ("client_id", &c.id)],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.id),
            ("client_secret", "nope"),
        ],
    ];
    for form in bodies {
        let (status, _, body) = error_of(app.post_form("/oauth/token", form, None).await).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (401, "invalid_client"),
            "{form:?}"
        );
    }
    // Two methods at once.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_secret", c.secret.as_str()),
    ];
    let (status, _, body) = error_of(app.post_form("/oauth/token", &form, Some(&c)).await).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn a_per_server_issuer_knows_only_its_own_clients() {
    let app = TestApp::spawn().await;
    let a = app
        .add_server("https://a.example/mcp", SigningAlg::RS256)
        .await;
    let b = app
        .add_server("https://b.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&a, "todo:read").await;
    let resp = app
        .post_form(
            &format!("/resources/{}/oauth/token", b.id),
            &[("grant_type", "client_credentials")],
            Some(&c),
        )
        .await;
    let (status, _, body) = error_of(resp).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (401, "invalid_client")
    );
    let resp = app
        .post_form(
            "/resources/res_doesnotexist/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(&c),
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "not_found");
}

#[tokio::test]
async fn grant_types_other_than_the_three_are_unsupported() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    for g in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let (status, _, body) = error_of(
            app.post_form("/oauth/token", &[("grant_type", g)], Some(&c))
                .await,
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, "unsupported_grant_type"),
            "{g}"
        );
    }
    let (status, _, body) = error_of(
        app.post_form("/oauth/token", &[("scope", "todo:read")], Some(&c))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (400, "invalid_request")
    );
}

#[tokio::test]
async fn a_removed_client_or_server_can_no_longer_get_tokens() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    app.token("", &c, &[]).await;
    app.op().remove_client(&c.id).await.unwrap();
    // The server notices changes made by other processes within its refresh interval.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, _, body) = error_of(
        app.post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(&c),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (401, "invalid_client")
    );
    let c2 = app.add_client(&r, "todo:read").await;
    app.op().remove_resource(r.id.as_str()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, _, _) = error_of(
        app.post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(&c2),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
}
