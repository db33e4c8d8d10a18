//! What Gatehouse stores: MCP servers (resources) and their clients.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::keys::SigningAlg;
use crate::secret::SecretHash;
use crate::types::{ClientId, Issuer, ParseError, ResourceId, ResourceUri, Scope, ScopeSet};

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
    /// When it was registered.
    pub created_at: UnixTime,
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
}

impl Resource {
    /// Validates `new` and gives it a fresh id.
    pub fn create(new: NewResource, now: UnixTime) -> Result<Resource, ParseError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ParseError("the name must have 1 to 100 characters".into()));
        }
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
            seen.push(&s.name);
        }
        Ok(Resource {
            id: ResourceId::generate(),
            name: name.to_owned(),
            url: new.url,
            scopes: new.scopes,
            token_ttl,
            signing_alg: new.signing_alg.unwrap_or(SigningAlg::RS256),
            dynamic_registration: true,
            metadata_documents: true,
            created_at: now,
        })
    }

    /// The scopes it offers, as a set.
    pub fn scope_set(&self) -> ScopeSet {
        self.scopes.iter().map(|s| s.name.clone()).collect()
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
}

impl ClientKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Agent => "agent",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(ClientKind::Agent),
            _ => None,
        }
    }
}

/// An OAuth client, bound to one MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The client id.
    pub id: ClientId,
    /// The MCP server it may get tokens for.
    pub resource: ResourceId,
    /// Display name.
    pub name: String,
    /// How it was registered.
    pub kind: ClientKind,
    /// Hash of its secret; `None` for a public client.
    pub secret_hash: Option<SecretHash>,
    /// The scopes it may be granted.
    pub scopes: ScopeSet,
    /// When it was registered.
    pub created_at: UnixTime,
}
