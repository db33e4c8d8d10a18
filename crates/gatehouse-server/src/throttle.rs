//! Abuse limits kept in this process: requests per IP on the token, authorization, sign-in
//! and registration endpoints; token requests per confidential client, in tiers by MCP server
//! and scope; failed sign-ins per account and per IP. With several nodes each keeps its own
//! counts, so a client behind a load balancer gets up to N times a limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gatehouse_core::engine::Admission;
use gatehouse_core::model::Client;
use gatehouse_core::{OAuthError, ResourceId};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{ClientRateTier, Config};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::routes::AppState;

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

/// A limit of `per_minute` requests a minute, in a burst or spread out.
fn per_minute(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

/// Counts one request for `key` in `limiter`: `Err(seconds)` to wait when it is over.
fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), u64> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    })
}

/// Every limit the server enforces.
pub struct Limits {
    /// Token endpoint requests per client IP.
    pub token_ips: DefaultKeyedRateLimiter<IpAddr>,
    /// Authorization and sign-in requests (pages and their forms) per client IP.
    pub page_ips: DefaultKeyedRateLimiter<IpAddr>,
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
    /// The limits `config` sets.
    pub fn new(config: &Config) -> Self {
        let per_hour =
            NonZeroU32::new(config.registrations_per_ip_per_hour).unwrap_or(NonZeroU32::MIN);
        let per_account = config.sign_in_failures_per_account;
        let per_ip = config.sign_in_failures_per_ip;
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            token_ips: RateLimiter::keyed(per_minute(config.token_requests_per_ip_per_minute)),
            page_ips: RateLimiter::keyed(per_minute(config.page_requests_per_ip_per_minute)),
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

impl Limits {
    /// Forgets the addresses whose limits are back to full, so that many distinct addresses
    /// (an IPv6 range, say) cost memory only while they are being limited.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.token_ips,
            &self.page_ips,
            &self.registrations,
            &self.email_codes,
            &self.passkey_ceremonies,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(&Config::default())
    }
}

/// Middleware for the token endpoints: `token_requests_per_ip_per_minute`.
pub async fn token_ip(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match check(&s.limits.token_ips, &peer.ip()) {
        Ok(()) => next.run(req).await,
        Err(wait) => refuse(&s.metrics, "token_ip", peer.ip(), wait).into_response(),
    }
}

/// Middleware for authorization and sign-in: `page_requests_per_ip_per_minute`.
pub async fn page_ip(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match check(&s.limits.page_ips, &peer.ip()) {
        Ok(()) => next.run(req).await,
        Err(wait) => refuse(&s.metrics, "page_ip", peer.ip(), wait).into_response(),
    }
}

/// Counts `limit` against `ip` and answers `429` if it is over; `Ok` to go on.
pub fn check_ip(
    s: &AppState,
    limiter: &DefaultKeyedRateLimiter<IpAddr>,
    limit: &str,
    ip: IpAddr,
) -> Result<(), ApiError> {
    check(limiter, &ip).map_err(|wait| refuse(&s.metrics, limit, ip, wait))
}

/// `429 rate_limit_exceeded` with `Retry-After`, counted under `limit`.
fn refuse(metrics: &Metrics, limit: &str, ip: IpAddr, wait: u64) -> ApiError {
    metrics.rate_limited(limit);
    tracing::warn!(%ip, limit, retry_after = wait, "request refused: rate limit");
    ApiError(OAuthError::rate_limited(wait))
}

/// Token requests per confidential client: the first tier of `client_rate_limits` that
/// names the request's MCP server (or none) and a scope the client may have (or none);
/// else `token_requests_per_client_per_minute`.
pub struct ClientLimits {
    tiers: Vec<ClientRateTier>,
    default: u32,
    /// One limiter per distinct rate, keyed by client id.
    by_rate: HashMap<u32, DefaultKeyedRateLimiter<String>>,
    metrics: std::sync::Arc<Metrics>,
}

impl ClientLimits {
    /// The per-client limits of `config`, refusals counted in `metrics`.
    pub fn new(config: &Config, metrics: std::sync::Arc<Metrics>) -> Self {
        let default = config.token_requests_per_client_per_minute;
        let mut by_rate = HashMap::new();
        for rate in config
            .client_rate_limits
            .iter()
            .map(|t| t.per_minute)
            .chain([default])
        {
            by_rate
                .entry(rate)
                .or_insert_with(|| RateLimiter::keyed(per_minute(rate)));
        }
        ClientLimits {
            tiers: config.client_rate_limits.clone(),
            default,
            by_rate,
            metrics,
        }
    }

