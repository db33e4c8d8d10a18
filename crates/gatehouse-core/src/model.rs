//! What Gatehouse stores: MCP servers (resources), their clients and the people who sign in.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::keys::SigningAlg;
use crate::redirect::RedirectUri;
use crate::secret::SecretHash;
use crate::signin::Method;
use crate::types::{
    ClientId, Issuer, ParseError, ResourceId, ResourceUri, Scope, ScopeSet, UserId,
};

/// The scope that asks for a refresh token (OpenID Connect Core §11; MCP clients add it when
/// metadata lists it).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Shortest and longest access-token lifetime an MCP server may set, in seconds.
pub const TOKEN_TTL_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;
/// Access-token lifetime when none is set: one hour, as the hosted product issues.
pub const DEFAULT_TOKEN_TTL: u32 = 3_600;

/// A scope an MCP server offers, with the text shown on consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeDef {
    /// The scope token.
    pub name: Scope,
    /// What it allows, in words.
    pub description: String,
}

impl ScopeDef {
    /// Parses `NAME` or `NAME=DESCRIPTION`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let (name, description) = s.split_once('=').unwrap_or((s, ""));
        Ok(ScopeDef {
            name: Scope::parse(name.trim())?,
            description: description.trim().to_owned(),
        })
    }
}

/// A registered MCP server: a protected resource with its own issuer and audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `res_…`
    pub id: ResourceId,
    /// Shown to people on consent.
    pub name: String,
    /// The MCP server's URL: the token audience and the PRM `resource`.
    pub url: ResourceUri,
    /// The scopes it offers.
    pub scopes: Vec<ScopeDef>,
    /// Access-token lifetime in seconds.
    pub token_ttl: u32,
    /// Algorithm its access tokens are signed with.
    pub signing_alg: SigningAlg,
    /// Whether clients may register themselves (RFC 7591).
    pub dynamic_registration: bool,
    /// Whether URL client ids (Client ID Metadata Documents) are accepted.
    pub metadata_documents: bool,
    /// Whether native apps may be sent back through private-use URI schemes
    /// (`cursor://…`, `com.example.app:/…`; RFC 8252 §7.1). Loopback and https always may.
    pub private_use_redirects: bool,
    /// When people's clients get refresh tokens.
    pub refresh_tokens: RefreshPolicy,
    /// The sign-in methods it offers, in order; `None` for the operator's defaults
    /// ([`crate::signin::offered`]).
    pub sign_in_methods: Option<Vec<Method>>,
    /// When it was registered.
    pub created_at: UnixTime,
}

/// When the authorization code grant issues a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshPolicy {
    /// With every authorization code exchange.
    Always,
    /// When the person granted `offline_access` (the default: clients ask for it).
    OfflineAccess,
    /// Never: clients sign the person in again when the access token expires.
    Never,
}

impl RefreshPolicy {
    /// The stored and typed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshPolicy::Always => "always",
            RefreshPolicy::OfflineAccess => "offline_access",
            RefreshPolicy::Never => "never",
        }
    }

    /// Parses the stored or typed name (`offline-access` is accepted for the command line).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(RefreshPolicy::Always),
            "offline_access" | "offline-access" => Some(RefreshPolicy::OfflineAccess),
            "never" => Some(RefreshPolicy::Never),
            _ => None,
        }
    }
}

/// What an operator gives to register an MCP server.
#[derive(Debug, Clone)]
pub struct NewResource {
    /// Display name.
    pub name: String,
    /// The MCP server URL.
    pub url: ResourceUri,
    /// Offered scopes.
    pub scopes: Vec<ScopeDef>,
    /// Token lifetime; [`DEFAULT_TOKEN_TTL`] when `None`.
    pub token_ttl: Option<u32>,
    /// Signing algorithm; RS256 when `None`.
    pub signing_alg: Option<SigningAlg>,
    /// Whether clients may register themselves; on when `None`.
    pub dynamic_registration: Option<bool>,
    /// Whether Client ID Metadata Documents are accepted; on when `None`.
    pub metadata_documents: Option<bool>,
    /// Whether private-use scheme redirects are accepted; on when `None`.
    pub private_use_redirects: Option<bool>,
    /// Refresh-token policy; [`RefreshPolicy::OfflineAccess`] when `None`.
    pub refresh_tokens: Option<RefreshPolicy>,
    /// Sign-in methods it offers; the defaults when `None`.
    pub sign_in_methods: Option<Vec<Method>>,
}

impl NewResource {
    /// A server with every option at its default.
    pub fn new(name: impl Into<String>, url: ResourceUri, scopes: Vec<ScopeDef>) -> Self {
        NewResource {
            name: name.into(),
            url,
            scopes,
            token_ttl: None,
            signing_alg: None,
            dynamic_registration: None,
            metadata_documents: None,
            private_use_redirects: None,
            refresh_tokens: None,
            sign_in_methods: None,
        }
    }
}

