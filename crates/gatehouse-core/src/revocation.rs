//! Token revocation (RFC 7009).
//!
//! Pipeline: `token` → authenticate the caller at this issuer (public clients by id) → a
//! refresh token revokes its whole grant, access tokens included (§2.1); an access token in
//! force has its `jti` recorded. Either must have been issued to the caller. An invalid,
//! expired or unknown token is answered with success (§2.2).

use crate::audit::{AuditEvent, EventType};
use crate::client_auth::ClientCredentials;
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::authenticate_at;
use crate::introspection::active_token;
use crate::params::FormParams;
use crate::secret::SecretHash;
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
    let not_yours = || {
        OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        )
    };
    let store = engine.store();
    if let Some(refresh) = store.refresh_token(&SecretHash::of(token)).await? {
        let Some(grant) = store.grant(&refresh.grant).await? else {
            return Ok(());
        };
        if grant.client != caller.id {
            return Err(not_yours());
        }
        store.revoke_grant(&grant.id, engine.now()).await?;
        engine.audit(
            AuditEvent::new(EventType::TokenRevoked, engine.now())
                .resource(&grant.resource)
                .client(&caller.id)
                .user(&grant.user)
                .detail("token_type", "refresh_token")
                .detail("grant", grant.id.as_str()),
        );
        return Ok(());
    }
    let Some(claims) = active_token(engine, token).await? else {
        return Ok(());
    };
    if claims.client_id != caller.id.as_str() {
        return Err(not_yours());
    }
    let Some(resource) = claims.resource_id().and_then(|r| ResourceId::parse(r).ok()) else {
        return Ok(());
    };
    engine
        .store()
        .revoke_token(&RevokedToken {
            jti: claims.jti.clone(),
            resource: resource.clone(),
            client: caller.id.clone(),
            expires_at: crate::clock::UnixTime(claims.exp),
            revoked_at: engine.now(),
        })
        .await?;
    engine.audit(
        AuditEvent::new(EventType::TokenRevoked, engine.now())
            .resource(&resource)
            .client(&caller.id)
            .detail("token_type", "access_token")
            .detail("jti", claims.jti),
    );
    Ok(())
}
