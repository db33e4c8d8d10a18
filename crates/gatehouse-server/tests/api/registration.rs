//! Dynamic Client Registration (RFC 7591/7592) and Client ID Metadata Documents (CIMD-1…14).

use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use gatehouse_core::keys::SigningAlg;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, claims};
use crate::people::*;

async fn register_raw(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}{path}/oauth/register", app.base))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn registration_echoes_metadata_defaults_to_public_and_keeps_unknown_fields() {
    let app = TestApp::spawn().await;
    app.add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    // What mcp-remote 0.15 sends, plus an unknown field.
    let body = app
        .register(
            "",
            json!({"redirect_uris":["http://localhost:3399/oauth/callback"],
                   "grant_types":["authorization_code","refresh_token"],"response_types":["code"],
                   "client_name":"MCP CLI Client","client_uri":"https://github.com/modelcontextprotocol/mcp-cli",
                   "software_id":"2e6dc280-f3c3-4e01-99a7-8181dbd1d23d","software_version":"0.15.1",
                   "scope":"todo:read offline_access","application_type":"native","x_custom":{"a":1}}),
        )
        .await;
    let id = body["client_id"].as_str().unwrap();
    assert!(
        id.starts_with("dcr_") && !id.starts_with("https://"),
        "AS-32"
    );
    assert_eq!(body["token_endpoint_auth_method"], "none", "omitted → none");
    assert!(body.get("client_secret").is_none());
    assert_eq!(
        body["redirect_uris"],
        json!(["http://localhost:3399/oauth/callback"])
    );
    assert_eq!(body["x_custom"], json!({"a": 1}));
    assert_eq!(body["software_version"], "0.15.1");
    assert!(body["client_id_issued_at"].is_i64());

    // RFC 7592: read and delete with the registration access token.
    let uri = body["registration_client_uri"].as_str().unwrap();
    let token = body["registration_access_token"].as_str().unwrap();
    let read = app.http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["x_custom"], json!({"a": 1}));
    let wrong = app
        .http
        .get(uri)
        .bearer_auth("ghg_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let del = app
        .http
        .delete(uri)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let gone = app.http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(gone.status(), 401);
}

