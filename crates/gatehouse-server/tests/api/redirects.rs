//! Redirect URIs by application type (RFC 8252 §7): native apps' private-use schemes and
//! loopback on any port, web applications' https, and the schemes nobody may use, at every
//! entry point (registration, metadata documents, the authorization endpoint).

use gatehouse_core::admin::ResourceChange;
use gatehouse_core::keys::SigningAlg;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::people::*;

const CURSOR: &str = "cursor://anysphere.cursor-mcp/oauth/callback";
const CLAUDE_CODE_TAB: &str = "claude://claude.ai/mcp-auth-callback/sdk";

/// The query of an authorization request sent back to `redirect_uri`.
fn query_to(client_id: &str, redirect_uri: &str, p: &Pkce) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code");
    q.append_pair("client_id", client_id);
    q.append_pair("redirect_uri", redirect_uri);
    q.append_pair("code_challenge", &p.challenge);
    q.append_pair("code_challenge_method", "S256");
    q.append_pair("state", "st4te");
    q.finish()
}

async fn register_raw(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}{path}/oauth/register", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_native_app_with_a_private_use_scheme_signs_in_and_is_named_on_consent() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    for (uri, scheme) in [(CURSOR, "cursor"), (CLAUDE_CODE_TAB, "claude")] {
        let body = app
            .register(
                &path,
                json!({"client_name": "Host", "redirect_uris": [uri]}),
            )
            .await;
        assert_eq!(body["redirect_uris"], json!([uri]));
        assert_eq!(
            body["application_type"], "native",
            "a private-use URI is native"
        );
        let id = body["client_id"].as_str().unwrap();
        let p = pkce();
        let b = app.browser();
        let first = b
            .get(&format!("{path}/oauth/authorize?{}", query_to(id, uri, &p)))
            .await;
        let signed = b
            .sign_in(first.location.as_deref().unwrap(), EMAIL, PASSWORD)
            .await;
        let consent = b.get(signed.location.as_deref().unwrap()).await;
        assert_eq!(consent.status, 200, "{}", consent.body);
        assert!(
            consent
                .body
                .contains(&format!("the <strong>{scheme}</strong> app on this device")),
            "{}",
            consent.body
        );
        assert!(
            consent
                .body
                .contains("An app on this device will receive this authorization")
        );
        let to = b.decide(&consent, "allow").await.location.unwrap();
        assert!(to.starts_with(&format!("{uri}?code=")), "{to}");
        let (status, tokens) = app
            .token_request(
                &path,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &param(&to, "code").unwrap()),
                    ("redirect_uri", uri),
                    ("client_id", id),
                    ("code_verifier", &p.verifier),
                ],
            )
            .await;
        assert_eq!(status, 200, "{tokens}");
    }
}

#[tokio::test]
async fn private_use_schemes_match_exactly_and_loopback_on_any_port() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    // What VS Code registers.
    let body = app
        .register(
            &path,
            json!({"client_name": "Visual Studio Code", "redirect_uris": [
                "https://insiders.vscode.dev/redirect", "https://vscode.dev/redirect",
                "http://127.0.0.1/", "http://127.0.0.1:33418/", CURSOR]}),
        )
        .await;
    let id = body["client_id"].as_str().unwrap();
    let b = app.browser();
    for other in [
        "cursor://anysphere.cursor-mcp/oauth/callback/",
        "cursor://anysphere.cursor-mcp:1/oauth/callback",
        "cursor://evil.example/oauth/callback",
        "https://vscode.dev/redirect/",
    ] {
        let got = b
            .get(&format!(
                "{path}/oauth/authorize?{}",
                query_to(id, other, &pkce())
            ))
            .await;
        assert_eq!(got.status, 400, "{other}");
        assert!(got.location.is_none(), "{other}: never redirected");
        assert!(
            got.body.contains("is not one of the client"),
            "{}",
            got.body
        );
    }
    // VS Code falls back to another port when 33418 is busy.
    let to = b
        .authorize(&path, &query_to(id, "http://127.0.0.1:50123/", &pkce()))
        .await;
    assert!(to.starts_with("http://127.0.0.1:50123/?code="), "{to}");
}

