//! The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): parse the grant type, authenticate the
//! client at this issuer, run the grant.

pub mod client_credentials;

use std::sync::Arc;

use crate::client_auth::ClientCredentials;
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Client, Resource};
use crate::params::FormParams;
use crate::token::TokenResponse;

/// Grant types this server implements, as advertised in metadata.
pub const GRANT_TYPES: [&str; 1] = ["client_credentials"];

/// Handles a token request at `ctx`'s token endpoint.
pub async fn token(
    engine: &Engine,
    ctx: &IssuerContext,
    authorization: Option<&str>,
    params: &FormParams,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = params.required("grant_type")?;
    if !GRANT_TYPES.contains(&grant_type) {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type `{grant_type}` is not supported; this server supports: {}",
                GRANT_TYPES.join(", ")
            ),
        ));
    }
    let credentials = ClientCredentials::from_request(authorization, params)?;
    let client = authenticate_at(engine, ctx, &credentials).await?;
    client_credentials::grant(engine, ctx, &client, params).await
}

/// Authenticates the client and checks that it belongs to this issuer: a per-MCP-server
/// issuer knows only that server's clients (MCP: client ids are unique to the authorization
/// server that issued them); the root issuer knows every client.
pub async fn authenticate_at(
    engine: &Engine,
    ctx: &IssuerContext,
    credentials: &ClientCredentials,
) -> Result<Arc<Client>, OAuthError> {
    let client = credentials.authenticate(engine.catalog()).await?;
    if let Some(resource) = &ctx.resource
        && client.resource != resource.id
    {
        return Err(OAuthError::invalid_client().with_detail(format!(
            "client {} belongs to {}, not to issuer {}",
            client.id, client.resource, ctx.issuer
        )));
    }
    Ok(client)
}

/// RFC 8707 §2: the MCP server a token is for. `resource` (and the `audience` synonym some
/// SDKs send) may name it by URL or by `res_…` id; every value given must name the client's
/// own MCP server, which is also the default when none is given.
pub async fn resolve_target(
    engine: &Engine,
    client: &Client,
    params: &FormParams,
) -> Result<Arc<Resource>, OAuthError> {
    let own = engine
        .catalog()
        .resource(&client.resource)
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_client()
                .with_detail(format!("client {} has no MCP server", client.id))
        })?;
    let mut named = params.all("resource");
    named.extend(params.all("audience"));
    for value in named {
        let target = engine.catalog().resource_named(value).await?;
        match target {
            Some(t) if t.id == own.id => {}
            Some(t) => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("this client may not get tokens for {}", t.url),
                ));
            }
            None => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("`{value}` is not a resource known to this server"),
                ));
            }
        }
    }
    Ok(own)
}