    /// The requests a minute `client` may make for `resource`.
    pub fn rate(&self, client: &Client, resource: Option<&ResourceId>) -> u32 {
        self.tiers
            .iter()
            .find(|t| {
                let server = t
                    .server
                    .as_deref()
                    .is_none_or(|s| resource.is_some_and(|r| r.as_str() == s));
                let scope = t
                    .scope
                    .as_deref()
                    .is_none_or(|s| client.scopes.iter().any(|c| c.as_str() == s));
                server && scope
            })
            .map_or(self.default, |t| t.per_minute)
    }
}

impl Admission for ClientLimits {
    fn admit(&self, client: &Client, resource: Option<&ResourceId>) -> Result<(), u64> {
        let Some(limiter) = self.by_rate.get(&self.rate(client, resource)) else {
            return Ok(());
        };
        check(limiter, &client.id.to_string()).inspect_err(|wait| {
            self.metrics.rate_limited("token_client");
            tracing::warn!(client = %client.id, retry_after = wait, "token refused: client rate limit");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::model::{ClientKind, TokenAuthMethod};
    use gatehouse_core::{ClientId, ScopeSet, UnixTime};

    fn agent(scopes: &str) -> Client {
        Client {
            id: ClientId::parse("cli_1").unwrap(),
            resource: None,
            name: "agent".into(),
            kind: ClientKind::Agent,
            secret_hash: None,
            scopes: ScopeSet::parse(scopes).unwrap(),
            redirect_uris: Vec::new(),
            auth_method: TokenAuthMethod::ClientSecretBasic,
            metadata: serde_json::json!({}),
            registration_token_hash: None,
            created_at: UnixTime(0),
            last_used_at: None,
            disabled_at: None,
            tokens_revoked_at: None,
        }
    }

    #[test]
    fn the_first_tier_naming_the_server_and_a_scope_of_the_client_applies() {
        let tier = |server: Option<&str>, scope: Option<&str>, per_minute| ClientRateTier {
            server: server.map(Into::into),
            scope: scope.map(Into::into),
            per_minute,
        };
        let config = Config {
            token_requests_per_client_per_minute: 50,
            client_rate_limits: vec![
                tier(Some("res_a"), Some("mcp:tools:*"), 1000),
                tier(None, Some("mcp:tools:basic"), 100),
                tier(Some("res_b"), None, 7),
            ],
            ..Config::default()
        };
        let limits = ClientLimits::new(&config, std::sync::Arc::new(Metrics::new()));
        let a = ResourceId::parse("res_a").unwrap();
        let b = ResourceId::parse("res_b").unwrap();
        let premium = agent("mcp:tools:* mcp:tools:basic");
        assert_eq!(limits.rate(&premium, Some(&a)), 1000);
        assert_eq!(
            limits.rate(&premium, Some(&b)),
            100,
            "res_a's tier is not res_b's"
        );
        assert_eq!(limits.rate(&premium, None), 100);
        assert_eq!(limits.rate(&agent("todo:read"), Some(&b)), 7);
        assert_eq!(
            limits.rate(&agent("todo:read"), Some(&a)),
            50,
            "the default"
        );

        let small = Config {
            token_requests_per_client_per_minute: 2,
            ..Config::default()
        };
        let limits = ClientLimits::new(&small, std::sync::Arc::new(Metrics::new()));
        let c = agent("todo:read");
        assert!(limits.admit(&c, None).is_ok());
        assert!(limits.admit(&c, None).is_ok());
        let wait = limits.admit(&c, None).unwrap_err();
        assert!((1..=30).contains(&wait), "{wait}");
    }

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
