//! Operator actions on MCP servers, clients, people and keys, shared by the CLI and (later) the admin
//! API. They take the store directly: the CLI runs them against the data directory while the
//! server runs, and the server sees the change through the store's change version.

use crate::clock::UnixTime;
use crate::keys::{KeyError, SigningAlg, StoredKey};
use crate::model::{
    ApiKey, Client, ClientKind, NewResource, Resource, TokenAuthMethod, User, normalize_email,
};
use crate::password::Password;
use crate::records::Consent;
use crate::secret::ClientSecret;
use crate::secret::SecretHash;
use crate::store::{ConsentFilter, Store, StoreError};
use crate::types::{ApiKeyId, ClientId, ResourceId, ScopeSet, UserId};

/// Why an operator action failed. Messages are written for the operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// What it refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Key generation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AdminError::Conflict(m),
            other => AdminError::Store(other),
        }
    }
}

/// Generates and stores a key for `alg` unless one exists; `true` if it made one.
pub async fn ensure_signing_key(
    store: &dyn Store,
    alg: SigningAlg,
    now: UnixTime,
) -> Result<bool, AdminError> {
    if store.keys().await?.iter().any(|k| k.alg == alg) {
        return Ok(false);
    }
    store.insert_key(&StoredKey::generate(alg, now)?).await?;
    Ok(true)
}

/// Registers an MCP server, and a signing key for its algorithm if none exists yet.
pub async fn register_resource(
    store: &dyn Store,
    new: NewResource,
    now: UnixTime,
) -> Result<Resource, AdminError> {
    let resource = Resource::create(new, now).map_err(|e| AdminError::Invalid(e.0))?;
    if let Some(same) = store
        .resources()
        .await?
        .into_iter()
        .find(|r| r.url.matches(resource.url.as_str()))
    {
        return Err(AdminError::Conflict(format!(
            "{} is already registered as {} (\"{}\")",
            resource.url, same.id, same.name
        )));
    }
    ensure_signing_key(store, resource.signing_alg, now).await?;
    store.insert_resource(&resource).await?;
    Ok(resource)
}

/// Looks up an MCP server by id.
pub async fn resource(store: &dyn Store, id: &str) -> Result<Resource, AdminError> {
    let parsed = ResourceId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    store
        .resource(&parsed)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no MCP server {id}")))
}

/// Removes an MCP server and its clients.
pub async fn remove_resource(store: &dyn Store, id: &str) -> Result<(), AdminError> {
    let parsed = ResourceId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    if store.delete_resource(&parsed).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("no MCP server {id}")))
    }
}

/// Creates an agent (client-credentials) client for an MCP server. The secret is returned
/// once and only its hash is stored.
pub async fn create_agent_client(
    store: &dyn Store,
    resource_id: &str,
    name: &str,
    scopes: ScopeSet,
    now: UnixTime,
) -> Result<(Client, ClientSecret), AdminError> {
    let resource = resource(store, resource_id).await?;
    let name = crate::model::display_name(name).map_err(|e| AdminError::Invalid(e.0))?;
    let name = name.as_str();
    let unknown = scopes.missing_from(&resource.scope_set());
    if !unknown.is_empty() {
        return Err(AdminError::Invalid(format!(
            "{} does not offer: {unknown} (it offers: {})",
            resource.id,
            resource.scope_set()
        )));
    }
    let secret = ClientSecret::generate();
    let client = Client {
        id: ClientId::generate_agent(),
        resource: Some(resource.id),
        name: name.to_owned(),
        kind: ClientKind::Agent,
        secret_hash: Some(secret.hash()),
        scopes,
        redirect_uris: Vec::new(),
        auth_method: TokenAuthMethod::ClientSecretBasic,
        metadata: serde_json::json!({}),
        registration_token_hash: None,
        created_at: now,
        last_used_at: None,
    };
    store.insert_client(&client).await?;
    Ok((client, secret))
}

/// Removes a client; its grants go with it and their access tokens are revoked.
pub async fn remove_client(store: &dyn Store, id: &str, now: UnixTime) -> Result<(), AdminError> {
    let parsed = ClientId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    if store.delete_client(&parsed, now).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("no client {id}")))
    }
}

