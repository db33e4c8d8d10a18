//! How people sign in: the methods an operator turns on, and connections to other systems
//! that sign people in for Gatehouse.
//!
//! A method is a password, an email code, a passkey, or a connection (`conn_…`). The operator
//! turns the built-in methods on or off for every MCP server ([`SignInPolicy`]); every enabled
//! connection is offered too. An MCP server can instead name exactly the methods it offers
//! ([`crate::Resource::sign_in_methods`]). A session remembers the method it was started
//! with, and authorization refuses a session whose method the MCP server does not offer.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::model::{Resource, display_name, normalize_email};
use crate::secret::SecretHash;
use crate::types::{ConnectionId, Issuer, LoginRequestId, ParseError, ResourceId, UserId};

/// A way to sign in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// Email and password.
    Password,
    /// A one-time code (or link) sent by email.
    EmailCode,
    /// A WebAuthn passkey.
    Passkey,
    /// Another system, through a connection.
    Connection(ConnectionId),
}

impl Method {
    /// Parses `password`, `email_code`, `passkey` or a connection id.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "password" => Ok(Method::Password),
            "email_code" => Ok(Method::EmailCode),
            "passkey" => Ok(Method::Passkey),
            other if other.starts_with("conn_") => {
                ConnectionId::parse(other).map(Method::Connection)
            }
            other => Err(ParseError(format!(
                "`{other}` is not a sign-in method (password, email_code, passkey or a connection id conn_…)"
            ))),
        }
    }

    /// The name as stored and typed.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Password => "password",
            Method::EmailCode => "email_code",
            Method::Passkey => "passkey",
            Method::Connection(id) => id.as_str(),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Method::parse(&s).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// Parses a list of methods, refusing duplicates and an empty list (nobody could sign in).
pub fn parse_methods<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Method>, ParseError> {
    let mut out: Vec<Method> = Vec::new();
    for n in names {
        let m = Method::parse(n.trim())?;
        if out.contains(&m) {
            return Err(ParseError(format!("sign-in method `{m}` is given twice")));
        }
        out.push(m);
    }
    if out.is_empty() {
        return Err(ParseError(
            "give at least one sign-in method, or none at all to use the defaults".into(),
        ));
    }
    Ok(out)
}

/// Which built-in methods every MCP server offers unless it names its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInPolicy {
    pub password: bool,
    pub email_code: bool,
    pub passkey: bool,
}

impl Default for SignInPolicy {
    /// Passwords and passkeys; email codes too, when email delivery is configured.
    fn default() -> Self {
        SignInPolicy {
            password: true,
            email_code: true,
            passkey: true,
        }
    }
}

/// A connection: another system that signs people in for Gatehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `conn_…`
    pub id: ConnectionId,
    /// Shown on the sign-in button ("Continue with {name}").
    pub name: String,
    /// What it connects to.
    pub kind: ConnectionKind,
    /// When not empty, only people whose email is in one of these domains may sign in.
    pub allowed_domains: Vec<String>,
    /// Whether it is offered. A disabled connection accepts no sign-in.
    pub enabled: bool,
    pub created_at: UnixTime,
}

/// What a connection connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionKind {
    /// Bring your own auth: the owner's login page signs the person in and its backend sends
    /// their claims to Gatehouse.
    Federated {
        /// Where the browser is sent, with `login_request_id` and `state`.
        login_url: String,
    },
    /// An upstream OpenID Connect provider (Google, Microsoft Entra ID, Okta, any other):
    /// authorization code with PKCE, and its ID token checked.
    Oidc {
        /// The provider's issuer: discovery is at `{issuer}/.well-known/openid-configuration`.
        issuer: String,
        /// Gatehouse's client id at the provider.
        client_id: String,
        /// Gatehouse's client secret at the provider; empty for a public client (PKCE only).
        /// Never shown back.
        #[serde(default)]
        client_secret: String,
        /// Scopes asked for; always has `openid`.
        scopes: Vec<String>,
    },
    /// GitHub or a GitHub Enterprise Server: plain OAuth 2 (authorization code with PKCE),
    /// then its user API says who signed in. GitHub has no ID token.
    Github {
        /// `https://github.com`, or the Enterprise Server's URL.
        base_url: String,
        /// The OAuth app's client id.
        client_id: String,
        /// The OAuth app's client secret (GitHub requires one). Never shown back.
        client_secret: String,
    },
}

