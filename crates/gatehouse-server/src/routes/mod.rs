//! HTTP routes. Handlers are thin: extract → call the engine → respond.

pub mod health;
pub mod metadata;
pub mod oauth;

use std::sync::Arc;

use axum::response::Response;
use gatehouse_core::{Engine, IssuerContext};

use crate::error::{ApiError, not_found};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The protocol engine.
    pub engine: Arc<Engine>,
}

/// The issuer a request is addressed to: the root (`None`) or an MCP server's; an unknown
/// MCP server id answers `404`.
pub async fn issuer(state: &AppState, resource: Option<&str>) -> Result<IssuerContext, Response> {
    use axum::response::IntoResponse;
    match state.engine.issuer_context(resource).await {
        Ok(Some(ctx)) => Ok(ctx),
        Ok(None) => Err(not_found(format!(
            "no MCP server `{}` is registered here",
            resource.unwrap_or_default()
        ))),
        Err(e) => Err(ApiError(e).into_response()),
    }
}
