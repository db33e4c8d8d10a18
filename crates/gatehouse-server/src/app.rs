//! The router: every route, from the same path constants the metadata document uses.

use std::time::Duration;

use axum::Router;
use axum::http::{Method, Request};
use axum::routing::{get, post};
use gatehouse_core::metadata::paths;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::error::not_found;
use crate::routes::{AppState, health, metadata, oauth};

/// Prefix of the per-MCP-server endpoints.
const RESOURCE: &str = "/resources/{id}";

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    // Metadata, keys and the token endpoint are called from browsers (web-based MCP hosts):
    // open CORS, no credentials.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(Any)
        .max_age(Duration::from_secs(3600));
    let mut public = Router::new()
        .route(paths::TOKEN, post(oauth::token))
        .route(&format!("{RESOURCE}{}", paths::TOKEN), post(oauth::token));
    for p in metadata::ROOT_PATHS {
        public = public.route(p, get(metadata::document));
    }
    for p in metadata::RESOURCE_PATHS {
        public = public.route(p, get(metadata::document));
    }
    for p in metadata::JWKS_PATHS {
        public = public.route(p, get(metadata::jwks));
    }
    let public = public.layer(cors);

    let private = Router::new()
        .route(paths::INTROSPECT, post(oauth::introspect))
        .route(
            &format!("{RESOURCE}{}", paths::INTROSPECT),
            post(oauth::introspect),
        )
        .route(paths::REVOKE, post(oauth::revoke))
        .route(&format!("{RESOURCE}{}", paths::REVOKE), post(oauth::revoke))
        .route("/health", get(health::health));

    public
        .merge(private)
        .fallback(|| async { not_found("no such endpoint") })
        .layer(CatchPanicLayer::new())
        .layer(
            // The span has the method and path only: a query string could carry a token.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("http", method = %req.method(), path = req.uri().path())
            }),
        )
        .with_state(state)
}
