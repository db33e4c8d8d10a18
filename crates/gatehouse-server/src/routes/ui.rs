//! The pages people see: sign-in, sign-out, messages, and the stylesheet. Sessions live in
//! an HttpOnly, SameSite=Lax cookie (Secure, with the `__Host-` prefix, when the public URL
//! is https); every form carries a CSRF token.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

use gatehouse_core::audit::{AuditEvent, EventType};
use gatehouse_core::model::normalize_email;
use gatehouse_core::params::FormParams;
use gatehouse_core::password::Password;
use gatehouse_core::session::{SessionToken, check_password};
use gatehouse_core::signin::{Connection, Method};
use gatehouse_core::types::ConnectionId;
use gatehouse_core::{Resource, ResourceId, User};
use serde::Deserialize;

use super::AppState;

/// The stylesheet, compiled in.
const CSS: &str = include_str!("../../assets/gatehouse.css");
/// The passkey script, compiled in.
const PASSKEY_JS: &str = include_str!("../../assets/passkey.js");
/// The icon, compiled in.
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// `Content-Security-Policy` of every page: nothing but our own stylesheet and script (and
/// the script's requests to us), never in a frame.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    context: Option<&'a str>,
    error: Option<&'a str>,
    csrf: &'a str,
    return_to: &'a str,
    server: &'a str,
    email: &'a str,
    /// Whether the password form is shown.
    password: bool,
    /// Whether the "email me a code" form is shown.
    email_code: bool,
    /// Whether the "sign in with a passkey" button is shown.
    passkey: bool,
    /// The connections offered: their names and where their buttons go.
    connections: Vec<(String, String)>,
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

/// An error message as a sentence for a page: capitalised, with a full stop.
pub fn sentence(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

/// Name of the session cookie.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-gatehouse_session"
    } else {
        "gatehouse_session"
    }
}

pub(crate) fn login_cookie(secure: bool) -> &'static str {
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
    Ok(signed_in_with(state, headers)
        .await?
        .map(|(token, user, _)| (token, user)))
}

