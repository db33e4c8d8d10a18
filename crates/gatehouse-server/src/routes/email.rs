//! Signing in with a code sent by email ([`gatehouse_core::email_code`]).
//!
//! - `POST /login/email`: the address; a code and a link are mailed, the browser gets a
//!   cookie that binds them to it, and the page asks for the code.
//! - `POST /login/email/code`: the code.
//! - `GET /login/email/link?token=…`: the link from the message, in the same browser.
//!
//! Mail scanners that open links have no cookie, so they cannot use a link up.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use gatehouse_core::Resource;
use gatehouse_core::email_code::{EMAIL_CODE_TTL, EmailCodeError, EmailProof};
use gatehouse_core::params::FormParams;
use gatehouse_core::signin::Method;
use serde::Deserialize;

use super::AppState;
use super::ui::{
    SignInPost, cookie, html, login_csrf_ok, login_url, message, new_login_csrf, safe_return_to,
    sentence, server_for, set_cookie, start_signed_in, unavailable,
};

#[derive(Template)]
#[template(path = "email_code.html")]
struct CodePage<'a> {
    sent_to: Option<&'a str>,
    error: Option<&'a str>,
    /// Whether the code form is shown (not once the code is dead).
    form: bool,
    csrf: &'a str,
    return_to: &'a str,
    server: &'a str,
    /// The sign-in page, to ask for a new code.
    restart: &'a str,
}

/// The cookie binding a code to the browser that asked for it (`{challenge}.{secret}`).
fn email_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_email"
    } else {
        "gatehouse_email"
    }
}

/// The page asking for the code, with a fresh login CSRF value.
fn code_page(
    s: &AppState,
    status: StatusCode,
    sent_to: Option<&str>,
    error: Option<&EmailCodeError>,
    return_to: &str,
    server: Option<&Resource>,
) -> Response {
    let (csrf, csrf_cookie) = new_login_csrf(s);
    let restart = login_url(return_to, server.map(|r| &r.id));
    let form = !matches!(
        error,
        Some(
            EmailCodeError::Expired
                | EmailCodeError::AlreadyUsed
                | EmailCodeError::TooManyAttempts
                | EmailCodeError::NoChallenge
        )
    );
    let error = error.map(|e| sentence(&e.to_string()));
    let mut r = html(
        status,
        &CodePage {
            sent_to,
            error: error.as_deref(),
            form,
            csrf: &csrf,
            return_to,
            server: server.map(|r| r.id.as_str()).unwrap_or(""),
            restart: &restart,
        },
    );
    r.headers_mut().append(header::SET_COOKIE, csrf_cookie);
    r
}

fn status_of(e: &EmailCodeError) -> StatusCode {
    match e {
        EmailCodeError::InvalidEmail(_) | EmailCodeError::NoChallenge => StatusCode::BAD_REQUEST,
        EmailCodeError::TooManyCodes(_) | EmailCodeError::TooManyAttempts => {
            StatusCode::TOO_MANY_REQUESTS
        }
        EmailCodeError::Expired | EmailCodeError::AlreadyUsed => StatusCode::GONE,
        EmailCodeError::WrongCode(_) | EmailCodeError::WrongLink => StatusCode::UNAUTHORIZED,
        EmailCodeError::AccountDisabled(_) => StatusCode::FORBIDDEN,
        EmailCodeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `POST /login/email`: sends a code to the address typed.
pub async fn send_code(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let post = match SignInPost::check(&s, &headers, &form, Method::EmailCode).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (return_to, typed, server) = (post.return_to, post.email, post.server.as_deref());
    let page = async |status: StatusCode, error: &str| post.page(&s, status, error).await;
    // Offered only when email delivery is configured, which is when there is a mailer.
    let Some(mailer) = s.mailer.as_ref() else {
        return unavailable(
            "email codes are offered without a mailer",
            &"no mailer",
            "sign you in",
        );
    };
    if s.limits.email_codes.check_key(&peer.ip()).is_err() {
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many codes were asked for from your network. Wait a few minutes and try again.",
        )
        .await;
    }
    if !crate::mail::deliverable(typed.trim()) {
        return page(
            StatusCode::BAD_REQUEST,
            "That is not an email address we can send a code to.",
        )
        .await;
    }
    let for_name = server.map_or("Gatehouse", |r| r.name.as_str());
    let started = match s
        .engine
        .start_email_sign_in(typed, return_to, server.map(|r| r.id.clone()), for_name)
        .await
    {
        Ok(started) => started,
        Err(EmailCodeError::Store(e)) => {
            return unavailable("could not store a sign-in code", &e, "sign you in");
        }
        Err(e) => {
            s.engine.audit_email_failure(&e);
            return page(status_of(&e), &sentence(&e.to_string())).await;
        }
    };
    if let Err(e) = mailer.send(&started.message).await {
        // The message carries the code: only the cause is logged.
        tracing::error!(error = %e, challenge = %started.challenge.id, "could not send a sign-in code");
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The email with your code could not be sent. Try again in a moment, or use another way to sign in.",
        )
        .await;
    }
    let secure = s.secure_cookies();
    let mut r = code_page(
        &s,
        StatusCode::OK,
        Some(&started.challenge.email),
        None,
        return_to,
        server,
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            email_cookie(secure),
            &started.browser_cookie,
            EMAIL_CODE_TTL,
            secure,
        ),
    );
    r
}

/// `POST /login/email/code`: the code typed.
pub async fn enter_code(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let field = |n: &str| form.single(n).ok().flatten().unwrap_or("");
    let return_to = safe_return_to(field("return_to")).unwrap_or("");
    let server = server_for(&s, Some(field("server")), return_to).await;
    if !login_csrf_ok(&s, &headers, field("csrf")) {
        return message(
            StatusCode::BAD_REQUEST,
            "The form expired",
            "Go back, reload the page and try again.",
            Some("invalid_request"),
        );
    }
    finish(
        &s,
        &headers,
        EmailProof::Code(field("code")),
        return_to,
        server.as_deref(),
    )
    .await
}

#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// `GET /login/email/link?token=…`: the link from the message.
pub async fn follow_link(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
) -> Response {
    finish(
        &s,
        &headers,
        EmailProof::Link(q.token.as_deref().unwrap_or("")),
        "",
        None,
    )
    .await
}

/// Checks the code or link; signs the person in and sends them on, or explains.
/// `return_to` and `server` only serve the "ask for a new code" link of an error page.
async fn finish(
    s: &AppState,
    headers: &HeaderMap,
    proof: EmailProof<'_>,
    return_to: &str,
    server: Option<&Resource>,
) -> Response {
    let secure = s.secure_cookies();
    let browser = cookie(headers, email_cookie(secure));
    let done = match s
        .engine
        .finish_email_sign_in(browser.as_deref(), proof)
        .await
    {
        Ok(done) => done,
        Err(EmailCodeError::Store(e)) => {
            return unavailable("could not check a sign-in code", &e, "sign you in");
        }
        Err(e) => {
            s.engine.audit_email_failure(&e);
            return code_page(s, status_of(&e), None, Some(&e), return_to, server);
        }
    };
    let return_to = safe_return_to(&done.return_to).unwrap_or("");
    let forget = Some(email_cookie(secure));
    match start_signed_in(s, &done.user, Method::EmailCode, return_to, forget).await {
        Ok(r) => {
            s.engine.audit_email_sign_in(&done);
            r
        }
        Err(page) => page,
    }
}
