//! The guard fetches the issuer's keys through its metadata, refetches on an unknown `kid`
//! at most once per `jwks_min_refetch`, and does not refetch for tokens it already verified.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use gatehouse_core::UnixTime;
use gatehouse_core::keys::{KeyRing, SigningAlg, SigningKey, StoredKey};
use gatehouse_guard::{Guard, VerifyError};
use serde_json::json;

const RESOURCE: &str = "https://mcp.example.com/mcp";

/// An issuer serving RFC 8414 metadata and a JWKS of `key`, counting JWKS fetches.
async fn issuer(key: &StoredKey) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks: serde_json::Value = serde_json::from_str(
        KeyRing::load(std::slice::from_ref(key), key.activates_at)
            .unwrap()
            .jwks_json(),
    )
    .unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let meta = json!({ "issuer": base, "jwks_uri": format!("{base}/keys") });
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { axum::Json(meta) }),
        )
        .route(
            "/keys",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, fetches)
}

fn token(key: &SigningKey, issuer: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    key.sign_jwt(&json!({ "iss": issuer, "sub": "s", "aud": [RESOURCE], "iat": now, "nbf": now, "exp": now + 300, "scope": "todo:read" }))
}

fn generate() -> StoredKey {
    StoredKey::generate(SigningAlg::ES256, UnixTime(1)).unwrap()
}

#[tokio::test]
async fn unknown_kids_cannot_make_the_guard_hammer_the_issuer() {
    let stored = generate();
    let (base, fetches) = issuer(&stored).await;
    let guard = Guard::builder(RESOURCE, &base).build().unwrap();
    let good = token(&SigningKey::load(&stored).unwrap(), &base);
    assert!(guard.verify(&good).await.is_ok());
    assert!(guard.verify(&good).await.is_ok());
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "keys fetched once, repeats served from cache"
    );
    for _ in 0..5 {
        let forged = token(&SigningKey::load(&generate()).unwrap(), &base);
        assert_eq!(
            guard.verify(&forged).await.unwrap_err(),
            VerifyError::UnknownKey
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "no refetch within the 30 s minimum interval"
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_the_interval_has_passed() {
    let stored = generate();
    let (base, fetches) = issuer(&stored).await;
    let guard = Guard::builder(RESOURCE, &base)
        .jwks_timing(Duration::from_secs(3600), Duration::from_millis(100))
        .build()
        .unwrap();
    assert!(
        guard
            .verify(&token(&SigningKey::load(&stored).unwrap(), &base))
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    let forged = || token(&SigningKey::load(&generate()).unwrap(), &base);
    assert_eq!(
        guard.verify(&forged()).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one refetch after the interval"
    );
    assert_eq!(
        guard.verify(&forged()).await.unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "and not another right after it"
    );
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_an_invalid_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let guard = Guard::builder(RESOURCE, &base).build().unwrap();
    let t = token(&SigningKey::load(&generate()).unwrap(), &base);
    assert!(matches!(
        guard.verify(&t).await,
        Err(VerifyError::Unavailable(_))
    ));
}
