//! Identifiers and secrets from the operating system's CSPRNG.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Lower-case letters and digits: ids that are safe in URLs, paths and shells.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `n` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The system RNG only fails if the OS cannot supply entropy, and nothing secure can
    // proceed then.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("operating system random number generator failed");
    buf
}

/// A random identifier `{prefix}{20 chars}` (100 bits, Crockford-like base 32).
pub fn id(prefix: &str) -> String {
    let raw = bytes::<20>();
    let mut out = String::with_capacity(prefix.len() + raw.len());
    out.push_str(prefix);
    out.extend(raw.iter().map(|b| ID_ALPHABET[(b & 31) as usize] as char));
    out
}

/// A random secret `{prefix}{43 chars}`: 256 bits, base64url.
pub fn secret(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes::<32>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_length_and_differ() {
        let a = id("res_");
        let b = id("res_");
        assert!(a.starts_with("res_"));
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a[4..].bytes().all(|c| ID_ALPHABET.contains(&c)));
    }

    #[test]
    fn secrets_carry_256_bits() {
        let s = secret("ghs_");
        assert_eq!(s.len(), 4 + 43);
    }
}
