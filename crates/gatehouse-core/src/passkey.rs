//! Passkeys: WebAuthn credentials, through `webauthn-rs`.
//!
//! A signed-in person adds a passkey from their account page; anyone then signs in with one
//! without typing anything (a discoverable credential: the authenticator says whose it is).
//! Each use is a ceremony of two requests:
//!
//! 1. `start_…`: WebAuthn options with a fresh challenge go to the browser; the ceremony's
//!    state is stored (it must stay on the server, or a challenge could be replayed) with
//!    the hash of a secret the browser keeps in a cookie.
//! 2. `finish_…`: the same browser sends the authenticator's answer. The ceremony is used
//!    up before anything is checked, so each challenge is answered once, and it lives
//!    [`CEREMONY_TTL`].
//!
//! The relying party is the public URL's host, and the only accepted origin is the public
//! URL's origin. A host that is an IP address cannot be a relying party (browsers refuse
//! it), so such a Gatehouse offers no passkeys ([`relying_party`]).
//!
//! The WebAuthn user handle of a person is derived from their id ([`user_handle`]): stable,
//! not their email, and nothing more to store.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::audit::{AuditEvent, EventType};
use crate::clock::UnixTime;
use crate::engine::Engine;
use crate::model::User;
use crate::secret::SecretHash;
use crate::signin::Method;
use crate::store::StoreError;
use crate::types::{Issuer, PasskeyCeremonyId, PasskeyId, ResourceId, UserId};

/// How long a browser has to answer a ceremony's challenge.
pub const CEREMONY_TTL: i64 = 300;
/// The most passkeys one person can have.
pub const MAX_PASSKEYS: usize = 20;
/// The longest passkey name kept, in characters.
const MAX_NAME_CHARS: usize = 60;
/// The most bytes of an authenticator's answer accepted.
pub const MAX_CREDENTIAL_BYTES: usize = 64 * 1024;

/// A person's passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// `pk_…`
    pub id: PasskeyId,
    pub user: UserId,
    /// The WebAuthn credential id, base64url without padding.
    pub credential_id: String,
    /// What the person called it.
    pub name: String,
    /// The credential (public key, algorithm, signature counter) as `webauthn-rs` JSON.
    pub credential: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// What a ceremony is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// Adding a passkey to this person's account.
    Register(UserId),
    /// Signing in.
    SignIn,
}

/// One WebAuthn ceremony in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyCeremony {
    /// `pkc_…`
    pub id: PasskeyCeremonyId,
    pub purpose: CeremonyPurpose,
    /// The `webauthn-rs` state (the challenge and what is expected), as JSON.
    pub state: String,
    /// Hash of the secret in the cookie of the browser that started it.
    pub browser_hash: SecretHash,
    /// Where the browser goes once signed in (an authorization request), or empty.
    pub return_to: String,
    /// The MCP server the sign-in is for, when known.
    pub server: Option<ResourceId>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

/// Why a passkey could not be added or used. Messages are shown to the person.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The public URL's host cannot be a WebAuthn relying party.
    #[error(
        "passkeys are not available here: the server's public URL must use a domain name (https, or http on localhost), not an IP address"
    )]
    NotAvailable,
    /// The browser has no ceremony in progress (never started, cookie gone, other browser).
    #[error("this browser has no passkey request in progress: reload the page and try again")]
    NoCeremony,
    /// The ceremony is older than [`CEREMONY_TTL`].
    #[error("the passkey request expired: reload the page and try again")]
    Expired,
    /// The ceremony was answered already.
    #[error("this passkey request was already used: reload the page and try again")]
    AlreadyUsed,
    /// What the browser sent is not a WebAuthn answer.
    #[error("the browser's answer is not a WebAuthn credential: {0}")]
    Malformed(String),
    /// The credential is not registered here (or was removed).
    #[error("this passkey is not registered here (it may have been removed): sign in another way")]
    UnknownPasskey,
    /// The answer does not verify: wrong challenge, origin, signature, or no user verification.
    #[error("the passkey could not be verified ({0})")]
    Rejected(String),
    /// The credential is registered already.
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    /// The person has [`MAX_PASSKEYS`] already.
    #[error("you have 20 passkeys already: remove one first")]
    TooMany,
    /// The person's account is disabled.
    #[error("this account is disabled: ask the administrator of this server")]
    AccountDisabled(UserId),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PasskeyError {
    /// A short machine-readable code (for the audit log and tests).
    pub fn code(&self) -> &'static str {
        match self {
            PasskeyError::NotAvailable => "passkeys_unavailable",
            PasskeyError::NoCeremony => "no_passkey_request",
            PasskeyError::Expired => "passkey_request_expired",
            PasskeyError::AlreadyUsed => "passkey_request_used",
            PasskeyError::Malformed(_) => "invalid_credential",
            PasskeyError::UnknownPasskey => "unknown_passkey",
            PasskeyError::Rejected(_) => "passkey_rejected",
            PasskeyError::AlreadyRegistered => "passkey_exists",
            PasskeyError::TooMany => "too_many_passkeys",
            PasskeyError::AccountDisabled(_) => "account_disabled",
            PasskeyError::Store(_) => "temporarily_unavailable",
        }
    }
}

