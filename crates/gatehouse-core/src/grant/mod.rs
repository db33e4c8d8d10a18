//! The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): parse the grant type, authenticate the
//! client at this issuer, run the grant.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use std::sync::Arc;

use crate::audit::{AuditEvent, EventType};
use crate::client_auth::ClientCredentials;
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::model::{Client, OFFLINE_ACCESS, RefreshPolicy, Resource};
use crate::params::FormParams;
use crate::records::{Grant, Issuance, IssuedAccess, RefreshRecord, Rotation};
use crate::secret::SecretHash;
use crate::store::StoreError;
use crate::token::{AccessTokenClaims, TokenResponse};
use crate::types::{ResourceId, ScopeSet, UserId};

/// Grant types this server implements, as advertised in metadata.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// Prefix of refresh tokens, so that secret scanners can recognise them.
const REFRESH_PREFIX: &str = "ghr_";

/// Handles a token request at `ctx`'s token endpoint, and audits a refusal (issued tokens
/// are audited where they are minted).
pub async fn token(
    engine: &Engine,
    ctx: &IssuerContext,
    authorization: Option<&str>,
    params: &FormParams,
) -> Result<TokenResponse, OAuthError> {
    let result = run(engine, ctx, authorization, params).await;
    if let Err(e) = &result {
        let client = ClientCredentials::from_request(authorization, params)
            .ok()
            .map(|c| c.client_id().to_string());
        let mut event = refused(ctx.event(EventType::TokenRefused, engine.now()), e)
            .detail("grant_type", params.single("grant_type").ok().flatten());
        if let Some(c) = client {
            event = event.client(c);
        }
        engine.audit(event);
    }
    result
}

async fn run(
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
    engine.admit(&client, ctx)?;
    let response = match grant_type {
        "authorization_code" => authorization_code::grant(engine, ctx, &client, params).await,
        "refresh_token" => refresh_token::grant(engine, ctx, &client, params).await,
        _ => client_credentials::grant(engine, ctx, &client, params).await,
    }?;
    engine.note_client_use(&client).await;
    Ok(response)
}

/// `event` (a refusal) with `e`: its code, its description, and the operator's detail.
pub(crate) fn refused(event: AuditEvent, e: &OAuthError) -> AuditEvent {
    event
        .detail("error", e.code.as_str())
        .detail("reason", e.description.as_str())
        .detail("detail", e.detail.clone())
}

/// The `token.issued` event of a token issued by the `grant_type` grant to `client` for
/// `resource`; `person` is set for tokens that act for one.
pub(crate) fn issued(
    engine: &Engine,
    grant_type: &str,
    client: &Client,
    resource: &Resource,
    person: Option<&UserId>,
    jti: &str,
    response: &TokenResponse,
) -> AuditEvent {
    let mut e = AuditEvent::new(EventType::TokenIssued, engine.now())
        .resource(&resource.id)
        .client(&client.id)
        .detail("grant_type", grant_type)
        .detail("jti", jti)
        .detail("scope", response.scope.as_str())
        .detail("refresh_token", response.refresh_token.is_some());
    if let Some(p) = person {
        e = e.user(p);
    }
    e
}

/// Authenticates the client and checks that it belongs to this issuer: a per-MCP-server
/// issuer knows only that server's clients (MCP: client ids are unique to the authorization
/// server that issued them); the root issuer knows every client. URL client ids (metadata
/// documents) are valid at every issuer.
pub async fn authenticate_at(
    engine: &Engine,
    ctx: &IssuerContext,
    credentials: &ClientCredentials,
) -> Result<Arc<Client>, OAuthError> {
    let client = credentials.authenticate(engine, ctx).await?;
    if let Some(resource) = &ctx.resource
        && !client.id.is_url()
        && client.resource.as_ref() != Some(&resource.id)
    {
        return Err(OAuthError::invalid_client().with_detail(format!(
            "client {} is not registered at issuer {}",
            client.id, ctx.issuer
        )));
    }
    Ok(client)
}

