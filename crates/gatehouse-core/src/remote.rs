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
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const POLICY: Policy = Policy {
        min_fresh: 300,
        max_fresh: 86_400,
        default_fresh: 600,
        keep_stale: 7 * 86_400,
        remember_failure: 10,
    };

    fn cache() -> RemoteCache<&'static str, String> {
        RemoteCache::new(100, POLICY)
    }

    async fn ok(v: &str, fresh: Option<u64>) -> Made<String> {
        let received = Received {
            freshness: fresh.map(Duration::from_secs),
            bytes: v.len(),
        };
        Ok((v.to_owned(), received))
    }

    fn value(o: Outcome<String>) -> String {
        match o {
            Outcome::Fresh(v) => v.to_string(),
            Outcome::Stale { value, .. } => format!("stale {value}"),
            Outcome::Failed { reason, .. } => format!("failed {reason}"),
        }
    }

    #[test]
    fn lifetimes_are_clamped() {
        assert_eq!(POLICY.lifetime(None), 600);
        assert_eq!(POLICY.lifetime(Some(Duration::ZERO)), 0);
        assert_eq!(POLICY.lifetime(Some(Duration::from_secs(5))), 300);
        assert_eq!(POLICY.lifetime(Some(Duration::from_secs(3600))), 3600);
        assert_eq!(POLICY.lifetime(Some(Duration::from_secs(u64::MAX))), 86_400);
    }

    #[tokio::test]
    async fn fresh_copies_are_kept_and_refetched_when_old() {
        let c = cache();
        let t = UnixTime(1_000);
        assert_eq!(
            value(c.get(&"k", t, None, || ok("a", Some(400))).await),
            "a"
        );
        assert_eq!(
            value(c.get(&"k", t.plus(399), None, || ok("b", None)).await),
            "a"
        );
        assert_eq!(
            value(c.get(&"k", t.plus(400), None, || ok("b", None)).await),
            "b"
        );
        // A caller missing a key refetches a copy older than it allows.
        let later = t.plus(401);
        assert_eq!(
            value(
                c.get(&"k", later, Some(t.plus(400)), || ok("c", None))
                    .await
            ),
            "b"
        );
        assert_eq!(
            value(
                c.get(&"k", later, Some(t.plus(401)), || ok("c", None))
                    .await
            ),
            "c"
        );
    }

    #[tokio::test]
    async fn no_store_copies_answer_once() {
        let c = cache();
        let t = UnixTime(1_000);
        assert_eq!(value(c.get(&"k", t, None, || ok("a", Some(0))).await), "a");
        assert_eq!(value(c.get(&"k", t, None, || ok("b", Some(0))).await), "b");
    }

    #[tokio::test]
    async fn only_silence_is_remembered_and_only_briefly() {
        let c = cache();
        let t = UnixTime(1_000);
        let calls = AtomicUsize::new(0);
        let silent = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(FetchError::unreachable("timed out"))
        };
        match c.get(&"k", t, None, silent).await {
            Outcome::Failed { reason, fetched } => assert!(fetched && reason == "timed out"),
            o => panic!("{o:?}"),
        }
        match c.get(&"k", t.plus(9), None, silent).await {
            Outcome::Failed { fetched, .. } => assert!(!fetched, "remembered"),
            o => panic!("{o:?}"),
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            value(c.get(&"k", t.plus(10), None, || ok("a", None)).await),
            "a"
        );
        // CIMD-11: an error response is never cached; the next lookup fetches again.
        let c = cache();
        for reason in ["HTTP 404", "HTTP 503"] {
            let answered = || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(if reason == "HTTP 404" {
                    FetchError::refused(reason)
                } else {
                    FetchError::server_error(reason)
                })
            };
            let before = calls.load(Ordering::SeqCst);
            assert_eq!(
                value(c.get(&"k", t, None, answered).await),
                format!("failed {reason}")
            );
            assert_eq!(
                value(c.get(&"k", t, None, answered).await),
                format!("failed {reason}")
            );
            assert_eq!(calls.load(Ordering::SeqCst), before + 2);
        }
    }

    #[tokio::test]
    async fn the_last_good_copy_answers_through_transient_failures_for_a_while() {
        let c = cache();
        let t = UnixTime(1_000);
        c.get(&"k", t, None, || ok("a", Some(300))).await;
        let down = || async { Err(FetchError::unreachable("timed out")) };
        match c.get(&"k", t.plus(300), None, down).await {
            Outcome::Stale {
                value,
                reason,
                fetched,
            } => {
                assert!(value.as_str() == "a" && reason == "timed out" && fetched)
            }
            o => panic!("{o:?}"),
        }
        match c.get(&"k", t.plus(305), None, down).await {
            Outcome::Stale { fetched, .. } => assert!(!fetched, "reported once per fetch"),
            o => panic!("{o:?}"),
        }
        let week = 7 * 86_400;
        assert!(value(c.get(&"k", t.plus(week - 1), None, down).await).starts_with("stale"));
        assert_eq!(
            value(c.get(&"k", t.plus(week), None, down).await),
            "failed timed out",
            "not after seven days"
        );
        // A server error keeps the stale copy too, and is fetched again next time.
        let c = cache();
        c.get(&"k", t, None, || ok("a", Some(300))).await;
        let failing = || async { Err(FetchError::server_error("HTTP 502")) };
        for _ in 0..2 {
            match c.get(&"k", t.plus(300), None, failing).await {
                Outcome::Stale { fetched, .. } => assert!(fetched, "not remembered"),
                o => panic!("{o:?}"),
            }
        }
        // A refusal (the document is gone) ends the stale copy at once.
        let gone = || async { Err(FetchError::refused("HTTP 404")) };
        assert_eq!(
            value(c.get(&"k", t.plus(300), None, gone).await),
            "failed HTTP 404"
        );
    }

    /// 16 lookups of one key at once, each fetching `answer` (slowly) if it fetches at all;
    /// returns what each got and how many fetches there were.
    async fn sixteen_at_once(
        c: Arc<RemoteCache<&'static str, String>>,
        answer: fn() -> Made<String>,
    ) -> (Vec<Outcome<String>>, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let t = UnixTime(1_000);
        let lookups: Vec<_> = (0..16)
            .map(|_| {
                let (c, calls) = (c.clone(), calls.clone());
                tokio::spawn(async move {
                    c.get(&"k", t, None, || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        answer()
                    })
                    .await
                })
            })
            .collect();
        let mut got = Vec::new();
        for l in lookups {
            got.push(l.await.unwrap());
        }
        (got, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn concurrent_lookups_make_one_fetch_and_share_its_result_whatever_it_was() {
        let good = || {
            let received = Received {
                freshness: None,
                bytes: 1,
            };
            Ok(("a".to_owned(), received))
        };
        let (got, calls) = sixteen_at_once(Arc::new(cache()), good).await;
        assert!(got.into_iter().all(|o| value(o) == "a"));
        assert_eq!(calls, 1);

        // An error response and a `no-store` copy are never kept for later lookups, but the
        // lookups that were waiting for that fetch get it rather than fetching once each.
        let answers: [fn() -> Made<String>; 4] = [
            || Err(FetchError::server_error("HTTP 503")),
            || Err(FetchError::server_error("HTTP 429")),
            || Err(FetchError::refused("HTTP 404")),
            || {
                let received = Received {
                    freshness: Some(Duration::ZERO),
                    bytes: 1,
                };
                Ok(("once".to_owned(), received))
            },
        ];
        for answer in answers {
            let c = Arc::new(cache());
            let (got, calls) = sixteen_at_once(c.clone(), answer).await;
            assert_eq!(calls, 1, "one fetch for 16 lookups");
            let reported = got
                .iter()
                .filter(|o| matches!(o, Outcome::Failed { fetched: true, .. }))
                .count();
            assert!(
                reported <= 1,
                "a failure is reported by the lookup that fetched"
            );
            let first = value(got.into_iter().next().unwrap());
            // The next lookup, after the fetch ended, fetches again.
            let after = c.get(&"k", UnixTime(1_000), None, || ok("b", None)).await;
            assert_eq!(value(after), "b", "after {first}");
        }
    }

    #[test]
    fn entries_are_kept_only_while_something_may_use_them() {
        let c = cache();
        let t = UnixTime(1_000);
        let copy = |no_store| Copy {
            value: Arc::new(String::new()),
            fetched_at: t,
            fresh_until: t.plus(600),
            no_store,
            weight: 0,
        };
        let failed = |until: UnixTime, stale| State::Failed {
            reason: String::new(),
            until,
            stale,
        };
        let secs = |state: State<String>| c.keep(&state, t).as_secs();
        // A copy may answer as the last good one for a week; a no-store one only its waiters.
        assert_eq!(secs(State::Good(copy(false))), 7 * 86_400);
        assert_eq!(secs(State::Good(copy(true))), 1);
        // An error response is never remembered; silence for 10 s; a failure with a stale
        // copy as long as the copy may answer.
        assert_eq!(secs(failed(t, None)), 1);
        assert_eq!(secs(failed(t.plus(10), None)), 10);
        assert_eq!(secs(failed(t, Some(copy(false)))), 7 * 86_400);
    }

    #[tokio::test]
    async fn the_cache_holds_a_byte_budget_not_a_count() {
        // Room for about ten 4 KiB values (each weighs its size, twice its key and 1 KiB).
        let c = RemoteCache::new(10 * (4096 + 1024 + 8), POLICY);
        let t = UnixTime(1_000);
        let big = "x".repeat(4096);
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        for k in &keys {
            let doc = big.clone();
            let received = Received {
                freshness: None,
                bytes: doc.len(),
            };
            c.get(k, t, None, || async move { Ok((doc, received)) })
                .await;
        }
        c.slots.run_pending_tasks().await;
        let held = c.slots.entry_count();
        assert!(held <= 10, "{held} documents of 4 KiB held");
        assert!(c.slots.weighted_size() <= 10 * (4096 + 1024 + 8));
    }
}
