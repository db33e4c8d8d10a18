//! Typed protocol values. Untrusted strings become these once, at the edge; below that,
//! nothing takes a bare `&str` for them.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// Why a string is not a valid protocol value. The message is safe to show to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The value as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// The id of a registered MCP server: `res_` and 20 base-32 characters.
    ResourceId
);
string_newtype!(
    /// An OAuth client identifier. Ids Gatehouse generates never start with `https://`
    /// (CIMD-01 §6.9), so they cannot be mistaken for a Client ID Metadata Document URL.
    ClientId
);
string_newtype!(
    /// A person's id: `usr_` and 20 base-32 characters. It is the `sub` of their tokens.
    UserId
);
string_newtype!(
    /// One authorization grant: what a person allowed one client for one MCP server, and
    /// every code, access token and refresh token issued from that decision.
    GrantId
);
string_newtype!(
    /// An admin API key's id: `key_` and 20 base-32 characters (not the secret).
    ApiKeyId
);
string_newtype!(
    /// A sign-in connection's id: `conn_` and 20 base-32 characters. A connection is a way
    /// to sign in through another system: the owner's own login page ("bring your own auth")
    /// or an upstream OpenID Connect provider.
    ConnectionId
);
string_newtype!(
    /// One sign-in through a connection: `lr_` and 20 base-32 characters. It is sent to the
    /// owner's login page as `login_request_id`.
    LoginRequestId
);
string_newtype!(
    /// One sign-in code sent by email: `ec_` and 20 base-32 characters.
    EmailChallengeId
);
string_newtype!(
    /// A person's passkey: `pk_` and 20 base-32 characters (not the WebAuthn credential id).
    PasskeyId
);
string_newtype!(
    /// One WebAuthn ceremony (adding a passkey, or signing in with one): `pkc_` and 20
    /// base-32 characters.
    PasskeyCeremonyId
);
string_newtype!(
    /// A signing key id (`kid`): the RFC 7638 thumbprint of the public key, so a `kid` is
    /// never reused for another key.
    Kid
);

impl ResourceId {
    /// A fresh random id.
    pub fn generate() -> Self {
        ResourceId(crate::random::id("res_"))
    }

    /// Parses an id as found in a path or a command line.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = s.len() <= 64
            && s.starts_with("res_")
            && s.len() > 4
            && s[4..].bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(ResourceId(s.to_owned()))
        } else {
            Err(err(format!(
                "`{s}` is not an MCP server id (they look like res_…)"
            )))
        }
    }
}

impl UserId {
    /// A fresh random id.
    pub fn generate() -> Self {
        UserId(crate::random::id("usr_"))
    }

    /// Wraps an id read from storage or typed by an operator.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = s.len() <= 64
            && s.len() > 4
            && s.starts_with("usr_")
            && s[4..].bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(UserId(s.to_owned()))
        } else {
            Err(err(format!(
                "`{s}` is not a user id (they look like usr_…)"
            )))
        }
    }
}

impl ApiKeyId {
    /// A fresh random id.
    pub fn generate() -> Self {
        ApiKeyId(crate::random::id("key_"))
    }

    /// Parses an id as found in a path or a command line.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = s.len() <= 64
            && s.len() > 4
            && s.starts_with("key_")
            && s[4..].bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(ApiKeyId(s.to_owned()))
        } else {
            Err(err(format!(
                "`{s}` is not an API key id (they look like key_…)"
            )))
        }
    }
}

impl ConnectionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        ConnectionId(crate::random::id("conn_"))
    }

    /// Parses an id as found in a path or a command line. The message says what the value
    /// looks like instead, because an MCP server id (`res_…`) in its place is a common
    /// mistake.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if prefixed_id(s, "conn_") {
            return Ok(ConnectionId(s.to_owned()));
        }
        let looks_like = if s.starts_with("res_") {
            " It is an MCP server id (res_…): use the connection id (conn_…) shown on the connection's page instead."
        } else {
            ""
        };
        Err(err(format!(
            "`{s}` is not a connection id (they look like conn_…).{looks_like}"
        )))
    }
}

impl LoginRequestId {
    /// A fresh random id.
    pub fn generate() -> Self {
        LoginRequestId(crate::random::id("lr_"))
    }

    /// Parses an id as found in a path.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if prefixed_id(s, "lr_") {
            Ok(LoginRequestId(s.to_owned()))
        } else {
            Err(err(format!(
                "`{s}` is not a login request id (they look like lr_…)"
            )))
        }
    }
}

impl EmailChallengeId {
    /// A fresh random id.
    pub fn generate() -> Self {
        EmailChallengeId(crate::random::id("ec_"))
    }

