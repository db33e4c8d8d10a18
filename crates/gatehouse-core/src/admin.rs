//! Operator actions on MCP servers, clients, people and keys, shared by the CLI, the admin API
//! and the dashboard. They take the store directly: the CLI runs them against the data
//! directory while the server runs, and the server sees the change through the store's change
//! version.
//!
//! Every change goes through an [`Operator`]: it checks the input, makes the change and
//! records it in the audit log with who made it, so that each front end records the same
//! event for the same change. Reads are plain functions.

use crate::audit::{AuditEvent, AuditSink, EventType};
use crate::clock::UnixTime;
use crate::keys::{KeyError, KeyState, KeyStatus, SigningAlg, StoredKey, key_states};
use crate::model::{
    ApiKey, Client, ClientKind, NewResource, Resource, TokenAuthMethod, User, normalize_email,
};
use crate::password::Password;
use crate::records::{Consent, Session};
use crate::secret::ClientSecret;
use crate::secret::SecretHash;
use crate::signin::{Connection, ConnectionKind, Method, NewConnection, SignInPolicy};
use crate::store::{ConsentFilter, Store, StoreError};
use crate::types::{ApiKeyId, ClientId, ConnectionId, ResourceId, ScopeSet, UserId};

/// Why an operator action failed. Messages are written for the operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// What it refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Key generation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AdminError::Conflict(m),
            other => AdminError::Store(other),
        }
    }
}

/// Generates and stores a key for `alg` unless one exists; `true` if it made one.
pub async fn ensure_signing_key(
    store: &dyn Store,
    alg: SigningAlg,
    now: UnixTime,
) -> Result<bool, AdminError> {
    if store.keys().await?.iter().any(|k| k.alg == alg) {
        return Ok(false);
    }
    // Another node may be making the same first key: only one is stored.
    let first = StoredKey::generate(alg, now)?;
    Ok(store.insert_key_unless(&first, UnixTime(i64::MIN)).await?)
}

/// Who is acting, and where: every change it makes is recorded in the audit log under
/// `actor` (an administrator's `usr_…`, or `cli`).
pub struct Operator<'a> {
    store: &'a dyn Store,
    audit: &'a dyn AuditSink,
    actor: String,
    now: UnixTime,
    /// Whether key-set URLs may be `http` on loopback (development only).
    dev_loopback: bool,
}

impl<'a> Operator<'a> {
    /// `actor` acting on `store` at `now`, recording into `audit`.
    pub fn new(
        store: &'a dyn Store,
        audit: &'a dyn AuditSink,
        actor: impl ToString,
        now: UnixTime,
    ) -> Self {
        Operator {
            store,
            audit,
            actor: actor.to_string(),
            now,
            dev_loopback: false,
        }
    }

    /// Also accepts `http` key-set URLs on loopback hosts, as the server does with
    /// `dev_loopback_metadata_documents` (development only).
    pub fn with_dev_loopback(mut self, on: bool) -> Self {
        self.dev_loopback = on;
        self
    }

    /// Logs and records `event` as done by this operator.
    fn record(&self, event: AuditEvent) {
        let event = event.actor(&self.actor);
        event.log();
        self.audit.record(event);
    }

    /// An `admin.change` event for `action` (`server.created`, …).
    fn change(&self, action: &str) -> AuditEvent {
        AuditEvent::new(EventType::AdminChange, self.now).detail("action", action)
    }

    /// Registers an MCP server, and a signing key for its algorithm if none exists yet.
    pub async fn register_resource(&self, new: NewResource) -> Result<Resource, AdminError> {
        self.check_methods(new.sign_in_methods.as_deref()).await?;
        let resource = Resource::create(new, self.now).map_err(|e| AdminError::Invalid(e.0))?;
        if let Some(same) = self
            .store
            .resources()
            .await?
            .into_iter()
            .find(|r| r.url.matches(resource.url.as_str()))
        {
            return Err(AdminError::Conflict(format!(
                "{} is already registered as {} (\"{}\")",
                resource.url, same.id, same.name
            )));
        }
        ensure_signing_key(self.store, resource.signing_alg, self.now).await?;
        self.store.insert_resource(&resource).await?;
        self.record(
            self.change("server.created")
                .resource(&resource.id)
                .detail("name", resource.name.as_str())
                .detail("url", resource.url.as_str()),
        );
        Ok(resource)
    }

