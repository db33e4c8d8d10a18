//! The admin dashboard over HTTP: who gets in, CSRF on every form, and the operations of a
//! day (register a server, make an agent client and use its secret, read the audit log).

use gatehouse_core::admin;
use gatehouse_core::password::Password;

use crate::helpers::{AgentClient, TestApp};
use crate::people::*;

const ROOT: &str = "root@example.com";

async fn setup() -> TestApp {
    let app = TestApp::spawn().await;
    let pw = Password::new_checked(PASSWORD).unwrap();
    app.op().create_user(ROOT, &pw, true).await.unwrap();
    app.add_user(EMAIL, PASSWORD).await;
    app
}

/// A browser signed in as `email`, through the redirect from `/admin`.
async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let b = app.browser();
    let first = b.get("/admin").await;
    assert_eq!(first.status, 303);
    let login = first.location.unwrap();
    assert_eq!(login, "/login?return_to=%2Fadmin");
    let done = b.sign_in(&login, email, PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/admin"));
    b
}

fn csrf(page: &str) -> String {
    hidden_inputs(page)
        .into_iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v)
        .expect("a csrf field")
}

fn form(csrf: &str, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut f = vec![("csrf".to_owned(), csrf.to_owned())];
    f.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    f
}

#[tokio::test]
async fn only_administrators_get_in_and_every_form_needs_the_csrf_token() {
    let app = setup().await;
    let person = signed_in(&app, EMAIL).await;
    let denied = person.get("/admin").await;
    assert_eq!(denied.status, 403);
    assert!(denied.body.contains("not an administrator"));
    for path in [
        "/admin/people",
        "/admin/audit",
        "/admin/audit/export?format=csv",
        "/admin/signing-keys",
        "/admin/sign-in",
    ] {
        assert_eq!(person.get(path).await.status, 403, "{path}");
    }

    let b = signed_in(&app, ROOT).await;
    let home = b.get("/admin").await;
    assert_eq!(home.status, 200);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(home.headers["cache-control"], "no-store");
    let no_token = b
        .post(
            "/admin/servers",
            &form("", &[("name", "x"), ("url", "https://x.example/mcp")]),
        )
        .await;
    assert_eq!(no_token.status, 400);
    // A token that is not this session's (the login form's, from the person's browser).
    let other = csrf(&person.get("/login").await.body);
    let someone_elses = b
        .post("/admin/servers", &form(&other, &[("name", "x")]))
        .await;
    assert_eq!(someone_elses.status, 400, "another session's token");
    assert!(
        app.store.resources().await.unwrap().is_empty(),
        "nothing was made"
    );
}