#[tokio::test]
async fn confidential_registrations_get_a_secret_and_must_use_it() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    let body = app
        .register(
            &path,
            json!({"redirect_uris":[REDIRECT],"token_endpoint_auth_method":"client_secret_post"}),
        )
        .await;
    let id = body["client_id"].as_str().unwrap().to_owned();
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(body["client_secret_expires_at"], 0);
    let p = pkce();
    let to = app
        .browser()
        .authorize(&path, &authorize_query(&id, &p, &[]))
        .await;
    let code = param(&to, "code").unwrap();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", id.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    let (status, body) = app.token_request(&path, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "no secret"
    );
    let to = app
        .browser()
        .authorize(&path, &authorize_query(&id, &p, &[]))
        .await;
    let code = param(&to, "code").unwrap();
    form[1].1 = &code;
    form.push(("client_secret", &secret));
    let (status, body) = app.token_request(&path, &form).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn bad_registrations_get_spec_named_errors() {
    let app = TestApp::spawn().await;
    app.add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    for (body, error) in [
        (
            r#"{"redirect_uris":["http://evil.example/cb"]}"#,
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb#frag"]}"#,
            "invalid_redirect_uri",
        ),
        (r#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
        (r#"{"client_name":"no redirects"}"#, "invalid_redirect_uri"),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
            "invalid_client_metadata",
        ),
        (
            r#"{"redirect_uris":["https://a.example/cb"],"client_uri":"not a url"}"#,
            "invalid_client_metadata",
        ),
        ("not json", "invalid_client_metadata"),
        ("[]", "invalid_client_metadata"),
    ] {
        let (status, got) = register_raw(&app, "", body).await;
        assert_eq!(
            (status, got["error"].as_str()),
            (400, Some(error)),
            "{body}"
        );
    }
    let huge = format!(
        r#"{{"redirect_uris":["https://a.example/cb"],"x":"{}"}}"#,
        "a".repeat(20_000)
    );
    let (status, got) = register_raw(&app, "", &huge).await;
    assert_eq!(
        (status, got["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    assert!(
        gatehouse_core::store::ClientStore::clients(app.store.as_ref(), None)
            .await
            .unwrap()
            .is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn registration_can_be_switched_off_and_is_rate_limited() {
    let app = TestApp::spawn_with(|c| c.registrations_per_ip_per_hour = 2).await;
    let mut off = gatehouse_core::model::NewResource::new(
        "Closed",
        gatehouse_core::ResourceUri::parse("https://closed.example/mcp").unwrap(),
        vec![],
    );
    off.dynamic_registration = Some(false);
    let closed = app.op().register_resource(off).await.unwrap();
    app.engine.refresh().await.unwrap();
    let meta: Value = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/resources/{}",
            app.base, closed.id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        meta.get("registration_endpoint").is_none(),
        "AS-11: not advertised when off"
    );
    let (status, body) = register_raw(
        &app,
        &format!("/resources/{}", closed.id),
        r#"{"redirect_uris":["https://a.example/cb"]}"#,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );

    let open = app
        .add_server("https://open.example/mcp", SigningAlg::RS256)
        .await;
    let path = format!("/resources/{}", open.id);
    let ok = r#"{"redirect_uris":["https://a.example/cb"]}"#;
    // The quota is two per hour and the refused attempt above counted.
    assert_eq!(register_raw(&app, &path, ok).await.0, 201);
    let (status, body) = register_raw(&app, &path, ok).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
}

/// A loopback server for metadata documents: `/client.json` serves whatever the test sets.
async fn document_server(routes: Router) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, routes).await });
    addr
}

fn document(url: &str) -> Value {
    json!({"client_id": url, "client_name": "Doc Client", "redirect_uris": [REDIRECT],
           "token_endpoint_auth_method": "none"})
}

#[tokio::test]
async fn a_metadata_document_client_signs_in_under_the_development_setting() {
    let app = TestApp::spawn_with(|c| c.dev_loopback_metadata_documents = true).await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    let placeholder = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let doc_url = placeholder.clone();
    let addr = document_server(Router::new().route(
        "/client.json",
        get(move || {
            let url = doc_url.lock().unwrap().clone();
            async move { axum::Json(document(&url)) }
        }),
    ))
    .await;
    let id = format!("http://{addr}/client.json");
    *placeholder.lock().unwrap() = id.clone();
    let p = pkce();
    let b = app.browser();
    let first = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(&id, &p, &[])
        ))
        .await;
    let signed = b
        .sign_in(first.location.as_deref().unwrap(), EMAIL, PASSWORD)
        .await;
    let consent = b.get(signed.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Doc Client"));
    assert!(
        consent
            .body
            .contains("identified by <strong>127.0.0.1</strong>"),
        "CIMD-13"
    );
    let to = b.decide(&consent, "allow").await.location.unwrap();
    let (status, body) = app
        .token_request(
            &path,
            &[
                ("grant_type", "authorization_code"),
                ("code", &param(&to, "code").unwrap()),
                ("redirect_uri", REDIRECT),
                ("client_id", &id),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["client_id"],
        id.as_str()
    );
}

#[tokio::test]
async fn bad_metadata_documents_end_on_an_error_page() {
    let app = TestApp::spawn_with(|c| c.dev_loopback_metadata_documents = true).await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    let path = format!("/resources/{}", r.id);
    let routes = Router::new()
        .route("/missing.json", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/moved.json",
            get(|| async {
                (StatusCode::FOUND, [(header::LOCATION, "/client.json")]).into_response()
            }),
        )
        .route(
            "/big.json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    format!("{{\"x\":\"{}\"}}", "a".repeat(6000)),
                )
            }),
        )
        .route(
            "/html.json",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html></html>") }),
        )
        .route(
            "/other.json",
            get(|| async { axum::Json(document("https://someone.else/client.json")) }),
        )
        .route(
            "/secret.json",
            get(|| async { axum::Json(json!({"client_id":"x"})) }),
        );
    let addr = document_server(routes).await;
    for (doc, why) in [
        ("missing.json", "404"),
        ("moved.json", "redirects are not followed"),
        ("big.json", "larger than 5120 bytes"),
        ("html.json", "not application/json"),
        ("other.json", "differs from its URL"),
        ("secret.json", "differs from its URL"),
    ] {
        let id = format!("http://{addr}/{doc}");
        let got = app
            .browser()
            .get(&format!(
                "{path}/oauth/authorize?{}",
                authorize_query(&id, &pkce(), &[])
            ))
            .await;
        assert_eq!(got.status, 400, "{doc}");
        assert!(got.location.is_none(), "{doc}: never redirect (CIMD-12)");
        // The person is told that the document could not be used; the reason, which is
        // about someone else's server, goes to the operator's audit log.
        assert!(
            got.body.contains("could not be used"),
            "{doc}: {}",
            got.body
        );
        assert!(!got.body.contains(why), "{doc}: {}", got.body);
        let reasons = app.audited_reasons("metadata_document.failed", &id).await;
        assert!(
            reasons.len() == 1 && reasons[0].contains(why),
            "{doc}: audited reason should say {why}: {reasons:?}"
        );
    }
}

#[tokio::test]
async fn without_the_development_setting_loopback_documents_are_refused() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    let path = format!("/resources/{}", r.id);
    for id in [
        "http://127.0.0.1:9/client.json",
        "https://127.0.0.1:9/client.json",
        "https://localhost:9/client.json",
        "https://[::ffff:127.0.0.1]:9/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/client.json",
        "https://0x7f.1/client.json",
    ] {
        let got = app
            .browser()
            .get(&format!(
                "{path}/oauth/authorize?{}",
                authorize_query(id, &pkce(), &[])
            ))
            .await;
        assert_eq!(got.status, 400, "{id}");
        let audited = app.audited_reasons("metadata_document.failed", id).await;
        let said = |why: &str| got.body.contains(why) || audited.iter().any(|r| r.contains(why));
        // Odd spellings of an address (0x7f.1, [::ffff:127.0.0.1]) are not even fetched:
        // the parser would rewrite them, and an id is fetched only as written.
        assert!(
            said("may not be fetched") || said("must use https") || said("normal form"),
            "{id}: {} {audited:?}",
            got.body
        );
    }
}

#[tokio::test]
async fn public_clients_cannot_introspect() {
    let app = TestApp::spawn().await;
    app.add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let id = app.register_public("").await;
    let r = app
        .post_form(
            "/oauth/introspect",
            &[("token", "x"), ("client_id", &id)],
            None,
        )
        .await;
    assert_eq!(r.status(), 401);
}