impl ConnectionKind {
    /// The kind's name, as in the admin API.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionKind::Federated { .. } => "federated",
            ConnectionKind::Oidc { .. } => "oidc",
            ConnectionKind::Github { .. } => "github",
        }
    }

    /// Whether the browser goes to an identity provider that sends it back to
    /// `/sso/v1/connections/{id}/callback` with a code (OpenID Connect, GitHub).
    pub fn is_provider(&self) -> bool {
        !matches!(self, ConnectionKind::Federated { .. })
    }

    /// The client secret at the provider, if this kind has one, to replace it.
    pub fn client_secret_mut(&mut self) -> Option<&mut String> {
        match self {
            ConnectionKind::Federated { .. } => None,
            ConnectionKind::Oidc { client_secret, .. }
            | ConnectionKind::Github { client_secret, .. } => Some(client_secret),
        }
    }
}

impl ConnectionKind {
    /// A connection to the identity provider `preset` names (with `tenant`: the Entra
    /// tenant, the Okta domain, or a GitHub Enterprise Server), or to the OpenID Connect
    /// provider at `issuer`. The `github` preset makes a [`ConnectionKind::Github`].
    pub fn provider(
        preset: Option<&str>,
        tenant: Option<&str>,
        issuer: Option<&str>,
        client_id: &str,
        client_secret: &str,
        scopes: Vec<String>,
    ) -> Result<ConnectionKind, ParseError> {
        let issuer = match (preset, issuer) {
            (Some(_), Some(_)) => {
                return Err(ParseError(
                    "give a preset or an issuer URL, not both".into(),
                ));
            }
            (Some(p), None) => match Preset::parse(p)? {
                Preset::Github => {
                    if !scopes.is_empty() {
                        return Err(ParseError(format!(
                            "GitHub connections always ask for `{GITHUB_SCOPES}`: give no scopes"
                        )));
                    }
                    return check_kind(ConnectionKind::Github {
                        base_url: github_base_url(tenant)?,
                        client_id: client_id.to_owned(),
                        client_secret: client_secret.to_owned(),
                    });
                }
                oidc => oidc.issuer(tenant)?,
            },
            (None, Some(i)) => i.to_owned(),
            (None, None) => {
                return Err(ParseError(
                    "give the provider's issuer URL, or a preset (google, entra, okta, github)"
                        .into(),
                ));
            }
        };
        check_kind(ConnectionKind::Oidc {
            issuer,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            scopes,
        })
    }
}

/// Scopes asked of an OpenID Connect provider when none are given.
pub const DEFAULT_OIDC_SCOPES: [&str; 3] = ["openid", "email", "profile"];

/// What a GitHub connection asks for: the profile and the email addresses, to find the
/// primary verified one.
pub const GITHUB_SCOPES: &str = "read:user user:email";

/// `https://github.com`, or the GitHub Enterprise Server at `tenant` (a host name, or a
/// URL: `https://github.example.com`).
fn github_base_url(tenant: Option<&str>) -> Result<String, ParseError> {
    let Some(t) = tenant.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok("https://github.com".into());
    };
    let url = if t.contains("://") {
        t.to_owned()
    } else {
        format!("https://{t}")
    };
    let u = web_url(&url, "the GitHub Enterprise Server URL")?;
    let parsed = url::Url::parse(&u).map_err(|e| ParseError(e.to_string()))?;
    if parsed.path() != "/" || parsed.query().is_some() {
        return Err(ParseError(
            "give the GitHub Enterprise Server's address alone, like https://github.example.com"
                .into(),
        ));
    }
    Ok(u.trim_end_matches('/').to_owned())
}

