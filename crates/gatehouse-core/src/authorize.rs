//! The authorization endpoint (OAuth 2.1 §4.1.1), read against AS-13…AS-21.
//!
//! Pipeline: client (registered, or its metadata document) → exact redirect match → from here
//! errors go back to the client, with `iss` → `response_type=code` → PKCE S256 → resource
//! (RFC 8707) → registration switch → scopes → `prompt`. The adapter then signs the person
//! in, asks for consent when needed, and calls [`approve`] or [`deny`].

use std::sync::Arc;

use crate::audit::{AuditEvent, EventType};
use crate::clock::UnixTime;
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::grant::resolve_resource;
use crate::model::{Client, ClientKind, OFFLINE_ACCESS, RefreshPolicy, Resource};
use crate::params::FormParams;
use crate::pkce::CodeChallenge;
use crate::records::{CodeRecord, Consent, Grant};
use crate::redirect::{ClientRedirect, RedirectKind, select};
use crate::secret::SecretHash;
use crate::types::{ClientId, GrantId, Issuer, Scope, ScopeSet, UserId};

/// Prefix of authorization codes.
const CODE_PREFIX: &str = "ghc_";

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or its redirect URI could not be verified: show an error page, never
    /// redirect (OAuth 2.1 §4.1.2.1).
    Page(OAuthError),
    /// Send the error back to the verified redirect URI.
    Redirect(ClientRedirect, OAuthError),
}

/// What the client asked about signing in and consent (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: answer without showing anything, or fail.
    pub none: bool,
    /// `login`: make the person sign in again.
    pub login: bool,
    /// `consent`: ask for consent even if it was given before.
    pub consent: bool,
}

/// A valid authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The issuer whose endpoint received it.
    pub issuer: Issuer,
    /// The client.
    pub client: Arc<Client>,
    /// The MCP server the token will be for.
    pub resource: Arc<Resource>,
    /// Where the answer goes.
    pub redirect: ClientRedirect,
    /// Whether `redirect_uri` was in the request.
    pub redirect_uri_sent: bool,
    /// The PKCE challenge.
    pub challenge: CodeChallenge,
    /// The scopes that would be granted.
    pub scopes: ScopeSet,
    /// Sign-in and consent demands.
    pub prompt: Prompt,
}

impl AuthorizationRequest {
    /// The scopes with their descriptions, for the consent page: those not in `allowed`
    /// (the question), or those in it (already allowed).
    pub fn scope_descriptions(&self, allowed: &ScopeSet, new: bool) -> Vec<(String, String)> {
        self.scopes
            .iter()
            .filter(|s| allowed.contains(s) != new)
            .map(|s| {
                let d = if s.as_str() == OFFLINE_ACCESS {
                    "Stay connected: keep access after this session, until you revoke it".to_owned()
                } else {
                    self.resource
                        .scope_description(s)
                        .filter(|d| !d.is_empty())
                        .unwrap_or("No description")
                        .to_owned()
                };
                (s.as_str().to_owned(), d)
            })
            .collect()
    }
}

/// Checks an authorization request; a refusal is audited (`authorization.refused`) with the
/// step that refused it, the reason, and the host's `User-Agent`.
pub async fn validate(
    engine: &Engine,
    ctx: &IssuerContext,
    params: &FormParams,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let mut step = "client";
    let result = check(engine, ctx, params, &mut step).await;
    if let Err(AuthorizeError::Page(e) | AuthorizeError::Redirect(_, e)) = &result {
        let raw = |name| {
            params.single(name).ok().flatten().map(|v| {
                v.chars()
                    .filter(|c| !c.is_control())
                    .take(300)
                    .collect::<String>()
            })
        };
        let mut event =
            crate::grant::refused(ctx.event(EventType::AuthorizationRefused, engine.now()), e)
                .detail("step", step)
                .detail("redirect_uri", raw("redirect_uri"))
                .detail("scope", raw("scope"));
        if let Some(client) = raw("client_id") {
            event = event.client(client);
        }
        engine.audit(event);
    }
    result
}

