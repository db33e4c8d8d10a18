//! Secrets: redacted in `Debug`, compared in constant time, stored only as hashes.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A client secret as received or generated. `Debug` never shows it.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// A new 256-bit secret (`ghs_` + 43 base64url characters).
    pub fn generate() -> Self {
        ClientSecret(crate::random::secret("ghs_"))
    }

    /// Wraps a secret received from a client.
    pub fn new(s: impl Into<String>) -> Self {
        ClientSecret(s.into())
    }

    /// The secret itself, for showing it once to the operator.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Its hash, the only form that is stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// SHA-256 of a high-entropy secret, hex-encoded. A fast hash is right here: the secrets are
/// 256-bit random values, so there is nothing for a slow password hash to protect (see
/// DESIGN.md, "Physics"), and the token endpoint stays fast.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    /// Hashes `secret`.
    pub fn of(secret: &str) -> Self {
        Self::of_bytes(secret.as_bytes())
    }

    /// Hashes raw bytes (for values that are not text, such as a request's parameters).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        SecretHash(hex)
    }

    /// Wraps a hash read from storage.
    pub fn from_stored(hex: impl Into<String>) -> Self {
        SecretHash(hex.into())
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `secret` hashes to this value, compared in constant time.
    pub fn verify(&self, secret: &ClientSecret) -> bool {
        self.matches(&secret.0)
    }

    /// Whether `value` (any high-entropy secret: a state, a cookie) hashes to this value,
    /// compared in constant time.
    pub fn matches(&self, value: &str) -> bool {
        SecretHash::of(value)
            .0
            .as_bytes()
            .ct_eq(self.0.as_bytes())
            .into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_accepts_only_the_secret() {
        let s = ClientSecret::generate();
        let h = s.hash();
        assert!(h.verify(&s));
        assert!(!h.verify(&ClientSecret::new("ghs_wrong")));
        assert_eq!(h.as_str().len(), 64);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = ClientSecret::new("ghs_topsecret");
        assert!(!format!("{s:?}").contains("topsecret"));
        assert!(!format!("{:?}", s.hash()).contains(s.hash().as_str()));
    }
}
