//! Access tokens: JWTs in the shape of RFC 9068, with the claims the Scalekit SDKs and FastMCP
//! read (DESIGN.md, "Compatibility contract").

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::model::{Client, Resource};
use crate::random;
use crate::types::{Issuer, ScopeSet};

/// The claims of every access token Gatehouse issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer whose endpoint minted the token.
    pub iss: String,
    /// The person, or for client credentials the client id.
    pub sub: String,
    /// `[<MCP server URL>, <res_id>]`: the URL for RFC 8707 resource servers, the id for FastMCP.
    pub aud: Vec<String>,
    /// Issued at.
    pub iat: i64,
    /// Not before: equal to `iat`, never in the future (PyJWT allows no leeway).
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Unique token id; revocation records it.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-delimited (RFC 9068 §2.2.3, FastMCP).
    pub scope: String,
    /// Granted scopes as an array (Scalekit SDKs' `requiredScopes`).
    pub scopes: Vec<String>,
}

impl AccessTokenClaims {
    /// Claims for a token issued now by `issuer` to `client` for `resource`.
    pub fn new(
        issuer: &Issuer,
        subject: &str,
        client: &Client,
        resource: &Resource,
        scopes: &ScopeSet,
        now: UnixTime,
    ) -> Self {
        AccessTokenClaims {
            iss: issuer.as_str().to_owned(),
            sub: subject.to_owned(),
            aud: vec![
                resource.url.as_str().to_owned(),
                resource.id.as_str().to_owned(),
            ],
            iat: now.0,
            nbf: now.0,
            exp: now.plus(i64::from(resource.token_ttl)).0,
            jti: random::id(""),
            client_id: client.id.as_str().to_owned(),
            scope: scopes.to_param(),
            scopes: scopes.to_vec(),
        }
    }

    /// The `res_…` entry of `aud`, if any.
    pub fn resource_id(&self) -> Option<&str> {
        self.aud
            .iter()
            .map(String::as_str)
            .find(|a| a.starts_with("res_"))
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u32,
    /// What was granted (RFC 6749 §5.1 requires it when it differs from the request; it is
    /// always sent so that clients never have to guess).
    pub scope: String,
    /// A refresh token, when the grant and the MCP server's policy allow one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}
