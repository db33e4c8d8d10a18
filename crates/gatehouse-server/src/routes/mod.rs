//! HTTP routes. Handlers are thin: extract → call the engine → respond.

pub mod admin;
pub mod admin_api;
pub mod admin_ui;
pub mod authorize;
pub mod email;
pub mod metadata;
pub mod oauth;
pub mod ops;
pub mod passkey;
pub mod register;
pub mod sso;
pub mod ui;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use gatehouse_core::{Engine, IssuerContext};

use crate::error::{ApiError, not_found};

use crate::throttle::Limits;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The protocol engine.
    pub engine: Arc<Engine>,
    /// Abuse limits.
    pub limits: Arc<Limits>,
    /// Where sign-in codes are sent; `None` if email delivery is not configured.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// Upstream OpenID Connect providers.
    pub upstream: Arc<crate::oidc::Upstream>,
    /// The metrics `/metrics` serves.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The bearer token `/metrics` wants; without one it answers loopback only.
    pub metrics_token: Option<Arc<str>>,
}

impl AppState {
    /// Whether cookies get `Secure` and the `__Host-` prefix: when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.engine.public_issuer().as_str().starts_with("https://")
    }
}

/// Extractor for the issuer a request is addressed to: the root issuer (a route without an
/// `{id}`), or the MCP server's issuer under `/resources/{id}`. An unknown MCP server id
/// answers `404` before the handler runs.
pub struct AtIssuer(pub IssuerContext);

impl FromRequestParts<AppState> for AtIssuer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let path = <Path<HashMap<String, String>> as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found("malformed MCP server id"))?;
        let id = path.as_ref().and_then(|p| p.get("id")).map(String::as_str);
        match state.engine.issuer_context(id).await {
            Ok(Some(ctx)) => {
                let ua = parts.headers.get(axum::http::header::USER_AGENT);
                Ok(AtIssuer(
                    ctx.with_user_agent(ua.and_then(|v| v.to_str().ok())),
                ))
            }
            Ok(None) => Err(not_found(format!(
                "no MCP server `{}` is registered here",
                id.unwrap_or_default()
            ))),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}

/// Hashes `password` off the async threads (argon2 costs ~24 ms of CPU) and gives it back
/// with its hash.
pub(crate) async fn hash_password(
    password: gatehouse_core::password::Password,
) -> Result<(gatehouse_core::password::Password, String), gatehouse_core::admin::AdminError> {
    tokio::task::spawn_blocking(move || {
        let hash = password.hash();
        (password, hash)
    })
    .await
    .map_err(|e| {
        gatehouse_core::admin::AdminError::Store(gatehouse_core::StoreError::Backend(format!(
            "the password could not be hashed: {e}"
        )))
    })
}