#[tokio::test]
async fn schemes_nobody_may_use_are_refused_at_registration_naming_the_rule() {
    let app = TestApp::spawn().await;
    app.add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    for (uri, rule) in [
        ("javascript:alert(document.cookie)", "`javascript:`"),
        ("data:text/html,<script>alert(1)</script>", "`data:`"),
        ("file:///etc/passwd", "`file:`"),
        ("vbscript:msgbox(1)", "`vbscript:`"),
        ("about:blank", "`about:`"),
        ("blob:https://a.example/1", "`blob:`"),
        ("http://evil.example/cb", "http off loopback"),
        ("https://a.example/cb#x", "fragment"),
        ("https://user@a.example/cb", "credentials"),
        ("cursor://user:pw@anysphere/cb", "credentials"),
        ("https://a.example/c b", "whitespace"),
        ("https://a.example/cb\n", "whitespace"),
        ("https://a.example/\u{0}cb", "control"),
        ("https:\\\\evil.example", "backslash"),
        ("myapp:callback", "private-use scheme without a path"),
    ] {
        let (status, body) = register_raw(&app, "", json!({"redirect_uris": [uri]})).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{uri:?}"
        );
        let d = body["error_description"].as_str().unwrap();
        assert!(d.contains(rule), "{uri:?}: {d}");
    }
    // A web application cannot be sent back through an app's scheme.
    let (status, body) = register_raw(
        &app,
        "",
        json!({"redirect_uris": [CURSOR], "application_type": "web"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("native")
    );
    let (status, body) = register_raw(
        &app,
        "",
        json!({"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    // A web application may still use loopback for development; what it says is recorded.
    let body = app
        .register(
            "",
            json!({"redirect_uris": ["http://localhost:3000/cb"], "application_type": "web"}),
        )
        .await;
    assert_eq!(body["application_type"], "web");
    let body = app
        .register("", json!({"redirect_uris": ["https://a.example/cb"]}))
        .await;
    assert_eq!(body["application_type"], "web");
}

#[tokio::test]
async fn the_authorization_endpoint_never_redirects_to_a_refused_uri() {
    let app = TestApp::spawn().await;
    app.add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let id = app.register_public("").await;
    let b = app.browser();
    for (uri, rule) in [
        ("javascript:alert(1)", "never a redirect URI"),
        ("http://127.0.0.1:53682/callback\t", "whitespace"),
        ("http://127.0.0.1:53682/call\nback", "whitespace"),
        ("http://evil.example:53682/callback", "http off loopback"),
    ] {
        let got = b
            .get(&format!("/oauth/authorize?{}", query_to(&id, uri, &pkce())))
            .await;
        assert_eq!(got.status, 400, "{uri:?}");
        assert!(got.location.is_none(), "{uri:?}");
        assert!(got.body.contains(rule), "{uri:?}: {}", got.body);
    }
}

#[tokio::test]
async fn an_mcp_server_can_turn_private_use_schemes_off() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    // Registered while allowed, at the root issuer.
    let body = app.register("", json!({"redirect_uris": [CURSOR]})).await;
    let id = body["client_id"].as_str().unwrap().to_owned();
    let change = ResourceChange {
        private_use_redirects: Some(false),
        ..Default::default()
    };
    app.change_server(&r, change).await;

    let (status, body) = register_raw(&app, &path, json!({"redirect_uris": [CURSOR]})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("does not accept"),
        "{body}"
    );
    let (status, _) = register_raw(&app, "", json!({"redirect_uris": [CURSOR]})).await;
    assert_eq!(status, 400, "no server takes them at the root either");
    // The client registered before cannot use the scheme now: a page, never a redirect.
    let got = app
        .browser()
        .get(&format!(
            "/oauth/authorize?{}",
            query_to(&id, CURSOR, &pkce())
        ))
        .await;
    assert_eq!(got.status, 400);
    assert!(got.location.is_none());
    assert!(got.body.contains("private-use schemes"), "{}", got.body);
    // Loopback and https still work.
    let lo = app.register_public(&path).await;
    let to = app
        .browser()
        .authorize(&path, &authorize_query(&lo, &pkce(), &[]))
        .await;
    assert!(to.starts_with(REDIRECT), "{to}");
}
