//! The client credentials grant (OAuth 2.1 §4.2): a confidential client gets a token for
//! itself.
//!
//! Pipeline: confidential client → target resource (RFC 8707) → scopes → sign.

use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Client, ClientKind, Resource};
use crate::params::FormParams;
use crate::token::{AccessTokenClaims, TokenResponse};
use crate::types::ScopeSet;

/// Runs the grant for an authenticated `client`.
pub async fn grant(
    engine: &Engine,
    ctx: &IssuerContext,
    client: &Client,
    params: &FormParams,
) -> Result<TokenResponse, OAuthError> {
    // OAuth 2.1 §4.2: only confidential clients may use this grant; here, only the agent
    // clients an operator created (a self-registered client acts for people).
    if !client.is_confidential() || client.kind != ClientKind::Agent {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is for agent clients created by the operator",
        ));
    }
    let resource = super::resolve_resource(
        engine,
        ctx,
        client.resource.as_ref(),
        &super::requested_resources(params),
    )
    .await?;
    let scopes = granted_scopes(client, &resource, params.single("scope")?)?;
    let now = engine.now();
    let claims = AccessTokenClaims::new(
        &ctx.issuer,
        client.id.as_str(),
        client,
        &resource,
        &scopes,
        now,
    );
    let signer = engine.signer(resource.signing_alg).await?;
    let response = TokenResponse {
        access_token: signer.sign_jwt(&claims),
        token_type: "Bearer".into(),
        expires_in: resource.token_ttl,
        scope: scopes.to_param(),
        refresh_token: None,
    };
    engine.audit(super::issued(
        engine,
        "client_credentials",
        client,
        &resource,
        None,
        &claims.jti,
        &response,
    ));
    Ok(response)
}

/// The scopes to grant: those requested, each of which the client must be allowed and the
/// MCP server must still offer; without a request, all the client's allowed scopes that the
/// server still offers.
fn granted_scopes(
    client: &Client,
    resource: &Resource,
    requested: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let offered = resource.scope_set();
    let allowed: ScopeSet = client
        .scopes
        .iter()
        .filter(|s| offered.contains(s))
        .cloned()
        .collect();
    let Some(requested) = requested else {
        return Ok(allowed);
    };
    let requested = ScopeSet::parse(requested)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
    let refused = requested.missing_from(&allowed);
    if !refused.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("this client may not request: {refused}"),
        ));
    }
    Ok(requested)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::UnixTime;
    use crate::model::{NewResource, ScopeDef, TokenAuthMethod};
    use crate::types::{ClientId, ResourceUri};

    fn fixture() -> (Client, Resource) {
        let resource = Resource::create(
            NewResource::new(
                "Todo",
                ResourceUri::parse("https://todo.example/mcp").unwrap(),
                vec![
                    ScopeDef::parse("todo:read").unwrap(),
                    ScopeDef::parse("todo:write").unwrap(),
                ],
            ),
            UnixTime(0),
        )
        .unwrap();
        let client = Client {
            id: ClientId::generate_agent(),
            resource: Some(resource.id.clone()),
            name: "agent".into(),
            kind: ClientKind::Agent,
            secret_hash: None,
            scopes: ScopeSet::parse("todo:read gone").unwrap(),
            redirect_uris: vec![],
            auth_method: TokenAuthMethod::ClientSecretBasic,
            metadata: serde_json::json!({}),
            registration_token_hash: None,
            created_at: UnixTime(0),
            last_used_at: None,
            disabled_at: None,
            tokens_revoked_at: None,
        };
        (client, resource)
    }

    #[test]
    fn default_is_the_allowed_scopes_the_server_still_offers() {
        let (client, resource) = fixture();
        assert_eq!(
            granted_scopes(&client, &resource, None).unwrap().to_param(),
            "todo:read"
        );
    }

    #[test]
    fn requested_scopes_must_be_allowed() {
        let (client, resource) = fixture();
        assert_eq!(
            granted_scopes(&client, &resource, Some("todo:read"))
                .unwrap()
                .to_param(),
            "todo:read"
        );
        for bad in ["todo:write", "gone", "todo:read todo:write", "bad\"scope"] {
            let e = granted_scopes(&client, &resource, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidScope, "{bad}");
        }
    }
}
