//! `private_key_jwt` (RFC 7523): ChatGPT's metadata document with a `jwks_uri` the test
//! serves, a DCR client and an agent with their keys, and every assertion that must fail.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::keys::{KeyRing, SigningAlg, SigningKey, StoredKey};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, claims, now};
use crate::people::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's key pair: signs assertions; `jwks` is its public half.
struct ClientKey {
    signer: SigningKey,
    jwks: Value,
}

fn client_key(alg: SigningAlg) -> ClientKey {
    let stored = StoredKey::generate(alg, SystemClock.now()).unwrap();
    let ring = KeyRing::load(std::slice::from_ref(&stored), SystemClock.now()).unwrap();
    ClientKey {
        signer: SigningKey::load(&stored).unwrap(),
        jwks: serde_json::from_str(ring.jwks_json()).unwrap(),
    }
}

impl ClientKey {
    fn assertion(&self, client: &str, aud: &str) -> String {
        self.sign(json!({
            "iss": client, "sub": client, "aud": aud,
            "iat": now(), "exp": now() + 60,
            "jti": gatehouse_core::random::secret("jti_"),
        }))
    }

    fn sign(&self, claims: Value) -> String {
        self.signer.sign_jwt(&claims)
    }
}

/// Serves `/jwks.json` (counting requests) and `/client.json`, ChatGPT's document shape.
struct Host {
    addr: SocketAddr,
    jwks: Arc<Mutex<Value>>,
    jwks_hits: Arc<AtomicUsize>,
}

impl Host {
    async fn start(jwks: Value, methods: Value) -> Host {
        let jwks = Arc::new(Mutex::new(jwks));
        let hits = Arc::new(AtomicUsize::new(0));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (set, counter) = (jwks.clone(), hits.clone());
        let routes = Router::new()
            .route(
                "/jwks.json",
                get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = set.lock().unwrap().to_string();
                    async move { ([(header::CONTENT_TYPE, "application/json")], body) }
                }),
            )
            .route(
                "/oauth/client.json",
                get(move || async move {
                    axum::Json(json!({
                        "client_id": format!("http://{addr}/oauth/client.json"),
                        "client_name": "ChatGPT",
                        "redirect_uris": [REDIRECT],
                        "grant_types": ["authorization_code", "refresh_token"],
                        "token_endpoint_auth_methods_supported": methods,
                        "jwks_uri": format!("http://{addr}/jwks.json"),
                        "x_openai_app": {"id": "ignored"},
                    }))
                }),
            );
        tokio::spawn(async move { axum::serve(l, routes).await });
        Host {
            addr,
            jwks,
            jwks_hits: hits,
        }
    }

    fn client_id(&self) -> String {
        format!("http://{}/oauth/client.json", self.addr)
    }
}

/// A code for `client` after the person signs in and allows.
async fn code_for(app: &TestApp, path: &str, client: &str, p: &Pkce) -> String {
    let b = app.browser();
    let first = b
        .get(&format!(
            "{path}/oauth/authorize?{}",
            authorize_query(client, p, &[])
        ))
        .await;
    let signed = b
        .sign_in(first.location.as_deref().unwrap(), EMAIL, PASSWORD)
        .await;
    let consent = b.get(signed.location.as_deref().unwrap()).await;
    // Consent given before is not asked again.
    if let Some(to) = consent
        .location
        .as_deref()
        .filter(|l| l.starts_with(REDIRECT))
    {
        return param(to, "code").unwrap();
    }
    assert_eq!(consent.status, 200, "{}", consent.body);
    let to = b.decide(&consent, "allow").await.location.unwrap();
    param(&to, "code").unwrap()
}

