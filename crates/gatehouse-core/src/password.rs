//! Passwords: argon2id with the crate's defaults (the OWASP minimum: m=19 MiB, t=2, p=1).
//! One hash costs ~24 ms of CPU, so callers run these functions on a blocking thread.

use std::fmt;
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::types::ParseError;

/// Shortest password accepted (NIST SP 800-63B §3.1.1.2).
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted: argon2 has no limit, but nobody types more.
pub const MAX_LENGTH: usize = 256;

/// A password as typed. `Debug` never shows it.
pub struct Password(String);

impl Password {
    /// Wraps a password typed at sign-in (any length: a wrong one simply fails).
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }

    /// Wraps a new password, checking its length.
    pub fn new_checked(s: impl Into<String>) -> Result<Self, ParseError> {
        let s = s.into();
        let n = s.chars().count();
        if n < MIN_LENGTH {
            return Err(ParseError(format!(
                "the password must have at least {MIN_LENGTH} characters"
            )));
        }
        if n > MAX_LENGTH {
            return Err(ParseError(format!(
                "the password must have at most {MAX_LENGTH} characters"
            )));
        }
        Ok(Password(s))
    }

    /// A random password (24 characters, ~143 bits), for accounts created without one.
    pub fn generate() -> Self {
        Password(crate::random::secret("")[..24].to_owned())
    }

    /// The password itself, to show once.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Its argon2id PHC string, with a fresh random salt.
    pub fn hash(&self) -> String {
        // Hashing with default parameters and an OS-random salt fails only if the OS has no
        // randomness, and nothing secure can proceed then.
        Argon2::default()
            .hash_password(self.0.as_bytes())
            .expect("argon2 hashing with default parameters")
            .to_string()
    }

    /// Whether it matches `phc`. An unparsable hash matches nothing.
    pub fn verify(&self, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(h) => Argon2::default()
                .verify_password(self.0.as_bytes(), &h)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Spends the time of one verification without a real hash, so that an unknown email
    /// answers as slowly as a wrong password.
    pub fn verify_dummy(&self) {
        static DUMMY: LazyLock<String> =
            LazyLock::new(|| Password::new("gatehouse-dummy-password").hash());
        let _ = self.verify(&DUMMY);
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let p = Password::new_checked("correct horse").unwrap();
        let h = p.hash();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify(&h));
        assert!(!Password::new("wrong horse").verify(&h));
        assert_ne!(h, p.hash(), "a fresh salt each time");
        assert!(!p.verify("not a hash"));
    }

    #[test]
    fn length_is_checked_and_debug_redacts() {
        assert!(Password::new_checked("short").is_err());
        assert!(Password::new_checked("x".repeat(257)).is_err());
        assert_eq!(Password::generate().expose_secret().len(), 24);
        assert!(!format!("{:?}", Password::new("hunter22")).contains("hunter"));
    }
}
