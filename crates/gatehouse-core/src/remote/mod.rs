//! Documents Gatehouse fetches from URLs others control (client metadata documents, client
//! key sets): the fetcher the adapter provides, and one cache that keeps what was fetched by
//! its freshness, within bounds.
//!
//! The cache makes concurrent requests for one URL one fetch, remembers briefly that a server
//! did not answer (so that a page reloaded in a loop does not wait for the same timeout
//! again and again), never remembers an error response or a bad document (CIMD-11), and may
//! keep answering with the last good copy for a while when a refetch fails for a reason that
//! says nothing about the document (a timeout, a 5xx).

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use moka::ops::compute::Op;
use url::Url;

use crate::clock::UnixTime;

/// What a fetch returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedDocument {
    /// The body, at most the limit the fetch was given.
    pub body: Vec<u8>,
    /// How long the response may be cached, from `Cache-Control` (`max-age`, `no-store`,
    /// `no-cache`); `None` when the response says nothing.
    pub freshness: Option<Duration>,
}

/// Why a fetch failed, in words for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    /// What went wrong.
    pub message: String,
    /// What kind of failure it was.
    pub kind: Failure,
}

/// Kinds of fetch failure, which decide what the cache does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer at all (a timeout, a refused connection): a copy fetched before may still
    /// be used, and the failure is remembered briefly so that every request does not wait
    /// for the same timeout.
    Unreachable,
    /// The other server failed (a 5xx, a 429): a copy fetched before may still be used. An
    /// error response is never remembered (CIMD-11).
    ServerError,
    /// The document is gone or wrong (a 404, a redirect, bad content): nothing fetched
    /// before is used any more, and nothing is remembered (CIMD-11).
    Refused,
}

impl FetchError {
    /// A failure that says the document is gone or wrong.
    pub fn refused(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            kind: Failure::Refused,
        }
    }

    /// An error response of the other server.
    pub fn server_error(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            kind: Failure::ServerError,
        }
    }

    /// No answer.
    pub fn unreachable(message: impl Into<String>) -> Self {
        FetchError {
            message: message.into(),
            kind: Failure::Unreachable,
        }
    }

    /// Whether it says nothing about the document, so that a copy fetched before may still
    /// answer.
    pub fn transient(&self) -> bool {
        self.kind != Failure::Refused
    }
}

/// Fetches a JSON document: resolves the host, refuses special-use addresses, connects only
/// to the address it checked, follows no redirects, needs a 200 with a JSON media type, reads
/// at most `max_bytes`, and gives up quickly.
#[async_trait]
pub trait DocumentFetcher: Send + Sync {
    /// GETs `url`.
    async fn fetch(&self, url: &Url, max_bytes: usize) -> Result<FetchedDocument, FetchError>;
}

/// How long a cache keeps what it fetched, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Shortest freshness, whatever the response says (unless it says `no-store`).
    pub min_fresh: i64,
    /// Longest freshness.
    pub max_fresh: i64,
    /// Freshness of a response that says nothing.
    pub default_fresh: i64,
    /// How long after it was fetched a copy may still answer while refetches fail
    /// transiently; 0 never.
    pub keep_stale: i64,
    /// How long a failure to get any answer is remembered before the next fetch.
    pub remember_failure: i64,
}

impl Policy {
    /// Seconds a response with `freshness` stays fresh: 0 for `no-store`/`no-cache`, else its
    /// own freshness within [`min_fresh`](Self::min_fresh)..=[`max_fresh`](Self::max_fresh).
    pub fn lifetime(&self, freshness: Option<Duration>) -> i64 {
        match freshness {
            None => self.default_fresh,
            Some(d) if d.is_zero() => 0,
            Some(d) => i64::try_from(d.as_secs())
                .unwrap_or(i64::MAX)
                .clamp(self.min_fresh, self.max_fresh),
        }
    }
}

/// A copy that was fetched.
#[derive(Debug)]
struct Copy<V> {
    value: Arc<V>,
    fetched_at: UnixTime,
    fresh_until: UnixTime,
    /// The response said `no-store`: it answers only the requests waiting for this fetch.
    no_store: bool,
    /// What it weighs against the cache's byte budget.
    weight: u32,
}

impl<V> Clone for Copy<V> {
    fn clone(&self) -> Self {
        Copy {
            value: self.value.clone(),
            fetched_at: self.fetched_at,
            fresh_until: self.fresh_until,
            no_store: self.no_store,
            weight: self.weight,
        }
    }
}

#[derive(Debug)]
enum State<V> {
    Good(Copy<V>),
    Failed {
        reason: String,
        until: UnixTime,
        /// The last good copy, while it may still answer (transient failures only).
        stale: Option<Copy<V>>,
    },
}

