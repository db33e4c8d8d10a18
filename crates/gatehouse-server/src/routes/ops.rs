//! What operators and orchestrators call: `GET /health` (liveness), `GET /ready` (readiness)
//! and `GET /metrics` (Prometheus).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;

/// How long `/ready` waits for the database.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `200 {"status":"ok"}` while the process serves requests, whatever its database does: a
/// liveness probe that fails only when restarting the process would help.
pub async fn health() -> Response {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })).into_response()
}

/// `200` when this node can serve every request: the database answers (within 2 s) and the
/// signing keys are loaded. `503` otherwise, naming what is missing, so a load balancer sends
/// traffic elsewhere while it lasts.
pub async fn ready(State(s): State<AppState>) -> Response {
    let database = match tokio::time::timeout(PING_TIMEOUT, s.engine.store().ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            "unavailable"
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within 2 s");
            "unavailable"
        }
    };
    // The refresh loop rebuilds the ring when a key activates or expires; one still not
    // rebuilt 30 s later could not be reloaded, and signs with a key that should be retired.
    let ring = s.engine.keys();
    let keys = match ring.changes_at() {
        Some(t) if t.plus(30) <= s.engine.now() => "stale",
        _ => "ok",
    };
    let ready = database == "ok" && keys == "ok";
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "signing_keys": keys,
        "published_keys": ring.published(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The metrics ([`crate::metrics`]). With `metrics_token` set, only a request bearing it;
/// without, only a request from this machine that no proxy forwarded.
pub async fn metrics(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let allowed = match &s.metrics_token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes()))),
        None => {
            peer.ip().is_loopback()
                && !headers.contains_key("forwarded")
                && !headers.contains_key("x-forwarded-for")
        }
    };
    if !allowed {
        let why = if s.metrics_token.is_some() {
            "metrics need `Authorization: Bearer` with the metrics_token"
        } else {
            "metrics are served to this machine only; set metrics_token to scrape them from elsewhere"
        };
        let body = json!({ "error": "forbidden", "error_description": why });
        return Err((StatusCode::FORBIDDEN, Json(body)).into_response());
    }
    let text = s.metrics.render(s.engine.store().pool_state());
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}
