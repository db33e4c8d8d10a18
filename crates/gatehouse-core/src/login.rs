//! Signing in through a connection ([`crate::signin::Connection`]).
//!
//! 1. [`Engine::start_login`]: a login request is stored with the hashes of a `state` and of
//!    a secret for the browser's cookie; the browser goes to the other system with the
//!    request id and the `state`.
//! 2. The other system says who signed in: for bring your own auth, the owner's backend
//!    posts the person's claims ([`Engine::receive_profile`]).
//! 3. [`Engine::finish_login`]: the browser comes back with the `state`; it must be the one
//!    sent, from the browser that started, within [`LOGIN_REQUEST_TTL`], once. The identity
//!    is linked to a person ([`Engine::link_person`]) and the caller starts a session.
//!
//! The `state` is `{login request id}.{secret}`, so the request is found from the state the
//! other system echoes, and a state that is not the one sent is told apart from a request
//! that does not exist.

use crate::audit::{AuditEvent, EventType};
use crate::engine::Engine;
use crate::model::{Resource, User};
use crate::secret::SecretHash;
use crate::signin::{
    Available, Connection, ConnectionKind, Identity, LOGIN_REQUEST_TTL, LoginRequest,
    MAX_CLAIMS_BYTES, Method, Profile, offered,
};
use crate::store::StoreError;
use crate::types::{ConnectionId, LoginRequestId, ResourceId, UserId};

/// Why a sign-in through a connection failed. Messages say what is wrong and what to do;
/// they are shown to the person or returned to the owner's backend.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No such connection (or not an id of one).
    #[error("{0}")]
    UnknownConnection(String),
    /// The connection is turned off.
    #[error("connection {0} is disabled: an administrator turned it off")]
    ConnectionDisabled(ConnectionId),
    /// The step does not apply to this kind of connection.
    #[error("{0}")]
    WrongKind(String),
    /// No such login request at this connection.
    #[error("{0}")]
    UnknownRequest(String),
    /// More than [`LOGIN_REQUEST_TTL`] passed since the request started.
    #[error(
        "login request {0} expired: a sign-in must be finished within 10 minutes; start again from the application"
    )]
    Expired(LoginRequestId),
    /// The request was used already (the browser came back once).
    #[error(
        "login request {0} was already used: each sign-in can be completed once; start again from the application"
    )]
    AlreadyUsed(LoginRequestId),
    /// The other system already said who signed in for this request.
    #[error("login request {0} already has the person's details: they can be sent once")]
    ProfileAlreadySent(LoginRequestId),
    /// The claims are not acceptable.
    #[error("{0}")]
    InvalidClaims(String),
    /// The browser came back before the other system said who signed in.
    #[error(
        "login request {0} has no person's details yet: the login system must POST them to /api/v1/connections/{1}/auth-requests/{0}/user before redirecting the browser back"
    )]
    NoProfileYet(LoginRequestId, ConnectionId),
    /// The `state` is not the one Gatehouse sent.
    #[error(
        "the state does not match the one Gatehouse sent to the login page: send back exactly the `state` you received"
    )]
    StateMismatch,
    /// The request was started in another browser (or its cookie is gone).
    #[error(
        "this sign-in was started in another browser, or its cookie expired: start again from the application in this browser"
    )]
    OtherBrowser,
    /// The email is an existing account's, and the other system does not vouch for it.
    #[error(
        "{0} belongs to an existing account, and the login system did not say the email is verified (email_verified: true), so it cannot be linked"
    )]
    EmailNotVerified(String),
    /// An OpenID Connect provider did not say the email is verified.
    #[error(
        "the identity provider did not say {0} is verified (email_verified: true): only verified addresses can sign in through it"
    )]
    ProviderEmailNotVerified(String),
    /// The connection only accepts some email domains.
    #[error("{0} is not in a domain this connection accepts")]
    DomainNotAllowed(String),
    /// The person's account is disabled.
    #[error("this account is disabled: ask the administrator of this server")]
    AccountDisabled(UserId),
    /// The upstream provider could not be reached or answered with an error.
    #[error("{0}")]
    Upstream(String),
    /// The person (or the provider) declined at the provider.
    #[error("{0}")]
    Declined(String),
    /// The provider's ID token failed a check (signature, issuer, audience, nonce, expiry).
    #[error("the identity provider's ID token was refused: {0}")]
    InvalidIdToken(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LoginError {
    /// A short machine-readable code for the error (the JSON `error` of the API).
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::UnknownConnection(_) => "connection_not_found",
            LoginError::ConnectionDisabled(_) => "connection_disabled",
            LoginError::WrongKind(_) => "wrong_connection_kind",
            LoginError::UnknownRequest(_) => "login_request_not_found",
            LoginError::Expired(_) => "login_request_expired",
            LoginError::AlreadyUsed(_) => "login_request_used",
            LoginError::ProfileAlreadySent(_) => "login_request_completed",
            LoginError::InvalidClaims(_) => "invalid_claims",
            LoginError::NoProfileYet(..) => "login_request_pending",
            LoginError::StateMismatch => "state_mismatch",
            LoginError::OtherBrowser => "browser_mismatch",
            LoginError::EmailNotVerified(_) | LoginError::ProviderEmailNotVerified(_) => {
                "email_not_verified"
            }
            LoginError::DomainNotAllowed(_) => "email_domain_not_allowed",
            LoginError::AccountDisabled(_) => "account_disabled",
            LoginError::Upstream(_) => "upstream_unavailable",
            LoginError::Declined(_) => "access_denied",
            LoginError::InvalidIdToken(_) => "invalid_id_token",
            LoginError::Store(_) => "temporarily_unavailable",
        }
    }
}

