//! The authorization code flow end to end (AS-13…AS-25): registration, sign-in, consent,
//! code exchange, refresh rotation, and every refusal on the way.

use gatehouse_core::keys::SigningAlg;
use serde_json::{Value, json};

use crate::helpers::{TestApp, claims};
use crate::people::*;

async fn setup() -> (TestApp, gatehouse_core::Resource, String) {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    (app, r, path)
}

async fn exchange(
    app: &TestApp,
    path: &str,
    client: &str,
    code: &str,
    pkce: &Pkce,
) -> (u16, Value) {
    app.token_request(
        path,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn a_host_registers_signs_in_consents_and_gets_tokens() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let b = app.browser();
    let p = pkce();
    let q = authorize_query(
        &client,
        &p,
        &[
            ("resource", r.url.as_str()),
            ("scope", "todo:read offline_access"),
        ],
    );

    // Not signed in: to the sign-in page, which comes back here.
    let first = b.get(&format!("{path}/oauth/authorize?{q}")).await;
    assert_eq!(first.status, 303);
    let login = first.location.clone().unwrap();
    assert!(login.starts_with("/login?return_to="), "{login}");
    let signed = b.sign_in(&login, EMAIL, PASSWORD).await;
    assert_eq!(signed.status, 303);
    let cookie = signed.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    // The consent page says who asks, for what, and where the person goes next.
    let consent = b.get(signed.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, 200);
    let csp = consent.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    for text in [
        "Test host",
        "To-do list",
        "127.0.0.1",
        "runs on your own computer",
        "Read your to-dos",
        "todo:read",
        "offline_access",
        EMAIL,
    ] {
        assert!(consent.body.contains(text), "consent page lacks {text}");
    }
    assert!(
        !consent.body.contains("Change your to-dos"),
        "only what was asked"
    );

    let back = b.decide(&consent, "allow").await;
    assert_eq!(back.status, 303);
    let to = back.location.unwrap();
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some("st4te"));
    assert_eq!(param(&to, "iss"), Some(app.issuer_of(&r)), "RFC 9207 iss");
    let code = param(&to, "code").unwrap();

    let (status, body) = exchange(&app, &path, &client, &code, &p).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "todo:read offline_access");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("ghr_"));
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], app.issuer_of(&r));
    assert!(c["sub"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(c["client_id"], client.as_str());
    assert_eq!(c["aud"], json!([r.url.as_str(), r.id.as_str()]));

    // Consent is remembered: the next request goes straight back with a code…
    let again = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(&client, &pkce(), &[("scope", "todo:read")])
        ))
        .await;
    assert_eq!(again.status, 302, "{}", again.body);
    assert!(param(again.location.as_deref().unwrap(), "code").is_some());
    // …unless more is asked, or the client insists.
    for extra in [[("scope", "todo:read todo:write")], [("prompt", "consent")]] {
        let more = b
            .get(&format!(
                "{path}/oauth/authorize?{}",
                authorize_query(&client, &pkce(), &extra)
            ))
            .await;
        assert_eq!(more.status, 200, "{extra:?}");
    }
}