/// Well-known identity providers: OpenID Connect ones, with the issuer each implies, and
/// GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `https://accounts.google.com`.
    Google,
    /// `https://login.microsoftonline.com/{tenant id}/v2.0`.
    Entra,
    /// `https://{your Okta domain}` (the org authorization server).
    Okta,
    /// GitHub, or a GitHub Enterprise Server: not OpenID Connect (see
    /// [`ConnectionKind::Github`]).
    Github,
}

impl Preset {
    /// Parses `google`, `entra` (or `microsoft`), `okta` or `github`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_lowercase().as_str() {
            "google" => Ok(Preset::Google),
            "entra" | "microsoft" | "azure" => Ok(Preset::Entra),
            "okta" => Ok(Preset::Okta),
            "github" => Ok(Preset::Github),
            other => Err(ParseError(format!(
                "`{other}` is not a preset (google, entra, okta, github); for any other OpenID Connect provider give its issuer URL"
            ))),
        }
    }

    /// The OpenID Connect issuer for this preset; `tenant` is the Entra tenant id or the
    /// Okta domain. GitHub has none.
    pub fn issuer(self, tenant: Option<&str>) -> Result<String, ParseError> {
        let tenant = tenant.map(str::trim).filter(|t| !t.is_empty());
        let host_like = |t: &str| {
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        match (self, tenant) {
            (Preset::Google, _) => Ok("https://accounts.google.com".into()),
            (Preset::Entra, Some("common" | "organizations" | "consumers")) => {
                Err(ParseError(
                    "give your Entra tenant id (a GUID) or domain: the multi-tenant endpoints (common, organizations, consumers) have no single issuer to check ID tokens against".into(),
                ))
            }
            (Preset::Entra, Some(t)) if host_like(t) => Ok(format!(
                "https://login.microsoftonline.com/{t}/v2.0"
            )),
            (Preset::Okta, Some(t)) if host_like(t) && t.contains('.') => {
                Ok(format!("https://{t}"))
            }
            (Preset::Entra, _) => Err(ParseError(
                "the entra preset needs your tenant id (--tenant)".into(),
            )),
            (Preset::Okta, _) => Err(ParseError(
                "the okta preset needs your Okta domain, e.g. acme.okta.com (--tenant)".into(),
            )),
            (Preset::Github, _) => Err(ParseError(
                "GitHub is not an OpenID Connect provider: it has no issuer".into(),
            )),
        }
    }
}

/// What an operator gives to add a connection.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub name: String,
    pub kind: ConnectionKind,
    pub allowed_domains: Vec<String>,
}

impl Connection {
    /// Validates `new` and gives it a fresh id. It is enabled.
    pub fn create(new: NewConnection, now: UnixTime) -> Result<Connection, ParseError> {
        Ok(Connection {
            id: ConnectionId::generate(),
            name: display_name(&new.name)?,
            kind: check_kind(new.kind)?,
            allowed_domains: email_domains(new.allowed_domains)?,
            enabled: true,
            created_at: now,
        })
    }

    /// Where the owner's backend posts the person's claims (bring your own auth), with the
    /// literal placeholder `{login_request_id}`.
    pub fn auth_request_url(&self, public: &Issuer) -> String {
        public.join(&format!(
            "/api/v1/connections/{}/auth-requests/{{login_request_id}}/user",
            self.id
        ))
    }

    /// Where the browser comes back: for bring your own auth the owner's login page sends
    /// it there with `?state=…`; an OpenID Connect provider redirects there (its redirect
    /// URI, to register at the provider).
    pub fn callback_url(&self, public: &Issuer) -> String {
        match self.kind {
            ConnectionKind::Federated { .. } => {
                public.join(&format!("/sso/v1/connections/{}/partner:callback", self.id))
            }
            ConnectionKind::Oidc { .. } | ConnectionKind::Github { .. } => {
                public.join(&format!("/sso/v1/connections/{}/callback", self.id))
            }
        }
    }

    /// Whether a person with `email` may sign in through it.
    pub fn allows_email(&self, email: &str) -> bool {
        self.allowed_domains.is_empty()
            || email
                .rsplit_once('@')
                .is_some_and(|(_, d)| self.allowed_domains.iter().any(|a| a == d))
    }
}