/// A login request just started: what to send to the other system and to the browser.
#[derive(Debug)]
pub struct StartedLogin {
    pub connection: Connection,
    pub request: LoginRequest,
    /// The `state` for the other system (`{request id}.{secret}`).
    pub state: String,
    /// The secret for the browser's cookie.
    pub browser_secret: String,
}

impl StartedLogin {
    /// Where to send the browser: for bring your own auth, the login URL with
    /// `login_request_id` and `state`.
    pub fn redirect_url(&self) -> Option<String> {
        match &self.connection.kind {
            ConnectionKind::Federated { login_url } => {
                let mut url = url::Url::parse(login_url).ok()?;
                url.query_pairs_mut()
                    .append_pair("login_request_id", self.request.id.as_str())
                    .append_pair("state", &self.state);
                Some(url.to_string())
            }
            // The server builds the provider's authorization URL (from its discovery
            // document, for OpenID Connect).
            ConnectionKind::Oidc { .. } | ConnectionKind::Github { .. } => None,
        }
    }
}

/// A finished sign-in: who, and where the browser goes next.
#[derive(Debug)]
pub struct FinishedLogin {
    pub user: User,
    pub connection: ConnectionId,
    pub return_to: String,
    pub server: Option<ResourceId>,
}

/// The login request id a `state` names, if it has the shape of one.
pub fn request_in_state(state: &str) -> Option<LoginRequestId> {
    let (id, _) = state.split_once('.')?;
    LoginRequestId::parse(id).ok()
}

impl Engine {
    /// The sign-in methods offered for `resource` (or, with none, for any MCP server), and
    /// the enabled connections among them, in order.
    pub async fn offered_methods(
        &self,
        resource: Option<&Resource>,
    ) -> Result<(Vec<Method>, Vec<Connection>), StoreError> {
        let store = self.store();
        let policy = store.sign_in_policy().await?.unwrap_or_default();
        let connections = store.connections().await?;
        let methods = offered(
            resource,
            &policy,
            &connections,
            Available {
                email_code: self.settings().email_delivery,
                passkey: self.passkeys_available(),
            },
        );
        let offered_connections = methods
            .iter()
            .filter_map(|m| match m {
                Method::Connection(id) => connections.iter().find(|c| &c.id == id).cloned(),
                _ => None,
            })
            .collect();
        Ok((methods, offered_connections))
    }

    /// The enabled connection with id `raw` (as typed in a URL).
    async fn live_connection(&self, raw: &str) -> Result<Connection, LoginError> {
        let id = ConnectionId::parse(raw).map_err(|e| LoginError::UnknownConnection(e.0))?;
        let Some(c) = self.store().connection(&id).await? else {
            return Err(LoginError::UnknownConnection(format!(
                "there is no connection {id}: check the connection id on the connection's page in the dashboard"
            )));
        };
        if !c.enabled {
            return Err(LoginError::ConnectionDisabled(id));
        }
        Ok(c)
    }

