//! The admin REST API: API-key authentication (401, 403), MCP servers, the audit log, errors
//! with stable codes, paging, and the OpenAPI document generated from the handlers.

use gatehouse_core::admin;
use gatehouse_core::password::Password;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const BASE: &str = "/admin/api/v1";

struct Api {
    app: TestApp,
    key: String,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .app
            .http
            .request(method, format!("{}{BASE}{path}", self.app.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(&self.key.clone()), None)
            .await
    }
}

/// Gatehouse with an administrator (and their key) and a person who is not one.
async fn setup() -> Api {
    let app = TestApp::spawn().await;
    let op = app.op();
    let pw = Password::new_checked("correct horse battery").unwrap();
    op.create_user("root@example.com", &pw, false)
        .await
        .unwrap();
    op.set_admin("root@example.com", true).await.unwrap();
    let (_, secret) = op
        .create_api_key("root@example.com", "tests")
        .await
        .unwrap();
    Api {
        app,
        key: secret.expose_secret().to_owned(),
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("(none)")
}

#[tokio::test]
async fn no_key_a_wrong_or_revoked_key_is_401_and_a_non_admin_s_key_is_403() {
    let api = setup().await;
    let op = api.app.op();
    let (status, body) = api.call(Method::GET, "/servers", None, None).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    let (status, body) = api
        .call(Method::GET, "/servers", Some("gha_wrong"), None)
        .await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));

    // A key whose holder is no longer an administrator.
    let pw = Password::new_checked("correct horse battery").unwrap();
    op.create_user("ex@example.com", &pw, false).await.unwrap();
    op.set_admin("ex@example.com", true).await.unwrap();
    let (key, secret) = op.create_api_key("ex@example.com", "old").await.unwrap();
    let ex = secret.expose_secret().to_owned();
    assert_eq!(
        api.call(Method::GET, "/servers", Some(&ex), None).await.0,
        200
    );
    op.set_admin("ex@example.com", false).await.unwrap();
    let (status, body) = api.call(Method::GET, "/servers", Some(&ex), None).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    // Every endpoint says the same.
    for (m, p) in [
        (Method::POST, "/servers"),
        (Method::GET, "/servers/res_abc"),
        (Method::DELETE, "/servers/res_abc"),
        (Method::PATCH, "/servers/res_abc"),
        (Method::GET, "/audit"),
        (Method::GET, "/servers/res_abc/clients"),
        (Method::POST, "/servers/res_abc/clients"),
        (Method::DELETE, "/clients/m2m_abc"),
        (Method::POST, "/clients/m2m_abc/rotate-secret"),
        (Method::GET, "/consents"),
        (Method::DELETE, "/consents"),
        (Method::GET, "/users"),
        (Method::POST, "/users"),
        (Method::DELETE, "/users/usr_abc"),
        (Method::PATCH, "/users/usr_abc"),
        (Method::PATCH, "/clients/m2m_abc"),
        (Method::POST, "/users/usr_abc/password"),
        (Method::GET, "/users/usr_abc/sessions"),
        (Method::DELETE, "/users/usr_abc/sessions"),
        (Method::DELETE, "/users/usr_abc/sessions/ses_abc"),
        (Method::GET, "/signing-keys"),
        (Method::POST, "/signing-keys/rotate"),
        (Method::GET, "/api-keys"),
        (Method::POST, "/api-keys"),
        (Method::DELETE, "/api-keys/key_abc"),
    ] {
        let (status, body) = api.call(m.clone(), p, Some(&ex), Some(json!({}))).await;
        assert_eq!((status, code(&body)), (403, "forbidden"), "{m} {p}");
        let (status, body) = api.call(m.clone(), p, None, Some(json!({}))).await;
        assert_eq!((status, code(&body)), (401, "unauthenticated"), "{m} {p}");
    }
    op.set_admin("ex@example.com", true).await.unwrap();
    op.revoke_api_key(key.id.as_str()).await.unwrap();
    let (status, _) = api.call(Method::GET, "/servers", Some(&ex), None).await;
    assert_eq!(status, 401, "revoked");
    // Non-admins cannot be given keys at all, and a key needs a name.
    op.create_user("plain@example.com", &pw, false)
        .await
        .unwrap();
    let err = op
        .create_api_key("plain@example.com", "x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an administrator"), "{err}");
    assert!(op.create_api_key("root@example.com", " ").await.is_err());
}