#[tokio::test]
async fn deny_sends_access_denied_with_iss() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let b = app.browser();
    let q = authorize_query(&client, &pkce(), &[]);
    let first = b.get(&format!("{path}/oauth/authorize?{q}")).await;
    let signed = b
        .sign_in(first.location.as_deref().unwrap(), EMAIL, PASSWORD)
        .await;
    let consent = b.get(signed.location.as_deref().unwrap()).await;
    let back = b.decide(&consent, "deny").await;
    let to = back.location.unwrap();
    assert_eq!(param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&to, "iss"), Some(app.issuer_of(&r)));
    assert_eq!(param(&to, "state").as_deref(), Some("st4te"));
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let agent = app.add_client(&r, "todo:read").await;
    let p = pkce();
    let to = app
        .browser()
        .authorize(
            &path,
            &authorize_query(&client, &p, &[("scope", "todo:read offline_access")]),
        )
        .await;
    let code = param(&to, "code").unwrap();
    let (status, first) = exchange(&app, &path, &client, &code, &p).await;
    assert_eq!(status, 200);
    let (status, second) = exchange(&app, &path, &client, &code, &p).await;
    assert_eq!(
        (status, second["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // AS-22: the access token and the refresh token from the first exchange are revoked.
    let introspected: Value = app
        .post_form(
            "/oauth/introspect",
            &[("token", first["access_token"].as_str().unwrap())],
            Some(&agent),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], false);
    let (status, body) = app
        .token_request(
            &path,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
                ("client_id", &client),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn the_token_request_must_prove_pkce_client_and_redirect() {
    let (app, _r, path) = setup().await;
    let a = app.register_public(&path).await;
    let b_client = app.register_public(&path).await;
    let browser = app.browser();
    let code_for = |p: &Pkce| authorize_query(&a, p, &[]);

    let cases: [(&str, MakeForm, &str); 5] = [
        (
            "wrong verifier",
            Box::new(|code, _| form(code, &a, &pkce().verifier, Some(REDIRECT))),
            "invalid_grant",
        ),
        (
            "missing verifier",
            Box::new(|code, _| {
                let mut f = form(code, &a, "", Some(REDIRECT));
                f.retain(|(k, _)| k != "code_verifier");
                f
            }),
            "invalid_request",
        ),
        (
            "another client's code",
            Box::new(|code, p| form(code, &b_client, &p.verifier, Some(REDIRECT))),
            "invalid_grant",
        ),
        (
            "other redirect_uri",
            Box::new(|code, p| form(code, &a, &p.verifier, Some("http://127.0.0.1:53682/other"))),
            "invalid_grant",
        ),
        (
            "missing redirect_uri",
            Box::new(|code, p| form(code, &a, &p.verifier, None)),
            "invalid_grant",
        ),
    ];
    for (what, make, error) in cases {
        let p = pkce();
        let to = browser.authorize(&path, &code_for(&p)).await;
        let code = param(&to, "code").unwrap();
        let f = make(&code, &p);
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, body) = app.token_request(&path, &pairs).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{what}: {body}"
        );
    }
}

/// Builds a token request from a code and its PKCE pair.
type MakeForm<'a> = Box<dyn Fn(&str, &Pkce) -> Vec<(String, String)> + 'a>;

fn form(code: &str, client: &str, verifier: &str, redirect: Option<&str>) -> Vec<(String, String)> {
    let mut f = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("client_id".to_owned(), client.to_owned()),
        ("code_verifier".to_owned(), verifier.to_owned()),
    ];
    if let Some(r) = redirect {
        f.push(("redirect_uri".to_owned(), r.to_owned()));
    }
    f
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family_except_a_quick_identical_retry() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let p = pkce();
    let to = app
        .browser()
        .authorize(
            &path,
            &authorize_query(
                &client,
                &p,
                &[("scope", "todo:read todo:write offline_access")],
            ),
        )
        .await;
    let (_, first) = exchange(&app, &path, &client, &param(&to, "code").unwrap(), &p).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let resource = r.url.as_str().to_owned();
    let refresh = |rt: String, scope: Option<&'static str>| {
        let mut f = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", rt),
            ("client_id", client.clone()),
            ("resource", resource.clone()),
        ];
        if let Some(s) = scope {
            f.push(("scope", s.to_owned()));
        }
        let (app, path) = (&app, path.clone());
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.token_request(&path, &pairs).await
        }
    };
    let (status, second) = refresh(rt1.clone(), None).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated");
    // Real clients race: the identical request again, within the grace window, gets the
    // same answer.
    let (status, retry) = refresh(rt1.clone(), None).await;
    assert_eq!(status, 200);
    assert_eq!(retry, second, "same answer");
    // Scopes may narrow, never widen.
    let (status, narrow) = refresh(rt2.clone(), Some("todo:read")).await;
    assert_eq!((status, narrow["scope"].as_str()), (200, Some("todo:read")));
    let rt3 = narrow["refresh_token"].as_str().unwrap().to_owned();
    let (status, wide) = refresh(rt3.clone(), Some("todo:read todo:admin")).await;
    assert_eq!(
        (status, wide["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // A different request with a used token is theft: the whole family goes.
    let (status, reuse) = refresh(rt2.clone(), Some("todo:write")).await;
    assert_eq!(
        (status, reuse["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, after) = refresh(rt3, None).await;
    assert_eq!(
        (status, after["error"].as_str()),
        (400, Some("invalid_grant")),
        "family revoked"
    );
}

#[tokio::test]
async fn authorization_errors_before_the_redirect_is_verified_are_pages() {
    let (app, _r, path) = setup().await;
    let client = app.register_public(&path).await;
    let b = app.browser();
    let p = pkce();
    for (what, query) in [
        ("unknown client", authorize_query("dcr_unknown", &p, &[])),
        (
            "unregistered redirect",
            authorize_query(&client, &p, &[]).replace("53682%2Fcallback", "53682%2Fother"),
        ),
        ("no client_id", "response_type=code".to_owned()),
    ] {
        let r = b.get(&format!("{path}/oauth/authorize?{query}")).await;
        assert_eq!(r.status, 400, "{what}");
        assert!(r.location.is_none(), "{what}: never redirect");
        assert!(r.body.contains("cannot continue"), "{what}");
    }
    // A client registered at the root is not known to a per-server issuer (AS-34).
    let root_client = app.register_public("").await;
    let r = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(&root_client, &p, &[])
        ))
        .await;
    assert_eq!((r.status, r.location.is_none()), (400, true));
}

#[tokio::test]
async fn authorization_errors_after_it_redirect_with_iss() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let b = app.browser();
    let p = pkce();
    let base = authorize_query(&client, &p, &[]);
    let cases = [
        (
            "plain PKCE",
            base.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            "no method",
            base.replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            "no challenge",
            base.replace(&format!("&code_challenge={}", p.challenge), ""),
            "invalid_request",
        ),
        (
            "token flow",
            base.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            "unknown resource",
            format!("{base}&resource=https%3A%2F%2Fother.example%2Fmcp"),
            "invalid_target",
        ),
        (
            "prompt=none, nobody signed in",
            format!("{base}&prompt=none"),
            "login_required",
        ),
    ];
    for (what, query, error) in cases {
        let got = b.get(&format!("{path}/oauth/authorize?{query}")).await;
        assert_eq!(got.status, 302, "{what}: {}", got.body);
        let to = got.location.unwrap();
        assert!(to.starts_with(REDIRECT), "{what}");
        assert_eq!(param(&to, "error").as_deref(), Some(error), "{what}");
        assert_eq!(param(&to, "iss"), Some(app.issuer_of(&r)), "{what}");
    }
}

#[tokio::test]
async fn loopback_redirects_match_on_any_port_and_state_is_optional() {
    let (app, _r, path) = setup().await;
    let client = app.register_public(&path).await;
    let p = pkce();
    let q = authorize_query(&client, &p, &[])
        .replace("53682", "41000")
        .replace("&state=st4te", "");
    let to = app.browser().authorize(&path, &q).await;
    assert!(
        to.starts_with("http://127.0.0.1:41000/callback?code="),
        "{to}"
    );
    assert_eq!(param(&to, "state"), None);
    // The token request repeats that exact URI.
    let (status, body) = app
        .token_request(
            &path,
            &[
                ("grant_type", "authorization_code"),
                ("code", &param(&to, "code").unwrap()),
                ("redirect_uri", "http://127.0.0.1:41000/callback"),
                ("client_id", &client),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_root_issuer_uses_the_only_server_when_resource_is_missing() {
    let (app, r, _) = setup().await;
    let client = app.register_public("").await;
    let p = pkce();
    let to = app
        .browser()
        .authorize("", &authorize_query(&client, &p, &[]))
        .await;
    assert_eq!(param(&to, "iss").as_deref(), Some(app.base.as_str()));
    let (status, body) = exchange(&app, "", &client, &param(&to, "code").unwrap(), &p).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], app.base.as_str());
    assert_eq!(c["aud"][0], r.url.as_str());
    // With two servers the root issuer needs `resource`.
    app.add_server("https://second.example/mcp", SigningAlg::RS256)
        .await;
    let got = app
        .browser()
        .get(&format!(
            "/oauth/authorize?{}",
            authorize_query(&client, &pkce(), &[])
        ))
        .await;
    assert_eq!(
        param(got.location.as_deref().unwrap(), "error").as_deref(),
        Some("invalid_target")
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account() {
    let app = TestApp::spawn_with(|c| c.sign_in_failures_per_account = 3).await;
    app.add_user(EMAIL, PASSWORD).await;
    let b = app.browser();
    for _ in 0..3 {
        let r = b.sign_in("/login", EMAIL, "wrong password").await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("Wrong email or password"));
    }
    let r = b.sign_in("/login", EMAIL, PASSWORD).await;
    assert_eq!(r.status, 429, "locked even with the right password");
    let r = b.sign_in("/login", "nobody@example.com", "whatever1").await;
    assert_eq!(r.status, 401, "other accounts are not locked");
}

#[tokio::test]
async fn sign_in_needs_the_form_csrf_cookie() {
    let app = TestApp::spawn().await;
    app.add_user(EMAIL, PASSWORD).await;
    let fresh = app.browser();
    let r = fresh
        .post(
            "/login",
            &[
                ("email".into(), EMAIL.into()),
                ("password".into(), PASSWORD.into()),
                ("csrf".into(), "guess".into()),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("expired"));
}

#[tokio::test]
async fn prompt_login_asks_again_and_prompt_none_never_shows_a_page() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let b = app.browser();
    // Signed in with remembered consent.
    b.authorize(
        &path,
        &authorize_query(&client, &pkce(), &[("scope", "todo:read")]),
    )
    .await;

    // prompt=login: back to the sign-in page, which returns without the login prompt.
    let got = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(
                &client,
                &pkce(),
                &[("scope", "todo:read"), ("prompt", "login")]
            )
        ))
        .await;
    assert_eq!(got.status, 303);
    let login = got.location.unwrap();
    assert!(login.starts_with("/login?"), "{login}");
    let return_to = param(&login, "return_to").unwrap();
    assert!(!return_to.contains("prompt"), "{return_to}");
    let signed = b.sign_in(&login, EMAIL, PASSWORD).await;
    let back = b.get(signed.location.as_deref().unwrap()).await;
    assert_eq!(back.status, 302, "consent is remembered: straight back");
    assert!(param(back.location.as_deref().unwrap(), "code").is_some());

    // prompt=none: a code when nothing needs asking, consent_required when something does.
    let quiet = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(
                &client,
                &pkce(),
                &[("scope", "todo:read"), ("prompt", "none")]
            )
        ))
        .await;
    assert!(param(quiet.location.as_deref().unwrap(), "code").is_some());
    let more = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(
                &client,
                &pkce(),
                &[("scope", "todo:write"), ("prompt", "none")]
            )
        ))
        .await;
    assert_eq!(more.status, 302);
    let to = more.location.unwrap();
    assert_eq!(param(&to, "error").as_deref(), Some("consent_required"));
    assert_eq!(param(&to, "iss"), Some(app.issuer_of(&r)));
    // Nobody signed in (another browser): login_required, no page.
    let nobody = app
        .browser()
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(&client, &pkce(), &[("prompt", "none")])
        ))
        .await;
    assert_eq!(nobody.status, 302);
    let to = nobody.location.unwrap();
    assert_eq!(param(&to, "error").as_deref(), Some("login_required"));
    // Both refusals are in the audit log with their step, as every refused authorization is.
    let refused: Vec<_> = app
        .audit_log()
        .await
        .into_iter()
        .filter(|e| e.event.as_str() == "authorization.refused" && e.details["step"] == "prompt")
        .map(|e| e.details["error"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(refused, ["consent_required", "login_required"]);
}

#[tokio::test]
async fn the_sign_in_page_names_the_mcp_server_the_request_is_for() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let continues_to = |body: &str| {
        body.split("to continue to <strong>")
            .nth(1)
            .and_then(|rest| rest.split("</strong>").next())
            .map(str::to_owned)
    };
    let sign_in_page = |issuer_path: String, extra: Vec<(&'static str, String)>| {
        let b = app.browser();
        let client = client.clone();
        async move {
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let q = authorize_query(&client, &pkce(), &extra);
            let to = b.get(&format!("{issuer_path}/oauth/authorize?{q}")).await;
            b.get(to.location.as_deref().unwrap()).await.body
        }
    };
    // Per-server issuer: from the path. Root issuer: from `resource`, by URL or id.
    let name = Some(r.name.clone());
    assert_eq!(
        continues_to(&sign_in_page(path.clone(), vec![]).await),
        name
    );
    let by_url = vec![("resource", r.url.as_str().to_owned())];
    assert_eq!(
        continues_to(&sign_in_page(String::new(), by_url).await),
        name
    );
    // Nothing to name: the plain page.
    let plain = app.browser().get("/login").await;
    assert_eq!(plain.status, 200);
    assert_eq!(continues_to(&plain.body), None);
    assert!(plain.body.contains("<h1>Sign in</h1>"));
}

