//! The engine: what every endpoint needs (public issuer, store, cached catalog, keys, clock),
//! and the entry points the HTTP adapter calls.

use std::sync::{Arc, RwLock};

use crate::admin;
use crate::cache::Catalog;
use crate::clock::{Clock, UnixTime};
use crate::error::OAuthError;
use crate::keys::{KeyError, KeyRing, SigningAlg, SigningKey};
use crate::metadata::AuthorizationServerMetadata;
use crate::model::Resource;
use crate::params::FormParams;
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

/// The authorization server's protocol engine.
pub struct Engine {
    public: Issuer,
    store: Arc<dyn Store>,
    catalog: Catalog,
    keys: RwLock<Arc<KeyRing>>,
    clock: Arc<dyn Clock>,
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
        let ring = KeyRing::load(&store.keys().await?)?;
        Ok(Engine {
            public,
            catalog: Catalog::new(store.clone()),
            store,
            keys: RwLock::new(Arc::new(ring)),
            clock,
        })
    }

    /// The root issuer (the public URL).
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
            }));
        };
        let Ok(id) = ResourceId::parse(id) else {
            return Ok(None);
        };
        Ok(self.catalog.resource(&id).await?.map(|r| IssuerContext {
            issuer: r.issuer(&self.public),
            resource: Some(r),
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
        let ring = KeyRing::load(&self.store.keys().await?)?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        Ok(())
    }

    /// Picks up changes made by other processes: drops the cached catalog and reloads keys
    /// when the store's change version moved.
    pub async fn refresh(&self) -> Result<(), StartError> {
        if self.catalog.sync().await? {
            self.reload_keys().await?;
        }
        Ok(())
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

    /// The metadata document of `ctx`'s issuer. The root issuer lists the scopes of every
    /// MCP server.
    pub async fn metadata(
        &self,
        ctx: &IssuerContext,
    ) -> Result<AuthorizationServerMetadata, OAuthError> {
        let scopes = match &ctx.resource {
            Some(r) => r.scope_set().to_vec(),
            None => {
                let mut all: Vec<String> = Vec::new();
                for r in self.catalog.resources().await?.iter() {
                    for s in r.scope_set().to_vec() {
                        if !all.contains(&s) {
                            all.push(s);
                        }
                    }
                }
                all
            }
        };
        Ok(AuthorizationServerMetadata::new(
            &ctx.issuer,
            &self.public,
            scopes,
        ))
    }
}
