//! Gatehouse guard: protects an MCP server (or any axum app) with access tokens from an OAuth
//! authorization server such as Gatehouse.
//!
//! - [`Guard::layer`] is a tower layer: it takes the bearer token from the `Authorization`
//!   header (never the query string), verifies it offline against the issuer's JWKS (found
//!   through RFC 8414 metadata, cached, refetched on an unknown `kid` at most every 30 s),
//!   checks `iss`, `aud`, `exp`/`nbf`/`iat`, the algorithm allow-list and the scopes the
//!   request needs, and answers `401`/`403` with the RFC 6750 / RFC 9728 `WWW-Authenticate`
//!   challenge MCP clients follow. Handlers find the verified [`Principal`] in the request
//!   extensions; the `Authorization` header is removed so it cannot be passed on.
//! - Tokens revoked before they expire are refused: the guard polls the authorization
//!   server's revocation feed (every 30 s by default, [`GuardBuilder::revocation_poll`]).
//! - [`Guard::metadata_router`] serves RFC 9728 Protected Resource Metadata.
//!
//! ```no_run
//! # async fn demo(app: axum::Router) {
//! let guard = gatehouse_guard::Guard::builder("https://mcp.example.com/mcp", "https://auth.example.com/resources/res_123")
//!     .scopes_supported(["todo:read", "todo:write"])
//!     .tool_scopes("create_todo", ["todo:write"])
//!     .tool_scopes("list_todos", ["todo:read"])
//!     .build()
//!     .unwrap();
//! let app = app.layer(guard.layer()).merge(guard.metadata_router());
//! # }
//! ```

mod challenge;
mod jwks;
mod layer;
mod mcp;
mod prm;
mod revocations;
mod scope;
mod verify;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use jsonwebtoken::Algorithm;
pub use layer::{GuardLayer, GuardService};
pub use scope::scope_satisfies;
pub use verify::{Principal, VerifyError};

/// Settings of a [`Guard`]. Build one with [`Guard::builder`].
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The MCP server's URL: PRM `resource`, and the audience tokens must carry.
    pub resource: String,
    /// The issuer (authorization server) tokens must come from, as listed in PRM.
    pub authorization_server: String,
    /// Also accept tokens whose `iss` is the root of a per-resource issuer
    /// (`https://as.example` for `https://as.example/resources/res_…`); the audience check
    /// still binds the token to this server. On by default, as FastMCP's Scalekit provider does.
    pub accept_root_issuer: bool,
    /// Scopes published in PRM `scopes_supported`.
    pub scopes_supported: Vec<String>,
    /// Human-readable name published in PRM.
    pub resource_name: Option<String>,
    /// Scopes every request needs.
    pub required_scopes: Vec<String>,
    /// Extra scopes per MCP tool (`tools/call` with that `name`).
    pub tool_scopes: HashMap<String, Vec<String>>,
    /// Signature algorithms accepted. `none` and HMAC algorithms are never accepted.
    pub algorithms: Vec<Algorithm>,
    /// Require the RFC 9068 `typ` header `at+jwt`.
    pub require_at_jwt_typ: bool,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// How long fetched keys are used before they are fetched again.
    pub jwks_max_age: Duration,
    /// Shortest time between two fetches caused by an unknown `kid`.
    pub jwks_min_refetch: Duration,
    /// Timeout of each request to the authorization server.
    pub http_timeout: Duration,
    /// How often to poll the authorization server's revocation feed; `None` turns polling
    /// off (revoked tokens then pass until they expire).
    pub revocation_poll: Option<Duration>,
}

/// A configuration the guard cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guard configuration: {0}")]
pub struct ConfigError(String);

/// Builds a [`Guard`].
#[derive(Debug, Clone)]
pub struct GuardBuilder(GuardConfig);

impl GuardBuilder {
    /// Scopes to publish in PRM.
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.0.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Scopes every request needs.
    pub fn required_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.0.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Declares the scopes calling MCP tool `tool` needs.
    pub fn tool_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        tool: &str,
        scopes: I,
    ) -> Self {
        self.0.tool_scopes.insert(
            tool.to_owned(),
            scopes.into_iter().map(Into::into).collect(),
        );
        self
    }

    /// Name published in PRM.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.0.resource_name = Some(name.into());
        self
    }

    /// Accepted algorithms (default RS256, ES256, EdDSA).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.0.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Whether the root issuer is accepted too (default true).
    pub fn accept_root_issuer(mut self, yes: bool) -> Self {
        self.0.accept_root_issuer = yes;
        self
    }

    /// Whether `typ: at+jwt` is required (default true).
    pub fn require_at_jwt_typ(mut self, yes: bool) -> Self {
        self.0.require_at_jwt_typ = yes;
        self
    }

    /// Clock skew allowed (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.0.leeway = leeway;
        self
    }

    /// Key cache age (default 24 h) and shortest refetch interval on an unknown `kid`
    /// (default 30 s).
    pub fn jwks_timing(mut self, max_age: Duration, min_refetch: Duration) -> Self {
        self.0.jwks_max_age = max_age;
        self.0.jwks_min_refetch = min_refetch;
        self
    }

    /// How often the revocation feed is polled (default every 30 s); `None` turns it off.
    /// A token revoked at the authorization server is refused within one interval.
    pub fn revocation_poll(mut self, every: Option<Duration>) -> Self {
        self.0.revocation_poll = every;
        self
    }

    /// Checks the configuration and builds the guard.
    pub fn build(self) -> Result<Guard, ConfigError> {
        Guard::new(self.0)
    }
}

/// The guard. Cheap to clone; clones share the key cache.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<verify::Verifier>,
}

impl Guard {
    /// A builder for the MCP server at `resource`, trusting `authorization_server`.
    pub fn builder(
        resource: impl Into<String>,
        authorization_server: impl Into<String>,
    ) -> GuardBuilder {
        GuardBuilder(GuardConfig {
            resource: resource.into(),
            authorization_server: authorization_server.into(),
            accept_root_issuer: true,
            scopes_supported: Vec::new(),
            resource_name: None,
            required_scopes: Vec::new(),
            tool_scopes: HashMap::new(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            require_at_jwt_typ: true,
            leeway: Duration::from_secs(60),
            jwks_max_age: Duration::from_secs(24 * 3600),
            jwks_min_refetch: Duration::from_secs(30),
            http_timeout: Duration::from_secs(10),
            revocation_poll: Some(Duration::from_secs(30)),
        })
    }

    /// A guard from a full configuration.
    pub fn new(config: GuardConfig) -> Result<Guard, ConfigError> {
        Ok(Guard {
            inner: Arc::new(verify::Verifier::new(config)?),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        self.inner.config()
    }

    /// The tower layer that protects routes.
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone())
    }

    /// Routes serving Protected Resource Metadata at the path-inserted and the root
    /// well-known URLs.
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        prm::router(self.clone())
    }

    /// The PRM document (RFC 9728 §2).
    pub fn protected_resource_metadata(&self) -> serde_json::Value {
        prm::document(self.config())
    }

    /// The URL of the PRM document (path-inserted, RFC 9728 §3.1).
    pub fn resource_metadata_url(&self) -> &str {
        self.inner.prm_url()
    }

    /// Verifies a bearer token and returns who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, VerifyError> {
        self.inner.start_polling();
        self.inner.verify(token).await
    }

    /// Fetches the issuer's metadata, keys and revocations now instead of at the first
    /// request, and starts polling the revocation feed.
    pub async fn warm_up(&self) -> Result<(), VerifyError> {
        let result = self.inner.warm_up().await;
        self.inner.start_polling();
        result
    }
}