/// Checks a connection's settings.
pub fn check_kind(kind: ConnectionKind) -> Result<ConnectionKind, ParseError> {
    match kind {
        ConnectionKind::Federated { login_url } => Ok(ConnectionKind::Federated {
            login_url: web_url(&login_url, "the login URL")?,
        }),
        ConnectionKind::Oidc {
            issuer,
            client_id,
            client_secret,
            scopes,
        } => {
            // Kept as typed: the ID token's `iss` must match it exactly (some providers
            // end theirs with a slash, most do not).
            let issuer = issuer.trim().to_owned();
            web_url(&issuer, "the issuer")?;
            if issuer.contains('?') {
                return Err(ParseError("the issuer must not have a ?query".into()));
            }
            let mut out = vec!["openid".to_owned()];
            let given: Vec<String> = if scopes.is_empty() {
                DEFAULT_OIDC_SCOPES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            } else {
                scopes
            };
            for scope in given {
                let scope = scope.trim().to_owned();
                let ok = !scope.is_empty()
                    && scope
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
                if !ok {
                    return Err(ParseError(format!("`{scope}` is not a scope")));
                }
                if !out.contains(&scope) {
                    out.push(scope);
                }
            }
            Ok(ConnectionKind::Oidc {
                issuer,
                client_id: provider_client_id(&client_id)?,
                client_secret: provider_client_secret(client_secret)?,
                scopes: out,
            })
        }
        ConnectionKind::Github {
            base_url,
            client_id,
            client_secret,
        } => {
            if client_secret.is_empty() {
                return Err(ParseError(
                    "give the client secret of the GitHub OAuth app: GitHub requires one".into(),
                ));
            }
            Ok(ConnectionKind::Github {
                base_url: github_base_url(Some(&base_url))?,
                client_id: provider_client_id(&client_id)?,
                client_secret: provider_client_secret(client_secret)?,
            })
        }
    }
}

fn provider_client_id(client_id: &str) -> Result<String, ParseError> {
    let client_id = client_id.trim();
    if client_id.is_empty() || client_id.len() > 512 {
        return Err(ParseError(
            "give the client id Gatehouse has at the provider".into(),
        ));
    }
    Ok(client_id.to_owned())
}

fn provider_client_secret(client_secret: String) -> Result<String, ParseError> {
    if client_secret.len() > 1024 {
        return Err(ParseError("the client secret is too long".into()));
    }
    Ok(client_secret)
}

/// An `https` URL, or `http` on a loopback host (for development), without a fragment.
fn web_url(raw: &str, what: &str) -> Result<String, ParseError> {
    let u = url::Url::parse(raw.trim())
        .map_err(|e| ParseError(format!("{what} `{raw}` is not a URL: {e}")))?;
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let ok_scheme = u.scheme() == "https" || (u.scheme() == "http" && loopback);
    if !ok_scheme {
        return Err(ParseError(format!(
            "{what} must be https (http only on localhost, 127.0.0.1 or [::1])"
        )));
    }
    if u.fragment().is_some() {
        return Err(ParseError(format!("{what} must not have a #fragment")));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ParseError(format!(
            "{what} must not carry a user name or password"
        )));
    }
    Ok(u.to_string())
}