    /// Changes an MCP server, with the same rules as registering one. Tokens already issued
    /// keep their audience and lifetime; a new URL means tokens for the old one no longer fit
    /// it.
    pub async fn update_resource(
        &self,
        id: &str,
        change: ResourceChange,
    ) -> Result<Resource, AdminError> {
        let old = resource(self.store, id).await?;
        let mut desired = NewResource::new(
            change.name.unwrap_or_else(|| old.name.clone()),
            change.url.unwrap_or_else(|| old.url.clone()),
            change.scopes.unwrap_or_else(|| old.scopes.clone()),
        );
        desired.token_ttl = Some(change.token_ttl.unwrap_or(old.token_ttl));
        desired.signing_alg = Some(change.signing_alg.unwrap_or(old.signing_alg));
        desired.refresh_tokens = Some(change.refresh_tokens.unwrap_or(old.refresh_tokens));
        desired.dynamic_registration = Some(
            change
                .dynamic_registration
                .unwrap_or(old.dynamic_registration),
        );
        desired.metadata_documents =
            Some(change.metadata_documents.unwrap_or(old.metadata_documents));
        desired.private_use_redirects = Some(
            change
                .private_use_redirects
                .unwrap_or(old.private_use_redirects),
        );
        desired.sign_in_methods = change
            .sign_in_methods
            .unwrap_or_else(|| old.sign_in_methods.clone());
        self.check_methods(desired.sign_in_methods.as_deref())
            .await?;
        let updated = Resource {
            id: old.id.clone(),
            created_at: old.created_at,
            ..Resource::create(desired, old.created_at).map_err(|e| AdminError::Invalid(e.0))?
        };
        if let Some(same) = self
            .store
            .resources()
            .await?
            .into_iter()
            .find(|r| r.id != updated.id && r.url.matches(updated.url.as_str()))
        {
            return Err(AdminError::Conflict(format!(
                "{} is already registered as {} (\"{}\")",
                updated.url, same.id, same.name
            )));
        }
        ensure_signing_key(self.store, updated.signing_alg, self.now).await?;
        if !self.store.update_resource(&updated).await? {
            return Err(AdminError::NotFound(format!("no MCP server {id}")));
        }
        self.record(self.change("server.updated").resource(&updated.id));
        Ok(updated)
    }

    /// Refuses sign-in methods naming a connection that does not exist.
    async fn check_methods(&self, methods: Option<&[Method]>) -> Result<(), AdminError> {
        for m in methods.unwrap_or_default() {
            if let Method::Connection(id) = m
                && self.store.connection(id).await?.is_none()
            {
                return Err(AdminError::Invalid(format!(
                    "sign-in method {id}: there is no such connection"
                )));
            }
        }
        Ok(())
    }

    /// Removes an MCP server and its clients.
    pub async fn remove_resource(&self, id: &str) -> Result<(), AdminError> {
        let parsed = ResourceId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
        if !self.store.delete_resource(&parsed).await? {
            return Err(AdminError::NotFound(format!("no MCP server {id}")));
        }
        self.record(self.change("server.deleted").resource(&parsed));
        Ok(())
    }

    /// Creates an agent (client-credentials) client for an MCP server. The secret is
    /// returned once and only its hash is stored.
    pub async fn create_agent_client(
        &self,
        resource_id: &str,
        name: &str,
        scopes: ScopeSet,
    ) -> Result<(Client, ClientSecret), AdminError> {
        let secret = ClientSecret::generate();
        let client = self
            .insert_agent(resource_id, name, scopes, AgentAuth::Secret(secret.hash()))
            .await?;
        Ok((client, secret))
    }