async fn check(
    engine: &Engine,
    ctx: &IssuerContext,
    params: &FormParams,
    step: &mut &'static str,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let page = AuthorizeError::Page;
    // 1. The client: until it and its redirect URI are verified, errors are pages.
    let client_id = params
        .single("client_id")
        .map_err(page)?
        .ok_or_else(|| page(OAuthError::invalid_request("client_id is missing")))?;
    let client_id = ClientId::parse(client_id).map_err(|e| page(invalid_client(e.0)))?;
    let client = load_client(engine, ctx, &client_id).await.map_err(page)?;

    *step = "redirect_uri";
    // 2. AS-14/15: the redirect URI, exactly as registered (any port on loopback).
    let requested_redirect = params.single("redirect_uri").map_err(page)?;
    let (redirect_uri, kind) = select(&client.redirect_uris, requested_redirect).map_err(page)?;
    let state = params.single("state").ok().flatten();
    let redirect = ClientRedirect::verified(redirect_uri, kind, state, &ctx.issuer);
    let back = |e: OAuthError| AuthorizeError::Redirect(redirect.clone(), e);
    if params.single("state").is_err() {
        return Err(back(OAuthError::invalid_request(
            "state must not be repeated",
        )));
    }

    *step = "response_type";
    // 3. Only the code flow.
    match params.single("response_type").map_err(back)? {
        Some("code") => {}
        Some(other) => {
            return Err(back(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported: use code"),
            )));
        }
        None => {
            return Err(back(OAuthError::invalid_request(
                "response_type is missing",
            )));
        }
    }

    *step = "pkce";
    // 4. AS-13: PKCE with S256.
    let challenge = params
        .single("code_challenge")
        .map_err(back)?
        .ok_or_else(|| {
            back(OAuthError::invalid_request(
                "code_challenge is required (PKCE)",
            ))
        })?;
    let method = params.single("code_challenge_method").map_err(back)?;
    let challenge = CodeChallenge::parse(challenge, method)
        .map_err(|e| back(OAuthError::invalid_request(e.0)))?;

    *step = "resource";
    // 5. AS-19: the MCP server the token is for.
    let resource = resolve_resource(
        engine,
        ctx,
        client.resource.as_ref(),
        &crate::grant::requested_resources(params),
    )
    .await
    .map_err(back)?;

    *step = "client_kind";
    // 6. The MCP server's switches: private-use schemes, and registration for clients it did
    // not create. The switch decides whether that redirect URI may be used at all, so its
    // refusal is a page.
    if kind == RedirectKind::PrivateUse && !resource.private_use_redirects {
        return Err(page(OAuthError::invalid_request(format!(
            "{} does not accept redirect URIs with private-use schemes such as `{}`: the application must use a loopback or https redirect URI",
            resource.name,
            redirect_uri.split(':').next().unwrap_or_default()
        ))));
    }
    let allowed = match client.kind {
        ClientKind::Registered => resource.dynamic_registration || client.resource.is_some(),
        ClientKind::MetadataDocument => resource.metadata_documents,
        // Agents have no redirect URI, so they never get here.
        ClientKind::Agent => false,
    };
    if !allowed {
        return Err(back(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("{} does not accept this kind of client", resource.name),
        )));
    }

    *step = "scope";
    // 7. Scopes.
    let scopes =
        requested_scopes(&resource, params.single("scope").map_err(back)?).map_err(back)?;

    *step = "prompt";
    // 8. prompt.
    let prompt = parse_prompt(params.single("prompt").map_err(back)?).map_err(back)?;

    Ok(AuthorizationRequest {
        issuer: ctx.issuer.clone(),
        client,
        resource,
        redirect,
        redirect_uri_sent: requested_redirect.is_some(),
        challenge,
        scopes,
        prompt,
    })
}

fn invalid_client(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, description)
}

/// The client named by `id` at this issuer: a registered one, or a metadata document.
async fn load_client(
    engine: &Engine,
    ctx: &IssuerContext,
    id: &ClientId,
) -> Result<Arc<Client>, OAuthError> {
    if id.is_url() {
        return crate::cimd::resolve(engine, ctx, id).await;
    }
    let client = engine
        .catalog()
        .client(id)
        .await?
        .ok_or_else(|| invalid_client(format!("no client `{id}` is registered here")))?;
    // AS-34: a per-MCP-server issuer knows only its own clients.
    if let Some(r) = &ctx.resource
        && client.resource.as_ref() != Some(&r.id)
    {
        return Err(invalid_client(format!(
            "client `{id}` is not registered at this issuer"
        )));
    }
    if client.disabled_at.is_some() {
        return Err(invalid_client(format!(
            "client `{id}` is disabled by the operator of this server"
        )));
    }
    Ok(client)
}

