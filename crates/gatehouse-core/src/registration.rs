//! Dynamic Client Registration (RFC 7591) and its read and delete operations (RFC 7592).
//!
//! Pipeline: registration on at this issuer → a JSON object → redirect URIs (https, loopback
//! or a private-use scheme; `docs/authorization.md`) → application type → auth method (omitted → `none`) → grant and response types →
//! name, scope, URLs → store, with unknown metadata kept → 201 echoing it all.

use serde_json::{Map, Value, json};

use crate::audit::{AuditEvent, EventType};
use crate::engine::{Engine, IssuerContext};
use crate::error::{ErrorCode, OAuthError};
use crate::metadata::paths;
use crate::model::{Client, ClientKind, TokenAuthMethod};
use crate::redirect::{ApplicationType, RedirectKind, RedirectUri};
use crate::secret::{ClientSecret, SecretHash};
use crate::types::{ClientId, ScopeSet};

/// Prefix of registration access tokens.
const REGISTRATION_TOKEN_PREFIX: &str = "ghg_";
/// Fields holding URLs that must be valid when present (the TS SDK rejects invalid ones).
const URL_FIELDS: [&str; 5] = [
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
];
/// Fields set by the server, never taken from the request.
const SERVER_FIELDS: [&str; 6] = [
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
];

fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// Registers a client at `ctx`'s registration endpoint. Returns the RFC 7591 §3.2.1 body.
/// Audited either way.
pub async fn register(
    engine: &Engine,
    ctx: &IssuerContext,
    body: &[u8],
) -> Result<Value, OAuthError> {
    let result = register_client(engine, ctx, body).await;
    let event = match &result {
        Ok(b) => ctx
            .event(EventType::ClientRegistered, engine.now())
            .client(b["client_id"].as_str().unwrap_or_default())
            .detail("client_name", b.get("client_name").cloned())
            .detail("redirect_uris", b["redirect_uris"].clone())
            .detail(
                "token_endpoint_auth_method",
                b["token_endpoint_auth_method"].clone(),
            ),
        Err(e) => {
            // What the host called itself, if the body says (its text, cut short).
            let name = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|m| m.get("client_name")?.as_str().map(str::to_owned))
                .map(|n| {
                    n.chars()
                        .filter(|c| !c.is_control())
                        .take(100)
                        .collect::<String>()
                });
            ctx.event(EventType::ClientRegistrationRefused, engine.now())
                .detail("error", e.code.as_str())
                .detail("reason", e.description.as_str())
                .detail("client_name", name)
        }
    };
    engine.audit(event);
    result
}

