//! Token (RFC 6749 §3.2), introspection (RFC 7662) and revocation (RFC 7009) endpoints, at the
//! root issuer and under `/resources/{res_id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{AppState, issuer};
use crate::error::ApiError;
use crate::extract::OAuthForm;

/// `POST /oauth/token`
pub async fn token_root(State(s): State<AppState>, form: OAuthForm) -> Response {
    token(&s, None, form).await
}

/// `POST /resources/{id}/oauth/token`
pub async fn token_resource(
    State(s): State<AppState>,
    Path(id): Path<String>,
    form: OAuthForm,
) -> Response {
    token(&s, Some(&id), form).await
}

async fn token(s: &AppState, resource: Option<&str>, form: OAuthForm) -> Response {
    let ctx = match issuer(s, resource).await {
        Ok(ctx) => ctx,
        Err(r) => return r,
    };
    match s
        .engine
        .token(&ctx, form.authorization.as_deref(), &form.params)
        .await
    {
        // OAuth 2.1 §3.2.3: token responses must not be cached.
        Ok(t) => no_store(Json(t).into_response()),
        Err(e) => ApiError(e).into_response(),
    }
}

/// `POST /oauth/introspect`
pub async fn introspect_root(State(s): State<AppState>, form: OAuthForm) -> Response {
    introspect(&s, None, form).await
}

/// `POST /resources/{id}/oauth/introspect`
pub async fn introspect_resource(
    State(s): State<AppState>,
    Path(id): Path<String>,
    form: OAuthForm,
) -> Response {
    introspect(&s, Some(&id), form).await
}

async fn introspect(s: &AppState, resource: Option<&str>, form: OAuthForm) -> Response {
    let ctx = match issuer(s, resource).await {
        Ok(ctx) => ctx,
        Err(r) => return r,
    };
    match s
        .engine
        .introspect(&ctx, form.authorization.as_deref(), &form.params)
        .await
    {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => ApiError(e).into_response(),
    }
}

/// `POST /oauth/revoke`
pub async fn revoke_root(State(s): State<AppState>, form: OAuthForm) -> Response {
    revoke(&s, None, form).await
}

/// `POST /resources/{id}/oauth/revoke`
pub async fn revoke_resource(
    State(s): State<AppState>,
    Path(id): Path<String>,
    form: OAuthForm,
) -> Response {
    revoke(&s, Some(&id), form).await
}

async fn revoke(s: &AppState, resource: Option<&str>, form: OAuthForm) -> Response {
    let ctx = match issuer(s, resource).await {
        Ok(ctx) => ctx,
        Err(r) => return r,
    };
    match s
        .engine
        .revoke(&ctx, form.authorization.as_deref(), &form.params)
        .await
    {
        // RFC 7009 §2.2: 200 with no content to speak of.
        Ok(()) => no_store(().into_response()),
        Err(e) => ApiError(e).into_response(),
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