#[tokio::test]
async fn servers_are_created_listed_paged_read_and_deleted() {
    let api = setup().await;
    let k = api.key.clone();
    let new = json!({
        "name": "To-do list",
        "url": "https://todo.example/mcp",
        "scopes": [{"name": "todo:read", "description": "Read your to-dos"}, {"name": "todo:write"}],
        "token_ttl": 900,
        "signing_alg": "ES256",
        "refresh_tokens": "always",
        "dynamic_registration": false
    });
    let (status, created) = api
        .call(Method::POST, "/servers", Some(&k), Some(new.clone()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("res_"));
    assert_eq!(
        created["issuer"],
        format!("{}/resources/{id}", api.app.base)
    );
    assert_eq!(
        created["scopes"][0],
        json!({"name": "todo:read", "description": "Read your to-dos"})
    );
    assert_eq!(created["token_ttl"], 900);
    assert_eq!(created["signing_alg"], "ES256");
    assert_eq!(created["refresh_tokens"], "always");
    assert_eq!(created["dynamic_registration"], false);
    assert_eq!(created["metadata_documents"], true);
    assert_eq!(
        created["protected_resource_metadata"]["resource"],
        "https://todo.example/mcp"
    );
    // The server is live at once: its metadata answers.
    let meta = api
        .app
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/resources/{id}",
            api.app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(meta.status(), 200);

    let (status, again) = api
        .call(Method::POST, "/servers", Some(&k), Some(new))
        .await;
    assert_eq!((status, code(&again)), (409, "conflict"));
    for (body, why) in [
        (json!({"name": "x", "url": "ftp://x.example/mcp"}), "url"),
        (
            json!({"name": "x", "url": "https://x.example/mcp", "token_ttl": 5}),
            "token_ttl",
        ),
        (
            json!({"name": "x", "url": "https://x.example/mcp", "signing_alg": "HS256"}),
            "signing_alg",
        ),
        (
            json!({"name": "x", "url": "https://x.example/mcp", "scopes": [{"name": "bad scope"}]}),
            "scopes",
        ),
        (
            json!({"name": "x", "url": "https://x.example/mcp", "colour": "blue"}),
            "unknown field",
        ),
        (json!({"url": "https://x.example/mcp"}), "name"),
        (json!("not an object"), "body"),
    ] {
        let (status, body) = api
            .call(Method::POST, "/servers", Some(&k), Some(body))
            .await;
        assert_eq!((status, code(&body)), (400, "invalid"), "{why}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }

    for i in 0..4 {
        let body = json!({"name": format!("S{i}"), "url": format!("https://s{i}.example/mcp")});
        assert_eq!(
            api.call(Method::POST, "/servers", Some(&k), Some(body))
                .await
                .0,
            201
        );
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/servers?limit=2&cursor={c}"),
            None => "/servers?limit=2".into(),
        };
        let (status, page) = api.get(&q).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in id order, no repeats");
    let (status, body) = api.get("/servers?limit=0").await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (status, body) = api.get("/servers?limit=abc").await;
    assert_eq!((status, code(&body)), (400, "invalid"));

    let (status, one) = api.get(&format!("/servers/{id}")).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("To-do list")));

    // Changes: only what is sent; the same rules as registering; URLs stay unique.
    let (status, changed) = api
        .call(
            Method::PATCH,
            &format!("/servers/{id}"),
            Some(&k),
            Some(json!({"name": "Tasks", "token_ttl": 120, "metadata_documents": false})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["name"].as_str(),
            changed["token_ttl"].as_u64(),
            changed["metadata_documents"].as_bool()
        ),
        (Some("Tasks"), Some(120), Some(false))
    );
    assert_eq!(changed["signing_alg"], "ES256", "untouched");
    assert_eq!(changed["scopes"].as_array().unwrap().len(), 2, "untouched");
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/servers/{id}"),
            Some(&k),
            Some(json!({"token_ttl": 5})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (_, other) = api
        .call(
            Method::POST,
            "/servers",
            Some(&k),
            Some(json!({"name": "Other", "url": "https://other.example/mcp"})),
        )
        .await;
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/servers/{}", other["id"].as_str().unwrap()),
            Some(&k),
            Some(json!({"url": "https://todo.example/mcp"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"));
    let (status, body) = api
        .call(
            Method::PATCH,
            "/servers/res_missing",
            Some(&k),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (_, again) = api.get(&format!("/servers/{id}")).await;
    assert_eq!(again["name"], "Tasks");
    let (status, body) = api.get("/servers/nonsense").await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (status, _) = api
        .call(Method::DELETE, &format!("/servers/{id}"), Some(&k), None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = api.get(&format!("/servers/{id}")).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = api.get("/nothing/here").await;
    assert_eq!((status, code(&body)), (404, "not_found"));

    // Each change is in the audit log with the administrator as actor.
    api.app.engine.flush_audit().await;
    let (status, log) = api.get("/audit?event=admin.change&limit=3").await;
    assert_eq!(status, 200);
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["details"]["action"], "server.deleted");
    assert_eq!(items[0]["resource"], id.as_str());
    let root = admin::user(api.app.store.as_ref(), "root@example.com")
        .await
        .unwrap();
    assert_eq!(items[0]["actor"], root.id.as_str());
    assert!(items[0]["time"].as_str().unwrap().ends_with('Z'));
    let next = log["next_cursor"].as_str().unwrap();
    let (_, older) = api
        .get(&format!("/audit?event=admin.change&limit=3&cursor={next}"))
        .await;
    let older = older["items"].as_array().unwrap();
    assert_eq!(
        older.len(),
        3,
        "six servers created, one changed, one deleted"
    );
    assert!(older[0]["seq"].as_i64() < items[2]["seq"].as_i64());
    for bad in [
        "event=token.exploded",
        "outcome=maybe",
        "since=yesterday",
        "limit=5000",
        "cursor=x",
    ] {
        let (status, body) = api.get(&format!("/audit?{bad}")).await;
        assert_eq!((status, code(&body)), (400, "invalid"), "{bad}");
    }
    let (_, failures) = api.get("/audit?outcome=failure").await;
    assert_eq!(failures["items"], json!([]));
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let api = setup().await;
    let r = api
        .app
        .http
        .get(format!("{}{BASE}/openapi.json", api.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], BASE);
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        [
            "/api-keys",
            "/api-keys/{id}",
            "/audit",
            "/clients/{client_id}",
            "/clients/{client_id}/rotate-secret",
            "/connections",
            "/connections/{id}",
            "/consents",
            "/servers",
            "/servers/{id}",
            "/servers/{id}/clients",
            "/sign-in",
            "/signing-keys",
            "/signing-keys/rotate",
            "/users",
            "/users/{id}",
            "/users/{id}/password",
            "/users/{id}/sessions",
            "/users/{id}/sessions/{session_id}"
        ]
    );
    assert!(doc["paths"]["/servers"]["post"]["responses"]["409"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn clients_consents_people_and_keys() {
    let api = setup().await;
    let k = api.key.clone();
    let (_, server) = api
        .call(
            Method::POST,
            "/servers",
            Some(&k),
            Some(json!({"name": "To-do", "url": "http://127.0.0.1:8001/mcp", "scopes": [{"name": "todo:read"}]})),
        )
        .await;
    let sid = server["id"].as_str().unwrap().to_owned();

    // An agent client: created with its secret, which gets a token; rotated; deleted.
    let (status, made) = api
        .call(
            Method::POST,
            &format!("/servers/{sid}/clients"),
            Some(&k),
            Some(json!({"name": "bot", "scopes": ["todo:read"]})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let cid = made["client_id"].as_str().unwrap().to_owned();
    assert_eq!(made["kind"], "agent");
    let secret = made["client_secret"].as_str().unwrap().to_owned();
    let agent = crate::helpers::AgentClient {
        id: cid.clone(),
        secret: secret.clone(),
    };
    api.app.token("", &agent, &[]).await;
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/servers/{sid}/clients"),
            Some(&k),
            Some(json!({"name": "bot", "scopes": ["todo:admin"]})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "invalid"),
        "a scope the server does not offer"
    );
    let (status, list) = api.get(&format!("/servers/{sid}/clients")).await;
    assert_eq!(
        (status, list["items"][0]["client_id"].as_str()),
        (200, Some(cid.as_str()))
    );
    assert!(list["items"][0].get("client_secret").is_none());
    let (status, rotated) = api
        .call(
            Method::POST,
            &format!("/clients/{cid}/rotate-secret"),
            Some(&k),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["client_secret"], secret.as_str());
    let old = api
        .app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(&agent),
        )
        .await;
    assert_eq!(old.status(), 401, "the old secret stopped working");
    assert_eq!(
        api.call(Method::DELETE, &format!("/clients/{cid}"), Some(&k), None)
            .await
            .0,
        204
    );
    let (status, body) = api
        .call(Method::DELETE, &format!("/clients/{cid}"), Some(&k), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));

    // People: created (with a generated password), made admin, listed, removed.
    let (status, ada) = api
        .call(
            Method::POST,
            "/users",
            Some(&k),
            Some(json!({"email": "Ada@Example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{ada}");
    assert_eq!(ada["email"], "ada@example.com");
    assert!(ada["password"].as_str().unwrap().len() >= 16);
    let (status, body) = api
        .call(
            Method::POST,
            "/users",
            Some(&k),
            Some(json!({"email": "ada@example.com", "password": "long enough pw"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"));
    let (status, body) = api
        .call(
            Method::POST,
            "/users",
            Some(&k),
            Some(json!({"email": "bob@example.com", "password": "short"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let uid = ada["id"].as_str().unwrap().to_owned();
    let (status, changed) = api
        .call(
            Method::PATCH,
            &format!("/users/{uid}"),
            Some(&k),
            Some(json!({"admin": true})),
        )
        .await;
    assert_eq!((status, changed["admin"].as_bool()), (200, Some(true)));
    let (_, people) = api.get("/users").await;
    assert_eq!(people["items"].as_array().unwrap().len(), 2);

    // Their API key, made by the root administrator for them, then revoked.
    let (status, key) = api
        .call(
            Method::POST,
            "/api-keys",
            Some(&k),
            Some(json!({"name": "ada's", "user": "ada@example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let theirs = key["secret"].as_str().unwrap().to_owned();
    let (status, body) = api
        .call(
            Method::POST,
            "/api-keys",
            Some(&k),
            Some(json!({"name": format!("\u{85}\u{a9}\u{10}A{}", "*".repeat(97))})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "invalid"),
        "a control character, 101 characters"
    );
    assert_eq!(
        api.call(Method::GET, "/users", Some(&theirs), None).await.0,
        200
    );
    let (_, keys) = api.get("/api-keys").await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none())
    );
    let kid = key["id"].as_str().unwrap();
    assert_eq!(
        api.call(Method::DELETE, &format!("/api-keys/{kid}"), Some(&k), None)
            .await
            .0,
        204
    );
    assert_eq!(
        api.call(Method::GET, "/users", Some(&theirs), None).await.0,
        401
    );

    // Consents: none yet; revoking needs all three names.
    let (status, consents) = api.get("/consents").await;
    assert_eq!((status, consents), (200, json!([])));
    let (status, body) = api
        .call(
            Method::DELETE,
            "/consents?user=ada@example.com",
            Some(&k),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/consents?user=ada@example.com&client=dcr_x&server={sid}"),
            Some(&k),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));

    assert_eq!(
        api.call(Method::DELETE, &format!("/users/{uid}"), Some(&k), None)
            .await
            .0,
        204
    );
    let (status, body) = api
        .call(Method::DELETE, &format!("/users/{uid}"), Some(&k), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
}

#[tokio::test]
async fn a_disabled_client_gets_no_tokens_and_its_earlier_tokens_stay_revoked() {
    let api = setup().await;
    let app = &api.app;
    let r = app
        .add_server(
            "https://todo.example/mcp",
            gatehouse_core::keys::SigningAlg::ES256,
        )
        .await;
    let agent = app.add_client(&r, "todo:read").await;
    let before = app.token("", &agent, &[]).await;
    let introspect = |token: String| {
        let agent = crate::helpers::AgentClient {
            id: agent.id.clone(),
            secret: agent.secret.clone(),
        };
        async move {
            let resp = app
                .post_form("/oauth/introspect", &[("token", &token)], Some(&agent))
                .await;
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(introspect(before.clone()).await.1["active"], true);

    let key = api.key.clone();
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/clients/{}", agent.id),
            Some(&key),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["disabled_at"].is_string(), "{body}");
    let resp = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(&agent),
        )
        .await;
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "invalid_client");
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{err}"
    );
    // A disabled client cannot introspect either.
    assert_eq!(introspect(before.clone()).await.0, 401);

    // Enabled again (a second later, so that new tokens are issued after the revocation):
    // new tokens work, the one issued before stays revoked.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/clients/{}", agent.id),
            Some(&key),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("disabled_at").is_none(), "{body}");
    let after = app.token("", &agent, &[]).await;
    assert_eq!(introspect(after).await.1["active"], true);
    assert_eq!(introspect(before).await.1["active"], false);

    let (status, body) = api
        .call(
            Method::PATCH,
            "/clients/m2m_nothere",
            Some(&key),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/clients/{}", agent.id),
            Some(&key),
            Some(json!({"disabled": "yes"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    // serde would read a struct from an array of its fields; the API takes objects only.
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/clients/{}", agent.id),
            Some(&key),
            Some(json!([true])),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"), "{body}");
}

#[tokio::test]
async fn people_are_disabled_given_new_passwords_and_their_sessions_listed_and_ended() {
    use crate::people::{EMAIL, PASSWORD};
    let api = setup().await;
    let app = &api.app;
    let key = api.key.clone();
    app.add_user(EMAIL, PASSWORD).await;
    let b = app.browser();
    let signed = b.sign_in("/login", EMAIL, PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let second = app.browser();
    assert_eq!(second.sign_in("/login", EMAIL, PASSWORD).await.status, 303);

    let path = format!("/users/{EMAIL}/sessions");
    let (status, list) = api.get(&path).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let one = items[0]["id"].as_str().unwrap();
    assert!(one.starts_with("ses_"));
    let (status, _) = api
        .call(Method::DELETE, &format!("{path}/{one}"), Some(&key), None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = api
        .call(Method::DELETE, &format!("{path}/{one}"), Some(&key), None)
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (_, list) = api.get(&path).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, body) = api.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!((status, body), (200, json!({"ended": 1})));
    // Both browsers are signed out.
    for browser in [&b, &second] {
        let page = browser.get("/admin").await;
        assert_eq!(page.status, 303, "still signed in");
        assert!(page.location.unwrap().starts_with("/login"));
    }

    // A new password: the old one stops working, sessions end.
    assert_eq!(b.sign_in("/login", EMAIL, PASSWORD).await.status, 303);
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/users/{EMAIL}/password"),
            Some(&key),
            Some(json!({"password": "a much better passphrase"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("password").is_none(), "not echoed: {body}");
    assert_eq!(api.get(&path).await.1["items"], json!([]));
    assert_eq!(b.sign_in("/login", EMAIL, PASSWORD).await.status, 401);
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/users/{EMAIL}/password"),
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let generated = body["password"].as_str().unwrap().to_owned();
    assert_eq!(b.sign_in("/login", EMAIL, &generated).await.status, 303);
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/users/{EMAIL}/password"),
            Some(&key),
            Some(json!({"password": "short"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));

    // Disabled: sessions end, sign-in is refused with a reason, the person is listed so.
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/users/{EMAIL}"),
            Some(&key),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["disabled_at"].is_string(), "{body}");
    assert_eq!(api.get(&path).await.1["items"], json!([]));
    let refused = b.sign_in("/login", EMAIL, &generated).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("This account is disabled"),
        "{}",
        refused.body
    );
    // A wrong password learns nothing about the account.
    let wrong = b.sign_in("/login", EMAIL, "not the password at all").await;
    assert_eq!(wrong.status, 401);
    assert!(!wrong.body.contains("disabled"));
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/users/{EMAIL}"),
            Some(&key),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.sign_in("/login", EMAIL, &generated).await.status, 303);
}

#[tokio::test]
async fn signing_keys_are_listed_and_rotated_once_at_a_time() {
    let api = setup().await;
    let key = api.key.clone();
    let (status, list) = api.get("/signing-keys").await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "the RS256 key made at start");
    assert_eq!(items[0]["state"], "active");
    assert_eq!(items[0]["alg"], "RS256");

    let (status, made) = api
        .call(
            Method::POST,
            "/signing-keys/rotate",
            Some(&key),
            Some(json!({"alg": "rs256"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["items"][0]["state"], "next");
    let next = made["items"][0]["kid"].as_str().unwrap().to_owned();
    // Published in the JWKS at once.
    let jwks: Value = api
        .app
        .http
        .get(format!("{}/keys", api.app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == next)
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/signing-keys/rotate",
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(&next));
    let (status, body) = api
        .call(
            Method::POST,
            "/signing-keys/rotate",
            Some(&key),
            Some(json!({"alg": "HS256"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (_, list) = api.get("/signing-keys").await;
    let states: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "next"]);
    api.app.engine.flush_audit().await;
    let (_, log) = api.get("/audit?event=key.rotated").await;
    assert_eq!(log["items"][0]["details"]["kid"], next.as_str());
}

#[tokio::test]
async fn connections_and_sign_in_methods_through_the_api() {
    let api = setup().await;
    let (status, policy) = api.get("/sign-in").await;
    assert_eq!(status, 200);
    assert_eq!(policy["default_methods"], json!(["password"]));
    let (status, body) = api
        .call(
            Method::PUT,
            "/sign-in",
            Some(&api.key),
            Some(json!({"password": false, "email_code": true, "passkey": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["default_methods"],
        json!([]),
        "no email delivery, no passkeys yet"
    );
    let (status, body) = api
        .call(
            Method::PUT,
            "/sign-in",
            Some(&api.key),
            Some(json!({"password": true})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));

    let (status, body) = api
        .call(
            Method::POST,
            "/connections",
            Some(&api.key),
            Some(json!({"name": "Acme", "kind": "federated"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("login_url")
    );
    let (status, c) = api
        .call(
            Method::POST,
            "/connections",
            Some(&api.key),
            Some(json!({"name": "Acme", "kind": "federated", "login_url": "https://login.acme.example/mcp", "allowed_domains": ["acme.example"]})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    assert!(
        c["callback_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/sso/v1/connections/{id}/partner:callback"))
    );
    let (_, body) = api.get("/sign-in").await;
    assert_eq!(body["default_methods"], json!([id]));

    let (status, server) = api
        .call(
            Method::POST,
            "/servers",
            Some(&api.key),
            Some(json!({"name": "To-do", "url": "https://todo.example/mcp", "sign_in_methods": [id, "password"]})),
        )
        .await;
    assert_eq!(status, 201, "{server}");
    assert_eq!(server["sign_in_methods"], json!([id, "password"]));
    let sid = server["id"].as_str().unwrap();
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/servers/{sid}"),
            Some(&api.key),
            Some(json!({"sign_in_methods": ["sms"]})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/servers/{sid}"),
            Some(&api.key),
            Some(json!({"sign_in_methods": []})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/connections/{id}"),
            Some(&api.key),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"));
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/servers/{sid}"),
            Some(&api.key),
            Some(json!({"name": "To-do list"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["sign_in_methods"],
        json!([id, "password"]),
        "absent: kept"
    );
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/servers/{sid}"),
            Some(&api.key),
            Some(json!({"sign_in_methods": null})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["sign_in_methods"], Value::Null, "null: the defaults");

    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/connections/{id}"),
            Some(&api.key),
            Some(json!({"enabled": false, "login_url": "ftp://x"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/connections/{id}"),
            Some(&api.key),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["enabled"], false);
    let (status, body) = api.get(&format!("/connections/{}", sid)).await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP server id")
    );

    // GitHub: its own kind, with the client secret GitHub requires and fixed scopes.
    let (status, body) = api
        .call(
            Method::POST,
            "/connections",
            Some(&api.key),
            Some(json!({"name": "GitHub", "kind": "github", "client_id": "Iv1.abc"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client secret")
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/connections",
            Some(&api.key),
            Some(
                json!({"name": "GitHub", "kind": "github", "client_id": "Iv1.abc",
                        "client_secret": "s", "scopes": ["repo"]}),
            ),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "invalid"),
        "GitHub scopes are fixed"
    );
    let (status, gh) = api
        .call(
            Method::POST,
            "/connections",
            Some(&api.key),
            Some(
                json!({"name": "GitHub", "kind": "github", "client_id": "Iv1.abc",
                        "client_secret": "gh-secret"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{gh}");
    assert_eq!(gh["kind"], "github");
    assert_eq!(gh["base_url"], "https://github.com");
    assert_eq!(gh["scopes"], json!(["read:user", "user:email"]));
    assert_eq!(gh["client_secret_set"], true);
    assert!(!gh.to_string().contains("gh-secret"));
    let gh_id = gh["id"].as_str().unwrap().to_owned();
    assert!(
        gh["callback_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/sso/v1/connections/{gh_id}/callback"))
    );
    let (status, ghes) = api
        .call(
            Method::POST,
            "/connections",
            Some(&api.key),
            Some(
                json!({"name": "Corp GitHub", "kind": "oidc", "preset": "github",
                        "tenant": "github.corp.example", "client_id": "c",
                        "client_secret": "s"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{ghes}");
    assert_eq!(ghes["kind"], "github");
    assert_eq!(ghes["base_url"], "https://github.corp.example");
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/connections/{gh_id}"),
            Some(&api.key),
            Some(json!({"login_url": "https://x.example"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid"));
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/connections/{gh_id}"),
            Some(&api.key),
            Some(json!({"client_secret": "rotated"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stored = gatehouse_core::store::SignInStore::connections(api.app.store.as_ref())
        .await
        .unwrap();
    assert!(stored.iter().any(|c| matches!(&c.kind,
        gatehouse_core::signin::ConnectionKind::Github { client_secret, .. } if client_secret == "rotated")));

    for id in [id, gh_id, ghes["id"].as_str().unwrap().to_owned()] {
        let (status, _) = api
            .call(
                Method::DELETE,
                &format!("/connections/{id}"),
                Some(&api.key),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    let (_, list) = api.get("/connections").await;
    assert_eq!(list, json!([]));
}
