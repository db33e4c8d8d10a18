//! The one error type of the protocol: RFC 6749 §5.2 and the RFCs that extend its registry.

use std::fmt;

use serde::Serialize;

/// An error code registered for OAuth responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// RFC 6749 §5.2: malformed request, missing or repeated parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the grant (code, refresh token, credentials) is invalid.
    InvalidGrant,
    /// RFC 6749 §5.2: this client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the scope is invalid, unknown, or exceeds what the client may have.
    InvalidScope,
    /// RFC 8707 §2: the resource is invalid, missing, unknown or not allowed.
    InvalidTarget,
    /// RFC 7009 §2.2.1: revocation of this token type is not supported.
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: the server does not issue codes with this `response_type`.
    UnsupportedResponseType,
    /// RFC 6749 §4.1.2.1: the person (or the server's policy) refused the request.
    AccessDenied,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, but nobody is signed in.
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, but consent is needed.
    ConsentRequired,
    /// RFC 7591 §3.2.2: a redirect URI offered at registration is not acceptable.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: some other client metadata is not acceptable.
    InvalidClientMetadata,
    /// RFC 6750 §3.1: the bearer token (an RFC 7592 registration access token) is not valid.
    InvalidToken,
    /// RFC 6749 §4.1.2.1: an unexpected condition on the server.
    ServerError,
    /// RFC 6749 §4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// Not registered: the client (or its address) made too many requests (RFC 6585 §4
    /// `429`, with `Retry-After`). The code Scalekit's examples use.
    RateLimitExceeded,
}

impl ErrorCode {
    /// The registered string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::RateLimitExceeded => "rate_limit_exceeded",
        }
    }

    /// The HTTP status for this error when it is a response body (token, introspection,
    /// revocation and registration endpoints, error pages); authorization errors that go
    /// back to the client travel in a redirect instead.
    pub fn http_status(self) -> u16 {
        match self {
            // RFC 6749 §5.2: 401 for failed client authentication.
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::AccessDenied => 403,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            ErrorCode::RateLimitExceeded => 429,
            ErrorCode::InvalidRequest
            | ErrorCode::InvalidGrant
            | ErrorCode::UnauthorizedClient
            | ErrorCode::UnsupportedGrantType
            | ErrorCode::InvalidScope
            | ErrorCode::InvalidTarget
            | ErrorCode::UnsupportedTokenType
            | ErrorCode::UnsupportedResponseType
            | ErrorCode::LoginRequired
            | ErrorCode::ConsentRequired
            | ErrorCode::InvalidRedirectUri
            | ErrorCode::InvalidClientMetadata => 400,
        }
    }
}

/// An OAuth error: a code, a description safe to show to the client, and a detail that only
/// goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The registered error code.
    pub code: ErrorCode,
    /// Human-readable text for the client (`error_description`).
    pub description: String,
    /// Extra context for the operator's log; never sent to the client.
    pub detail: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`), for `rate_limit_exceeded`
    /// and `temporarily_unavailable`.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    /// An error with a public description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            detail: None,
            retry_after: None,
        }
    }

    /// `rate_limit_exceeded`: retry after `secs` seconds.
    pub fn rate_limited(secs: u64) -> Self {
        OAuthError {
            retry_after: Some(secs.max(1)),
            ..Self::new(
                ErrorCode::RateLimitExceeded,
                format!("too many requests; retry after {} s", secs.max(1)),
            )
        }
    }

    /// Adds a log-only detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`, with the one description every authentication failure shares, so
    /// that a caller cannot tell an unknown client from a wrong secret.
    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    /// `server_error` for a storage failure; the cause goes to the log only.
    pub fn server_error(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
        .with_detail(detail.to_string())
    }

    /// The JSON body of RFC 6749 §5.2.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(_) => OAuthError {
                retry_after: Some(5),
                ..Self::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the database cannot be reached now; try again shortly",
                )
                .with_detail(e.to_string())
            },
            _ => OAuthError::server_error(e),
        }
    }
}
