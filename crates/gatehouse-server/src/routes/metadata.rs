//! RFC 8414 metadata for the root issuer and every per-MCP-server issuer, at every URL a
//! client may build (DESIGN.md, "Compatibility contract"), and the JWKS.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, AtIssuer};
use crate::error::ApiError;

/// Paths of the root issuer's metadata document.
pub const ROOT_PATHS: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

/// Paths of a per-MCP-server issuer's document: RFC 8414 and OIDC path insertion, OIDC path
/// appending, and the non-standard appended RFC 8414 form some clients build.
pub const RESOURCE_PATHS: [&str; 4] = [
    "/.well-known/oauth-authorization-server/resources/{id}",
    "/.well-known/openid-configuration/resources/{id}",
    "/resources/{id}/.well-known/openid-configuration",
    "/resources/{id}/.well-known/oauth-authorization-server",
];

/// Paths of the JWKS.
pub const JWKS_PATHS: [&str; 3] = ["/keys", "/.well-known/jwks.json", "/.well-known/jwks"];

/// The document of the root issuer (no path id) or of an MCP server's issuer.
pub async fn document(State(s): State<AppState>, AtIssuer(ctx): AtIssuer) -> Response {
    match s.engine.metadata(&ctx).await {
        Ok(doc) => cacheable(Json(doc).into_response()),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The JWKS (RFC 7517 §5), serialized when keys load.
pub async fn jwks(State(s): State<AppState>) -> Response {
    let body = s.engine.keys().jwks_json().to_owned();
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    cacheable(r)
}

fn cacheable(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}