/// A ceremony just started: the options for `navigator.credentials` and the browser's
/// cookie value.
#[derive(Debug)]
pub struct StartedCeremony {
    /// `{"publicKey": {…}}`, as WebAuthn's JSON serialisation writes it.
    pub options: serde_json::Value,
    /// `{ceremony id}.{secret}`.
    pub browser_cookie: String,
}

/// A finished passkey sign-in.
#[derive(Debug)]
pub struct FinishedPasskeySignIn {
    pub user: User,
    pub passkey: StoredPasskey,
    pub return_to: String,
    pub server: Option<ResourceId>,
}

/// The WebAuthn relying party for a Gatehouse at `public`: its id is the host, and its one
/// origin is the public URL's. `None` when the host is an IP address, or the URL is `http`
/// anywhere but `localhost` (browsers allow WebAuthn only in secure contexts).
pub fn relying_party(public: &Issuer) -> Option<Webauthn> {
    let url = Url::parse(public.as_str()).ok()?;
    let Some(url::Host::Domain(host)) = url.host() else {
        return None;
    };
    let host = host.to_owned();
    if url.scheme() != "https" && host != "localhost" {
        return None;
    }
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name("Gatehouse")
        .build()
        .ok()
}

/// A person's WebAuthn user handle: 16 bytes of SHA-256 of their id.
pub fn user_handle(user: &UserId) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"gatehouse webauthn user\0")
        .chain_update(user.as_str().as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// A passkey name as typed, trimmed and cut to [`MAX_NAME_CHARS`]; a default when empty.
fn passkey_name(typed: &str, now: UnixTime) -> String {
    let clean: String = typed.chars().filter(|c| !c.is_control()).collect();
    let name: String = clean.trim().chars().take(MAX_NAME_CHARS).collect();
    let name = name.trim_end();
    if name.is_empty() {
        format!("Passkey added on {}", &now.rfc3339()[..10])
    } else {
        name.to_owned()
    }
}

fn encode_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

fn rejected(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Rejected(e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("passkey state: {e}")).into())
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend(format!("stored {what}: {e}")).into())
}

/// Parses what the browser sent.
fn answer<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, PasskeyError> {
    if json.len() > MAX_CREDENTIAL_BYTES {
        return Err(PasskeyError::Malformed("it is too long".into()));
    }
    serde_json::from_str(json).map_err(|e| PasskeyError::Malformed(e.to_string()))
}

