//! RFC 8414 documents at every URL, the JWKS, and golden snapshots of their shape.

use gatehouse_core::keys::SigningAlg;
use serde_json::Value;

use crate::helpers::{TestApp, assert_golden, redact};

async fn get_json(app: &TestApp, path: &str) -> Value {
    let resp = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}: no redirect, no error");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{path}"
    );
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "*",
        "{path}: CORS open"
    );
    resp.json().await.unwrap()
}

#[tokio::test]
async fn every_metadata_url_serves_its_issuer_byte_identical() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    app.add_server("https://notes.example/mcp", SigningAlg::ES256)
        .await;
    let issuer = app.issuer_of(&r);
    let id = r.id.as_str();
    let urls = [
        format!("/.well-known/oauth-authorization-server/resources/{id}"),
        format!("/.well-known/openid-configuration/resources/{id}"),
        format!("/resources/{id}/.well-known/openid-configuration"),
        format!("/resources/{id}/.well-known/oauth-authorization-server"),
    ];
    let first = get_json(&app, &urls[0]).await;
    assert_eq!(first["issuer"], issuer.as_str());
    for u in &urls[1..] {
        assert_eq!(
            get_json(&app, u).await,
            first,
            "{u} serves the same document"
        );
    }
    assert_eq!(first["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_golden(
        "metadata_resource",
        &redact(&redact(&first, &app.base, "{public}"), id, "{res_id}"),
    );

    let root = get_json(&app, "/.well-known/oauth-authorization-server").await;
    assert_eq!(
        root["issuer"],
        app.base.as_str(),
        "root issuer has no trailing slash"
    );
    assert_eq!(
        get_json(&app, "/.well-known/openid-configuration").await,
        root
    );
    assert_golden("metadata_root", &redact(&root, &app.base, "{public}"));

    let resp = app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/resources/res_unknown",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn advertised_endpoints_answer() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("https://todo.example/mcp", SigningAlg::RS256)
        .await;
    let c = app.add_client(&r, "todo:read").await;
    for doc_path in [
        "/.well-known/oauth-authorization-server".to_owned(),
        format!("/.well-known/oauth-authorization-server/resources/{}", r.id),
    ] {
        let doc = get_json(&app, &doc_path).await;
        let token = app
            .http
            .post(doc["token_endpoint"].as_str().unwrap())
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(token.status(), 200, "{doc_path}");
        let at: Value = token.json().await.unwrap();
        let at = at["access_token"].as_str().unwrap();
        assert_eq!(
            crate::helpers::claims(at)["iss"],
            doc["issuer"],
            "iss is the issuer whose endpoint minted it"
        );
        let intro = app
            .http
            .post(doc["introspection_endpoint"].as_str().unwrap())
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("token", at)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            intro.json::<Value>().await.unwrap()["active"],
            true,
            "{doc_path}"
        );
        let revoke = app
            .http
            .post(doc["revocation_endpoint"].as_str().unwrap())
            .basic_auth(&c.id, Some(&c.secret))
            .form(&[("token", at)])
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), 200);
        let jwks = app
            .http
            .get(doc["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(jwks.status(), 200);
    }
}

#[tokio::test]
async fn jwks_is_served_at_three_paths_with_kid_use_and_alg() {
    let app = TestApp::spawn().await;
    app.add_server("https://a.example/mcp", SigningAlg::ES256)
        .await;
    app.add_server("https://b.example/mcp", SigningAlg::EdDSA)
        .await;
    app.engine.reload_keys().await.unwrap();
    let jwks = get_json(&app, "/keys").await;
    assert_eq!(get_json(&app, "/.well-known/jwks.json").await, jwks);
    assert_eq!(get_json(&app, "/.well-known/jwks").await, jwks);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.dedup();
    assert_eq!(kids.len(), 3, "kids are unique");
    // Shape only: key material and thumbprints change every run.
    let shape: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut k = k.clone();
            for field in ["kid", "n", "x", "y"] {
                if k.get(field).is_some() {
                    k[field] = Value::String(format!("<{field}>"));
                }
            }
            k
        })
        .collect();
    assert_golden("jwks", &serde_json::json!({ "keys": shape }));
}

#[tokio::test]
async fn cors_preflight_is_answered_on_token_and_metadata() {
    let app = TestApp::spawn().await;
    for path in [
        "/oauth/token",
        "/.well-known/oauth-authorization-server",
        "/keys",
    ] {
        let resp = app
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
            .header("origin", "https://claude.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, mcp-protocol-version",
            )
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}");
        assert_eq!(resp.headers()["access-control-allow-origin"], "*", "{path}");
    }
}
