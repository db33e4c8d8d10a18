//! The pages people see: sign-in, sign-out, messages, and the stylesheet. Sessions live in
//! an HttpOnly, SameSite=Lax cookie (Secure, with the `__Host-` prefix, when the public URL
//! is https); every form carries a CSRF token.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::User;
use gatehouse_core::audit::{AuditEvent, EventType};
use gatehouse_core::model::normalize_email;
use gatehouse_core::params::FormParams;
use gatehouse_core::password::Password;
use gatehouse_core::session::{SessionToken, check_password};
use serde::Deserialize;

use super::AppState;

/// The stylesheet, compiled in.
const CSS: &str = include_str!("../../assets/gatehouse.css");
/// The icon, compiled in.
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// `Content-Security-Policy` of every page: nothing but our stylesheet, never in a frame.
pub const PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    context: Option<&'a str>,
    error: Option<&'a str>,
    csrf: &'a str,
    return_to: &'a str,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
    code: Option<&'a str>,
}

/// Renders a template, or a plain 500 if it cannot be (a bug, never a client's fault).
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page with a title, a message and an optional error code.
pub fn message(status: StatusCode, title: &str, text: &str, code: Option<&str>) -> Response {
    html(
        status,
        &MessagePage {
            title,
            message: text,
            code,
        },
    )
}

/// Name of the session cookie.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_session"
    } else {
        "gatehouse_session"
    }
}

fn login_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_login"
    } else {
        "gatehouse_login"
    }
}

/// The value of cookie `name`.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    // Names are constants and values are base64url or hex: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session token and the person signed in with it, if any.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(SessionToken, User)>, Response> {
    let Some(value) = cookie(headers, session_cookie(state.secure_cookies())) else {
        return Ok(None);
    };
    let token = SessionToken::new(value);
    match state.engine.session_user(&token).await {
        Ok(Some(user)) => Ok(Some((token, user))),
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            Err(message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong",
                "The server could not check your session. Try again in a moment.",
                Some("temporarily_unavailable"),
            ))
        }
    }
}

