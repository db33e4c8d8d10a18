//! The store contract suite. Every [`Store`] implementation runs [`run_all`] in its tests;
//! each check below is a sentence of a trait's documented contract.

mod audit;
mod grants;
mod signin;

use crate::clock::UnixTime;
use crate::keys::{SigningAlg, StoredKey};
use crate::model::{Client, ClientKind, NewResource, Resource, ScopeDef, TokenAuthMethod};
use crate::redirect::RedirectUri;
use crate::secret::ClientSecret;
use crate::store::{RevokedToken, Store, StoreError};
use crate::types::{ClientId, ResourceId, ResourceUri, ScopeSet};

/// Runs every contract check against a fresh, empty store made by `make`.
pub async fn run_all<S: Store, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    resources_round_trip(&make().await).await;
    resource_urls_are_unique_canonically(&make().await).await;
    clients_round_trip_and_need_their_resource(&make().await).await;
    deleting_a_resource_deletes_its_clients(&make().await).await;
    keys_are_append_only_and_unique(&make().await).await;
    revocation_is_idempotent(&make().await).await;
    client_assertions_are_used_once(&make().await).await;
    the_revocation_feed_lists_what_concerns_one_server(&make().await).await;
    a_client_secret_is_replaced(&make().await).await;
    resources_are_updated_in_place(&make().await).await;
    change_version_moves_on_writes_only(&make().await).await;
    ping_answers(&make().await).await;
    registered_clients_round_trip(&make().await).await;
    grants::run_all(&make).await;
    audit::run_all(&make).await;
    signin::run_all(&make).await;
}

pub(crate) fn resource(url: &str) -> Resource {
    let mut new = NewResource::new(
        "Todo server",
        ResourceUri::parse(url).unwrap(),
        vec![
            ScopeDef::parse("todo:read=Read your todos").unwrap(),
            ScopeDef::parse("todo:write").unwrap(),
        ],
    );
    new.token_ttl = Some(900);
    new.signing_alg = Some(SigningAlg::ES256);
    new.refresh_tokens = Some(crate::model::RefreshPolicy::Always);
    let mut r = Resource::create(new, UnixTime(1_700_000_000)).unwrap();
    r.metadata_documents = false;
    r
}

pub(crate) fn client(resource: &ResourceId) -> Client {
    Client {
        id: ClientId::generate_agent(),
        resource: Some(resource.clone()),
        name: "Nightly agent".into(),
        kind: ClientKind::Agent,
        secret_hash: Some(ClientSecret::generate().hash()),
        scopes: ScopeSet::parse("todo:read").unwrap(),
        redirect_uris: vec![],
        auth_method: TokenAuthMethod::ClientSecretBasic,
        metadata: serde_json::json!({}),
        registration_token_hash: None,
        created_at: UnixTime(1_700_000_100),
        last_used_at: None,
        disabled_at: None,
        tokens_revoked_at: None,
    }
}

/// A self-registered public client, bound to `resource` or to none.
pub(crate) fn registered(resource: Option<&ResourceId>) -> Client {
    Client {
        id: ClientId::generate_registered(),
        resource: resource.cloned(),
        name: "MCP Inspector".into(),
        kind: ClientKind::Registered,
        secret_hash: None,
        scopes: ScopeSet::parse("todo:read offline_access").unwrap(),
        redirect_uris: vec![
            RedirectUri::parse("http://127.0.0.1:6276/oauth/callback").unwrap(),
            RedirectUri::parse("https://app.example/cb").unwrap(),
        ],
        auth_method: TokenAuthMethod::None,
        metadata: serde_json::json!({"client_name": "MCP Inspector", "software_id": "x", "extra": [1, {"a": null}]}),
        registration_token_hash: Some(ClientSecret::generate().hash()),
        created_at: UnixTime(1_700_000_200),
        last_used_at: None,
        disabled_at: None,
        tokens_revoked_at: None,
    }
}

async fn registered_clients_round_trip(store: &impl Store) {
    let a = resource("https://a.example/mcp");
    store.insert_resource(&a).await.unwrap();
    let bound = registered(Some(&a.id));
    let unbound = registered(None);
    store.insert_client(&bound).await.unwrap();
    store.insert_client(&unbound).await.unwrap();
    assert_eq!(store.client(&bound.id).await.unwrap(), Some(bound.clone()));
    assert_eq!(
        store.client(&unbound.id).await.unwrap(),
        Some(unbound.clone()),
        "a client bound to no MCP server round-trips"
    );
    assert_eq!(
        store.clients(Some(&a.id)).await.unwrap(),
        vec![bound.clone()]
    );
    let v = store.change_version().await.unwrap();
    store
        .touch_client(&bound.id, UnixTime(1_700_100_000))
        .await
        .unwrap();
    assert_eq!(
        store.client(&bound.id).await.unwrap().unwrap().last_used_at,
        Some(UnixTime(1_700_100_000))
    );
    assert_eq!(
        store.change_version().await.unwrap(),
        v,
        "touch_client does not move the change version"
    );
}

