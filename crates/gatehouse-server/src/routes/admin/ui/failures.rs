//! `GET /admin/failures`: why hosts could not connect. Every refused registration,
//! authorization and token request, every metadata document that could not be used and every
//! refused client assertion of the last days, with the step, the reason in words, the host's
//! `User-Agent`, and what to change for the common ones. `?client=` narrows it to one client
//! (each client row of a server's page links here).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_core::audit::{AuditEvent, AuditQuery, EventType, Outcome};
use gatehouse_core::params::FormParams;

use crate::audit::{parse_time, rfc3339};
use crate::routes::AppState;
use crate::routes::admin_ui::{AdminPage, failed};
use crate::routes::ui::{html, message};

/// The events that say a connection failed.
pub const CONNECTION_FAILURES: [EventType; 6] = [
    EventType::AuthorizationRefused,
    EventType::TokenRefused,
    EventType::ClientRegistrationRefused,
    EventType::MetadataDocumentFailed,
    EventType::MetadataDocumentStale,
    EventType::ClientAssertionRefused,
];

struct Row {
    time: String,
    kind: &'static str,
    step: String,
    server: String,
    client: String,
    host: String,
    reason: String,
    hint: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "admin/failures.html")]
struct FailuresPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    filter_client: String,
    filter_since: String,
    rows: Vec<Row>,
}

/// `GET /admin/failures?client=…&since=…` (since defaults to 7 days).
pub async fn page(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    AdminPage { token, user }: AdminPage,
) -> Response {
    let q = FormParams::parse(raw.unwrap_or_default().as_bytes());
    let get = |n: &str| q.single(n).ok().flatten().unwrap_or("").trim().to_owned();
    let since = Some(get("since"))
        .filter(|v| !v.is_empty())
        .unwrap_or("7d".into());
    let from = match parse_time(&since, s.engine.now()) {
        Ok(t) => t,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                "Check the filters",
                &format!("since: {e}"),
                Some("invalid_request"),
            );
        }
    };
    let client = get("client");
    let query = AuditQuery {
        events: CONNECTION_FAILURES.to_vec(),
        outcome: Some(Outcome::Failure),
        client: Some(client.clone()).filter(|c| !c.is_empty()),
        since: Some(from),
        limit: 200,
        ..AuditQuery::default()
    };
    let events = match s.engine.store().audit_events(&query).await {
        Ok(e) => e,
        Err(e) => return failed(e.into()),
    };
    let page = FailuresPage {
        section: "failures",
        csrf: &token.csrf_token(),
        email: &user.email,
        notice: None,
        filter_client: client,
        filter_since: since,
        rows: events.iter().map(row).collect(),
    };
    html(StatusCode::OK, &page)
}

fn row(e: &AuditEvent) -> Row {
    let text = |k: &str| {
        e.details
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut reason = text("reason");
    let detail = text("detail");
    if !detail.is_empty() && !reason.contains(&detail) {
        reason = format!("{reason} ({detail})");
    }
    Row {
        time: rfc3339(e.at),
        kind: match e.event {
            EventType::AuthorizationRefused => "authorization",
            EventType::TokenRefused => "token",
            EventType::ClientRegistrationRefused => "registration",
            EventType::MetadataDocumentFailed => "metadata document",
            EventType::MetadataDocumentStale => "metadata document (old copy used)",
            _ => "client assertion",
        },
        step: [text("step"), text("grant_type")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        server: e.resource.clone().unwrap_or_default(),
        client: e.client.clone().unwrap_or_else(|| text("client_name")),
        host: text("user_agent"),
        hint: hint(&reason),
        reason,
    }
}

/// What to change, for the reasons hosts hit most.
pub fn hint(reason: &str) -> Option<&'static str> {
    const HINTS: [(&str, &str); 8] = [
        (
            "private-use scheme",
            "Turn on \"Native apps' own redirect schemes\" for this MCP server (Cursor and Claude Desktop need it).",
        ),
        (
            "does not accept client metadata documents",
            "Turn on Client ID Metadata Documents for this MCP server (Claude Code, VS Code and ChatGPT use them).",
        ),
        (
            "registration is turned off",
            "Turn on Dynamic Client Registration for this MCP server, or create a client for the host.",
        ),
        (
            "registered redirect URIs",
            "The host used a redirect URI its registration does not list: it must register again (remove the client, and reconnect).",
        ),
        (
            "code_challenge",
            "The host sent no PKCE S256 challenge; it is too old for MCP authorization.",
        ),
        (
            "resource",
            "The host asked for an MCP server URL Gatehouse does not know: check the server's URL against the one the host connects to.",
        ),
        (
            "its aud is",
            "The client assertion names another audience: it must be this issuer or its token endpoint.",
        ),
        (
            "could not be used",
            "The host's metadata document failed; its reason is in the row.",
        ),
    ];
    HINTS
        .iter()
        .find(|(needle, _)| reason.contains(needle))
        .map(|(_, h)| *h)
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn hints_match_their_own_reasons_only() {
        let aud =
            "its aud is neither this issuer nor the token endpoint https://a.example/oauth/token";
        assert!(hint(aud).unwrap().contains("another audience"));
        // "audit log" is not an audience.
        let document = "the client metadata document at https://a.example/c could not be used; \
             the operator of this server can see why in its audit log";
        assert!(hint(document).unwrap().contains("metadata document failed"));
        assert_eq!(hint("something else entirely"), None);
    }
}
