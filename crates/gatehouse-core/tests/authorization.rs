//! Protocol tests of the interactive flow: the engine with the memory store and a fixed clock.
//! Codes, grace windows and sessions expire by advancing the clock, never by sleeping.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::admin::Operator;
use gatehouse_core::audit::Recorder;
use gatehouse_core::authorize;
use gatehouse_core::clock::FixedClock;
use gatehouse_core::model::{NewResource, RefreshPolicy, ScopeDef};
use gatehouse_core::params::FormParams;
use gatehouse_core::password::Password;
use gatehouse_core::store::MemoryStore;
use gatehouse_core::token::TokenResponse;
use gatehouse_core::{
    Engine, ErrorCode, Issuer, IssuerContext, OAuthError, ResourceUri, UnixTime, User, registration,
};
use sha2::{Digest, Sha256};

const T0: i64 = 1_800_000_000;
const REDIRECT: &str = "http://127.0.0.1:5000/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct World {
    engine: Engine,
    clock: Arc<FixedClock>,
    ctx: IssuerContext,
    user: User,
    client: String,
}

async fn world(policy: RefreshPolicy) -> World {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::new(T0));
    let mut new = NewResource::new(
        "To-do",
        ResourceUri::parse("https://todo.example/mcp").unwrap(),
        vec![ScopeDef::parse("todo:read").unwrap()],
    );
    new.refresh_tokens = Some(policy);
    let audit = Recorder::default();
    let op = Operator::new(store.as_ref(), &audit, "test", UnixTime(T0));
    let r = op.register_resource(new).await.unwrap();
    let user = op
        .create_user(
            "ada@example.com",
            &Password::new_checked("correct horse").unwrap(),
            false,
        )
        .await
        .unwrap();
    let engine = Engine::start(
        Issuer::parse("https://auth.example").unwrap(),
        store,
        clock.clone(),
    )
    .await
    .unwrap();
    let ctx = engine
        .issuer_context(Some(r.id.as_str()))
        .await
        .unwrap()
        .unwrap();
    let reg = registration::register(
        &engine,
        &ctx,
        format!(r#"{{"redirect_uris":["{REDIRECT}"]}}"#).as_bytes(),
    )
    .await
    .unwrap();
    World {
        client: reg["client_id"].as_str().unwrap().to_owned(),
        engine,
        clock,
        ctx,
        user,
    }
}

fn form(pairs: &[(&str, &str)]) -> FormParams {
    FormParams::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// Authorizes `scope` for the person and returns the code.
async fn code(w: &World, scope: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let params = form(&[
        ("response_type", "code"),
        ("client_id", &w.client),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("scope", scope),
    ]);
    let req = authorize::validate(&w.engine, &w.ctx, &params)
        .await
        .unwrap();
    let url = authorize::approve(&w.engine, &w.user.id, &req)
        .await
        .unwrap();
    url.split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

async fn exchange(w: &World, code: &str) -> Result<TokenResponse, OAuthError> {
    w.engine
        .token(
            &w.ctx,
            None,
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("client_id", &w.client),
                ("code_verifier", VERIFIER),
            ]),
        )
        .await
}

async fn refresh(w: &World, token: &str) -> Result<TokenResponse, OAuthError> {
    w.engine
        .token(
            &w.ctx,
            None,
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", &w.client),
            ]),
        )
        .await
}

#[tokio::test]
async fn a_code_expires_after_sixty_seconds() {
    let w = world(RefreshPolicy::OfflineAccess).await;
    let fresh = code(&w, "todo:read").await;
    w.clock.advance(59);
    assert!(
        exchange(&w, &fresh).await.is_ok(),
        "valid until its 60th second"
    );
    let late = code(&w, "todo:read").await;
    w.clock.advance(60);
    let e = exchange(&w, &late).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn the_grace_window_ends_and_reuse_then_revokes() {
    let w = world(RefreshPolicy::OfflineAccess).await;
    let first = exchange(&w, &code(&w, "todo:read offline_access").await)
        .await
        .unwrap();
    let rt1 = first.refresh_token.unwrap();
    let second = refresh(&w, &rt1).await.unwrap();
    w.clock.advance(10);
    assert_eq!(
        refresh(&w, &rt1).await.unwrap(),
        second,
        "an identical retry within 10 s gets the same answer"
    );
    w.clock.advance(1);
    let e = refresh(&w, &rt1).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidGrant, "after the window: reuse");
    let e = refresh(&w, &second.refresh_token.unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidGrant, "the family is revoked");
}

