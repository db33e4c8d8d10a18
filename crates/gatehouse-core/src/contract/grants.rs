//! Contract checks for people, sessions, consents, grants, codes and refresh tokens.

use super::{registered, resource};
use crate::clock::UnixTime;
use crate::keys::{SigningAlg, StoredKey};
use crate::model::{ApiKey, User};
use crate::records::{
    CodeRecord, Consent, Grant, Issuance, IssuedAccess, Prune, RefreshRecord, RetryAnswer,
    Rotation, Session,
};
use crate::secret::SecretHash;
use crate::signin::Method;
use crate::store::{ConsentFilter, Store, StoreError};
use crate::types::{ApiKeyId, ClientId, ConnectionId, GrantId, ResourceId, ScopeSet, UserId};

const T0: i64 = 1_700_000_000;

pub(super) async fn run_all<S: Store, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    users_round_trip_with_unique_emails(&make().await).await;
    sessions_round_trip(&make().await).await;
    consent_is_replaced(&make().await).await;
    codes_are_single_use(&make().await).await;
    issuance_and_rotation_are_atomic(&make().await).await;
    revoking_a_grant_revokes_its_access_tokens(&make().await).await;
    deleting_a_user_or_client_revokes_their_grants(&make().await).await;
    prune_removes_what_expired(&make().await).await;
    concurrent_writers_all_succeed(&make().await).await;
    races_have_one_winner(&make().await).await;
    revoking_a_consent_revokes_its_grants(&make().await).await;
    admins_and_their_api_keys(&make().await).await;
    disabling_clients_and_people_passwords_and_sessions(&make().await).await;
}

fn user(email: &str) -> User {
    User {
        id: UserId::generate(),
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        admin: false,
        created_at: UnixTime(T0),
        disabled_at: None,
    }
}

/// A resource, a client, a user and a grant with its code, all stored.
struct Fixture {
    resource: ResourceId,
    user: User,
    grant: Grant,
    code: CodeRecord,
}

async fn fixture(store: &impl Store) -> Fixture {
    let r = resource("https://a.example/mcp");
    store.insert_resource(&r).await.unwrap();
    let c = registered(Some(&r.id));
    store.insert_client(&c).await.unwrap();
    let u = user("ada@example.com");
    store.insert_user(&u).await.unwrap();
    let grant = Grant {
        id: GrantId::generate(),
        client: c.id.clone(),
        user: u.id.clone(),
        resource: r.id.clone(),
        issuer: "http://127.0.0.1:9000".into(),
        scopes: ScopeSet::parse("todo:read offline_access").unwrap(),
        created_at: UnixTime(T0),
        revoked_at: None,
    };
    let code = CodeRecord {
        hash: SecretHash::of("ghc_code"),
        grant: grant.id.clone(),
        redirect_uri: "http://127.0.0.1:5000/cb".into(),
        redirect_uri_sent: true,
        challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        expires_at: UnixTime(T0 + 60),
        used_at: None,
    };
    store.insert_code(&grant, &code).await.unwrap();
    Fixture {
        resource: r.id,
        user: u,
        grant,
        code,
    }
}

fn refresh(grant: &GrantId, token: &str, at: i64) -> RefreshRecord {
    RefreshRecord {
        hash: SecretHash::of(token),
        grant: grant.clone(),
        created_at: UnixTime(at),
        expires_at: UnixTime(at + 1000),
        rotated_at: None,
        retry: None,
    }
}

fn issue(grant: &GrantId, jti: &str, new: Option<&str>, old: Option<&str>, at: i64) -> Issuance {
    Issuance {
        grant: grant.clone(),
        access: IssuedAccess {
            jti: jti.into(),
            expires_at: UnixTime(at + 300),
        },
        refresh: new.map(|t| refresh(grant, t, at)),
        rotates: old.map(|t| Rotation {
            old: SecretHash::of(t),
            at: UnixTime(at),
            retry: Some(RetryAnswer {
                request_hash: SecretHash::of("request"),
                sealed: vec![1, 2, 3],
            }),
        }),
    }
}

