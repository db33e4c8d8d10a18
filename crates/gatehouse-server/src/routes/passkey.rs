//! Passkeys ([`gatehouse_core::passkey`]): signing in with one, and the account page where a
//! person adds, lists and removes theirs. `/assets/passkey.js` drives the browser side.
//!
//! - `POST /login/passkey/options` → WebAuthn request options (JSON) and a cookie binding
//!   the ceremony to the browser; `POST /login/passkey` with the authenticator's answer.
//! - `GET /account`; `POST /account/passkeys/options` → creation options (JSON);
//!   `POST /account/passkeys` with the answer; `POST /account/passkeys/{id}/delete`.
//!
//! The options endpoints answer JSON (`error`, `error_description`) for the script; the
//! others answer pages.

use std::net::SocketAddr;

use askama::Template;
use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::User;
use gatehouse_core::params::FormParams;
use gatehouse_core::passkey::{CEREMONY_TTL, PasskeyError, StartedCeremony, StoredPasskey};
use gatehouse_core::session::SessionToken;
use gatehouse_core::signin::Method;
use gatehouse_core::types::PasskeyId;
use serde::Deserialize;

use super::AppState;
use super::ui::{
    SignInPost, cookie, html, login_csrf_ok, login_url, message, safe_return_to, sentence,
    server_for, set_cookie, signed_in, start_signed_in, unavailable,
};

/// The cookie binding a ceremony to the browser that started it (`{ceremony}.{secret}`).
fn passkey_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_passkey"
    } else {
        "gatehouse_passkey"
    }
}

fn status_of(e: &PasskeyError) -> StatusCode {
    match e {
        PasskeyError::NotAvailable => StatusCode::NOT_FOUND,
        PasskeyError::NoCeremony | PasskeyError::Malformed(_) => StatusCode::BAD_REQUEST,
        PasskeyError::Expired | PasskeyError::AlreadyUsed => StatusCode::GONE,
        PasskeyError::UnknownPasskey | PasskeyError::Rejected(_) => StatusCode::UNAUTHORIZED,
        PasskeyError::AlreadyRegistered | PasskeyError::TooMany => StatusCode::CONFLICT,
        PasskeyError::AccountDisabled(_) => StatusCode::FORBIDDEN,
        PasskeyError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A JSON refusal for the script: `{"error", "error_description"}`.
fn json_error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": code, "error_description": description });
    (status, Json(body)).into_response()
}

fn json_failure(e: &PasskeyError) -> Response {
    if let PasskeyError::Store(inner) = e {
        tracing::error!(error = %inner, "passkey ceremony failed");
    }
    json_error(status_of(e), e.code(), &sentence(&e.to_string()))
}

/// The options as JSON, with the cookie that binds the ceremony to this browser.
fn options_response(s: &AppState, started: StartedCeremony) -> Response {
    let secure = s.secure_cookies();
    let mut r = Json(started.options).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            passkey_cookie(secure),
            &started.browser_cookie,
            CEREMONY_TTL,
            secure,
        ),
    );
    r
}

/// `POST /login/passkey/options`: starts a sign-in with a passkey for the sign-in form
/// posted (CSRF value, `return_to`, `server`).
pub async fn sign_in_options(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let field = |n: &str| form.single(n).ok().flatten().unwrap_or("");
    if !login_csrf_ok(&s, &headers, field("csrf")) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The sign-in form expired. Reload the page and try again.",
        );
    }
    let return_to = safe_return_to(field("return_to")).unwrap_or("");
    let server = server_for(&s, Some(field("server")), return_to).await;
    match s.engine.offered_methods(server.as_deref()).await {
        Ok((methods, _)) if methods.contains(&Method::Passkey) => {}
        Ok(_) => {
            return json_error(
                StatusCode::FORBIDDEN,
                "method_not_offered",
                "This MCP server does not accept passkeys: use another way to sign in.",
            );
        }
        Err(e) => return json_failure(&PasskeyError::Store(e)),
    }
    if s.limits.passkey_ceremonies.check_key(&peer.ip()).is_err() {
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many passkey requests from your network. Wait a minute and try again.",
        );
    }
    match s
        .engine
        .start_passkey_sign_in(return_to, server.map(|r| r.id.clone()))
        .await
    {
        Ok(started) => options_response(&s, started),
        Err(e) => json_failure(&e),
    }
}

