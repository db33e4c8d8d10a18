//! Token revocation (RFC 7009).
//!
//! Pipeline: `token` → authenticate the caller at this issuer → if the token is one of ours
//! and in force, it must have been issued to the caller (§2.1) → record its `jti`.
//! An invalid, expired or unknown token is answered with success (§2.2).

use crate::client_auth::ClientCredentials;
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::authenticate_at;
use crate::introspection::active_token;
use crate::params::FormParams;
use crate::store::RevokedToken;
use crate::types::ResourceId;

/// Handles a revocation request.
pub async fn revoke(
    engine: &Engine,
    ctx: &IssuerContext,
    authorization: Option<&str>,
    params: &FormParams,
) -> Result<(), OAuthError> {
    let token = params.required("token")?;
    // §2.1: the hint only speeds up the lookup; an unknown hint is not an error.
    params.single("token_type_hint")?;
    let credentials = ClientCredentials::from_request(authorization, params)?;
    let caller = authenticate_at(engine, ctx, &credentials).await?;
    let Some(claims) = active_token(engine, token).await? else {
        return Ok(());
    };
    if claims.client_id != caller.id.as_str() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        ));
    }
    let Some(resource) = claims.resource_id().and_then(|r| ResourceId::parse(r).ok()) else {
        return Ok(());
    };
    engine
        .store()
        .revoke_token(&RevokedToken {
            jti: claims.jti,
            resource,
            client: caller.id.clone(),
            expires_at: crate::clock::UnixTime(claims.exp),
            revoked_at: engine.now(),
        })
        .await?;
    Ok(())
}