/// Where to go after signing in or out: only our own authorization endpoints, so the
/// parameter cannot become an open redirect.
pub fn safe_return_to(s: &str) -> Option<&str> {
    if !s.starts_with('/') || s.starts_with("//") || s.contains('\\') {
        return None;
    }
    let path = s.split('?').next().unwrap_or("");
    let dashboard = path == "/admin"
        || path.strip_prefix("/admin/").is_some_and(|rest| {
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-/".contains(&b))
        });
    let ok = dashboard
        || path == "/oauth/authorize"
        || path
            .strip_prefix("/resources/")
            .and_then(|rest| rest.strip_suffix("/oauth/authorize"))
            .is_some_and(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
    ok.then_some(s)
}

/// The sign-in page URL returning to `return_to`.
pub fn login_url(return_to: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    format!("/login?{}", q.finish())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /login`
pub async fn login_form(State(s): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let return_to = q
        .return_to
        .as_deref()
        .and_then(safe_return_to)
        .unwrap_or("");
    login_page(&s, StatusCode::OK, return_to, "", None).await
}

/// The name of the MCP server an authorization request in `return_to` is for: from the
/// per-server issuer's path, else from its `resource` parameter. Only the operator's own
/// name for it is shown, never a name a client chose.
async fn server_named_in(s: &AppState, return_to: &str) -> Option<String> {
    let (path, query) = return_to.split_once('?').unwrap_or((return_to, ""));
    let named = match path.strip_prefix("/resources/") {
        Some(rest) => rest.split('/').next().map(str::to_owned),
        None => form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "resource")
            .map(|(_, v)| v.into_owned()),
    }?;
    let resource = s.engine.catalog().resource_named(&named).await.ok()??;
    Some(resource.name.clone())
}

async fn login_page(
    s: &AppState,
    status: StatusCode,
    return_to: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let context = server_named_in(s, return_to).await;
    // Login CSRF: a fresh random value in a cookie and in the form (double submit).
    let csrf = gatehouse_core::random::secret("");
    let mut r = html(
        status,
        &LoginPage {
            context: context.as_deref(),
            error,
            csrf: &csrf,
            return_to,
            email,
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            login_cookie(s.secure_cookies()),
            &csrf,
            3600,
            s.secure_cookies(),
        ),
    );
    r
}

/// `POST /login`
pub async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let field = |n: &str| form.single(n).ok().flatten().unwrap_or("");
    let return_to = safe_return_to(field("return_to")).unwrap_or("");
    let typed_email = field("email");
    let expected = cookie(&headers, login_cookie(s.secure_cookies())).unwrap_or_default();
    let presented = field("csrf");
    if expected.is_empty()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            presented.as_bytes(),
        ))
    {
        return login_page(
            &s,
            StatusCode::BAD_REQUEST,
            return_to,
            typed_email,
            Some("The sign-in form expired. Please try again."),
        )
        .await;
    }
    let ip = peer.ip().to_string();
    let email = normalize_email(typed_email).unwrap_or_default();
    let limits = &s.limits;
    if limits.sign_in_ips.is_blocked(&ip) || limits.sign_in_accounts.is_blocked(&email) {
        s.engine.audit(
            AuditEvent::new(EventType::SignInFailed, s.engine.now())
                .detail("email", email.as_str())
                .detail("ip", ip.as_str())
                .detail("reason", "too many failed sign-ins"),
        );
        return login_page(
            &s,
            StatusCode::TOO_MANY_REQUESTS,
            return_to,
            typed_email,
            Some("Too many failed sign-ins. Wait 15 minutes and try again."),
        )
        .await;
    }
    let user = match s.engine.store().user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong",
                "The server could not check your sign-in. Try again in a moment.",
                Some("temporarily_unavailable"),
            );
        }
    };
    let password = Password::new(field("password"));
    let ok = {
        // argon2 costs ~24 ms of CPU: off the async threads, a few at a time.
        let _permit = limits.password_checks.acquire().await;
        let u = user.clone();
        tokio::task::spawn_blocking(move || check_password(u.as_ref(), &password))
            .await
            .unwrap_or(false)
    };
    let Some(user) = user.filter(|_| ok) else {
        limits.sign_in_ips.fail(&ip);
        limits.sign_in_accounts.fail(&email);
        s.engine.audit(
            AuditEvent::new(EventType::SignInFailed, s.engine.now())
                .detail("email", email.as_str())
                .detail("ip", ip.as_str())
                .detail("reason", "wrong email or password"),
        );
        return login_page(
            &s,
            StatusCode::UNAUTHORIZED,
            return_to,
            typed_email,
            Some("Wrong email or password."),
        )
        .await;
    };
    limits.sign_in_accounts.clear(&email);
    // Only someone who knows the password learns that the account is disabled.
    if user.disabled_at.is_some() {
        s.engine.audit(
            AuditEvent::new(EventType::SignInFailed, s.engine.now())
                .user(&user.id)
                .detail("ip", ip.as_str())
                .detail("reason", "account disabled"),
        );
        return login_page(
            &s,
            StatusCode::FORBIDDEN,
            return_to,
            typed_email,
            Some("This account is disabled. Ask the administrator of this server."),
        )
        .await;
    }
    let token = match s.engine.start_session(&user).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not start a session");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong",
                "The server could not sign you in. Try again in a moment.",
                Some("temporarily_unavailable"),
            );
        }
    };
    s.engine.audit(
        AuditEvent::new(EventType::SignInSucceeded, s.engine.now())
            .user(&user.id)
            .detail("ip", ip.as_str())
            .detail("method", "password"),
    );
    let to = if return_to.is_empty() { "/" } else { return_to };
    let mut r = Redirect::to(to).into_response();
    let secure = s.secure_cookies();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            session_cookie(secure),
            token.expose_secret(),
            s.engine.settings().session_max,
            secure,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(login_cookie(secure), "", 0, secure),
    );
    r
}

/// `POST /logout`
pub async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let field = |n: &str| form.single(n).ok().flatten().unwrap_or("");
    let session = match signed_in(&s, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some((token, user)) = &session {
        if !token.csrf_matches(field("csrf")) {
            return message(
                StatusCode::BAD_REQUEST,
                "The form expired",
                "Go back, reload the page and try again.",
                Some("invalid_request"),
            );
        }
        if let Err(e) = s.engine.end_session(token).await {
            tracing::error!(error = %e, "could not end a session");
        }
        s.engine
            .audit(AuditEvent::new(EventType::SignOut, s.engine.now()).user(&user.id));
    }
    let secure = s.secure_cookies();
    let mut r = match safe_return_to(field("return_to")) {
        Some(to) => Redirect::to(&login_url(to)).into_response(),
        None => message(StatusCode::OK, "Signed out", "You are signed out.", None),
    };
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(session_cookie(secure), "", 0, secure),
    );
    r
}

/// `GET /`
pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&s, &headers).await {
        Ok(Some((_, user))) => message(
            StatusCode::OK,
            "You are signed in",
            &format!(
                "Signed in as {}. Applications you connect to MCP servers protected by this Gatehouse will send you here to sign in and approve access.",
                user.email
            ),
            None,
        ),
        Ok(None) => message(
            StatusCode::OK,
            "Gatehouse",
            "This server signs people in for MCP servers. Applications send you here when they need your approval.",
            None,
        ),
        Err(r) => r,
    }
}

/// `GET /assets/favicon.svg` (and `/favicon.ico`, which browsers ask for on their own).
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// `GET /assets/gatehouse.css`
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_only_our_authorization_endpoints() {
        for ok in [
            "/oauth/authorize?client_id=x",
            "/resources/res_abc/oauth/authorize?a=b",
            "/oauth/authorize",
        ] {
            assert_eq!(safe_return_to(ok), Some(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/oauth/authorize",
            "//evil.example/oauth/authorize",
            "/\\evil.example",
            "/login",
            "/resources//oauth/authorize",
            "/resources/../x/oauth/authorize",
            "",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad}");
        }
    }

    #[test]
    fn cookies_are_read_and_written_with_their_attributes() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; gatehouse_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, "gatehouse_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "missing"), None);
        let v = set_cookie("__Host-gatehouse_session", "abc", 60, true);
        assert_eq!(
            v.to_str().unwrap(),
            "__Host-gatehouse_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }
}