    /// Parses an id as found in a cookie or a link.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if prefixed_id(s, "ec_") {
            Ok(EmailChallengeId(s.to_owned()))
        } else {
            Err(err(format!("`{s}` is not an email challenge id")))
        }
    }
}

impl PasskeyId {
    /// A fresh random id.
    pub fn generate() -> Self {
        PasskeyId(crate::random::id("pk_"))
    }

    /// Parses an id as typed in a URL.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if prefixed_id(s, "pk_") {
            Ok(PasskeyId(s.to_owned()))
        } else {
            Err(err(format!("`{s}` is not a passkey id (pk_…)")))
        }
    }
}

impl PasskeyCeremonyId {
    /// A fresh random id.
    pub fn generate() -> Self {
        PasskeyCeremonyId(crate::random::id("pkc_"))
    }

    /// Parses an id as found in a cookie.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if prefixed_id(s, "pkc_") {
            Ok(PasskeyCeremonyId(s.to_owned()))
        } else {
            Err(err(format!("`{s}` is not a passkey ceremony id")))
        }
    }
}

/// Whether `s` is `prefix` and up to 60 ASCII letters and digits.
fn prefixed_id(s: &str, prefix: &str) -> bool {
    s.len() <= 64
        && s.len() > prefix.len()
        && s.starts_with(prefix)
        && s[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric())
}

impl GrantId {
    /// A fresh random id.
    pub fn generate() -> Self {
        GrantId(crate::random::id("gr_"))
    }

    /// Wraps an id read from storage.
    pub fn from_stored(s: impl Into<String>) -> Self {
        GrantId(s.into())
    }
}

impl ClientId {
    /// A fresh random id for an agent (client-credentials) client.
    pub fn generate_agent() -> Self {
        ClientId(crate::random::id("m2m_"))
    }

    /// A fresh random id for a client that registered itself (RFC 7591).
    pub fn generate_registered() -> Self {
        ClientId(crate::random::id("dcr_"))
    }

    /// Whether this id is a URL: a Client ID Metadata Document (CIMD-01 §3). Gatehouse
    /// never generates such ids.
    pub fn is_url(&self) -> bool {
        self.0.starts_with("https://") || self.0.starts_with("http://")
    }

    /// Parses a client id sent by a client: 1–255 visible ASCII characters (RFC 6749 §A.1).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err(err("client_id is not valid"));
        }
        Ok(ClientId(s.to_owned()))
    }
}

impl Kid {
    /// Wraps a key id read from storage or computed from a key.
    pub fn new(s: impl Into<String>) -> Self {
        Kid(s.into())
    }
}

/// An issuer identifier (RFC 8414 §2): an `http(s)` URL without query or fragment, kept
/// byte-for-byte with no trailing slash, because clients compare it as a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Issuer(String);