/// The session token, the person signed in with it and how they signed in, if any.
pub async fn signed_in_with(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(SessionToken, User, Method)>, Response> {
    let Some(value) = cookie(headers, session_cookie(state.secure_cookies())) else {
        return Ok(None);
    };
    let token = SessionToken::new(value);
    match state.engine.session_user(&token).await {
        Ok(Some((user, method))) => Ok(Some((token, user, method))),
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
        || path == "/account"
        || path == "/oauth/authorize"
        || path
            .strip_prefix("/resources/")
            .and_then(|rest| rest.strip_suffix("/oauth/authorize"))
            .is_some_and(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
    ok.then_some(s)
}

/// The sign-in page URL returning to `return_to`, for MCP server `server` when known.
pub fn login_url(return_to: &str, server: Option<&ResourceId>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    if let Some(id) = server {
        q.append_pair("server", id.as_str());
    }
    format!("/login?{}", q.finish())
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    server: Option<String>,
}

/// `GET /login`: the methods offered for the MCP server the sign-in is for. When the only
/// one is a connection, the browser goes straight to it.
pub async fn login_form(State(s): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let return_to = q
        .return_to
        .as_deref()
        .and_then(safe_return_to)
        .unwrap_or("");
    let server = server_for(&s, q.server.as_deref(), return_to).await;
    let offer = match offer(&s, server.as_deref(), return_to).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let ([Method::Connection(_)], [only]) =
        (offer.methods.as_slice(), offer.connections.as_slice())
    {
        return Redirect::to(&start_url(&only.id, return_to, server.as_deref())).into_response();
    }
    login_page(
        &s,
        StatusCode::OK,
        return_to,
        server.as_deref(),
        &offer,
        "",
        None,
    )
    .await
}

/// The MCP server a sign-in is for: the `server` parameter, else the one an authorization
/// request in `return_to` names (by the per-server issuer's path or its `resource`).
pub async fn server_for(
    s: &AppState,
    param: Option<&str>,
    return_to: &str,
) -> Option<Arc<Resource>> {
    let named = match param.filter(|p| !p.is_empty()) {
        Some(p) => p.to_owned(),
        None => {
            let (path, query) = return_to.split_once('?').unwrap_or((return_to, ""));
            match path.strip_prefix("/resources/") {
                Some(rest) => rest.split('/').next().map(str::to_owned),
                None => form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "resource")
                    .map(|(_, v)| v.into_owned()),
            }?
        }
    };
    s.engine.catalog().resource_named(&named).await.ok()?
}

/// The methods offered on a sign-in page.
pub(crate) struct Offer {
    pub methods: Vec<Method>,
    pub connections: Vec<Connection>,
}

impl Offer {
    fn password(&self) -> bool {
        self.methods.contains(&Method::Password)
    }

    pub fn email_code(&self) -> bool {
        self.methods.contains(&Method::EmailCode)
    }

    fn passkey(&self) -> bool {
        self.methods.contains(&Method::Passkey)
    }
}

/// What the sign-in page offers for `server`. The dashboard always offers passwords, so that
/// administrators can get in whatever the MCP servers offer.
async fn offer(
    s: &AppState,
    server: Option<&Resource>,
    return_to: &str,
) -> Result<Offer, Response> {
    let (mut methods, connections) = s.engine.offered_methods(server).await.map_err(|e| {
        unavailable(
            "sign-in methods could not be read",
            &e,
            "show the sign-in page",
        )
    })?;
    let dashboard = return_to == "/admin" || return_to.starts_with("/admin/");
    if dashboard && !methods.contains(&Method::Password) {
        methods.insert(0, Method::Password);
    }
    Ok(Offer {
        methods,
        connections,
    })
}

/// A 503 page for a failure that is nobody's mistake (storage, mail delivery): logged as
/// `what`; the person reads that the server could not `doing`, and to try again.
pub(crate) fn unavailable(what: &str, e: &dyn std::fmt::Display, doing: &str) -> Response {
    tracing::error!(error = %e, "{what}");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        &format!("The server could not {doing}. Try again in a moment."),
        Some("temporarily_unavailable"),
    )
}

/// Where a connection's button goes.
pub fn start_url(connection: &ConnectionId, return_to: &str, server: Option<&Resource>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", return_to);
    if let Some(r) = server {
        q.append_pair("server", r.id.as_str());
    }
    format!("/sso/v1/connections/{connection}/start?{}", q.finish())
}

async fn login_page(
    s: &AppState,
    status: StatusCode,
    return_to: &str,
    server: Option<&Resource>,
    offer: &Offer,
    email: &str,
    error: Option<&str>,
) -> Response {
    // Only the operator's own name for the MCP server is shown, never a name a client chose.
    let context = server.map(|r| r.name.clone());
    let (csrf, csrf_cookie) = new_login_csrf(s);
    let connections = offer
        .connections
        .iter()
        .map(|c| (c.name.clone(), start_url(&c.id, return_to, server)))
        .collect();
    let mut r = html(
        status,
        &LoginPage {
            context: context.as_deref(),
            error,
            csrf: &csrf,
            return_to,
            server: server.map(|r| r.id.as_str()).unwrap_or(""),
            email,
            password: offer.password(),
            email_code: offer.email_code(),
            passkey: offer.passkey(),
            connections,
        },
    );
    r.headers_mut().append(header::SET_COOKIE, csrf_cookie);
    r
}

/// Login CSRF: a fresh random value for a form, and the cookie that carries it too (double
/// submit; see [`login_csrf_ok`]).
pub(crate) fn new_login_csrf(s: &AppState) -> (String, HeaderValue) {
    let csrf = gatehouse_core::random::secret("");
    let secure = s.secure_cookies();
    let c = set_cookie(login_cookie(secure), &csrf, 3600, secure);
    (csrf, c)
}

/// Whether a sign-in form's `csrf` field is the value of the browser's login cookie.
pub(crate) fn login_csrf_ok(s: &AppState, headers: &HeaderMap, presented: &str) -> bool {
    let expected = cookie(headers, login_cookie(s.secure_cookies())).unwrap_or_default();
    !expected.is_empty()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            presented.as_bytes(),
        ))
}

/// A sign-in form as posted: the fields every sign-in form carries, the MCP server it is for
/// and what that server offers.
pub(crate) struct SignInPost<'f> {
    pub form: &'f FormParams,
    pub return_to: &'f str,
    /// The email as typed.
    pub email: &'f str,
    pub server: Option<Arc<Resource>>,
    pub offer: Offer,
}