#[tokio::test]
async fn an_administrator_registers_a_server_makes_an_agent_and_reads_the_log() {
    let app = setup().await;
    let b = signed_in(&app, ROOT).await;
    let token = csrf(&b.get("/admin").await.body);

    let made = b
        .post(
            "/admin/servers",
            &form(
                &token,
                &[
                    ("name", "To-do list"),
                    ("url", "http://127.0.0.1:8001/mcp"),
                    ("scopes", "todo:read=Read your to-dos\r\ntodo:write"),
                    ("token_ttl", "600"),
                    ("alg", "ES256"),
                    ("refresh_tokens", "offline_access"),
                    ("dynamic_registration", "on"),
                ],
            ),
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let page_path = made.location.unwrap();
    let id = page_path.trim_start_matches("/admin/servers/").to_owned();
    let r = admin::resource(app.store.as_ref(), &id).await.unwrap();
    assert_eq!(
        (r.token_ttl, r.dynamic_registration, r.metadata_documents),
        (600, true, false)
    );
    let page = b.get(&page_path).await;
    assert_eq!(page.status, 200);
    for expected in [
        "To-do list",
        "&#34;resource&#34;: &#34;http://127.0.0.1:8001/mcp&#34;",
        "gatehouse_guard::Guard::builder",
        "ScalekitProvider(",
        "scalekit.validateToken",
    ] {
        assert!(page.body.contains(expected), "{expected} missing");
    }

    // Change it through the edit form (every field is on the form).
    let edited = b
        .post(
            &format!("/admin/servers/{id}/update"),
            &form(
                &token,
                &[
                    ("name", "Tasks"),
                    ("url", "http://127.0.0.1:8001/mcp"),
                    ("scopes", "todo:read=Read your to-dos"),
                    ("token_ttl", "300"),
                    ("alg", "ES256"),
                    ("refresh_tokens", "never"),
                    ("metadata_documents", "on"),
                ],
            ),
        )
        .await;
    assert_eq!(edited.status, 303, "{}", edited.body);
    let r = admin::resource(app.store.as_ref(), &id).await.unwrap();
    assert_eq!(
        (
            r.name.as_str(),
            r.token_ttl,
            r.dynamic_registration,
            r.metadata_documents,
            r.scopes.len()
        ),
        ("Tasks", 300, false, true, 1)
    );
    assert!(
        b.get(&page_path).await.body.contains("value=\"Tasks\""),
        "the form shows the new values"
    );

    let bad = b
        .post(
            "/admin/servers",
            &form(
                &token,
                &[
                    ("name", "x"),
                    ("url", "ftp://x"),
                    ("token_ttl", "600"),
                    ("alg", "RS256"),
                    ("refresh_tokens", "never"),
                ],
            ),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("URL"), "{}", bad.body);

    // An agent client: the secret is on the answer page, once, and works.
    let secret_page = b
        .post(
            &format!("/admin/servers/{id}/clients"),
            &form(&token, &[("name", "nightly"), ("scopes", "todo:read")]),
        )
        .await;
    assert_eq!(secret_page.status, 200, "{}", secret_page.body);
    assert_eq!(secret_page.headers["cache-control"], "no-store");
    let secret = secret_page
        .body
        .split("id=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("ghs_"));
    let client = app.store.clients(Some(&r.id)).await.unwrap().pop().unwrap();
    let agent = AgentClient {
        id: client.id.to_string(),
        secret,
    };
    app.token(&format!("/resources/{id}"), &agent, &[]).await;
    let listed = b.get(&page_path).await;
    assert!(
        listed.body.contains("nightly") && !listed.body.contains(&agent.secret),
        "listed, secret not shown"
    );

    // The log shows it all, filters and exports.
    app.engine.flush_audit().await;
    let log = b.get("/admin/audit?event=admin.change").await;
    assert_eq!(log.status, 200);
    assert!(log.body.contains("server.created") && log.body.contains("client.created"));
    assert!(!log.body.contains("<td>token.issued</td>"), "filtered");
    let all = b.get("/admin/audit").await;
    assert!(all.body.contains("<td>token.issued</td>"));
    let csv = b
        .get("/admin/audit/export?format=csv&event=token.issued")
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("gatehouse-audit.csv")
    );
    assert_eq!(
        csv.body.lines().count(),
        2,
        "header and one token: {}",
        csv.body
    );
    let jsonl = b.get("/admin/audit/export?format=jsonl").await;
    assert!(
        jsonl
            .body
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    assert_eq!(b.get("/admin/audit?since=yesterday").await.status, 400);

    // Delete the client: its token endpoint access ends.
    let gone = b
        .post(
            &format!("/admin/clients/{}/delete", agent.id),
            &form(&token, &[("server", &id)]),
        )
        .await;
    assert_eq!(gone.status, 303);
    let r = app
        .post_form(
            &format!("/resources/{id}/oauth/token"),
            &[("grant_type", "client_credentials")],
            Some(&agent),
        )
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn people_and_keys_from_the_dashboard() {
    let app = setup().await;
    let b = signed_in(&app, ROOT).await;
    let token = csrf(&b.get("/admin/people").await.body);
    let added = b
        .post(
            "/admin/people",
            &form(&token, &[("email", "bob@example.com")]),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let password = added
        .body
        .split("id=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(password.len() >= 16);
    let bob = admin::user(app.store.as_ref(), "bob@example.com")
        .await
        .unwrap();
    assert!(!bob.admin);
    let made_admin = b
        .post(
            &format!("/admin/people/{}/admin", bob.id),
            &form(&token, &[("admin", "on")]),
        )
        .await;
    assert_eq!(made_admin.status, 303);
    assert!(
        admin::user(app.store.as_ref(), "bob@example.com")
            .await
            .unwrap()
            .admin
    );
    let root = admin::user(app.store.as_ref(), ROOT).await.unwrap();
    let self_demotion = b
        .post(
            &format!("/admin/people/{}/admin", root.id),
            &form(&token, &[("admin", "off")]),
        )
        .await;
    assert_eq!(
        self_demotion.status, 400,
        "an administrator cannot lock themselves out"
    );

    let key_page = b
        .post("/admin/keys", &form(&token, &[("name", "ci")]))
        .await;
    assert_eq!(key_page.status, 200);
    let key = key_page
        .body
        .split("id=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let api = app
        .http
        .get(format!("{}/admin/api/v1/users", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200, "the key works on the API");
    let people = b.get("/admin/people").await;
    assert!(people.body.contains("bob@example.com") && people.body.contains(">ci<"));
    let removed = b
        .post(
            &format!("/admin/people/{}/delete", bob.id),
            &form(&token, &[]),
        )
        .await;
    assert_eq!(removed.status, 303);
    assert!(
        admin::user(app.store.as_ref(), "bob@example.com")
            .await
            .is_err()
    );
}

fn secret_of(page: &str) -> String {
    page.split("id=\"secret\">")
        .nth(1)
        .expect("a secret on the page")
        .split('<')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_person_s_page_ends_sessions_gives_a_new_password_and_disables_them() {
    let app = setup().await;
    let b = signed_in(&app, ROOT).await;
    // The person signs in twice, in two browsers.
    let theirs = [app.browser(), app.browser()];
    for t in &theirs {
        assert_eq!(t.sign_in("/login", EMAIL, PASSWORD).await.status, 303);
    }
    let ada = admin::user(app.store.as_ref(), EMAIL).await.unwrap();
    let page = b.get(&format!("/admin/people/{}", ada.id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = csrf(&page.body);
    let sessions: Vec<String> = hidden_inputs(&page.body)
        .into_iter()
        .filter(|(k, _)| k == "session")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(sessions.len(), 2, "{}", page.body);
    let path = format!("/admin/people/{}/sessions/end", ada.id);
    let ended = b
        .post(&path, &form(&token, &[("session", &sessions[0])]))
        .await;
    assert_eq!(ended.status, 303);
    assert_eq!(
        app.store.sessions_of(&ada.id).await.unwrap().len(),
        1,
        "one ended"
    );
    assert_eq!(b.post(&path, &form(&token, &[])).await.status, 303);
    assert!(app.store.sessions_of(&ada.id).await.unwrap().is_empty());

    let reset = b
        .post(
            &format!("/admin/people/{}/password", ada.id),
            &form(&token, &[]),
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.headers["cache-control"], "no-store");
    let new = secret_of(&reset.body);
    assert_eq!(
        theirs[0].sign_in("/login", EMAIL, PASSWORD).await.status,
        401
    );
    assert_eq!(theirs[0].sign_in("/login", EMAIL, &new).await.status, 303);

    let off = b
        .post(
            &format!("/admin/people/{}/disabled", ada.id),
            &form(&token, &[("disabled", "on")]),
        )
        .await;
    assert_eq!(off.status, 303);
    assert!(app.store.sessions_of(&ada.id).await.unwrap().is_empty());
    assert_eq!(theirs[1].sign_in("/login", EMAIL, &new).await.status, 403);
    let listed = b.get("/admin/people").await;
    assert!(listed.body.contains("disabled"));
    let root = admin::user(app.store.as_ref(), ROOT).await.unwrap();
    let myself = b
        .post(
            &format!("/admin/people/{}/disabled", root.id),
            &form(&token, &[("disabled", "on")]),
        )
        .await;
    assert_eq!(
        myself.status, 400,
        "an administrator cannot lock themselves out"
    );
}

#[tokio::test]
async fn a_client_is_disabled_and_enabled_from_its_server_s_page() {
    let app = setup().await;
    let r = app
        .add_server(
            "https://todo.example/mcp",
            gatehouse_core::keys::SigningAlg::ES256,
        )
        .await;
    let agent = app.add_client(&r, "todo:read").await;
    let keys = serde_json::json!({"jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k1"}]}});
    let signer = app
        .op()
        .create_agent_client_with_keys(
            r.id.as_str(),
            "signer",
            gatehouse_core::ScopeSet::parse("todo:read").unwrap(),
            keys,
        )
        .await
        .unwrap();
    let b = signed_in(&app, ROOT).await;
    let page = b.get(&format!("/admin/servers/{}", r.id)).await;
    // Only the agent with a secret offers to rotate it; the one with keys has none.
    assert!(
        page.body
            .contains(&format!("/admin/clients/{}/rotate", agent.id))
    );
    assert!(
        !page
            .body
            .contains(&format!("/admin/clients/{}/rotate", signer.id))
    );
    let token = csrf(&page.body);
    let path = format!("/admin/clients/{}/disabled", agent.id);
    let off = b.post(&path, &form(&token, &[("disabled", "on")])).await;
    assert_eq!(off.status, 303);
    assert_eq!(
        off.location.as_deref(),
        Some(format!("/admin/servers/{}#clients", r.id).as_str())
    );
    let refused = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(&agent),
        )
        .await;
    assert_eq!(refused.status(), 401);
    assert!(
        b.get(&format!("/admin/servers/{}", r.id))
            .await
            .body
            .contains("disabled")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let on = b.post(&path, &form(&token, &[("disabled", "off")])).await;
    assert_eq!(on.status, 303);
    app.token("", &agent, &[]).await;
}

#[tokio::test]
async fn sign_in_methods_and_connections_are_managed_from_the_dashboard() {
    use gatehouse_core::signin::Method;

    let app = setup().await;
    let r = app
        .add_server(
            "https://todo.example/mcp",
            gatehouse_core::keys::SigningAlg::ES256,
        )
        .await;
    let b = signed_in(&app, ROOT).await;
    let page = b.get("/admin/sign-in").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No connections yet"), "{}", page.body);
    assert!(page.body.contains("no email delivery is configured"));
    let token = csrf(&page.body);

    let bad = b
        .post(
            "/admin/connections",
            &form(
                &token,
                &[("name", "Acme"), ("login_url", "http://acme.example/login")],
            ),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("must be https"), "{}", bad.body);
    let added = b
        .post(
            "/admin/connections",
            &form(
                &token,
                &[
                    ("name", "Acme"),
                    ("login_url", "https://login.acme.example/mcp"),
                    ("domains", "acme.example, example.com"),
                ],
            ),
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let conns = app.store.connections().await.unwrap();
    assert_eq!(conns.len(), 1);
    let conn = &conns[0];
    assert_eq!(conn.allowed_domains, ["acme.example", "example.com"]);
    let page = b.get("/admin/sign-in").await;
    for text in [
        conn.id.as_str(),
        "partner:callback",
        "/auth-requests/{login_request_id}/user",
        "Acme (connection)",
    ] {
        assert!(page.body.contains(text), "lacks {text}");
    }

    // An OpenID Connect provider, by preset: its redirect URI is shown, its secret never.
    let no_tenant = b
        .post(
            "/admin/connections",
            &form(
                &token,
                &[
                    ("kind", "oidc"),
                    ("name", "Contoso"),
                    ("preset", "entra"),
                    ("client_id", "abc"),
                ],
            ),
        )
        .await;
    assert_eq!(no_tenant.status, 400);
    assert!(no_tenant.body.contains("tenant id"), "{}", no_tenant.body);
    let google = b
        .post(
            "/admin/connections",
            &form(
                &token,
                &[
                    ("kind", "oidc"),
                    ("name", "Google"),
                    ("preset", "google"),
                    ("tenant", ""),
                    ("issuer", ""),
                    ("client_id", "123.apps.googleusercontent.com"),
                    ("client_secret", "s3cret-value"),
                    ("scopes", ""),
                    ("domains", "example.com"),
                ],
            ),
        )
        .await;
    assert_eq!(google.status, 303, "{}", google.body);
    let conns = app.store.connections().await.unwrap();
    let g = conns.iter().find(|c| c.name == "Google").unwrap();
    match &g.kind {
        gatehouse_core::signin::ConnectionKind::Oidc {
            issuer,
            client_id,
            client_secret,
            scopes,
        } => {
            assert_eq!(issuer, "https://accounts.google.com");
            assert_eq!(client_id, "123.apps.googleusercontent.com");
            assert_eq!(client_secret, "s3cret-value");
            assert_eq!(scopes, &["openid", "email", "profile"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g.allowed_domains, ["example.com"]);
    let page = b.get("/admin/sign-in").await;
    assert!(
        page.body
            .contains(&format!("/sso/v1/connections/{}/callback", g.id))
    );
    assert!(page.body.contains("client secret set"));
    assert!(!page.body.contains("s3cret-value"));
    // GitHub Enterprise Server, by the same form.
    let github = b
        .post(
            "/admin/connections",
            &form(
                &token,
                &[
                    ("kind", "oidc"),
                    ("name", "Corp GitHub"),
                    ("preset", "github"),
                    ("tenant", "github.corp.example"),
                    ("issuer", ""),
                    ("client_id", "Iv1.0123"),
                    ("client_secret", "gh-s3cret"),
                    ("scopes", ""),
                    ("domains", ""),
                ],
            ),
        )
        .await;
    assert_eq!(github.status, 303, "{}", github.body);
    let conns = app.store.connections().await.unwrap();
    let gh = conns.iter().find(|c| c.name == "Corp GitHub").unwrap();
    assert!(matches!(&gh.kind,
        gatehouse_core::signin::ConnectionKind::Github { base_url, client_secret, .. }
            if base_url == "https://github.corp.example" && client_secret == "gh-s3cret"));
    let page = b.get("/admin/sign-in").await;
    assert!(
        page.body
            .contains("GitHub: <code>https://github.corp.example</code>")
    );
    assert!(
        page.body
            .contains("Authorization callback URL to register in the OAuth app")
    );
    assert!(
        page.body
            .contains(&format!("/sso/v1/connections/{}/callback", gh.id))
    );
    assert!(!page.body.contains("gh-s3cret"));
    let removed = b
        .post(
            &format!("/admin/connections/{}/delete", gh.id),
            &form(&token, &[]),
        )
        .await;
    assert_eq!(removed.status, 303);
    let removed = b
        .post(
            &format!("/admin/connections/{}/delete", g.id),
            &form(&token, &[]),
        )
        .await;
    assert_eq!(removed.status, 303);

    // Passwords off by default; the server page offers the choice of its own methods.
    let saved = b
        .post("/admin/sign-in", &form(&token, &[("passkey", "on")]))
        .await;
    assert_eq!(saved.status, 303);
    let policy = app.store.sign_in_policy().await.unwrap().unwrap();
    assert!(!policy.password && policy.passkey && !policy.email_code);

    let server_page = b.get(&format!("/admin/servers/{}", r.id)).await;
    assert!(server_page.body.contains("the defaults"));
    assert!(server_page.body.contains(&format!("value=\"{}\"", conn.id)));
    let mut fields = vec![
        ("name", "To-do list"),
        ("url", "https://todo.example/mcp"),
        ("scopes", "todo:read\ntodo:write"),
        ("token_ttl", "600"),
        ("alg", "ES256"),
        ("refresh_tokens", "offline_access"),
        ("sign_in", "custom"),
        ("method", conn.id.as_str()),
        ("method", "password"),
    ];
    let changed = b
        .post(
            &format!("/admin/servers/{}/update", r.id),
            &form(&token, &fields),
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let stored = app.store.resource(&r.id).await.unwrap().unwrap();
    assert_eq!(
        stored.sign_in_methods,
        Some(vec![Method::Connection(conn.id.clone()), Method::Password])
    );
    let server_page = b.get(&format!("/admin/servers/{}", r.id)).await;
    assert!(
        server_page
            .body
            .contains("only Acme (connection), Email and password"),
        "{}",
        server_page.body
    );

    // A connection a server names cannot be removed; disabled, it is not offered.
    let refused = b
        .post(
            &format!("/admin/connections/{}/delete", conn.id),
            &form(&token, &[]),
        )
        .await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("remove it from that server"));
    let off = b
        .post(
            &format!("/admin/connections/{}/enabled", conn.id),
            &form(&token, &[("enabled", "off")]),
        )
        .await;
    assert_eq!(off.status, 303);
    assert!(
        !app.store
            .connection(&conn.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    fields.retain(|(k, _)| *k != "method" && *k != "sign_in");
    fields.push(("sign_in", "default"));
    b.post(
        &format!("/admin/servers/{}/update", r.id),
        &form(&token, &fields),
    )
    .await;
    assert_eq!(
        app.store
            .resource(&r.id)
            .await
            .unwrap()
            .unwrap()
            .sign_in_methods,
        None
    );
    let gone = b
        .post(
            &format!("/admin/connections/{}/delete", conn.id),
            &form(&token, &[]),
        )
        .await;
    assert_eq!(gone.status, 303);
    assert!(app.store.connections().await.unwrap().is_empty());
}

#[tokio::test]
async fn recent_failures_say_which_host_failed_where_and_what_to_change() {
    let app = setup().await;
    let r = app
        .add_server(
            "http://127.0.0.1:8001/mcp",
            gatehouse_core::keys::SigningAlg::RS256,
        )
        .await;
    let change = admin::ResourceChange {
        private_use_redirects: Some(false),
        ..Default::default()
    };
    app.change_server(&r, change).await;
    let path = format!("/resources/{}", r.id);
    const CURSOR_UA: &str = "Cursor/1.7.44 (darwin arm64)";
    // Cursor registers with its private-use redirect URI: refused at registration.
    let refused = app
        .http
        .post(format!("{}{path}/oauth/register", app.base))
        .header("user-agent", CURSOR_UA)
        .json(&serde_json::json!({
            "client_name": "Cursor",
            "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // A registered client asks for a redirect URI it did not register: refused at authorize.
    let client = app.register_public(&path).await;
    let p = pkce();
    let bad = app
        .http
        .get(format!(
            "{}{path}/oauth/authorize?{}",
            app.base,
            authorize_query(&client, &p, &[]).replace(
                &form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
                "http%3A%2F%2F127.0.0.1%3A9%2Felsewhere"
            )
        ))
        .header("user-agent", "claude-code/2.0.14")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let b = signed_in(&app, ROOT).await;
    let page = b.get("/admin/failures").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for said in [
        "registration",
        CURSOR_UA,
        "Native apps&#39; own redirect schemes",
        "must register again",
        "authorization",
        "redirect_uri",
        "claude-code/2.0.14",
        &client,
    ] {
        assert!(
            page.body.contains(said),
            "the page should say {said}: {}",
            page.body
        );
    }
    // One client's failures only.
    let one = b.get(&format!("/admin/failures?client={client}")).await;
    assert!(one.body.contains("claude-code/2.0.14"));
    assert!(!one.body.contains(CURSOR_UA), "{}", one.body);
    let server = b.get(&format!("/admin/servers/{}", r.id)).await;
    assert!(
        server
            .body
            .contains(&format!("/admin/failures?client={client}"))
    );
}

#[tokio::test]
async fn registrations_of_one_host_are_one_row_with_a_count() {
    let app = setup().await;
    let r = app
        .add_server(
            "http://127.0.0.1:8001/mcp",
            gatehouse_core::keys::SigningAlg::RS256,
        )
        .await;
    let path = format!("/resources/{}", r.id);
    // Claude registers anew on every connection; there is no cap that refuses the next one.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.register_public(&path).await);
    }
    let other = app
        .register(&path, serde_json::json!({"client_name": "Test host", "redirect_uris": ["http://127.0.0.1:9/other"]}))
        .await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = signed_in(&app, ROOT).await;
    let page = b.get(&format!("/admin/servers/{}", r.id)).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("3 registrations of this host").count(),
        1,
        "{}",
        page.body
    );
    assert!(page.body.contains("registered ×3"));
    for id in ids.iter().chain([&other]) {
        assert!(page.body.contains(id.as_str()), "{id}");
    }
    assert!(
        !page.body.contains("registered ×4"),
        "other redirect URIs: another host"
    );
}
