//! Tokens revoked before they expire. JWTs are checked offline, so a revoked one would
//! otherwise pass until its `exp`; the guard polls the authorization server's revocation feed
//! (`{issuer}/revocations?resource=…&since=…`, Gatehouse's own) and refuses what it lists:
//! tokens by `jti`, and every token a deleted or disabled client got before it was revoked. A token revoked now is refused within
//! one poll interval. Checking a token is two hash lookups under a read lock.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use serde::Deserialize;

use crate::verify::{Principal, Verifier, now};

/// What is known to be revoked, and where the next poll starts.
#[derive(Default)]
pub(crate) struct Revoked {
    /// `jti` → `exp`.
    tokens: HashMap<String, i64>,
    /// Deleted or disabled clients → (when, until when their tokens could still be alive).
    clients: HashMap<String, (i64, i64)>,
    since: i64,
}

impl Revoked {
    /// Whether `p` must be refused.
    pub fn refuses(&self, p: &Principal) -> bool {
        p.token_id
            .as_ref()
            .is_some_and(|j| self.tokens.contains_key(j))
            || p.client_id
                .as_ref()
                .and_then(|c| self.clients.get(c))
                // A token issued after the client was revoked (enabled again) passes; one
                // without `iat` cannot show that.
                .is_some_and(|(revoked_at, _)| p.issued_at.is_none_or(|iat| iat <= *revoked_at))
    }

    fn merge(&mut self, feed: Feed, now: i64) {
        for t in feed.tokens {
            self.tokens.insert(t.jti, t.exp);
        }
        for c in feed.clients {
            self.clients.insert(c.client_id, (c.revoked_at, c.until));
        }
        // Entries whose tokens have all expired can go: `exp` is checked anyway.
        self.tokens.retain(|_, exp| *exp > now - 300);
        self.clients.retain(|_, (_, until)| *until > now - 300);
        self.since = feed.next_since;
    }
}

#[derive(Deserialize)]
struct Feed {
    #[serde(default)]
    tokens: Vec<FeedToken>,
    #[serde(default)]
    clients: Vec<FeedClient>,
    next_since: i64,
}

#[derive(Deserialize)]
struct FeedToken {
    jti: String,
    exp: i64,
}

#[derive(Deserialize)]
struct FeedClient {
    client_id: String,
    revoked_at: i64,
    until: i64,
}

/// Polls the feed for `verifier` every `every` until the guard is dropped.
pub(crate) struct Poller {
    url: String,
    resource: String,
    http: reqwest::Client,
    pub state: RwLock<Revoked>,
}

impl Poller {
    pub fn new(issuer: &str, resource: &str, timeout: Duration) -> Poller {
        Poller {
            url: format!("{}/revocations", issuer.trim_end_matches('/')),
            resource: resource.to_owned(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            state: RwLock::new(Revoked::default()),
        }
    }

    /// Whether `p` is revoked, as far as the last poll knows.
    pub fn refuses(&self, p: &Principal) -> bool {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .refuses(p)
    }

    /// Asks the feed once and merges the answer. `Ok(false)`: the authorization server has
    /// no feed (not Gatehouse, or too old), so there is nothing to poll.
    pub async fn poll(&self) -> Result<bool, String> {
        let since = self.state.read().unwrap_or_else(|e| e.into_inner()).since;
        let mut url = url::Url::parse(&self.url).map_err(|e| format!("{}: {e}", self.url))?;
        url.query_pairs_mut()
            .append_pair("resource", &self.resource)
            .append_pair("since", &since.to_string());
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND
            || resp.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED
        {
            return Ok(false);
        }
        if !resp.status().is_success() {
            return Err(format!("{} answered {}", self.url, resp.status()));
        }
        let feed: Feed = resp
            .json()
            .await
            .map_err(|e| format!("{}: not a revocation feed: {e}", self.url))?;
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .merge(feed, now());
        Ok(true)
    }
}

/// Polls every `every` while `verifier` lives.
pub(crate) async fn poll_loop(verifier: Weak<Verifier>, every: Duration) {
    let mut failures = 0u32;
    loop {
        let Some(v) = verifier.upgrade() else { return };
        let result = match v.poller() {
            Some(p) => p.poll().await,
            None => return,
        };
        drop(v);
        match result {
            Ok(true) => failures = 0,
            Ok(false) => {
                tracing::info!(
                    "the authorization server has no revocation feed: revoked tokens pass until they expire"
                );
                return;
            }
            Err(e) => {
                failures += 1;
                // The first failure and then every tenth, so an outage does not flood the log.
                if failures % 10 == 1 {
                    tracing::warn!(error = %e, failures, "cannot read the revocation feed");
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Starts polling for `verifier` (once).
pub(crate) fn start(verifier: &Arc<Verifier>, every: Duration) {
    tokio::spawn(poll_loop(Arc::downgrade(verifier), every));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(jti: &str, client: &str) -> Principal {
        issued(jti, client, 1)
    }

    fn issued(jti: &str, client: &str, iat: i64) -> Principal {
        Principal {
            subject: "s".into(),
            client_id: Some(client.into()),
            scopes: vec![],
            issuer: "i".into(),
            audience: vec![],
            expires_at: 0,
            issued_at: Some(iat),
            token_id: Some(jti.into()),
        }
    }

    #[test]
    fn refuses_listed_tokens_and_clients_and_forgets_expired_ones() {
        let mut r = Revoked::default();
        let feed: Feed = serde_json::from_value(serde_json::json!({
            "tokens": [{"jti": "t1", "exp": 2_000, "revoked_at": 1}, {"jti": "old", "exp": 10}],
            "clients": [{"client_id": "gone", "revoked_at": 1, "until": 5_000}],
            "next_since": 995
        }))
        .unwrap();
        r.merge(feed, 1_000);
        assert!(r.refuses(&principal("t1", "c")));
        assert!(r.refuses(&principal("t2", "gone")));
        assert!(!r.refuses(&principal("t2", "c")));
        // Issued after the client was revoked: it was enabled again.
        assert!(!r.refuses(&issued("t3", "gone", 2)));
        assert!(!r.tokens.contains_key("old"));
        assert_eq!(r.since, 995);
    }
}
