//! Prometheus metrics, one registry per server (tests run many servers in one process), served
//! as OpenMetrics text on `GET /metrics`: requests by route and status with their latency,
//! tokens issued by grant type and MCP server, token errors, audit events, requests refused
//! by a rate limit, and the database pool.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use gatehouse_core::audit::{AuditEvent, EventType};
use gatehouse_core::store::PoolState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Issued {
    grant_type: String,
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Error {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Event {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limit {
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

type Latency = Family<Route, Histogram, fn() -> Histogram>;

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<Answered, Counter>,
    latency: Latency,
    tokens_issued: Family<Issued, Counter>,
    token_errors: Family<Error, Counter>,
    events: Family<Event, Counter>,
    rate_limited: Family<Limit, Counter>,
    audit_dropped: Counter,
    pool: Family<PoolLabel, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics, registered under the `gatehouse_` prefix.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("gatehouse");
        let requests = Family::<Answered, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            latency.clone(),
        );
        let tokens_issued = Family::<Issued, Counter>::default();
        registry.register(
            "tokens_issued",
            "Access tokens issued, by grant type and MCP server (res_…)",
            tokens_issued.clone(),
        );
        let token_errors = Family::<Error, Counter>::default();
        registry.register(
            "token_errors",
            "Token requests refused, by OAuth error code",
            token_errors.clone(),
        );
        let events = Family::<Event, Counter>::default();
        registry.register(
            "audit_events",
            "Audit events recorded, by event type",
            events.clone(),
        );
        let rate_limited = Family::<Limit, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429, by limit",
            rate_limited.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_events_dropped",
            "Audit events not stored because the queue was full (they are in the log)",
            audit_dropped.clone(),
        );
        let pool = Family::<PoolLabel, Gauge>::default();
        registry.register(
            "database_connections",
            "Database pool connections: open, idle, in_use and max",
            pool.clone(),
        );
        let build = Family::<Version, Gauge>::default();
        registry.register(
            "build_info",
            "The running version (always 1)",
            build.clone(),
        );
        build
            .get_or_create(&Version {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        Metrics {
            registry: root,
            requests,
            latency,
            tokens_issued,
            token_errors,
            events,
            rate_limited,
            audit_dropped,
            pool,
        }
    }

    /// Counts an audit event: every type, and tokens issued or refused by their details.
    pub fn observe(&self, e: &AuditEvent) {
        self.events
            .get_or_create(&Event {
                event: e.event.as_str().to_owned(),
            })
            .inc();
        let detail = |k: &str| e.details.get(k).and_then(|v| v.as_str()).unwrap_or("");
        match e.event {
            EventType::TokenIssued => {
                self.tokens_issued
                    .get_or_create(&Issued {
                        grant_type: detail("grant_type").to_owned(),
                        server: e.resource.clone().unwrap_or_default(),
                    })
                    .inc();
            }
            EventType::TokenRefused => {
                self.token_errors
                    .get_or_create(&Error {
                        error: detail("error").to_owned(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    /// Counts an audit event the queue had no room for.
    pub fn audit_dropped(&self) {
        self.audit_dropped.inc();
    }

    /// Counts a request refused by the limit `name`.
    pub fn rate_limited(&self, name: &str) {
        self.rate_limited
            .get_or_create(&Limit {
                limit: name.to_owned(),
            })
            .inc();
    }

    /// The metrics as OpenMetrics text, with the pool's state as it is now.
    pub fn render(&self, pool: Option<PoolState>) -> String {
        if let Some(p) = pool {
            let set = |state: &'static str, v: u32| {
                self.pool
                    .get_or_create(&PoolLabel { state })
                    .set(i64::from(v));
            };
            set("open", p.open);
            set("idle", p.idle);
            set("in_use", p.open.saturating_sub(p.idle));
            set("max", p.max);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware (a route layer, so the route template is known) that counts each request and
/// times it. Labels are the route template, never the path: ids would make them unbounded.
pub async fn track(
    State(metrics): State<std::sync::Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let elapsed = started.elapsed().as_secs_f64();
    metrics
        .latency
        .get_or_create(&Route {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(elapsed);
    metrics
        .requests
        .get_or_create(&Answered {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::UnixTime;

    #[test]
    fn tokens_are_counted_by_grant_and_server_and_errors_by_code() {
        let m = Metrics::new();
        let issued = AuditEvent::new(EventType::TokenIssued, UnixTime(1))
            .detail("grant_type", "client_credentials");
        let mut issued = issued;
        issued.resource = Some("res_1".into());
        m.observe(&issued);
        m.observe(&issued);
        m.observe(
            &AuditEvent::new(EventType::TokenRefused, UnixTime(1)).detail("error", "invalid_grant"),
        );
        m.rate_limited("token_ip");
        let text = m.render(Some(PoolState {
            open: 3,
            idle: 1,
            max: 16,
        }));
        for line in [
            "gatehouse_tokens_issued_total{grant_type=\"client_credentials\",server=\"res_1\"} 2",
            "gatehouse_token_errors_total{error=\"invalid_grant\"} 1",
            "gatehouse_audit_events_total{event=\"token.issued\"} 2",
            "gatehouse_rate_limited_total{limit=\"token_ip\"} 1",
            "gatehouse_database_connections{state=\"in_use\"} 2",
            "gatehouse_database_connections{state=\"max\"} 16",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
