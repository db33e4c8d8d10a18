//! The engine: what every endpoint needs (public issuer, store, cached catalog, keys, clock),
//! and the entry points the HTTP adapter calls.

use std::sync::{Arc, RwLock};

use crate::admin;
use crate::audit::{AuditEvent, AuditSink, EventType};
use crate::cache::Catalog;
use crate::cimd::MetadataDocuments;
use crate::client_keys::{Found, KeySets};
use crate::clock::{Clock, UnixTime};
use crate::error::OAuthError;
use crate::keys::{KeyError, KeyRing, SigningAlg, SigningKey};
use crate::metadata::AuthorizationServerMetadata;
use crate::model::{Client, ClientKind, Resource};
use crate::params::FormParams;
use crate::remote::DocumentFetcher;
use crate::store::{Store, StoreError};
use crate::token::TokenResponse;
use crate::types::{Issuer, ResourceId};

/// The issuer a request was addressed to: the root, or one MCP server's.
#[derive(Debug, Clone)]
pub struct IssuerContext {
    /// The issuer identifier; a token's `iss` is the issuer whose endpoint minted it.
    pub issuer: Issuer,
    /// The MCP server of a per-resource issuer.
    pub resource: Option<Arc<Resource>>,
    /// The `User-Agent` of the request, cleaned ([`IssuerContext::with_user_agent`]): audit
    /// events of refused requests name the host.
    pub user_agent: Option<String>,
}

impl IssuerContext {
    /// This context for a request that sent `user_agent`: control characters dropped, at
    /// most 200 characters kept (it is the client's text).
    pub fn with_user_agent(mut self, user_agent: Option<&str>) -> Self {
        self.user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|ua| !ua.is_empty());
        self
    }

    /// An audit event of `kind` about a request here, at `now`: with its MCP server, the
    /// issuer, and the host's `User-Agent`.
    pub fn event(&self, kind: EventType, now: UnixTime) -> AuditEvent {
        let mut event = AuditEvent::new(kind, now)
            .detail("issuer", self.issuer.as_str())
            .detail("user_agent", self.user_agent.clone());
        if let Some(r) = &self.resource {
            event = event.resource(&r.id);
        }
        event
    }
}

/// Lifetimes and windows of the interactive flow, in seconds. The defaults are what the
/// configuration reference documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Authorization code lifetime (at most 60 s).
    pub code_ttl: i64,
    /// Refresh token lifetime; each rotation starts a new one.
    pub refresh_token_ttl: i64,
    /// How long after a refresh token is rotated an identical retry gets the same answer
    /// instead of revoking the grant.
    pub refresh_grace: i64,
    /// A session unused for this long ends.
    pub session_idle: i64,
    /// A session ends this long after sign-in, however active.
    pub session_max: i64,
    /// A self-registered client that obtains no token for this long is deleted.
    pub registration_ttl: i64,
    /// A self-registered client that never obtained a token is deleted this long after it
    /// registered.
    pub unused_registration_ttl: i64,
    /// Audit events older than this are deleted.
    pub audit_retention: i64,
    /// A new signing key is published this long before it signs (the JWKS cache age of
    /// resource servers).
    pub key_publish_ahead: i64,
    /// Each algorithm's signing key is replaced after this long; 0 turns scheduled rotation
    /// off.
    pub key_rotation: i64,
    /// Whether email can be sent, so that email codes can be offered.
    pub email_delivery: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            code_ttl: 60,
            refresh_token_ttl: 30 * 86_400,
            refresh_grace: 10,
            session_idle: 12 * 3_600,
            session_max: 7 * 86_400,
            registration_ttl: 30 * 86_400,
            unused_registration_ttl: 86_400,
            audit_retention: 90 * 86_400,
            key_publish_ahead: 86_400,
            key_rotation: 90 * 86_400,
            email_delivery: false,
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be generated or parsed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A missing key could not be created.
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
}

/// The sink of an engine without one: events are only logged.
struct LogOnly;

#[async_trait::async_trait]
impl AuditSink for LogOnly {
    fn record(&self, _: AuditEvent) {}
}

/// Decides whether an authenticated confidential client may have another token now: the
/// adapter's per-client rate limit. `Err(seconds)` to wait.
pub trait Admission: Send + Sync {
    /// Counts one token request of `client`, made for `resource` if known.
    fn admit(&self, client: &Client, resource: Option<&ResourceId>) -> Result<(), u64>;
}

