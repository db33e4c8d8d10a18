//! Sealing a value with a key derived from a secret the caller holds (AES-256-GCM), so that
//! what is stored can only be read back by presenting that secret again. Used for the answer
//! to a refresh-token retry: the database never holds a usable token.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use sha2::{Digest, Sha256};

fn key(secret: &str) -> Option<RandomizedNonceKey> {
    let mut h = Sha256::new();
    h.update(b"gatehouse seal v1\0");
    h.update(secret.as_bytes());
    RandomizedNonceKey::new(&AES_256_GCM, &h.finalize()).ok()
}

/// Seals `plain` under `secret`: the nonce followed by the ciphertext and tag.
pub fn seal(secret: &str, plain: &[u8]) -> Option<Vec<u8>> {
    let key = key(secret)?;
    let mut buf = plain.to_vec();
    let nonce = key.seal_in_place_append_tag(Aad::empty(), &mut buf).ok()?;
    let mut out = nonce.as_ref().to_vec();
    out.extend_from_slice(&buf);
    Some(out)
}

/// Opens what [`seal`] produced with the same secret; `None` for any other secret or a
/// damaged value.
pub fn open(secret: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = body.to_vec();
    let plain = key(secret)?
        .open_in_place(nonce, Aad::empty(), &mut buf)
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_opens() {
        let s = seal("rt_secret", b"{\"access_token\":\"x\"}").unwrap();
        assert_eq!(open("rt_secret", &s).unwrap(), b"{\"access_token\":\"x\"}");
        assert!(open("rt_other", &s).is_none());
        let mut damaged = s.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(open("rt_secret", &damaged).is_none());
        assert!(open("rt_secret", &s[..5]).is_none());
    }
}