/// Lower-cased email domains, checked: `example.com`, not `@example.com` or a URL.
pub fn email_domains(domains: Vec<String>) -> Result<Vec<String>, ParseError> {
    let mut out: Vec<String> = Vec::new();
    for d in domains {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(ParseError(format!(
                "`{d}` is not an email domain like example.com"
            )));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Which built-in methods this Gatehouse can offer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    /// Email codes need email delivery to be configured.
    pub email_code: bool,
    /// Passkeys need a public URL that can be a WebAuthn relying party
    /// ([`crate::passkey::relying_party`]).
    pub passkey: bool,
}

/// The methods offered for `resource` (or, with none, for any MCP server), in order:
/// the built-in methods, then the connections. Methods that are not available and
/// disabled or removed connections are left out.
pub fn offered(
    resource: Option<&Resource>,
    policy: &SignInPolicy,
    connections: &[Connection],
    available: Available,
) -> Vec<Method> {
    let usable = |m: &Method| match m {
        Method::EmailCode => available.email_code,
        Method::Passkey => available.passkey,
        Method::Connection(id) => connections.iter().any(|c| &c.id == id && c.enabled),
        Method::Password => true,
    };
    match resource.and_then(|r| r.sign_in_methods.as_ref()) {
        Some(chosen) => chosen.iter().filter(|m| usable(m)).cloned().collect(),
        None => {
            let mut out = Vec::new();
            if policy.password {
                out.push(Method::Password);
            }
            if policy.email_code && available.email_code {
                out.push(Method::EmailCode);
            }
            if policy.passkey && available.passkey {
                out.push(Method::Passkey);
            }
            out.extend(
                connections
                    .iter()
                    .filter(|c| c.enabled)
                    .map(|c| Method::Connection(c.id.clone())),
            );
            out
        }
    }
}

/// How long a person has to finish signing in through a connection.
pub const LOGIN_REQUEST_TTL: i64 = 600;

/// One sign-in through a connection, from the redirect to the other system until the
/// browser comes back. Its `state` and the browser's binding cookie are stored only as
/// hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    pub id: LoginRequestId,
    pub connection: ConnectionId,
    /// Hash of the `state` sent to the other system.
    pub state_hash: SecretHash,
    /// Hash of the secret in the cookie of the browser that started it.
    pub browser_hash: SecretHash,
    /// Where the browser goes once signed in (an authorization request), or empty.
    pub return_to: String,
    /// The MCP server the sign-in is for, when known.
    pub server: Option<ResourceId>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Who the other system says signed in, once it has said so.
    pub profile: Option<Profile>,
    /// When the browser came back and the request was used.
    pub used_at: Option<UnixTime>,
}

/// Who another system says signed in: its subject, email and the other OpenID Connect
/// standard claims it sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The other system's stable id for the person (`sub`).
    pub subject: String,
    /// Their email, normalised.
    pub email: String,
    /// Whether the other system vouches that the email is theirs.
    pub email_verified: bool,
    /// Every claim as sent (`name`, `given_name`, `picture`, `locale`, …).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// The most claims JSON accepted from another system.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;

impl Profile {
    /// Reads OpenID Connect standard claims: `sub` and `email` are required, `email_verified`
    /// is a boolean (or the strings `"true"`/`"false"` some systems send).
    pub fn from_claims(
        claims: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Profile, ParseError> {
        use serde_json::Value;
        let subject = match claims.get("sub") {
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(ParseError(
                    "`sub` must be a non-empty string of at most 255 characters".into(),
                ));
            }
            None => {
                return Err(ParseError(
                    "`sub` is missing: send the person's stable id in your system".into(),
                ));
            }
        };
        let email = match claims.get("email") {
            Some(Value::String(s)) => normalize_email(s)?,
            Some(_) => return Err(ParseError("`email` must be a string".into())),
            None => {
                return Err(ParseError(
                    "`email` is missing: Gatehouse needs the person's email address".into(),
                ));
            }
        };
        let email_verified = match claims.get("email_verified") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" => true,
            Some(Value::String(s)) if s == "false" => false,
            Some(_) => return Err(ParseError("`email_verified` must be true or false".into())),
        };
        Ok(Profile {
            subject,
            email,
            email_verified,
            claims,
        })
    }

    /// The person's display name, if the other system sent one.
    pub fn name(&self) -> Option<&str> {
        self.claims.get("name").and_then(|v| v.as_str())
    }
}