impl<V> Clone for State<V> {
    fn clone(&self) -> Self {
        match self {
            State::Good(c) => State::Good(c.clone()),
            State::Failed {
                reason,
                until,
                stale,
            } => State::Failed {
                reason: reason.clone(),
                until: *until,
                stale: stale.clone(),
            },
        }
    }
}

/// What one key holds: the state its last fetch left, which fetch that was (numbered in the
/// order fetches ended, so that a lookup can tell a fetch it waited for from an older one),
/// and how long after that fetch anything may still use it.
#[derive(Debug)]
struct Slot<V> {
    state: State<V>,
    fetch: u64,
    keep: Duration,
}

impl<V> Clone for Slot<V> {
    fn clone(&self) -> Self {
        Slot {
            state: self.state.clone(),
            fetch: self.fetch,
            keep: self.keep,
        }
    }
}

/// Removes each slot once its `keep` has passed.
struct Expire;

impl<K, V> moka::Expiry<K, Slot<V>> for Expire {
    fn expire_after_create(
        &self,
        _: &K,
        slot: &Slot<V>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(slot.keep)
    }

    fn expire_after_update(
        &self,
        _: &K,
        slot: &Slot<V>,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.keep)
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Outcome<V> {
    /// A fresh copy.
    Fresh(Arc<V>),
    /// The last good copy, used because refetching it failed for `reason`. `fetched` says the
    /// failure happened in this lookup (so that it is reported once, not at every use).
    Stale {
        /// The copy.
        value: Arc<V>,
        /// Why the refetch failed.
        reason: String,
        /// Whether this lookup made the failed fetch.
        fetched: bool,
    },
    /// Nothing usable: the fetch failed for `reason`, now (`fetched`) or a moment ago.
    Failed {
        /// Why.
        reason: String,
        /// Whether this lookup made the failed fetch.
        fetched: bool,
    },
}

/// What the cache keeps of a response besides the value made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// See [`FetchedDocument::freshness`].
    pub freshness: Option<Duration>,
    /// About what the value made from the response holds in memory, which the cache counts
    /// against its byte budget: the body's size times what parsing it can grow it by.
    pub bytes: usize,
}

impl FetchedDocument {
    /// What the cache keeps of this response besides the value made from it, which holds at
    /// most `growth` times the body in memory.
    pub fn received(&self, growth: usize) -> Received {
        Received {
            freshness: self.freshness,
            bytes: self.body.len().saturating_mul(growth),
        }
    }
}

/// What a fetch made of a document: a value, and what the cache keeps of the response.
pub type Made<V> = Result<(V, Received), FetchError>;

/// What an entry weighs besides its value and its key: the bookkeeping, and a floor that
/// keeps a flood of tiny entries from taking a cache's room in small pieces.
const ENTRY_OVERHEAD: u32 = 1024;

/// Values fetched from URLs, each kept by its own freshness.
pub struct RemoteCache<K, V> {
    slots: Cache<K, Slot<V>>,
    policy: Policy,
    /// Fetches ended so far; each slot records the number of the fetch that made it.
    fetches: AtomicU64,
}

