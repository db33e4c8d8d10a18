//! Malformed requests to the OAuth endpoints get a 4xx JSON error, never a 5xx or a panic.

use gatehouse_core::keys::SigningAlg;
use serde_json::Value;

use crate::helpers::TestApp;

async fn assert_json_4xx(resp: reqwest::Response, what: &str) -> Value {
    let status = resp.status().as_u16();
    assert!((400..500).contains(&status), "{what}: status {status}");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "{what}: content-type {ct}"
    );
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{what}: {body}");
    body
}

#[tokio::test]
async fn malformed_bodies_are_invalid_request() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    let creds = format!("client_id={}&client_secret={}", c.id, c.secret);
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        (
            "json body",
            Some("application/json"),
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        (
            "no content type",
            None,
            b"grant_type=client_credentials".to_vec(),
        ),
        (
            "multipart",
            Some("multipart/form-data; boundary=x"),
            b"--x--".to_vec(),
        ),
        (
            "oversized",
            Some("application/x-www-form-urlencoded"),
            format!("grant_type=client_credentials&pad={}", "a".repeat(20_000)).into_bytes(),
        ),
        (
            "duplicate grant_type",
            Some("application/x-www-form-urlencoded"),
            format!("grant_type=client_credentials&grant_type=client_credentials&{creds}")
                .into_bytes(),
        ),
        (
            "duplicate scope",
            Some("application/x-www-form-urlencoded"),
            format!("grant_type=client_credentials&scope=todo:read&scope=todo:read&{creds}")
                .into_bytes(),
        ),
        (
            "duplicate client_id",
            Some("application/x-www-form-urlencoded"),
            format!("grant_type=client_credentials&{creds}&client_id=x").into_bytes(),
        ),
        (
            "empty body",
            Some("application/x-www-form-urlencoded"),
            Vec::new(),
        ),
        (
            "bad percent escapes",
            Some("application/x-www-form-urlencoded"),
            b"grant_type=%zz%&%%%=%".to_vec(),
        ),
        (
            "binary",
            Some("application/x-www-form-urlencoded"),
            vec![0xff, 0xfe, 0x00, 0x26, 0x3d, 0x80],
        ),
        (
            "unknown grant",
            Some("application/x-www-form-urlencoded"),
            format!("grant_type=magic&{creds}").into_bytes(),
        ),
    ];
    for (what, ct, body) in cases {
        for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
            let mut req = app
                .http
                .post(format!("{}{path}", app.base))
                .body(body.clone());
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            assert_json_4xx(req.send().await.unwrap(), &format!("{what} at {path}")).await;
        }
    }
    let resp = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("grant_type", "x")],
            Some(&c),
        )
        .await;
    assert_eq!(
        assert_json_4xx(resp, "dup").await["error"],
        "invalid_request"
    );
    // The server is still healthy after all that.
    assert_eq!(
        app.http
            .get(format!("{}/health", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_4xx() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .get(format!("{}/oauth/token", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = app
        .http
        .get(format!("{}/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_json_4xx(resp, "unknown path").await;
    let resp = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/resources/../../etc",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
}
