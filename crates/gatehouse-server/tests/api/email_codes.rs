//! Signing in with a code sent by email, in the development outbox mode: the test reads the
//! code and the link from the message file the server wrote, as a person reads their mail.
//! (Real SMTP delivery is tested with aiosmtpd in `tests/interop/test_sign_in_methods.py`.)

use std::path::{Path, PathBuf};

use gatehouse_core::Resource;
use gatehouse_core::audit::{AuditQuery, EventType};
use gatehouse_core::keys::SigningAlg;
use gatehouse_core::signin::Method;

use crate::helpers::TestApp;
use crate::people::{Browser, REDIRECT, Seen, authorize_query, form_inputs, param, pkce};

struct Mailroom {
    app: TestApp,
    server: Resource,
    path: String,
    outbox: PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup() -> Mailroom {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let o = outbox.clone();
    let app = TestApp::spawn_with(move |c| c.email_outbox = Some(o)).await;
    let server = app
        .add_server("https://todo.example/mcp", SigningAlg::ES256)
        .await;
    let path = format!("/resources/{}", server.id);
    Mailroom {
        app,
        server,
        path,
        outbox,
        _dir: dir,
    }
}

/// The newest message in the outbox to `to`: its subject and its body.
fn last_mail(outbox: &Path, to: &str) -> (String, String) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    for f in files.iter().rev() {
        let text = std::fs::read_to_string(f).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        if head
            .lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
        {
            let subject = head
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap()
                .to_owned();
            return (subject, unquote(&body.replace("\r\n", "\n")));
        }
    }
    panic!("no message to {to} in {}", outbox.display());
}

/// Decodes a quoted-printable body (RFC 2045 §6.7), as a mail program does.
fn unquote(qp: &str) -> String {
    let joined = qp.replace("=\n", "");
    let mut out = Vec::new();
    let mut bytes = joined.bytes();
    while let Some(b) = bytes.next() {
        if b == b'=' {
            let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()]
                .iter()
                .map(|&c| c as char)
                .collect();
            out.push(u8::from_str_radix(&hex, 16).unwrap());
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).unwrap()
}

fn mail_count(outbox: &Path) -> usize {
    std::fs::read_dir(outbox).map_or(0, |d| d.count())
}

fn code_in(subject: &str) -> String {
    subject.rsplit(": ").next().unwrap().replace(' ', "")
}

fn link_in(body: &str) -> String {
    body.lines()
        .find(|l| l.contains("/login/email/link?token="))
        .unwrap()
        .trim()
        .to_owned()
}

fn says(page: &Seen, text: &str) {
    assert!(
        page.body.contains(text),
        "page lacks `{text}`: {}",
        page.body
    );
}

impl Mailroom {
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

    /// Asks for a code for `email` from the sign-in page `page`.
    async fn ask(&self, b: &Browser, page: &Seen, email: &str) -> Seen {
        let mut form = form_inputs(&page.body, "/login/email");
        form.push(("email".into(), email.into()));
        b.post("/login/email", &form).await
    }

    async fn enter(&self, b: &Browser, page: &Seen, code: &str) -> Seen {
        let mut form = form_inputs(&page.body, "/login/email/code");
        form.push(("code".into(), code.into()));
        b.post("/login/email/code", &form).await
    }
}