#[tokio::test]
async fn a_revoked_consent_kills_its_tokens_and_is_asked_again() {
    let (app, r, path) = setup().await;
    let client = app.register_public(&path).await;
    let b = app.browser();
    let p = pkce();
    let q = authorize_query(&client, &p, &[("scope", "todo:read offline_access")]);
    let to = b.authorize(&path, &q).await;
    let (status, tokens) = exchange(&app, &path, &client, &param(&to, "code").unwrap(), &p).await;
    assert_eq!(status, 200, "{tokens}");
    let jti = claims(tokens["access_token"].as_str().unwrap())["jti"]
        .as_str()
        .unwrap()
        .to_owned();

    let person = gatehouse_core::admin::user(app.store.as_ref(), EMAIL)
        .await
        .unwrap();
    app.op()
        .revoke_consent(EMAIL, &client, r.id.as_str())
        .await
        .unwrap();
    let listed = gatehouse_core::admin::consents(
        app.store.as_ref(),
        &gatehouse_core::store::ConsentFilter {
            user: Some(person.id),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(listed, vec![]);

    // The refresh token is dead, the access token is in the revocation feed...
    let (status, refused) = app
        .token_request(
            &path,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", client.as_str()),
            ],
        )
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let feed: Value = app
        .http
        .get(format!("{}{path}/revocations", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(feed["tokens"][0]["jti"], jti.as_str());
    // ...and the same request shows the consent page again instead of a code.
    let again = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(&client, &pkce(), &[("scope", "todo:read offline_access")])
        ))
        .await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("wants to use"), "consent page");
}

