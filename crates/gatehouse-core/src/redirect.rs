//! Redirect URIs: what may be registered, how a requested URI is matched against the
//! registered ones, and the one type that may send a browser back to a client.
//!
//! Three kinds (RFC 8252 §7, OAuth 2.1 §2.3.1): `https` for web applications, matched
//! exactly; `http` on a loopback host for native apps, matched on any port; and private-use
//! schemes for native apps (`com.example.app:/cb`, `cursor://anysphere.cursor-mcp/cb`),
//! matched exactly. Some schemes are never redirect URIs, for any client.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::OAuthError;
use crate::types::{Issuer, ParseError};

/// Hosts treated as loopback: any port matches (OAuth 2.1 §8.4.2, RFC 8252 §7.3). MCP hosts
/// use `localhost` as often as the IP literals, so it is included (DESIGN.md, "Loopback").
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Schemes that are never a redirect URI: they run code, read local files, or hand the URL to
/// another program than the client (a server that let `javascript:` through its registration
/// had a stored XSS on its consent page).
const REFUSED_SCHEMES: [&str; 15] = [
    "javascript",
    "vbscript",
    "data",
    "file",
    "about",
    "blob",
    "filesystem",
    "view-source",
    "intent",
    "ftp",
    "ws",
    "wss",
    "mailto",
    "tel",
    "sms",
];

/// What a redirect URI is, which decides how it is matched and who may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedirectKind {
    /// `https`: a web application (or a native app's claimed https URL). Exact match.
    Web,
    /// `http` on `localhost`, `127.0.0.1` or `[::1]`: a native app listening on this device.
    /// Any port matches, also when the registered URI has none.
    Loopback,
    /// A private-use scheme (RFC 8252 §7.1): a native app the operating system opens. Exact
    /// match.
    PrivateUse,
}

/// A registered redirect URI: absolute; no fragment, credentials, whitespace or control
/// characters; `https`, `http` on a loopback host, or a private-use scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri {
    raw: String,
    kind: RedirectKind,
}

impl RedirectUri {
    /// Parses a redirect URI offered at registration or in a metadata document. The error
    /// names the URI and the rule it breaks.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let shown = shown(s);
        let fail = |why: &str| Err(ParseError(format!("redirect URI `{shown}` {why}")));
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("must not contain whitespace or control characters");
        }
        if s.contains('#') {
            return fail("must not contain a fragment (OAuth 2.1 §2.3.1)");
        }
        // URL parsers read `\` as `/` in web URLs: what is matched must be what is meant.
        if s.contains('\\') {
            return fail("must not contain a backslash");
        }
        let Ok(url) = Url::parse(s) else {
            return fail("is not an absolute URI");
        };
        if !url.username().is_empty() || url.password().is_some() {
            return fail("must not contain credentials");
        }
        let scheme = url.scheme();
        // `https:host/x` and `https:///host` parse as `https://host/…`: require the plain form.
        let authority = s
            .get(scheme.len()..)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|rest| !rest.starts_with(['/', '?']));
        let kind = match scheme {
            "https" | "http" if !authority => return fail("has no host"),
            "https" if url.host_str().is_some_and(|h| !h.is_empty()) => RedirectKind::Web,
            "https" => return fail("has no host"),
            "http" if is_loopback(&url) => RedirectKind::Loopback,
            "http" => {
                return fail(
                    "uses http off loopback: use https, or http on localhost, 127.0.0.1 or [::1]",
                );
            }
            s if REFUSED_SCHEMES.contains(&s) => {
                return fail(&format!(
                    "uses the `{s}:` scheme, which is never a redirect URI"
                ));
            }
            // A drive letter (`C:/…`) parses as a one-letter scheme.
            s if s.len() < 2 => return fail("has no valid scheme"),
            _ if url.cannot_be_a_base() => {
                return fail(
                    "uses a private-use scheme without a path: write it as `scheme:/path` or `scheme://host/path` (RFC 8252 §7.1)",
                );
            }
            _ => RedirectKind::PrivateUse,
        };
        Ok(RedirectUri {
            raw: s.to_owned(),
            kind,
        })
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// What kind of URI it is.
    pub fn kind(&self) -> RedirectKind {
        self.kind
    }

    /// Whether `requested` is this URI: byte-for-byte, or for a loopback URI the same apart
    /// from the port (OAuth 2.1 §2.3.1, §8.4.2).
    pub fn matches(&self, requested: &str) -> bool {
        if requested
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return false;
        }
        if requested == self.raw {
            return true;
        }
        if self.kind != RedirectKind::Loopback || requested.contains('#') {
            return false;
        }
        match (Url::parse(&self.raw), Url::parse(requested)) {
            (Ok(a), Ok(b)) => {
                b.scheme() == "http"
                    && is_loopback(&b)
                    && b.username().is_empty()
                    && b.password().is_none()
                    && without_port(&a) == without_port(&b)
            }
            _ => false,
        }
    }
}

