//! Signing keys: generation, rotation states, the pre-parsed key ring that signs access
//! tokens, and the published JWKS.
//!
//! A key's state follows from its timestamps and the clock alone, so every node reading the
//! same keys agrees without talking to the others ([`key_states`]): a key is *next* (published,
//! not signing) until its `activates_at`, then *active* (signing) until a newer key of its
//! algorithm activates, then *retired* (published, not signing) until every token it signed
//! has expired, then *expired* (no longer published). A rotation publishes the new key a
//! publish-ahead period before it signs, so that caches of the JWKS know it first.
//!
//! Keys are parsed once, when the ring is built; signing uses the parsed aws-lc-rs key
//! directly (jsonwebtoken's `encode` re-parses the private key on every call, which costs
//! more than an RS256 signature). Verification of our own tokens (introspection) uses
//! jsonwebtoken with decoding keys built at the same time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UnixTime;
use crate::types::Kid;

/// A JWS algorithm Gatehouse signs access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys: the default, and the only algorithm the
    /// Scalekit SDKs accept.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    /// Every algorithm, in order of preference.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// Parses a JOSE name; case-insensitive, as typed by operators.
    pub fn parse(s: &str) -> Option<Self> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    fn jwt(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key as stored: PKCS#8 v1 private key and metadata.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// RFC 7638 thumbprint of the public key.
    pub kid: Kid,
    /// Its algorithm.
    pub alg: SigningAlg,
    /// PKCS#8 v1 DER of the private key.
    pub private_pkcs8: Vec<u8>,
    /// When it was created (and first published).
    pub created_at: UnixTime,
    /// When it starts signing; the latest activated key of an algorithm signs.
    pub activates_at: UnixTime,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pkcs8", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish()
    }
}

/// A key that could not be generated or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing key error: {0}")]
pub struct KeyError(String);

impl StoredKey {
    /// Generates a new key for `alg` (RSA keys are 2048 bits) that signs from `now` on; set
    /// `activates_at` later to publish it ahead.
    pub fn generate(alg: SigningAlg, now: UnixTime) -> Result<StoredKey, KeyError> {
        let fail = |e: aws_lc_rs::error::Unspecified| KeyError(format!("generating {alg}: {e}"));
        let private_pkcs8 = match alg {
            SigningAlg::RS256 => {
                use aws_lc_rs::encoding::AsDer;
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(fail)?;
                AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                    .map_err(fail)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::ES256 => {
                signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(fail)?
                    .to_pkcs8v1()
                    .map_err(fail)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::EdDSA => signature::Ed25519KeyPair::generate()
                .map_err(fail)?
                .to_pkcs8v1()
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        };
        let parsed = ParsedPair::parse(alg, &private_pkcs8)?;
        Ok(StoredKey {
            kid: parsed.public_jwk().thumbprint(),
            alg,
            private_pkcs8,
            created_at: now,
            activates_at: now,
        })
    }
}

/// How long a retired key stays published: the longest an access token lives, plus margin
/// for the clock leeway of resource servers.
pub const RETIRED_KEY_PUBLISHED_SECS: i64 = *crate::model::TOKEN_TTL_RANGE.end() as i64 + 300;

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// Signing.
    Active,
    /// Published so that tokens it signed still verify; not signing.
    Retired,
    /// Every token it signed has expired; no longer published.
    Expired,
}

impl KeyState {
    /// `next`, `active`, `retired` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Expired => "expired",
        }
    }
}

/// A key's state at some instant, with the instants that decide it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub kid: Kid,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    /// When a newer key took over (retired and expired keys).
    pub retired_at: Option<UnixTime>,
    /// Until when it is published (retired and expired keys).
    pub published_until: Option<UnixTime>,
}