#[tokio::test]
async fn step_up_asks_only_for_the_new_scope_and_a_refresh_never_widens() {
    let (app, _r, path) = setup().await;
    let b = app.browser();
    let union = "todo:read todo:write offline_access";
    // Hosts ask again with or without prompt=consent (the Python SDK sends it whenever it
    // asks for offline_access): the page splits new from allowed either way.
    let mut last = None;
    for prompt in [None, Some("consent")] {
        let client = app.register_public(&path).await;
        let p = pkce();
        let to = b
            .authorize(
                &path,
                &authorize_query(&client, &p, &[("scope", "todo:read offline_access")]),
            )
            .await;
        let (_, read) = exchange(&app, &path, &client, &param(&to, "code").unwrap(), &p).await;
        assert_eq!(read["scope"], "todo:read offline_access");

        // The MCP server answers 403 insufficient_scope for a write tool; the host asks again
        // for the union (SEP-835).
        let p2 = pkce();
        let mut extra = vec![("scope", union)];
        extra.extend(prompt.map(|p| ("prompt", p)));
        let consent = b
            .get(&format!(
                "{path}/oauth/authorize?{}",
                authorize_query(&client, &p2, &extra)
            ))
            .await;
        assert_eq!(consent.status, 200, "{}", consent.body);
        let (asked, allowed) = consent
            .body
            .split_once("You already allowed it to")
            .expect("the page shows what was allowed before");
        assert!(asked.contains("It asks to also be able to"), "{asked}");
        assert!(
            asked.contains("todo:write") && !asked.contains("<code>todo:read</code>"),
            "{prompt:?}: {asked}"
        );
        assert!(
            allowed.contains("todo:read") && allowed.contains("offline_access"),
            "{allowed}"
        );
        last = Some((client, read, p2, consent));
    }
    let (client, read, p2, consent) = last.unwrap();
    let to = b.decide(&consent, "allow").await.location.unwrap();
    let (status, both) = exchange(&app, &path, &client, &param(&to, "code").unwrap(), &p2).await;
    assert_eq!((status, both["scope"].as_str()), (200, Some(union)));

    // The first grant's refresh token may not widen to what the second grant got.
    let refresh = |rt: &str, scope: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", client.as_str()),
            ("scope", scope),
        ];
        let (app, path) = (&app, path.clone());
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            app.token_request(&path, &pairs).await
        }
    };
    let rt = read["refresh_token"].as_str().unwrap();
    let (status, wide) = refresh(rt, "todo:read todo:write").await;
    assert_eq!(
        (status, wide["error"].as_str()),
        (400, Some("invalid_scope")),
        "{wide}"
    );
    let (status, same) = refresh(rt, "todo:read").await;
    assert_eq!(
        (status, same["scope"].as_str()),
        (200, Some("todo:read")),
        "{same}"
    );
    // Asked again for exactly the union: consent covers it, no page.
    let again = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(&client, &pkce(), &[("scope", union)])
        ))
        .await;
    assert_eq!(again.status, 302);
}

#[tokio::test]
async fn signing_in_on_a_second_device_leaves_the_first_signed_in() {
    // One client id for every installation (a metadata document, or one registration):
    // a new authorization revokes nothing of an earlier one.
    let (app, _r, path) = setup().await;
    let client = app.register_public(&path).await;
    let mut refresh_tokens = Vec::new();
    for _device in 0..2 {
        let p = pkce();
        let to = app
            .browser()
            .authorize(
                &path,
                &authorize_query(&client, &p, &[("scope", "todo:read offline_access")]),
            )
            .await;
        let (status, body) = exchange(&app, &path, &client, &param(&to, "code").unwrap(), &p).await;
        assert_eq!(status, 200, "{body}");
        refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
    }
    for rt in &refresh_tokens {
        let (status, body) = app
            .token_request(
                &path,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt),
                    ("client_id", &client),
                ],
            )
            .await;
        assert_eq!(status, 200, "both devices stay signed in: {body}");
    }
}
