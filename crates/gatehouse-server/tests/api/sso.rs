//! Bring your own auth: the owner's login page signs the person in, its backend posts their
//! claims, and the browser comes back to Gatehouse, which signs them in and shows consent.
//! The test plays the owner's system over real HTTP; every error case gets a clear answer.

use gatehouse_core::keys::SigningAlg;
use gatehouse_core::password::Password;
use gatehouse_core::signin::{ConnectionKind, Method, NewConnection, SignInPolicy};
use gatehouse_core::{Resource, admin};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::people::{Browser, EMAIL, PASSWORD, REDIRECT, Seen, authorize_query, param, pkce};

const LOGIN: &str = "http://127.0.0.1:9/acme/login";

struct Owner {
    app: TestApp,
    server: Resource,
    path: String,
    conn: String,
    key: String,
}

/// Gatehouse with an MCP server that only offers the Acme connection, and the API key the
/// owner's backend uses.
async fn setup() -> Owner {
    let app = TestApp::spawn().await;
    let server = app
        .add_server("https://todo.example/mcp", SigningAlg::ES256)
        .await;
    let op = app.op();
    let c = op
        .create_connection(NewConnection {
            name: "Acme".into(),
            kind: ConnectionKind::Federated {
                login_url: format!("{LOGIN}?tenant=7"),
            },
            allowed_domains: vec![],
        })
        .await
        .unwrap();
    op.update_resource(
        server.id.as_str(),
        admin::ResourceChange {
            sign_in_methods: Some(Some(vec![Method::Connection(c.id.clone())])),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let pw = Password::new_checked("correct horse battery").unwrap();
    op.create_user("root@example.com", &pw, true).await.unwrap();
    let (_, key) = op
        .create_api_key("root@example.com", "acme login")
        .await
        .unwrap();
    app.engine.refresh().await.unwrap();
    let path = format!("/resources/{}", server.id);
    Owner {
        app,
        server,
        path,
        conn: c.id.to_string(),
        key: key.expose_secret().to_owned(),
    }
}

impl Owner {
    /// The owner's backend posts claims for a login request.
    async fn post_user(
        &self,
        conn: &str,
        request: &str,
        key: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut req = self
            .app
            .http
            .post(format!(
                "{}/api/v1/connections/{conn}/auth-requests/{request}/user",
                self.app.base
            ))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A browser starts an authorization request and is sent to the owner's login page;
    /// returns the client, the login page URL it reached, and the browser.
    async fn reach_login_page(&self) -> (Browser, String, String) {
        let client = self.app.register_public(&self.path).await;
        let b = self.app.browser();
        let q = authorize_query(&client, &pkce(), &[("scope", "todo:read")]);
        let first = b.get(&format!("{}/oauth/authorize?{q}", self.path)).await;
        assert_eq!(first.status, 303);
        // The only method is the connection: the sign-in page sends the browser on.
        let login = b.get(first.location.as_deref().unwrap()).await;
        assert_eq!(login.status, 303, "{}", login.body);
        let start = b.get(login.location.as_deref().unwrap()).await;
        assert_eq!(start.status, 303, "{}", start.body);
        let at_owner = start.location.clone().unwrap();
        (b, at_owner, client)
    }

    fn callback(&self, conn: &str, state: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("state", state);
        format!("/sso/v1/connections/{conn}/partner:callback?{}", q.finish())
    }
}

fn claims(sub: &str, email: &str, verified: bool) -> String {
    json!({"sub": sub, "email": email, "email_verified": verified, "name": "Alice Doe",
           "given_name": "Alice", "family_name": "Doe", "picture": "https://example.com/a.jpg",
           "locale": "en-US", "phone_number": "+1234567890"})
    .to_string()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("(none)")
}

fn says(page: &Seen, text: &str) {
    assert!(
        page.body.contains(text),
        "page lacks `{text}`: {}",
        page.body
    );
}

#[tokio::test]
async fn a_person_signs_in_through_the_owners_login_and_the_host_gets_a_token() {
    let o = setup().await;
    let (b, at_owner, client) = o.reach_login_page().await;
    assert!(
        at_owner.starts_with(&format!("{LOGIN}?tenant=7&login_request_id=lr_")),
        "{at_owner}"
    );
    let request = param(&at_owner, "login_request_id").unwrap();
    let state = param(&at_owner, "state").unwrap();
    assert!(state.starts_with(&format!("{request}.")), "{state}");

    let (status, body) = o
        .post_user(
            &o.conn,
            &request,
            Some(&o.key),
            &claims("1234567890", "Alice@Example.com", true),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "alice@example.com");
    assert_eq!(body["sub"], "1234567890");

    let back = b.get(&o.callback(&o.conn, &state)).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let consent = b.get(back.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    says(&consent, "alice@example.com");
    let redirect = b.decide(&consent, "allow").await;
    let to_client = redirect.location.unwrap();
    assert!(to_client.starts_with(REDIRECT), "{to_client}");
    assert!(param(&to_client, "code").is_some(), "{to_client}");

    // The person was created, linked, and the sign-in audited with its method.
    let alice = o
        .app
        .store
        .user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!alice.has_password());
    let ids = o.app.store.identities_of(&alice.id).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].subject, "1234567890");
    assert_eq!(ids[0].profile.claims["locale"], "en-US");
    let _ = client;

    // The same person again: the same account, no second link.
    let (b2, at_owner, _) = o.reach_login_page().await;
    let request = param(&at_owner, "login_request_id").unwrap();
    let state = param(&at_owner, "state").unwrap();
    let (status, _) = o
        .post_user(
            &o.conn,
            &request,
            Some(&o.key),
            &claims("1234567890", "alice@example.com", false),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(b2.get(&o.callback(&o.conn, &state)).await.status, 303);
    assert_eq!(
        o.app.store.users().await.unwrap().len(),
        2,
        "root and alice"
    );
}

#[tokio::test]
async fn the_owners_backend_gets_clear_errors() {
    let o = setup().await;
    let (_b, at_owner, _) = o.reach_login_page().await;
    let request = param(&at_owner, "login_request_id").unwrap();
    let ok = claims("42", "bob@example.com", true);

    let (status, body) = o.post_user(&o.conn, &request, None, &ok).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    let (status, _) = o.post_user(&o.conn, &request, Some("gha_wrong"), &ok).await;
    assert_eq!(status, 401);

    // The MCP server's id where the connection id belongs: the seed product's classic mistake.
    let (status, body) = o
        .post_user(o.server.id.as_str(), &request, Some(&o.key), &ok)
        .await;
    assert_eq!((status, code(&body)), (404, "connection_not_found"));
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("MCP server id") && msg.contains("conn_"),
        "{msg}"
    );

    let (status, body) = o
        .post_user("conn_nosuchthing", &request, Some(&o.key), &ok)
        .await;
    assert_eq!((status, code(&body)), (404, "connection_not_found"));
    let (status, body) = o
        .post_user(&o.conn, "lr_nosuchrequest", Some(&o.key), &ok)
        .await;
    assert_eq!((status, code(&body)), (404, "login_request_not_found"));
    let (status, body) = o.post_user(&o.conn, "42", Some(&o.key), &ok).await;
    assert_eq!((status, code(&body)), (404, "login_request_not_found"));

    for (bad, why) in [
        ("not json", "not JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"email":"bob@example.com"}"#, "`sub` is missing"),
        (r#"{"sub":"42"}"#, "`email` is missing"),
        (r#"{"sub":"42","email":"bob"}"#, "not an email"),
        (
            r#"{"sub":"42","email":"bob@example.com","email_verified":"maybe"}"#,
            "email_verified",
        ),
    ] {
        let (status, body) = o.post_user(&o.conn, &request, Some(&o.key), bad).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_claims"),
            "{bad}: {body}"
        );
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{bad}: {msg}");
    }
    let big = json!({"sub": "42", "email": "bob@example.com", "junk": "x".repeat(20_000)});
    let (status, _) = o
        .post_user(&o.conn, &request, Some(&o.key), &big.to_string())
        .await;
    assert_eq!(status, 400);

    let (status, _) = o.post_user(&o.conn, &request, Some(&o.key), &ok).await;
    assert_eq!(status, 200);
    let (status, body) = o.post_user(&o.conn, &request, Some(&o.key), &ok).await;
    assert_eq!(
        (status, code(&body)),
        (409, "login_request_completed"),
        "sent twice"
    );

    // A person who is not an administrator: their key is refused.
    let pw = Password::new_checked("correct horse battery").unwrap();
    o.app
        .op()
        .create_user("eve@example.com", &pw, true)
        .await
        .unwrap();
    let (_, eve_key) = o
        .app
        .op()
        .create_api_key("eve@example.com", "eve")
        .await
        .unwrap();
    o.app
        .op()
        .set_admin("eve@example.com", false)
        .await
        .unwrap();
    let (status, body) = o
        .post_user(&o.conn, &request, Some(eve_key.expose_secret()), &ok)
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
}

#[tokio::test]
async fn the_browser_must_come_back_once_with_the_state_it_was_sent_from_the_same_browser() {
    let o = setup().await;
    let (b, at_owner, _) = o.reach_login_page().await;
    let request = param(&at_owner, "login_request_id").unwrap();
    let state = param(&at_owner, "state").unwrap();

    // Back before the backend posted the person's details.
    let early = b.get(&o.callback(&o.conn, &state)).await;
    assert_eq!(early.status, 400);
    says(&early, "login_request_pending");
    says(&early, "must POST them to /api/v1/connections/");

    let (status, _) = o
        .post_user(
            &o.conn,
            &request,
            Some(&o.key),
            &claims("7", "carol@example.com", true),
        )
        .await;
    assert_eq!(status, 200);

    // A state that is not the one sent.
    let wrong = b
        .get(&o.callback(&o.conn, &format!("{request}.forged")))
        .await;
    assert_eq!(wrong.status, 400);
    says(&wrong, "state_mismatch");
    says(&wrong, "The state does not match the one Gatehouse sent");
    let garbage = b.get(&o.callback(&o.conn, "garbage")).await;
    assert_eq!(garbage.status, 400);
    says(&garbage, "state_mismatch");
    let missing = b
        .get(&format!("/sso/v1/connections/{}/partner:callback", o.conn))
        .await;
    assert_eq!(missing.status, 400);
    says(&missing, "without the state parameter");

    // The right state from another browser (no binding cookie).
    let other = o.app.browser().get(&o.callback(&o.conn, &state)).await;
    assert_eq!(other.status, 400);
    says(&other, "browser_mismatch");

    // The wrong connection in the callback path.
    let res_id = b.get(&o.callback(o.server.id.as_str(), &state)).await;
    assert_eq!(res_id.status, 404);
    says(&res_id, "MCP server id");

    // The right one: signed in, once.
    let done = b.get(&o.callback(&o.conn, &state)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let replay = b.get(&o.callback(&o.conn, &state)).await;
    assert_eq!(replay.status, 409);
    says(&replay, "login_request_used");
    let (status, body) = o
        .post_user(
            &o.conn,
            &request,
            Some(&o.key),
            &claims("7", "carol@example.com", true),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "login_request_used"));

    // Failures are audited with the reason.
    o.app.engine.flush_audit().await;
    let failed = o
        .app
        .store
        .audit_events(&gatehouse_core::audit::AuditQuery {
            events: vec![gatehouse_core::audit::EventType::SignInFailed],
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let reasons: Vec<String> = failed
        .iter()
        .filter_map(|e| {
            e.details
                .get("reason")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect();
    for r in [
        "state_mismatch",
        "browser_mismatch",
        "login_request_used",
        "login_request_pending",
    ] {
        assert!(reasons.iter().any(|x| x == r), "{r} not in {reasons:?}");
    }
}

#[tokio::test]
async fn accounts_are_linked_by_verified_email_only_and_domains_and_disabling_are_enforced() {
    let o = setup().await;
    o.app.add_user(EMAIL, PASSWORD).await;
    let finish = |email: &'static str, verified: bool, sub: &'static str| {
        let o = &o;
        async move {
            let (b, at_owner, _) = o.reach_login_page().await;
            let request = param(&at_owner, "login_request_id").unwrap();
            let state = param(&at_owner, "state").unwrap();
            let (status, body) = o
                .post_user(
                    &o.conn,
                    &request,
                    Some(&o.key),
                    &claims(sub, email, verified),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            b.get(&o.callback(&o.conn, &state)).await
        }
    };
    // Ada has a password account: an unverified email does not take it over.
    let refused = finish(EMAIL, false, "ada-1").await;
    assert_eq!(refused.status, 403);
    says(&refused, "email_not_verified");
    // Verified: linked to her account.
    let linked = finish(EMAIL, true, "ada-1").await;
    assert_eq!(linked.status, 303, "{}", linked.body);
    let ada = o.app.store.user_by_email(EMAIL).await.unwrap().unwrap();
    assert_eq!(o.app.store.identities_of(&ada.id).await.unwrap().len(), 1);
    assert!(ada.has_password(), "her password stays");

    // Only example.com.
    o.app
        .op()
        .update_connection(
            &o.conn,
            admin::ConnectionChange {
                allowed_domains: Some(vec!["example.com".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let outsider = finish("mallory@evil.test", true, "m-1").await;
    assert_eq!(outsider.status, 403);
    says(&outsider, "email_domain_not_allowed");
    assert!(
        o.app
            .store
            .user_by_email("mallory@evil.test")
            .await
            .unwrap()
            .is_none()
    );

    // A disabled account cannot sign in through a connection either.
    o.app.op().set_user_disabled(EMAIL, true).await.unwrap();
    let disabled = finish(EMAIL, true, "ada-1").await;
    assert_eq!(disabled.status, 403);
    says(&disabled, "account_disabled");

    // A disabled connection is not offered and refuses sign-ins.
    o.app
        .op()
        .update_connection(
            &o.conn,
            admin::ConnectionChange {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b = o.app.browser();
    let start = b
        .get(&format!("/sso/v1/connections/{}/start", o.conn))
        .await;
    assert_eq!(start.status, 403);
    says(&start, "connection_disabled");
}

#[tokio::test]
async fn a_server_offers_only_its_methods_and_a_session_of_another_method_does_not_count() {
    let o = setup().await;
    o.app.add_user(EMAIL, PASSWORD).await;
    // A second server with the defaults: password (and the enabled connection).
    let other = o
        .app
        .add_server("https://notes.example/mcp", SigningAlg::ES256)
        .await;
    let other_path = format!("/resources/{}", other.id);
    let client = o.app.register_public(&other_path).await;
    let b = o.app.browser();
    let q = authorize_query(&client, &pkce(), &[]);
    let first = b.get(&format!("{other_path}/oauth/authorize?{q}")).await;
    let login_at = first.location.clone().unwrap();
    assert!(
        login_at.contains(&format!("server={}", other.id)),
        "{login_at}"
    );
    let page = b.get(&login_at).await;
    assert_eq!(page.status, 200);
    says(&page, "name=\"password\"");
    says(&page, "Continue with Acme");
    let signed = b.sign_in(&login_at, EMAIL, PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);

    // The same browser, signed in with a password, at the server that only offers Acme:
    // sent to sign in with Acme.
    let client = o.app.register_public(&o.path).await;
    let q = authorize_query(&client, &pkce(), &[]);
    let there = b.get(&format!("{}/oauth/authorize?{q}", o.path)).await;
    assert_eq!(there.status, 303);
    assert!(
        there.location.as_deref().unwrap().starts_with("/login?"),
        "not signed in there"
    );
    // And a password typed for that server is refused.
    let page = b.get(there.location.as_deref().unwrap()).await;
    assert_eq!(page.status, 303, "straight to Acme");
    let mut form = vec![
        ("email".to_owned(), EMAIL.to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
        ("server".to_owned(), o.server.id.to_string()),
    ];
    let login_page = b.get(&login_at).await;
    form.extend(
        crate::people::hidden_inputs(&login_page.body)
            .into_iter()
            .filter(|(k, _)| k == "csrf"),
    );
    let refused = b.post("/login", &form).await;
    assert_eq!(refused.status, 403);
    says(&refused, "does not accept passwords");

    // Turning passwords off by default leaves the dashboard reachable with a password.
    o.app
        .op()
        .set_sign_in_policy(SignInPolicy {
            password: false,
            ..SignInPolicy::default()
        })
        .await
        .unwrap();
    let page = b.get(&login_at).await;
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    let dash = b.get("/login?return_to=%2Fadmin").await;
    says(&dash, "name=\"password\"");
}