/// OpenID Connect DCR §2 `application_type`: `native` apps may use loopback and private-use
/// redirect URIs, `web` applications https ones. Loopback is accepted from a `web` client too,
/// since development servers run there (OAuth 2.1 allows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationType {
    /// Runs on a server, reached over https.
    Web,
    /// Runs on the person's device.
    Native,
}

impl ApplicationType {
    /// Parses the registered name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(ApplicationType::Web),
            "native" => Some(ApplicationType::Native),
            _ => None,
        }
    }

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationType::Web => "web",
            ApplicationType::Native => "native",
        }
    }

    /// The type of a client that `declared` one (or none) and registered `uris`: one that says
    /// nothing is native when one of its URIs is loopback or a private-use scheme. The error
    /// names the URI a web application may not use.
    pub fn of(declared: Option<Self>, uris: &[RedirectUri]) -> Result<Self, String> {
        match declared {
            Some(ApplicationType::Native) => Ok(ApplicationType::Native),
            Some(ApplicationType::Web) => {
                match uris.iter().find(|u| u.kind == RedirectKind::PrivateUse) {
                    Some(u) => Err(format!(
                        "redirect URI `{}` uses a private-use scheme, which only native apps may: register with application_type `native`, or use an https redirect URI",
                        shown(&u.raw)
                    )),
                    None => Ok(ApplicationType::Web),
                }
            }
            None if uris.iter().any(|u| u.kind != RedirectKind::Web) => Ok(ApplicationType::Native),
            None => Ok(ApplicationType::Web),
        }
    }
}

/// Whether `url`'s host is one of the loopback hosts.
pub fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(|h| LOOPBACK_HOSTS.contains(&h))
}

/// At most 200 characters of a hostile string, for an error message.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

fn without_port(url: &Url) -> String {
    let mut u = url.clone();
    // Setting the port of an http URL with a host cannot fail.
    let _ = u.set_port(None);
    u.to_string()
}

impl TryFrom<String> for RedirectUri {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        RedirectUri::parse(&s)
    }
}

