//! The authorization code grant at the token endpoint (OAuth 2.1 §4.1.3).
//!
//! Pipeline: well-formed request → redeem the code (single use; a replay revokes the grant,
//! AS-22) → bound to this client and issuer → same `redirect_uri` (AS-23) → PKCE S256 →
//! resource → access token, and a refresh token if the policy allows.

use crate::engine::{Engine, IssuerContext};
use crate::error::OAuthError;
use crate::model::Client;
use crate::params::FormParams;
use crate::pkce::{CodeChallenge, CodeVerifier};
use crate::secret::SecretHash;
use crate::token::TokenResponse;

use super::{Mint, MintError, mint, refresh_allowed, requested_resources, resolve_resource};

/// Runs the grant for an authenticated `client`.
pub async fn grant(
    engine: &Engine,
    ctx: &IssuerContext,
    client: &Client,
    params: &FormParams,
) -> Result<TokenResponse, OAuthError> {
    // A malformed request is refused before the code is spent.
    let code = params.required("code")?;
    let verifier = match params.single("code_verifier")? {
        Some(v) => CodeVerifier::parse(v).map_err(|e| OAuthError::invalid_request(e.0))?,
        // OAuth 2.1 §4.1.3: a code issued with a challenge needs its verifier.
        None => return Err(OAuthError::invalid_request("code_verifier is required")),
    };
    let redirect_uri = params.single("redirect_uri")?;
    let requested = requested_resources(params);

    let now = engine.now();
    let store = engine.store();
    let unknown = || OAuthError::invalid_grant("the authorization code is invalid or expired");
    let record = store
        .take_code(&SecretHash::of(code), now)
        .await?
        .ok_or_else(unknown)?;
    let grant = store.grant(&record.grant).await?.ok_or_else(unknown)?;
    if record.used_at.is_some() {
        // OAuth 2.1 §4.1.3: a code is used once; a second use means it leaked, so every
        // token issued from it is revoked.
        store.revoke_grant(&grant.id, now).await?;
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; every token issued from it is now revoked",
        )
        .with_detail(format!("code replay for grant {}", grant.id)));
    }
    if record.expires_at <= now {
        return Err(unknown().with_detail("code expired"));
    }
    if grant.client != client.id {
        return Err(unknown().with_detail(format!(
            "code of {} presented by {}",
            grant.client, client.id
        )));
    }
    if grant.issuer != ctx.issuer.as_str() {
        return Err(unknown().with_detail(format!(
            "code of issuer {} presented at {}",
            grant.issuer, ctx.issuer
        )));
    }
    if grant.revoked_at.is_some() {
        return Err(unknown().with_detail("grant revoked"));
    }
    // AS-23 (RFC 6749 §4.1.3): the redirect_uri of the authorization request, repeated.
    let redirect_ok = match redirect_uri {
        Some(r) => r == record.redirect_uri,
        None => !record.redirect_uri_sent,
    };
    if !redirect_ok {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the one of the authorization request",
        ));
    }
    if !CodeChallenge::from_stored(&record.challenge).verify(&verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let resource = resolve_resource(engine, ctx, Some(&grant.resource), &requested).await?;
    let with_refresh = refresh_allowed(&resource, &grant.scopes);
    let minted = mint(
        engine,
        Mint {
            ctx,
            grant: &grant,
            client,
            resource: &resource,
            scopes: &grant.scopes,
            with_refresh,
            grant_type: "authorization_code",
            rotating: None,
        },
    )
    .await;
    match minted {
        Ok(r) => Ok(r),
        Err(MintError::Conflict) => Err(unknown().with_detail("grant revoked while redeeming")),
        Err(MintError::Other(e)) => Err(e),
    }
}