/// Gives an agent client a new secret, shown once; the old one stops working at once (tokens
/// already issued stay valid until they expire).
pub async fn rotate_client_secret(
    store: &dyn Store,
    id: &str,
) -> Result<(Client, ClientSecret), AdminError> {
    let parsed = ClientId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    let client = store
        .client(&parsed)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client {id}")))?;
    if client.kind != ClientKind::Agent {
        return Err(AdminError::Invalid(format!(
            "{id} is a {} client: only agent clients have a secret the operator manages",
            client.kind.as_str()
        )));
    }
    let secret = ClientSecret::generate();
    if !store.replace_client_secret(&parsed, &secret.hash()).await? {
        return Err(AdminError::NotFound(format!("no client {id}")));
    }
    Ok((client, secret))
}

/// The consents matching `filter`, oldest first.
pub async fn consents(
    store: &dyn Store,
    filter: &ConsentFilter,
) -> Result<Vec<Consent>, AdminError> {
    Ok(store.consents(filter).await?)
}

/// Withdraws what `user` allowed `client` at `resource`: the consent goes and every token
/// issued from it is revoked; the person is asked again next time.
pub async fn revoke_consent(
    store: &dyn Store,
    user: &str,
    client: &str,
    resource: &str,
    now: UnixTime,
) -> Result<(UserId, ClientId, ResourceId), AdminError> {
    let u = self::user(store, user).await?.id;
    let c = ClientId::parse(client).map_err(|e| AdminError::Invalid(e.0))?;
    let r = ResourceId::parse(resource).map_err(|e| AdminError::Invalid(e.0))?;
    if store.revoke_consent(&u, &c, &r, now).await? {
        Ok((u, c, r))
    } else {
        Err(AdminError::NotFound(format!(
            "{user} has no consent for {client} at {resource}"
        )))
    }
}

/// Creates a person who signs in with `email` and `password`. Hashing the password costs
/// ~24 ms.
pub async fn create_user(
    store: &dyn Store,
    email: &str,
    password: &Password,
    now: UnixTime,
) -> Result<User, AdminError> {
    create_user_with_hash(store, email, password.hash(), now).await
}

/// Creates a person from a password already hashed (with [`Password::hash`], off the async
/// threads).
pub async fn create_user_with_hash(
    store: &dyn Store,
    email: &str,
    password_hash: String,
    now: UnixTime,
) -> Result<User, AdminError> {
    let email = normalize_email(email).map_err(|e| AdminError::Invalid(e.0))?;
    if store.user_by_email(&email).await?.is_some() {
        return Err(AdminError::Conflict(format!(
            "{email} already has an account"
        )));
    }
    let user = User {
        id: UserId::generate(),
        email,
        password_hash,
        admin: false,
        created_at: now,
    };
    store.insert_user(&user).await?;
    Ok(user)
}

/// Makes a person an administrator, or not.
pub async fn set_admin(
    store: &dyn Store,
    id_or_email: &str,
    admin: bool,
) -> Result<User, AdminError> {
    let u = user(store, id_or_email).await?;
    store.set_admin(&u.id, admin).await?;
    Ok(User { admin, ..u })
}

/// Prefix of admin API key secrets, so that secret scanners recognise them.
pub const API_KEY_PREFIX: &str = "gha_";

/// Creates an API key acting as administrator `owner`; the secret is returned once.
pub async fn create_api_key(
    store: &dyn Store,
    owner: &str,
    name: &str,
    now: UnixTime,
) -> Result<(ApiKey, ClientSecret), AdminError> {
    let u = user(store, owner).await?;
    if !u.admin {
        return Err(AdminError::Invalid(format!(
            "{} is not an administrator: make them one first (gatehouse users set-admin {} on)",
            u.email, u.email
        )));
    }
    let name = crate::model::display_name(name).map_err(|e| AdminError::Invalid(e.0))?;
    let secret = ClientSecret::new(crate::random::secret(API_KEY_PREFIX));
    let key = ApiKey {
        id: ApiKeyId::generate(),
        name,
        user: u.id,
        secret_hash: SecretHash::of(secret.expose_secret()),
        created_at: now,
        revoked_at: None,
    };
    store.insert_api_key(&key).await?;
    Ok((key, secret))
}

