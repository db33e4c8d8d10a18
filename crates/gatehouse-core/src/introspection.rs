//! Token introspection (RFC 7662).
//!
//! Pipeline: `token` → authenticate the caller at this issuer → verify the token (signature,
//! time, not revoked, its MCP server and client still exist) → the caller may see it only if
//! the token was issued to it or it is a client of the same MCP server. Anything else is
//! `{"active": false}` (§2.2).

use serde_json::json;

use crate::client_auth::ClientCredentials;
use crate::engine::{Engine, IssuerContext};
use crate::error::OAuthError;
use crate::grant::authenticate_at;
use crate::params::FormParams;
use crate::token::AccessTokenClaims;
use crate::types::{ClientId, ResourceId};

/// Handles an introspection request; the result is the JSON body.
pub async fn introspect(
    engine: &Engine,
    ctx: &IssuerContext,
    authorization: Option<&str>,
    params: &FormParams,
) -> Result<serde_json::Value, OAuthError> {
    let token = params.required("token")?;
    params.single("token_type_hint")?;
    let credentials = ClientCredentials::from_request(authorization, params)?;
    let caller = authenticate_at(engine, ctx, &credentials).await?;
    // RFC 7662 §2.1: the endpoint is protected; a public client proves nothing by its id.
    if !caller.is_confidential() {
        return Err(OAuthError::invalid_client()
            .with_detail(format!("public client {} may not introspect", caller.id)));
    }
    let Some(claims) = active_token(engine, token).await? else {
        return Ok(json!({ "active": false }));
    };
    let same_server = caller
        .resource
        .as_ref()
        .is_some_and(|r| claims.resource_id() == Some(r.as_str()));
    if claims.client_id != caller.id.as_str() && !same_server {
        return Ok(json!({ "active": false }));
    }
    Ok(json!({
        "active": true,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.nbf,
        "jti": claims.jti,
        "token_type": "Bearer",
    }))
}

/// The claims of `token` if it is one of ours and in force now: good signature, within its
/// lifetime, not revoked, and its MCP server and client still registered.
pub async fn active_token(
    engine: &Engine,
    token: &str,
) -> Result<Option<AccessTokenClaims>, OAuthError> {
    let Some(claims) = engine.keys().verify::<AccessTokenClaims>(token) else {
        return Ok(None);
    };
    let now = engine.now().0;
    if claims.exp <= now || claims.nbf > now {
        return Ok(None);
    }
    let Some(resource_id) = claims.resource_id().and_then(|r| ResourceId::parse(r).ok()) else {
        return Ok(None);
    };
    let Ok(client_id) = ClientId::parse(&claims.client_id) else {
        return Ok(None);
    };
    let catalog = engine.catalog();
    if catalog.resource(&resource_id).await?.is_none() {
        return Ok(None);
    }
    // A metadata-document client is not stored; its id is its URL. A stored one must still
    // exist, be enabled, and not have been disabled since the token was issued.
    if !client_id.is_url() {
        match catalog.client(&client_id).await? {
            Some(c) if c.disabled_at.is_none() && !c.revoked_token_issued_at(claims.iat) => {}
            _ => return Ok(None),
        }
    }
    if engine.store().is_token_revoked(&claims.jti).await? {
        return Ok(None);
    }
    Ok(Some(claims))
}
