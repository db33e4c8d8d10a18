//! The responses the guard answers with (RFC 6750 §3, RFC 9728 §5.1, MCP authorization):
//! one `WWW-Authenticate: Bearer` challenge with `resource_metadata` and `scope`, readable by
//! browser clients (`Access-Control-Expose-Headers`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What went wrong, and so which challenge to send.
pub(crate) enum Refusal<'a> {
    /// No bearer token: `401` without an error code (RFC 6750 §3.1).
    NoToken,
    /// A token in the query string, or a malformed header: `400 invalid_request`.
    BadRequest(&'a str),
    /// A token that did not verify: `401 invalid_token`.
    InvalidToken(String),
    /// Missing scopes: `403 insufficient_scope`; these are the ones the request needs.
    InsufficientScope(&'a [String]),
    /// The authorization server's keys are unreachable: `503`.
    Unavailable,
}

/// Builds the response. `scopes` go in the challenge: those the request needs (or, if none
/// are known, those the server supports), all of them in one challenge; for missing scopes,
/// also those the token already has.
pub(crate) fn respond(refusal: Refusal<'_>, prm_url: &str, scopes: &[String]) -> Response {
    let scope = scopes.join(" ");
    let mut params = vec![("realm", "OAuth".to_owned())];
    let (status, body) = match &refusal {
        Refusal::NoToken => (
            StatusCode::UNAUTHORIZED,
            json!({ "error": "unauthorized", "error_description": "a bearer token is required" }),
        ),
        Refusal::BadRequest(why) => {
            params.push(("error", "invalid_request".into()));
            params.push(("error_description", (*why).to_owned()));
            (
                StatusCode::BAD_REQUEST,
                json!({ "error": "invalid_request", "error_description": why }),
            )
        }
        Refusal::InvalidToken(why) => {
            params.push(("error", "invalid_token".into()));
            params.push(("error_description", why.clone()));
            (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "invalid_token", "error_description": why }),
            )
        }
        Refusal::InsufficientScope(needed) => {
            let why = format!("this request needs the scopes: {}", needed.join(" "));
            params.push(("error", "insufficient_scope".into()));
            params.push(("error_description", why.clone()));
            (
                StatusCode::FORBIDDEN,
                json!({ "error": "insufficient_scope", "error_description": why, "scope": scope }),
            )
        }
        Refusal::Unavailable => {
            let body = json!({ "error": "temporarily_unavailable", "error_description": "the authorization server cannot be reached; try again shortly" });
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
    };
    params.push(("resource_metadata", prm_url.to_owned()));
    if !scope.is_empty() {
        params.push(("scope", scope.clone()));
    }
    let value = params
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", quote(v)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut r = (status, Json(body)).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {value}")) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// RFC 9110 §5.6.4 quoted-string: escape `"` and `\`; drop control characters.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}