/// The scopes to grant, by this rule (docs/authorization.md): scopes the MCP server does not
/// offer are ignored, since hosts send generic ones (`openid`, `profile`); what remains is
/// granted; if nothing remains (or nothing was asked), every scope the server offers is.
/// `offline_access` is kept when the server can issue refresh tokens.
pub fn requested_scopes(
    resource: &Resource,
    requested: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let requested = ScopeSet::parse(requested.unwrap_or(""))
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
    let offered = resource.scope_set();
    let known: ScopeSet = requested
        .iter()
        .filter(|s| offered.contains(s))
        .cloned()
        .collect();
    let base = if known.is_empty() { offered } else { known };
    let offline = resource.refresh_tokens != RefreshPolicy::Never
        && requested.iter().any(|s| s.as_str() == OFFLINE_ACCESS);
    let mut all: Vec<Scope> = base.iter().cloned().collect();
    if offline && let Ok(s) = Scope::parse(OFFLINE_ACCESS) {
        all.push(s);
    }
    Ok(all.into_iter().collect())
}

fn parse_prompt(value: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut p = Prompt::default();
    for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => p.none = true,
            "login" => p.login = true,
            "consent" => p.consent = true,
            // select_account and unknown values change nothing here.
            _ => {}
        }
    }
    if p.none && (p.login || p.consent) {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(p)
}

/// Whether `user` must be asked — `prompt=consent`, or the remembered consent does not cover
/// every scope requested — and if so, which of the requested scopes they allowed before
/// (`None`: no need to ask).
pub async fn consent_needed(
    engine: &Engine,
    user: &UserId,
    req: &AuthorizationRequest,
) -> Result<Option<ScopeSet>, OAuthError> {
    let given = engine
        .store()
        .consent(user, &req.client.id, &req.resource.id)
        .await?
        .map(|c| c.scopes)
        .unwrap_or_default();
    if req.scopes.is_subset(&given) {
        // With prompt=consent the person is asked again on purpose: every scope is the
        // question.
        return Ok(req.prompt.consent.then(ScopeSet::default));
    }
    // Step-up (MCP 2025-11-25, SEP-835): what the person allowed before is shown as such,
    // and only the rest is the question, with prompt=consent too (the Python SDK sends it
    // with every request for offline_access).
    Ok(Some(
        req.scopes
            .iter()
            .filter(|s| given.contains(s))
            .cloned()
            .collect(),
    ))
}

