//! Browser sessions: a random cookie value, stored only as its hash, with idle and absolute
//! expiry, and the CSRF token derived from it.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::engine::Engine;
use crate::model::User;
use crate::password::Password;
use crate::records::Session;
use crate::secret::SecretHash;
use crate::signin::Method;
use crate::store::StoreError;

/// A session is marked as used at most this often, so browsing does not write on every page.
const TOUCH_EVERY: i64 = 60;

/// The cookie value of a session. `Debug` never shows it.
#[derive(Clone)]
pub struct SessionToken(String);

impl SessionToken {
    /// Wraps a cookie value.
    pub fn new(s: impl Into<String>) -> Self {
        SessionToken(s.into())
    }

    /// The value, to set in the cookie.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The CSRF token of forms shown in this session: derived from the session secret, so
    /// it needs no storage and another session's token is worthless.
    pub fn csrf_token(&self) -> String {
        SecretHash::of(&format!("gatehouse csrf v1\0{}", self.0))
            .as_str()
            .to_owned()
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf_token()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// Checks a password for `user` (or, for an unknown email, spends the same time). Costs one
/// argon2 verification (~24 ms): call it on a blocking thread.
pub fn check_password(user: Option<&User>, password: &Password) -> bool {
    match user {
        Some(u) if u.has_password() => password.verify(&u.password_hash),
        // No account, or one that signs in another way: as slow as a wrong password.
        _ => {
            password.verify_dummy();
            false
        }
    }
}

impl Engine {
    /// Signs `user` in with `method`: a new session.
    pub async fn start_session(
        &self,
        user: &User,
        method: Method,
    ) -> Result<SessionToken, StoreError> {
        let token = SessionToken(crate::random::secret(""));
        let now = self.now();
        self.store()
            .insert_session(&Session {
                hash: SecretHash::of(&token.0),
                user: user.id.clone(),
                created_at: now,
                last_seen_at: now,
                method,
            })
            .await?;
        Ok(token)
    }

    /// The person signed in with `token` and how they signed in, if the session exists and
    /// has not expired.
    pub async fn session_user(
        &self,
        token: &SessionToken,
    ) -> Result<Option<(User, Method)>, StoreError> {
        let hash = SecretHash::of(&token.0);
        let store = self.store();
        let Some(session) = store.session(&hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        let s = self.settings();
        if now.0 - session.last_seen_at.0 > s.session_idle
            || now.0 - session.created_at.0 > s.session_max
        {
            store.delete_session(&hash).await?;
            return Ok(None);
        }
        if now.0 - session.last_seen_at.0 >= TOUCH_EVERY {
            store.touch_session(&hash, now).await?;
        }
        // Disabling ends sessions; this also covers one started in the same instant.
        Ok(store
            .user(&session.user)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .map(|u| (u, session.method)))
    }

    /// Signs out.
    pub async fn end_session(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.store().delete_session(&SecretHash::of(&token.0)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let a = SessionToken::new("a");
        let b = SessionToken::new("b");
        assert!(a.csrf_matches(&a.csrf_token()));
        assert!(!a.csrf_matches(&b.csrf_token()));
        assert!(!a.csrf_matches(""));
        assert_eq!(format!("{a:?}"), "SessionToken([redacted])");
    }
}
