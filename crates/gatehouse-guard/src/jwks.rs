//! The issuer's keys: discovered through RFC 8414 metadata, cached for `jwks_max_age`, and
//! refetched when a token names an unknown `kid` — at most once per `jwks_min_refetch`, so
//! tokens with made-up key ids cannot make the guard hammer the authorization server.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::verify::VerifyError;

/// Largest metadata or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// One verification key.
pub(crate) struct Key {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

struct Snapshot {
    keys: HashMap<String, Arc<Key>>,
    fetched_at: Instant,
}

pub(crate) struct KeyCache {
    issuer: String,
    http: reqwest::Client,
    max_age: Duration,
    min_refetch: Duration,
    jwks_uri: tokio::sync::OnceCell<String>,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// Serializes fetches; holds the time of the last attempt.
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyCache {
    pub fn new(
        issuer: String,
        timeout: Duration,
        max_age: Duration,
        min_refetch: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        KeyCache {
            issuer,
            http,
            max_age,
            min_refetch,
            jwks_uri: tokio::sync::OnceCell::new(),
            snapshot: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(None),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The key named `kid`.
    pub async fn key(&self, kid: &str) -> Result<Arc<Key>, VerifyError> {
        if let Some(s) = self.current()
            && s.fetched_at.elapsed() < self.max_age
            && let Some(k) = s.keys.get(kid)
        {
            return Ok(k.clone());
        }
        self.refetch(false).await?;
        self.current()
            .and_then(|s| s.keys.get(kid).cloned())
            .ok_or(VerifyError::UnknownKey)
    }

    /// Fetches the keys now unless a fetch happened within `min_refetch` (or `force`).
    pub async fn refetch(&self, force: bool) -> Result<(), VerifyError> {
        let mut last = self.fetch.lock().await;
        let stale = self
            .current()
            .is_none_or(|s| s.fetched_at.elapsed() >= self.max_age);
        if !force && !stale && last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return Ok(());
        }
        *last = Some(Instant::now());
        match self.fetch_keys().await {
            Ok(keys) => {
                let snap = Arc::new(Snapshot {
                    keys,
                    fetched_at: Instant::now(),
                });
                *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Some(snap);
                Ok(())
            }
            // Keys fetched earlier stay in use while the authorization server is unreachable.
            Err(e) if self.current().is_some() => {
                tracing::warn!(error = %e, "could not refresh the issuer's keys; using cached ones");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<Key>>, VerifyError> {
        let uri = self.jwks_uri.get_or_try_init(|| self.discover()).await?;
        let doc = self.get_json(uri).await?;
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| VerifyError::Unavailable(format!("{uri} is not a JWKS")))?;
        let mut out = HashMap::new();
        for raw in keys {
            // A key we cannot use (unknown type, encryption key, no kid) is skipped, not fatal.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let Some(alg) = key_algorithm(&jwk) else {
                continue;
            };
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            out.insert(kid, Arc::new(Key { alg, key }));
        }
        tracing::debug!(keys = out.len(), jwks_uri = %uri, "fetched the issuer's keys");
        Ok(out)
    }

    /// RFC 8414 §3: the metadata at the path-inserted well-known URL; its `issuer` must be
    /// the configured issuer exactly.
    async fn discover(&self) -> Result<String, VerifyError> {
        let url = well_known(&self.issuer);
        let doc = self.get_json(&url).await?;
        if doc.get("issuer").and_then(|v| v.as_str()) != Some(self.issuer.as_str()) {
            return Err(VerifyError::Unavailable(format!(
                "{url} describes another issuer than {}",
                self.issuer
            )));
        }
        doc.get("jwks_uri")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| VerifyError::Unavailable(format!("{url} has no jwks_uri")))
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, VerifyError> {
        let unavailable = |e: String| VerifyError::Unavailable(format!("{url}: {e}"));
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("status {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(unavailable("document too large".into()));
        }
        serde_json::from_slice(&body).map_err(|e| unavailable(e.to_string()))
    }
}

/// The key's algorithm: its `alg`, or the usual one for its type.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(a) = jwk.common.key_algorithm {
        return a.to_string().parse().ok();
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// `{origin}/.well-known/oauth-authorization-server{path}` (RFC 8414 §3.1).
pub(crate) fn well_known(issuer: &str) -> String {
    insert_well_known(issuer, "oauth-authorization-server")
}

/// Path insertion of `/.well-known/{suffix}` into `url`.
pub(crate) fn insert_well_known(url: &str, suffix: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}/.well-known/{suffix}{}",
            u.origin().ascii_serialization(),
            u.path().trim_end_matches('/')
        ),
        Err(_) => format!("{}/.well-known/{suffix}", url.trim_end_matches('/')),
    }
}
