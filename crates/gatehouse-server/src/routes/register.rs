//! Dynamic Client Registration (RFC 7591) at `/oauth/register` and per MCP server, with
//! RFC 7592 read and delete at `{registration_endpoint}/{client_id}`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::params::MAX_FORM_BYTES;
use gatehouse_core::{ErrorCode, OAuthError, registration};

use super::{AppState, AtIssuer};
use crate::error::ApiError;
use crate::throttle::check_ip;

/// `POST /oauth/register`, `POST /resources/{id}/oauth/register`
pub async fn register(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    if let Err(refused) = check_ip(&s, &s.limits.registrations, "registration_ip", peer.ip()) {
        return refused.into_response();
    }
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError(OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                format!("the body is larger than {MAX_FORM_BYTES} bytes"),
            ))
            .into_response();
        }
    };
    match registration::register(&s.engine, &ctx, &body).await {
        Ok(body) => {
            tracing::info!(client = %body["client_id"].as_str().unwrap_or(""), issuer = %ctx.issuer, "client registered");
            no_store((StatusCode::CREATED, Json(body)).into_response())
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// `GET {registration_endpoint}/{client_id}` (RFC 7592 §2.1)
pub async fn read(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    Path(p): Path<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let id = p.get("client_id").map(String::as_str).unwrap_or("");
    match registration::read(&s.engine, &ctx, id, bearer(&headers)).await {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => ApiError(e).into_response(),
    }
}

/// `DELETE {registration_endpoint}/{client_id}` (RFC 7592 §2.3)
pub async fn delete(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    Path(p): Path<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let id = p.get("client_id").map(String::as_str).unwrap_or("");
    match registration::delete(&s.engine, &ctx, id, bearer(&headers)).await {
        Ok(()) => {
            tracing::info!(client = %id, "registration deleted by its client");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