    /// Starts a sign-in through connection `connection` for a browser that will come back to
    /// `return_to` (an authorization request, already checked by the caller, or empty).
    pub async fn start_login(
        &self,
        connection: &str,
        return_to: &str,
        server: Option<ResourceId>,
    ) -> Result<StartedLogin, LoginError> {
        let connection = self.live_connection(connection).await?;
        let id = LoginRequestId::generate();
        let state = format!("{}.{}", id, crate::random::secret(""));
        let browser_secret = crate::random::secret("");
        let now = self.now();
        let request = LoginRequest {
            id,
            connection: connection.id.clone(),
            state_hash: SecretHash::of(&state),
            browser_hash: SecretHash::of(&browser_secret),
            return_to: return_to.to_owned(),
            server,
            created_at: now,
            expires_at: now.plus(LOGIN_REQUEST_TTL),
            profile: None,
            used_at: None,
        };
        self.store().insert_login_request(&request).await?;
        Ok(StartedLogin {
            connection,
            request,
            state,
            browser_secret,
        })
    }

    /// The login request `request` of connection `connection`, unexpired and unused.
    async fn open_request(
        &self,
        connection: &Connection,
        request: &str,
    ) -> Result<LoginRequest, LoginError> {
        let unknown = || {
            LoginError::UnknownRequest(format!(
                "there is no login request {request} at connection {}: use the login_request_id Gatehouse sent to your login page, with the connection it came from",
                connection.id
            ))
        };
        let id = LoginRequestId::parse(request).map_err(|_| unknown())?;
        let r = self
            .store()
            .login_request(&id)
            .await?
            .filter(|r| r.connection == connection.id)
            .ok_or_else(unknown)?;
        if r.used_at.is_some() {
            return Err(LoginError::AlreadyUsed(r.id));
        }
        if r.expires_at <= self.now() {
            return Err(LoginError::Expired(r.id));
        }
        Ok(r)
    }