impl From<RedirectUri> for String {
    fn from(r: RedirectUri) -> String {
        r.raw
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Picks the redirect URI of an authorization request among the client's registered ones,
/// with the kind of the registered entry it matched. Without `requested`, a client with
/// exactly one registered URI uses it (OAuth 2.1 §4.1.1).
pub fn select<'a>(
    registered: &'a [RedirectUri],
    requested: Option<&'a str>,
) -> Result<(&'a str, RedirectKind), OAuthError> {
    match requested {
        Some(r) => match registered.iter().find(|u| u.matches(r)) {
            Some(u) => Ok((r, u.kind)),
            // Name the rule a malformed URI breaks; otherwise say it is not registered.
            None => Err(OAuthError::invalid_request(match RedirectUri::parse(r) {
                Err(e) => e.0,
                Ok(_) => format!(
                    "redirect_uri `{}` is not one of the client's registered redirect URIs",
                    shown(r)
                ),
            })),
        },
        None => match registered {
            [only] => Ok((only.as_str(), only.kind)),
            [] => Err(OAuthError::invalid_request(
                "this client has no redirect URI, so it cannot use the authorization endpoint",
            )),
            _ => Err(OAuthError::invalid_request(
                "redirect_uri is required: the client registered more than one",
            )),
        },
    }
}

/// Where the browser goes back to, as the consent page names it (AS-20, CIMD-14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A web site, by host name.
    Web(String),
    /// A program listening on this device (`localhost`, `127.0.0.1`, `[::1]`).
    Loopback(String),
    /// An application on this device that the operating system opens by its scheme.
    App(String),
}

/// A redirect back to the client, carrying `state` and `iss` (RFC 9207). Only a redirect URI
/// that passed [`select`] for a verified client can become one, so an error before that point
/// can never redirect (OAuth 2.1 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirect {
    uri: String,
    kind: RedirectKind,
    state: Option<String>,
    iss: String,
}

impl ClientRedirect {
    /// Wraps a redirect URI that [`select`] accepted for the client.
    pub(crate) fn verified(
        uri: &str,
        kind: RedirectKind,
        state: Option<&str>,
        issuer: &Issuer,
    ) -> Self {
        ClientRedirect {
            uri: uri.to_owned(),
            kind,
            state: state.map(str::to_owned),
            iss: issuer.as_str().to_owned(),
        }
    }

    /// The redirect URI the client sent (or its only registered one).
    pub fn redirect_uri(&self) -> &str {
        &self.uri
    }

    /// What kind of registered URI it matched.
    pub fn kind(&self) -> RedirectKind {
        self.kind
    }

    /// Where it sends the browser, for the consent page (AS-20).
    pub fn destination(&self) -> Destination {
        let url = Url::parse(&self.uri).ok();
        let host = || {
            url.as_ref()
                .and_then(|u| u.host_str())
                .unwrap_or_default()
                .to_owned()
        };
        match self.kind {
            RedirectKind::Web => Destination::Web(host()),
            RedirectKind::Loopback => Destination::Loopback(host()),
            RedirectKind::PrivateUse => {
                Destination::App(url.map(|u| u.scheme().to_owned()).unwrap_or_default())
            }
        }
    }

    /// The URL carrying a successful response.
    pub fn with_code(&self, code: &str) -> String {
        self.build(&[("code", code)])
    }

    /// The URL carrying an error response (RFC 6749 §4.1.2.1).
    pub fn with_error(&self, e: &OAuthError) -> String {
        self.build(&[
            ("error", e.code.as_str()),
            ("error_description", &e.description),
        ])
    }

    fn build(&self, params: &[(&str, &str)]) -> String {
        let mut url = self.uri.clone();
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(state) = &self.state {
            q.append_pair("state", state);
        }
        // RFC 9207 §2: `iss` in every authorization response, success and error alike.
        q.append_pair("iss", &self.iss);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&q.finish());
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> RedirectKind {
        RedirectUri::parse(s).unwrap().kind()
    }

    #[test]
    fn what_hosts_send_is_registrable_with_its_kind() {
        for (uri, k) in [
            ("https://claude.ai/api/mcp/auth_callback", RedirectKind::Web),
            ("https://localhost:8443/cb", RedirectKind::Web),
            (
                "http://localhost:3399/oauth/callback",
                RedirectKind::Loopback,
            ),
            ("http://127.0.0.1:53682/callback", RedirectKind::Loopback),
            ("http://[::1]:8080/cb", RedirectKind::Loopback),
            ("http://localhost/callback", RedirectKind::Loopback),
            ("http://127.0.0.1/", RedirectKind::Loopback),
            (
                "cursor://anysphere.cursor-mcp/oauth/callback",
                RedirectKind::PrivateUse,
            ),
            (
                "claude://claude.ai/mcp-auth-callback/sdk",
                RedirectKind::PrivateUse,
            ),
            (
                "vscode://vscode.github-authentication/did-authenticate",
                RedirectKind::PrivateUse,
            ),
            ("com.example.app:/oauth2redirect", RedirectKind::PrivateUse),
        ] {
            assert_eq!(kind(uri), k, "{uri}");
        }
    }

