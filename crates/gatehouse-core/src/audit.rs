//! The audit log: one event for every authorization decision, sign-in, registration and
//! administrative change.
//!
//! The engine hands each event to an [`AuditSink`] and writes it as one structured log line
//! (target `gatehouse::audit`). Recording never waits for storage and never fails a request:
//! the server's sink queues events and stores them in batches (see `docs/audit.md`). Events
//! carry ids, names, scopes and reasons — never a secret, a token or a password.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::UnixTime;

/// What happened. The string form (`token.issued`, …) is what the log, the store, the API
/// and the filters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "token.issued")]
    TokenIssued,
    #[serde(rename = "token.refused")]
    TokenRefused,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "authorization.granted")]
    AuthorizationGranted,
    #[serde(rename = "authorization.denied")]
    AuthorizationDenied,
    #[serde(rename = "consent.granted")]
    ConsentGranted,
    #[serde(rename = "consent.revoked")]
    ConsentRevoked,
    #[serde(rename = "client.registered")]
    ClientRegistered,
    #[serde(rename = "client.registration_refused")]
    ClientRegistrationRefused,
    #[serde(rename = "client.deleted")]
    ClientDeleted,
    #[serde(rename = "metadata_document.failed")]
    MetadataDocumentFailed,
    /// A metadata document could not be fetched again, and the last good copy was used.
    #[serde(rename = "metadata_document.stale")]
    MetadataDocumentStale,
    /// An authorization request was refused before it reached the person (a bad client,
    /// redirect URI, PKCE, resource or scope).
    #[serde(rename = "authorization.refused")]
    AuthorizationRefused,
    /// A `private_key_jwt` client assertion was refused (never the assertion itself).
    #[serde(rename = "client_assertion.refused")]
    ClientAssertionRefused,
    #[serde(rename = "sign_in.succeeded")]
    SignInSucceeded,
    #[serde(rename = "sign_in.failed")]
    SignInFailed,
    #[serde(rename = "sign_out")]
    SignOut,
    #[serde(rename = "admin.change")]
    AdminChange,
    #[serde(rename = "key.rotated")]
    KeyRotated,
    #[serde(rename = "identity.linked")]
    IdentityLinked,
    #[serde(rename = "sign_in.code_sent")]
    EmailCodeSent,
    #[serde(rename = "passkey.added")]
    PasskeyAdded,
    #[serde(rename = "passkey.removed")]
    PasskeyRemoved,
}

impl EventType {
    /// Every event type, in a stable order (for help texts and validation).
    pub const ALL: [EventType; 23] = [
        EventType::TokenIssued,
        EventType::TokenRefused,
        EventType::TokenRevoked,
        EventType::AuthorizationGranted,
        EventType::AuthorizationDenied,
        EventType::ConsentGranted,
        EventType::ConsentRevoked,
        EventType::ClientRegistered,
        EventType::ClientRegistrationRefused,
        EventType::ClientDeleted,
        EventType::MetadataDocumentFailed,
        EventType::MetadataDocumentStale,
        EventType::AuthorizationRefused,
        EventType::ClientAssertionRefused,
        EventType::SignInSucceeded,
        EventType::SignInFailed,
        EventType::SignOut,
        EventType::AdminChange,
        EventType::KeyRotated,
        EventType::IdentityLinked,
        EventType::EmailCodeSent,
        EventType::PasskeyAdded,
        EventType::PasskeyRemoved,
    ];

    /// The event's name, e.g. `token.issued`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TokenIssued => "token.issued",
            EventType::TokenRefused => "token.refused",
            EventType::TokenRevoked => "token.revoked",
            EventType::AuthorizationGranted => "authorization.granted",
            EventType::AuthorizationDenied => "authorization.denied",
            EventType::ConsentGranted => "consent.granted",
            EventType::ConsentRevoked => "consent.revoked",
            EventType::ClientRegistered => "client.registered",
            EventType::ClientRegistrationRefused => "client.registration_refused",
            EventType::ClientDeleted => "client.deleted",
            EventType::MetadataDocumentFailed => "metadata_document.failed",
            EventType::MetadataDocumentStale => "metadata_document.stale",
            EventType::AuthorizationRefused => "authorization.refused",
            EventType::ClientAssertionRefused => "client_assertion.refused",
            EventType::SignInSucceeded => "sign_in.succeeded",
            EventType::SignInFailed => "sign_in.failed",
            EventType::SignOut => "sign_out",
            EventType::AdminChange => "admin.change",
            EventType::KeyRotated => "key.rotated",
            EventType::IdentityLinked => "identity.linked",
            EventType::EmailCodeSent => "sign_in.code_sent",
            EventType::PasskeyAdded => "passkey.added",
            EventType::PasskeyRemoved => "passkey.removed",
        }
    }

    /// Parses a name as [`EventType::as_str`] writes it.
    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether the event records something refused or failed.
    pub fn outcome(self) -> Outcome {
        match self {
            EventType::TokenRefused
            | EventType::AuthorizationDenied
            | EventType::ClientRegistrationRefused
            | EventType::MetadataDocumentFailed
            | EventType::MetadataDocumentStale
            | EventType::AuthorizationRefused
            | EventType::ClientAssertionRefused
            | EventType::SignInFailed => Outcome::Failure,
            _ => Outcome::Success,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether what the event records went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    /// `success` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    /// Parses `success` or `failure`.
    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Success, Outcome::Failure]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// One audit event. `seq` is given by the store: increasing, so it orders events and pages
/// through them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub at: UnixTime,
    pub event: EventType,
    pub outcome: Outcome,
    /// The MCP server (`res_…`) it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The OAuth client it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The person (`usr_…`) it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Who did it, when it was not the client or the person: an administrator, `cli`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The rest: grant type, scopes, reason, error code, …
    #[serde(skip_serializing_if = "Map::is_empty", default)]
    pub details: Map<String, Value>,
}

