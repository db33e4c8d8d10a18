//! The public keys a client signs its assertions with (`private_key_jwt`, RFC 7523 §2.2): a
//! JWK Set in its metadata (`jwks`) or at a URL (`jwks_uri`), for metadata-document clients,
//! registered clients and agents alike (RFC 7591 §2).
//!
//! Key sets at a URL are fetched through the adapter's SSRF-safe [`DocumentFetcher`] and kept
//! by [`RemoteCache`]: a token request with a known key costs no fetch; an unknown `kid`
//! refetches the set at most once per [`REFETCH_AFTER`] seconds.

use std::sync::Arc;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::clock::UnixTime;
use crate::model::Client;
use crate::remote::{DocumentFetcher, FetchError, Outcome, Policy, RemoteCache};
use crate::types::ClientId;

/// Key sets larger than this are refused.
pub const MAX_JWKS_BYTES: usize = 32 * 1024;
/// Keys a set may hold.
const MAX_KEYS: usize = 16;
/// Longest `jwks_uri` accepted.
const MAX_JWKS_URI: usize = 2048;
/// Bytes of fetched key sets kept at most (see [`RemoteCache::new`]).
const CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes of parsed key sets from clients' metadata kept at most, counting a kilobyte for each
/// set and each of its keys (a key of at most 4096 bits, its `kid`, the bookkeeping).
const INLINE_BYTES: u64 = 16 * 1024 * 1024;
/// An unknown `kid` refetches a key set fetched at least this many seconds ago.
pub const REFETCH_AFTER: i64 = 30;
/// Signature algorithms accepted for client assertions: asymmetric only, never `none` or
/// HMAC (a public key is not a shared secret).
pub const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];
/// [`ALGORITHMS`] as advertised in metadata
/// (`token_endpoint_auth_signing_alg_values_supported`).
pub const ALGORITHM_NAMES: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// How long fetched key sets are kept, in seconds.
const POLICY: Policy = Policy {
    min_fresh: 300,
    max_fresh: 86_400,
    default_fresh: 3600,
    keep_stale: 86_400,
    remember_failure: 10,
};

/// One usable public key.
struct Key {
    kid: Option<String>,
    /// The algorithms it can verify: the one the JWK is limited to, or its type's.
    algs: &'static [Algorithm],
    key: DecodingKey,
}

/// A client's public signing keys, parsed once.
pub struct ClientKeys(Vec<Key>);

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|k| k.kid.as_deref().unwrap_or("-")))
            .finish()
    }
}

impl ClientKeys {
    /// Parses a JWK Set: public RSA, EC (P-256) and OKP (Ed25519) keys only; a set with a
    /// private or symmetric key is refused whole (its owner published a secret), and keys
    /// marked for encryption are skipped.
    pub fn parse(set: &Value) -> Result<ClientKeys, String> {
        let Some(keys) = set.get("keys").and_then(Value::as_array) else {
            return Err("the key set has no `keys` array".into());
        };
        if keys.len() > MAX_KEYS {
            return Err(format!("the key set has more than {MAX_KEYS} keys"));
        }
        for k in keys {
            let private = ["d", "p", "q", "dp", "dq", "qi", "k"]
                .iter()
                .any(|m| k.get(m).is_some());
            if private {
                return Err("the key set contains a private or symmetric key".into());
            }
        }
        let set: JwkSet = serde_json::from_value(Value::Object(
            [("keys".to_owned(), Value::Array(keys.clone()))]
                .into_iter()
                .collect(),
        ))
        .map_err(|e| format!("the key set is not a valid JWK Set: {e}"))?;
        let mut parsed = Vec::with_capacity(set.keys.len());
        for jwk in &set.keys {
            if let Some(key) = usable(jwk)? {
                parsed.push(key);
            }
        }
        if parsed.is_empty() {
            return Err("the key set has no signing key".into());
        }
        Ok(ClientKeys(parsed))
    }

