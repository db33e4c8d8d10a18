//! Passkeys over HTTP: the options the script gets, the browser binding of ceremonies, the
//! account page, and every refusal. Whole ceremonies with an authenticator (register, sign
//! in, consent, token) run in Chromium with its virtual authenticator:
//! `tests/interop/browser_passkeys.mjs`, driven by `test_sign_in_methods.py`.

use gatehouse_core::audit::{AuditQuery, EventType};
use gatehouse_core::keys::SigningAlg;
use gatehouse_core::passkey::StoredPasskey;
use gatehouse_core::signin::Method;
use gatehouse_core::types::PasskeyId;
use gatehouse_core::{Resource, UnixTime, admin};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::people::{Browser, EMAIL, PASSWORD, Seen, authorize_query, form_inputs, pkce};

struct Site {
    app: TestApp,
    server: Resource,
    path: String,
}

async fn site(host: &str) -> Site {
    let app = TestApp::spawn_named(host, |_| {}).await;
    let server = app
        .add_server("https://todo.example/mcp", SigningAlg::ES256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", server.id);
    Site { app, server, path }
}

impl Site {
    /// A browser at the sign-in page of an authorization request.
    async fn at_sign_in(&self) -> (Browser, Seen) {
        let client = self.app.register_public(&self.path).await;
        let b = self.app.browser();
        let q = authorize_query(&client, &pkce(), &[("scope", "todo:read")]);
        let first = b.get(&format!("{}/oauth/authorize?{q}", self.path)).await;
        assert_eq!(first.status, 303);
        let page = b.get(first.location.as_deref().unwrap()).await;
        assert_eq!(page.status, 200, "{}", page.body);
        (b, page)
    }

    /// A browser signed in with a password, at the account page.
    async fn signed_in(&self) -> (Browser, Seen) {
        let b = self.app.browser();
        let to = b.get("/account").await;
        assert_eq!(to.status, 303);
        let login = to.location.unwrap();
        assert_eq!(login, "/login?return_to=%2Faccount");
        let back = b.sign_in(&login, EMAIL, PASSWORD).await;
        assert_eq!(back.location.as_deref(), Some("/account"), "{}", back.body);
        let page = b.get("/account").await;
        assert_eq!(page.status, 200, "{}", page.body);
        (b, page)
    }

    async fn person(&self) -> gatehouse_core::User {
        self.app.store.user_by_email(EMAIL).await.unwrap().unwrap()
    }
}

/// Posts a form and reads the JSON answer.
async fn post_json(b: &Browser, path: &str, form: &[(String, String)]) -> (u16, Value, Seen) {
    let seen = b.post(path, form).await;
    let v = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
    (seen.status, v, seen)
}

fn says(page: &Seen, text: &str) {
    assert!(
        page.body.contains(text),
        "page lacks `{text}`: {}",
        page.body
    );
}

fn set_cookie_named(seen: &Seen, name: &str) -> Option<String> {
    seen.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

async fn events(app: &TestApp, kind: EventType) -> Vec<gatehouse_core::audit::AuditEvent> {
    app.engine.flush_audit().await;
    app.store
        .audit_events(&AuditQuery {
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == kind)
        .collect()
}

async fn failures(app: &TestApp) -> Vec<String> {
    events(app, EventType::SignInFailed)
        .await
        .iter()
        .filter_map(|e| {
            e.details
                .get("reason")
                .and_then(|r| r.as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn the_sign_in_page_offers_passkeys_and_the_options_are_bound_to_the_browser() {
    let s = site("localhost").await;
    let (b, page) = s.at_sign_in().await;
    says(&page, "data-passkey=\"get\"");
    says(&page, "Sign in with a passkey");
    says(&page, "<script src=\"/assets/passkey.js\" defer></script>");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    let form = form_inputs(&page.body, "/login/passkey");
    let (status, options, seen) = post_json(&b, "/login/passkey/options", &form).await;
    assert_eq!(status, 200, "{}", seen.body);
    let pk = &options["publicKey"];
    assert_eq!(pk["rpId"], "localhost");
    assert_eq!(pk["userVerification"], "required");
    assert!(pk["challenge"].as_str().unwrap().len() >= 43);
    assert!(options.get("mediation").is_none(), "a button, not autofill");
    let cookie = set_cookie_named(&seen, "gatehouse_passkey").expect("ceremony cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Max-Age=300"),
        "{cookie}"
    );

    // A second request gets another challenge.
    let (_, again, _) = post_json(&b, "/login/passkey/options", &form).await;
    assert_ne!(again["publicKey"]["challenge"], pk["challenge"]);

    // Without the sign-in form's CSRF value: refused, as JSON the script shows.
    let mut forged = form.clone();
    forged.retain(|(k, _)| k != "csrf");
    forged.push(("csrf".into(), "forged".into()));
    let (status, err, _) = post_json(&b, "/login/passkey/options", &forged).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_request");
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // The script served is ours, cacheable, JavaScript.
    let js = b.get("/assets/passkey.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    says(&js, "navigator.credentials.get");
}

#[tokio::test]
async fn a_broken_or_replayed_answer_is_refused_with_the_reason() {
    let s = site("localhost").await;
    let (b, page) = s.at_sign_in().await;
    let form = form_inputs(&page.body, "/login/passkey");
    let (status, _, _) = post_json(&b, "/login/passkey/options", &form).await;
    assert_eq!(status, 200);

    let mut answer = form.clone();
    answer.retain(|(k, _)| k != "credential");
    answer.push(("credential".into(), "{\"id\": 7}".into()));
    let first = b.post("/login/passkey", &answer).await;
    assert_eq!(first.status, 400, "{}", first.body);
    says(&first, "not a WebAuthn credential");
    // The ceremony was used up by the first answer, whatever it was (the error page is a
    // fresh sign-in form: its CSRF value replaces the old one).
    let mut answer = form_inputs(&first.body, "/login/passkey");
    answer.retain(|(k, _)| k != "credential");
    answer.push(("credential".into(), "{\"id\": 7}".into()));
    let second = b.post("/login/passkey", &answer).await;
    assert_eq!(second.status, 410, "{}", second.body);
    says(&second, "already used");

    // Another browser, with no ceremony of its own.
    let other = s.app.browser();
    let page = other.get(&format!("/login?server={}", s.server.id)).await;
    let mut form = form_inputs(&page.body, "/login/passkey");
    form.retain(|(k, _)| k != "credential");
    form.push(("credential".into(), "{}".into()));
    let none = other.post("/login/passkey", &form).await;
    assert_eq!(none.status, 400, "{}", none.body);
    says(&none, "no passkey request in progress");

    let reasons = failures(&s.app).await;
    for r in [
        "invalid_credential",
        "passkey_request_used",
        "no_passkey_request",
    ] {
        assert!(reasons.iter().any(|x| x == r), "{r} in {reasons:?}");
    }
}

#[tokio::test]
async fn passkeys_are_refused_where_not_offered_or_not_possible() {
    // An MCP server that names only passwords.
    let s = site("localhost").await;
    s.app.offer(&s.server, vec![Method::Password]).await;
    let (b, page) = s.at_sign_in().await;
    assert!(!page.body.contains("data-passkey"), "{}", page.body);
    let form = form_inputs(&page.body, "/login");
    let (status, err, _) = post_json(&b, "/login/passkey/options", &form).await;
    assert_eq!(status, 403);
    assert_eq!(err["error"], "method_not_offered");
    let mut answer = form.clone();
    answer.push(("credential".into(), "{}".into()));
    let refused = b.post("/login/passkey", &answer).await;
    assert_eq!(refused.status, 403);
    says(&refused, "does not accept passkeys");

    // The default policy without passkeys.
    let t = site("localhost").await;
    let mut policy = admin::sign_in_policy(t.app.store.as_ref()).await.unwrap();
    policy.passkey = false;
    t.app.op().set_sign_in_policy(policy).await.unwrap();
    let (_, page) = t.at_sign_in().await;
    assert!(!page.body.contains("data-passkey"));

    // A public URL that is an IP address cannot be a relying party: never offered, and the
    // account page says why.
    let ip = site("127.0.0.1").await;
    assert!(!ip.app.engine.passkeys_available());
    let (b, page) = ip.at_sign_in().await;
    assert!(!page.body.contains("data-passkey"));
    let form = form_inputs(&page.body, "/login");
    let (status, _, _) = post_json(&b, "/login/passkey/options", &form).await;
    assert_eq!(status, 403);
    let (_, account) = ip.signed_in().await;
    says(&account, "Passkeys cannot be used on this server");
    assert!(!account.body.contains("data-passkey"));
}

#[tokio::test]
async fn the_account_page_lists_adds_and_removes_passkeys() {
    let s = site("localhost").await;
    let (b, page) = s.signed_in().await;
    says(&page, "No passkeys yet");
    says(&page, "data-passkey=\"create\"");
    let ada = s.person().await;

    // A passkey stored earlier (its credential is never parsed by listing or removing).
    let stored = StoredPasskey {
        id: PasskeyId::generate(),
        user: ada.id.clone(),
        credential_id: "AAECAwQ".into(),
        name: "Work laptop".into(),
        credential: "{}".into(),
        created_at: UnixTime(1_800_000_000),
        last_used_at: None,
    };
    s.app.store.insert_passkey(&stored).await.unwrap();
    let page = b.get("/account").await;
    says(&page, "Work laptop");
    says(&page, "never used");

    // Creation options: a discoverable credential for this person, excluding theirs.
    let form = form_inputs(&page.body, "/account/passkeys");
    let (status, options, seen) = post_json(&b, "/account/passkeys/options", &form).await;
    assert_eq!(status, 200, "{}", seen.body);
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["user"]["name"], EMAIL);
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["excludeCredentials"][0]["id"], "AAECAwQ");
    assert!(set_cookie_named(&seen, "gatehouse_passkey").is_some());
    // A registration ceremony cannot be used to sign in.
    let mut wrong = form_inputs(
        &b.get(&format!("/login?server={}", s.server.id)).await.body,
        "/login/passkey",
    );
    wrong.retain(|(k, _)| k != "credential");
    wrong.push(("credential".into(), "{}".into()));
    let refused = b.post("/login/passkey", &wrong).await;
    assert_eq!(refused.status, 400);
    says(&refused, "no passkey request in progress");

    // A broken answer to a registration: the page again, with the reason.
    let (status, _, _) = post_json(&b, "/account/passkeys/options", &form).await;
    assert_eq!(status, 200);
    let mut answer = form.clone();
    answer.retain(|(k, _)| k != "credential");
    answer.push(("credential".into(), "nonsense".into()));
    let bad = b.post("/account/passkeys", &answer).await;
    assert_eq!(bad.status, 400);
    says(&bad, "not a WebAuthn credential");

    // Signed out, or with another page's CSRF value: no options.
    let stranger = s.app.browser();
    let (status, err, _) = post_json(&stranger, "/account/passkeys/options", &form).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"], "login_required");

    // Removing: someone else's passkey is not found; a forged form is refused; theirs goes.
    s.app.add_user("bob@example.com", PASSWORD).await;
    let bob = s
        .app
        .store
        .user_by_email("bob@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let bobs = StoredPasskey {
        id: PasskeyId::generate(),
        user: bob,
        credential_id: "BBBB".into(),
        ..stored.clone()
    };
    s.app.store.insert_passkey(&bobs).await.unwrap();
    let remove_form = form_inputs(
        &page.body,
        &format!("/account/passkeys/{}/delete", stored.id),
    );
    let not_theirs = b
        .post(
            &format!("/account/passkeys/{}/delete", bobs.id),
            &remove_form,
        )
        .await;
    assert_eq!(not_theirs.status, 404);
    says(&not_theirs, "no such passkey");
    let forged = vec![("csrf".to_owned(), "forged".to_owned())];
    let f = b
        .post(&format!("/account/passkeys/{}/delete", stored.id), &forged)
        .await;
    assert_eq!(f.status, 400);
    let gone = b
        .post(
            &format!("/account/passkeys/{}/delete", stored.id),
            &remove_form,
        )
        .await;
    assert_eq!(gone.location.as_deref(), Some("/account?notice=removed"));
    let page = b.get("/account?notice=removed").await;
    says(&page, "Passkey removed.");
    says(&page, "No passkeys yet");
    assert_eq!(s.app.store.passkeys_of(&bobs.user).await.unwrap().len(), 1);

    let removed = events(&s.app, EventType::PasskeyRemoved).await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].user.as_deref(), Some(ada.id.as_str()));
}

#[tokio::test]
async fn passkey_requests_per_client_ip_are_rate_limited() {
    let s = site("localhost").await;
    let (b, page) = s.at_sign_in().await;
    let form = form_inputs(&page.body, "/login/passkey");
    for n in 0..20 {
        let (status, _, _) = post_json(&b, "/login/passkey/options", &form).await;
        assert_eq!(status, 200, "request {n}");
    }
    let (status, err, _) = post_json(&b, "/login/passkey/options", &form).await;
    assert_eq!(status, 429);
    assert_eq!(err["error"], "too_many_requests");
}