/// Records of each kind a clean-up pass deletes at most: a pass holds the database for
/// milliseconds, however much has piled up.
pub const PRUNE_LIMIT: u32 = 1000;

/// The authorization server's protocol engine.
pub struct Engine {
    public: Issuer,
    store: Arc<dyn Store>,
    catalog: Catalog,
    keys: RwLock<Arc<KeyRing>>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    documents: Option<MetadataDocuments>,
    /// Clients' public keys, for `private_key_jwt`.
    key_sets: KeySets,
    audit: Arc<dyn AuditSink>,
    /// The WebAuthn relying party, when the public URL can be one.
    webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Per-client limits on the token endpoint; none by default.
    admission: Option<Arc<dyn Admission>>,
}

impl Engine {
    /// Makes sure a signing key exists for RS256 and for every algorithm an MCP server uses
    /// (generating and storing what is missing), then parses every key once.
    pub async fn start(
        public: Issuer,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, StartError> {
        let mut algs = vec![SigningAlg::RS256];
        algs.extend(store.resources().await?.iter().map(|r| r.signing_alg));
        for alg in algs {
            admin::ensure_signing_key(store.as_ref(), alg, clock.now()).await?;
        }
        let ring = KeyRing::load(&store.keys().await?, clock.now())?;
        Ok(Engine {
            catalog: Catalog::new(store.clone()),
            store,
            keys: RwLock::new(Arc::new(ring)),
            clock,
            settings: Settings::default(),
            documents: None,
            key_sets: KeySets::new(None, false),
            audit: Arc::new(LogOnly),
            webauthn: crate::passkey::relying_party(&public).map(Arc::new),
            admission: None,
            public,
        })
    }

    /// Uses `settings` instead of the defaults.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Accepts Client ID Metadata Documents and clients' key sets at `jwks_uri`, fetched by
    /// `fetcher`. Without one, URL client ids are refused and only key sets in metadata are
    /// used. `dev_loopback` also accepts `http` URLs on loopback hosts.
    pub fn with_document_fetcher(
        mut self,
        fetcher: Arc<dyn DocumentFetcher>,
        dev_loopback: bool,
    ) -> Self {
        self.documents = Some(MetadataDocuments::new(fetcher.clone(), dev_loopback));
        self.key_sets = KeySets::new(Some(fetcher), dev_loopback);
        self
    }

    /// Limits confidential clients' token requests with `admission`.
    pub fn with_admission(mut self, admission: Arc<dyn Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// Counts a token request of an authenticated `client` against its limit. Only clients
    /// that proved who they are are limited by id: anyone can send a public client's id (a
    /// metadata document URL is shared by every user of an MCP host), so those are limited
    /// by address at the HTTP layer instead. A metadata-document client with keys (ChatGPT)
    /// is one host's shared identity too: it is not limited by id either.
    pub fn admit(&self, client: &Client, ctx: &IssuerContext) -> Result<(), OAuthError> {
        let Some(a) = &self.admission else {
            return Ok(());
        };
        if !client.is_confidential() || client.id.is_url() {
            return Ok(());
        }
        let resource = ctx
            .resource
            .as_ref()
            .map(|r| &r.id)
            .or(client.resource.as_ref());
        a.admit(client, resource).map_err(OAuthError::rate_limited)
    }

    /// Sends audit events to `sink` (by default they are only logged).
    pub fn with_audit_sink(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = sink;
        self
    }

    /// Records an audit event: one structured log line, and the sink. Never blocks or fails.
    pub fn audit(&self, event: AuditEvent) {
        event.log();
        self.audit.record(event);
    }

    /// `actor` (an administrator's id, `cli`, …) changing things now, with every change
    /// recorded in this engine's audit log.
    pub fn operator(&self, actor: impl ToString) -> admin::Operator<'_> {
        admin::Operator::new(self.store.as_ref(), self.audit.as_ref(), actor, self.now())
            .with_dev_loopback(self.key_sets.dev_loopback())
    }

    /// Waits until every audit event recorded so far is stored.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// The lifetimes in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The metadata-document resolver, if documents are accepted.
    pub fn documents(&self) -> Option<&MetadataDocuments> {
        self.documents.as_ref()
    }

    /// Whether `http` URLs on loopback hosts are accepted for documents and key sets
    /// (development only).
    pub fn dev_loopback_fetches(&self) -> bool {
        self.key_sets.dev_loopback()
    }

    /// `client`'s public keys at `now` ([`KeySets::of_client`]).
    pub async fn client_keys(
        &self,
        client: &Client,
        kid: Option<&str>,
        alg: jsonwebtoken::Algorithm,
        now: UnixTime,
    ) -> Found {
        self.key_sets.of_client(client, kid, alg, now).await
    }

    /// Notes that `client` obtained a token, for the expiry of unused registrations. Writes
    /// at most once a day per client.
    pub async fn note_client_use(&self, client: &Client) {
        if client.kind != ClientKind::Registered {
            return;
        }
        let now = self.now();
        // The first use is always written: a registration that never got a token goes
        // sooner than one that did.
        if client
            .last_used_at
            .is_some_and(|last| now.0 - last.0 < 86_400)
        {
            return;
        }
        if let Err(e) = self.store.touch_client(&client.id, now).await {
            tracing::warn!(client = %client.id, error = %e, "could not record client use");
            return;
        }
        self.catalog.forget_client(&client.id);
    }

    /// Deletes expired records and unused registrations: one bounded pass
    /// ([`PRUNE_LIMIT`] of each kind); run another while [`Pruned::more`](crate::records::Pruned).
    pub async fn prune(&self) -> Result<crate::records::Pruned, StoreError> {
        let now = self.now();
        let pruned = self
            .store
            .prune(&crate::records::Prune {
                now,
                sessions_idle_before: now.plus(-self.settings.session_idle),
                sessions_created_before: now.plus(-self.settings.session_max),
                registrations_unused_before: now.plus(-self.settings.registration_ttl),
                registrations_never_used_before: now.plus(-self.settings.unused_registration_ttl),
                audit_before: now.plus(-self.settings.audit_retention),
                limit: PRUNE_LIMIT,
            })
            .await?;
        if pruned.deleted > 0 {
            self.catalog.invalidate();
        }
        Ok(pruned)
    }

    /// The WebAuthn relying party ([`crate::passkey::relying_party`]), if passkeys can be
    /// used here.
    pub fn relying_party(&self) -> Option<&webauthn_rs::Webauthn> {
        self.webauthn.as_deref()
    }

    /// Whether people can add and use passkeys (the public URL can be a WebAuthn relying
    /// party).
    pub fn passkeys_available(&self) -> bool {
        self.webauthn.is_some()
    }

    /// The public issuer: the root issuer of this Gatehouse.
    pub fn public_issuer(&self) -> &Issuer {
        &self.public
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The cached view of MCP servers and clients.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The current time.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The keys in use.
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The issuer for the root (`None`) or for an MCP server; `Ok(None)` if there is no such
    /// server.
    pub async fn issuer_context(
        &self,
        resource: Option<&str>,
    ) -> Result<Option<IssuerContext>, OAuthError> {
        let Some(id) = resource else {
            return Ok(Some(IssuerContext {
                issuer: self.public.clone(),
                resource: None,
                user_agent: None,
            }));
        };
        let Ok(id) = ResourceId::parse(id) else {
            return Ok(None);
        };
        Ok(self.catalog.resource(&id).await?.map(|r| IssuerContext {
            issuer: r.issuer(&self.public),
            resource: Some(r),
            user_agent: None,
        }))
    }

    /// The key that signs with `alg`. If another process added an MCP server with a new
    /// algorithm, its key is loaded (or created) here, once.
    pub async fn signer(&self, alg: SigningAlg) -> Result<Arc<SigningKey>, OAuthError> {
        if let Some(k) = self.keys().signer(alg) {
            return Ok(k.clone());
        }
        admin::ensure_signing_key(self.store.as_ref(), alg, self.now())
            .await
            .map_err(OAuthError::server_error)?;
        self.reload_keys().await.map_err(OAuthError::server_error)?;
        self.keys()
            .signer(alg)
            .cloned()
            .ok_or_else(|| OAuthError::server_error(format!("no {alg} signing key")))
    }

    /// Re-reads and re-parses every key.
    pub async fn reload_keys(&self) -> Result<(), StartError> {
        let ring = KeyRing::load(&self.store.keys().await?, self.now())?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        Ok(())
    }

    /// Picks up changes made by other processes: drops the cached catalog and reloads keys
    /// when the store's change version moved, and rebuilds the key ring when a key activates
    /// or expires.
    pub async fn refresh(&self) -> Result<(), StartError> {
        let keys_due = self.keys().changes_at().is_some_and(|t| t <= self.now());
        if self.catalog.sync().await? || keys_due {
            self.reload_keys().await?;
        }
        Ok(())
    }

    /// `actor` rotates the signing key of `alg` (or of every algorithm in use) now, with this
    /// engine's publish-ahead period (see [`admin::Operator::rotate_keys`]); the next keys
    /// are in this process's JWKS at once. Returns the keys published.
    pub async fn rotate_keys(
        &self,
        actor: &str,
        alg: Option<SigningAlg>,
    ) -> Result<Vec<crate::keys::StoredKey>, admin::AdminError> {
        let ahead = self.settings().key_publish_ahead;
        let made = self.operator(actor).rotate_keys(alg, ahead).await?;
        self.publish(&made).await;
        Ok(made)
    }

    /// Starts the scheduled rotation of every algorithm whose active key is due (see
    /// [`admin::Operator::rotate_due_keys`]); returns the keys published.
    pub async fn rotate_keys_when_due(
        &self,
    ) -> Result<Vec<crate::keys::StoredKey>, admin::AdminError> {
        let s = self.settings();
        if s.key_rotation <= 0 {
            return Ok(Vec::new());
        }
        let made = self
            .operator("scheduler")
            .rotate_due_keys(s.key_rotation, s.key_publish_ahead)
            .await?;
        self.publish(&made).await;
        Ok(made)
    }

    /// Puts keys just stored into this process's JWKS. They are stored already, so a failure
    /// here is only logged: the refresh loop sees the store's change version move and
    /// reloads them within its interval.
    async fn publish(&self, made: &[crate::keys::StoredKey]) {
        if made.is_empty() {
            return;
        }
        if let Err(e) = self.reload_keys().await {
            tracing::warn!(error = %e, "could not reload signing keys; the refresh loop will");
        }
    }

    /// Drops cached data after a write made through this process.
    pub fn invalidate(&self) {
        self.catalog.invalidate();
    }

    /// The token endpoint.
    pub async fn token(
        &self,
        ctx: &IssuerContext,
        authorization: Option<&str>,
        params: &FormParams,
    ) -> Result<TokenResponse, OAuthError> {
        crate::grant::token(self, ctx, authorization, params).await
    }

    /// The introspection endpoint.
    pub async fn introspect(
        &self,
        ctx: &IssuerContext,
        authorization: Option<&str>,
        params: &FormParams,
    ) -> Result<serde_json::Value, OAuthError> {
        crate::introspection::introspect(self, ctx, authorization, params).await
    }

    /// The revocation endpoint.
    pub async fn revoke(
        &self,
        ctx: &IssuerContext,
        authorization: Option<&str>,
        params: &FormParams,
    ) -> Result<(), OAuthError> {
        crate::revocation::revoke(self, ctx, authorization, params).await
    }

    /// The revocation feed of an MCP server ([`crate::revocation::feed`]).
    pub async fn revocations(
        &self,
        ctx: &IssuerContext,
        params: &FormParams,
    ) -> Result<serde_json::Value, OAuthError> {
        crate::revocation::feed(self, ctx, params).await
    }

    /// The metadata document of `ctx`'s issuer. The root issuer speaks for every MCP
    /// server: it lists all their scopes, and offers registration and metadata documents if
    /// any of them accepts them.
    pub async fn metadata(
        &self,
        ctx: &IssuerContext,
    ) -> Result<AuthorizationServerMetadata, OAuthError> {
        let all = self.catalog.resources().await?;
        let servers: Vec<&Resource> = match &ctx.resource {
            Some(r) => vec![r.as_ref()],
            None => all.iter().map(|r| r.as_ref()).collect(),
        };
        let mut scopes: Vec<String> = Vec::new();
        for s in servers.iter().flat_map(|r| r.advertised_scopes()) {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        // offline_access last, after the servers' own scopes.
        if let Some(i) = scopes
            .iter()
            .position(|s| s == crate::model::OFFLINE_ACCESS)
        {
            let s = scopes.remove(i);
            scopes.push(s);
        }
        let registration = servers.iter().any(|r| r.dynamic_registration);
        let documents = self.documents.is_some() && servers.iter().any(|r| r.metadata_documents);
        Ok(AuthorizationServerMetadata::new(
            &ctx.issuer,
            &self.public,
            scopes,
            registration,
            documents,
        ))
    }
}