    /// Creates an agent client that authenticates with `private_key_jwt` (RFC 7523), as the
    /// MCP client-credentials extension recommends: `keys` is `{"jwks": {…}}` or
    /// `{"jwks_uri": "https://…"}`, public keys only.
    pub async fn create_agent_client_with_keys(
        &self,
        resource_id: &str,
        name: &str,
        scopes: ScopeSet,
        keys: serde_json::Value,
    ) -> Result<Client, AdminError> {
        match crate::client_keys::check_metadata(&keys, self.dev_loopback) {
            Ok(true) => {}
            Ok(false) => {
                return Err(AdminError::Invalid(
                    "give the client's public keys: a JWK Set or a jwks_uri".into(),
                ));
            }
            Err(e) => return Err(AdminError::Invalid(e)),
        }
        let keys = serde_json::json!({
            "jwks": keys.get("jwks"),
            "jwks_uri": keys.get("jwks_uri"),
        });
        let keys = serde_json::Value::Object(
            keys.as_object()
                .into_iter()
                .flatten()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        self.insert_agent(resource_id, name, scopes, AgentAuth::Keys(keys))
            .await
    }

    async fn insert_agent(
        &self,
        resource_id: &str,
        name: &str,
        scopes: ScopeSet,
        auth: AgentAuth,
    ) -> Result<Client, AdminError> {
        let resource = resource(self.store, resource_id).await?;
        let name = crate::model::display_name(name).map_err(|e| AdminError::Invalid(e.0))?;
        let unknown = scopes.missing_from(&resource.scope_set());
        if !unknown.is_empty() {
            return Err(AdminError::Invalid(format!(
                "{} does not offer: {unknown} (it offers: {})",
                resource.id,
                resource.scope_set()
            )));
        }
        let (secret_hash, auth_method, metadata) = match auth {
            AgentAuth::Secret(hash) => (
                Some(hash),
                TokenAuthMethod::ClientSecretBasic,
                serde_json::json!({}),
            ),
            AgentAuth::Keys(keys) => (None, TokenAuthMethod::PrivateKeyJwt, keys),
        };
        let client = Client {
            id: ClientId::generate_agent(),
            resource: Some(resource.id),
            name,
            kind: ClientKind::Agent,
            secret_hash,
            scopes,
            redirect_uris: Vec::new(),
            auth_method,
            metadata,
            registration_token_hash: None,
            created_at: self.now,
            last_used_at: None,
            disabled_at: None,
            tokens_revoked_at: None,
        };
        self.store.insert_client(&client).await?;
        self.record(
            self.client_event(self.change("client.created"), &client)
                .detail("scope", client.scopes.to_param())
                .detail("token_endpoint_auth_method", client.auth_method.as_str()),
        );
        Ok(client)
    }

    /// `event` about `client` (and its MCP server, if it has one).
    fn client_event(&self, event: AuditEvent, client: &Client) -> AuditEvent {
        let event = event.client(&client.id);
        match &client.resource {
            Some(r) => event.resource(r),
            None => event,
        }
    }

    /// Removes a client; its grants go with it and their access tokens are revoked.
    pub async fn remove_client(&self, id: &str) -> Result<(), AdminError> {
        let client = client(self.store, id).await?;
        if !self.store.delete_client(&client.id, self.now).await? {
            return Err(AdminError::NotFound(format!("no client {id}")));
        }
        self.record(
            self.client_event(AuditEvent::new(EventType::ClientDeleted, self.now), &client),
        );
        Ok(())
    }

    /// Gives an agent client a new secret, shown once; the old one stops working at once
    /// (tokens already issued stay valid until they expire).
    pub async fn rotate_client_secret(
        &self,
        id: &str,
    ) -> Result<(Client, ClientSecret), AdminError> {
        let client = client(self.store, id).await?;
        if client.kind != ClientKind::Agent {
            return Err(AdminError::Invalid(format!(
                "{id} is a {} client: only agent clients have a secret the operator manages",
                client.kind.as_str()
            )));
        }
        if client.auth_method == TokenAuthMethod::PrivateKeyJwt {
            // A secret would silently become a second way in beside its keys.
            return Err(AdminError::Invalid(format!(
                "{id} authenticates with private_key_jwt and has no secret: change its keys instead"
            )));
        }
        let secret = ClientSecret::generate();
        if !self
            .store
            .replace_client_secret(&client.id, &secret.hash())
            .await?
        {
            return Err(AdminError::NotFound(format!("no client {id}")));
        }
        self.record(self.client_event(self.change("client.secret_rotated"), &client));
        Ok((client, secret))
    }

    /// Withdraws what `user` allowed `client` at `resource`: the consent goes and every
    /// token issued from it is revoked; the person is asked again next time.
    pub async fn revoke_consent(
        &self,
        user: &str,
        client: &str,
        resource: &str,
    ) -> Result<(UserId, ClientId, ResourceId), AdminError> {
        let u = self::user(self.store, user).await?.id;
        let c = ClientId::parse(client).map_err(|e| AdminError::Invalid(e.0))?;
        let r = ResourceId::parse(resource).map_err(|e| AdminError::Invalid(e.0))?;
        if !self.store.revoke_consent(&u, &c, &r, self.now).await? {
            return Err(AdminError::NotFound(format!(
                "{user} has no consent for {client} at {resource}"
            )));
        }
        self.record(
            AuditEvent::new(EventType::ConsentRevoked, self.now)
                .user(&u)
                .client(&c)
                .resource(&r),
        );
        Ok((u, c, r))
    }

    /// Creates a person who signs in with `email` and `password`. Hashing the password
    /// costs ~24 ms: on a server, hash off the async threads and call
    /// [`Operator::create_user_with_hash`].
    pub async fn create_user(
        &self,
        email: &str,
        password: &Password,
        admin: bool,
    ) -> Result<User, AdminError> {
        self.create_user_with_hash(email, password.hash(), admin)
            .await
    }

    /// Creates a person from a password already hashed with [`Password::hash`].
    pub async fn create_user_with_hash(
        &self,
        email: &str,
        password_hash: String,
        admin: bool,
    ) -> Result<User, AdminError> {
        let email = normalize_email(email).map_err(|e| AdminError::Invalid(e.0))?;
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(AdminError::Conflict(format!(
                "{email} already has an account"
            )));
        }
        let user = User {
            id: UserId::generate(),
            email,
            password_hash,
            admin,
            created_at: self.now,
            disabled_at: None,
        };
        self.store.insert_user(&user).await?;
        self.record(
            self.change("user.created")
                .user(&user.id)
                .detail("admin", admin),
        );
        Ok(user)
    }

