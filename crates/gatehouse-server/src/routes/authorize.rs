//! `GET|POST /oauth/authorize` and `/resources/{id}/oauth/authorize`: the core checks the
//! request; this adapter signs the person in, shows the consent page, and redirects.
//!
//! GET runs the request; the consent form POSTs the same parameters back with `decision` and
//! the session's CSRF token, and the request is checked again from scratch, so nothing about
//! a pending authorization is stored.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::authorize::{self, AuthorizationRequest, AuthorizeError};
use gatehouse_core::params::FormParams;
use gatehouse_core::redirect::Destination;
use gatehouse_core::session::SessionToken;
use gatehouse_core::{ErrorCode, OAuthError, User};

use super::ui::{html, login_url, message, signed_in_with};
use super::{AppState, AtIssuer};

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    client_host: Option<String>,
    client_origin: &'a str,
    server_name: &'a str,
    redirect_host: String,
    redirect_is_loopback: bool,
    /// The scheme of a private-use redirect URI: an app on this device gets the code.
    redirect_app: Option<String>,
    email: &'a str,
    /// What the person is asked for.
    scopes: Vec<(String, String)>,
    /// What they allowed this client before, which it asks for again (step-up).
    already_allowed: Vec<(String, String)>,
    params: &'a [(String, String)],
    action: &'a str,
    csrf: String,
    return_to: &'a str,
}

/// Form fields of the consent page that are not authorization parameters.
const FORM_FIELDS: [&str; 2] = ["decision", "csrf"];

/// `GET /oauth/authorize`
pub async fn get(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let pairs = pairs(query.as_deref().unwrap_or("").as_bytes());
    let params = FormParams::from_pairs(pairs.clone());
    let req = match authorize::validate(&s.engine, &ctx, &params).await {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    let session = match session_for(&s, &headers, &req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some((token, user)) = session.filter(|_| !req.prompt.login) else {
        if req.prompt.none {
            return found(&authorize::needs_a_page(&s.engine, &ctx, None, &req));
        }
        // prompt=login is honoured by this sign-in; the request continues without it.
        let back = return_to(uri.path(), &pairs, true);
        return Redirect::to(&login_url(&back, Some(&req.resource.id))).into_response();
    };
    let allowed = match authorize::consent_needed(&s.engine, &user.id, &req).await {
        Ok(Some(allowed)) => allowed,
        Ok(None) => return approve(&s, &user, &req, false).await,
        Err(e) => return refuse(AuthorizeError::Redirect(req.redirect.clone(), e)),
    };
    if req.prompt.none {
        return found(&authorize::needs_a_page(
            &s.engine,
            &ctx,
            Some(&user.id),
            &req,
        ));
    }
    consent_page(&req, &allowed, &user, &token, uri.path(), &pairs)
}

/// `POST /oauth/authorize`: the consent form.
pub async fn post(
    State(s): State<AppState>,
    AtIssuer(ctx): AtIssuer,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let all = pairs(&body);
    let form = FormParams::from_pairs(all.clone());
    let decision = form
        .single("decision")
        .ok()
        .flatten()
        .unwrap_or("")
        .to_owned();
    let csrf = form.single("csrf").ok().flatten().unwrap_or("").to_owned();
    let pairs: Vec<(String, String)> = all
        .into_iter()
        .filter(|(k, _)| !FORM_FIELDS.contains(&k.as_str()))
        .collect();
    let params = FormParams::from_pairs(pairs.clone());
    let req = match authorize::validate(&s.engine, &ctx, &params).await {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    let session = match session_for(&s, &headers, &req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some((token, user)) = session else {
        // The session ended while the page was open: sign in again, then decide again.
        let back = return_to(uri.path(), &pairs, false);
        return Redirect::to(&login_url(&back, Some(&req.resource.id))).into_response();
    };
    if !token.csrf_matches(&csrf) {
        return message(
            StatusCode::BAD_REQUEST,
            "The form expired",
            "This page was opened in another session. Go back to the application and start again.",
            Some("invalid_request"),
        );
    }
    match decision.as_str() {
        "allow" => approve(&s, &user, &req, true).await,
        "deny" => Redirect::to(&authorize::deny(&s.engine, &user.id, &req)).into_response(),
        _ => message(
            StatusCode::BAD_REQUEST,
            "Choose Allow or Deny",
            "The form was sent without a decision.",
            Some("invalid_request"),
        ),
    }
}

/// The session, if someone is signed in with a method the MCP server offers: a session
/// started another way counts as nobody, so the person signs in again with one it offers.
async fn session_for(
    s: &AppState,
    headers: &HeaderMap,
    req: &AuthorizationRequest,
) -> Result<Option<(SessionToken, User)>, Response> {
    let Some((token, user, method)) = signed_in_with(s, headers).await? else {
        return Ok(None);
    };
    let (offered, _) = s
        .engine
        .offered_methods(Some(&req.resource))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "sign-in methods could not be read");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong",
                "The server could not check your session. Try again in a moment.",
                Some("temporarily_unavailable"),
            )
        })?;
    Ok(offered.contains(&method).then_some((token, user)))
}