/// The state of every key at `now`, per algorithm in activation order.
pub fn key_states(keys: &[StoredKey], now: UnixTime) -> Vec<KeyStatus> {
    let mut sorted: Vec<&StoredKey> = keys.iter().collect();
    sorted.sort_by_key(|k| (k.alg.as_str(), k.activates_at, k.created_at));
    let mut out = Vec::with_capacity(sorted.len());
    for (i, k) in sorted.iter().enumerate() {
        // The next key of the same algorithm that has activated by now takes over from it.
        let successor = sorted[i + 1..]
            .iter()
            .find(|n| n.alg == k.alg && n.activates_at <= now)
            .map(|n| n.activates_at);
        let (state, retired_at, published_until) = if k.activates_at > now {
            (KeyState::Next, None, None)
        } else {
            match successor {
                None => (KeyState::Active, None, None),
                Some(at) => {
                    let until = at.plus(RETIRED_KEY_PUBLISHED_SECS);
                    let state = if now < until {
                        KeyState::Retired
                    } else {
                        KeyState::Expired
                    };
                    (state, Some(at), Some(until))
                }
            }
        };
        out.push(KeyStatus {
            kid: k.kid.clone(),
            alg: k.alg,
            state,
            created_at: k.created_at,
            activates_at: k.activates_at,
            retired_at,
            published_until,
        });
    }
    out
}

enum ParsedPair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(signature::EcdsaKeyPair),
    Ed(signature::Ed25519KeyPair),
}

impl ParsedPair {
    fn parse(alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let fail = |e: aws_lc_rs::error::KeyRejected| KeyError(format!("loading {alg} key: {e}"));
        Ok(match alg {
            SigningAlg::RS256 => {
                ParsedPair::Rsa(aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(fail)?)
            }
            SigningAlg::ES256 => ParsedPair::Ec(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    pkcs8,
                )
                .map_err(fail)?,
            ),
            SigningAlg::EdDSA => {
                ParsedPair::Ed(signature::Ed25519KeyPair::from_pkcs8(pkcs8).map_err(fail)?)
            }
        })
    }

    fn public_jwk(&self) -> PublicJwk {
        match self {
            ParsedPair::Rsa(k) => {
                let public = k.public_key();
                PublicJwk::Rsa {
                    n: B64.encode(public.modulus().big_endian_without_leading_zero()),
                    e: B64.encode(public.exponent().big_endian_without_leading_zero()),
                }
            }
            ParsedPair::Ec(k) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = k.public_key().as_ref();
                PublicJwk::Ec {
                    x: B64.encode(&point[1..33]),
                    y: B64.encode(&point[33..65]),
                }
            }
            ParsedPair::Ed(k) => PublicJwk::Okp {
                x: B64.encode(k.public_key().as_ref()),
            },
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        // Signing with a key that parsed cannot fail except on an internal library error;
        // such a key is unusable and the process cannot issue tokens at all.
        match self {
            ParsedPair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .expect("RSA signing with a parsed key");
                sig
            }
            ParsedPair::Ec(k) => k
                .sign(&SystemRandom::new(), message)
                .expect("ECDSA signing with a parsed key")
                .as_ref()
                .to_vec(),
            ParsedPair::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }
}

enum PublicJwk {
    Rsa { n: String, e: String },
    Ec { x: String, y: String },
    Okp { x: String },
}

impl PublicJwk {
    /// RFC 7638: SHA-256 of the required members in lexicographic order, base64url.
    fn thumbprint(&self) -> Kid {
        let canonical = match self {
            PublicJwk::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            PublicJwk::Ec { x, y } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            PublicJwk::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        Kid::new(B64.encode(Sha256::digest(canonical.as_bytes())))
    }

    fn to_json(&self, kid: &Kid, alg: SigningAlg) -> serde_json::Value {
        let mut v = match self {
            PublicJwk::Rsa { n, e } => serde_json::json!({ "kty": "RSA", "n": n, "e": e }),
            PublicJwk::Ec { x, y } => {
                serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y })
            }
            PublicJwk::Okp { x } => serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": x }),
        };
        v["kid"] = kid.as_str().into();
        v["use"] = "sig".into();
        v["alg"] = alg.as_str().into();
        v
    }

    fn decoding_key(&self) -> Result<DecodingKey, KeyError> {
        let fail = |e: jsonwebtoken::errors::Error| KeyError(format!("public key: {e}"));
        match self {
            PublicJwk::Rsa { n, e } => DecodingKey::from_rsa_components(n, e).map_err(fail),
            PublicJwk::Ec { x, y } => DecodingKey::from_ec_components(x, y).map_err(fail),
            PublicJwk::Okp { x } => DecodingKey::from_ed_components(x).map_err(fail),
        }
    }
}