    /// Makes a person an administrator, or not.
    pub async fn set_admin(&self, id_or_email: &str, admin: bool) -> Result<User, AdminError> {
        let u = user(self.store, id_or_email).await?;
        if u.admin == admin {
            return Ok(u);
        }
        self.store.set_admin(&u.id, admin).await?;
        let action = if admin {
            "user.admin_granted"
        } else {
            "user.admin_revoked"
        };
        self.record(self.change(action).user(&u.id));
        Ok(User { admin, ..u })
    }

    /// Removes a person: their sessions and consents go, and every token issued to clients
    /// on their behalf is revoked.
    pub async fn remove_user(&self, id_or_email: &str) -> Result<User, AdminError> {
        let u = user(self.store, id_or_email).await?;
        self.store.delete_user(&u.id, self.now).await?;
        self.record(self.change("user.deleted").user(&u.id));
        Ok(u)
    }

    /// Disables a client (it gets no tokens, and every token it holds is revoked: refresh
    /// tokens at once, access tokens through introspection and the revocation feed), or
    /// enables it again. Consents stay.
    pub async fn set_client_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<Client, AdminError> {
        let client = client(self.store, id).await?;
        if client.disabled_at.is_some() == disabled {
            return Ok(client);
        }
        let at = disabled.then_some(self.now);
        if !self.store.set_client_disabled(&client.id, at).await? {
            return Err(AdminError::NotFound(format!("no client {id}")));
        }
        let action = if disabled {
            "client.disabled"
        } else {
            "client.enabled"
        };
        self.record(self.client_event(self.change(action), &client));
        Ok(Client {
            disabled_at: at,
            tokens_revoked_at: at.or(client.tokens_revoked_at),
            ..client
        })
    }

    /// Disables a person (they cannot sign in; their sessions end and every token issued on
    /// their behalf is revoked), or enables them again. Consents stay.
    pub async fn set_user_disabled(
        &self,
        id_or_email: &str,
        disabled: bool,
    ) -> Result<User, AdminError> {
        let u = user(self.store, id_or_email).await?;
        if u.disabled_at.is_some() == disabled {
            return Ok(u);
        }
        let at = disabled.then_some(self.now);
        if !self.store.set_user_disabled(&u.id, at).await? {
            return Err(AdminError::NotFound(format!("no user {id_or_email}")));
        }
        let action = if disabled {
            "user.disabled"
        } else {
            "user.enabled"
        };
        self.record(self.change(action).user(&u.id));
        Ok(User {
            disabled_at: at,
            ..u
        })
    }

    /// Gives a person a new password (hashed with [`Password::hash`]) and ends their sessions.
    pub async fn reset_password(
        &self,
        id_or_email: &str,
        password_hash: String,
    ) -> Result<User, AdminError> {
        let u = user(self.store, id_or_email).await?;
        if !self.store.set_password(&u.id, &password_hash).await? {
            return Err(AdminError::NotFound(format!("no user {id_or_email}")));
        }
        self.record(self.change("user.password_reset").user(&u.id));
        Ok(User { password_hash, ..u })
    }

    /// Ends one session of a person (`session` as [`Session::id`] names it), or all of them;
    /// returns how many ended.
    pub async fn end_sessions(
        &self,
        id_or_email: &str,
        session: Option<&str>,
    ) -> Result<u64, AdminError> {
        let u = user(self.store, id_or_email).await?;
        let ended = match session {
            None => self.store.delete_sessions_of(&u.id).await?,
            Some(wanted) => {
                let Some(found) = self
                    .store
                    .sessions_of(&u.id)
                    .await?
                    .into_iter()
                    .find(|s| s.id() == wanted)
                else {
                    return Err(AdminError::NotFound(format!(
                        "{} has no session {wanted}",
                        u.email
                    )));
                };
                self.store.delete_session(&found.hash).await?;
                1
            }
        };
        self.record(
            self.change("user.sessions_ended")
                .user(&u.id)
                .detail("session", session)
                .detail("ended", ended),
        );
        Ok(ended)
    }

