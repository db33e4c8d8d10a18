//! Contract checks of [`crate::store::SignInStore`].

use super::resource;
use crate::clock::UnixTime;
use crate::email_code::EmailChallenge;
use crate::model::User;
use crate::passkey::{CeremonyPurpose, PasskeyCeremony, StoredPasskey};
use crate::records::Prune;
use crate::secret::SecretHash;
use crate::signin::{
    Connection, ConnectionKind, Identity, LoginRequest, Method, NewConnection, Profile,
    SignInPolicy,
};
use crate::store::{Store, StoreError};
use crate::types::{
    EmailChallengeId, LoginRequestId, PasskeyCeremonyId, PasskeyId, ResourceId, UserId,
};

const T0: i64 = 1_700_000_000;

pub(super) async fn run_all<S: Store, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    policy_and_connections_round_trip(&make().await).await;
    login_requests_are_completed_once_and_used_once(&make().await).await;
    identities_link_new_and_existing_people_in_one_change(&make().await).await;
    deleting_a_connection_or_a_person_deletes_identities(&make().await).await;
    resources_keep_their_sign_in_methods(&make().await).await;
    email_codes_count_guesses_and_are_used_once(&make().await).await;
    passkeys_belong_to_one_person(&make().await).await;
    passkey_ceremonies_are_used_once(&make().await).await;
}

fn connection(name: &str) -> Connection {
    Connection::create(
        NewConnection {
            name: name.into(),
            kind: ConnectionKind::Federated {
                login_url: "https://login.example/start?tenant=1".into(),
            },
            allowed_domains: vec!["example.com".into()],
        },
        UnixTime(T0),
    )
    .unwrap()
}

fn request(c: &Connection, expires_at: i64) -> LoginRequest {
    LoginRequest {
        id: LoginRequestId::generate(),
        connection: c.id.clone(),
        state_hash: SecretHash::of("state"),
        browser_hash: SecretHash::of("browser"),
        return_to: "/oauth/authorize?client_id=x".into(),
        server: None,
        created_at: UnixTime(T0),
        expires_at: UnixTime(expires_at),
        profile: None,
        used_at: None,
    }
}

fn profile(sub: &str, email: &str) -> Profile {
    let claims =
        serde_json::json!({"sub": sub, "email": email, "email_verified": true, "name": "Ada"});
    Profile::from_claims(claims.as_object().unwrap().clone()).unwrap()
}

fn person(email: &str) -> User {
    User {
        id: UserId::generate(),
        email: email.into(),
        password_hash: String::new(),
        admin: false,
        created_at: UnixTime(T0),
        disabled_at: None,
    }
}