    #[test]
    fn refused_uris_name_their_rule() {
        for (bad, rule) in [
            ("http://example.com/cb", "http off loopback"),
            ("http://localhost.evil.com/cb", "http off loopback"),
            ("http://127.0.0.2/cb", "http off loopback"),
            ("https://example.com/cb#frag", "fragment"),
            ("https://u:p@example.com/cb", "credentials"),
            ("cursor://user@anysphere/cb", "credentials"),
            ("javascript:alert(1)", "`javascript:`"),
            ("JavaScript://%0aalert(1)", "`javascript:`"),
            ("data:text/html,<script>1</script>", "`data:`"),
            ("file:///etc/passwd", "`file:`"),
            ("vbscript:msgbox", "`vbscript:`"),
            ("about:blank", "`about:`"),
            ("blob:https://a.example/uuid", "`blob:`"),
            ("intent://scan/#Intent;scheme=zxing;end", "fragment"),
            ("intent://scan/", "`intent:`"),
            ("https://a.example/c b", "whitespace"),
            ("https://a.example/cb\t", "https://a.example/cb"),
            ("https://a.example/c\tb", "whitespace"),
            ("https://a.example/c\nb", "whitespace"),
            (" https://a.example/cb", "whitespace"),
            ("https://a.example/cb\u{7f}", "control"),
            ("https://a.example/cb\u{a0}", "whitespace"),
            ("myapp:callback", "without a path"),
            ("C:/Windows/cb", "no valid scheme"),
            ("https:///cb", "no host"),
            ("https:evil.example/cb", "no host"),
            ("http:/localhost/cb", "no host"),
            ("https:\\\\evil.example\\cb", "backslash"),
            ("http://127.0.0.1\\@evil.example/cb", "backslash"),
            ("/relative", "absolute"),
            ("", "absolute"),
        ] {
            let e = RedirectUri::parse(bad).expect_err(bad).0;
            assert!(e.contains(rule), "{bad:?}: {e}");
        }
    }

    #[test]
    fn long_hostile_uris_are_shortened_in_messages() {
        let e = RedirectUri::parse(&format!("javascript:{}", "a".repeat(5000)))
            .unwrap_err()
            .0;
        assert!(e.len() < 400, "{e}");
    }

    #[test]
    fn matching_is_exact_except_the_loopback_port() {
        let web = RedirectUri::parse("https://app.example/cb").unwrap();
        assert!(web.matches("https://app.example/cb"));
        for bad in [
            "https://app.example/cb/",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "https://app.example/cb?x=1",
            "https://app.example:8443/cb",
        ] {
            assert!(!web.matches(bad), "{bad}");
        }
        let lo = RedirectUri::parse("http://127.0.0.1:1/callback").unwrap();
        assert!(lo.matches("http://127.0.0.1:53682/callback"));
        assert!(lo.matches("http://127.0.0.1/callback"));
        for bad in [
            "http://localhost:53682/callback",
            "http://127.0.0.1:53682/other",
            "https://127.0.0.1:53682/callback",
            "http://127.0.0.1:53682/callback#x",
            "http://u@127.0.0.1:53682/callback",
            "http://127.0.0.1:53682/callback?x",
            "http://127.0.0.1:53682/call\tback",
        ] {
            assert!(!lo.matches(bad), "{bad}");
        }
        // Claude Code's document lists port-less loopback URIs and then sends one with a port.
        let portless = RedirectUri::parse("http://localhost/callback").unwrap();
        assert!(portless.matches("http://localhost:49152/callback"));
        assert!(!portless.matches("http://localhost:49152/callback/x"));
        // Private-use schemes match exactly, whatever their host or port.
        let app = RedirectUri::parse("cursor://anysphere.cursor-mcp/oauth/callback").unwrap();
        assert!(app.matches("cursor://anysphere.cursor-mcp/oauth/callback"));
        for bad in [
            "cursor://anysphere.cursor-mcp:1/oauth/callback",
            "cursor://anysphere.cursor-mcp/oauth/callback/",
            "Cursor://anysphere.cursor-mcp/oauth/callback",
            "cursor://evil/oauth/callback",
        ] {
            assert!(!app.matches(bad), "{bad}");
        }
    }