    /// Starts a rotation of the signing key of `alg` (or of every algorithm with a key): a
    /// new key is published now and signs `publish_ahead` seconds from now; the key it
    /// replaces stays published until every token it signed has expired. `Conflict` if a
    /// rotation of that algorithm is already under way.
    pub async fn rotate_keys(
        &self,
        alg: Option<SigningAlg>,
        publish_ahead: i64,
    ) -> Result<Vec<StoredKey>, AdminError> {
        let stored = self.store.keys().await?;
        let states = key_states(&stored, self.now);
        let algs: Vec<SigningAlg> = match alg {
            Some(a) => vec![a],
            None => SigningAlg::ALL
                .into_iter()
                .filter(|a| states.iter().any(|k| k.alg == *a))
                .collect(),
        };
        if algs.is_empty() {
            return Err(AdminError::NotFound("there are no signing keys yet".into()));
        }
        for a in &algs {
            // A first key of an algorithm is made (active at once) when a server needs it.
            if !states
                .iter()
                .any(|k| k.alg == *a && k.state == KeyState::Active)
            {
                return Err(AdminError::NotFound(format!(
                    "there is no {a} key to rotate: no MCP server signs with {a}"
                )));
            }
            if let Some(next) = states
                .iter()
                .find(|k| k.alg == *a && k.state == KeyState::Next)
            {
                return Err(AdminError::Conflict(format!(
                    "a rotation of the {a} key is under way: key {} signs from {}",
                    next.kid,
                    next.activates_at.rfc3339()
                )));
            }
        }
        let mut made = Vec::new();
        for a in algs {
            match self.publish_next_key(a, publish_ahead).await? {
                Some(k) => made.push(k),
                None => {
                    return Err(AdminError::Conflict(format!(
                        "a rotation of the {a} key was started at the same time elsewhere"
                    )));
                }
            }
        }
        Ok(made)
    }

    /// Starts the rotation of every algorithm whose active key has signed for
    /// `period - publish_ahead` seconds and has no successor yet, so that the successor signs
    /// when the period is up.
    pub async fn rotate_due_keys(
        &self,
        period: i64,
        publish_ahead: i64,
    ) -> Result<Vec<StoredKey>, AdminError> {
        let states = key_states(&self.store.keys().await?, self.now);
        let mut made = Vec::new();
        for a in SigningAlg::ALL {
            let pending = states
                .iter()
                .any(|k| k.alg == a && k.state == KeyState::Next);
            let due = states.iter().any(|k| {
                k.alg == a
                    && k.state == KeyState::Active
                    && k.activates_at.0 + period - publish_ahead <= self.now.0
            });
            if due && !pending {
                // `None`: another node published it first.
                made.extend(self.publish_next_key(a, publish_ahead).await?);
            }
        }
        Ok(made)
    }

    /// Publishes a successor for `alg`'s key, unless another one is pending (`None`): the
    /// store checks that and inserts in one step, so nodes rotating at once publish one.
    async fn publish_next_key(
        &self,
        alg: SigningAlg,
        publish_ahead: i64,
    ) -> Result<Option<StoredKey>, AdminError> {
        let mut key = StoredKey::generate(alg, self.now)?;
        // The clock counts whole seconds: one more makes sure the key is published for at
        // least `publish_ahead` before it signs.
        key.activates_at = self.now.plus(publish_ahead.max(0) + 1);
        if !self.store.insert_key_unless(&key, self.now.plus(1)).await? {
            return Ok(None);
        }
        self.record(
            AuditEvent::new(EventType::KeyRotated, self.now)
                .detail("alg", alg.as_str())
                .detail("kid", key.kid.as_str())
                .detail("signs_from", key.activates_at.0),
        );
        Ok(Some(key))
    }

    /// Adds a connection (enabled).
    pub async fn create_connection(&self, new: NewConnection) -> Result<Connection, AdminError> {
        let c = Connection::create(new, self.now).map_err(|e| AdminError::Invalid(e.0))?;
        self.store.insert_connection(&c).await?;
        self.record(
            self.change("connection.created")
                .detail("connection", c.id.as_str())
                .detail("kind", c.kind.name())
                .detail("name", c.name.as_str()),
        );
        Ok(c)
    }