#[tokio::test]
async fn refresh_tokens_follow_the_servers_policy() {
    let w = world(RefreshPolicy::OfflineAccess).await;
    let t = exchange(&w, &code(&w, "todo:read").await).await.unwrap();
    assert_eq!(t.refresh_token, None, "offline_access not asked");
    let t = exchange(&w, &code(&w, "todo:read offline_access").await)
        .await
        .unwrap();
    assert!(t.refresh_token.is_some());

    let w = world(RefreshPolicy::Always).await;
    let t = exchange(&w, &code(&w, "todo:read").await).await.unwrap();
    assert!(t.refresh_token.is_some(), "always");

    let w = world(RefreshPolicy::Never).await;
    let t = exchange(&w, &code(&w, "todo:read offline_access").await)
        .await
        .unwrap();
    assert_eq!(t.refresh_token, None, "never");
    assert_eq!(t.scope, "todo:read", "offline_access is not granted either");
    let meta = w.engine.metadata(&w.ctx).await.unwrap();
    assert_eq!(meta.scopes_supported, ["todo:read"], "nor advertised");
}

#[tokio::test]
async fn sessions_end_when_idle_or_old() {
    let w = world(RefreshPolicy::OfflineAccess).await;
    let s = w.engine.settings().clone();
    let token = w
        .engine
        .start_session(&w.user, gatehouse_core::signin::Method::Password)
        .await
        .unwrap();
    w.clock.advance(s.session_idle - 1);
    assert!(w.engine.session_user(&token).await.unwrap().is_some());
    w.clock.advance(s.session_idle + 1);
    assert!(
        w.engine.session_user(&token).await.unwrap().is_none(),
        "idle too long"
    );

    let token = w
        .engine
        .start_session(&w.user, gatehouse_core::signin::Method::Password)
        .await
        .unwrap();
    // Active every hour, but older than the absolute limit.
    let mut lived = 0;
    while lived <= s.session_max {
        w.clock.advance(3_600);
        lived += 3_600;
        if lived <= s.session_max {
            assert!(w.engine.session_user(&token).await.unwrap().is_some());
        }
    }
    assert!(
        w.engine.session_user(&token).await.unwrap().is_none(),
        "too old"
    );

    let token = w
        .engine
        .start_session(&w.user, gatehouse_core::signin::Method::Password)
        .await
        .unwrap();
    w.engine.end_session(&token).await.unwrap();
    assert!(
        w.engine.session_user(&token).await.unwrap().is_none(),
        "signed out"
    );
}

#[tokio::test]
async fn registrations_that_never_got_a_token_go_after_a_day() {
    let w = world(RefreshPolicy::OfflineAccess).await;
    let id = gatehouse_core::ClientId::parse(&w.client).unwrap();
    w.clock
        .advance(w.engine.settings().unused_registration_ttl - 1);
    w.engine.prune().await.unwrap();
    assert!(w.engine.catalog().client(&id).await.unwrap().is_some());
    w.clock.advance(2);
    w.engine.prune().await.unwrap();
    assert!(w.engine.catalog().client(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn used_registrations_expire_after_their_last_use() {
    let w = world(RefreshPolicy::OfflineAccess).await;
    let id = gatehouse_core::ClientId::parse(&w.client).unwrap();
    // Used within its first hour: the first use is recorded at once.
    w.clock.advance(600);
    let c = code(&w, "todo:read").await;
    exchange(&w, &c).await.unwrap();
    w.clock.advance(w.engine.settings().registration_ttl - 1);
    w.engine.prune().await.unwrap();
    assert!(w.engine.catalog().client(&id).await.unwrap().is_some());
    w.clock.advance(2);
    w.engine.prune().await.unwrap();
    assert!(w.engine.catalog().client(&id).await.unwrap().is_none());
}