/// A person's account in another system, linked to their Gatehouse account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub connection: ConnectionId,
    /// The other system's `sub`.
    pub subject: String,
    pub user: UserId,
    /// The claims it last sent.
    pub profile: Profile,
    pub created_at: UnixTime,
    pub last_used_at: UnixTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn methods_parse_and_name_the_mistake() {
        assert_eq!(Method::parse("password").unwrap(), Method::Password);
        assert_eq!(Method::parse("conn_abc").unwrap().as_str(), "conn_abc");
        assert!(
            Method::parse("sms")
                .unwrap_err()
                .0
                .contains("not a sign-in method")
        );
        assert!(parse_methods(["password", "password"]).is_err());
        assert!(parse_methods([]).is_err());
        let e = ConnectionId::parse("res_abc").unwrap_err().0;
        assert!(e.contains("MCP server id"), "{e}");
    }

    #[test]
    fn profiles_need_a_subject_and_an_email() {
        let p = Profile::from_claims(claims(json!({
            "sub": "1234", "email": " Alice@Example.com", "email_verified": true, "name": "Alice"
        })))
        .unwrap();
        assert_eq!(p.subject, "1234");
        assert_eq!(p.email, "alice@example.com");
        assert!(p.email_verified);
        assert_eq!(p.name(), Some("Alice"));
        assert!(
            !Profile::from_claims(claims(json!({"sub": 7, "email": "a@b.c"})))
                .unwrap()
                .email_verified
        );
        assert!(
            Profile::from_claims(claims(json!({"email": "a@b.c"})))
                .unwrap_err()
                .0
                .contains("`sub` is missing")
        );
        assert!(
            Profile::from_claims(claims(json!({"sub": "x"})))
                .unwrap_err()
                .0
                .contains("`email` is missing")
        );
        assert!(Profile::from_claims(claims(json!({"sub": "x", "email": "nope"}))).is_err());
        assert!(
            Profile::from_claims(claims(
                json!({"sub": "x", "email": "a@b.c", "email_verified": "yes"})
            ))
            .is_err()
        );
    }

    #[test]
    fn connections_check_their_urls_and_domains() {
        let new = |url: &str, domains: &[&str]| NewConnection {
            name: "Acme".into(),
            kind: ConnectionKind::Federated {
                login_url: url.into(),
            },
            allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
        };
        let c = Connection::create(
            new("https://acme.example/login", &["@Example.com"]),
            UnixTime(1),
        )
        .unwrap();
        assert!(c.id.as_str().starts_with("conn_"));
        assert_eq!(c.allowed_domains, ["example.com"]);
        assert!(c.allows_email("bob@example.com"));
        assert!(!c.allows_email("bob@evil-example.com"));
        assert!(Connection::create(new("http://127.0.0.1:9/login", &[]), UnixTime(1)).is_ok());
        assert!(Connection::create(new("http://acme.example/login", &[]), UnixTime(1)).is_err());
        assert!(Connection::create(new("https://acme.example/login#x", &[]), UnixTime(1)).is_err());
        assert!(
            Connection::create(
                new("https://acme.example/", &["https://x.com"]),
                UnixTime(1)
            )
            .is_err()
        );
    }

    #[test]
    fn offered_methods_follow_the_policy_or_the_servers_own_list() {
        let mk = |name: &str, enabled: bool| Connection {
            enabled,
            ..Connection::create(
                NewConnection {
                    name: name.into(),
                    kind: ConnectionKind::Federated {
                        login_url: "https://login.example/".into(),
                    },
                    allowed_domains: vec![],
                },
                UnixTime(1),
            )
            .unwrap()
        };
        let on = mk("On", true);
        let off = mk("Off", false);
        let conns = vec![on.clone(), off.clone()];
        let all = SignInPolicy::default();
        let none = Available {
            email_code: false,
            passkey: false,
        };
        assert_eq!(
            offered(None, &all, &conns, none),
            [Method::Password, Method::Connection(on.id.clone())],
            "no email delivery, no passkeys, no disabled connection"
        );
        let both = Available {
            email_code: true,
            passkey: true,
        };
        assert_eq!(
            offered(None, &all, &conns, both),
            [
                Method::Password,
                Method::EmailCode,
                Method::Passkey,
                Method::Connection(on.id.clone())
            ]
        );
        let mut server = crate::contract::resource("https://a.example/mcp");
        server.sign_in_methods = Some(vec![
            Method::Connection(off.id.clone()),
            Method::Connection(on.id.clone()),
            Method::Passkey,
            Method::Password,
        ]);
        let policy_off = SignInPolicy {
            password: false,
            email_code: false,
            passkey: false,
        };
        assert_eq!(
            offered(Some(&server), &policy_off, &conns, none),
            [Method::Connection(on.id.clone()), Method::Password],
            "its own list, in its order, whatever the defaults"
        );
    }
}

