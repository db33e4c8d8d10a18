//! Protocol tests: the engine with the memory store and a fixed clock, no HTTP. Time moves by
//! advancing the clock, never by sleeping.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gatehouse_core::admin::Operator;
use gatehouse_core::audit::Recorder;
use gatehouse_core::clock::FixedClock;
use gatehouse_core::model::{NewResource, Resource, ScopeDef};
use gatehouse_core::params::FormParams;
use gatehouse_core::store::MemoryStore;
use gatehouse_core::{Engine, ErrorCode, Issuer, ResourceUri, ScopeSet, UnixTime};

const T0: i64 = 1_800_000_000;

struct World {
    engine: Engine,
    clock: Arc<FixedClock>,
    resource: Resource,
    basic: String,
}

async fn world(ttl: u32) -> World {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::new(T0));
    let mut new = NewResource::new(
        "To-do",
        ResourceUri::parse("https://todo.example/mcp").unwrap(),
        vec![ScopeDef::parse("todo:read").unwrap()],
    );
    new.token_ttl = Some(ttl);
    let audit = Recorder::default();
    let op = Operator::new(store.as_ref(), &audit, "test", UnixTime(T0));
    let resource = op.register_resource(new).await.unwrap();
    let (client, secret) = op
        .create_agent_client(
            resource.id.as_str(),
            "agent",
            ScopeSet::parse("todo:read").unwrap(),
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
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", client.id, secret.expose_secret()))
    );
    World {
        engine,
        clock,
        resource,
        basic,
    }
}

fn claims(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn introspect(w: &World, token: &str) -> serde_json::Value {
    let ctx = w.engine.issuer_context(None).await.unwrap().unwrap();
    let params = FormParams::from_pairs(vec![("token".into(), token.into())]);
    w.engine
        .introspect(&ctx, Some(&w.basic), &params)
        .await
        .unwrap()
}

#[tokio::test]
async fn token_times_come_from_the_clock_and_tokens_expire_with_it() {
    let w = world(120).await;
    let ctx = w
        .engine
        .issuer_context(Some(w.resource.id.as_str()))
        .await
        .unwrap()
        .unwrap();
    let grant = FormParams::from_pairs(vec![("grant_type".into(), "client_credentials".into())]);
    let t = w.engine.token(&ctx, Some(&w.basic), &grant).await.unwrap();
    assert_eq!(t.expires_in, 120);
    let c = claims(&t.access_token);
    assert_eq!(
        (c["iat"].as_i64(), c["nbf"].as_i64(), c["exp"].as_i64()),
        (Some(T0), Some(T0), Some(T0 + 120))
    );
    assert_eq!(
        c["iss"],
        format!("https://auth.example/resources/{}", w.resource.id)
    );

    assert_eq!(introspect(&w, &t.access_token).await["active"], true);
    w.clock.advance(119);
    assert_eq!(
        introspect(&w, &t.access_token).await["active"],
        true,
        "one second before exp"
    );
    w.clock.advance(1);
    assert_eq!(
        introspect(&w, &t.access_token).await["active"],
        false,
        "at exp the token is over"
    );
}

#[tokio::test]
async fn a_token_that_is_not_valid_yet_is_inactive() {
    let w = world(600).await;
    let ctx = w.engine.issuer_context(None).await.unwrap().unwrap();
    let grant = FormParams::from_pairs(vec![("grant_type".into(), "client_credentials".into())]);
    w.clock.advance(100);
    let t = w.engine.token(&ctx, Some(&w.basic), &grant).await.unwrap();
    w.clock.advance(-50);
    assert_eq!(
        introspect(&w, &t.access_token).await["active"],
        false,
        "nbf is 50 s in the future"
    );
}

#[tokio::test]
async fn an_unknown_issuer_and_an_unsupported_grant_are_refused() {
    let w = world(600).await;
    assert!(
        w.engine
            .issuer_context(Some("res_nothere"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        w.engine
            .issuer_context(Some("../etc"))
            .await
            .unwrap()
            .is_none()
    );
    let ctx = w.engine.issuer_context(None).await.unwrap().unwrap();
    let grant = FormParams::from_pairs(vec![("grant_type".into(), "password".into())]);
    let e = w
        .engine
        .token(&ctx, Some(&w.basic), &grant)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
}
