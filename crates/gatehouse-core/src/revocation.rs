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

/// How far back each answer of the revocation feed reaches before the moment it was read, so
/// that a revocation written in the same second, or by a node whose clock is a little behind,
/// is not missed. Pollers dedupe by `jti` and `client_id`.
pub const FEED_OVERLAP_SECS: i64 = 5;

/// The revocation feed of one MCP server: what its guard must refuse before expiry.
///
/// `GET {issuer}/revocations?since=N` (the per-server issuer) or
/// `GET /revocations?resource=URL&since=N` (the root). The answer lists revoked, unexpired
/// access tokens by `jti` and deleted clients (every token they hold is refused), revoked at
/// or after `since`, and `next_since` to ask with next time.
pub async fn feed(
    engine: &Engine,
    ctx: &IssuerContext,
    params: &FormParams,
) -> Result<serde_json::Value, OAuthError> {
    let resource = match (&ctx.resource, params.single("resource")?) {
        (Some(r), None) => r.clone(),
        (Some(r), Some(named)) => {
            if !r.url.matches(named) && r.id.as_str() != named {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("this issuer's MCP server is {}, not `{named}`", r.url),
                ));
            }
            r.clone()
        }
        (None, Some(named)) => engine
            .catalog()
            .resource_named(named)
            .await?
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("`{named}` is not an MCP server known here"),
                )
            })?,
        (None, None) => {
            return Err(OAuthError::invalid_request(
                "resource is required at the root issuer: the MCP server's URL or res_ id",
            ));
        }
    };
    let since = match params.single("since")? {
        None => 0,
        Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            OAuthError::invalid_request("since must be a number of seconds since 1970 (≥ 0)")
        })?,
    };
    let now = engine.now();
    let found = engine
        .store()
        .revocations_since(&resource.id, crate::clock::UnixTime(since), now)
        .await?;
    Ok(serde_json::json!({
        "resource": resource.url.as_str(),
        "tokens": found.tokens.iter().map(|t| serde_json::json!({
            "jti": t.jti,
            "exp": t.expires_at.0,
            "revoked_at": t.revoked_at.0,
        })).collect::<Vec<_>>(),
        "clients": found.clients.iter().map(|c| serde_json::json!({
            "client_id": c.client.as_str(),
            "revoked_at": c.revoked_at.0,
            "until": c.expires_at.0,
        })).collect::<Vec<_>>(),
        "next_since": (now.0 - FEED_OVERLAP_SECS).max(0),
    }))
}