    /// Bring your own auth, step 2: the owner's backend says who signed in for a login
    /// request, as OpenID Connect claims (a JSON object of at most [`MAX_CLAIMS_BYTES`]).
    pub async fn receive_profile(
        &self,
        connection: &str,
        request: &str,
        claims: &[u8],
    ) -> Result<Profile, LoginError> {
        let connection = self.live_connection(connection).await?;
        if !matches!(connection.kind, ConnectionKind::Federated { .. }) {
            return Err(LoginError::WrongKind(format!(
                "connection {} is not a bring-your-own-auth connection: only those accept a person's details from a backend",
                connection.id
            )));
        }
        let r = self.open_request(&connection, request).await?;
        if claims.len() > MAX_CLAIMS_BYTES {
            return Err(LoginError::InvalidClaims(format!(
                "the claims must be at most {MAX_CLAIMS_BYTES} bytes of JSON"
            )));
        }
        let map = match serde_json::from_slice::<serde_json::Value>(claims) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => {
                return Err(LoginError::InvalidClaims(
                    "the body must be a JSON object of claims (sub, email, email_verified, name, …)".into(),
                ));
            }
            Err(e) => {
                return Err(LoginError::InvalidClaims(format!(
                    "the body is not JSON: {e}"
                )));
            }
        };
        let profile = Profile::from_claims(map).map_err(|e| LoginError::InvalidClaims(e.0))?;
        if !self.store().set_login_profile(&r.id, &profile).await? {
            // Another call got there first, or the browser came back in between.
            let now = self.store().login_request(&r.id).await?;
            return Err(match now.and_then(|n| n.used_at) {
                Some(_) => LoginError::AlreadyUsed(r.id),
                None => LoginError::ProfileAlreadySent(r.id),
            });
        }
        Ok(profile)
    }

    /// Step 3: the browser is back at connection `connection` with `state`; `browser` is the
    /// secret from its cookie for the request the state names. Uses the request and links
    /// the person; the caller starts their session.
    pub async fn finish_login(
        &self,
        connection: &str,
        state: &str,
        browser: Option<&str>,
    ) -> Result<FinishedLogin, LoginError> {
        let (connection, r) = self.returned(connection, state, browser).await?;
        let Some(profile) = r.profile.clone() else {
            return Err(LoginError::NoProfileYet(r.id, connection.id));
        };
        self.complete_login(&connection, r, &profile).await
    }

    /// The browser is back at connection `connection` with `state`, and `browser` is the
    /// secret from its cookie: the connection and its login request, if the state is the one
    /// sent, from this browser, unexpired and unused. Uses nothing.
    pub async fn returned(
        &self,
        connection: &str,
        state: &str,
        browser: Option<&str>,
    ) -> Result<(Connection, LoginRequest), LoginError> {
        let connection = self.live_connection(connection).await?;
        let Some(id) = request_in_state(state) else {
            return Err(LoginError::StateMismatch);
        };
        let r = self.open_request(&connection, id.as_str()).await?;
        if !r.state_hash.matches(state) {
            return Err(LoginError::StateMismatch);
        }
        if !browser.is_some_and(|b| r.browser_hash.matches(b)) {
            return Err(LoginError::OtherBrowser);
        }
        Ok((connection, r))
    }

    /// Uses login request `r` (once: of two concurrent uses, one wins) and links the person
    /// `profile` describes; the caller starts their session.
    pub async fn complete_login(
        &self,
        connection: &Connection,
        r: LoginRequest,
        profile: &Profile,
    ) -> Result<FinishedLogin, LoginError> {
        let taken = self.store().take_login_request(&r.id, self.now()).await?;
        if taken.is_none_or(|t| t.used_at.is_some()) {
            return Err(LoginError::AlreadyUsed(r.id));
        }
        let user = self.link_person(connection, profile).await?;
        Ok(FinishedLogin {
            user,
            connection: connection.id.clone(),
            return_to: r.return_to,
            server: r.server,
        })
    }

    /// The person `profile` signs in as through `connection`: the one its identity is linked
    /// to; else the account with the same email, if the other system vouches for the email
    /// (then the identity is linked to it); else a new account (without a password).
    pub async fn link_person(
        &self,
        connection: &Connection,
        profile: &Profile,
    ) -> Result<User, LoginError> {
        if !connection.allows_email(&profile.email) {
            return Err(LoginError::DomainNotAllowed(profile.email.clone()));
        }
        // A provider anyone can sign up at may hand out addresses it never checked: an
        // identity provider's identity counts only with a verified email, for a new account
        // too (the address would otherwise be taken from its owner).
        if connection.kind.is_provider() && !profile.email_verified {
            return Err(LoginError::ProviderEmailNotVerified(profile.email.clone()));
        }
        let store = self.store();
        let now = self.now();
        // Two attempts: a concurrent first sign-in of the same person may link in between.
        for _ in 0..2 {
            if let Some(identity) = store.identity(&connection.id, &profile.subject).await? {
                store
                    .touch_identity(&connection.id, &profile.subject, profile, now)
                    .await?;
                let user = store.user(&identity.user).await?.ok_or_else(|| {
                    StoreError::Backend(format!("identity of a missing person {}", identity.user))
                })?;
                return active(user);
            }
            let identity = |user: UserId| Identity {
                connection: connection.id.clone(),
                subject: profile.subject.clone(),
                user,
                profile: profile.clone(),
                created_at: now,
                last_used_at: now,
            };
            let result = match store.user_by_email(&profile.email).await? {
                Some(existing) => {
                    if !profile.email_verified {
                        return Err(LoginError::EmailNotVerified(profile.email.clone()));
                    }
                    store
                        .link_identity(&identity(existing.id.clone()), None)
                        .await
                        .map(|()| existing)
                }
                None => {
                    let user = User {
                        id: UserId::generate(),
                        email: profile.email.clone(),
                        password_hash: String::new(),
                        admin: false,
                        created_at: now,
                        disabled_at: None,
                    };
                    store
                        .link_identity(&identity(user.id.clone()), Some(&user))
                        .await
                        .map(|()| user)
                }
            };
            match result {
                Ok(user) => {
                    self.audit(
                        AuditEvent::new(EventType::IdentityLinked, now)
                            .user(&user.id)
                            .detail("connection", connection.id.as_str())
                            .detail("subject", profile.subject.as_str()),
                    );
                    return active(user);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Backend("could not link the identity".into()).into())
    }

    /// Records a sign-in through a connection that failed.
    pub fn audit_login_failure(&self, connection: &str, e: &LoginError) {
        let mut event = AuditEvent::new(EventType::SignInFailed, self.now())
            .detail("method", connection)
            .detail("reason", e.code());
        if let LoginError::AccountDisabled(u) = e {
            event = event.user(u);
        }
        self.audit(event);
    }

    /// Records a sign-in through a connection that succeeded.
    pub fn audit_login(&self, done: &FinishedLogin) {
        self.audit(
            AuditEvent::new(EventType::SignInSucceeded, self.now())
                .user(&done.user.id)
                .detail(
                    "method",
                    Method::Connection(done.connection.clone()).as_str(),
                ),
        );
    }
}

fn active(user: User) -> Result<User, LoginError> {
    match user.disabled_at {
        Some(_) => Err(LoginError::AccountDisabled(user.id)),
        None => Ok(user),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::Recorder;
    use crate::clock::FixedClock;
    use crate::signin::NewConnection;
    use crate::store::MemoryStore;
    use crate::{Issuer, UnixTime};

    const T0: i64 = 1_800_000_000;

    async fn engine() -> (Engine, Arc<FixedClock>, Connection) {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(FixedClock::new(T0));
        let audit = Recorder::default();
        let op = crate::admin::Operator::new(store.as_ref(), &audit, "test", UnixTime(T0));
        let c = op
            .create_connection(NewConnection {
                name: "Acme".into(),
                kind: ConnectionKind::Federated {
                    login_url: "https://login.acme.example/start".into(),
                },
                allowed_domains: vec![],
            })
            .await
            .unwrap();
        let engine = Engine::start(
            Issuer::parse("https://auth.example").unwrap(),
            store,
            clock.clone(),
        )
        .await
        .unwrap();
        (engine, clock, c)
    }

    const CLAIMS: &[u8] = br#"{"sub": "1", "email": "ada@example.com", "email_verified": true}"#;

    #[tokio::test]
    async fn a_login_request_lives_ten_minutes() {
        let (e, clock, c) = engine().await;
        let started = e.start_login(c.id.as_str(), "", None).await.unwrap();
        let url = started.redirect_url().unwrap();
        assert!(
            url.starts_with("https://login.acme.example/start?login_request_id=lr_"),
            "{url}"
        );
        clock.advance(LOGIN_REQUEST_TTL - 1);
        e.receive_profile(c.id.as_str(), started.request.id.as_str(), CLAIMS)
            .await
            .unwrap();
        clock.advance(1);
        let late = e
            .finish_login(c.id.as_str(), &started.state, Some(&started.browser_secret))
            .await
            .unwrap_err();
        assert!(matches!(late, LoginError::Expired(_)), "{late:?}");
        assert!(late.to_string().contains("within 10 minutes"));
        assert!(matches!(
            e.receive_profile(c.id.as_str(), started.request.id.as_str(), CLAIMS)
                .await,
            Err(LoginError::Expired(_))
        ));
    }

    #[tokio::test]
    async fn a_login_request_is_finished_once_and_creates_one_person() {
        let (e, _clock, c) = engine().await;
        let started = e
            .start_login(c.id.as_str(), "/oauth/authorize?x=1", None)
            .await
            .unwrap();
        e.receive_profile(c.id.as_str(), started.request.id.as_str(), CLAIMS)
            .await
            .unwrap();
        let done = e
            .finish_login(c.id.as_str(), &started.state, Some(&started.browser_secret))
            .await
            .unwrap();
        assert_eq!(done.user.email, "ada@example.com");
        assert_eq!(done.return_to, "/oauth/authorize?x=1");
        assert!(!done.user.has_password());
        assert!(matches!(
            e.finish_login(c.id.as_str(), &started.state, Some(&started.browser_secret))
                .await,
            Err(LoginError::AlreadyUsed(_))
        ));
        // Signing in again finds the same person.
        let again = e.start_login(c.id.as_str(), "", None).await.unwrap();
        e.receive_profile(c.id.as_str(), again.request.id.as_str(), CLAIMS)
            .await
            .unwrap();
        let second = e
            .finish_login(c.id.as_str(), &again.state, Some(&again.browser_secret))
            .await
            .unwrap();
        assert_eq!(second.user.id, done.user.id);
        assert_eq!(e.store().users().await.unwrap().len(), 1);
    }
}