/// One parsed key, ready to sign and verify.
pub struct SigningKey {
    kid: Kid,
    alg: SigningAlg,
    pair: ParsedPair,
    /// base64url of the JWS header, computed once.
    header_b64: String,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

impl SigningKey {
    /// Parses a stored key. Costs ~250 µs for RSA: call at load time only.
    pub fn load(stored: &StoredKey) -> Result<Self, KeyError> {
        let pair = ParsedPair::parse(stored.alg, &stored.private_pkcs8)?;
        let public = pair.public_jwk();
        if public.thumbprint() != stored.kid {
            return Err(KeyError(format!(
                "key {} does not match its kid",
                stored.kid
            )));
        }
        let header = serde_json::json!({ "alg": stored.alg.as_str(), "kid": stored.kid.as_str(), "typ": "at+jwt" });
        Ok(SigningKey {
            kid: stored.kid.clone(),
            alg: stored.alg,
            header_b64: B64.encode(header.to_string()),
            decoding: public.decoding_key()?,
            jwk: public.to_json(&stored.kid, stored.alg),
            pair,
        })
    }

    /// Its key id.
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// Its algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// Signs `claims` as a compact JWS with header `{alg, kid, typ: "at+jwt"}` (RFC 9068 §2.1).
    pub fn sign_jwt(&self, claims: &impl Serialize) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        let payload = serde_json::to_vec(claims).expect("claims serialize to JSON");
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 400);
        out.push_str(&self.header_b64);
        out.push('.');
        B64.encode_string(&payload, &mut out);
        let signature = self.pair.sign(out.as_bytes());
        out.push('.');
        B64.encode_string(signature, &mut out);
        out
    }
}

/// The keys in use at one instant: the active key of each algorithm signs; next, active and
/// retired keys are published and verify.
pub struct KeyRing {
    signers: HashMap<SigningAlg, Arc<SigningKey>>,
    by_kid: HashMap<Kid, Arc<SigningKey>>,
    jwks: String,
    /// When the next key activates or a retired key expires: the ring must be rebuilt then.
    changes_at: Option<UnixTime>,
}

impl KeyRing {
    /// Parses every key that is published at `now` once.
    pub fn load(stored: &[StoredKey], now: UnixTime) -> Result<KeyRing, KeyError> {
        let mut signers = HashMap::new();
        let mut by_kid = HashMap::new();
        let mut published = Vec::new();
        let mut changes_at: Option<UnixTime> = None;
        let mut soonest = |t: UnixTime| {
            if t > now && changes_at.is_none_or(|c| t < c) {
                changes_at = Some(t);
            }
        };
        let states = key_states(stored, now);
        // Published in the order they were stored (oldest first), as before rotation existed.
        for s in stored {
            let Some(status) = states.iter().find(|k| k.kid == s.kid) else {
                continue;
            };
            soonest(status.activates_at);
            if let Some(until) = status.published_until {
                soonest(until);
            }
            if status.state == KeyState::Expired {
                continue;
            }
            let key = Arc::new(SigningKey::load(s)?);
            published.push(key.jwk.clone());
            by_kid.insert(key.kid.clone(), key.clone());
            if status.state == KeyState::Active {
                signers.insert(s.alg, key);
            }
        }
        let jwks = serde_json::json!({ "keys": published }).to_string();
        Ok(KeyRing {
            signers,
            by_kid,
            jwks,
            changes_at,
        })
    }

    /// When a key activates or expires next; the ring is stale from then on.
    pub fn changes_at(&self) -> Option<UnixTime> {
        self.changes_at
    }

    /// How many keys are published.
    pub fn published(&self) -> usize {
        self.by_kid.len()
    }

    /// The key that signs with `alg`, if one is loaded.
    pub fn signer(&self, alg: SigningAlg) -> Option<&Arc<SigningKey>> {
        self.signers.get(&alg)
    }