/// A name an operator gives something (an MCP server, a client, an API key), checked as
/// typed: at most 100 characters, no control characters, not blank. Returned trimmed.
pub fn display_name(raw: &str) -> Result<String, ParseError> {
    if raw.chars().count() > 100 {
        return Err(ParseError(
            "the name must have at most 100 characters".into(),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(ParseError(
            "the name must not contain control characters".into(),
        ));
    }
    let name = raw.trim();
    if name.is_empty() {
        return Err(ParseError("the name must not be blank".into()));
    }
    Ok(name.to_owned())
}

impl Resource {
    /// Validates `new` and gives it a fresh id.
    pub fn create(new: NewResource, now: UnixTime) -> Result<Resource, ParseError> {
        let name = display_name(&new.name)?;
        let token_ttl = new.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL);
        if !TOKEN_TTL_RANGE.contains(&token_ttl) {
            return Err(ParseError(format!(
                "the token lifetime must be {} to {} seconds",
                TOKEN_TTL_RANGE.start(),
                TOKEN_TTL_RANGE.end()
            )));
        }
        let mut seen = Vec::new();
        for s in &new.scopes {
            if seen.contains(&&s.name) {
                return Err(ParseError(format!("scope `{}` is given twice", s.name)));
            }
            if s.name.as_str() == OFFLINE_ACCESS {
                return Err(ParseError(
                    "offline_access is not an MCP server scope: it asks for refresh tokens, which the refresh-token policy controls".into(),
                ));
            }
            seen.push(&s.name);
        }
        Ok(Resource {
            id: ResourceId::generate(),
            name,
            url: new.url,
            scopes: new.scopes,
            token_ttl,
            signing_alg: new.signing_alg.unwrap_or(SigningAlg::RS256),
            dynamic_registration: new.dynamic_registration.unwrap_or(true),
            metadata_documents: new.metadata_documents.unwrap_or(true),
            private_use_redirects: new.private_use_redirects.unwrap_or(true),
            refresh_tokens: new.refresh_tokens.unwrap_or(RefreshPolicy::OfflineAccess),
            sign_in_methods: match new.sign_in_methods {
                Some(m) => Some(crate::signin::parse_methods(m.iter().map(Method::as_str))?),
                None => None,
            },
            created_at: now,
        })
    }

    /// The scopes it offers, as a set.
    pub fn scope_set(&self) -> ScopeSet {
        self.scopes.iter().map(|s| s.name.clone()).collect()
    }

    /// The scopes its issuer advertises: its own, plus `offline_access` when refresh tokens
    /// can be issued (MCP: clients add it only if metadata lists it).
    pub fn advertised_scopes(&self) -> Vec<String> {
        let mut v = self.scope_set().to_vec();
        if self.refresh_tokens != RefreshPolicy::Never {
            v.push(OFFLINE_ACCESS.to_owned());
        }
        v
    }

    /// The description of one of its scopes.
    pub fn scope_description(&self, scope: &Scope) -> Option<&str> {
        self.scopes
            .iter()
            .find(|s| &s.name == scope)
            .map(|s| s.description.as_str())
    }

    /// Its issuer, under the server's public URL.
    pub fn issuer(&self, public: &Issuer) -> Issuer {
        public.for_resource(&self.id)
    }

    /// The RFC 9728 Protected Resource Metadata the MCP server should publish.
    pub fn protected_resource_metadata(&self, public: &Issuer) -> serde_json::Value {
        serde_json::json!({
            "resource": self.url.as_str(),
            "authorization_servers": [self.issuer(public).as_str()],
            "bearer_methods_supported": ["header"],
            "scopes_supported": self.scope_set().to_vec(),
            "resource_name": self.name,
        })
    }
}

/// How a client came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// Created by an operator for machine-to-machine use (client credentials).
    Agent,
    /// Registered itself through Dynamic Client Registration (RFC 7591).
    Registered,
    /// Identified by the URL of its Client ID Metadata Document; never stored, rebuilt from
    /// the (cached) document.
    MetadataDocument,
}

impl ClientKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Agent => "agent",
            ClientKind::Registered => "registered",
            ClientKind::MetadataDocument => "metadata_document",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(ClientKind::Agent),
            "registered" => Some(ClientKind::Registered),
            "metadata_document" => Some(ClientKind::MetadataDocument),
            _ => None,
        }
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// A public client: no secret, PKCE protects the code.
    None,
    /// Secret in an HTTP Basic header.
    ClientSecretBasic,
    /// Secret in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2); its public keys are in
    /// its metadata (`jwks` or `jwks_uri`).
    PrivateKeyJwt,
}

impl TokenAuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::None => "none",
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
            TokenAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// Parses a registered name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(TokenAuthMethod::None),
            "client_secret_basic" => Some(TokenAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(TokenAuthMethod::ClientSecretPost),
            "private_key_jwt" => Some(TokenAuthMethod::PrivateKeyJwt),
            _ => None,
        }
    }
}