    #[test]
    fn select_needs_a_match_or_a_single_registration() {
        let one = vec![RedirectUri::parse("https://a.example/cb").unwrap()];
        assert_eq!(
            select(&one, None).unwrap(),
            ("https://a.example/cb", RedirectKind::Web)
        );
        let e = select(&one, Some("https://b.example/cb")).unwrap_err();
        assert!(e.description.contains("not one of"), "{}", e.description);
        let e = select(&one, Some("javascript:alert(1)")).unwrap_err();
        assert!(
            e.description.contains("never a redirect URI"),
            "{}",
            e.description
        );
        let two = vec![
            one[0].clone(),
            RedirectUri::parse("https://b.example/cb").unwrap(),
        ];
        assert!(select(&two, None).is_err());
        assert!(select(&[], None).is_err());
        let lo = vec![RedirectUri::parse("http://127.0.0.1/").unwrap()];
        assert_eq!(
            select(&lo, Some("http://127.0.0.1:33418/")).unwrap(),
            ("http://127.0.0.1:33418/", RedirectKind::Loopback)
        );
    }

    #[test]
    fn destinations_name_the_host_or_the_app() {
        let iss = Issuer::parse("http://127.0.0.1:9000").unwrap();
        let d = |uri: &str, k| ClientRedirect::verified(uri, k, None, &iss).destination();
        assert_eq!(
            d("https://claude.ai/api/mcp/auth_callback", RedirectKind::Web),
            Destination::Web("claude.ai".into())
        );
        assert_eq!(
            d("http://127.0.0.1:5/cb", RedirectKind::Loopback),
            Destination::Loopback("127.0.0.1".into())
        );
        assert_eq!(
            d(
                "cursor://anysphere.cursor-mcp/oauth/callback",
                RedirectKind::PrivateUse
            ),
            Destination::App("cursor".into())
        );
    }

    #[test]
    fn redirects_carry_state_and_iss() {
        let iss = Issuer::parse("http://127.0.0.1:9000/resources/res_a").unwrap();
        let r = ClientRedirect::verified(
            "http://localhost:1/cb?keep=1",
            RedirectKind::Loopback,
            Some("s t"),
            &iss,
        );
        assert_eq!(
            r.with_code("c"),
            "http://localhost:1/cb?keep=1&code=c&state=s+t&iss=http%3A%2F%2F127.0.0.1%3A9000%2Fresources%2Fres_a"
        );
        let r = ClientRedirect::verified("https://a.example/cb", RedirectKind::Web, None, &iss);
        let e = OAuthError::new(crate::ErrorCode::AccessDenied, "no");
        assert!(
            r.with_error(&e)
                .starts_with("https://a.example/cb?error=access_denied&error_description=no&iss=")
        );
        // A private-use redirect carries the response the same way.
        let r = ClientRedirect::verified(
            "com.example.app:/cb",
            RedirectKind::PrivateUse,
            Some("x"),
            &iss,
        );
        assert!(
            r.with_code("c")
                .starts_with("com.example.app:/cb?code=c&state=x&iss=")
        );
    }
}
