//! Abuse limits kept in this process: failed sign-ins per account and per IP, and dynamic
//! registrations per IP. With several nodes each keeps its own counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The window failed sign-ins are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys tracked at most; past this the oldest windows are forgotten first.
const MAX_KEYS: usize = 100_000;

/// Counts failures per key in a fixed window; a key with `limit` failures is blocked until
/// its window ends.
pub struct FailureThrottle {
    limit: u32,
    window: Duration,
    seen: Mutex<HashMap<String, (u32, Instant)>>,
}

impl FailureThrottle {
    /// Blocks a key after `limit` failures within `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        FailureThrottle {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` is blocked now.
    pub fn is_blocked(&self, key: &str) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(key)
            .is_some_and(|(n, since)| *n >= self.limit && since.elapsed() < self.window)
    }

    /// Records a failure for `key`.
    pub fn fail(&self, key: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_KEYS {
            let window = self.window;
            seen.retain(|_, (_, since)| since.elapsed() < window);
            if seen.len() >= MAX_KEYS {
                seen.clear();
            }
        }
        let entry = seen.entry(key.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Forgets `key` (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// Every limit the server enforces.
pub struct Limits {
    /// Failed sign-ins per account (normalised email).
    pub sign_in_accounts: FailureThrottle,
    /// Failed sign-ins per client IP.
    pub sign_in_ips: FailureThrottle,
    /// Dynamic registrations per client IP.
    pub registrations: DefaultKeyedRateLimiter<IpAddr>,
    /// Sign-in codes sent per client IP: a burst of 10, then 2 a minute. (Each address also
    /// gets at most 5 codes in 15 minutes, counted in the database.)
    pub email_codes: DefaultKeyedRateLimiter<IpAddr>,
    /// Passkey ceremonies started per client IP (each stores a challenge): a burst of 20,
    /// then 10 a minute.
    pub passkey_ceremonies: DefaultKeyedRateLimiter<IpAddr>,
    /// Password checks running at once (each is ~24 ms of CPU).
    pub password_checks: tokio::sync::Semaphore,
}

impl Limits {
    /// Limits with these numbers.
    pub fn new(per_account: u32, per_ip: u32, registrations_per_hour: u32) -> Self {
        let per_hour = NonZeroU32::new(registrations_per_hour).unwrap_or(NonZeroU32::MIN);
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            sign_in_accounts: FailureThrottle::new(per_account, FAILURE_WINDOW),
            sign_in_ips: FailureThrottle::new(per_ip, FAILURE_WINDOW),
            registrations: RateLimiter::keyed(Quota::per_hour(per_hour)),
            email_codes: RateLimiter::keyed(
                Quota::per_minute(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN)),
            ),
            passkey_ceremonies: RateLimiter::keyed(
                Quota::per_minute(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN)),
            ),
            password_checks: tokio::sync::Semaphore::new(cpus * 2),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(5, 20, 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_cleared_or_the_window_ends() {
        let t = FailureThrottle::new(2, Duration::from_secs(60));
        assert!(!t.is_blocked("a"));
        t.fail("a");
        assert!(!t.is_blocked("a"));
        t.fail("a");
        assert!(t.is_blocked("a"));
        assert!(!t.is_blocked("b"));
        t.clear("a");
        assert!(!t.is_blocked("a"));
        let short = FailureThrottle::new(1, Duration::from_millis(1));
        short.fail("a");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!short.is_blocked("a"), "the window ended");
    }
}
