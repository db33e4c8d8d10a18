//! PKCE (RFC 7636, OAuth 2.1 §4.1.1): the `S256` method only.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::types::ParseError;

/// The only method accepted and advertised.
pub const S256: &str = "S256";

/// RFC 7636 §4.1: 43–128 characters from the unreserved set.
fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A `code_challenge` sent with `code_challenge_method=S256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses a challenge; `method` must be `S256` (a missing method would mean `plain`,
    /// which OAuth 2.1 lets a server refuse and MCP servers must).
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, ParseError> {
        match method {
            Some(S256) => {}
            Some(m) => {
                return Err(ParseError(format!(
                    "code_challenge_method `{m}` is not supported: use S256"
                )));
            }
            None => {
                return Err(ParseError(
                    "code_challenge_method is required and must be S256".into(),
                ));
            }
        }
        if !is_pkce_string(challenge) {
            return Err(ParseError(
                "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]".into(),
            ));
        }
        Ok(CodeChallenge(challenge.to_owned()))
    }

    /// Wraps a challenge read from storage.
    pub fn from_stored(s: impl Into<String>) -> Self {
        CodeChallenge(s.into())
    }

    /// The challenge.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
    pub fn verify(&self, verifier: &CodeVerifier) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// A `code_verifier` sent to the token endpoint. `Debug` never shows it.
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// Parses a verifier (RFC 7636 §4.1).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if is_pkce_string(s) {
            Ok(CodeVerifier(s.to_owned()))
        } else {
            Err(ParseError(
                "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]".into(),
            ))
        }
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_example_verifies() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert!(c.verify(&CodeVerifier::parse(VERIFIER).unwrap()));
        let other = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        assert!(!c.verify(&other));
    }

    #[test]
    fn plain_missing_method_and_bad_strings_are_refused() {
        assert!(CodeChallenge::parse(CHALLENGE, Some("plain")).is_err());
        assert!(CodeChallenge::parse(CHALLENGE, None).is_err());
        assert!(CodeChallenge::parse("short", Some("S256")).is_err());
        assert!(CodeChallenge::parse(&"a".repeat(129), Some("S256")).is_err());
        assert!(CodeChallenge::parse(&format!("{}+", &CHALLENGE[1..]), Some("S256")).is_err());
        assert!(CodeVerifier::parse("too-short").is_err());
        assert!(!format!("{:?}", CodeVerifier::parse(VERIFIER).unwrap()).contains("dBj"));
    }
}