async fn resources_round_trip(store: &impl Store) {
    let a = resource("https://a.example/mcp");
    let b = resource("https://b.example/mcp");
    store.insert_resource(&a).await.unwrap();
    store.insert_resource(&b).await.unwrap();
    assert_eq!(
        store.resource(&a.id).await.unwrap(),
        Some(a.clone()),
        "every field round-trips"
    );
    assert_eq!(store.resource(&ResourceId::generate()).await.unwrap(), None);
    let ids: Vec<_> = store
        .resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![a.id.clone(), b.id.clone()], "oldest first");
    let dup = Resource {
        url: ResourceUri::parse("https://c.example/mcp").unwrap(),
        ..a.clone()
    };
    assert!(
        matches!(
            store.insert_resource(&dup).await,
            Err(StoreError::Conflict(_))
        ),
        "same id"
    );
}

async fn resource_urls_are_unique_canonically(store: &impl Store) {
    store
        .insert_resource(&resource("https://a.example/mcp"))
        .await
        .unwrap();
    let same = resource("HTTPS://A.example:443/mcp/");
    assert!(matches!(
        store.insert_resource(&same).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.resources().await.unwrap().len(),
        1,
        "nothing half-written"
    );
}

async fn clients_round_trip_and_need_their_resource(store: &impl Store) {
    let a = resource("https://a.example/mcp");
    let b = resource("https://b.example/mcp");
    store.insert_resource(&a).await.unwrap();
    store.insert_resource(&b).await.unwrap();
    let ca = client(&a.id);
    let cb = client(&b.id);
    store.insert_client(&ca).await.unwrap();
    store.insert_client(&cb).await.unwrap();
    assert_eq!(
        store.client(&ca.id).await.unwrap(),
        Some(ca.clone()),
        "every field round-trips"
    );
    assert_eq!(store.clients(Some(&a.id)).await.unwrap(), vec![ca.clone()]);
    assert_eq!(store.clients(None).await.unwrap().len(), 2);
    assert!(
        matches!(store.insert_client(&ca).await, Err(StoreError::Conflict(_))),
        "same id"
    );
    let orphan = client(&ResourceId::generate());
    assert!(matches!(
        store.insert_client(&orphan).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.delete_client(&ca.id, UnixTime(1)).await.unwrap());
    assert!(
        !store.delete_client(&ca.id, UnixTime(1)).await.unwrap(),
        "second delete finds nothing"
    );
    assert_eq!(store.client(&ca.id).await.unwrap(), None);
    let public = Client {
        id: ClientId::generate_agent(),
        secret_hash: None,
        ..cb
    };
    store.insert_client(&public).await.unwrap();
    assert_eq!(
        store.client(&public.id).await.unwrap().unwrap().secret_hash,
        None
    );
}

async fn deleting_a_resource_deletes_its_clients(store: &impl Store) {
    let a = resource("https://a.example/mcp");
    store.insert_resource(&a).await.unwrap();
    let c = client(&a.id);
    store.insert_client(&c).await.unwrap();
    assert!(store.delete_resource(&a.id).await.unwrap());
    assert_eq!(store.client(&c.id).await.unwrap(), None);
    assert!(!store.delete_resource(&a.id).await.unwrap());
}

async fn keys_are_append_only_and_unique(store: &impl Store) {
    let k1 = StoredKey::generate(SigningAlg::EdDSA, UnixTime(1)).unwrap();
    let k2 = StoredKey::generate(SigningAlg::ES256, UnixTime(2)).unwrap();
    store.insert_key(&k1).await.unwrap();
    store.insert_key(&k2).await.unwrap();
    assert_eq!(
        store.keys().await.unwrap(),
        vec![k1.clone(), k2],
        "round-trip, oldest first"
    );
    assert!(matches!(
        store.insert_key(&k1).await,
        Err(StoreError::Conflict(_))
    ));

    // A successor is stored unless one of its algorithm activates from the given time.
    let mut next = StoredKey::generate(SigningAlg::EdDSA, UnixTime(3)).unwrap();
    next.activates_at = UnixTime(50);
    assert!(
        !store.insert_key_unless(&next, UnixTime(1)).await.unwrap(),
        "k1 activates at 1"
    );
    assert!(store.insert_key_unless(&next, UnixTime(2)).await.unwrap());
    let mut again = StoredKey::generate(SigningAlg::EdDSA, UnixTime(4)).unwrap();
    again.activates_at = UnixTime(60);
    assert!(
        !store.insert_key_unless(&again, UnixTime(5)).await.unwrap(),
        "next is pending"
    );
    let first = StoredKey::generate(SigningAlg::RS256, UnixTime(4)).unwrap();
    assert!(
        store
            .insert_key_unless(&first, UnixTime(i64::MIN))
            .await
            .unwrap(),
        "no RS256 yet"
    );
    assert_eq!(store.keys().await.unwrap().len(), 4);
}

async fn revocation_is_idempotent(store: &impl Store) {
    let t = RevokedToken {
        jti: "jti1".into(),
        resource: ResourceId::generate(),
        client: ClientId::generate_agent(),
        expires_at: UnixTime(10),
        revoked_at: UnixTime(5),
    };
    assert!(!store.is_token_revoked("jti1").await.unwrap());
    store.revoke_token(&t).await.unwrap();
    store
        .revoke_token(&RevokedToken {
            revoked_at: UnixTime(6),
            ..t
        })
        .await
        .unwrap();
    assert!(store.is_token_revoked("jti1").await.unwrap());
    assert!(!store.is_token_revoked("jti2").await.unwrap());
}

async fn client_assertions_are_used_once(store: &impl Store) {
    let (a, b) = (ClientId::generate_agent(), ClientId::generate_agent());
    let (now, exp) = (UnixTime(100), UnixTime(400));
    assert!(
        store
            .use_client_assertion(&a, "j1", exp, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_client_assertion(&a, "j1", exp, UnixTime(399))
            .await
            .unwrap(),
        "a replay before it expires"
    );
    assert!(
        store
            .use_client_assertion(&b, "j1", exp, now)
            .await
            .unwrap(),
        "jti is unique per client"
    );
    assert!(
        store
            .use_client_assertion(&a, "j1", UnixTime(700), exp)
            .await
            .unwrap(),
        "the id of an expired assertion may be used again"
    );
    assert!(
        !store
            .use_client_assertion(&a, "j1", UnixTime(700), exp)
            .await
            .unwrap()
    );
    let pruned = store
        .prune(&crate::records::Prune {
            now: UnixTime(700),
            sessions_idle_before: UnixTime(0),
            sessions_created_before: UnixTime(0),
            registrations_unused_before: UnixTime(0),
            registrations_never_used_before: UnixTime(0),
            audit_before: UnixTime(0),
            limit: 1000,
        })
        .await
        .unwrap();
    assert!(
        pruned.deleted >= 2,
        "expired assertions are pruned: {pruned:?}"
    );
    assert!(
        store
            .use_client_assertion(&a, "j1", UnixTime(900), UnixTime(700))
            .await
            .unwrap()
    );
}

async fn the_revocation_feed_lists_what_concerns_one_server(store: &impl Store) {
    let (a, b) = (
        resource("https://a.example/mcp"),
        resource("https://b.example/mcp"),
    );
    store.insert_resource(&a).await.unwrap();
    store.insert_resource(&b).await.unwrap();
    let token = |jti: &str, r: &Resource, revoked: i64, expires: i64| RevokedToken {
        jti: jti.into(),
        resource: r.id.clone(),
        client: ClientId::generate_agent(),
        expires_at: UnixTime(expires),
        revoked_at: UnixTime(revoked),
    };
    for t in [
        token("new-a", &a, 100, 1_000),
        token("old-a", &a, 50, 1_000),
        token("expired-a", &a, 100, 90),
        token("new-b", &b, 100, 1_000),
    ] {
        store.revoke_token(&t).await.unwrap();
    }
    let (of_a, of_root, of_b) = (client(&a.id), registered(None), client(&b.id));
    for c in [&of_a, &of_root, &of_b] {
        store.insert_client(c).await.unwrap();
    }
    store.delete_client(&of_a.id, UnixTime(60)).await.unwrap();
    store
        .delete_client(&of_root.id, UnixTime(70))
        .await
        .unwrap();
    store.delete_client(&of_b.id, UnixTime(80)).await.unwrap();
    assert!(!store.delete_client(&of_a.id, UnixTime(90)).await.unwrap());

    let feed = store
        .revocations_since(&a.id, UnixTime(60), UnixTime(95))
        .await
        .unwrap();
    assert_eq!(
        feed.tokens
            .iter()
            .map(|t| t.jti.as_str())
            .collect::<Vec<_>>(),
        ["new-a"],
        "this server's, revoked since, unexpired"
    );
    assert_eq!(
        feed.clients.iter().map(|c| &c.client).collect::<Vec<_>>(),
        [&of_a.id, &of_root.id],
        "its clients and the root issuer's, oldest first"
    );
    assert_eq!(feed.clients[0].resource.as_ref(), Some(&a.id));
    assert_eq!(feed.clients[1].resource, None);
    assert_eq!(feed.clients[0].revoked_at, UnixTime(60));
    assert_eq!(
        feed.clients[0].expires_at,
        UnixTime(60 + crate::store::GRANT_RETENTION_SECS)
    );
    let later = store
        .revocations_since(&a.id, UnixTime(65), UnixTime(95))
        .await
        .unwrap();
    assert_eq!(later.clients.len(), 1, "since is inclusive and narrows");
    let much_later = UnixTime(60 + crate::store::GRANT_RETENTION_SECS);
    let gone = store
        .revocations_since(&a.id, UnixTime(0), much_later)
        .await
        .unwrap();
    assert!(gone.clients.iter().all(|c| c.client != of_a.id), "expired");
}

async fn resources_are_updated_in_place(store: &impl Store) {
    let a = resource("https://a.example/mcp");
    let b = resource("https://b.example/mcp");
    store.insert_resource(&a).await.unwrap();
    store.insert_resource(&b).await.unwrap();
    let v = store.change_version().await.unwrap();
    let changed = Resource {
        name: "Renamed".into(),
        url: ResourceUri::parse("https://a2.example/mcp").unwrap(),
        token_ttl: 120,
        dynamic_registration: false,
        created_at: UnixTime(999_999),
        ..a.clone()
    };
    assert!(store.update_resource(&changed).await.unwrap());
    let got = store.resource(&a.id).await.unwrap().unwrap();
    assert_eq!(
        got,
        Resource {
            created_at: a.created_at,
            ..changed.clone()
        },
        "every field but the creation time"
    );
    assert_ne!(
        store.change_version().await.unwrap(),
        v,
        "caches must reload"
    );
    let clash = Resource {
        url: ResourceUri::parse("https://B.example/mcp").unwrap(),
        ..changed.clone()
    };
    assert!(matches!(
        store.update_resource(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.resource(&a.id).await.unwrap().unwrap().url,
        changed.url
    );
    let missing = Resource {
        id: ResourceId::generate(),
        url: ResourceUri::parse("https://c.example/mcp").unwrap(),
        ..a
    };
    assert!(!store.update_resource(&missing).await.unwrap());
}

async fn a_client_secret_is_replaced(store: &impl Store) {
    let r = resource("https://a.example/mcp");
    store.insert_resource(&r).await.unwrap();
    let c = client(&r.id);
    store.insert_client(&c).await.unwrap();
    let v = store.change_version().await.unwrap();
    let new = ClientSecret::generate().hash();
    assert!(store.replace_client_secret(&c.id, &new).await.unwrap());
    assert_eq!(
        store.client(&c.id).await.unwrap().unwrap().secret_hash,
        Some(new.clone())
    );
    assert_ne!(
        store.change_version().await.unwrap(),
        v,
        "caches must reload"
    );
    let missing = ClientId::generate_agent();
    assert!(!store.replace_client_secret(&missing, &new).await.unwrap());
}

async fn change_version_moves_on_writes_only(store: &impl Store) {
    let v0 = store.change_version().await.unwrap();
    let a = resource("https://a.example/mcp");
    store.insert_resource(&a).await.unwrap();
    let v1 = store.change_version().await.unwrap();
    assert_ne!(v0, v1, "insert_resource");
    store.resources().await.unwrap();
    assert_eq!(
        store.change_version().await.unwrap(),
        v1,
        "reads do not move it"
    );
    let c = client(&a.id);
    store.insert_client(&c).await.unwrap();
    let v2 = store.change_version().await.unwrap();
    assert_ne!(v1, v2, "insert_client");
    store.delete_client(&c.id, UnixTime(1)).await.unwrap();
    let v3 = store.change_version().await.unwrap();
    assert_ne!(v2, v3, "delete_client");
    store
        .insert_key(&StoredKey::generate(SigningAlg::EdDSA, UnixTime(1)).unwrap())
        .await
        .unwrap();
    let v4 = store.change_version().await.unwrap();
    assert_ne!(v3, v4, "insert_key");
    store.delete_resource(&a.id).await.unwrap();
    assert_ne!(v4, store.change_version().await.unwrap(), "delete_resource");
}

async fn ping_answers(store: &impl Store) {
    store.ping().await.unwrap();
}
