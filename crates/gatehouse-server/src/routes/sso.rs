//! Signing in through connections ([`gatehouse_core::login`]).
//!
//! Bring your own auth, with the seed product's paths:
//! 1. `GET /sso/v1/connections/{id}/start` stores a login request and sends the browser to
//!    the owner's login page with `login_request_id` and `state`, setting a cookie that binds
//!    the request to this browser.
//! 2. `POST /api/v1/connections/{id}/auth-requests/{login_request_id}/user`: the owner's
//!    backend, with an admin API key as bearer, says who signed in.
//! 3. `GET /sso/v1/connections/{id}/partner:callback?state=…`: the browser is back; the
//!    person is signed in and goes on to consent.
//!
//! Identity providers (OpenID Connect, GitHub): `start` sends the browser to the provider
//! ([`crate::oidc::Upstream`]), which sends it back to `GET /sso/v1/connections/{id}/callback`
//! with a code.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::login::{LoginError, request_in_state};
use gatehouse_core::signin::Profile;
use gatehouse_core::signin::{LOGIN_REQUEST_TTL, Method};
use gatehouse_core::types::LoginRequestId;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin_api::{Admin, ApiError};
use super::ui::{cookie, message, safe_return_to, sentence, server_for, signed_in_redirect};

/// The cookie that binds login request `id` to the browser that started it. Scoped to
/// `/sso/`, where only the callback reads it.
fn binding_cookie(id: &LoginRequestId) -> String {
    format!("gatehouse_sso_{id}")
}

fn set_binding(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; Path=/sso/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    // Names are lr_ ids and values base64url: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
    server: Option<String>,
}

/// `GET /sso/v1/connections/{id}/start`
pub async fn start(
    State(s): State<AppState>,
    Path(connection): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    let return_to = q
        .return_to
        .as_deref()
        .and_then(safe_return_to)
        .unwrap_or("");
    let server = server_for(&s, q.server.as_deref(), return_to)
        .await
        .map(|r| r.id.clone());
    let started = match s.engine.start_login(&connection, return_to, server).await {
        Ok(x) => x,
        Err(e) => return page(&s, &connection, &e),
    };
    let to = if started.connection.kind.is_provider() {
        let callback = started.connection.callback_url(s.engine.public_issuer());
        match s.upstream.authorization_url(&started, &callback).await {
            Ok(url) => Some(url),
            Err(e) => return page(&s, &connection, &e),
        }
    } else {
        started.redirect_url()
    };
    let Some(to) = to else {
        tracing::error!(connection = %started.connection.id, "connection has an unusable login URL");
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This sign-in method is misconfigured",
            "Its login address is not usable. Ask the administrator of this server.",
            Some("server_error"),
        );
    };
    let mut r = Redirect::to(&to).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_binding(
            &binding_cookie(&started.request.id),
            &started.browser_secret,
            LOGIN_REQUEST_TTL,
            s.secure_cookies(),
        ),
    );
    r
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
}

/// A browser coming back with `state`: the state, the name of its binding cookie, and the
/// browser's secret from that cookie.
struct Returned {
    state: String,
    binding: Option<String>,
    browser: Option<String>,
}

impl Returned {
    /// `None` when no state came back.
    fn read(state: Option<String>, headers: &HeaderMap) -> Option<Self> {
        let state = state.filter(|x| !x.is_empty())?;
        let binding = request_in_state(&state).map(|id| binding_cookie(&id));
        let browser = binding.as_deref().and_then(|name| cookie(headers, name));
        Some(Returned {
            state,
            binding,
            browser,
        })
    }
}

/// The page when `sender` (the login page, the identity provider) sent the browser back
/// without the state.
fn no_state(sender: &str) -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "This sign-in cannot continue",
        &format!(
            "{sender} sent the browser back without the state parameter. It must send back the state it received."
        ),
        Some("invalid_request"),
    )
}

/// `GET /sso/v1/connections/{id}/partner:callback`
pub async fn partner_callback(
    State(s): State<AppState>,
    Path(connection): Path<String>,
    Query(q): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(back) = Returned::read(q.state, &headers) else {
        return no_state("The login page");
    };
    let done = match s
        .engine
        .finish_login(&connection, &back.state, back.browser.as_deref())
        .await
    {
        Ok(d) => d,
        Err(e) => return page(&s, &connection, &e),
    };
    signed_in(&s, done, back.binding).await
}

