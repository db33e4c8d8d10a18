//! Signing keys: generation, the pre-parsed key ring that signs access tokens, and the
//! published JWKS.
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
    /// When it was created; the newest key of an algorithm signs.
    pub created_at: UnixTime,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_pkcs8", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A key that could not be generated or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing key error: {0}")]
pub struct KeyError(String);

impl StoredKey {
    /// Generates a new key for `alg` (RSA keys are 2048 bits).
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
        })
    }
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

/// The keys in use: the newest key of each algorithm signs; every key verifies and is
/// published.
pub struct KeyRing {
    signers: HashMap<SigningAlg, Arc<SigningKey>>,
    by_kid: HashMap<Kid, Arc<SigningKey>>,
    jwks: String,
}

impl KeyRing {
    /// Parses every stored key once.
    pub fn load(stored: &[StoredKey]) -> Result<KeyRing, KeyError> {
        let mut signers: HashMap<SigningAlg, (UnixTime, Arc<SigningKey>)> = HashMap::new();
        let mut by_kid = HashMap::new();
        let mut published = Vec::new();
        for s in stored {
            let key = Arc::new(SigningKey::load(s)?);
            published.push(key.jwk.clone());
            by_kid.insert(key.kid.clone(), key.clone());
            let newer = signers
                .get(&s.alg)
                .is_none_or(|(at, _)| s.created_at >= *at);
            if newer {
                signers.insert(s.alg, (s.created_at, key));
            }
        }
        let jwks = serde_json::json!({ "keys": published }).to_string();
        Ok(KeyRing {
            signers: signers.into_iter().map(|(alg, (_, k))| (alg, k)).collect(),
            by_kid,
            jwks,
        })
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
            let ring = KeyRing::load(std::slice::from_ref(&stored)).unwrap();
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
        let ring = KeyRing::load(&[stored]).unwrap();
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
    fn the_newest_key_of_an_algorithm_signs() {
        let old = StoredKey::generate(SigningAlg::EdDSA, UnixTime(1)).unwrap();
        let new = StoredKey::generate(SigningAlg::EdDSA, UnixTime(2)).unwrap();
        let ring = KeyRing::load(&[new.clone(), old.clone()]).unwrap();
        assert_eq!(ring.signer(SigningAlg::EdDSA).unwrap().kid(), &new.kid);
        let old_ring = KeyRing::load(std::slice::from_ref(&old)).unwrap();
        let t = old_ring
            .signer(SigningAlg::EdDSA)
            .unwrap()
            .sign_jwt(&serde_json::json!({}));
        assert!(
            ring.verify::<serde_json::Value>(&t).is_some(),
            "old keys still verify"
        );
    }

    #[test]
    fn a_key_whose_kid_does_not_match_is_refused() {
        let mut stored = StoredKey::generate(SigningAlg::EdDSA, UnixTime(1)).unwrap();
        stored.kid = Kid::new("other");
        assert!(SigningKey::load(&stored).is_err());
    }
}