#[tokio::test]
async fn a_person_signs_in_with_a_code_from_their_email_and_consents() {
    let m = setup().await;
    let (b, page) = m.at_sign_in().await;
    says(&page, "Email me a sign-in code");
    says(&page, "action=\"/login\"");

    let sent = m.ask(&b, &page, "Grace@Example.com").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    says(
        &sent,
        "We sent a sign-in code to <strong>grace@example.com</strong>",
    );
    let (subject, body) = last_mail(&m.outbox, "grace@example.com");
    assert!(subject.starts_with("Your sign-in code: "), "{subject}");
    assert!(body.contains("sign in to To-do list"), "{body}");
    let code = code_in(&subject);
    assert_eq!(code.len(), 8, "{subject}");

    // A wrong code says how many tries are left; the right one signs in.
    let wrong = if code == "12345678" {
        "87654321"
    } else {
        "12345678"
    };
    let bad = m.enter(&b, &sent, wrong).await;
    assert_eq!(bad.status, 401, "{}", bad.body);
    says(&bad, "That is not the code we sent");
    says(&bad, "4 tries left");
    let spaced = format!("{} {}", &code[..4], &code[4..]);
    let done = m.enter(&b, &bad, &spaced).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let consent = b.get(done.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    says(&consent, "grace@example.com");
    let to_client = b.decide(&consent, "allow").await.location.unwrap();
    assert!(to_client.starts_with(REDIRECT), "{to_client}");
    assert!(param(&to_client, "code").is_some(), "{to_client}");

    // The address had no account: one was made, without a password.
    let grace = m
        .app
        .store
        .user_by_email("grace@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!grace.has_password());

    // The code was used: entering it again (with the old cookie) is refused.
    let again = m.enter(&b, &sent, &code).await;
    assert!(matches!(again.status, 400 | 410), "{}", again.body);

    // Sending and signing in are audited, without the code.
    m.app.engine.flush_audit().await;
    let events = m
        .app
        .store
        .audit_events(&AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let sent_event = events
        .iter()
        .find(|e| e.event == EventType::EmailCodeSent)
        .unwrap();
    assert_eq!(sent_event.details["email"], "grace@example.com");
    let ok = events
        .iter()
        .find(|e| e.event == EventType::SignInSucceeded)
        .unwrap();
    assert_eq!(ok.details["method"], "email_code");
    assert_eq!(ok.details["account_created"], true);
    let failed = events
        .iter()
        .find(|e| e.event == EventType::SignInFailed)
        .unwrap();
    assert_eq!(failed.details["reason"], "wrong_code");
    let all =
        serde_json::to_string(&events.iter().map(|e| &e.details).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains(&code), "the code is never recorded");
}

#[tokio::test]
async fn the_link_in_the_message_signs_in_only_the_browser_that_asked() {
    let m = setup().await;
    let (b, page) = m.at_sign_in().await;
    m.ask(&b, &page, "grace@example.com").await;
    let (_, body) = last_mail(&m.outbox, "grace@example.com");
    let link = link_in(&body);
    assert!(link.starts_with(&m.app.base), "{link}");

    // A mail scanner or another browser opening the link: refused, and the link still works.
    let other = m.app.browser().get(&link).await;
    assert_eq!(other.status, 400, "{}", other.body);
    says(&other, "This browser has no sign-in code in progress");

    // A link cut short.
    let cut = b.get(&link[..link.len() - 5]).await;
    assert_eq!(cut.status, 401, "{}", cut.body);
    says(&cut, "This sign-in link is not valid");

    let done = b.get(&link).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let to = done.location.unwrap();
    assert!(
        to.starts_with(&format!("{}/oauth/authorize?", m.path)),
        "{to}"
    );
    let consent = b.get(&to).await;
    says(&consent, "grace@example.com");
}

#[tokio::test]
async fn codes_are_limited_per_address_and_refused_where_not_offered() {
    let m = setup().await;
    // Five codes, from five browsers.
    for _ in 0..5 {
        let (b, page) = m.at_sign_in().await;
        let sent = m.ask(&b, &page, "grace@example.com").await;
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    let (b, page) = m.at_sign_in().await;
    let too_many = m.ask(&b, &page, "grace@example.com").await;
    assert_eq!(too_many.status, 429, "{}", too_many.body);
    says(&too_many, "Too many codes were sent to this address");
    assert_eq!(mail_count(&m.outbox), 5);

    // Not an address; no CSRF value.
    let (b, page) = m.at_sign_in().await;
    let bad = m.ask(&b, &page, "grace").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    says(&bad, "not an email address");
    let mut form = form_inputs(&page.body, "/login/email");
    form.retain(|(k, _)| k != "csrf");
    form.push(("email".into(), "ada@example.com".into()));
    let forged = m.app.browser().post("/login/email", &form).await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    says(&forged, "The sign-in form expired");

    // An MCP server that offers only passwords: no code form, and codes are refused.
    m.app.offer(&m.server, vec![Method::Password]).await;
    let (b, page) = m.at_sign_in().await;
    assert!(!page.body.contains("/login/email"), "{}", page.body);
    let mut form = form_inputs(&page.body, "/login");
    form.push(("email".into(), "ada@example.com".into()));
    let refused = b.post("/login/email", &form).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    says(&refused, "does not accept sign-in codes by email");
    assert_eq!(mail_count(&m.outbox), 5);
}

#[tokio::test]
async fn a_disabled_account_is_refused_and_an_smtp_failure_is_explained() {
    let m = setup().await;
    m.app
        .add_user("ada@example.com", "correct horse battery")
        .await;
    m.app
        .op()
        .set_user_disabled("ada@example.com", true)
        .await
        .unwrap();
    let (b, page) = m.at_sign_in().await;
    let sent = m.ask(&b, &page, "ada@example.com").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let (subject, _) = last_mail(&m.outbox, "ada@example.com");
    let refused = m.enter(&b, &sent, &code_in(&subject)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    says(&refused, "This account is disabled");

    // An SMTP server that does not answer: the person is told, nothing is half done.
    let app = TestApp::spawn_with(|c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = Some(1);
        c.smtp_tls = gatehouse_server::config::SmtpTls::None;
        c.email_from = Some("Sign-in <no-reply@example.com>".into());
    })
    .await;
    app.add_server("https://todo.example/mcp", SigningAlg::ES256)
        .await;
    let b = app.browser();
    let page = b.get("/login").await;
    let mut form = form_inputs(&page.body, "/login/email");
    form.push(("email".into(), "ada@example.com".into()));
    let failed = b.post("/login/email", &form).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    says(&failed, "could not be sent");
}

#[tokio::test]
async fn codes_per_client_ip_are_rate_limited() {
    let m = setup().await;
    // A burst of 10 from one IP, to different addresses (each under its own limit)…
    for n in 0..10 {
        let (b, page) = m.at_sign_in().await;
        let sent = m.ask(&b, &page, &format!("person{n}@example.com")).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    // …then the IP waits, whatever the address.
    let (b, page) = m.at_sign_in().await;
    let limited = m.ask(&b, &page, "someone.else@example.com").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    says(&limited, "Too many codes were asked for from your network");
    assert_eq!(mail_count(&m.outbox), 10);
}