impl Issuer {
    /// Parses the public URL of this server; a trailing slash is removed.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let url = Url::parse(s).map_err(|e| err(format!("`{s}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(format!("`{s}` must be an http or https URL")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err(format!("`{s}` must not have a query or fragment")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(format!("`{s}` must not contain credentials")));
        }
        Ok(Issuer(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The issuer as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{self}/resources/{id}`: the per-MCP-server issuer.
    pub fn for_resource(&self, id: &ResourceId) -> Issuer {
        Issuer(format!("{}/resources/{}", self.0, id))
    }

    /// `{self}{path}`: an endpoint under this issuer; `path` starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path)
    }

    /// The well-known URL built by RFC 8414 §3.1 path insertion for `suffix`.
    pub fn well_known(&self, suffix: &str) -> String {
        well_known_url(&self.0, suffix)
    }
}

/// The well-known URL for `base` built by path insertion (RFC 8414 §3.1, RFC 9728 §3.1):
/// `{origin}/.well-known/{suffix}{path}`, the path without a trailing slash.
pub fn well_known_url(base: &str, suffix: &str) -> String {
    match Url::parse(base) {
        Ok(url) => {
            let origin = url.origin().ascii_serialization();
            let path = url.path().trim_end_matches('/');
            format!("{origin}/.well-known/{suffix}{path}")
        }
        Err(_) => format!("{}/.well-known/{suffix}", base.trim_end_matches('/')),
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The URL of an MCP server, its token audience (RFC 8707 resource indicator): an absolute
/// `http(s)` URL without fragment or credentials. The registered string is kept as given (it
/// is what the MCP server compares `aud` with); comparisons use [`ResourceUri::canonical`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceUri(String);

impl ResourceUri {
    /// Parses a resource indicator (RFC 8707 §2: absolute URI, no fragment).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let url = Url::parse(s).map_err(|_| err(format!("`{s}` is not an absolute URL")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(format!("`{s}` must be an http or https URL")));
        }
        if url.fragment().is_some() || s.contains('#') {
            return Err(err(format!("`{s}` must not contain a fragment")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(format!("`{s}` must not contain credentials")));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err(format!("`{s}` has no host")));
        }
        Ok(ResourceUri(s.to_owned()))
    }

    /// The URL as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used to compare resource indicators: scheme and host lower-cased, default
    /// port dropped, trailing slash removed (MCP: accept case differences and both slash forms).
    pub fn canonical(&self) -> String {
        canonical_url(&self.0).unwrap_or_else(|| self.0.clone())
    }

    /// Whether `other` names this resource.
    pub fn matches(&self, other: &str) -> bool {
        canonical_url(other).is_some_and(|c| c == self.canonical())
    }
}

fn canonical_url(s: &str) -> Option<String> {
    let url = Url::parse(s.trim()).ok()?;
    let host = url.host_str()?;
    let port = match url.port() {
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    let path = url.path().trim_end_matches('/');
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{}://{host}{port}{path}{query}", url.scheme()))
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One scope token (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    /// Parses one scope token.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let valid = !s.is_empty()
            && s.len() <= 200
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if valid {
            Ok(Scope(s.to_owned()))
        } else {
            Err(err(format!("`{s}` is not a valid scope")))
        }
    }

    /// The scope as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scopes in the order first given, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parses a space-delimited `scope` parameter. Empty means no scopes.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        s.split(' ')
            .filter(|t| !t.is_empty())
            .map(Scope::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(ScopeSet::from_iter)
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// The scopes of `self` that are not in `other`.
    pub fn missing_from(&self, other: &ScopeSet) -> ScopeSet {
        self.0
            .iter()
            .filter(|s| !other.contains(s))
            .cloned()
            .collect()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes as strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }

    /// The space-delimited form used in `scope` parameters and claims.
    pub fn to_param(&self) -> String {
        self.to_vec().join(" ")
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut out: Vec<Scope> = Vec::new();
        for s in iter {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        ScopeSet(out)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_param())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_drops_trailing_slash_and_inserts_well_known_paths() {
        let root = Issuer::parse("http://127.0.0.1:9000/").unwrap();
        assert_eq!(root.as_str(), "http://127.0.0.1:9000");
        assert_eq!(
            root.well_known("oauth-authorization-server"),
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server"
        );
        let res = root.for_resource(&ResourceId::parse("res_abc").unwrap());
        assert_eq!(
            res.well_known("oauth-authorization-server"),
            "http://127.0.0.1:9000/.well-known/oauth-authorization-server/resources/res_abc"
        );
        assert!(Issuer::parse("ftp://x").is_err());
        assert!(Issuer::parse("https://x/?a=b").is_err());
    }

    #[test]
    fn resource_uri_rules_follow_rfc_8707() {
        assert!(ResourceUri::parse("https://mcp.example.com/mcp").is_ok());
        assert!(ResourceUri::parse("/mcp").is_err());
        assert!(ResourceUri::parse("https://mcp.example.com/mcp#x").is_err());
        assert!(ResourceUri::parse("https://u:p@mcp.example.com/mcp").is_err());
        assert!(ResourceUri::parse("urn:x:y").is_err());
    }

    #[test]
    fn resource_matching_ignores_case_default_port_and_trailing_slash() {
        let r = ResourceUri::parse("https://mcp.example.com/mcp").unwrap();
        assert!(r.matches("HTTPS://MCP.example.com/mcp/"));
        assert!(r.matches("https://mcp.example.com:443/mcp"));
        assert!(!r.matches("https://mcp.example.com/MCP"));
        assert!(!r.matches("https://mcp.example.com/mcp2"));
        assert!(!r.matches("http://mcp.example.com/mcp"));
    }

    #[test]
    fn scopes_parse_per_rfc_6749() {
        let s = ScopeSet::parse("todo:read  todo:write todo:read").unwrap();
        assert_eq!(s.to_param(), "todo:read todo:write");
        assert!(ScopeSet::parse("bad\"quote").is_err());
        assert!(ScopeSet::parse("back\\slash").is_err());
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn ids_are_checked() {
        assert!(ResourceId::parse("res_abc123").is_ok());
        assert!(ResourceId::parse("conn_abc").is_err());
        assert!(ResourceId::parse("res_../x").is_err());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("a\u{7f}").is_err());
        assert!(!ClientId::generate_agent().as_str().starts_with("https://"));
    }
}