    /// The keys that may have signed with `alg` under `kid`: the one with that `kid`, or,
    /// when the assertion names none, every key of the algorithm's type (an RSA key never
    /// for ES256, whatever the JWK leaves unsaid).
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a DecodingKey> + 'a {
        self.0
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(move |k| k.algs.contains(&alg))
            .map(|k| &k.key)
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds no key (never, for a parsed set).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn usable(jwk: &Jwk) -> Result<Option<Key>, String> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return Err("the key set contains a symmetric key".into());
    }
    let of_type: &'static [Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[Algorithm::RS256, Algorithm::PS256],
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            &[Algorithm::ES256]
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            &[Algorithm::EdDSA]
        }
        // A curve none of the accepted algorithms uses.
        _ => return Ok(None),
    };
    let algs: &'static [Algorithm] = match jwk.common.key_algorithm {
        None => of_type,
        Some(KeyAlgorithm::RS256) => &[Algorithm::RS256],
        Some(KeyAlgorithm::PS256) => &[Algorithm::PS256],
        Some(KeyAlgorithm::ES256) => &[Algorithm::ES256],
        Some(KeyAlgorithm::EdDSA) => &[Algorithm::EdDSA],
        // A key for another algorithm is not one we accept assertions from.
        Some(_) => return Ok(None),
    };
    if !algs.iter().all(|a| of_type.contains(a)) {
        // It names an algorithm its type cannot sign with: nothing could verify with it.
        return Ok(None);
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("a key cannot be used: {e}"))?;
    Ok(Some(Key {
        kid: jwk.common.key_id.clone(),
        algs,
        key,
    }))
}

/// Checks the key members of client metadata (`jwks` or `jwks_uri`, never both, RFC 7591
/// §2) and says whether it names keys. `dev_loopback` also accepts `http` URLs on loopback
/// hosts.
pub fn check_metadata(metadata: &Value, dev_loopback: bool) -> Result<bool, String> {
    let jwks = metadata.get("jwks").filter(|v| !v.is_null());
    let uri = metadata.get("jwks_uri").filter(|v| !v.is_null());
    match (jwks, uri) {
        (None, None) => Ok(false),
        (Some(_), Some(_)) => Err("use one of jwks and jwks_uri, not both".into()),
        (Some(set), None) => ClientKeys::parse(set).map(|_| true),
        (None, Some(uri)) => {
            let uri = uri.as_str().ok_or("jwks_uri is not a string")?;
            jwks_url(uri, dev_loopback).map(|_| true)
        }
    }
}

