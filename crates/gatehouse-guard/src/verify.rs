//! Token verification: signature by a key of the issuer, algorithm allow-list, `typ`, `iss`,
//! `aud`, `exp`/`nbf`/`iat`. Tokens that verified are remembered by their SHA-256 until they
//! expire (at most five minutes), so a repeat costs a hash instead of a signature check.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use moka::sync::Cache;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::jwks::{KeyCache, insert_well_known};
use crate::revocations::Poller;
use crate::{ConfigError, GuardConfig};

/// Who a verified token speaks for. Handlers find it in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub`: the person, or the client for client credentials.
    pub subject: String,
    /// `client_id` (or `azp`).
    pub client_id: Option<String>,
    /// Granted scopes (`scope` string, or the `scopes` array).
    pub scopes: Vec<String>,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: Vec<String>,
    /// `exp`.
    pub expires_at: i64,
    /// `iat`, if the token has one.
    pub issued_at: Option<i64>,
    /// `jti`.
    pub token_id: Option<String>,
}

impl Principal {
    /// Whether the token grants `scope`, directly or through a broader scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|g| crate::scope_satisfies(g, scope))
    }

    /// The scopes of `required` this token lacks; empty if it has them all.
    pub fn missing_scopes<'a>(&self, required: &'a [String]) -> Vec<&'a str> {
        crate::scope::missing(&self.scopes, required)
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed JWT.
    #[error("the token is malformed")]
    Malformed,
    /// Its algorithm is not allowed, or does not match its key.
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// Its `typ` header is not `at+jwt`.
    #[error("the token is not an access token (typ must be at+jwt)")]
    Type,
    /// No key of the issuer has its `kid`.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    Signature,
    /// Wrong `iss`.
    #[error("the token was issued by another authorization server")]
    Issuer,
    /// `aud` does not include this server.
    #[error("the token is not meant for this server")]
    Audience,
    /// Expired.
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The authorization server revoked it (its revocation feed lists it or its client).
    #[error("the token has been revoked")]
    Revoked,
    /// The authorization server's keys could not be fetched.
    #[error("the authorization server is unreachable: {0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    aud: Vec<String>,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

pub(crate) struct Verifier {
    config: GuardConfig,
    issuers: Vec<String>,
    prm_url: String,
    keys: KeyCache,
    verified: Cache<[u8; 32], Arc<Principal>>,
    revocations: Option<Poller>,
    polling: std::sync::atomic::AtomicBool,
}