async fn policy_and_connections_round_trip(store: &impl Store) {
    assert_eq!(store.sign_in_policy().await.unwrap(), None, "never set");
    let p = SignInPolicy {
        password: false,
        email_code: true,
        passkey: false,
    };
    store.set_sign_in_policy(&p).await.unwrap();
    store.set_sign_in_policy(&p).await.unwrap();
    assert_eq!(store.sign_in_policy().await.unwrap(), Some(p));

    let a = connection("Acme");
    let b = connection("Beta");
    store.insert_connection(&a).await.unwrap();
    store.insert_connection(&b).await.unwrap();
    assert!(matches!(
        store.insert_connection(&a).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.connection(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.connections().await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    let changed = Connection {
        name: "Acme SSO".into(),
        enabled: false,
        allowed_domains: vec![],
        created_at: UnixTime(T0 + 999),
        ..a.clone()
    };
    assert!(store.update_connection(&changed).await.unwrap());
    assert_eq!(
        store.connection(&a.id).await.unwrap(),
        Some(Connection {
            created_at: a.created_at,
            ..changed.clone()
        }),
        "every field but the creation time is replaced"
    );
    let missing = connection("Missing");
    assert!(!store.update_connection(&missing).await.unwrap());
}

async fn login_requests_are_completed_once_and_used_once(store: &impl Store) {
    let c = connection("Acme");
    let orphan = request(&c, T0 + 600);
    assert!(
        matches!(
            store.insert_login_request(&orphan).await,
            Err(StoreError::Conflict(_))
        ),
        "its connection must exist"
    );
    store.insert_connection(&c).await.unwrap();
    let r = request(&c, T0 + 600);
    store.insert_login_request(&r).await.unwrap();
    assert_eq!(store.login_request(&r.id).await.unwrap(), Some(r.clone()));

    let ada = profile("1234", "ada@example.com");
    assert!(store.set_login_profile(&r.id, &ada).await.unwrap());
    assert!(
        !store
            .set_login_profile(&r.id, &profile("666", "eve@example.com"))
            .await
            .unwrap(),
        "the profile is set once"
    );
    assert_eq!(
        store.login_request(&r.id).await.unwrap().unwrap().profile,
        Some(ada.clone())
    );

    let first = store
        .take_login_request(&r.id, UnixTime(T0 + 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.used_at, None, "the first use sees it unused");
    let second = store
        .take_login_request(&r.id, UnixTime(T0 + 6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        second.used_at,
        Some(UnixTime(T0 + 5)),
        "later uses see the first"
    );
    assert!(
        store
            .take_login_request(&LoginRequestId::generate(), UnixTime(T0))
            .await
            .unwrap()
            .is_none()
    );
    let late = request(&c, T0 + 600);
    store.insert_login_request(&late).await.unwrap();
    store
        .take_login_request(&late.id, UnixTime(T0 + 1))
        .await
        .unwrap();
    assert!(
        !store.set_login_profile(&late.id, &ada).await.unwrap(),
        "a used request takes no profile"
    );

    let expired = request(&c, T0 + 10);
    store.insert_login_request(&expired).await.unwrap();
    let prune = Prune {
        now: UnixTime(T0 + 10),
        sessions_idle_before: UnixTime(0),
        sessions_created_before: UnixTime(0),
        registrations_unused_before: UnixTime(0),
        registrations_never_used_before: UnixTime(0),
        audit_before: UnixTime(0),
        limit: 1000,
    };
    assert!(store.prune(&prune).await.unwrap().deleted >= 1);
    assert_eq!(
        store.login_request(&expired.id).await.unwrap(),
        None,
        "expired: pruned"
    );
    assert!(
        store.login_request(&r.id).await.unwrap().is_some(),
        "unexpired: kept"
    );
}

async fn identities_link_new_and_existing_people_in_one_change(store: &impl Store) {
    let c = connection("Acme");
    store.insert_connection(&c).await.unwrap();
    let ada = person("ada@example.com");
    let identity = |sub: &str, user: &User| Identity {
        connection: c.id.clone(),
        subject: sub.into(),
        user: user.id.clone(),
        profile: profile(sub, &user.email),
        created_at: UnixTime(T0),
        last_used_at: UnixTime(T0),
    };
    store
        .link_identity(&identity("1", &ada), Some(&ada))
        .await
        .unwrap();
    assert_eq!(
        store.user(&ada.id).await.unwrap(),
        Some(ada.clone()),
        "created with it"
    );
    assert_eq!(
        store.identity(&c.id, "1").await.unwrap(),
        Some(identity("1", &ada))
    );
    // A second identity for the same new email: nothing of it is stored.
    let clash = person("ada@example.com");
    assert!(matches!(
        store
            .link_identity(&identity("2", &clash), Some(&clash))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.identity(&c.id, "2").await.unwrap(),
        None,
        "all or nothing"
    );
    // An existing person.
    store
        .link_identity(&identity("2", &ada), None)
        .await
        .unwrap();
    assert_eq!(store.identities_of(&ada.id).await.unwrap().len(), 2);
    assert!(
        matches!(
            store.link_identity(&identity("1", &ada), None).await,
            Err(StoreError::Conflict(_))
        ),
        "one person per subject"
    );
    let ghost = person("ghost@example.com");
    assert!(
        matches!(
            store.link_identity(&identity("3", &ghost), None).await,
            Err(StoreError::Conflict(_))
        ),
        "the person must exist"
    );
    let newer = profile("1", "ada@example.com");
    assert!(
        store
            .touch_identity(&c.id, "1", &newer, UnixTime(T0 + 50))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .identity(&c.id, "1")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        UnixTime(T0 + 50)
    );
    assert!(
        !store
            .touch_identity(&c.id, "9", &newer, UnixTime(T0))
            .await
            .unwrap()
    );
}

async fn deleting_a_connection_or_a_person_deletes_identities(store: &impl Store) {
    let a = connection("Acme");
    let b = connection("Beta");
    store.insert_connection(&a).await.unwrap();
    store.insert_connection(&b).await.unwrap();
    let ada = person("ada@example.com");
    let bob = person("bob@example.com");
    for (c, u, new) in [(&a, &ada, true), (&b, &ada, false), (&b, &bob, true)] {
        let i = Identity {
            connection: c.id.clone(),
            subject: u.email.clone(),
            user: u.id.clone(),
            profile: profile(&u.email, &u.email),
            created_at: UnixTime(T0),
            last_used_at: UnixTime(T0),
        };
        store.link_identity(&i, new.then_some(u)).await.unwrap();
    }
    let r = request(&a, T0 + 600);
    store.insert_login_request(&r).await.unwrap();
    assert!(store.delete_connection(&a.id).await.unwrap());
    assert!(!store.delete_connection(&a.id).await.unwrap());
    assert_eq!(store.connection(&a.id).await.unwrap(), None);
    assert_eq!(
        store.login_request(&r.id).await.unwrap(),
        None,
        "its requests go"
    );
    assert_eq!(
        store.identity(&a.id, "ada@example.com").await.unwrap(),
        None
    );
    assert!(store.user(&ada.id).await.unwrap().is_some(), "people stay");
    assert!(store.delete_user(&bob.id, UnixTime(T0)).await.unwrap());
    assert_eq!(
        store.identity(&b.id, "bob@example.com").await.unwrap(),
        None
    );
    assert!(
        store
            .identity(&b.id, "ada@example.com")
            .await
            .unwrap()
            .is_some()
    );
}

async fn resources_keep_their_sign_in_methods(store: &impl Store) {
    let c = connection("Acme");
    let mut r = resource("https://a.example/mcp");
    assert_eq!(r.sign_in_methods, None);
    store.insert_resource(&r).await.unwrap();
    assert_eq!(
        store
            .resource(&r.id)
            .await
            .unwrap()
            .unwrap()
            .sign_in_methods,
        None
    );
    r.sign_in_methods = Some(vec![Method::Connection(c.id.clone()), Method::Password]);
    assert!(store.update_resource(&r).await.unwrap());
    assert_eq!(
        store
            .resource(&r.id)
            .await
            .unwrap()
            .unwrap()
            .sign_in_methods,
        r.sign_in_methods,
        "in order"
    );
}

fn email_challenge(email: &str, created: i64) -> EmailChallenge {
    EmailChallenge {
        id: EmailChallengeId::generate(),
        email: email.into(),
        code_hash: SecretHash::of("browser.12345678"),
        link_hash: SecretHash::of("link"),
        browser_hash: SecretHash::of("browser"),
        return_to: "/oauth/authorize?client_id=x".into(),
        server: Some(ResourceId::generate()),
        created_at: UnixTime(created),
        expires_at: UnixTime(created + 600),
        attempts: 0,
        used_at: None,
    }
}

async fn email_codes_count_guesses_and_are_used_once(store: &impl Store) {
    let c = email_challenge("ada@example.com", T0);
    store.insert_email_challenge(&c).await.unwrap();
    assert!(matches!(
        store.insert_email_challenge(&c).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.email_challenge(&c.id).await.unwrap().as_ref(),
        Some(&c)
    );
    assert_eq!(
        store
            .email_challenge(&EmailChallengeId::generate())
            .await
            .unwrap(),
        None
    );

    // Codes per address since a time.
    let later = email_challenge("ada@example.com", T0 + 100);
    store.insert_email_challenge(&later).await.unwrap();
    store
        .insert_email_challenge(&email_challenge("bob@example.com", T0 + 100))
        .await
        .unwrap();
    assert_eq!(
        store
            .email_challenges_since("ada@example.com", UnixTime(T0))
            .await
            .unwrap()
            .len(),
        2
    );
    let since = store
        .email_challenges_since("ada@example.com", UnixTime(T0 + 1))
        .await
        .unwrap();
    assert_eq!(since, vec![later.clone()]);

    // Every guess counts, and counts are kept.
    for n in 1..=3 {
        assert_eq!(store.count_email_attempt(&c.id).await.unwrap(), n);
    }
    assert_eq!(
        store
            .email_challenge(&c.id)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        3
    );
    assert_eq!(
        store
            .count_email_attempt(&EmailChallengeId::generate())
            .await
            .unwrap(),
        0
    );

    // Used once.
    assert!(
        store
            .use_email_challenge(&c.id, UnixTime(T0 + 5))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_email_challenge(&c.id, UnixTime(T0 + 6))
            .await
            .unwrap()
    );
    assert_eq!(
        store.email_challenge(&c.id).await.unwrap().unwrap().used_at,
        Some(UnixTime(T0 + 5))
    );
    assert!(
        !store
            .use_email_challenge(&EmailChallengeId::generate(), UnixTime(T0))
            .await
            .unwrap()
    );

    // Expired codes are pruned.
    let prune = Prune {
        now: UnixTime(T0 + 650),
        sessions_idle_before: UnixTime(0),
        sessions_created_before: UnixTime(0),
        registrations_unused_before: UnixTime(0),
        registrations_never_used_before: UnixTime(0),
        audit_before: UnixTime(0),
        limit: 1000,
    };
    store.prune(&prune).await.unwrap();
    assert_eq!(
        store.email_challenge(&c.id).await.unwrap(),
        None,
        "expired: pruned"
    );
    assert!(
        store.email_challenge(&later.id).await.unwrap().is_some(),
        "unexpired: kept"
    );
}

fn passkey(user: &UserId, credential_id: &str, at: i64) -> StoredPasskey {
    StoredPasskey {
        id: PasskeyId::generate(),
        user: user.clone(),
        credential_id: credential_id.into(),
        name: "Laptop".into(),
        credential: r#"{"cred":{"counter":0}}"#.into(),
        created_at: UnixTime(at),
        last_used_at: None,
    }
}

async fn passkeys_belong_to_one_person(store: &impl Store) {
    let ada = person("ada@example.com");
    let bob = person("bob@example.com");
    store.insert_user(&ada).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    let first = passkey(&ada.id, "AAAA", T0);
    let second = passkey(&ada.id, "BBBB", T0 + 1);
    store.insert_passkey(&first).await.unwrap();
    store.insert_passkey(&second).await.unwrap();
    // The same credential twice, the same id twice, or for nobody: refused.
    for clash in [
        passkey(&bob.id, "AAAA", T0),
        StoredPasskey {
            credential_id: "CCCC".into(),
            ..first.clone()
        },
        passkey(&UserId::generate(), "DDDD", T0),
    ] {
        assert!(
            matches!(
                store.insert_passkey(&clash).await,
                Err(StoreError::Conflict(_))
            ),
            "{clash:?}"
        );
    }
    assert_eq!(
        store.passkeys_of(&ada.id).await.unwrap(),
        vec![first.clone(), second.clone()],
        "oldest first"
    );
    assert!(store.passkeys_of(&bob.id).await.unwrap().is_empty());
    assert_eq!(
        store.passkey_by_credential("BBBB").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.passkey_by_credential("bbbb").await.unwrap(), None);

    // A sign-in updates the credential and the time.
    assert!(
        store
            .touch_passkey(&first.id, r#"{"cred":{"counter":7}}"#, UnixTime(T0 + 9))
            .await
            .unwrap()
    );
    let touched = store.passkey_by_credential("AAAA").await.unwrap().unwrap();
    assert_eq!(touched.credential, r#"{"cred":{"counter":7}}"#);
    assert_eq!(touched.last_used_at, Some(UnixTime(T0 + 9)));
    assert!(
        !store
            .touch_passkey(&PasskeyId::generate(), "{}", UnixTime(T0))
            .await
            .unwrap()
    );

    // Only its owner removes it.
    assert!(!store.delete_passkey(&bob.id, &first.id).await.unwrap());
    assert!(store.delete_passkey(&ada.id, &first.id).await.unwrap());
    assert!(!store.delete_passkey(&ada.id, &first.id).await.unwrap());
    assert_eq!(store.passkeys_of(&ada.id).await.unwrap(), vec![second]);

    // Deleting the person deletes their passkeys.
    store.delete_user(&ada.id, UnixTime(T0 + 10)).await.unwrap();
    assert_eq!(store.passkey_by_credential("BBBB").await.unwrap(), None);
}

async fn passkey_ceremonies_are_used_once(store: &impl Store) {
    let ada = person("ada@example.com");
    store.insert_user(&ada).await.unwrap();
    let ceremony = |purpose, expires_at| PasskeyCeremony {
        id: PasskeyCeremonyId::generate(),
        purpose,
        state: r#"{"ast":{}}"#.into(),
        browser_hash: SecretHash::of("browser"),
        return_to: "/oauth/authorize?client_id=x".into(),
        server: Some(ResourceId::generate()),
        created_at: UnixTime(T0),
        expires_at: UnixTime(expires_at),
        used_at: None,
    };
    let sign_in = ceremony(CeremonyPurpose::SignIn, T0 + 300);
    let register = ceremony(CeremonyPurpose::Register(ada.id.clone()), T0 + 900);
    store.insert_passkey_ceremony(&sign_in).await.unwrap();
    store.insert_passkey_ceremony(&register).await.unwrap();
    assert!(matches!(
        store.insert_passkey_ceremony(&sign_in).await,
        Err(StoreError::Conflict(_))
    ));
    // The first use sees it unused; every later use sees the first.
    assert_eq!(
        store
            .take_passkey_ceremony(&sign_in.id, UnixTime(T0 + 5))
            .await
            .unwrap()
            .as_ref(),
        Some(&sign_in)
    );
    let again = store
        .take_passkey_ceremony(&sign_in.id, UnixTime(T0 + 6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.used_at, Some(UnixTime(T0 + 5)));
    assert_eq!(
        store
            .take_passkey_ceremony(&register.id, UnixTime(T0 + 7))
            .await
            .unwrap()
            .map(|c| c.purpose),
        Some(CeremonyPurpose::Register(ada.id.clone()))
    );
    assert_eq!(
        store
            .take_passkey_ceremony(&PasskeyCeremonyId::generate(), UnixTime(T0))
            .await
            .unwrap(),
        None
    );

    // Expired ceremonies are pruned.
    let prune = Prune {
        now: UnixTime(T0 + 300),
        sessions_idle_before: UnixTime(0),
        sessions_created_before: UnixTime(0),
        registrations_unused_before: UnixTime(0),
        registrations_never_used_before: UnixTime(0),
        audit_before: UnixTime(0),
        limit: 1000,
    };
    store.prune(&prune).await.unwrap();
    assert_eq!(
        store
            .take_passkey_ceremony(&sign_in.id, UnixTime(T0 + 301))
            .await
            .unwrap(),
        None,
        "expired: pruned"
    );
    assert!(
        store
            .take_passkey_ceremony(&register.id, UnixTime(T0 + 301))
            .await
            .unwrap()
            .is_some(),
        "unexpired: kept"
    );
}