#[derive(Deserialize)]
pub struct ProviderCallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /sso/v1/connections/{id}/callback`: an identity provider (OpenID Connect, GitHub)
/// sends the browser back with a code (or an error). The code is exchanged, the ID token
/// checked (GitHub: its user API read), and the person signed in.
pub async fn provider_callback(
    State(s): State<AppState>,
    Path(connection): Path<String>,
    Query(q): Query<ProviderCallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(back) = Returned::read(q.state, &headers) else {
        return no_state("The identity provider");
    };
    let (conn, request) = match s
        .engine
        .returned(&connection, &back.state, back.browser.as_deref())
        .await
    {
        Ok(x) => x,
        Err(e) => return page(&s, &connection, &e),
    };
    let code = match (q.code.filter(|c| !c.is_empty()), q.error) {
        (_, Some(error)) => {
            let said = q
                .error_description
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let e = if error == "access_denied" {
                LoginError::Declined(format!(
                    "the sign-in at {} was cancelled or refused{said}",
                    conn.name
                ))
            } else {
                LoginError::Upstream(format!("{} answered `{error}`{said}", conn.name))
            };
            return page(&s, &connection, &e);
        }
        (Some(code), None) => code,
        (None, None) => {
            let e = LoginError::Upstream(format!(
                "{} sent the browser back without an authorization code",
                conn.name
            ));
            return page(&s, &connection, &e);
        }
    };
    // The browser's secret was checked against the request by `returned`.
    let secret = back.browser.unwrap_or_default();
    let callback = conn.callback_url(s.engine.public_issuer());
    let claims = match s.upstream.exchange(&conn, &secret, &code, &callback).await {
        Ok(c) => c,
        Err(e) => return page(&s, &connection, &e),
    };
    let profile = match Profile::from_claims(claims) {
        Ok(p) => p,
        Err(e) => return page(&s, &connection, &LoginError::InvalidClaims(e.0)),
    };
    let done = match s.engine.complete_login(&conn, request, &profile).await {
        Ok(d) => d,
        Err(e) => return page(&s, &connection, &e),
    };
    signed_in(&s, done, back.binding).await
}

/// Starts the session of a finished sign-in, forgets the binding cookie, and sends the
/// browser on.
async fn signed_in(
    s: &AppState,
    done: gatehouse_core::login::FinishedLogin,
    binding: Option<String>,
) -> Response {
    let method = Method::Connection(done.connection.clone());
    let token = match s.engine.start_session(&done.user, method).await {
        Ok(t) => t,
        Err(e) => return page(s, done.connection.as_str(), &LoginError::Store(e)),
    };
    s.engine.audit_login(&done);
    let secure = s.secure_cookies();
    let mut r = signed_in_redirect(s, &token, &done.return_to);
    if let Some(name) = binding {
        r.headers_mut()
            .append(header::SET_COOKIE, set_binding(&name, "", 0, secure));
    }
    r
}

/// The status of a sign-in error.
fn status(e: &LoginError) -> StatusCode {
    match e {
        LoginError::UnknownConnection(_) | LoginError::UnknownRequest(_) => StatusCode::NOT_FOUND,
        LoginError::ConnectionDisabled(_)
        | LoginError::EmailNotVerified(_)
        | LoginError::ProviderEmailNotVerified(_)
        | LoginError::Declined(_)
        | LoginError::DomainNotAllowed(_)
        | LoginError::AccountDisabled(_) => StatusCode::FORBIDDEN,
        LoginError::Expired(_) => StatusCode::GONE,
        LoginError::AlreadyUsed(_) | LoginError::ProfileAlreadySent(_) => StatusCode::CONFLICT,
        LoginError::WrongKind(_)
        | LoginError::InvalidClaims(_)
        | LoginError::NoProfileYet(..)
        | LoginError::StateMismatch
        | LoginError::OtherBrowser => StatusCode::BAD_REQUEST,
        LoginError::InvalidIdToken(_) | LoginError::Upstream(_) => StatusCode::BAD_GATEWAY,
        LoginError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The page for a sign-in that failed, recorded in the audit log.
fn page(s: &AppState, connection: &str, e: &LoginError) -> Response {
    if let LoginError::Store(err) = e {
        tracing::error!(error = %err, "sign-in through a connection failed");
    } else {
        tracing::info!(
            connection,
            error = e.code(),
            "sign-in through a connection refused"
        );
    }
    s.engine.audit_login_failure(connection, e);
    let text = match e {
        LoginError::Store(_) => {
            "The server could not finish signing you in. Try again in a moment.".to_owned()
        }
        other => sentence(&other.to_string()),
    };
    message(
        status(e),
        "This sign-in cannot continue",
        &text,
        Some(e.code()),
    )
}

/// What the owner's backend gets back.
#[derive(Debug, Serialize)]
pub struct Accepted {
    login_request_id: String,
    connection_id: String,
    /// The person's `sub` in the owner's system.
    sub: String,
    email: String,
}

/// `POST /api/v1/connections/{id}/auth-requests/{login_request_id}/user`
pub async fn receive_user(
    State(s): State<AppState>,
    Admin(_who): Admin,
    Path((connection, request)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<Accepted>, ApiError> {
    match s.engine.receive_profile(&connection, &request, &body).await {
        Ok(p) => Ok(Json(Accepted {
            login_request_id: request,
            connection_id: connection,
            sub: p.subject,
            email: p.email,
        })),
        Err(LoginError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::info!(
                connection,
                error = e.code(),
                "login request details refused"
            );
            Err(ApiError::new(status(&e), e.code(), e.to_string()))
        }
    }
}