async fn register_client(
    engine: &Engine,
    ctx: &IssuerContext,
    body: &[u8],
) -> Result<Value, OAuthError> {
    ensure_enabled(engine, ctx).await?;
    let Ok(Value::Object(mut meta)) = serde_json::from_slice::<Value>(body) else {
        return Err(metadata_error(
            "the body must be a JSON object of client metadata",
        ));
    };
    for f in SERVER_FIELDS {
        meta.remove(f);
    }

    let redirect_uris = redirect_uris(&meta)?;
    let application_type = application_type(&meta, &redirect_uris)?;
    private_use_allowed(engine, ctx, &redirect_uris).await?;
    let has_keys = crate::client_keys::check_metadata(
        &Value::Object(meta.clone()),
        engine.dev_loopback_fetches(),
    )
    .map_err(metadata_error)?;
    let auth_method = match meta.get("token_endpoint_auth_method") {
        // A client that registers keys means to sign with them.
        None | Some(Value::Null) if has_keys => TokenAuthMethod::PrivateKeyJwt,
        // MCP clients often omit it; they are native apps without a secret.
        None | Some(Value::Null) => TokenAuthMethod::None,
        Some(Value::String(m)) => TokenAuthMethod::parse(m).ok_or_else(|| {
            metadata_error(format!(
                "token_endpoint_auth_method `{m}` is not supported: use none, client_secret_basic, client_secret_post or private_key_jwt"
            ))
        })?,
        Some(_) => return Err(metadata_error("token_endpoint_auth_method must be a string")),
    };
    if auth_method == TokenAuthMethod::PrivateKeyJwt && !has_keys {
        return Err(metadata_error(
            "token_endpoint_auth_method private_key_jwt needs jwks or jwks_uri",
        ));
    }
    let grant_types = string_list(&meta, "grant_types", &["authorization_code"])?;
    for g in &grant_types {
        if !matches!(g.as_str(), "authorization_code" | "refresh_token") {
            return Err(metadata_error(format!(
                "grant type `{g}` cannot be registered: self-registered clients use authorization_code and refresh_token"
            )));
        }
    }
    let response_types = string_list(&meta, "response_types", &["code"])?;
    if response_types.iter().any(|r| r != "code") {
        return Err(metadata_error("response_types may only contain `code`"));
    }
    let name = match meta.get("client_name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(n)) => n.trim().chars().take(100).collect(),
        Some(_) => return Err(metadata_error("client_name must be a string")),
    };
    let scopes = match meta.get("scope") {
        None | Some(Value::Null) => ScopeSet::default(),
        Some(Value::String(s)) => {
            ScopeSet::parse(s).map_err(|e| metadata_error(format!("scope: {e}")))?
        }
        Some(_) => return Err(metadata_error("scope must be a space-separated string")),
    };
    for f in URL_FIELDS {
        match meta.get(f) {
            None | Some(Value::Null) => {}
            Some(Value::String(u)) if url::Url::parse(u).is_ok() => {}
            Some(_) => return Err(metadata_error(format!("{f} must be a valid URL"))),
        }
    }

    // What is stored and echoed: the request with the defaults made explicit.
    meta.insert(
        "redirect_uris".into(),
        json!(
            redirect_uris
                .iter()
                .map(RedirectUri::as_str)
                .collect::<Vec<_>>()
        ),
    );
    meta.insert(
        "token_endpoint_auth_method".into(),
        json!(auth_method.as_str()),
    );
    meta.insert("application_type".into(), json!(application_type));
    meta.insert("grant_types".into(), json!(grant_types));
    meta.insert("response_types".into(), json!(response_types));

    let secret = matches!(
        auth_method,
        TokenAuthMethod::ClientSecretBasic | TokenAuthMethod::ClientSecretPost
    )
    .then(ClientSecret::generate);
    let registration_token = crate::random::secret(REGISTRATION_TOKEN_PREFIX);
    let now = engine.now();
    let client = Client {
        id: ClientId::generate_registered(),
        resource: ctx.resource.as_ref().map(|r| r.id.clone()),
        name,
        kind: ClientKind::Registered,
        secret_hash: secret.as_ref().map(ClientSecret::hash),
        scopes,
        redirect_uris,
        auth_method,
        metadata: Value::Object(meta),
        registration_token_hash: Some(SecretHash::of(&registration_token)),
        created_at: now,
        last_used_at: None,
        disabled_at: None,
        tokens_revoked_at: None,
    };
    engine.store().insert_client(&client).await?;
    engine.invalidate();

    let mut body = describe(ctx, &client);
    if let Some(s) = &secret {
        body["client_secret"] = json!(s.expose_secret());
        // RFC 7591 §3.2.1: 0 means the secret does not expire.
        body["client_secret_expires_at"] = json!(0);
    }
    body["registration_access_token"] = json!(registration_token);
    Ok(body)
}

/// RFC 7592 §2.1: reads a registration, authorised by its registration access token.
pub async fn read(
    engine: &Engine,
    ctx: &IssuerContext,
    client_id: &str,
    authorization: Option<&str>,
) -> Result<Value, OAuthError> {
    let client = authorised(engine, ctx, client_id, authorization).await?;
    Ok(describe(ctx, &client))
}

/// RFC 7592 §2.3: deletes a registration (and with it the client's grants).
pub async fn delete(
    engine: &Engine,
    ctx: &IssuerContext,
    client_id: &str,
    authorization: Option<&str>,
) -> Result<(), OAuthError> {
    let client = authorised(engine, ctx, client_id, authorization).await?;
    engine
        .store()
        .delete_client(&client.id, engine.now())
        .await?;
    engine.invalidate();
    let mut event = AuditEvent::new(EventType::ClientDeleted, engine.now())
        .client(&client.id)
        .actor("registration access token");
    if let Some(r) = &client.resource {
        event = event.resource(r);
    }
    engine.audit(event);
    Ok(())
}

/// The RFC 7592 URL of a registration.
pub fn registration_client_uri(ctx: &IssuerContext, id: &ClientId) -> String {
    format!("{}/{}", ctx.issuer.join(paths::REGISTER), id)
}

