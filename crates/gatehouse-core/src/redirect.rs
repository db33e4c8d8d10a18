//! Redirect URIs: what may be registered (MCP: `https`, or `http` on a loopback host), how a
//! requested URI is matched against the registered ones (OAuth 2.1 §2.3.1: exactly, except
//! the port of a loopback URI), and the one type that may send a browser back to a client.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::OAuthError;
use crate::types::{Issuer, ParseError};

/// Hosts treated as loopback: any port matches (OAuth 2.1 §8.4.2, RFC 8252 §7.3). MCP hosts
/// use `localhost` as often as the IP literals, so it is included (DESIGN.md, "Loopback").
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// A registered redirect URI: absolute, no fragment, no credentials, and either `https` or
/// `http` on a loopback host (MCP security considerations: "localhost or HTTPS").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri {
    raw: String,
    loopback: bool,
}

impl RedirectUri {
    /// Parses a redirect URI offered at registration.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let fail = |why: &str| Err(ParseError(format!("redirect URI `{s}` {why}")));
        if s.contains('#') {
            return fail("must not contain a fragment");
        }
        let Ok(url) = Url::parse(s) else {
            return fail("is not an absolute URL");
        };
        if !url.username().is_empty() || url.password().is_some() {
            return fail("must not contain credentials");
        }
        let loopback = is_loopback(&url);
        match url.scheme() {
            "https" if url.host_str().is_some_and(|h| !h.is_empty()) => {}
            "http" if loopback => {}
            "http" => {
                return fail("must use https unless its host is localhost, 127.0.0.1 or [::1]");
            }
            _ => return fail("must be an https URL or an http URL on localhost"),
        }
        Ok(RedirectUri {
            raw: s.to_owned(),
            loopback,
        })
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `requested` is this URI: byte-for-byte, or for a loopback URI the same apart
    /// from the port (OAuth 2.1 §2.3.1, §8.4.2).
    pub fn matches(&self, requested: &str) -> bool {
        if requested == self.raw {
            return true;
        }
        if !self.loopback || requested.contains('#') {
            return false;
        }
        match (Url::parse(&self.raw), Url::parse(requested)) {
            (Ok(a), Ok(b)) => {
                is_loopback(&b)
                    && b.username().is_empty()
                    && b.password().is_none()
                    && without_port(&a) == without_port(&b)
            }
            _ => false,
        }
    }
}

/// Whether `url`'s host is one of the loopback hosts.
pub fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(|h| LOOPBACK_HOSTS.contains(&h))
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

/// Picks the redirect URI of an authorization request among the client's registered ones.
/// Without `requested`, a client with exactly one registered URI uses it (OAuth 2.1 §4.1.1).
pub fn select<'a>(
    registered: &'a [RedirectUri],
    requested: Option<&'a str>,
) -> Result<&'a str, OAuthError> {
    match requested {
        Some(r) if registered.iter().any(|u| u.matches(r)) => Ok(r),
        Some(_) => Err(OAuthError::invalid_request(
            "redirect_uri is not one of the client's registered redirect URIs",
        )),
        None => match registered {
            [only] => Ok(only.as_str()),
            [] => Err(OAuthError::invalid_request(
                "this client has no redirect URI, so it cannot use the authorization endpoint",
            )),
            _ => Err(OAuthError::invalid_request(
                "redirect_uri is required: the client registered more than one",
            )),
        },
    }
}

/// A redirect back to the client, carrying `state` and `iss` (RFC 9207). Only a redirect URI
/// that passed [`select`] for a verified client can become one, so an error before that point
/// can never redirect (OAuth 2.1 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRedirect {
    uri: String,
    state: Option<String>,
    iss: String,
}

impl ClientRedirect {
    /// Wraps a redirect URI that [`select`] accepted for the client.
    pub(crate) fn verified(uri: &str, state: Option<&str>, issuer: &Issuer) -> Self {
        ClientRedirect {
            uri: uri.to_owned(),
            state: state.map(str::to_owned),
            iss: issuer.as_str().to_owned(),
        }
    }

    /// The redirect URI the client sent (or its only registered one).
    pub fn redirect_uri(&self) -> &str {
        &self.uri
    }

    /// Its host, shown on consent (AS-20), and whether that host is loopback.
    pub fn host(&self) -> (String, bool) {
        match Url::parse(&self.uri) {
            Ok(u) => (u.host_str().unwrap_or_default().to_owned(), is_loopback(&u)),
            Err(_) => (String::new(), false),
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

    #[test]
    fn only_https_or_loopback_http_is_registrable() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://localhost:3399/oauth/callback",
            "http://127.0.0.1:53682/callback",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "http://localhost.evil.com/cb",
            "http://127.0.0.2/cb",
            "https://example.com/cb#frag",
            "https://u:p@example.com/cb",
            "cursor://anysphere/cb",
            "javascript:alert(1)",
            "/relative",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
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
        ] {
            assert!(!lo.matches(bad), "{bad}");
        }
    }

    #[test]
    fn select_needs_a_match_or_a_single_registration() {
        let one = vec![RedirectUri::parse("https://a.example/cb").unwrap()];
        assert_eq!(select(&one, None).unwrap(), "https://a.example/cb");
        assert!(select(&one, Some("https://b.example/cb")).is_err());
        let two = vec![
            one[0].clone(),
            RedirectUri::parse("https://b.example/cb").unwrap(),
        ];
        assert!(select(&two, None).is_err());
        assert!(select(&[], None).is_err());
    }

    #[test]
    fn redirects_carry_state_and_iss() {
        let iss = Issuer::parse("http://127.0.0.1:9000/resources/res_a").unwrap();
        let r = ClientRedirect::verified("http://localhost:1/cb?keep=1", Some("s t"), &iss);
        assert_eq!(
            r.with_code("c"),
            "http://localhost:1/cb?keep=1&code=c&state=s+t&iss=http%3A%2F%2F127.0.0.1%3A9000%2Fresources%2Fres_a"
        );
        let r = ClientRedirect::verified("https://a.example/cb", None, &iss);
        let e = OAuthError::new(crate::ErrorCode::AccessDenied, "no");
        assert!(
            r.with_error(&e)
                .starts_with("https://a.example/cb?error=access_denied&error_description=no&iss=")
        );
    }
}