impl AuditEvent {
    /// An event of `event` at `at`, with the outcome its type implies.
    pub fn new(event: EventType, at: UnixTime) -> Self {
        AuditEvent {
            seq: None,
            at,
            event,
            outcome: event.outcome(),
            resource: None,
            client: None,
            user: None,
            actor: None,
            details: Map::new(),
        }
    }

    pub fn resource(mut self, id: impl ToString) -> Self {
        self.resource = Some(id.to_string());
        self
    }

    pub fn client(mut self, id: impl ToString) -> Self {
        self.client = Some(id.to_string());
        self
    }

    pub fn user(mut self, id: impl ToString) -> Self {
        self.user = Some(id.to_string());
        self
    }

    pub fn actor(mut self, who: impl ToString) -> Self {
        self.actor = Some(who.to_string());
        self
    }

    /// Adds a detail; `None`s are left out.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = value.into();
        if !value.is_null() {
            self.details.insert(key.to_owned(), value);
        }
        self
    }

    /// Writes the event as one structured log line (nothing is formatted when the
    /// `gatehouse::audit` target is not logged).
    pub fn log(&self) {
        if !tracing::enabled!(target: "gatehouse::audit", tracing::Level::INFO) {
            return;
        }
        let details = serde_json::to_string(&self.details).unwrap_or_default();
        tracing::info!(
            target: "gatehouse::audit",
            event = self.event.as_str(),
            outcome = self.outcome.as_str(),
            at = self.at.0,
            resource = self.resource.as_deref(),
            client = self.client.as_deref(),
            user = self.user.as_deref(),
            actor = self.actor.as_deref(),
            details = %details,
            "audit"
        );
    }
}

/// Where the engine sends events. `record` must not block: it is called on request paths.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent);
    /// Waits until every event recorded so far is stored (for shutdown and tests).
    async fn flush(&self) {}
}

/// A sink that keeps events in memory, for tests and tools that read them back at once.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<AuditEvent>>);

impl Recorder {
    /// The events recorded so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl AuditSink for Recorder {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

/// Which events to read back: every field narrows; `before` pages backwards by `seq`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub events: Vec<EventType>,
    pub outcome: Option<Outcome>,
    pub resource: Option<String>,
    pub client: Option<String>,
    pub user: Option<String>,
    /// At or after this time.
    pub since: Option<UnixTime>,
    /// Before this time.
    pub until: Option<UnixTime>,
    /// Only events with a smaller `seq` (the previous page's last `seq`).
    pub before: Option<i64>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl AuditQuery {
    /// The largest page a query may ask for.
    pub const MAX_LIMIT: u32 = 1000;

    /// Whether `e` passes every filter except `before` and `limit`.
    pub fn matches(&self, e: &AuditEvent) -> bool {
        (self.events.is_empty() || self.events.contains(&e.event))
            && self.outcome.is_none_or(|o| o == e.outcome)
            && self
                .resource
                .as_ref()
                .is_none_or(|r| e.resource.as_ref() == Some(r))
            && self
                .client
                .as_ref()
                .is_none_or(|c| e.client.as_ref() == Some(c))
            && self
                .user
                .as_ref()
                .is_none_or(|u| e.user.as_ref() == Some(u))
            && self.since.is_none_or(|t| e.at >= t)
            && self.until.is_none_or(|t| e.at < t)
            && self.before.is_none_or(|b| e.seq.is_some_and(|s| s < b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                Value::String(e.as_str().into())
            );
        }
        assert_eq!(EventType::parse("token.exploded"), None);
        assert_eq!(Outcome::parse("failure"), Some(Outcome::Failure));
    }

    #[test]
    fn details_leave_out_nulls() {
        let e = AuditEvent::new(EventType::TokenRefused, UnixTime(1))
            .detail("error", "invalid_grant")
            .detail("grant_type", None::<String>);
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(
            Value::Object(e.details),
            serde_json::json!({"error": "invalid_grant"})
        );
    }
}