/// Revokes an API key; requests with it are refused from now on.
pub async fn revoke_api_key(store: &dyn Store, id: &str, now: UnixTime) -> Result<(), AdminError> {
    let parsed = ApiKeyId::parse(id).map_err(|e| AdminError::Invalid(e.0))?;
    if store.revoke_api_key(&parsed, now).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("no API key {id}")))
    }
}

/// Why a request to the admin API or dashboard is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No credential, or one that does not (or no longer) exists or was revoked: 401.
    Unauthenticated,
    /// A valid credential of someone who is not an administrator: 403.
    NotAdmin,
}

/// The administrator an API key secret acts as. One SHA-256 and one lookup.
pub async fn api_key_holder(
    store: &dyn Store,
    secret: &str,
) -> Result<Result<User, Denied>, StoreError> {
    let Some(key) = store.api_key(&SecretHash::of(secret)).await? else {
        return Ok(Err(Denied::Unauthenticated));
    };
    if key.revoked_at.is_some() {
        return Ok(Err(Denied::Unauthenticated));
    }
    Ok(match store.user(&key.user).await? {
        None => Err(Denied::Unauthenticated),
        Some(u) if !u.admin => Err(Denied::NotAdmin),
        Some(u) => Ok(u),
    })
}

/// What to change of an MCP server; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ResourceChange {
    pub name: Option<String>,
    pub url: Option<crate::types::ResourceUri>,
    pub scopes: Option<Vec<crate::model::ScopeDef>>,
    pub token_ttl: Option<u32>,
    pub signing_alg: Option<SigningAlg>,
    pub refresh_tokens: Option<crate::model::RefreshPolicy>,
    pub dynamic_registration: Option<bool>,
    pub metadata_documents: Option<bool>,
}

/// Changes an MCP server, with the same rules as registering one. Tokens already issued keep
/// their audience and lifetime; a new URL means tokens for the old one no longer fit it.
pub async fn update_resource(
    store: &dyn Store,
    id: &str,
    change: ResourceChange,
    now: UnixTime,
) -> Result<Resource, AdminError> {
    let old = resource(store, id).await?;
    let mut desired = NewResource::new(
        change.name.unwrap_or_else(|| old.name.clone()),
        change.url.unwrap_or_else(|| old.url.clone()),
        change.scopes.unwrap_or_else(|| old.scopes.clone()),
    );
    desired.token_ttl = Some(change.token_ttl.unwrap_or(old.token_ttl));
    desired.signing_alg = Some(change.signing_alg.unwrap_or(old.signing_alg));
    desired.refresh_tokens = Some(change.refresh_tokens.unwrap_or(old.refresh_tokens));
    desired.dynamic_registration = Some(
        change
            .dynamic_registration
            .unwrap_or(old.dynamic_registration),
    );
    desired.metadata_documents = Some(change.metadata_documents.unwrap_or(old.metadata_documents));
    let updated = Resource {
        id: old.id.clone(),
        created_at: old.created_at,
        ..Resource::create(desired, old.created_at).map_err(|e| AdminError::Invalid(e.0))?
    };
    if let Some(same) = store
        .resources()
        .await?
        .into_iter()
        .find(|r| r.id != updated.id && r.url.matches(updated.url.as_str()))
    {
        return Err(AdminError::Conflict(format!(
            "{} is already registered as {} (\"{}\")",
            updated.url, same.id, same.name
        )));
    }
    ensure_signing_key(store, updated.signing_alg, now).await?;
    if !store.update_resource(&updated).await? {
        return Err(AdminError::NotFound(format!("no MCP server {id}")));
    }
    Ok(updated)
}

/// The person with this id (`usr_…`) or email.
pub async fn user(store: &dyn Store, id_or_email: &str) -> Result<User, AdminError> {
    let found = match UserId::parse(id_or_email) {
        Ok(id) => store.user(&id).await?,
        Err(_) => match normalize_email(id_or_email) {
            Ok(email) => store.user_by_email(&email).await?,
            Err(_) => None,
        },
    };
    found.ok_or_else(|| AdminError::NotFound(format!("no user {id_or_email}")))
}

/// Removes a person: their sessions and consents go, and every token issued to clients on
/// their behalf is revoked.
pub async fn remove_user(
    store: &dyn Store,
    id_or_email: &str,
    now: UnixTime,
) -> Result<User, AdminError> {
    let u = user(store, id_or_email).await?;
    store.delete_user(&u.id, now).await?;
    Ok(u)
}