    /// The JWKS document (RFC 7517 §5), serialized once.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// Verifies the signature of one of our tokens and returns its claims. Time claims are
    /// not checked here; the caller compares them with its clock.
    pub fn verify<T: serde::de::DeserializeOwned>(&self, token: &str) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = self.by_kid.get(&Kid::new(header.kid?))?;
        if header.alg != key.alg.jwt() {
            return None;
        }
        let mut validation = jsonwebtoken::Validation::new(key.alg.jwt());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_with_a_thumbprint_kid() {
        for alg in SigningAlg::ALL {
            let stored = StoredKey::generate(alg, UnixTime(1)).unwrap();
            let ring = KeyRing::load(std::slice::from_ref(&stored), UnixTime(1)).unwrap();
            let token = ring
                .signer(alg)
                .unwrap()
                .sign_jwt(&serde_json::json!({ "sub": "x" }));
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(stored.kid.as_str()));
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            let claims: serde_json::Value = ring.verify(&token).unwrap();
            assert_eq!(claims["sub"], "x");
            let jwks: serde_json::Value = serde_json::from_str(ring.jwks_json()).unwrap();
            assert_eq!(jwks["keys"][0]["kid"], stored.kid.as_str());
            assert_eq!(jwks["keys"][0]["use"], "sig");
            assert_eq!(jwks["keys"][0]["alg"], alg.as_str());
        }
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let stored = StoredKey::generate(SigningAlg::ES256, UnixTime(1)).unwrap();
        let ring = KeyRing::load(&[stored], UnixTime(1)).unwrap();
        let token = ring
            .signer(SigningAlg::ES256)
            .unwrap()
            .sign_jwt(&serde_json::json!({ "a": 1 }));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(r#"{"a":2}"#);
        parts[1] = &forged;
        assert!(ring.verify::<serde_json::Value>(&parts.join(".")).is_none());
    }

    #[test]
    fn a_rotated_key_is_published_ahead_signs_on_time_and_its_predecessor_retires() {
        let old = StoredKey::generate(SigningAlg::EdDSA, UnixTime(100)).unwrap();
        let mut new = StoredKey::generate(SigningAlg::EdDSA, UnixTime(1_000)).unwrap();
        new.activates_at = UnixTime(2_000);
        let keys = [new.clone(), old.clone()];
        let kids = |ring: &KeyRing| -> Vec<String> {
            let jwks: serde_json::Value = serde_json::from_str(ring.jwks_json()).unwrap();
            let mut v: Vec<String> = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        };
        let mut both = vec![old.kid.to_string(), new.kid.to_string()];
        both.sort();

        // Published ahead: both keys in the JWKS, the old one signs.
        let before = KeyRing::load(&keys, UnixTime(1_999)).unwrap();
        assert_eq!(before.signer(SigningAlg::EdDSA).unwrap().kid(), &old.kid);
        assert_eq!(kids(&before), both);
        assert_eq!(before.changes_at(), Some(UnixTime(2_000)));
        let old_token = before
            .signer(SigningAlg::EdDSA)
            .unwrap()
            .sign_jwt(&serde_json::json!({}));

        // Activated: the new key signs, the old one still verifies.
        let after = KeyRing::load(&keys, UnixTime(2_000)).unwrap();
        assert_eq!(after.signer(SigningAlg::EdDSA).unwrap().kid(), &new.kid);
        assert_eq!(kids(&after), both);
        assert!(after.verify::<serde_json::Value>(&old_token).is_some());
        let gone = 2_000 + RETIRED_KEY_PUBLISHED_SECS;
        assert_eq!(after.changes_at(), Some(UnixTime(gone)));
        let states: Vec<KeyState> = key_states(&keys, UnixTime(2_000))
            .iter()
            .map(|k| k.state)
            .collect();
        assert_eq!(states, [KeyState::Retired, KeyState::Active]);

        // Every token of the old key has expired: it is no longer published.
        let later = KeyRing::load(&keys, UnixTime(gone)).unwrap();
        assert_eq!(kids(&later), vec![new.kid.to_string()]);
        assert!(later.verify::<serde_json::Value>(&old_token).is_none());
        assert_eq!(later.changes_at(), None);
        assert_eq!(
            key_states(&keys, UnixTime(gone))[0].state,
            KeyState::Expired
        );
    }

    #[test]
    fn a_key_whose_kid_does_not_match_is_refused() {
        let mut stored = StoredKey::generate(SigningAlg::EdDSA, UnixTime(1)).unwrap();
        stored.kid = Kid::new("other");
        assert!(SigningKey::load(&stored).is_err());
    }
}