async fn approve(
    s: &AppState,
    user: &User,
    req: &AuthorizationRequest,
    after_form: bool,
) -> Response {
    match authorize::approve(&s.engine, &user.id, req).await {
        Ok(url) => {
            tracing::info!(client = %req.client.id, user = %user.id, resource = %req.resource.id, "authorization code issued");
            // 303 after the form's POST, 302 for a GET (RFC 6749 §4.1.2).
            if after_form {
                Redirect::to(&url).into_response()
            } else {
                found(&url)
            }
        }
        Err(e) => refuse(e),
    }
}

fn consent_page(
    req: &AuthorizationRequest,
    allowed: &gatehouse_core::ScopeSet,
    user: &User,
    token: &SessionToken,
    path: &str,
    pairs: &[(String, String)],
) -> Response {
    let client = &req.client;
    let name = if client.name.trim().is_empty() {
        "An unnamed application"
    } else {
        client.name.as_str()
    };
    let (redirect_host, loopback, app) = match req.redirect.destination() {
        Destination::Web(host) => (host, false, None),
        Destination::Loopback(host) => (host, true, None),
        Destination::App(scheme) => (format!("{scheme}://"), false, Some(scheme)),
    };
    let return_to = return_to(path, pairs, false);
    let page = ConsentPage {
        client_name: name,
        client_host: client.url_host(),
        client_origin: "registered itself; its identity is not verified",
        server_name: &req.resource.name,
        redirect_host,
        redirect_is_loopback: loopback,
        redirect_app: app,
        email: &user.email,
        scopes: req.scope_descriptions(allowed, true),
        already_allowed: req.scope_descriptions(allowed, false),
        params: pairs,
        action: path,
        csrf: token.csrf_token(),
        return_to: &return_to,
    };
    html(StatusCode::OK, &page)
}

/// An error: a page before the client and redirect URI are verified, a redirect after.
fn refuse(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(e) => error_page(&e),
        AuthorizeError::Redirect(r, e) => {
            log(&e);
            found(&r.with_error(&e))
        }
    }
}

fn error_page(e: &OAuthError) -> Response {
    log(e);
    let status = match e.code {
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    message(
        status,
        "This sign-in request cannot continue",
        &format!(
            "{}. The application that sent you here may be misconfigured; nothing was shared with it.",
            e.description.trim_end_matches('.')
        ),
        Some(e.code.as_str()),
    )
}

fn log(e: &OAuthError) {
    tracing::info!(error = e.code.as_str(), description = %e.description, detail = e.detail.as_deref(), "authorization refused");
}

/// 302 Found with `Location`.
fn found(url: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// The authorization URL to come back to: this path and these parameters, without the
/// `login` prompt once it has been honoured.
fn return_to(path: &str, pairs: &[(String, String)], drop_login: bool) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if drop_login && k == "prompt" {
            let rest: Vec<&str> = v
                .split(' ')
                .filter(|p| *p != "login" && !p.is_empty())
                .collect();
            if !rest.is_empty() {
                q.append_pair(k, &rest.join(" "));
            }
            continue;
        }
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_drops_only_the_login_prompt() {
        let p = vec![
            ("client_id".to_owned(), "a b".to_owned()),
            ("prompt".to_owned(), "login consent".to_owned()),
        ];
        assert_eq!(
            return_to("/oauth/authorize", &p, true),
            "/oauth/authorize?client_id=a+b&prompt=consent"
        );
        assert_eq!(
            return_to("/oauth/authorize", &p, false),
            "/oauth/authorize?client_id=a+b&prompt=login+consent"
        );
    }
}
