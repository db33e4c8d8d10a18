//! The refresh token grant (OAuth 2.1 §4.3), with rotation (§4.3.1, AS-25).
//!
//! Pipeline: the token → its grant, bound to this client and issuer, not revoked or expired
//! → if already rotated: an identical retry within the grace window gets the same answer,
//! anything else revokes the grant → resource and scopes (which may only narrow) → a new
//! access token and a new refresh token, the old one marked rotated in the same change.

use crate::audit::{AuditEvent, EventType};
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Client, RefreshPolicy};
use crate::params::FormParams;
use crate::records::{Grant, RefreshRecord};
use crate::secret::SecretHash;
use crate::token::TokenResponse;
use crate::types::ScopeSet;

use super::{Mint, MintError, mint, requested_resources, resolve_resource};

/// Runs the grant for an authenticated `client`.
pub async fn grant(
    engine: &Engine,
    ctx: &IssuerContext,
    client: &Client,
    params: &FormParams,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.required("refresh_token")?;
    let scope = params.single("scope")?;
    let requested = requested_resources(params);
    let request_hash = request_hash(client, params);

    let now = engine.now();
    let store = engine.store();
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let hash = SecretHash::of(presented);
    let record = store.refresh_token(&hash).await?.ok_or_else(invalid)?;
    let grant = store.grant(&record.grant).await?.ok_or_else(invalid)?;
    // OAuth 2.1 §4.3: a refresh token is bound to its client (and here to its issuer).
    if grant.client != client.id || grant.issuer != ctx.issuer.as_str() {
        return Err(invalid().with_detail(format!(
            "refresh token of {} at {} presented by {} at {}",
            grant.client, grant.issuer, client.id, ctx.issuer
        )));
    }
    if grant.revoked_at.is_some() {
        return Err(invalid().with_detail("grant revoked"));
    }
    if record.expires_at <= now {
        return Err(invalid().with_detail("refresh token expired"));
    }
    if record.rotated_at.is_some() {
        return reuse(engine, &grant, &record, presented, &request_hash).await;
    }
    let resource = resolve_resource(engine, ctx, Some(&grant.resource), &requested).await?;
    if resource.refresh_tokens == RefreshPolicy::Never {
        return Err(OAuthError::invalid_grant(
            "refresh tokens are turned off for this MCP server: sign in again",
        ));
    }
    let scopes = narrowed_scopes(&grant.scopes, scope)?;
    let minted = mint(
        engine,
        Mint {
            ctx,
            grant: &grant,
            client,
            resource: &resource,
            scopes: &scopes,
            with_refresh: true,
            grant_type: "refresh_token",
            rotating: Some((hash.clone(), presented, request_hash.clone())),
        },
    )
    .await;
    match minted {
        Ok(r) => Ok(r),
        // A concurrent request rotated it first, or the grant was revoked meanwhile.
        Err(MintError::Conflict) => {
            let record = store.refresh_token(&hash).await?.ok_or_else(invalid)?;
            let grant = store.grant(&grant.id).await?.ok_or_else(invalid)?;
            if grant.revoked_at.is_some() || record.rotated_at.is_none() {
                return Err(invalid().with_detail("grant revoked during rotation"));
            }
            reuse(engine, &grant, &record, presented, &request_hash).await
        }
        Err(MintError::Other(e)) => Err(e),
    }
}

/// A rotated token presented again. Real clients race (two requests share one token), so an
/// identical request within the grace window gets the answer the first one got. Anything
/// else is treated as theft: the whole grant is revoked (OAuth 2.1 §4.3.1).
async fn reuse(
    engine: &Engine,
    grant: &Grant,
    record: &RefreshRecord,
    presented: &str,
    request_hash: &SecretHash,
) -> Result<TokenResponse, OAuthError> {
    let now = engine.now();
    let within_grace = record
        .rotated_at
        .is_some_and(|at| now.0 - at.0 <= engine.settings().refresh_grace);
    if within_grace
        && let Some(retry) = &record.retry
        && &retry.request_hash == request_hash
        && let Some(plain) = crate::seal::open(presented, &retry.sealed)
        && let Ok(answer) = serde_json::from_slice::<TokenResponse>(&plain)
    {
        engine.audit(
            AuditEvent::new(EventType::TokenIssued, now)
                .resource(&grant.resource)
                .client(&grant.client)
                .user(&grant.user)
                .detail("grant_type", "refresh_token")
                .detail("scope", answer.scope.as_str())
                .detail("retry", true),
        );
        return Ok(answer);
    }
    engine.store().revoke_grant(&grant.id, now).await?;
    Err(OAuthError::invalid_grant(
        "the refresh token was already used; every token of this authorization is now revoked",
    )
    .with_detail(format!("refresh token reuse for grant {}", grant.id)))
}

/// OAuth 2.1 §4.3.1: a refresh may ask for fewer scopes, never more.
fn narrowed_scopes(granted: &ScopeSet, requested: Option<&str>) -> Result<ScopeSet, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.clone());
    };
    let requested =
        ScopeSet::parse(requested).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
    if requested.is_empty() {
        return Ok(granted.clone());
    }
    let extra = requested.missing_from(granted);
    if !extra.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("a refresh cannot add scopes that were not granted: {extra}"),
        ));
    }
    Ok(requested)
}

/// Identifies a request for the retry check: the client and every parameter, in order,
/// each length-prefixed so that no two requests share an encoding.
fn request_hash(client: &Client, params: &FormParams) -> SecretHash {
    let mut bytes = Vec::new();
    let mut put = |s: &str| {
        bytes.extend_from_slice(&(s.len() as u64).to_be_bytes());
        bytes.extend_from_slice(s.as_bytes());
    };
    put(client.id.as_str());
    for (k, v) in params.pairs() {
        put(k);
        put(v);
    }
    SecretHash::of_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_only_narrow() {
        let g = ScopeSet::parse("a b offline_access").unwrap();
        assert_eq!(narrowed_scopes(&g, None).unwrap(), g);
        assert_eq!(narrowed_scopes(&g, Some("")).unwrap(), g);
        assert_eq!(narrowed_scopes(&g, Some("a")).unwrap().to_param(), "a");
        let e = narrowed_scopes(&g, Some("a c")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }
}
