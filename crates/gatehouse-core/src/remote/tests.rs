//! The cache's rules, at fixed times.

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