impl<K, V> RemoteCache<K, V>
where
    K: AsRef<str> + Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A cache kept by `policy` that holds at most about `max_bytes`: each entry weighs what
    /// its fetch said its value holds ([`Received::bytes`]), twice its key, and a fixed
    /// overhead; the least used go first when the budget is spent, and each entry goes when
    /// nothing may use it any more (a failure at once, or when it may no longer be
    /// remembered; a copy when it may no longer answer, even as the last good one).
    pub fn new(max_bytes: u64, policy: Policy) -> Self {
        RemoteCache {
            slots: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &K, slot: &Slot<V>| {
                    let key = u32::try_from(key.as_ref().len()).unwrap_or(u32::MAX);
                    weight(&slot.state).saturating_add(key.saturating_mul(2))
                })
                .expire_after(Expire)
                .build(),
            policy,
            fetches: AtomicU64::new(0),
        }
    }

    /// The value for `key` at `now`, fetched by `fetch` when there is no fresh copy. With
    /// `refetch_before`, a fresh copy fetched before that time is fetched again (a key set
    /// that lacks a key a client just used).
    ///
    /// Concurrent lookups of one key make one fetch, and every lookup that waited for it gets
    /// its result, whatever it was: an error response or a `no-store` copy answers the
    /// lookups that were waiting, and only the ones that come after fetch again.
    pub async fn get<F, Fut>(
        &self,
        key: &K,
        now: UnixTime,
        refetch_before: Option<UnixTime>,
        fetch: F,
    ) -> Outcome<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Made<V>>,
    {
        if let Some(slot) = self.slots.get(key).await
            && let Some(found) = self.settled(&slot, now, refetch_before)
        {
            return found;
        }
        // A fetch that ends after this point is one this lookup waited for.
        let waiting_since = self.fetches.load(Ordering::SeqCst);
        let mut fetched = false;
        let result = self
            .slots
            .entry(key.clone())
            .and_compute_with(|current| {
                let current = current.map(|e| e.into_value());
                let fetched = &mut fetched;
                async move {
                    if let Some(slot) = &current
                        && (slot.fetch > waiting_since
                            || self.settled(slot, now, refetch_before).is_some())
                    {
                        return Op::Nop;
                    }
                    *fetched = true;
                    let last_good = current.and_then(|slot| match slot.state {
                        State::Good(c) => Some(c),
                        State::Failed { stale, .. } => stale,
                    });
                    let state = self.state_after(fetch().await, last_good, now);
                    Op::Put(Slot {
                        keep: self.keep(&state, now),
                        state,
                        fetch: self.fetches.fetch_add(1, Ordering::SeqCst) + 1,
                    })
                }
            })
            .await;
        match result.into_entry() {
            Some(entry) => self.answer(&entry.into_value().state, now, fetched),
            None => Outcome::Failed {
                reason: "nothing was fetched".into(),
                fetched,
            },
        }
    }

    /// What a key holds after a fetch that gave `made`.
    fn state_after(&self, made: Made<V>, last_good: Option<Copy<V>>, now: UnixTime) -> State<V> {
        let policy = self.policy;
        match made {
            Ok((value, received)) => {
                let lifetime = policy.lifetime(received.freshness);
                State::Good(Copy {
                    value: Arc::new(value),
                    fetched_at: now,
                    fresh_until: now.plus(lifetime),
                    no_store: lifetime == 0,
                    weight: u32::try_from(received.bytes).unwrap_or(u32::MAX),
                })
            }
            Err(e) => State::Failed {
                stale: last_good.filter(|c| {
                    e.transient() && !c.no_store && now.0 < c.fetched_at.0 + policy.keep_stale
                }),
                until: match e.kind {
                    Failure::Unreachable => now.plus(policy.remember_failure),
                    Failure::ServerError | Failure::Refused => now,
                },
                reason: e.message,
            },
        }
    }

    /// How long after a fetch at `now` anything may still use `state`: a copy until it may no
    /// longer answer even as the last good one, a failure while it is remembered or its
    /// stale copy may answer; at least a second, for the lookups waiting for that fetch.
    fn keep(&self, state: &State<V>, now: UnixTime) -> Duration {
        let until = match state {
            State::Good(c) if c.no_store => now,
            State::Good(c) => c.fresh_until.max(c.fetched_at.plus(self.policy.keep_stale)),
            State::Failed { until, stale, .. } => match stale {
                Some(c) => (*until).max(c.fetched_at.plus(self.policy.keep_stale)),
                None => *until,
            },
        };
        Duration::from_secs(u64::try_from(until.0 - now.0).unwrap_or(0).max(1))
    }

    /// What `slot` answers at `now` without fetching, if it still may.
    fn settled(
        &self,
        slot: &Slot<V>,
        now: UnixTime,
        refetch_before: Option<UnixTime>,
    ) -> Option<Outcome<V>> {
        let usable = match &slot.state {
            State::Good(c) => {
                now < c.fresh_until && refetch_before.is_none_or(|t| c.fetched_at >= t)
            }
            State::Failed { until, .. } => now < *until,
        };
        usable.then(|| self.answer(&slot.state, now, false))
    }

    /// What `state` answers at `now`; `fetched` says this lookup made the fetch behind it.
    fn answer(&self, state: &State<V>, now: UnixTime, fetched: bool) -> Outcome<V> {
        match state {
            State::Good(c) => Outcome::Fresh(c.value.clone()),
            State::Failed { reason, stale, .. } => match stale {
                Some(c) if now.0 < c.fetched_at.0 + self.policy.keep_stale => Outcome::Stale {
                    value: c.value.clone(),
                    reason: reason.clone(),
                    fetched,
                },
                _ => Outcome::Failed {
                    reason: reason.clone(),
                    fetched,
                },
            },
        }
    }
}

/// What `state` weighs against the cache's byte budget.
fn weight<V>(state: &State<V>) -> u32 {
    match state {
        State::Good(c) => ENTRY_OVERHEAD.saturating_add(c.weight),
        State::Failed { reason, stale, .. } => {
            let copy = stale.as_ref().map_or(0, |c| c.weight);
            let reason = u32::try_from(reason.len()).unwrap_or(u32::MAX);
            ENTRY_OVERHEAD.saturating_add(reason).saturating_add(copy)
        }
    }
}

#[cfg(test)]
mod tests;