impl Engine {
    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.relying_party().ok_or(PasskeyError::NotAvailable)
    }

    /// Stores a ceremony for `purpose` and gives the browser's cookie value.
    async fn store_ceremony(
        &self,
        purpose: CeremonyPurpose,
        state: String,
        return_to: &str,
        server: Option<ResourceId>,
    ) -> Result<String, PasskeyError> {
        let now = self.now();
        let id = PasskeyCeremonyId::generate();
        let browser_secret = crate::random::secret("");
        self.store()
            .insert_passkey_ceremony(&PasskeyCeremony {
                id: id.clone(),
                purpose,
                state,
                browser_hash: SecretHash::of(&browser_secret),
                return_to: return_to.to_owned(),
                server,
                created_at: now,
                expires_at: now.plus(CEREMONY_TTL),
                used_at: None,
            })
            .await?;
        Ok(format!("{id}.{browser_secret}"))
    }

    /// Uses up the ceremony the browser's cookie names, and checks that it is this
    /// browser's, unexpired, and for `purpose`.
    async fn take_ceremony(
        &self,
        browser_cookie: Option<&str>,
        purpose: &CeremonyPurpose,
    ) -> Result<PasskeyCeremony, PasskeyError> {
        let Some((id, secret)) = browser_cookie.and_then(|c| c.split_once('.')) else {
            return Err(PasskeyError::NoCeremony);
        };
        let id = PasskeyCeremonyId::parse(id).map_err(|_| PasskeyError::NoCeremony)?;
        let Some(c) = self.store().take_passkey_ceremony(&id, self.now()).await? else {
            return Err(PasskeyError::NoCeremony);
        };
        if !c.browser_hash.matches(secret) || &c.purpose != purpose {
            return Err(PasskeyError::NoCeremony);
        }
        if c.used_at.is_some() {
            return Err(PasskeyError::AlreadyUsed);
        }
        if c.expires_at <= self.now() {
            return Err(PasskeyError::Expired);
        }
        Ok(c)
    }

    /// Starts adding a passkey to `user`'s account. Their passkeys are excluded, so an
    /// authenticator that holds one says so instead of making a second.
    pub async fn start_passkey_registration(
        &self,
        user: &User,
    ) -> Result<StartedCeremony, PasskeyError> {
        let webauthn = self.webauthn()?;
        let existing = self.store().passkeys_of(&user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let exclude = existing
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .collect::<Vec<_>>();
        let (options, state) = webauthn
            .start_passkey_registration(
                user_handle(&user.id),
                &user.email,
                &user.email,
                Some(exclude),
            )
            .map_err(rejected)?;
        let mut options = serde_json::to_value(&options).map_err(rejected)?;
        // A discoverable credential, so that signing in needs no email: the authenticator
        // keeps the user handle and offers the passkey by itself. (webauthn-rs asks for a
        // non-discoverable one and does not check either way.)
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(|v| v.as_object_mut())
        {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        let cookie = self
            .store_ceremony(
                CeremonyPurpose::Register(user.id.clone()),
                to_json(&state)?,
                "",
                None,
            )
            .await?;
        Ok(StartedCeremony {
            options,
            browser_cookie: cookie,
        })
    }

    /// Finishes adding a passkey named `name` to `user`'s account with the authenticator's
    /// answer `credential_json` (a `PublicKeyCredential` from `navigator.credentials.create`).
    pub async fn finish_passkey_registration(
        &self,
        user: &User,
        browser_cookie: Option<&str>,
        credential_json: &str,
        name: &str,
    ) -> Result<StoredPasskey, PasskeyError> {
        let webauthn = self.webauthn()?;
        let ceremony = self
            .take_ceremony(browser_cookie, &CeremonyPurpose::Register(user.id.clone()))
            .await?;
        let answer: RegisterPublicKeyCredential = answer(credential_json)?;
        let state: PasskeyRegistration = from_json(&ceremony.state, "passkey registration")?;
        let passkey = webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(rejected)?;
        let now = self.now();
        let stored = StoredPasskey {
            id: PasskeyId::generate(),
            user: user.id.clone(),
            credential_id: encode_id(passkey.cred_id().as_ref()),
            name: passkey_name(name, now),
            credential: to_json(&passkey)?,
            created_at: now,
            last_used_at: None,
        };
        match self.store().insert_passkey(&stored).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(PasskeyError::AlreadyRegistered),
            Err(e) => return Err(e.into()),
        }
        self.audit(
            AuditEvent::new(EventType::PasskeyAdded, now)
                .user(&user.id)
                .detail("passkey", stored.id.as_str())
                .detail("name", stored.name.as_str()),
        );
        Ok(stored)
    }

    /// Starts a sign-in with a passkey, for a browser that will come back to `return_to`
    /// (checked by the caller) for `server`.
    pub async fn start_passkey_sign_in(
        &self,
        return_to: &str,
        server: Option<ResourceId>,
    ) -> Result<StartedCeremony, PasskeyError> {
        let webauthn = self.webauthn()?;
        let (mut options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(rejected)?;
        // webauthn-rs asks for conditional mediation (passkey autofill); the sign-in page
        // asks with a button, so the browser's own passkey dialog is wanted.
        options.mediation = None;
        let cookie = self
            .store_ceremony(CeremonyPurpose::SignIn, to_json(&state)?, return_to, server)
            .await?;
        Ok(StartedCeremony {
            options: serde_json::to_value(&options).map_err(rejected)?,
            browser_cookie: cookie,
        })
    }

    /// Finishes a sign-in with the authenticator's answer `credential_json` (a
    /// `PublicKeyCredential` from `navigator.credentials.get`): finds the passkey, checks
    /// the signature, and records its use. The caller starts the person's session.
    pub async fn finish_passkey_sign_in(
        &self,
        browser_cookie: Option<&str>,
        credential_json: &str,
    ) -> Result<FinishedPasskeySignIn, PasskeyError> {
        let webauthn = self.webauthn()?;
        let ceremony = self
            .take_ceremony(browser_cookie, &CeremonyPurpose::SignIn)
            .await?;
        let answer: PublicKeyCredential = answer(credential_json)?;
        let (handle, raw_id) = webauthn
            .identify_discoverable_authentication(&answer)
            .map_err(rejected)?;
        let store = self.store();
        let Some(mut stored) = store.passkey_by_credential(&encode_id(raw_id)).await? else {
            return Err(PasskeyError::UnknownPasskey);
        };
        if user_handle(&stored.user) != handle {
            return Err(PasskeyError::Rejected(
                "the passkey names another account".into(),
            ));
        }
        let mut passkey: Passkey = from_json(&stored.credential, "passkey")?;
        let state: DiscoverableAuthentication =
            from_json(&ceremony.state, "passkey authentication")?;
        let result = webauthn
            .finish_discoverable_authentication_v2(&answer, state, &passkey)
            .map_err(rejected)?;
        let Some(user) = store.user(&stored.user).await? else {
            return Err(PasskeyError::UnknownPasskey);
        };
        if user.disabled_at.is_some() {
            return Err(PasskeyError::AccountDisabled(user.id));
        }
        // The signature counter (where the authenticator keeps one) and backup state.
        if passkey.update_credential(&result) == Some(true) {
            stored.credential = to_json(&passkey)?;
        }
        let now = self.now();
        stored.last_used_at = Some(now);
        store
            .touch_passkey(&stored.id, &stored.credential, now)
            .await?;
        Ok(FinishedPasskeySignIn {
            user,
            passkey: stored,
            return_to: ceremony.return_to,
            server: ceremony.server,
        })
    }

    /// `user`'s passkeys, oldest first.
    pub async fn passkeys_of(&self, user: &UserId) -> Result<Vec<StoredPasskey>, StoreError> {
        self.store().passkeys_of(user).await
    }

    /// Removes `user`'s passkey `id`; `false` if they have no such passkey.
    pub async fn remove_passkey(&self, user: &UserId, id: &PasskeyId) -> Result<bool, StoreError> {
        let removed = self.store().delete_passkey(user, id).await?;
        if removed {
            self.audit(
                AuditEvent::new(EventType::PasskeyRemoved, self.now())
                    .user(user)
                    .detail("passkey", id.as_str()),
            );
        }
        Ok(removed)
    }

    /// Records a passkey sign-in that succeeded.
    pub fn audit_passkey_sign_in(&self, done: &FinishedPasskeySignIn) {
        self.audit(
            AuditEvent::new(EventType::SignInSucceeded, self.now())
                .user(&done.user.id)
                .detail("method", Method::Passkey.as_str())
                .detail("passkey", done.passkey.id.as_str()),
        );
    }

    /// Records a passkey sign-in that failed.
    pub fn audit_passkey_failure(&self, e: &PasskeyError) {
        let mut event = AuditEvent::new(EventType::SignInFailed, self.now())
            .detail("method", Method::Passkey.as_str())
            .detail("reason", e.code());
        if let PasskeyError::AccountDisabled(u) = e {
            event = event.user(u);
        }
        self.audit(event);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FixedClock;
    use crate::store::MemoryStore;

    async fn engine(public: &str) -> Engine {
        Engine::start(
            Issuer::parse(public).unwrap(),
            Arc::new(MemoryStore::new()),
            Arc::new(FixedClock::new(1_800_000_000)),
        )
        .await
        .unwrap()
    }

    #[test]
    fn the_relying_party_is_a_domain_in_a_secure_context() {
        for ok in [
            "https://auth.example.com",
            "http://localhost:8080",
            "https://auth.example.com/tenant",
        ] {
            assert!(relying_party(&Issuer::parse(ok).unwrap()).is_some(), "{ok}");
        }
        for no in [
            "http://127.0.0.1:8080",
            "https://[::1]",
            "http://auth.example.com",
        ] {
            if let Ok(i) = Issuer::parse(no) {
                assert!(relying_party(&i).is_none(), "{no}");
            }
        }
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert_eq!(user_handle(&a), user_handle(&a));
        assert_ne!(user_handle(&a), user_handle(&b));
    }

    #[test]
    fn names_are_trimmed_and_default_to_the_date() {
        let now = UnixTime(1_800_000_000);
        assert_eq!(passkey_name("  Laptop \u{7}", now), "Laptop");
        assert!(passkey_name("", now).starts_with("Passkey added on 2027-"));
        assert_eq!(passkey_name(&"x".repeat(100), now).chars().count(), 60);
    }

    #[tokio::test]
    async fn ceremonies_are_bound_to_the_browser_and_used_once() {
        let e = engine("http://localhost:9").await;
        let started = e.start_passkey_sign_in("", None).await.unwrap();
        let pk = &started.options["publicKey"];
        assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 43));
        assert_eq!(pk["rpId"], "localhost");
        assert!(started.options.get("mediation").is_none());
        let cookie = started.browser_cookie;
        let (id, _) = cookie.split_once('.').unwrap();
        let other = format!("{id}.not-the-secret");
        // Another browser: refused, and the ceremony is spent all the same.
        let e1 = e
            .finish_passkey_sign_in(Some(&other), "{}")
            .await
            .unwrap_err();
        assert_eq!(e1.code(), "no_passkey_request");
        let e2 = e
            .finish_passkey_sign_in(Some(&cookie), "{}")
            .await
            .unwrap_err();
        assert_eq!(e2.code(), "passkey_request_used");
        // A fresh one with a broken answer.
        let c = e
            .start_passkey_sign_in("", None)
            .await
            .unwrap()
            .browser_cookie;
        let e3 = e
            .finish_passkey_sign_in(Some(&c), "{\"id\": 1}")
            .await
            .unwrap_err();
        assert_eq!(e3.code(), "invalid_credential");
        assert_eq!(
            e.finish_passkey_sign_in(None, "{}")
                .await
                .unwrap_err()
                .code(),
            "no_passkey_request"
        );
    }

    #[tokio::test]
    async fn registration_asks_for_a_discoverable_credential() {
        let e = engine("https://auth.example.com").await;
        let user = User {
            id: UserId::generate(),
            email: "ada@example.com".into(),
            password_hash: String::new(),
            admin: false,
            created_at: UnixTime(1),
            disabled_at: None,
        };
        e.store().insert_user(&user).await.unwrap();
        let started = e.start_passkey_registration(&user).await.unwrap();
        let pk = &started.options["publicKey"];
        assert_eq!(pk["rp"]["id"], "auth.example.com");
        assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
        assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
        assert_eq!(pk["user"]["name"], "ada@example.com");
        // Signing in with a registration ceremony is refused.
        let err = e
            .finish_passkey_sign_in(Some(&started.browser_cookie), "{}")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "no_passkey_request");
        // Without a usable host, nothing starts.
        let ip = engine("http://127.0.0.1:9").await;
        assert_eq!(
            ip.start_passkey_sign_in("", None).await.unwrap_err().code(),
            "passkeys_unavailable"
        );
    }
}