async fn users_round_trip_with_unique_emails(store: &impl Store) {
    let a = user("ada@example.com");
    store.insert_user(&a).await.unwrap();
    assert_eq!(store.user(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.user_by_email("ada@example.com").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.user_by_email("bob@example.com").await.unwrap(), None);
    let again = user("ada@example.com");
    assert!(matches!(
        store.insert_user(&again).await,
        Err(StoreError::Conflict(_))
    ));
    store.insert_user(&user("bob@example.com")).await.unwrap();
    let emails: Vec<_> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(
        emails,
        ["ada@example.com", "bob@example.com"],
        "oldest first"
    );
}

async fn sessions_round_trip(store: &impl Store) {
    let u = user("ada@example.com");
    store.insert_user(&u).await.unwrap();
    let s = Session {
        hash: SecretHash::of("cookie"),
        user: u.id.clone(),
        created_at: UnixTime(T0),
        last_seen_at: UnixTime(T0),
        method: Method::Connection(ConnectionId::parse("conn_0123456789abcdefghjk").unwrap()),
    };
    store.insert_session(&s).await.unwrap();
    assert_eq!(store.session(&s.hash).await.unwrap(), Some(s.clone()));
    store
        .touch_session(&s.hash, UnixTime(T0 + 90))
        .await
        .unwrap();
    assert_eq!(
        store.session(&s.hash).await.unwrap().unwrap().last_seen_at,
        UnixTime(T0 + 90)
    );
    let orphan = Session {
        hash: SecretHash::of("other"),
        user: UserId::generate(),
        ..s.clone()
    };
    assert!(matches!(
        store.insert_session(&orphan).await,
        Err(StoreError::Conflict(_))
    ));
    store.delete_session(&s.hash).await.unwrap();
    store.delete_session(&s.hash).await.unwrap();
    assert_eq!(store.session(&s.hash).await.unwrap(), None);
}

async fn consent_is_replaced(store: &impl Store) {
    let f = fixture(store).await;
    let c = Consent {
        user: f.user.id.clone(),
        client: f.grant.client.clone(),
        resource: f.resource.clone(),
        scopes: ScopeSet::parse("todo:read").unwrap(),
        granted_at: UnixTime(T0),
    };
    store.save_consent(&c).await.unwrap();
    let wider = Consent {
        scopes: ScopeSet::parse("todo:read todo:write").unwrap(),
        granted_at: UnixTime(T0 + 5),
        ..c.clone()
    };
    store.save_consent(&wider).await.unwrap();
    assert_eq!(
        store
            .consent(&c.user, &c.client, &c.resource)
            .await
            .unwrap(),
        Some(wider)
    );
    assert_eq!(
        store
            .consent(&UserId::generate(), &c.client, &c.resource)
            .await
            .unwrap(),
        None
    );
}

async fn codes_are_single_use(store: &impl Store) {
    let f = fixture(store).await;
    assert_eq!(
        store.grant(&f.grant.id).await.unwrap(),
        Some(f.grant.clone())
    );
    let first = store
        .take_code(&f.code.hash, UnixTime(T0 + 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, f.code, "the first use sees the code unused");
    let second = store
        .take_code(&f.code.hash, UnixTime(T0 + 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second.used_at,
        Some(UnixTime(T0 + 1)),
        "later uses see the first"
    );
    assert_eq!(
        store
            .take_code(&SecretHash::of("nope"), UnixTime(T0))
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.insert_code(&f.grant, &f.code).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn issuance_and_rotation_are_atomic(store: &impl Store) {
    let f = fixture(store).await;
    let g = &f.grant.id;
    store
        .record_issue(&issue(g, "j1", Some("rt1"), None, T0))
        .await
        .unwrap();
    let rt1 = store
        .refresh_token(&SecretHash::of("rt1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rt1, refresh(g, "rt1", T0), "round-trips");
    store
        .record_issue(&issue(g, "j2", Some("rt2"), Some("rt1"), T0 + 10))
        .await
        .unwrap();
    let rt1 = store
        .refresh_token(&SecretHash::of("rt1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rt1.rotated_at, Some(UnixTime(T0 + 10)));
    assert_eq!(rt1.retry.as_ref().unwrap().sealed, vec![1, 2, 3]);
    // A second rotation of rt1 fails and records nothing.
    assert!(matches!(
        store
            .record_issue(&issue(g, "j3", Some("rt3"), Some("rt1"), T0 + 11))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.refresh_token(&SecretHash::of("rt3")).await.unwrap(),
        None,
        "nothing half-written"
    );
    store.revoke_grant(g, UnixTime(T0 + 12)).await.unwrap();
    assert!(
        !store.is_token_revoked("j3").await.unwrap(),
        "j3 was never recorded"
    );
    assert!(matches!(
        store
            .record_issue(&issue(g, "j4", Some("rt4"), Some("rt2"), T0 + 13))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .refresh_token(&SecretHash::of("rt2"))
            .await
            .unwrap()
            .unwrap()
            .rotated_at
            .is_none(),
        "a refused issuance rotates nothing"
    );
}

async fn revoking_a_grant_revokes_its_access_tokens(store: &impl Store) {
    let f = fixture(store).await;
    let g = &f.grant.id;
    store
        .record_issue(&issue(g, "live", None, None, T0))
        .await
        .unwrap();
    store
        .record_issue(&issue(g, "old", None, None, T0 - 1000))
        .await
        .unwrap();
    assert!(store.revoke_grant(g, UnixTime(T0 + 1)).await.unwrap());
    assert!(store.revoke_grant(g, UnixTime(T0 + 2)).await.unwrap());
    assert_eq!(
        store.grant(g).await.unwrap().unwrap().revoked_at,
        Some(UnixTime(T0 + 1)),
        "the first revocation is kept"
    );
    assert!(store.is_token_revoked("live").await.unwrap());
    assert!(
        !store.is_token_revoked("old").await.unwrap(),
        "expired tokens need no record"
    );
    assert!(
        !store
            .revoke_grant(&GrantId::generate(), UnixTime(T0))
            .await
            .unwrap()
    );
}

async fn deleting_a_user_or_client_revokes_their_grants(store: &impl Store) {
    let f = fixture(store).await;
    store
        .record_issue(&issue(&f.grant.id, "u1", Some("rtu"), None, T0))
        .await
        .unwrap();
    let s = Session {
        hash: SecretHash::of("cookie"),
        user: f.user.id.clone(),
        created_at: UnixTime(T0),
        last_seen_at: UnixTime(T0),
        method: Method::Password,
    };
    store.insert_session(&s).await.unwrap();
    assert!(
        store
            .delete_user(&f.user.id, UnixTime(T0 + 1))
            .await
            .unwrap()
    );
    assert!(store.is_token_revoked("u1").await.unwrap());
    assert_eq!(store.session(&s.hash).await.unwrap(), None);
    assert_eq!(store.grant(&f.grant.id).await.unwrap(), None);
    assert_eq!(
        store.refresh_token(&SecretHash::of("rtu")).await.unwrap(),
        None
    );
    assert!(
        !store
            .delete_user(&f.user.id, UnixTime(T0 + 1))
            .await
            .unwrap()
    );

    // The same through the client.
    let u = user("bob@example.com");
    store.insert_user(&u).await.unwrap();
    let grant = Grant {
        id: GrantId::generate(),
        user: u.id.clone(),
        ..f.grant.clone()
    };
    let code = CodeRecord {
        hash: SecretHash::of("ghc_two"),
        grant: grant.id.clone(),
        ..f.code.clone()
    };
    store.insert_code(&grant, &code).await.unwrap();
    store
        .record_issue(&issue(&grant.id, "c1", None, None, T0))
        .await
        .unwrap();
    assert!(
        store
            .delete_client(&grant.client, UnixTime(T0 + 1))
            .await
            .unwrap()
    );
    assert!(store.is_token_revoked("c1").await.unwrap());
    assert_eq!(store.grant(&grant.id).await.unwrap(), None);
}

async fn prune_removes_what_expired(store: &impl Store) {
    let f = fixture(store).await;
    store
        .record_issue(&issue(&f.grant.id, "p1", Some("rtp"), None, T0))
        .await
        .unwrap();
    let stale = registered(None);
    store.insert_client(&stale).await.unwrap();
    let s = Session {
        hash: SecretHash::of("cookie"),
        user: f.user.id.clone(),
        created_at: UnixTime(T0),
        last_seen_at: UnixTime(T0),
        method: Method::Password,
    };
    store.insert_session(&s).await.unwrap();
    let v = store.change_version().await.unwrap();
    let p = Prune {
        now: UnixTime(T0 + 100),
        sessions_idle_before: UnixTime(T0 + 1),
        sessions_created_before: UnixTime(T0 - 10),
        registrations_unused_before: UnixTime(stale.created_at.0 + 1),
        registrations_never_used_before: UnixTime(0),
        audit_before: UnixTime(0),
        limit: 1000,
    };
    let n = store.prune(&p).await.unwrap().deleted;
    assert!(n >= 3, "code, session and stale clients went ({n})");
    assert_eq!(store.take_code(&f.code.hash, p.now).await.unwrap(), None);
    assert_eq!(store.session(&s.hash).await.unwrap(), None);
    assert_eq!(store.client(&stale.id).await.unwrap(), None);
    assert_eq!(
        store.client(&f.grant.client).await.unwrap(),
        None,
        "the fixture's client was never used either"
    );
    assert_ne!(store.change_version().await.unwrap(), v, "clients went");
}

/// Writes racing on separate records all succeed: a store queues them, it does not fail one
/// because another holds a lock (SQLite's `SQLITE_BUSY` on a deferred transaction did).
async fn concurrent_writers_all_succeed(store: &impl Store) {
    let f = fixture(store).await;
    // Each of eight writers runs twenty code-to-token flows on grants of its own.
    let f = &f;
    let flow = |n: u8| async move {
        for i in 0..20 {
            let grant = Grant {
                id: GrantId::generate(),
                ..f.grant.clone()
            };
            let code = CodeRecord {
                hash: SecretHash::of(&format!("ghc_race_{n}_{i}")),
                grant: grant.id.clone(),
                ..f.code.clone()
            };
            store.insert_code(&grant, &code).await?;
            let taken = store.take_code(&code.hash, UnixTime(T0 + 1)).await?;
            assert!(
                taken.is_some_and(|c| c.used_at.is_none()),
                "code {n}/{i} taken once"
            );
            let (token, jti) = (format!("ghr_race_{n}_{i}"), format!("jti_race_{n}_{i}"));
            store
                .record_issue(&issue(&grant.id, &jti, Some(&token), None, T0 + 1))
                .await?;
        }
        Ok::<_, StoreError>(())
    };
    let results = tokio::join!(
        flow(0),
        flow(1),
        flow(2),
        flow(3),
        flow(4),
        flow(5),
        flow(6),
        flow(7)
    );
    for r in [
        results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
    ] {
        r.expect("every concurrent write succeeds");
    }
}

/// What nodes race for, each raced by many callers at once (on a pooled store, over as many
/// connections): one code, one refresh token, and issuing on a grant while it is revoked.
async fn races_have_one_winner(store: &impl Store) {
    use futures_util::future::join_all;
    const N: usize = 24;
    let f = fixture(store).await;
    let g = &f.grant.id;

    let takes =
        join_all((0..N).map(|i| store.take_code(&f.code.hash, UnixTime(T0 + 1 + i as i64)))).await;
    let first = takes
        .into_iter()
        .map(|t| t.unwrap().unwrap())
        .filter(|c| c.used_at.is_none())
        .count();
    assert_eq!(first, 1, "exactly one caller takes the code first");

    store
        .record_issue(&issue(g, "race_j0", Some("race_rt0"), None, T0))
        .await
        .unwrap();
    let issues: Vec<Issuance> = (0..N)
        .map(|i| {
            issue(
                g,
                &format!("race_j{}", i + 1),
                Some(&format!("race_rt{}", i + 1)),
                Some("race_rt0"),
                T0 + 1,
            )
        })
        .collect();
    let results = join_all(issues.iter().map(|i| store.record_issue(i))).await;
    let won: Vec<usize> = (0..N).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(won.len(), 1, "exactly one rotation of a refresh token wins");
    for (i, r) in results.iter().enumerate() {
        if r.is_err() {
            assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
            assert_eq!(
                store
                    .refresh_token(&SecretHash::of(&format!("race_rt{}", i + 1)))
                    .await
                    .unwrap(),
                None,
                "a losing rotation leaves no successor"
            );
        }
    }

    // An issuance racing the revocation of its grant: either it is refused, or the token it
    // recorded is revoked with the grant. Never a live token on a revoked grant.
    for round in 0..8 {
        let grant = Grant {
            id: GrantId::generate(),
            ..f.grant.clone()
        };
        let code = CodeRecord {
            hash: SecretHash::of(&format!("race_code_{round}")),
            grant: grant.id.clone(),
            ..f.code.clone()
        };
        store.insert_code(&grant, &code).await.unwrap();
        let jtis: Vec<String> = (0..N).map(|i| format!("race_{round}_{i}")).collect();
        let issues: Vec<Issuance> = jtis
            .iter()
            .map(|j| issue(&grant.id, j, None, None, T0 + 2))
            .collect();
        let revoke = store.revoke_grant(&grant.id, UnixTime(T0 + 2));
        let (issued, revoked) = tokio::join!(
            join_all(issues.iter().map(|i| store.record_issue(i))),
            revoke
        );
        assert!(revoked.unwrap());
        for (jti, r) in jtis.iter().zip(issued) {
            match r {
                Ok(()) => assert!(
                    store.is_token_revoked(jti).await.unwrap(),
                    "{jti} was issued on a grant being revoked, so it is revoked"
                ),
                Err(e) => assert!(matches!(e, StoreError::Conflict(_)), "{e:?}"),
            }
        }
    }

    // Nodes publishing the next signing key at once: one key is stored.
    let next: Vec<StoredKey> = (0..N)
        .map(|_| {
            let mut k = StoredKey::generate(SigningAlg::ES256, UnixTime(T0)).unwrap();
            k.activates_at = UnixTime(T0 + 100);
            k
        })
        .collect();
    let stored = join_all(
        next.iter()
            .map(|k| store.insert_key_unless(k, UnixTime(T0 + 1))),
    )
    .await;
    let stored = stored.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(
        stored, 1,
        "exactly one of concurrent successors is published"
    );
    let es256 = store.keys().await.unwrap();
    assert_eq!(
        es256.iter().filter(|k| k.alg == SigningAlg::ES256).count(),
        1
    );
}

async fn disabling_clients_and_people_passwords_and_sessions(store: &impl Store) {
    let f = fixture(store).await;
    store
        .record_issue(&issue(&f.grant.id, "d1", Some("rtd"), None, T0))
        .await
        .unwrap();
    let session = |cookie: &str, seen: i64| Session {
        hash: SecretHash::of(cookie),
        user: f.user.id.clone(),
        created_at: UnixTime(T0),
        last_seen_at: UnixTime(seen),
        method: Method::Passkey,
    };
    store.insert_session(&session("one", T0)).await.unwrap();
    store.insert_session(&session("two", T0 + 5)).await.unwrap();
    let listed = store.sessions_of(&f.user.id).await.unwrap();
    assert_eq!(listed, vec![session("two", T0 + 5), session("one", T0)]);

    store
        .save_consent(&Consent {
            user: f.user.id.clone(),
            client: f.grant.client.clone(),
            resource: f.resource.clone(),
            scopes: ScopeSet::parse("todo:read").unwrap(),
            granted_at: UnixTime(T0),
        })
        .await
        .unwrap();
    // Disabling a client: its grants are revoked, consents stay, the feed lists it, and the
    // change version moves so that caches reload it.
    let before = store.change_version().await.unwrap();
    let at = UnixTime(T0 + 10);
    assert!(
        store
            .set_client_disabled(&f.grant.client, Some(at))
            .await
            .unwrap()
    );
    assert_ne!(store.change_version().await.unwrap(), before);
    let c = store.client(&f.grant.client).await.unwrap().unwrap();
    assert_eq!((c.disabled_at, c.tokens_revoked_at), (Some(at), Some(at)));
    assert!(store.is_token_revoked("d1").await.unwrap());
    assert!(
        store
            .grant(&f.grant.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .consent(&f.user.id, &f.grant.client, &f.resource)
            .await
            .unwrap()
            .is_some()
    );
    let feed = store
        .revocations_since(&f.resource, UnixTime(T0), UnixTime(T0 + 11))
        .await
        .unwrap();
    assert_eq!(feed.clients.len(), 1);
    assert_eq!(feed.clients[0].revoked_at, at);
    // Enabled again: the instant its old tokens were revoked is kept.
    assert!(
        store
            .set_client_disabled(&f.grant.client, None)
            .await
            .unwrap()
    );
    let c = store.client(&f.grant.client).await.unwrap().unwrap();
    assert_eq!((c.disabled_at, c.tokens_revoked_at), (None, Some(at)));
    assert!(
        !store
            .set_client_disabled(&ClientId::generate_agent(), Some(at))
            .await
            .unwrap()
    );

    // A new password ends every session.
    assert!(
        store
            .set_password(&f.user.id, "$argon2id$new")
            .await
            .unwrap()
    );
    assert_eq!(
        store.user(&f.user.id).await.unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    assert_eq!(store.sessions_of(&f.user.id).await.unwrap(), vec![]);
    assert!(!store.set_password(&UserId::generate(), "x").await.unwrap());

    // Ending sessions, then disabling a person: sessions end, grants are revoked.
    store.insert_session(&session("three", T0)).await.unwrap();
    store.insert_session(&session("four", T0)).await.unwrap();
    assert_eq!(store.delete_sessions_of(&f.user.id).await.unwrap(), 2);
    store.insert_session(&session("five", T0)).await.unwrap();
    let grant = Grant {
        id: GrantId::generate(),
        ..f.grant.clone()
    };
    let code = CodeRecord {
        hash: SecretHash::of("ghc_dis"),
        grant: grant.id.clone(),
        ..f.code.clone()
    };
    store.insert_code(&grant, &code).await.unwrap();
    store
        .record_issue(&issue(&grant.id, "d2", Some("rtd2"), None, T0 + 20))
        .await
        .unwrap();
    let at = UnixTime(T0 + 30);
    assert!(store.set_user_disabled(&f.user.id, Some(at)).await.unwrap());
    assert_eq!(
        store.user(&f.user.id).await.unwrap().unwrap().disabled_at,
        Some(at)
    );
    assert_eq!(store.sessions_of(&f.user.id).await.unwrap(), vec![]);
    assert!(store.is_token_revoked("d2").await.unwrap());
    assert!(store.set_user_disabled(&f.user.id, None).await.unwrap());
    assert_eq!(
        store.user(&f.user.id).await.unwrap().unwrap().disabled_at,
        None
    );
    assert!(
        !store
            .set_user_disabled(&UserId::generate(), Some(at))
            .await
            .unwrap()
    );
}

async fn revoking_a_consent_revokes_its_grants(store: &impl Store) {
    let f = fixture(store).await;
    let consent = Consent {
        user: f.user.id.clone(),
        client: f.grant.client.clone(),
        resource: f.resource.clone(),
        scopes: f.grant.scopes.clone(),
        granted_at: UnixTime(T0),
    };
    store.save_consent(&consent).await.unwrap();
    store
        .record_issue(&issue(&f.grant.id, "jti_c", Some("ghr_c"), None, T0 + 1))
        .await
        .unwrap();
    let everyone = ConsentFilter::default();
    assert_eq!(
        store.consents(&everyone).await.unwrap(),
        vec![consent.clone()]
    );
    let theirs = ConsentFilter {
        user: Some(f.user.id.clone()),
        resource: Some(f.resource.clone()),
        ..ConsentFilter::default()
    };
    assert_eq!(store.consents(&theirs).await.unwrap().len(), 1);
    let others = ConsentFilter {
        user: Some(UserId::generate()),
        ..ConsentFilter::default()
    };
    assert_eq!(store.consents(&others).await.unwrap(), vec![]);

    let (u, c, r) = (&f.user.id, &f.grant.client, &f.resource);
    assert!(
        store
            .revoke_consent(u, c, r, UnixTime(T0 + 2))
            .await
            .unwrap()
    );
    assert_eq!(store.consents(&everyone).await.unwrap(), vec![]);
    assert_eq!(store.consent(u, c, r).await.unwrap(), None);
    let grant = store.grant(&f.grant.id).await.unwrap().unwrap();
    assert_eq!(grant.revoked_at, Some(UnixTime(T0 + 2)));
    assert!(store.is_token_revoked("jti_c").await.unwrap());
    assert!(
        matches!(
            store
                .record_issue(&issue(
                    &f.grant.id,
                    "jti_d",
                    Some("ghr_d"),
                    Some("ghr_c"),
                    T0 + 3
                ))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "the refresh token of a revoked grant is dead"
    );
    assert!(
        !store
            .revoke_consent(u, c, r, UnixTime(T0 + 4))
            .await
            .unwrap(),
        "nothing left to revoke"
    );
}

async fn admins_and_their_api_keys(store: &impl Store) {
    let ada = user("ada@example.com");
    store.insert_user(&ada).await.unwrap();
    assert!(!store.user(&ada.id).await.unwrap().unwrap().admin);
    assert!(store.set_admin(&ada.id, true).await.unwrap());
    assert!(store.user(&ada.id).await.unwrap().unwrap().admin);
    assert!(!store.set_admin(&UserId::generate(), true).await.unwrap());

    let key = ApiKey {
        id: ApiKeyId::generate(),
        name: "deploy".into(),
        user: ada.id.clone(),
        secret_hash: SecretHash::of("gha_secret"),
        created_at: UnixTime(T0),
        revoked_at: None,
    };
    store.insert_api_key(&key).await.unwrap();
    assert!(matches!(
        store.insert_api_key(&key).await,
        Err(StoreError::Conflict(_))
    ));
    let orphan = ApiKey {
        id: ApiKeyId::generate(),
        user: UserId::generate(),
        secret_hash: SecretHash::of("gha_other"),
        ..key.clone()
    };
    assert!(matches!(
        store.insert_api_key(&orphan).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.api_key(&SecretHash::of("gha_secret")).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store.api_key(&SecretHash::of("gha_nope")).await.unwrap(),
        None
    );
    assert!(
        store
            .revoke_api_key(&key.id, UnixTime(T0 + 5))
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke_api_key(&key.id, UnixTime(T0 + 9))
            .await
            .unwrap()
    );
    assert_eq!(
        store.api_keys().await.unwrap()[0].revoked_at,
        Some(UnixTime(T0 + 5)),
        "the first revocation counts"
    );
    assert!(
        !store
            .revoke_api_key(&ApiKeyId::generate(), UnixTime(T0))
            .await
            .unwrap()
    );
    store.delete_user(&ada.id, UnixTime(T0 + 10)).await.unwrap();
    assert_eq!(
        store.api_keys().await.unwrap(),
        vec![],
        "their keys go with them"
    );
}
