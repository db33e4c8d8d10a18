//! HTTP routes. Handlers are thin: extract → call the engine → respond.

pub mod health;
pub mod metadata;
pub mod oauth;

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use gatehouse_core::{Engine, IssuerContext};

use crate::error::{ApiError, not_found};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The protocol engine.
    pub engine: Arc<Engine>,
}

/// Extractor for the issuer a request is addressed to: the root issuer (a route without an
/// `{id}`), or the MCP server's issuer under `/resources/{id}`. An unknown MCP server id
/// answers `404` before the handler runs.
pub struct AtIssuer(pub IssuerContext);

impl FromRequestParts<AppState> for AtIssuer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let id =
            <Path<String> as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map_err(|_| not_found("malformed MCP server id"))?;
        let id = id.as_deref().map(String::as_str);
        match state.engine.issuer_context(id).await {
            Ok(Some(ctx)) => Ok(AtIssuer(ctx)),
            Ok(None) => Err(not_found(format!(
                "no MCP server `{}` is registered here",
                id.unwrap_or_default()
            ))),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}