impl Verifier {
    pub fn new(config: GuardConfig) -> Result<Self, ConfigError> {
        let resource = url::Url::parse(&config.resource)
            .map_err(|e| ConfigError(format!("resource `{}`: {e}", config.resource)))?;
        if resource.fragment().is_some() {
            return Err(ConfigError("resource must not have a fragment".into()));
        }
        url::Url::parse(&config.authorization_server).map_err(|e| {
            ConfigError(format!(
                "authorization server `{}`: {e}",
                config.authorization_server
            ))
        })?;
        if config.algorithms.is_empty()
            || config
                .algorithms
                .iter()
                .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(ConfigError(
                "algorithms must be non-empty and asymmetric".into(),
            ));
        }
        let issuer = config.authorization_server.trim_end_matches('/').to_owned();
        let mut issuers = vec![issuer.clone()];
        // Only the per-resource layout (`{root}/resources/{id}`) has a root to accept.
        if config.accept_root_issuer
            && let Some(i) = issuer.find("/resources/")
        {
            issuers.push(issuer[..i].to_owned());
        }
        let issuer_for_feed = issuer.clone();
        let keys = KeyCache::new(
            issuer,
            config.http_timeout,
            config.jwks_max_age,
            config.jwks_min_refetch,
        );
        let revocations = config
            .revocation_poll
            .map(|_| Poller::new(&issuer_for_feed, &config.resource, config.http_timeout));
        Ok(Verifier {
            revocations,
            polling: std::sync::atomic::AtomicBool::new(false),
            prm_url: insert_well_known(&config.resource, "oauth-protected-resource"),
            issuers,
            keys,
            verified: Cache::builder()
                .max_capacity(50_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            config,
        })
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    pub fn prm_url(&self) -> &str {
        &self.prm_url
    }

    pub async fn warm_up(&self) -> Result<(), VerifyError> {
        self.keys.refetch(true).await?;
        if let Some(p) = &self.revocations {
            p.poll().await.map_err(VerifyError::Unavailable)?;
        }
        Ok(())
    }

    /// The revocation poller, if polling is on.
    pub fn poller(&self) -> Option<&Poller> {
        self.revocations.as_ref()
    }

    /// Starts polling the revocation feed, the first time it is called.
    pub fn start_polling(self: &Arc<Self>) {
        use std::sync::atomic::Ordering::Relaxed;
        // A load first: on every request after the first, no write to a shared cache line.
        if let Some(every) = self.config.revocation_poll
            && !self.polling.load(Relaxed)
            && !self.polling.swap(true, Relaxed)
        {
            crate::revocations::start(self, every);
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, VerifyError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now();
        let leeway = self.config.leeway.as_secs() as i64;
        let principal = match self.verified.get(&digest) {
            Some(p) if p.expires_at + leeway > now => p,
            Some(_) => {
                self.verified.invalidate(&digest);
                return Err(VerifyError::Expired);
            }
            None => {
                let p = Arc::new(self.verify_uncached(token, now, leeway).await?);
                self.verified.insert(digest, p.clone());
                p
            }
        };
        if self
            .revocations
            .as_ref()
            .is_some_and(|r| r.refuses(&principal))
        {
            return Err(VerifyError::Revoked);
        }
        Ok(principal)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        now: i64,
        leeway: i64,
    ) -> Result<Principal, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // The allow-list comes first: `none` does not even parse, HMAC is never listed.
        if !self.config.algorithms.contains(&header.alg) {
            return Err(VerifyError::Algorithm);
        }
        if self.config.require_at_jwt_typ {
            let typ = header.typ.as_deref().unwrap_or("");
            // RFC 9068 §4: `at+jwt`, optionally with the `application/` prefix.
            if !typ.eq_ignore_ascii_case("at+jwt")
                && !typ.eq_ignore_ascii_case("application/at+jwt")
            {
                return Err(VerifyError::Type);
            }
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self.keys.key(kid).await?;
        if key.alg != header.alg {
            return Err(VerifyError::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        // Times, issuer and audience are checked below, with explicit errors.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => VerifyError::Signature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => VerifyError::Algorithm,
                _ => VerifyError::Malformed,
            })?
            .claims;
        if !self.issuers.iter().any(|i| i == &claims.iss) {
            return Err(VerifyError::Issuer);
        }
        let resource = self.config.resource.trim_end_matches('/');
        if !claims
            .aud
            .iter()
            .any(|a| a.trim_end_matches('/') == resource)
        {
            return Err(VerifyError::Audience);
        }
        if claims.exp + leeway <= now {
            return Err(VerifyError::Expired);
        }
        if claims.nbf.is_some_and(|t| t > now + leeway)
            || claims.iat.is_some_and(|t| t > now + leeway)
        {
            return Err(VerifyError::NotYetValid);
        }
        let scopes = match (claims.scope, claims.scopes) {
            (Some(s), _) => s
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            (None, Some(v)) => v,
            (None, None) => Vec::new(),
        };
        Ok(Principal {
            subject: claims.sub.unwrap_or_default(),
            client_id: claims.client_id.or(claims.azp),
            scopes,
            issuer: claims.iss,
            audience: claims.aud,
            expires_at: claims.exp,
            issued_at: claims.iat,
            token_id: claims.jti,
        })
    }
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