#[cfg(test)]
mod oidc_tests {
    use super::*;

    #[test]
    fn oidc_connections_take_a_preset_or_an_issuer() {
        let k = ConnectionKind::provider(Some("google"), None, None, " abc ", "s", vec![]).unwrap();
        assert_eq!(
            k,
            ConnectionKind::Oidc {
                issuer: "https://accounts.google.com".into(),
                client_id: "abc".into(),
                client_secret: "s".into(),
                scopes: vec!["openid".into(), "email".into(), "profile".into()],
            }
        );
        let entra = ConnectionKind::provider(
            Some("entra"),
            Some("contoso.onmicrosoft.com"),
            None,
            "a",
            "",
            vec!["email".into()],
        )
        .unwrap();
        let ConnectionKind::Oidc { issuer, scopes, .. } = entra else {
            unreachable!()
        };
        assert_eq!(
            issuer,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
        );
        assert_eq!(scopes, ["openid", "email"]);
        // The issuer is kept as typed: some end with a slash.
        let auth0 =
            ConnectionKind::provider(None, None, Some("https://acme.auth0.com/"), "a", "", vec![])
                .unwrap();
        assert!(
            matches!(auth0, ConnectionKind::Oidc { issuer, .. } if issuer == "https://acme.auth0.com/")
        );
        for (preset, tenant, issuer, says) in [
            (Some("entra"), Some("common"), None, "multi-tenant"),
            (Some("entra"), None, None, "tenant id"),
            (Some("okta"), None, None, "Okta domain"),
            (Some("gitlab"), None, None, "not a preset"),
            (Some("github"), None, None, "client secret"),
            (Some("github"), Some("http://ghe.example"), None, "https"),
            (
                Some("github"),
                Some("https://ghe.example/org"),
                None,
                "address alone",
            ),
            (Some("google"), None, Some("https://x.example"), "not both"),
            (None, None, None, "issuer URL"),
            (None, None, Some("http://idp.example"), "https"),
            (None, None, Some("https://idp.example/?tenant=1"), "query"),
        ] {
            let e = ConnectionKind::provider(preset, tenant, issuer, "a", "", vec![]).unwrap_err();
            assert!(e.0.contains(says), "{says}: {}", e.0);
        }
        assert!(
            ConnectionKind::provider(None, None, Some("https://idp.example"), " ", "", vec![])
                .is_err()
        );
    }

    #[test]
    fn the_github_preset_is_github_or_an_enterprise_server() {
        let github =
            |tenant| ConnectionKind::provider(Some("GitHub"), tenant, None, " c ", "s", vec![]);
        assert_eq!(
            github(None).unwrap(),
            ConnectionKind::Github {
                base_url: "https://github.com".into(),
                client_id: "c".into(),
                client_secret: "s".into(),
            }
        );
        for tenant in [
            "github.corp.example",
            "https://github.corp.example/",
            " https://github.corp.example ",
        ] {
            let ConnectionKind::Github { base_url, .. } = github(Some(tenant)).unwrap() else {
                unreachable!()
            };
            assert_eq!(base_url, "https://github.corp.example", "{tenant}");
        }
        let ConnectionKind::Github { base_url, .. } =
            github(Some("http://127.0.0.1:8999")).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(
            base_url, "http://127.0.0.1:8999",
            "loopback http, for development"
        );
        let scoped =
            ConnectionKind::provider(Some("github"), None, None, "c", "s", vec!["repo".into()]);
        assert!(scoped.unwrap_err().0.contains("read:user user:email"));
        let kind = github(None).unwrap();
        assert!(kind.is_provider());
        assert_eq!(kind.name(), "github");
        // Stored as JSON and read back.
        let stored = serde_json::to_string(&kind).unwrap();
        assert!(stored.contains(r#""kind":"github""#), "{stored}");
        assert_eq!(
            serde_json::from_str::<ConnectionKind>(&stored).unwrap(),
            kind
        );
    }
}