    /// Changes a connection's name, settings, allowed domains or whether it is enabled.
    pub async fn update_connection(
        &self,
        id: &str,
        change: ConnectionChange,
    ) -> Result<Connection, AdminError> {
        let old = connection(self.store, id).await?;
        let invalid = |e: crate::types::ParseError| AdminError::Invalid(e.0);
        let updated = Connection {
            name: match change.name {
                Some(n) => crate::model::display_name(&n).map_err(invalid)?,
                None => old.name.clone(),
            },
            kind: match change.kind {
                Some(k) if k.name() != old.kind.name() => {
                    return Err(AdminError::Invalid(format!(
                        "a {} connection cannot become a {} one: add a new connection instead",
                        old.kind.name(),
                        k.name()
                    )));
                }
                Some(k) => crate::signin::check_kind(k).map_err(invalid)?,
                None => old.kind.clone(),
            },
            allowed_domains: match change.allowed_domains {
                Some(d) => crate::signin::email_domains(d).map_err(invalid)?,
                None => old.allowed_domains.clone(),
            },
            enabled: change.enabled.unwrap_or(old.enabled),
            ..old
        };
        if !self.store.update_connection(&updated).await? {
            return Err(AdminError::NotFound(format!("no connection {id}")));
        }
        self.record(
            self.change("connection.updated")
                .detail("connection", updated.id.as_str())
                .detail("enabled", if updated.enabled { "true" } else { "false" }),
        );
        Ok(updated)
    }

    /// Removes a connection and the identities linked through it (the people stay). Refused
    /// while an MCP server names it among its sign-in methods.
    pub async fn remove_connection(&self, id: &str) -> Result<(), AdminError> {
        let c = connection(self.store, id).await?;
        let method = Method::Connection(c.id.clone());
        if let Some(r) = self.store.resources().await?.into_iter().find(|r| {
            r.sign_in_methods
                .as_ref()
                .is_some_and(|m| m.contains(&method))
        }) {
            return Err(AdminError::Conflict(format!(
                "MCP server {} (\"{}\") offers {}: remove it from that server's sign-in methods first",
                r.id, r.name, c.id
            )));
        }
        if !self.store.delete_connection(&c.id).await? {
            return Err(AdminError::NotFound(format!("no connection {id}")));
        }
        self.record(
            self.change("connection.deleted")
                .detail("connection", c.id.as_str()),
        );
        Ok(())
    }

    /// Sets the built-in methods every MCP server offers unless it names its own.
    pub async fn set_sign_in_policy(&self, policy: SignInPolicy) -> Result<(), AdminError> {
        self.store.set_sign_in_policy(&policy).await?;
        let on = |b: bool| if b { "on" } else { "off" };
        self.record(
            self.change("sign_in.policy_changed")
                .detail("password", on(policy.password))
                .detail("email_code", on(policy.email_code))
                .detail("passkey", on(policy.passkey)),
        );
        Ok(())
    }

    /// Creates an API key acting as administrator `owner`; the secret is returned once.
    pub async fn create_api_key(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<(ApiKey, ClientSecret), AdminError> {
        let u = user(self.store, owner).await?;
        if !u.admin {
            return Err(AdminError::Invalid(format!(
                "{} is not an administrator: make them one first (gatehouse users set-admin {} on)",
                u.email, u.email
            )));
        }
        let name = crate::model::display_name(name).map_err(|e| AdminError::Invalid(e.0))?;
        let secret = ClientSecret::new(crate::random::secret(API_KEY_PREFIX));
        let key = ApiKey {
            id: ApiKeyId::generate(),
            name,
            user: u.id,
            secret_hash: SecretHash::of(secret.expose_secret()),
            created_at: self.now,
            revoked_at: None,
        };
        self.store.insert_api_key(&key).await?;
        self.record(
            self.change("api_key.created")
                .user(&key.user)
                .detail("api_key", key.id.as_str()),
        );
        Ok((key, secret))
    }

    /// Revokes an API key; requests with it are refused from now on.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), AdminError> {
        let parsed = ApiKeyId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
        if !self.store.revoke_api_key(&parsed, self.now).await? {
            return Err(AdminError::NotFound(format!("no API key {id}")));
        }
        self.record(
            self.change("api_key.revoked")
                .detail("api_key", parsed.as_str()),
        );
        Ok(())
    }
}

/// Looks up an MCP server by id.
pub async fn resource(store: &dyn Store, id: &str) -> Result<Resource, AdminError> {
    let parsed = ResourceId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    store
        .resource(&parsed)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no MCP server {id}")))
}