/// RFC 8707 §2: the MCP server a token is for. `requested` are the `resource` values (and
/// the `audience` synonym some SDKs send), by URL or `res_…` id; they must all name one known
/// server. Without any, the server is the one implied by the issuer, then the one the client
/// is bound to, then the only one there is (DESIGN.md, "Missing `resource`"). Whatever is
/// chosen must agree with the issuer and with the client's binding.
pub async fn resolve_resource(
    engine: &Engine,
    ctx: &IssuerContext,
    binding: Option<&ResourceId>,
    requested: &[&str],
) -> Result<Arc<Resource>, OAuthError> {
    let target = |d: String| OAuthError::new(ErrorCode::InvalidTarget, d);
    let mut named: Option<Arc<Resource>> = None;
    for value in requested {
        let Some(r) = engine.catalog().resource_named(value).await? else {
            return Err(target(format!(
                "`{value}` is not a resource known to this server"
            )));
        };
        match &named {
            Some(n) if n.id != r.id => {
                return Err(target(
                    "a token is for one MCP server: name only one resource".into(),
                ));
            }
            _ => named = Some(r),
        }
    }
    let chosen = match named {
        Some(r) => r,
        None => match (&ctx.resource, binding) {
            (Some(r), _) => r.clone(),
            (None, Some(id)) => engine.catalog().resource(id).await?.ok_or_else(|| {
                OAuthError::invalid_client().with_detail(format!("bound to missing {id}"))
            })?,
            (None, None) => {
                let all = engine.catalog().resources().await?;
                match all.as_slice() {
                    [only] => only.clone(),
                    [] => return Err(target("no MCP server is registered here".into())),
                    _ => {
                        return Err(target(
                            "resource is required: this server protects several MCP servers".into(),
                        ));
                    }
                }
            }
        },
    };
    if let Some(r) = &ctx.resource
        && r.id != chosen.id
    {
        return Err(target(format!(
            "this issuer serves {} only, not {}",
            r.url, chosen.url
        )));
    }
    if let Some(b) = binding
        && b != &chosen.id
    {
        return Err(target(format!(
            "this client may not get tokens for {}",
            chosen.url
        )));
    }
    Ok(chosen)
}

/// Every `resource` and `audience` value of a request.
pub fn requested_resources(params: &FormParams) -> Vec<&str> {
    let mut v = params.all("resource");
    v.extend(params.all("audience"));
    v
}

/// Whether a grant with `scopes` at `resource` comes with a refresh token.
pub fn refresh_allowed(resource: &Resource, scopes: &ScopeSet) -> bool {
    match resource.refresh_tokens {
        RefreshPolicy::Always => true,
        RefreshPolicy::OfflineAccess => scopes.iter().any(|s| s.as_str() == OFFLINE_ACCESS),
        RefreshPolicy::Never => false,
    }
}

/// What to issue from a grant.
pub(crate) struct Mint<'a> {
    pub ctx: &'a IssuerContext,
    pub grant: &'a Grant,
    pub client: &'a Client,
    pub resource: &'a Resource,
    pub scopes: &'a ScopeSet,
    pub with_refresh: bool,
    /// `authorization_code` or `refresh_token`, for the audit log.
    pub grant_type: &'static str,
    /// The refresh token being rotated: its hash, the token itself (to seal the retry
    /// answer) and the hash of the request.
    pub rotating: Option<(SecretHash, &'a str, SecretHash)>,
}

/// Why minting failed.
pub(crate) enum MintError {
    /// The store refused the record: the grant was revoked, or the refresh token was rotated
    /// by a concurrent request.
    Conflict,
    /// Anything else.
    Other(OAuthError),
}

impl From<OAuthError> for MintError {
    fn from(e: OAuthError) -> Self {
        MintError::Other(e)
    }
}

/// Signs an access token (and creates a refresh token) for a grant and records them in one
/// store change.
pub(crate) async fn mint(engine: &Engine, m: Mint<'_>) -> Result<TokenResponse, MintError> {
    let now = engine.now();
    let claims = AccessTokenClaims::new(
        &m.ctx.issuer,
        m.grant.user.as_str(),
        m.client,
        m.resource,
        m.scopes,
        now,
    );
    let signer = engine.signer(m.resource.signing_alg).await?;
    let access = IssuedAccess {
        jti: claims.jti.clone(),
        expires_at: crate::clock::UnixTime(claims.exp),
    };
    let refresh_token = m
        .with_refresh
        .then(|| crate::random::secret(REFRESH_PREFIX));
    let response = TokenResponse {
        access_token: signer.sign_jwt(&claims),
        token_type: "Bearer".into(),
        expires_in: m.resource.token_ttl,
        scope: m.scopes.to_param(),
        refresh_token: refresh_token.clone(),
    };
    let refresh = refresh_token.as_deref().map(|t| RefreshRecord {
        hash: SecretHash::of(t),
        grant: m.grant.id.clone(),
        created_at: now,
        expires_at: now.plus(engine.settings().refresh_token_ttl),
        rotated_at: None,
        retry: None,
    });
    let rotates = m.rotating.map(|(old, presented, request_hash)| Rotation {
        old,
        at: now,
        retry: serde_json::to_vec(&response)
            .ok()
            .and_then(|plain| crate::seal::seal(presented, &plain))
            .map(|sealed| crate::records::RetryAnswer {
                request_hash,
                sealed,
            }),
    });
    let issue = Issuance {
        grant: m.grant.id.clone(),
        access,
        refresh,
        rotates,
    };
    match engine.store().record_issue(&issue).await {
        Ok(()) => {
            engine.audit(issued(
                engine,
                m.grant_type,
                m.client,
                m.resource,
                Some(&m.grant.user),
                &claims.jti,
                &response,
            ));
            Ok(response)
        }
        Err(StoreError::Conflict(_)) => Err(MintError::Conflict),
        Err(e) => Err(MintError::Other(e.into())),
    }
}