impl<'f> SignInPost<'f> {
    /// Reads a sign-in form posted to sign in with `method`; refuses it (as the sign-in
    /// page with the reason) if the MCP server does not offer `method` or the form's CSRF
    /// value is not the browser's.
    pub async fn check(
        s: &AppState,
        headers: &HeaderMap,
        form: &'f FormParams,
        method: Method,
    ) -> Result<SignInPost<'f>, Response> {
        let field = |n: &str| form.single(n).ok().flatten().unwrap_or("");
        let return_to = safe_return_to(field("return_to")).unwrap_or("");
        let server = server_for(s, Some(field("server")), return_to).await;
        let offer = offer(s, server.as_deref(), return_to).await?;
        let post = SignInPost {
            form,
            return_to,
            email: field("email"),
            server,
            offer,
        };
        if !post.offer.methods.contains(&method) {
            let what = match method {
                Method::EmailCode => "sign-in codes by email",
                Method::Passkey => "passkeys",
                _ => "passwords",
            };
            return Err(post
                .page(
                    s,
                    StatusCode::FORBIDDEN,
                    &format!(
                        "This MCP server does not accept {what}: use one of the ways to sign in below."
                    ),
                )
                .await);
        }
        if !login_csrf_ok(s, headers, field("csrf")) {
            return Err(post
                .page(
                    s,
                    StatusCode::BAD_REQUEST,
                    "The sign-in form expired. Please try again.",
                )
                .await);
        }
        Ok(post)
    }

    /// A form field, or empty.
    pub fn field(&self, name: &str) -> &'f str {
        self.form.single(name).ok().flatten().unwrap_or("")
    }

    /// The sign-in page again, with `error`.
    pub async fn page(&self, s: &AppState, status: StatusCode, error: &str) -> Response {
        login_page(
            s,
            status,
            self.return_to,
            self.server.as_deref(),
            &self.offer,
            self.email,
            Some(error),
        )
        .await
    }
}

/// `POST /login`
pub async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = FormParams::parse(&body);
    let post = match SignInPost::check(&s, &headers, &form, Method::Password).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (return_to, typed_email) = (post.return_to, post.email);
    let page = |status, error| post.page(&s, status, error);
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
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins. Wait 15 minutes and try again.",
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
    let password = Password::new(post.field("password"));
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
        return page(StatusCode::UNAUTHORIZED, "Wrong email or password.").await;
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
        return page(
            StatusCode::FORBIDDEN,
            "This account is disabled. Ask the administrator of this server.",
        )
        .await;
    }
    let r = match start_signed_in(&s, &user, Method::Password, return_to, None).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    s.engine.audit(
        AuditEvent::new(EventType::SignInSucceeded, s.engine.now())
            .user(&user.id)
            .detail("ip", ip.as_str())
            .detail("method", "password"),
    );
    r
}

/// Where a person goes once signed in: back to `return_to` (checked by the caller), or home,
/// with the session cookie.
pub fn signed_in_redirect(s: &AppState, token: &SessionToken, return_to: &str) -> Response {
    let to = if return_to.is_empty() { "/" } else { return_to };
    let secure = s.secure_cookies();
    let mut r = Redirect::to(to).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            session_cookie(secure),
            token.expose_secret(),
            s.engine.settings().session_max,
            secure,
        ),
    );
    r
}

/// Starts `user`'s session, signed in with `method`, and sends the browser on to `return_to`
/// (checked by the caller; empty: home), forgetting the sign-in page's cookie and the
/// method's own cookie `forget`. `Err` is the page to show when the session cannot start.
pub(crate) async fn start_signed_in(
    s: &AppState,
    user: &User,
    method: Method,
    return_to: &str,
    forget: Option<&str>,
) -> Result<Response, Response> {
    let token = s
        .engine
        .start_session(user, method)
        .await
        .map_err(|e| unavailable("could not start a session", &e, "sign you in"))?;
    let secure = s.secure_cookies();
    let mut r = signed_in_redirect(s, &token, return_to);
    for name in std::iter::once(login_cookie(secure)).chain(forget) {
        r.headers_mut()
            .append(header::SET_COOKIE, set_cookie(name, "", 0, secure));
    }
    Ok(r)
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
        Some(to) => Redirect::to(&login_url(to, None)).into_response(),
        None => message(StatusCode::OK, "Signed out", "You are signed out.", None),
    };
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(session_cookie(secure), "", 0, secure),
    );
    r
}

/// `GET /`: a signed-in person's home is their account page.
pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&s, &headers).await {
        Ok(Some(_)) => Redirect::to("/account").into_response(),
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

/// `GET /assets/passkey.js`
pub async fn passkey_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PASSKEY_JS,
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
            "/account",
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
