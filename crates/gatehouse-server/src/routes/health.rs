//! `GET /health`: liveness, and whether the database answers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// `200 {"status":"ok","database":"ok"}`, or `503` with `"database":"unavailable"`.
pub async fn health(State(s): State<AppState>) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    match s.engine.store().ping().await {
        Ok(()) => {
            Json(json!({ "status": "ok", "database": "ok", "version": version })).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            let body =
                json!({ "status": "degraded", "database": "unavailable", "version": version });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