/// An OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client id.
    pub id: ClientId,
    /// The MCP server it is bound to. `None` for a client that registered at the root issuer:
    /// it may get tokens for any MCP server that accepts registered clients.
    pub resource: Option<ResourceId>,
    /// Display name, shown on consent.
    pub name: String,
    /// How it was registered.
    pub kind: ClientKind,
    /// Hash of its secret; `None` for a public client.
    pub secret_hash: Option<SecretHash>,
    /// For an agent, the scopes it may be granted. For a client acting for people, the
    /// `scope` it registered, kept for reference: the person's consent decides what it gets.
    pub scopes: ScopeSet,
    /// Registered redirect URIs (empty for agents).
    pub redirect_uris: Vec<RedirectUri>,
    /// How it authenticates at the token endpoint.
    pub auth_method: TokenAuthMethod,
    /// The client metadata as registered (RFC 7591 §2), unknown fields included; echoed by
    /// the registration endpoints. An empty object for agents.
    pub metadata: serde_json::Value,
    /// Hash of the RFC 7592 registration access token, for self-registered clients.
    pub registration_token_hash: Option<SecretHash>,
    /// When it was registered.
    pub created_at: UnixTime,
    /// When it last obtained a token, to at most a day's precision (registrations unused for
    /// too long expire).
    pub last_used_at: Option<UnixTime>,
    /// When an operator disabled it: it gets no tokens until enabled again.
    pub disabled_at: Option<UnixTime>,
    /// When it was last disabled: every access token issued to it until then is refused,
    /// also after it is enabled again.
    pub tokens_revoked_at: Option<UnixTime>,
}

impl Client {
    /// Whether an access token issued to it at `iat` was revoked by disabling it.
    pub fn revoked_token_issued_at(&self, iat: i64) -> bool {
        self.tokens_revoked_at.is_some_and(|t| iat <= t.0)
    }
}

impl Client {
    /// A client identified by the URL of its metadata document (never stored).
    pub fn metadata_document(
        id: ClientId,
        name: String,
        redirect_uris: Vec<RedirectUri>,
        metadata: serde_json::Value,
    ) -> Client {
        Client {
            id,
            resource: None,
            name,
            kind: ClientKind::MetadataDocument,
            secret_hash: None,
            scopes: ScopeSet::default(),
            redirect_uris,
            auth_method: TokenAuthMethod::None,
            metadata,
            registration_token_hash: None,
            created_at: UnixTime(0),
            last_used_at: None,
            disabled_at: None,
            tokens_revoked_at: None,
        }
    }

    /// Whether it authenticates: with a secret, or with signed assertions.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some() || self.auth_method == TokenAuthMethod::PrivateKeyJwt
    }

    /// The host of a URL client id, shown on consent (CIMD-13).
    pub fn url_host(&self) -> Option<String> {
        if !self.id.is_url() {
            return None;
        }
        url::Url::parse(self.id.as_str())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    }
}

/// A person who can sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `usr_…`: the `sub` of their tokens.
    pub id: UserId,
    /// Their email address, lower-cased: what they sign in with.
    pub email: String,
    /// Their password as an argon2id PHC string; empty if they have none (they sign in
    /// another way).
    pub password_hash: String,
    /// Whether they administer Gatehouse (the dashboard and the admin API).
    pub admin: bool,
    /// When the account was created.
    pub created_at: UnixTime,
    /// When an operator disabled the account: they cannot sign in until enabled again.
    pub disabled_at: Option<UnixTime>,
}

impl User {
    /// Whether the person can sign in with a password. People who came through a connection
    /// have none until an operator sets one.
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
}

/// A key to the admin API. It acts as the administrator who owns it, with their rights at
/// the time of each request. The secret (`gha_…`) is shown once and stored as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: crate::types::ApiKeyId,
    /// What it is for, as the operator named it.
    pub name: String,
    /// The administrator it acts as.
    pub user: UserId,
    pub secret_hash: crate::secret::SecretHash,
    pub created_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

/// Normalises an email address for storage and lookup: trimmed and lower-cased; it must look
/// like `local@domain`.
pub fn normalize_email(s: &str) -> Result<String, ParseError> {
    let e = s.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(e)
    } else {
        Err(ParseError(format!(
            "`{}` is not an email address",
            s.trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_typed() {
        assert_eq!(display_name("  Nightly report ").unwrap(), "Nightly report");
        assert!(display_name(&"a".repeat(100)).is_ok());
        assert!(display_name(&"a".repeat(101)).is_err());
        // Whitespace trimmed away does not make a too-long name fit (schemathesis found it).
        assert!(display_name(&format!("\u{85}{}", "*".repeat(100))).is_err());
        assert!(display_name("bell\u{7}").is_err());
        assert!(display_name("tab\tinside").is_err());
        assert!(display_name(" \u{a0} ").is_err());
    }
}