/// `POST /login/passkey`: the authenticator's answer. Signs the person in and sends them on.
pub async fn sign_in(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let post = match SignInPost::check(&s, &headers, &form, Method::Passkey).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let secure = s.secure_cookies();
    let browser = cookie(&headers, passkey_cookie(secure));
    let done = match s
        .engine
        .finish_passkey_sign_in(browser.as_deref(), post.field("credential"))
        .await
    {
        Ok(done) => done,
        Err(PasskeyError::Store(e)) => {
            return unavailable("could not check a passkey", &e, "sign you in");
        }
        Err(e) => {
            s.engine.audit_passkey_failure(&e);
            return post
                .page(&s, status_of(&e), &sentence(&e.to_string()))
                .await;
        }
    };
    let return_to = safe_return_to(&done.return_to).unwrap_or("");
    let forget = Some(passkey_cookie(secure));
    match start_signed_in(&s, &done.user, Method::Passkey, return_to, forget).await {
        Ok(r) => {
            s.engine.audit_passkey_sign_in(&done);
            r
        }
        Err(page) => page,
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    email: &'a str,
    csrf: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    /// Whether passkeys can be used here at all.
    available: bool,
    passkeys: Vec<PasskeyRow>,
}

struct PasskeyRow {
    id: String,
    name: String,
    added: String,
    last_used: Option<String>,
}

impl PasskeyRow {
    fn of(p: &StoredPasskey) -> Self {
        let day = |t: gatehouse_core::UnixTime| t.rfc3339()[..10].to_owned();
        PasskeyRow {
            id: p.id.to_string(),
            name: p.name.clone(),
            added: day(p.created_at),
            last_used: p.last_used_at.map(day),
        }
    }
}

#[derive(Deserialize)]
pub struct AccountQuery {
    notice: Option<String>,
}

/// The signed-in person, or a response: the sign-in page (for pages) coming back to the
/// account page.
async fn account_holder(
    s: &AppState,
    headers: &HeaderMap,
) -> Result<(SessionToken, User), Response> {
    match signed_in(s, headers).await? {
        Some(x) => Ok(x),
        None => Err(Redirect::to(&login_url("/account", None)).into_response()),
    }
}

async fn account_page(
    s: &AppState,
    status: StatusCode,
    token: &SessionToken,
    user: &User,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let passkeys = match s.engine.passkeys_of(&user.id).await {
        Ok(p) => p,
        Err(e) => return unavailable("could not list passkeys", &e, "show your account"),
    };
    html(
        status,
        &AccountPage {
            email: &user.email,
            csrf: &token.csrf_token(),
            notice,
            error,
            available: s.engine.passkeys_available(),
            passkeys: passkeys.iter().map(PasskeyRow::of).collect(),
        },
    )
}

/// `GET /account`: the person's passkeys.
pub async fn account(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> Response {
    let (token, user) = match account_holder(&s, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Only fixed texts: the query cannot put words on the page.
    let notice = match q.notice.as_deref() {
        Some("added") => Some("Passkey added. You can now sign in with it."),
        Some("removed") => Some("Passkey removed."),
        _ => None,
    };
    account_page(&s, StatusCode::OK, &token, &user, notice, None).await
}

/// The session's person if the form's CSRF value is theirs.
async fn account_form(
    s: &AppState,
    headers: &HeaderMap,
    form: &FormParams,
) -> Result<(SessionToken, User), Response> {
    let (token, user) = account_holder(s, headers).await?;
    let csrf = form.single("csrf").ok().flatten().unwrap_or("");
    if !token.csrf_matches(csrf) {
        return Err(message(
            StatusCode::BAD_REQUEST,
            "The form expired",
            "Go back, reload the page and try again.",
            Some("invalid_request"),
        ));
    }
    Ok((token, user))
}

/// `POST /account/passkeys/options`: starts adding a passkey.
pub async fn registration_options(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let user = match signed_in(&s, &headers).await {
        Ok(Some((token, user)))
            if token.csrf_matches(form.single("csrf").ok().flatten().unwrap_or("")) =>
        {
            user
        }
        Ok(_) => {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "login_required",
                "You are signed out, or the page expired. Reload the page and sign in again.",
            );
        }
        Err(r) => return r,
    };
    if s.limits.passkey_ceremonies.check_key(&peer.ip()).is_err() {
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many passkey requests from your network. Wait a minute and try again.",
        );
    }
    match s.engine.start_passkey_registration(&user).await {
        Ok(started) => options_response(&s, started),
        Err(e) => json_failure(&e),
    }
}

/// `POST /account/passkeys`: the authenticator's answer; stores the new passkey.
pub async fn register(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let (token, user) = match account_form(&s, &headers, &form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let field = |n: &str| form.single(n).ok().flatten().unwrap_or("");
    let secure = s.secure_cookies();
    let browser = cookie(&headers, passkey_cookie(secure));
    let mut r = match s
        .engine
        .finish_passkey_registration(
            &user,
            browser.as_deref(),
            field("credential"),
            field("name"),
        )
        .await
    {
        Ok(_) => Redirect::to("/account?notice=added").into_response(),
        Err(PasskeyError::Store(e)) => {
            return unavailable("could not store a passkey", &e, "add the passkey");
        }
        Err(e) => {
            let error = sentence(&e.to_string());
            account_page(&s, status_of(&e), &token, &user, None, Some(&error)).await
        }
    };
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(passkey_cookie(secure), "", 0, secure),
    );
    r
}

/// `POST /account/passkeys/{id}/delete`
pub async fn remove(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let (token, user) = match account_form(&s, &headers, &form).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let removed = match PasskeyId::parse(&id) {
        Ok(id) => s.engine.remove_passkey(&user.id, &id).await,
        Err(_) => Ok(false),
    };
    match removed {
        Ok(true) => Redirect::to("/account?notice=removed").into_response(),
        Ok(false) => {
            account_page(
                &s,
                StatusCode::NOT_FOUND,
                &token,
                &user,
                None,
                Some("You have no such passkey: it may have been removed already."),
            )
            .await
        }
        Err(e) => unavailable("could not remove a passkey", &e, "remove the passkey"),
    }
}
