//! Token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009) endpoints. Each
//! handler serves the root issuer (no path id) and `/resources/{id}/…`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::OAuthError;
use gatehouse_core::params::FormParams;

use super::{AppState, AtIssuer};
use crate::error::ApiError;
use crate::extract::OAuthForm;

/// `POST /oauth/token`, `POST /resources/{id}/oauth/token`
pub async fn token(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    form: OAuthForm,
) -> Response {
    let result = s
        .engine
        .token(&ctx, form.authorization.as_deref(), &form.params)
        .await;
    // OAuth 2.1 §3.2.3: token responses must not be cached.
    no_store(result.map(|t| Json(t).into_response()))
}

/// `POST /oauth/introspect`, `POST /resources/{id}/oauth/introspect`
pub async fn introspect(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    form: OAuthForm,
) -> Response {
    let result = s
        .engine
        .introspect(&ctx, form.authorization.as_deref(), &form.params)
        .await;
    no_store(result.map(|body| Json(body).into_response()))
}

/// `POST /oauth/revoke`, `POST /resources/{id}/oauth/revoke`
pub async fn revoke(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    form: OAuthForm,
) -> Response {
    let result = s
        .engine
        .revoke(&ctx, form.authorization.as_deref(), &form.params)
        .await;
    // RFC 7009 §2.2: 200 with an empty body.
    no_store(result.map(|()| ().into_response()))
}
/// `GET /revocations?resource=…&since=…`, `GET /resources/{id}/revocations?since=…`: what
/// guards poll to refuse revoked tokens before they expire.
pub async fn revocations(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    RawQuery(query): RawQuery,
) -> Response {
    let params = FormParams::parse(query.unwrap_or_default().as_bytes());
    let result = s.engine.revocations(&ctx, &params).await;
    no_store(result.map(|body| Json(body).into_response()))
}

fn no_store(result: Result<Response, OAuthError>) -> Response {
    let mut r = match result {
        Ok(r) => r,
        Err(e) => return ApiError(e).into_response(),
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