/// The registration as RFC 7591 §3.2.1 shows it (without secrets).
fn describe(ctx: &IssuerContext, client: &Client) -> Value {
    let mut body = match &client.metadata {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    body.insert("client_id".into(), json!(client.id.as_str()));
    body.insert("client_id_issued_at".into(), json!(client.created_at.0));
    body.insert(
        "registration_client_uri".into(),
        json!(registration_client_uri(ctx, &client.id)),
    );
    Value::Object(body)
}

async fn ensure_enabled(engine: &Engine, ctx: &IssuerContext) -> Result<(), OAuthError> {
    let on = match &ctx.resource {
        Some(r) => r.dynamic_registration,
        None => engine
            .catalog()
            .resources()
            .await?
            .iter()
            .any(|r| r.dynamic_registration),
    };
    if on {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "dynamic client registration is turned off here; ask the operator for a client",
        ))
    }
}

async fn authorised(
    engine: &Engine,
    ctx: &IssuerContext,
    client_id: &str,
    authorization: Option<&str>,
) -> Result<std::sync::Arc<Client>, OAuthError> {
    // RFC 7592 §2: every failure looks the same, so registrations cannot be probed.
    let denied = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the registration access token is not valid for this client",
        )
    };
    let token = authorization
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(denied)?;
    let id = ClientId::parse(client_id).map_err(|_| denied())?;
    let client = engine.catalog().client(&id).await?.ok_or_else(denied)?;
    let at_issuer = client.resource.as_ref() == ctx.resource.as_ref().map(|r| &r.id);
    let hash = client.registration_token_hash.as_ref().ok_or_else(denied)?;
    if !at_issuer || !hash.verify(&ClientSecret::new(token)) {
        return Err(denied());
    }
    Ok(client)
}

/// The client's `application_type` (OpenID Connect DCR §2), checked against its redirect URIs.
fn application_type(
    meta: &Map<String, Value>,
    redirect_uris: &[RedirectUri],
) -> Result<&'static str, OAuthError> {
    let declared = match meta.get("application_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(ApplicationType::parse(t).ok_or_else(|| {
            metadata_error(format!(
                "application_type `{}` is not one of web or native",
                t.chars().take(40).collect::<String>()
            ))
        })?),
        Some(_) => return Err(metadata_error("application_type must be a string")),
    };
    ApplicationType::of(declared, redirect_uris)
        .map(ApplicationType::as_str)
        .map_err(|e| OAuthError::new(ErrorCode::InvalidRedirectUri, e))
}

/// Refuses private-use redirect URIs where the MCP server (at the root: every server that
/// takes registrations) turned them off.
async fn private_use_allowed(
    engine: &Engine,
    ctx: &IssuerContext,
    redirect_uris: &[RedirectUri],
) -> Result<(), OAuthError> {
    let Some(u) = redirect_uris
        .iter()
        .find(|u| u.kind() == RedirectKind::PrivateUse)
    else {
        return Ok(());
    };
    let allowed = match &ctx.resource {
        Some(r) => r.private_use_redirects,
        None => engine
            .catalog()
            .resources()
            .await?
            .iter()
            .any(|r| r.dynamic_registration && r.private_use_redirects),
    };
    if allowed {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            format!(
                "redirect URI `{u}` uses a private-use scheme, which this server does not accept: use a loopback or https redirect URI"
            ),
        ))
    }
}

fn redirect_uris(meta: &Map<String, Value>) -> Result<Vec<RedirectUri>, OAuthError> {
    let bad = |d: String| OAuthError::new(ErrorCode::InvalidRedirectUri, d);
    let Some(Value::Array(list)) = meta.get("redirect_uris") else {
        return Err(bad(
            "redirect_uris is required: a non-empty array of URLs".into()
        ));
    };
    if list.is_empty() {
        return Err(bad("redirect_uris must not be empty".into()));
    }
    if list.len() > 20 {
        return Err(bad("at most 20 redirect URIs may be registered".into()));
    }
    list.iter()
        .map(|v| {
            let s = v
                .as_str()
                .ok_or_else(|| bad("each redirect URI must be a string".into()))?;
            RedirectUri::parse(s).map_err(|e| bad(e.0))
        })
        .collect()
}

fn string_list(
    meta: &Map<String, Value>,
    field: &str,
    default: &[&str],
) -> Result<Vec<String>, OAuthError> {
    match meta.get(field) {
        None | Some(Value::Null) => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| metadata_error(format!("{field} must be an array of strings")))
            })
            .collect(),
        Some(_) => Err(metadata_error(format!(
            "{field} must be an array of strings"
        ))),
    }
}