/// The person allowed the request: remember the consent and send the client a code.
/// Returns the redirect URL.
pub async fn approve(
    engine: &Engine,
    user: &UserId,
    req: &AuthorizationRequest,
) -> Result<String, AuthorizeError> {
    let back = |e: OAuthError| AuthorizeError::Redirect(req.redirect.clone(), e);
    let store = engine.store();
    let now = engine.now();
    let previous = store
        .consent(user, &req.client.id, &req.resource.id)
        .await
        .map_err(|e| back(e.into()))?;
    let newly_consented = req.prompt.consent
        || !previous
            .as_ref()
            .is_some_and(|c| req.scopes.is_subset(&c.scopes));
    let scopes: ScopeSet = previous
        .map(|c| c.scopes.iter().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(req.scopes.iter().cloned())
        .collect();
    store
        .save_consent(&Consent {
            user: user.clone(),
            client: req.client.id.clone(),
            resource: req.resource.id.clone(),
            scopes,
            granted_at: now,
        })
        .await
        .map_err(|e| back(e.into()))?;
    let code = crate::random::secret(CODE_PREFIX);
    let grant = Grant {
        id: GrantId::generate(),
        client: req.client.id.clone(),
        user: user.clone(),
        resource: req.resource.id.clone(),
        issuer: req.issuer.as_str().to_owned(),
        scopes: req.scopes.clone(),
        created_at: now,
        revoked_at: None,
    };
    let record = CodeRecord {
        hash: SecretHash::of(&code),
        grant: grant.id.clone(),
        redirect_uri: req.redirect.redirect_uri().to_owned(),
        redirect_uri_sent: req.redirect_uri_sent,
        challenge: req.challenge.as_str().to_owned(),
        expires_at: now.plus(engine.settings().code_ttl.min(60)),
        used_at: None,
    };
    store
        .insert_code(&grant, &record)
        .await
        .map_err(|e| back(e.into()))?;
    if newly_consented {
        engine.audit(event(EventType::ConsentGranted, now, user, req));
    }
    engine.audit(
        event(EventType::AuthorizationGranted, now, user, req).detail("grant", grant.id.as_str()),
    );
    Ok(req.redirect.with_code(&code))
}

/// The person refused: `access_denied` back to the client. Returns the redirect URL.
pub fn deny(engine: &Engine, user: &UserId, req: &AuthorizationRequest) -> String {
    engine.audit(event(
        EventType::AuthorizationDenied,
        engine.now(),
        user,
        req,
    ));
    req.redirect.with_error(&OAuthError::new(
        ErrorCode::AccessDenied,
        "the person declined the request",
    ))
}

/// `prompt=none` when the request needs a page (OpenID Connect Core §3.1.2.6): the error for
/// the client (`login_required` with `user` unset, else `consent_required`), audited as an
/// `authorization.refused` at step `prompt`. Returns the redirect URL.
pub fn needs_a_page(
    engine: &Engine,
    ctx: &IssuerContext,
    user: Option<&UserId>,
    req: &AuthorizationRequest,
) -> String {
    let e = match user {
        None => OAuthError::new(ErrorCode::LoginRequired, "nobody is signed in"),
        Some(_) => OAuthError::new(ErrorCode::ConsentRequired, "consent is needed"),
    };
    let mut event =
        crate::grant::refused(ctx.event(EventType::AuthorizationRefused, engine.now()), &e)
            .client(&req.client.id)
            .detail("step", "prompt")
            .detail("scope", req.scopes.to_param())
            .detail("redirect_uri", req.redirect.redirect_uri());
    if let Some(user) = user {
        event = event.user(user);
    }
    engine.audit(event);
    req.redirect.with_error(&e)
}

fn event(kind: EventType, at: UnixTime, user: &UserId, req: &AuthorizationRequest) -> AuditEvent {
    AuditEvent::new(kind, at)
        .resource(&req.resource.id)
        .client(&req.client.id)
        .user(user)
        .detail("scope", req.scopes.to_param())
        .detail("redirect_uri", req.redirect.redirect_uri())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewResource, ScopeDef};
    use crate::types::ResourceUri;

    fn server(policy: RefreshPolicy) -> Resource {
        let mut new = NewResource::new(
            "Todo",
            ResourceUri::parse("https://todo.example/mcp").unwrap(),
            vec![
                ScopeDef::parse("todo:read").unwrap(),
                ScopeDef::parse("todo:write").unwrap(),
            ],
        );
        new.refresh_tokens = Some(policy);
        Resource::create(new, UnixTime(0)).unwrap()
    }

    #[test]
    fn scope_rule_ignores_unknown_and_defaults_to_everything() {
        let r = server(RefreshPolicy::OfflineAccess);
        let s = |q: Option<&str>| requested_scopes(&r, q).unwrap().to_param();
        assert_eq!(s(Some("todo:read")), "todo:read");
        assert_eq!(s(Some("todo:read openid profile")), "todo:read");
        assert_eq!(s(Some("openid email profile")), "todo:read todo:write");
        assert_eq!(s(None), "todo:read todo:write");
        assert_eq!(
            s(Some("todo:write offline_access")),
            "todo:write offline_access"
        );
        let never = server(RefreshPolicy::Never);
        assert_eq!(
            requested_scopes(&never, Some("todo:write offline_access"))
                .unwrap()
                .to_param(),
            "todo:write"
        );
        assert_eq!(
            requested_scopes(&r, Some("bad\"scope")).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn prompt_values() {
        assert_eq!(parse_prompt(None).unwrap(), Prompt::default());
        let p = parse_prompt(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert!(parse_prompt(Some("none")).unwrap().none);
        assert!(parse_prompt(Some("none login")).is_err());
        assert_eq!(
            parse_prompt(Some("select_account")).unwrap(),
            Prompt::default()
        );
    }
}
