//! Rendering protocol errors: status and headers come from the error code alone.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::{ErrorCode, OAuthError};

/// An [`OAuthError`] as an HTTP response (RFC 6749 §5.2 JSON body, `Cache-Control: no-store`).
#[derive(Debug)]
pub struct ApiError(pub OAuthError);

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status =
            StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match e.code {
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable => {
                tracing::error!(
                    error = e.code.as_str(),
                    detail = e.detail.as_deref(),
                    "request failed"
                );
            }
            _ => tracing::info!(
                error = e.code.as_str(),
                description = %e.description,
                detail = e.detail.as_deref(),
                "request refused"
            ),
        }
        let mut response = (status, Json(e.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match e.code {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
            ErrorCode::InvalidClient => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"gatehouse\", charset=\"UTF-8\""),
                );
            }
            // RFC 6750 §3.1, for RFC 7592's registration access token.
            ErrorCode::InvalidToken => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            _ => {}
        }
        if let Some(secs) = e.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `404` with a JSON body, for an unknown MCP server id or path.
pub fn not_found(what: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": "not_found", "error_description": what.into() });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}