/// A `jwks_uri`: https (or loopback http in development), a host, no credentials or fragment.
pub fn jwks_url(uri: &str, dev_loopback: bool) -> Result<Url, String> {
    let bad = |why: &str| Err(format!("jwks_uri `{uri}` {why}"));
    if uri.len() > MAX_JWKS_URI {
        return Err(format!("jwks_uri is longer than {MAX_JWKS_URI} characters"));
    }
    let Ok(url) = Url::parse(uri) else {
        return bad("is not a URL");
    };
    let loopback_dev = dev_loopback && url.scheme() == "http" && crate::redirect::is_loopback(&url);
    if url.scheme() != "https" && !loopback_dev {
        return bad("must use https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return bad("has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not contain credentials");
    }
    if url.fragment().is_some() {
        return bad("must not have a fragment");
    }
    Ok(url)
}

/// What looking up a client's keys found.
pub struct Found {
    /// The keys, if any could be had.
    pub keys: Option<Arc<ClientKeys>>,
    /// Why a fetch failed, when one did: in this lookup, if the keys are the last good copy
    /// (so that it is reported once per failed refetch, not at every use).
    pub failure: Option<String>,
}

impl Found {
    fn failed(why: impl Into<String>) -> Self {
        Found {
            keys: None,
            failure: Some(why.into()),
        }
    }
}

/// Clients' keys, parsed once: sets in metadata by client, sets at URLs by URL.
pub struct KeySets {
    fetcher: Option<Arc<dyn DocumentFetcher>>,
    dev_loopback: bool,
    fetched: RemoteCache<Url, ClientKeys>,
    /// A digest of the set a client's metadata held when it was parsed, and what it parsed to.
    inline: moka::sync::Cache<ClientId, ([u8; 32], Arc<ClientKeys>)>,
}

impl KeySets {
    /// Fetches through `fetcher`; without one, only key sets in metadata are used.
    /// `dev_loopback` also accepts `http` URLs on loopback hosts.
    pub fn new(fetcher: Option<Arc<dyn DocumentFetcher>>, dev_loopback: bool) -> Self {
        KeySets {
            fetcher,
            dev_loopback,
            fetched: RemoteCache::new(CACHE_BYTES, POLICY),
            inline: moka::sync::Cache::builder()
                .max_capacity(INLINE_BYTES)
                .weigher(|_, (_, keys): &([u8; 32], Arc<ClientKeys>)| {
                    u32::try_from((keys.len() + 1) * 1024).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }

    /// Whether `http` URLs on loopback hosts are accepted.
    pub fn dev_loopback(&self) -> bool {
        self.dev_loopback
    }

    /// `client`'s keys at `now`, for an assertion signed with `alg` under `kid`. When a
    /// fetched set has no key for them, the set is fetched again if its copy is at least
    /// [`REFETCH_AFTER`] seconds old (the client may have rotated its keys).
    pub async fn of_client(
        &self,
        client: &Client,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
    ) -> Found {
        let m = &client.metadata;
        if let Some(uri) = m.get("jwks_uri").and_then(Value::as_str) {
            return match jwks_url(uri, self.dev_loopback) {
                Ok(url) => self.at(&url, kid, alg, now).await,
                Err(e) => Found::failed(e),
            };
        }
        let Some(set) = m.get("jwks").filter(|v| !v.is_null()) else {
            return Found::failed("it has neither jwks nor jwks_uri");
        };
        // The digest, not a copy of the set: the client record already holds it.
        let digest: [u8; 32] = Sha256::digest(set.to_string().as_bytes()).into();
        if let Some((held, keys)) = self.inline.get(&client.id)
            && held == digest
        {
            return Found {
                keys: Some(keys),
                failure: None,
            };
        }
        match ClientKeys::parse(set) {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.inline
                    .insert(client.id.clone(), (digest, keys.clone()));
                Found {
                    keys: Some(keys),
                    failure: None,
                }
            }
            Err(e) => Found::failed(e),
        }
    }

    async fn at(&self, url: &Url, kid: Option<&str>, alg: Algorithm, now: UnixTime) -> Found {
        let Some(fetcher) = &self.fetcher else {
            return Found::failed("this server fetches no key sets");
        };
        let first = self.lookup(fetcher, url, now, None).await;
        // A kid it lacks, or one now used for another type of key.
        let missing = first
            .keys
            .as_ref()
            .is_some_and(|k| k.candidates(kid, alg).next().is_none());
        if !missing {
            return first;
        }
        let before = UnixTime(now.0 - REFETCH_AFTER + 1);
        self.lookup(fetcher, url, now, Some(before)).await
    }

    async fn lookup(
        &self,
        fetcher: &Arc<dyn DocumentFetcher>,
        url: &Url,
        now: UnixTime,
        refetch_before: Option<UnixTime>,
    ) -> Found {
        let fetch = || async {
            let fetched = fetcher.fetch(url, MAX_JWKS_BYTES).await?;
            let set: Value = serde_json::from_slice(&fetched.body)
                .map_err(|_| FetchError::refused("the key set is not valid JSON"))?;
            let keys = ClientKeys::parse(&set).map_err(FetchError::refused)?;
            // A parsed key holds about what its JWK says; twice, for the bookkeeping.
            Ok((keys, fetched.received(2)))
        };
        match self.fetched.get(url, now, refetch_before, fetch).await {
            Outcome::Fresh(keys) => Found {
                keys: Some(keys),
                failure: None,
            },
            Outcome::Stale {
                value,
                reason,
                fetched,
            } => Found {
                keys: Some(value),
                // Said once, by the lookup whose refetch failed.
                failure: fetched.then_some(reason),
            },
            Outcome::Failed { reason, .. } => Found::failed(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    fn ec() -> Value {
        serde_json::from_str(EC).unwrap()
    }

    /// A public RSA key under `kid`, without `alg`.
    fn rsa(kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "e": "AQAB", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"})
    }

    /// How many keys of what was found could check an assertion with `kid` and `alg`.
    fn usable(found: Found, kid: &str, alg: Algorithm) -> usize {
        found.keys.unwrap().candidates(Some(kid), alg).count()
    }

    #[test]
    fn public_signing_keys_are_parsed() {
        let keys = ClientKeys::parse(&json!({"keys": [ec()]})).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.candidates(Some("k1"), Algorithm::ES256).count(), 1);
        assert_eq!(keys.candidates(None, Algorithm::ES256).count(), 1);
        assert_eq!(keys.candidates(Some("k2"), Algorithm::ES256).count(), 0);
        assert_eq!(
            keys.candidates(Some("k1"), Algorithm::RS256).count(),
            0,
            "the JWK says ES256"
        );
    }

    #[test]
    fn a_kid_less_assertion_is_checked_only_against_keys_of_its_type() {
        let mut bare_ec = ec();
        bare_ec.as_object_mut().unwrap().remove("alg");
        bare_ec["kid"] = json!("ec");
        let rsa = rsa("rsa");
        let keys = ClientKeys::parse(&json!({"keys": [rsa, bare_ec]})).unwrap();
        assert_eq!(keys.candidates(None, Algorithm::ES256).count(), 1);
        assert_eq!(keys.candidates(None, Algorithm::RS256).count(), 1);
        assert_eq!(keys.candidates(None, Algorithm::PS256).count(), 1);
        assert_eq!(keys.candidates(None, Algorithm::EdDSA).count(), 0);
        assert_eq!(keys.candidates(Some("ec"), Algorithm::RS256).count(), 0);
        // A JWK whose alg its type cannot sign with is skipped, not tried.
        let mut lying = ec();
        lying["alg"] = json!("RS256");
        let e = ClientKeys::parse(&json!({"keys": [lying]})).unwrap_err();
        assert!(e.contains("no signing key"), "{e}");
    }

    /// A key set at a URL whose content the test changes, counting fetches.
    struct Served(std::sync::Mutex<Value>, std::sync::atomic::AtomicUsize);

    #[async_trait::async_trait]
    impl DocumentFetcher for Served {
        async fn fetch(
            &self,
            _: &Url,
            _: usize,
        ) -> Result<crate::remote::FetchedDocument, FetchError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = self.0.lock().unwrap().to_string().into_bytes();
            Ok(crate::remote::FetchedDocument {
                body,
                freshness: None,
            })
        }
    }

    #[tokio::test]
    async fn a_kid_now_used_for_another_type_of_key_refetches_the_set() {
        let id = ClientId::parse("https://app.example/c.json").unwrap();
        let doc = json!({"client_id": id.as_str(), "client_name": "App",
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://app.example/jwks.json"});
        let client =
            crate::cimd::client_from_document(&id, doc.to_string().as_bytes(), false).unwrap();
        let rsa = rsa("k1");
        let served = Arc::new(Served(
            std::sync::Mutex::new(json!({ "keys": [rsa] })),
            Default::default(),
        ));
        let sets = KeySets::new(Some(served.clone()), false);
        let t = UnixTime(1_000);
        let found = sets
            .of_client(&client, Some("k1"), Algorithm::RS256, t)
            .await;
        assert_eq!(usable(found, "k1", Algorithm::RS256), 1);

        // The client replaces its RSA key with an EC key under the same kid.
        *served.0.lock().unwrap() = json!({ "keys": [ec()] });
        let fetches = || served.1.load(std::sync::atomic::Ordering::SeqCst);
        let soon = sets
            .of_client(&client, Some("k1"), Algorithm::ES256, t.plus(5))
            .await;
        assert_eq!(usable(soon, "k1", Algorithm::ES256), 0);
        assert_eq!(fetches(), 1, "not within 30 s of the last fetch");
        let later = sets
            .of_client(&client, Some("k1"), Algorithm::ES256, t.plus(31))
            .await;
        assert_eq!(usable(later, "k1", Algorithm::ES256), 1);
        assert_eq!(fetches(), 2);
    }

    #[test]
    fn secrets_and_unusable_sets_are_refused() {
        let mut private = ec();
        private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
        let oct = json!({"kty":"oct","k":"c2VjcmV0"});
        for (set, why) in [
            (json!({"keys": [private]}), "private"),
            (json!({"keys": [oct]}), "private or symmetric"),
            (json!({}), "no `keys`"),
            (json!({"keys": []}), "no signing key"),
            (
                json!({"keys": [{"kty":"EC","crv":"P-256","use":"enc","x":"a","y":"b"}]}),
                "no signing key",
            ),
            // RFC 7517 §5: a key type not understood is ignored.
            (json!({"keys": [{"kty":"nope"}]}), "no signing key"),
            (
                json!({"keys": [{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}),
                "cannot be used",
            ),
            (json!({"keys": "x"}), "no `keys`"),
        ] {
            let e = ClientKeys::parse(&set).unwrap_err();
            assert!(e.contains(why), "{e} should say {why}");
        }
    }

    #[test]
    fn metadata_names_one_source() {
        assert!(!check_metadata(&json!({}), false).unwrap());
        assert!(check_metadata(&json!({"jwks": {"keys": [ec()]}}), false).unwrap());
        assert!(
            check_metadata(&json!({"jwks_uri": "https://app.example/jwks.json"}), false).unwrap()
        );
        for (m, why) in [
            (
                json!({"jwks": {"keys": [ec()]}, "jwks_uri": "https://a.example/j"}),
                "not both",
            ),
            (json!({"jwks_uri": "http://a.example/j"}), "https"),
            (
                json!({"jwks_uri": "https://u:p@a.example/j"}),
                "credentials",
            ),
            (json!({"jwks_uri": 5}), "not a string"),
            (
                json!({"jwks_uri": format!("https://a.example/{}", "j".repeat(2048))}),
                "longer than",
            ),
        ] {
            let e = check_metadata(&m, true).unwrap_err();
            assert!(e.contains(why), "{e} should say {why}");
        }
        assert!(check_metadata(&json!({"jwks_uri": "http://127.0.0.1:9/j"}), true).is_ok());
        assert!(check_metadata(&json!({"jwks_uri": "http://127.0.0.1:9/j"}), false).is_err());
    }
}