/// Looks up a connection by id.
pub async fn connection(store: &dyn Store, id: &str) -> Result<Connection, AdminError> {
    let parsed = ConnectionId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    store
        .connection(&parsed)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no connection {id}")))
}

/// The built-in methods every MCP server offers unless it names its own.
pub async fn sign_in_policy(store: &dyn Store) -> Result<SignInPolicy, AdminError> {
    Ok(store.sign_in_policy().await?.unwrap_or_default())
}

/// Looks up a stored client by id.
pub async fn client(store: &dyn Store, id: &str) -> Result<Client, AdminError> {
    let parsed = ClientId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    store
        .client(&parsed)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client {id}")))
}

/// The consents matching `filter`, oldest first.
pub async fn consents(
    store: &dyn Store,
    filter: &ConsentFilter,
) -> Result<Vec<Consent>, AdminError> {
    Ok(store.consents(filter).await?)
}

/// The person with this id (`usr_…`) or email.
pub async fn user(store: &dyn Store, id_or_email: &str) -> Result<User, AdminError> {
    let found = match UserId::parse(id_or_email) {
        Ok(id) => store.user(&id).await?,
        Err(_) => match normalize_email(id_or_email) {
            Ok(email) => store.user_by_email(&email).await?,
            Err(_) => None,
        },
    };
    found.ok_or_else(|| AdminError::NotFound(format!("no user {id_or_email}")))
}

/// Every signing key and its state at `now`, per algorithm in activation order.
pub async fn signing_keys(store: &dyn Store, now: UnixTime) -> Result<Vec<KeyStatus>, AdminError> {
    Ok(key_states(&store.keys().await?, now))
}

/// The person's sessions, most recently used first.
pub async fn sessions(store: &dyn Store, id_or_email: &str) -> Result<Vec<Session>, AdminError> {
    let u = user(store, id_or_email).await?;
    Ok(store.sessions_of(&u.id).await?)
}

/// Prefix of admin API key secrets, so that secret scanners recognise them.
pub const API_KEY_PREFIX: &str = "gha_";

/// Why a request to the admin API or dashboard is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No credential, or one that does not (or no longer) exists or was revoked: 401.
    Unauthenticated,
    /// A valid credential of someone who is not an administrator: 403.
    NotAdmin,
}

/// The administrator an API key secret acts as. One SHA-256 and one lookup.
pub async fn api_key_holder(
    store: &dyn Store,
    secret: &str,
) -> Result<Result<User, Denied>, StoreError> {
    let Some(key) = store.api_key(&SecretHash::of(secret)).await? else {
        return Ok(Err(Denied::Unauthenticated));
    };
    if key.revoked_at.is_some() {
        return Ok(Err(Denied::Unauthenticated));
    }
    Ok(match store.user(&key.user).await? {
        None => Err(Denied::Unauthenticated),
        Some(u) if u.disabled_at.is_some() => Err(Denied::Unauthenticated),
        Some(u) if !u.admin => Err(Denied::NotAdmin),
        Some(u) => Ok(u),
    })
}

/// What to change of an MCP server; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ResourceChange {
    pub name: Option<String>,
    pub url: Option<crate::types::ResourceUri>,
    pub scopes: Option<Vec<crate::model::ScopeDef>>,
    pub token_ttl: Option<u32>,
    pub signing_alg: Option<SigningAlg>,
    pub refresh_tokens: Option<crate::model::RefreshPolicy>,
    pub dynamic_registration: Option<bool>,
    pub metadata_documents: Option<bool>,
    pub private_use_redirects: Option<bool>,
    /// `Some(None)` goes back to the operator's default methods.
    pub sign_in_methods: Option<Option<Vec<Method>>>,
}

/// What to change in a connection; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ConnectionChange {
    pub name: Option<String>,
    pub kind: Option<ConnectionKind>,
    pub allowed_domains: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// How a new agent client authenticates.
enum AgentAuth {
    /// With a generated secret (its hash).
    Secret(crate::secret::SecretHash),
    /// With signed assertions, checked with these keys (`jwks` or `jwks_uri`).
    Keys(serde_json::Value),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Recorder;
    use crate::model::ScopeDef;
    use crate::store::MemoryStore;
    use crate::types::ResourceUri;