#[tokio::test]
async fn chatgpt_signs_in_with_private_key_jwt_and_a_cached_key_costs_no_fetch() {
    let app = TestApp::spawn_with(|c| c.dev_loopback_metadata_documents = true).await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    app.add_user(EMAIL, PASSWORD).await;
    let path = format!("/resources/{}", r.id);
    let issuer = app.issuer_of(&r);
    let key = client_key(SigningAlg::RS256);
    // The shared document lists both methods: Gatehouse picks private_key_jwt.
    let host = Host::start(key.jwks.clone(), json!(["none", "private_key_jwt"])).await;
    let id = host.client_id();

    let p = pkce();
    let code = code_for(&app, &path, &id, &p).await;
    let exchange = |code: String, assertion: Option<String>| {
        let (app, path, id, verifier) = (&app, &path, &id, p.verifier.clone());
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", REDIRECT.to_owned()),
                ("client_id", id.clone()),
                ("code_verifier", verifier),
            ];
            if let Some(a) = assertion {
                form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                form.push(("client_assertion", a));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.token_request(path, &form).await
        }
    };
    // CIMD-6: a client with keys must use them; its id alone is not enough.
    let (status, body) = exchange(code.clone(), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = exchange(code, Some(key.assertion(&id, &issuer))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["client_id"],
        id.as_str()
    );
    assert!(
        body["scope"].is_string(),
        "every token response names its scope"
    );
    let fetched = host.jwks_hits.load(Ordering::SeqCst);
    assert_eq!(fetched, 1);

    // The refresh authenticates the same way, with the cached key: no fetch.
    let refresh = body["refresh_token"].as_str().map(str::to_owned);
    if let Some(refresh) = refresh {
        let a = key.assertion(&id, &format!("{issuer}/oauth/token"));
        let (status, body) = app
            .token_request(
                &path,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &a),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let code = code_for(&app, &path, &id, &p).await;
    let (status, _) = exchange(code, Some(key.assertion(&id, &issuer))).await;
    assert_eq!(status, 200);
    assert_eq!(
        host.jwks_hits.load(Ordering::SeqCst),
        1,
        "the key set was cached"
    );

    // The host rotates its key: an unknown kid refetches the set (at most every 30 s).
    let rotated = client_key(SigningAlg::ES256);
    *host.jwks.lock().unwrap() = rotated.jwks.clone();
    let code = code_for(&app, &path, &id, &p).await;
    let (status, body) = exchange(code.clone(), Some(rotated.assertion(&id, &issuer))).await;
    // The copy is younger than 30 s: not refetched yet, so refused, and said why.
    assert_eq!(status, 401, "{body}");
    assert_eq!(host.jwks_hits.load(Ordering::SeqCst), 1);
    let reasons = app.audited_reasons("client_assertion.refused", &id).await;
    assert!(
        reasons.last().unwrap().contains("no ES256 key"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn bad_assertions_are_refused_and_audited_with_their_reason() {
    let app = TestApp::spawn_with(|c| c.dev_loopback_metadata_documents = true).await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::RS256)
        .await;
    let path = format!("/resources/{}", r.id);
    let issuer = app.issuer_of(&r);
    let key = client_key(SigningAlg::RS256);
    // A per-app document lists private_key_jwt only.
    let host = Host::start(key.jwks.clone(), json!(["private_key_jwt"])).await;
    let id = host.client_id();
    let other = client_key(SigningAlg::RS256);
    let kid = key.jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let base = |extra: Value| {
        let mut c = json!({
            "iss": id, "sub": id, "aud": issuer, "iat": now(), "exp": now() + 60,
            "jti": gatehouse_core::random::secret("jti_"),
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let unsigned = |alg: &str, claims: &Value, key: &[u8]| {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": kid}).to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        if alg == "none" {
            return format!("{h}.{p}.");
        }
        use hmac_sig::sign;
        format!(
            "{h}.{p}.{}",
            URL_SAFE_NO_PAD.encode(sign(key, format!("{h}.{p}").as_bytes()))
        )
    };
    let replayed = key.assertion(&id, &issuer);
    let public_n = key.jwks["keys"][0]["n"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    // Expired 10 s ago: still inside the 30 s skew, so its jti must still be remembered.
    let late = key.sign(base(json!({"exp": now() - 10})));
    let cases: Vec<(&str, String, &str)> = vec![
        ("first use", replayed.clone(), "code"),
        ("replay", replayed, "used before"),
        ("late first use", late.clone(), "code"),
        ("late replay", late, "used before"),
        ("another key", other.sign(base(json!({}))), "no RS256 key"),
        (
            "wrong aud",
            key.sign(base(json!({"aud": "https://elsewhere.example"}))),
            "aud",
        ),
        (
            "aud array without us",
            key.sign(base(json!({"aud": ["https://a.example"]}))),
            "aud",
        ),
        (
            "far exp",
            key.sign(base(json!({"exp": now() + 3600}))),
            "ahead",
        ),
        (
            "expired",
            key.sign(base(json!({"exp": now() - 120}))),
            "expired",
        ),
        ("no jti", key.sign(base(json!({"jti": null}))), "no jti"),
        (
            "iss differs",
            key.sign(base(json!({"iss": "https://evil.example/c.json"}))),
            "iss",
        ),
        (
            "iss an array holding the id",
            key.sign(base(json!({"iss": [id, "https://evil.example/c.json"]}))),
            "not a valid JWT",
        ),
        (
            "alg none",
            unsigned("none", &base(json!({})), b""),
            "alg `none`",
        ),
        (
            "HMAC with the public key",
            unsigned("HS256", &base(json!({})), &public_n),
            "alg `HS256`",
        ),
        (
            "jti with a NUL",
            key.sign(base(json!({"jti": "a\u{0}b"}))),
            "control characters",
        ),
        ("not a JWT", "abc".into(), "not a JWT"),
    ];
    for (case, assertion, why) in cases {
        let (status, body) = app
            .token_request(
                &path,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "not-a-code"),
                    ("redirect_uri", REDIRECT),
                    ("client_id", &id),
                    ("code_verifier", &pkce().verifier),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ],
            )
            .await;
        if why == "code" {
            // Authenticated: the grant itself fails on the made-up code.
            assert_eq!(body["error"], "invalid_grant", "{case}: {body}");
            continue;
        }
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{case}"
        );
        let reasons = app.audited_reasons("client_assertion.refused", &id).await;
        let last = reasons.last().map(String::as_str).unwrap_or_default();
        assert!(
            last.contains(why),
            "{case}: audited {last:?}, expected {why:?}"
        );
    }
    // The assertions themselves are nowhere in the audit log.
    let log = serde_json::to_string(
        &app.audit_log()
            .await
            .iter()
            .map(|e| e.details.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(!log.contains("eyJ"), "no JWT in the audit log");
    // client_secret_jwt is not offered, and a secret with an assertion is two methods.
    let (status, body) = app
        .token_request(
            &path,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "x"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &key.assertion(&id, &issuer)),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = app
        .token_request(
            &path,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:example:saml"),
                ("client_assertion", "x"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

/// HMAC-SHA256, to forge the assertion an attacker would make with a public key as secret.
mod hmac_sig {
    pub fn sign(key: &[u8], data: &[u8]) -> Vec<u8> {
        aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
            data,
        )
        .as_ref()
        .to_vec()
    }
}

#[tokio::test]
async fn registered_clients_and_agents_sign_with_their_keys() {
    let app = TestApp::spawn().await;
    let r = app
        .add_server("http://127.0.0.1:8001/mcp", SigningAlg::ES256)
        .await;
    let path = format!("/resources/{}", r.id);
    let issuer = app.issuer_of(&r);
    let key = client_key(SigningAlg::EdDSA);

    // An agent created with a key set (`gatehouse clients add --jwks-file`).
    let agent = app
        .op()
        .create_agent_client_with_keys(
            r.id.as_str(),
            "signing agent",
            gatehouse_core::ScopeSet::parse("todo:read").unwrap(),
            json!({ "jwks": key.jwks }),
        )
        .await
        .unwrap();
    app.engine.refresh().await.unwrap();
    let id = agent.id.to_string();
    let a = key.assertion(&id, &format!("{issuer}/oauth/token"));
    let (status, body) = app
        .token_request(
            &path,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &a),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "todo:read");
    // The agent has no secret: Basic with anything is refused.
    let (status, _) = app
        .token_request(
            &path,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "guess"),
            ],
        )
        .await;
    assert_eq!(status, 401);
    // Nor can the operator give it one: it would become a second way in beside its keys.
    let refused = app.op().rotate_client_secret(&id).await.unwrap_err();
    assert!(refused.to_string().contains("private_key_jwt"), "{refused}");

    // DCR with a key set: no secret is issued, and the method is recorded.
    let reg: Value = app
        .http
        .post(format!("{}{path}/oauth/register", app.base))
        .json(&json!({"client_name": "Signer", "redirect_uris": [REDIRECT], "jwks": key.jwks}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reg["token_endpoint_auth_method"], "private_key_jwt",
        "{reg}"
    );
    assert!(reg.get("client_secret").is_none());
    for bad in [
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": [REDIRECT], "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
        json!({"redirect_uris": [REDIRECT], "jwks": key.jwks, "jwks_uri": "https://a.example/j"}),
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_jwt"}),
    ] {
        let resp = app
            .http
            .post(format!("{}{path}/oauth/register", app.base))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{bad}");
    }
}