    /// Every change an operator makes is recorded once, as made by them, with what it
    /// concerns; a refused change records nothing.
    #[tokio::test]
    async fn every_change_is_recorded_once_with_its_actor() {
        let store = MemoryStore::new();
        let audit = Recorder::default();
        let op = Operator::new(&store, &audit, "usr_root", UnixTime(1_800_000_000));
        let r = op
            .register_resource(NewResource::new(
                "To-do",
                ResourceUri::parse("https://todo.example/mcp").unwrap(),
                vec![ScopeDef::parse("todo:read").unwrap()],
            ))
            .await
            .unwrap();
        let (c, _) = op
            .create_agent_client(
                r.id.as_str(),
                "agent",
                ScopeSet::parse("todo:read").unwrap(),
            )
            .await
            .unwrap();
        assert!(
            op.create_agent_client(r.id.as_str(), "x", ScopeSet::parse("nope").unwrap())
                .await
                .is_err()
        );
        op.rotate_client_secret(c.id.as_str()).await.unwrap();
        op.set_client_disabled(c.id.as_str(), true).await.unwrap();
        // Already disabled: nothing changes, nothing is recorded.
        op.set_client_disabled(c.id.as_str(), true).await.unwrap();
        op.set_client_disabled(c.id.as_str(), false).await.unwrap();
        let u = op
            .create_user_with_hash("ada@example.com", "$argon2id$x".into(), false)
            .await
            .unwrap();
        op.set_admin("ada@example.com", true).await.unwrap();
        op.set_user_disabled(u.id.as_str(), true).await.unwrap();
        op.reset_password("ada@example.com", "$argon2id$y".into())
            .await
            .unwrap();
        assert_eq!(op.end_sessions("ada@example.com", None).await.unwrap(), 0);
        op.remove_client(c.id.as_str()).await.unwrap();
        op.remove_user(u.id.as_str()).await.unwrap();
        op.remove_resource(r.id.as_str()).await.unwrap();

        let events = audit.events();
        assert!(
            events
                .iter()
                .all(|e| e.actor.as_deref() == Some("usr_root"))
        );
        let names: Vec<String> = events
            .iter()
            .map(|e| match e.details.get("action") {
                Some(a) => a.as_str().unwrap().to_owned(),
                None => e.event.as_str().to_owned(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "server.created",
                "client.created",
                "client.secret_rotated",
                "client.disabled",
                "client.enabled",
                "user.created",
                "user.admin_granted",
                "user.disabled",
                "user.password_reset",
                "user.sessions_ended",
                "client.deleted",
                "user.deleted",
                "server.deleted",
            ]
        );
        // Client events name the client and its MCP server, whichever front end made them.
        for e in events.iter().filter(|e| names_client(e)) {
            assert_eq!(e.client.as_deref(), Some(c.id.as_str()), "{e:?}");
            assert_eq!(e.resource.as_deref(), Some(r.id.as_str()), "{e:?}");
        }
        assert_eq!(events[1].details["scope"], "todo:read");
    }

    /// A key is replaced after the rotation period: its successor is published the
    /// publish-ahead period before the period ends, once, and signs when it ends.
    #[tokio::test]
    async fn scheduled_rotation_publishes_the_successor_ahead_once() {
        const DAY: i64 = 86_400;
        let t0 = 1_800_000_000;
        let store = MemoryStore::new();
        let audit = Recorder::default();
        ensure_signing_key(&store, SigningAlg::ES256, UnixTime(t0))
            .await
            .unwrap();
        let at = |t: i64| Operator::new(&store, &audit, "scheduler", UnixTime(t));
        let (period, ahead) = (90 * DAY, DAY);
        // Not due yet: one second before the publish-ahead window opens.
        let early = at(t0 + period - ahead - 1);
        assert!(
            early
                .rotate_due_keys(period, ahead)
                .await
                .unwrap()
                .is_empty()
        );
        // Due: the successor is published now and signs when the period ends (the extra
        // second covers whole-second clocks).
        let now = t0 + period - ahead;
        let made = at(now).rotate_due_keys(period, ahead).await.unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].activates_at, UnixTime(t0 + period + 1));
        // A rotation under way is not started again.
        assert!(
            at(now + 60)
                .rotate_due_keys(period, ahead)
                .await
                .unwrap()
                .is_empty()
        );
        let states: Vec<KeyState> = signing_keys(&store, UnixTime(t0 + period + 1))
            .await
            .unwrap()
            .iter()
            .map(|k| k.state)
            .collect();
        assert_eq!(states, [KeyState::Retired, KeyState::Active]);
        let events = audit.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, EventType::KeyRotated);
        assert_eq!(events[0].actor.as_deref(), Some("scheduler"));
        assert_eq!(events[0].details["kid"], made[0].kid.as_str());
    }

    fn names_client(e: &AuditEvent) -> bool {
        e.event == EventType::ClientDeleted
            || e.details
                .get("action")
                .and_then(|a| a.as_str())
                .is_some_and(|a| a.starts_with("client."))
    }
}
