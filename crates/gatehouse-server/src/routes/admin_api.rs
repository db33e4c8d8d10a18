//! The admin REST API, `/admin/api/v1`: API keys as bearer tokens (`gatehouse api-keys
//! create`), JSON in and out, errors as `{"error": {"code", "message"}}` with stable codes,
//! lists paged with `limit` and `cursor`. Its OpenAPI document is generated from these
//! handlers and served at `/admin/api/v1/openapi.json`. Every change is audited with the
//! administrator as actor.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use gatehouse_core::ResourceUri;
use gatehouse_core::admin::{self, AdminError, Denied};
use gatehouse_core::audit::{AuditQuery, EventType, Outcome};
use gatehouse_core::keys::SigningAlg;
use gatehouse_core::model::{NewResource, RefreshPolicy, Resource, ScopeDef, User};
use gatehouse_core::signin::{
    Connection, ConnectionKind, Method, NewConnection, SignInPolicy, parse_methods,
};
use gatehouse_core::store::StoreError;
use serde::{Deserialize, Serialize};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::audit::{parse_time, rfc3339};

/// Where the API is mounted.
pub const BASE: &str = "/admin/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse admin API",
        description = "Manage MCP servers and read the audit log. Authenticate with an API key \
                       (`gatehouse api-keys create`) as a bearer token.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "api_key",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, delete_server, update_server))
        .routes(routes!(list_audit))
        .routes(routes!(list_clients, create_client))
        .routes(routes!(delete_client, update_client))
        .routes(routes!(rotate_client_secret))
        .routes(routes!(list_consents, revoke_consent))
        .routes(routes!(list_users, create_user))
        .routes(routes!(delete_user, update_user))
        .routes(routes!(reset_password))
        .routes(routes!(list_sessions, end_sessions))
        .routes(routes!(end_session))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
        .routes(routes!(list_signing_keys))
        .routes(routes!(rotate_signing_keys))
        .routes(routes!(get_sign_in, set_sign_in))
        .routes(routes!(list_connections, create_connection))
        .routes(routes!(
            get_connection,
            update_connection,
            delete_connection
        ))
        .split_for_parts();
    doc.servers = Some(vec![utoipa::openapi::Server::new(BASE)]);
    (api, doc)
}

/// The API's routes and its OpenAPI document (served at `{BASE}/openapi.json`).
pub fn router() -> Router<AppState> {
    let (api, doc) = api();
    let doc = Json(doc);
    let api = api
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { doc.clone() }),
        )
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        });
    // Administrative data is never cached, by a browser or anything in between.
    Router::new()
        .nest(BASE, api)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

// ---------------------------------------------------------------- errors

/// An error: a stable `code` for programs and a `message` for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
struct ErrorDetail {
    /// One of `unauthenticated`, `forbidden`, `not_found`, `invalid`, `conflict`,
    /// `unavailable`.
    code: &'static str,
    message: String,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: ErrorDetail {
                    code,
                    message: message.into(),
                },
            },
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="gatehouse-admin""#),
            );
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) => ApiError::invalid(m),
            AdminError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            AdminError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            AdminError::Store(e) => e.into(),
            AdminError::Key(e) => {
                tracing::error!(error = %e, "admin API: key failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "unavailable",
                    "a signing key could not be made",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "admin API: storage failure");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database could not be reached; try again",
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::invalid(format!(
            "the body is not what this endpoint takes: {}",
            e.body_text()
        ))
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON object body. serde would also build a struct from a JSON array of its fields in
/// order; the API documents objects, so anything else is refused.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, s: &AppState) -> Result<Self, ApiError> {
        let Json(v) = Json::<serde_json::Value>::from_request(req, s).await?;
        if !v.is_object() {
            return Err(ApiError::invalid("the body must be a JSON object"));
        }
        serde_json::from_value(v).map(Body).map_err(|e| {
            ApiError::invalid(format!("the body is not what this endpoint takes: {e}"))
        })
    }
}

// ---------------------------------------------------------------- authentication

/// The administrator a request acts as, from its `Authorization: Bearer gha_…` API key.
pub struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        // RFC 6750 §2.1 (RFC 9110 §11.1): the scheme name is case-insensitive.
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, k)| k.trim())
            .filter(|k| !k.is_empty());
        let unauthenticated = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send an API key as `Authorization: Bearer gha_…` (gatehouse api-keys create)",
            )
        };
        let Some(key) = key else {
            return Err(unauthenticated());
        };
        match admin::api_key_holder(s.engine.store().as_ref(), key).await? {
            Ok(user) => Ok(Admin(user)),
            Err(Denied::Unauthenticated) => Err(unauthenticated()),
            Err(Denied::NotAdmin) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key belongs to someone who is not an administrator",
            )),
        }
    }
}

/// Query parameters, with malformed ones answered as an [`ApiError`] like everything else.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, s)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::invalid(format!("query: {}", e.body_text())))
    }
}

// ---------------------------------------------------------------- MCP servers

/// A scope an MCP server offers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScopeView {
    /// The scope token, e.g. `todo:read`.
    #[schema(pattern = "^[!#-\\[\\]-~]+$")]
    name: String,
    /// What it allows, shown on the consent page.
    #[serde(default)]
    description: String,
}

/// A registered MCP server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerView {
    /// `res_…`
    id: String,
    name: String,
    /// The MCP server's URL: the token audience.
    url: String,
    /// Its own issuer.
    issuer: String,
    scopes: Vec<ScopeView>,
    /// Access-token lifetime in seconds.
    token_ttl: u32,
    /// `RS256`, `ES256` or `EdDSA`.
    signing_alg: String,
    /// `always`, `offline_access` or `never`.
    refresh_tokens: String,
    dynamic_registration: bool,
    metadata_documents: bool,
    /// Whether native apps may use private-use scheme redirect URIs (`cursor://…`).
    private_use_redirects: bool,
    /// The sign-in methods it offers (`password`, `email_code`, `passkey`, `conn_…`), in
    /// order; null when it offers the defaults (`GET /sign-in`).
    sign_in_methods: Option<Vec<String>>,
    /// RFC 3339.
    created_at: String,
    /// The Protected Resource Metadata the MCP server publishes.
    #[schema(value_type = Object)]
    protected_resource_metadata: serde_json::Value,
}

fn server_view(s: &AppState, r: &Resource) -> ServerView {
    let public = s.engine.public_issuer();
    ServerView {
        id: r.id.to_string(),
        name: r.name.clone(),
        url: r.url.to_string(),
        issuer: r.issuer(public).to_string(),
        scopes: r
            .scopes
            .iter()
            .map(|d| ScopeView {
                name: d.name.to_string(),
                description: d.description.clone(),
            })
            .collect(),
        token_ttl: r.token_ttl,
        signing_alg: r.signing_alg.as_str().to_owned(),
        refresh_tokens: r.refresh_tokens.as_str().to_owned(),
        dynamic_registration: r.dynamic_registration,
        metadata_documents: r.metadata_documents,
        private_use_redirects: r.private_use_redirects,
        sign_in_methods: r
            .sign_in_methods
            .as_ref()
            .map(|m| m.iter().map(|x| x.to_string()).collect()),
        created_at: rfc3339(r.created_at),
        protected_resource_metadata: r.protected_resource_metadata(public),
    }
}

/// What to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewServer {
    /// Shown to people on consent.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// The MCP server's URL (https, or http on loopback).
    #[schema(pattern = "^https?://[^/?#\\s]+")]
    url: String,
    #[serde(default)]
    scopes: Vec<ScopeView>,
    /// Access-token lifetime in seconds, 60 to 86400 (default 3600).
    #[schema(minimum = 60, maximum = 86400)]
    token_ttl: Option<u32>,
    /// `RS256` (default), `ES256` or `EdDSA`.
    #[schema(pattern = "^(RS256|ES256|EdDSA)$")]
    signing_alg: Option<String>,
    /// `always`, `offline_access` (default) or `never`.
    #[schema(pattern = "^(always|offline_access|never)$")]
    refresh_tokens: Option<String>,
    /// Default true.
    dynamic_registration: Option<bool>,
    /// Default true.
    metadata_documents: Option<bool>,
    /// Whether native apps may use private-use scheme redirect URIs; default true.
    private_use_redirects: Option<bool>,
    /// The sign-in methods it offers, in order; absent or null for the defaults.
    #[schema(min_items = 1)]
    sign_in_methods: Option<Vec<String>>,
}

/// A page of MCP servers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerPage {
    items: Vec<ServerView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Paging of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// At most this many (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of `all` (sorted by id) after `cursor`.
fn page<T>(
    mut all: Vec<T>,
    id: impl Fn(&T) -> String,
    p: &PageParams,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 200"));
    }
    all.sort_by_key(&id);
    if let Some(c) = &p.cursor {
        all.retain(|x| id(x).as_str() > c.as_str());
    }
    let more = all.len() > limit as usize;
    all.truncate(limit as usize);
    let next = if more { all.last().map(&id) } else { None };
    Ok((all, next))
}

/// List MCP servers, by id.
#[utoipa::path(get, path = "/servers", params(PageParams), tag = "servers",
    responses(
        (status = 200, body = ServerPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    ))]
async fn list_servers(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<ServerPage>> {
    let all = s.engine.store().resources().await?;
    let (items, next_cursor) = page(all, |r| r.id.to_string(), &p)?;
    Ok(Json(ServerPage {
        items: items.iter().map(|r| server_view(&s, r)).collect(),
        next_cursor,
    }))
}

/// Register an MCP server.
#[utoipa::path(post, path = "/servers", request_body = NewServer, tag = "servers",
    responses(
        (status = 201, body = ServerView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)
    ))]
async fn create_server(
    State(s): State<AppState>,
    Admin(who): Admin,
    Body(n): Body<NewServer>,
) -> ApiResult<(StatusCode, Json<ServerView>)> {
    let url = ResourceUri::parse(&n.url).map_err(|e| ApiError::invalid(format!("url: {}", e.0)))?;
    let mut new = NewResource::new(n.name, url, scope_defs(&n.scopes)?);
    new.token_ttl = n.token_ttl;
    new.signing_alg = n.signing_alg.as_deref().map(alg).transpose()?;
    new.refresh_tokens = n
        .refresh_tokens
        .as_deref()
        .map(refresh_policy)
        .transpose()?;
    new.dynamic_registration = n.dynamic_registration;
    new.metadata_documents = n.metadata_documents;
    new.private_use_redirects = n.private_use_redirects;
    new.sign_in_methods = n.sign_in_methods.as_deref().map(methods).transpose()?;
    let r = s.engine.operator(&who.id).register_resource(new).await?;
    s.engine.invalidate();
    Ok((StatusCode::CREATED, Json(server_view(&s, &r))))
}

/// One MCP server.
#[utoipa::path(get, path = "/servers/{id}", tag = "servers",
    params(("id" = String, Path, description = "res_…", pattern = "^res_[A-Za-z0-9]{1,60}$")),
    responses(
        (status = 200, body = ServerView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn get_server(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<ServerView>> {
    let r = admin::resource(s.engine.store().as_ref(), &id).await?;
    Ok(Json(server_view(&s, &r)))
}

/// What to change of an MCP server; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerChange {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[schema(pattern = "^https?://[^/?#\\s]+")]
    url: Option<String>,
    /// Replaces every scope.
    scopes: Option<Vec<ScopeView>>,
    #[schema(minimum = 60, maximum = 86400)]
    token_ttl: Option<u32>,
    #[schema(pattern = "^(RS256|ES256|EdDSA)$")]
    signing_alg: Option<String>,
    #[schema(pattern = "^(always|offline_access|never)$")]
    refresh_tokens: Option<String>,
    dynamic_registration: Option<bool>,
    metadata_documents: Option<bool>,
    private_use_redirects: Option<bool>,
    /// Replaces the sign-in methods; null goes back to the defaults.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, nullable, min_items = 1)]
    sign_in_methods: Option<Option<Vec<String>>>,
}

/// A field that may be absent (outer `None`) or null (inner `None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn methods(names: &[String]) -> ApiResult<Vec<Method>> {
    parse_methods(names.iter().map(String::as_str))
        .map_err(|e| ApiError::invalid(format!("sign_in_methods: {}", e.0)))
}

fn scope_defs(scopes: &[ScopeView]) -> ApiResult<Vec<ScopeDef>> {
    scopes
        .iter()
        .map(|sc| {
            let text = if sc.description.is_empty() {
                sc.name.clone()
            } else {
                format!("{}={}", sc.name, sc.description)
            };
            ScopeDef::parse(&text).map_err(|e| ApiError::invalid(format!("scopes: {}", e.0)))
        })
        .collect()
}

fn alg(a: &str) -> ApiResult<SigningAlg> {
    SigningAlg::parse(a)
        .ok_or_else(|| ApiError::invalid(format!("signing_alg `{a}`: use RS256, ES256 or EdDSA")))
}

fn refresh_policy(p: &str) -> ApiResult<RefreshPolicy> {
    RefreshPolicy::parse(p).ok_or_else(|| {
        ApiError::invalid(format!(
            "refresh_tokens `{p}`: use always, offline_access or never"
        ))
    })
}

/// Change an MCP server.
#[utoipa::path(patch, path = "/servers/{id}", tag = "servers", request_body = ServerChange,
    params(("id" = String, Path, description = "res_…", pattern = "^res_[A-Za-z0-9]{1,60}$")),
    responses(
        (status = 200, body = ServerView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    ))]
async fn update_server(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Body(c): Body<ServerChange>,
) -> ApiResult<Json<ServerView>> {
    let change = admin::ResourceChange {
        name: c.name,
        url: c
            .url
            .as_deref()
            .map(|u| ResourceUri::parse(u).map_err(|e| ApiError::invalid(format!("url: {}", e.0))))
            .transpose()?,
        scopes: c.scopes.as_deref().map(scope_defs).transpose()?,
        token_ttl: c.token_ttl,
        signing_alg: c.signing_alg.as_deref().map(alg).transpose()?,
        refresh_tokens: c
            .refresh_tokens
            .as_deref()
            .map(refresh_policy)
            .transpose()?,
        dynamic_registration: c.dynamic_registration,
        metadata_documents: c.metadata_documents,
        private_use_redirects: c.private_use_redirects,
        sign_in_methods: c
            .sign_in_methods
            .map(|m| m.as_deref().map(methods).transpose())
            .transpose()?,
    };
    let r = s
        .engine
        .operator(&who.id)
        .update_resource(&id, change)
        .await?;
    s.engine.invalidate();
    Ok(Json(server_view(&s, &r)))
}

/// Remove an MCP server and all its clients.
#[utoipa::path(delete, path = "/servers/{id}", tag = "servers",
    params(("id" = String, Path, description = "res_…", pattern = "^res_[A-Za-z0-9]{1,60}$")),
    responses(
        (status = 204), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn delete_server(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.operator(&who.id).remove_resource(&id).await?;
    s.engine.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- clients

/// An OAuth client of an MCP server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    client_id: String,
    name: String,
    /// `agent` (client credentials, made by an operator), `registered` (Dynamic Client
    /// Registration) or `metadata_document`.
    kind: String,
    /// Its MCP server (`res_…`); absent for clients of the root issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    scopes: Vec<String>,
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; absent if it never got a token (recorded at most daily).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    /// RFC 3339; absent while it is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_at: Option<String>,
}

fn client_view(c: &gatehouse_core::model::Client) -> ClientView {
    ClientView {
        client_id: c.id.to_string(),
        name: c.name.clone(),
        kind: c.kind.as_str().to_owned(),
        server: c.resource.as_ref().map(ToString::to_string),
        scopes: c.scopes.iter().map(ToString::to_string).collect(),
        redirect_uris: c
            .redirect_uris
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        token_endpoint_auth_method: c.auth_method.as_str().to_owned(),
        created_at: rfc3339(c.created_at),
        last_used_at: c.last_used_at.map(rfc3339),
        disabled_at: c.disabled_at.map(rfc3339),
    }
}

/// A page of clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientPage {
    items: Vec<ClientView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A new agent client (client credentials).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Scopes it may request; each must be offered by the MCP server.
    #[serde(default)]
    scopes: Vec<String>,
    /// Its public JWK Set: it authenticates with `private_key_jwt` instead of a secret.
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// The https URL of its public JWK Set: it authenticates with `private_key_jwt`.
    jwks_uri: Option<String>,
}

/// A new client, with its secret shown this once (absent for a client with keys).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// The clients of an MCP server, by id.
#[utoipa::path(get, path = "/servers/{id}/clients", tag = "clients",
    params(("id" = String, Path, description = "res_…", pattern = "^res_[A-Za-z0-9]{1,60}$"), PageParams),
    responses(
        (status = 200, body = ClientPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn list_clients(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<ClientPage>> {
    let r = admin::resource(s.engine.store().as_ref(), &id).await?;
    let all = s.engine.store().clients(Some(&r.id)).await?;
    let (items, next_cursor) = page(all, |c| c.id.to_string(), &p)?;
    Ok(Json(ClientPage {
        items: items.iter().map(client_view).collect(),
        next_cursor,
    }))
}

/// Create an agent client; its secret is in the answer, and nowhere else ever.
#[utoipa::path(post, path = "/servers/{id}/clients", tag = "clients", request_body = NewClient,
    params(("id" = String, Path, description = "res_…", pattern = "^res_[A-Za-z0-9]{1,60}$")),
    responses(
        (status = 201, body = ClientWithSecret), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn create_client(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Body(n): Body<NewClient>,
) -> ApiResult<(StatusCode, Json<ClientWithSecret>)> {
    let scopes = gatehouse_core::ScopeSet::parse(&n.scopes.join(" "))
        .map_err(|e| ApiError::invalid(format!("scopes: {}", e.0)))?;
    let op = s.engine.operator(&who.id);
    let (c, secret) = if n.jwks.is_some() || n.jwks_uri.is_some() {
        let keys = serde_json::json!({ "jwks": n.jwks, "jwks_uri": n.jwks_uri });
        let c = op
            .create_agent_client_with_keys(&id, &n.name, scopes, keys)
            .await?;
        (c, None)
    } else {
        let (c, secret) = op.create_agent_client(&id, &n.name, scopes).await?;
        (c, Some(secret.expose_secret().to_owned()))
    };
    s.engine.invalidate();
    Ok((
        StatusCode::CREATED,
        Json(ClientWithSecret {
            client: client_view(&c),
            client_secret: secret,
        }),
    ))
}

/// A change to a client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChange {
    /// Disable it (it gets no tokens, and every token it holds is revoked), or enable it
    /// again (tokens revoked by disabling it stay revoked).
    disabled: Option<bool>,
}

/// Change a client: disable or enable it.
#[utoipa::path(patch, path = "/clients/{client_id}", tag = "clients", request_body = ClientChange,
    params(("client_id" = String, Path)),
    responses(
        (status = 200, body = ClientView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn update_client(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
    Body(change): Body<ClientChange>,
) -> ApiResult<Json<ClientView>> {
    let mut c = admin::client(s.engine.store().as_ref(), &client_id).await?;
    if let Some(off) = change.disabled {
        c = s
            .engine
            .operator(&who.id)
            .set_client_disabled(&client_id, off)
            .await?;
        s.engine.invalidate();
    }
    Ok(Json(client_view(&c)))
}

/// Delete a client: its grants and consents go, its tokens are revoked (introspection at
/// once, guards within their poll interval).
#[utoipa::path(delete, path = "/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn delete_client(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.operator(&who.id).remove_client(&client_id).await?;
    s.engine.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

/// Give an agent client a new secret; the old one stops working at once.
#[utoipa::path(post, path = "/clients/{client_id}/rotate-secret", tag = "clients",
    params(("client_id" = String, Path)),
    responses(
        (status = 200, body = ClientWithSecret), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn rotate_client_secret(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(client_id): Path<String>,
) -> ApiResult<Json<ClientWithSecret>> {
    let (c, secret) = s
        .engine
        .operator(&who.id)
        .rotate_client_secret(&client_id)
        .await?;
    s.engine.invalidate();
    Ok(Json(ClientWithSecret {
        client: client_view(&c),
        client_secret: Some(secret.expose_secret().to_owned()),
    }))
}

// ---------------------------------------------------------------- consents

/// What a person allowed a client at an MCP server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    user: String,
    client_id: String,
    server: String,
    scopes: Vec<String>,
    /// RFC 3339.
    granted_at: String,
}

/// Which consents; every filter narrows (revoking needs all three).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsentParams {
    /// A person (`usr_…` or email).
    user: Option<String>,
    client: Option<String>,
    /// An MCP server (`res_…`).
    #[param(pattern = "^res_[A-Za-z0-9]{1,60}$")]
    server: Option<String>,
}

/// List consents, oldest first.
#[utoipa::path(get, path = "/consents", tag = "consents", params(ConsentParams),
    responses(
        (status = 200, body = Vec<ConsentView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn list_consents(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    ApiQuery(p): ApiQuery<ConsentParams>,
) -> ApiResult<Json<Vec<ConsentView>>> {
    let store = s.engine.store().as_ref();
    let filter = gatehouse_core::store::ConsentFilter {
        user: match &p.user {
            Some(u) => Some(admin::user(store, u).await?.id),
            None => None,
        },
        client: p
            .client
            .as_deref()
            .map(gatehouse_core::ClientId::parse)
            .transpose()
            .map_err(|e| ApiError::invalid(format!("client: {}", e.0)))?,
        resource: p
            .server
            .as_deref()
            .map(gatehouse_core::ResourceId::parse)
            .transpose()
            .map_err(|e| ApiError::invalid(format!("server: {}", e.0)))?,
    };
    let list = admin::consents(store, &filter).await?;
    Ok(Json(
        list.iter()
            .map(|c| ConsentView {
                user: c.user.to_string(),
                client_id: c.client.to_string(),
                server: c.resource.to_string(),
                scopes: c.scopes.iter().map(ToString::to_string).collect(),
                granted_at: rfc3339(c.granted_at),
            })
            .collect(),
    ))
}

/// Revoke a consent: every token issued from it is revoked and the person is asked again.
#[utoipa::path(delete, path = "/consents", tag = "consents", params(ConsentParams),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn revoke_consent(
    State(s): State<AppState>,
    Admin(who): Admin,
    ApiQuery(p): ApiQuery<ConsentParams>,
) -> ApiResult<StatusCode> {
    let (Some(user), Some(client), Some(server)) = (&p.user, &p.client, &p.server) else {
        return Err(ApiError::invalid(
            "user, client and server are all required",
        ));
    };
    s.engine
        .operator(&who.id)
        .revoke_consent(user, client, server)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- people

/// A person who signs in.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// `usr_…`
    id: String,
    email: String,
    admin: bool,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339; absent while they are enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_at: Option<String>,
}

fn user_view(u: &User) -> UserView {
    UserView {
        id: u.id.to_string(),
        email: u.email.clone(),
        admin: u.admin,
        created_at: rfc3339(u.created_at),
        disabled_at: u.disabled_at.map(rfc3339),
    }
}

/// A page of people.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    items: Vec<UserView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A new person.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(min_length = 3, max_length = 254)]
    email: String,
    /// 8 to 256 characters; without one, a strong password is generated and returned.
    #[schema(min_length = 8, max_length = 256)]
    password: Option<String>,
    #[serde(default)]
    admin: bool,
}

/// A new person, with the password generated for them (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

/// A change to a person.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// Make them an administrator, or not.
    admin: Option<bool>,
    /// Disable them (they cannot sign in; their sessions end and their tokens are revoked),
    /// or enable them again.
    disabled: Option<bool>,
}

/// List people, by id.
#[utoipa::path(get, path = "/users", tag = "users", params(PageParams),
    responses(
        (status = 200, body = UserPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    ))]
async fn list_users(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<UserPage>> {
    let all = s.engine.store().users().await?;
    let (items, next_cursor) = page(all, |u| u.id.to_string(), &p)?;
    Ok(Json(UserPage {
        items: items.iter().map(user_view).collect(),
        next_cursor,
    }))
}

/// Create a person who signs in with an email and a password.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, body = CreatedUser), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)
    ))]
async fn create_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Body(n): Body<NewUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let (password, generated) = new_password(n.password)?;
    let (password, hash) = super::hash_password(password).await?;
    let u = s
        .engine
        .operator(&who.id)
        .create_user_with_hash(&n.email, hash, n.admin)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: user_view(&u),
            password: generated.then(|| password.expose_secret().to_owned()),
        }),
    ))
}

/// Remove a person: their sessions, consents and API keys go; their tokens are revoked.
#[utoipa::path(delete, path = "/users/{id}", tag = "users",
    params(("id" = String, Path, description = "usr_… or email")),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn delete_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.operator(&who.id).remove_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new password for a person.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// 8 to 256 characters; without one, a strong password is generated and returned.
    #[schema(min_length = 8, max_length = 256)]
    password: Option<String>,
}

/// Give a person a new password; their sessions end. A generated one is returned once.
#[utoipa::path(post, path = "/users/{id}/password", tag = "users", request_body = PasswordChange,
    params(("id" = String, Path, description = "usr_… or email")),
    responses(
        (status = 200, body = CreatedUser), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn reset_password(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Body(change): Body<PasswordChange>,
) -> ApiResult<Json<CreatedUser>> {
    let (password, generated) = new_password(change.password)?;
    // Look the person up before the ~24 ms of hashing.
    let u = admin::user(s.engine.store().as_ref(), &id).await?;
    let (password, hash) = super::hash_password(password).await?;
    let u = s
        .engine
        .operator(&who.id)
        .reset_password(u.id.as_str(), hash)
        .await?;
    Ok(Json(CreatedUser {
        user: user_view(&u),
        password: generated.then(|| password.expose_secret().to_owned()),
    }))
}

/// The password given, checked, or a generated one (`true`).
fn new_password(
    given: Option<String>,
) -> Result<(gatehouse_core::password::Password, bool), ApiError> {
    use gatehouse_core::password::Password;
    Ok(match given {
        Some(p) => (
            Password::new_checked(p)
                .map_err(|e| ApiError::invalid(format!("password: {}", e.0)))?,
            false,
        ),
        None => (Password::generate(), true),
    })
}

/// A signed-in browser of a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// `ses_…`
    id: String,
    /// RFC 3339: when they signed in.
    created_at: String,
    /// RFC 3339, to about a minute.
    last_seen_at: String,
}

/// A person's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionView>,
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    ended: u64,
}

/// A person's sessions, most recently used first.
#[utoipa::path(get, path = "/users/{id}/sessions", tag = "users",
    params(("id" = String, Path, description = "usr_… or email")),
    responses(
        (status = 200, body = SessionList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn list_sessions(
    State(s): State<AppState>,
    Admin(_who): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionList>> {
    let list = admin::sessions(s.engine.store().as_ref(), &id).await?;
    Ok(Json(SessionList {
        items: list
            .iter()
            .map(|x| SessionView {
                id: x.id(),
                created_at: rfc3339(x.created_at),
                last_seen_at: rfc3339(x.last_seen_at),
            })
            .collect(),
    }))
}

/// End every session of a person: each browser must sign in again.
#[utoipa::path(delete, path = "/users/{id}/sessions", tag = "users",
    params(("id" = String, Path, description = "usr_… or email")),
    responses(
        (status = 200, body = SessionsEnded), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn end_sessions(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionsEnded>> {
    let ended = s.engine.operator(&who.id).end_sessions(&id, None).await?;
    Ok(Json(SessionsEnded { ended }))
}

/// End one session of a person.
#[utoipa::path(delete, path = "/users/{id}/sessions/{session_id}", tag = "users",
    params(
        ("id" = String, Path, description = "usr_… or email"),
        ("session_id" = String, Path, description = "ses_…")
    ),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn end_session(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path((id, session_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.engine
        .operator(&who.id)
        .end_sessions(&id, Some(&session_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change a person: the admin role, disabled or not.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UserChange,
    params(("id" = String, Path, description = "usr_… or email")),
    responses(
        (status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn update_user(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Body(change): Body<UserChange>,
) -> ApiResult<Json<UserView>> {
    let op = s.engine.operator(&who.id);
    let mut u = admin::user(s.engine.store().as_ref(), &id).await?;
    if let Some(on) = change.admin {
        u = op.set_admin(u.id.as_str(), on).await?;
    }
    if let Some(off) = change.disabled {
        u = op.set_user_disabled(u.id.as_str(), off).await?;
    }
    Ok(Json(user_view(&u)))
}

// ---------------------------------------------------------------- API keys

/// An API key (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// `key_…`
    id: String,
    name: String,
    /// The administrator it acts as.
    user: String,
    /// RFC 3339.
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

fn key_view(k: &gatehouse_core::model::ApiKey) -> ApiKeyView {
    ApiKeyView {
        id: k.id.to_string(),
        name: k.name.clone(),
        user: k.user.to_string(),
        created_at: rfc3339(k.created_at),
        revoked_at: k.revoked_at.map(rfc3339),
    }
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// The administrator it acts as (default: the caller).
    user: Option<String>,
}

/// A new API key with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    key: ApiKeyView,
    secret: String,
}

/// List API keys, oldest first.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys",
    responses(
        (status = 200, body = Vec<ApiKeyView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    ))]
async fn list_api_keys(
    State(s): State<AppState>,
    Admin(_admin): Admin,
) -> ApiResult<Json<Vec<ApiKeyView>>> {
    let keys = s.engine.store().api_keys().await?;
    Ok(Json(keys.iter().map(key_view).collect()))
}

/// Create an API key.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses(
        (status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn create_api_key(
    State(s): State<AppState>,
    Admin(who): Admin,
    Body(n): Body<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let owner = n.user.unwrap_or_else(|| who.id.to_string());
    let (key, secret) = s
        .engine
        .operator(&who.id)
        .create_api_key(&owner, &n.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key_view(&key),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "key_…", pattern = "^key_[A-Za-z0-9]{1,60}$")),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn revoke_api_key(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.operator(&who.id).revoke_api_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- signing keys

/// A signing key (its public half is in the JWKS while it is next, active or retired).
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyView {
    kid: String,
    /// RS256, ES256 or EdDSA.
    alg: String,
    /// `next` (published, not signing yet), `active` (signing), `retired` (published until
    /// the tokens it signed expire) or `expired`.
    state: String,
    /// RFC 3339: when it was made and published.
    created_at: String,
    /// RFC 3339: when it signs from.
    activates_at: String,
    /// RFC 3339: when a newer key took over.
    #[serde(skip_serializing_if = "Option::is_none")]
    retired_at: Option<String>,
    /// RFC 3339: until when it is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    published_until: Option<String>,
}

fn signing_key_view(k: &gatehouse_core::keys::KeyStatus) -> SigningKeyView {
    SigningKeyView {
        kid: k.kid.to_string(),
        alg: k.alg.as_str().to_owned(),
        state: k.state.as_str().to_owned(),
        created_at: rfc3339(k.created_at),
        activates_at: rfc3339(k.activates_at),
        retired_at: k.retired_at.map(rfc3339),
        published_until: k.published_until.map(rfc3339),
    }
}

/// Signing keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyList {
    items: Vec<SigningKeyView>,
}

/// Which key to rotate.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// RS256, ES256 or EdDSA; without it, every algorithm in use.
    alg: Option<String>,
}

/// List signing keys with their state, per algorithm in activation order.
#[utoipa::path(get, path = "/signing-keys", tag = "signing keys",
    responses(
        (status = 200, body = SigningKeyList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)
    ))]
async fn list_signing_keys(
    State(s): State<AppState>,
    Admin(_who): Admin,
) -> ApiResult<Json<SigningKeyList>> {
    let keys = admin::signing_keys(s.engine.store().as_ref(), s.engine.now()).await?;
    Ok(Json(SigningKeyList {
        items: keys.iter().map(signing_key_view).collect(),
    }))
}

/// Rotate now: a new key is published at once and signs after the publish-ahead period
/// (`key_publish_ahead_secs`); the key it replaces stays published until every token it
/// signed has expired. 409 if a rotation is already under way.
#[utoipa::path(post, path = "/signing-keys/rotate", tag = "signing keys", request_body = KeyRotation,
    responses(
        (status = 201, body = SigningKeyList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    ))]
async fn rotate_signing_keys(
    State(s): State<AppState>,
    Admin(who): Admin,
    Body(r): Body<KeyRotation>,
) -> ApiResult<(StatusCode, Json<SigningKeyList>)> {
    let which = r.alg.as_deref().map(alg).transpose()?;
    let made = s.engine.rotate_keys(who.id.as_str(), which).await?;
    let now = s.engine.now();
    let states = gatehouse_core::keys::key_states(&made, now);
    Ok((
        StatusCode::CREATED,
        Json(SigningKeyList {
            items: states.iter().map(signing_key_view).collect(),
        }),
    ))
}

// ---------------------------------------------------------------- audit log

/// Filters of the audit log; every one narrows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// One event type, e.g. `token.refused`.
    #[param(
        pattern = "^(token\\.issued|token\\.refused|token\\.revoked|authorization\\.granted|authorization\\.denied|consent\\.granted|consent\\.revoked|client\\.registered|client\\.registration_refused|client\\.deleted|metadata_document\\.failed|metadata_document\\.stale|authorization\\.refused|client_assertion\\.refused|sign_in\\.succeeded|sign_in\\.failed|sign_out|admin\\.change|key\\.rotated|identity\\.linked|sign_in\\.code_sent|passkey\\.added|passkey\\.removed)$"
    )]
    event: Option<String>,
    /// `success` or `failure`.
    #[param(pattern = "^(success|failure)$")]
    outcome: Option<String>,
    /// An MCP server id (`res_…`).
    server: Option<String>,
    client: Option<String>,
    /// A person id (`usr_…`).
    user: Option<String>,
    /// From: Unix seconds, RFC 3339 or a span back such as `24h`.
    since: Option<String>,
    /// Before (same forms).
    until: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]+$")]
    cursor: Option<String>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One audit event (see docs/audit.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    seq: i64,
    /// Unix seconds.
    at: i64,
    /// RFC 3339.
    time: String,
    event: String,
    /// `success` or `failure`.
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[schema(value_type = Object)]
    details: serde_json::Map<String, serde_json::Value>,
}

/// A page of audit events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    items: Vec<EventView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Read the audit log, newest first.
#[utoipa::path(get, path = "/audit", params(AuditParams), tag = "audit",
    responses(
        (status = 200, body = EventPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    ))]
async fn list_audit(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<Json<EventPage>> {
    let now = s.engine.now();
    let time = |t: &Option<String>, name: &str| {
        t.as_deref()
            .map(|t| parse_time(t, now).map_err(|e| ApiError::invalid(format!("{name}: {e}"))))
            .transpose()
    };
    let limit = p.limit.unwrap_or(100);
    if !(1..=AuditQuery::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 1000"));
    }
    let query = AuditQuery {
        events: match &p.event {
            Some(e) => {
                vec![EventType::parse(e).ok_or_else(|| {
                    ApiError::invalid(format!("event `{e}` is not an event type"))
                })?]
            }
            None => vec![],
        },
        outcome: p
            .outcome
            .as_deref()
            .map(|o| {
                Outcome::parse(o).ok_or_else(|| ApiError::invalid("outcome is success or failure"))
            })
            .transpose()?,
        resource: p.server.clone(),
        client: p.client.clone(),
        user: p.user.clone(),
        since: time(&p.since, "since")?,
        until: time(&p.until, "until")?,
        before: p
            .cursor
            .as_deref()
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| ApiError::invalid("cursor is not one this API gave"))
            })
            .transpose()?,
        limit,
    };
    let events = s.engine.store().audit_events(&query).await?;
    let next_cursor = (events.len() == limit as usize)
        .then(|| events.last().and_then(|e| e.seq).map(|s| s.to_string()))
        .flatten();
    Ok(Json(EventPage {
        items: events
            .into_iter()
            .map(|e| EventView {
                seq: e.seq.unwrap_or_default(),
                at: e.at.0,
                time: rfc3339(e.at),
                event: e.event.as_str().to_owned(),
                outcome: e.outcome.as_str().to_owned(),
                resource: e.resource,
                client: e.client,
                user: e.user,
                actor: e.actor,
                details: e.details,
            })
            .collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use gatehouse_core::audit::EventType;

    #[test]
    fn the_documented_event_filter_names_every_event_type() {
        let doc = serde_json::to_value(super::api().1).unwrap();
        let params = doc["paths"]["/audit"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let event = params.iter().find(|p| p["name"] == "event").unwrap();
        let pattern = event["schema"]["pattern"].as_str().unwrap();
        let listed: Vec<String> = pattern
            .trim_start_matches("^(")
            .trim_end_matches(")$")
            .split('|')
            .map(|n| n.replace("\\.", "."))
            .collect();
        let all: Vec<String> = EventType::ALL
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect();
        assert_eq!(listed, all);
    }
}

// ---------------------------------------------------------------- sign-in methods

/// The built-in sign-in methods every MCP server offers unless it names its own, and what
/// that offers today.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInView {
    password: bool,
    /// Offered only when email delivery is configured (`email_delivery`).
    email_code: bool,
    /// Offered only when the public URL can be a WebAuthn relying party
    /// (`passkeys_available`).
    passkey: bool,
    /// Whether Gatehouse can send email (configuration).
    email_delivery: bool,
    /// Whether passkeys can be used here: the public URL's host is a domain name, over
    /// https (or `http://localhost`).
    passkeys_available: bool,
    /// The methods an MCP server without its own list offers: these built-in methods, then
    /// every enabled connection.
    default_methods: Vec<String>,
}

/// The built-in sign-in methods to turn on or off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInPolicyBody {
    password: bool,
    email_code: bool,
    passkey: bool,
}

async fn sign_in_view(s: &AppState) -> ApiResult<SignInView> {
    let p = admin::sign_in_policy(s.engine.store().as_ref()).await?;
    let (methods, _) = s.engine.offered_methods(None).await?;
    Ok(SignInView {
        password: p.password,
        email_code: p.email_code,
        passkey: p.passkey,
        email_delivery: s.engine.settings().email_delivery,
        passkeys_available: s.engine.passkeys_available(),
        default_methods: methods.iter().map(|m| m.to_string()).collect(),
    })
}

/// The default sign-in methods.
#[utoipa::path(get, path = "/sign-in", tag = "sign-in",
    responses((status = 200, body = SignInView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_sign_in(
    State(s): State<AppState>,
    Admin(_admin): Admin,
) -> ApiResult<Json<SignInView>> {
    Ok(Json(sign_in_view(&s).await?))
}

/// Set the built-in sign-in methods every MCP server offers unless it names its own.
#[utoipa::path(put, path = "/sign-in", tag = "sign-in", request_body = SignInPolicyBody,
    responses(
        (status = 200, body = SignInView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    ))]
async fn set_sign_in(
    State(s): State<AppState>,
    Admin(who): Admin,
    Body(v): Body<SignInPolicyBody>,
) -> ApiResult<Json<SignInView>> {
    let policy = SignInPolicy {
        password: v.password,
        email_code: v.email_code,
        passkey: v.passkey,
    };
    s.engine
        .operator(&who.id)
        .set_sign_in_policy(policy)
        .await?;
    Ok(Json(sign_in_view(&s).await?))
}

/// A connection: another system that signs people in.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// `conn_…`
    id: String,
    /// Shown on the sign-in button ("Continue with …").
    name: String,
    /// `federated` (bring your own auth), `oidc` (an upstream OpenID Connect provider) or
    /// `github` (GitHub or a GitHub Enterprise Server).
    kind: String,
    /// Where the browser is sent, with `login_request_id` and `state` (federated).
    #[serde(skip_serializing_if = "Option::is_none")]
    login_url: Option<String>,
    /// The provider's issuer (oidc).
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    /// `https://github.com` or the GitHub Enterprise Server (github).
    #[serde(skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
    /// Gatehouse's client id at the provider (oidc, github).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// Whether a client secret is set; it is never shown (oidc, github).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_set: Option<bool>,
    /// Scopes asked of the provider (oidc, github).
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    /// Only people with an email in these domains may sign in; empty: anyone.
    allowed_domains: Vec<String>,
    enabled: bool,
    /// RFC 3339.
    created_at: String,
    /// Where the owner's backend posts the person's claims (federated).
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_request_url: Option<String>,
    /// Where the browser comes back: the owner's login page sends it there with `state`
    /// (federated); the redirect URI to register at the provider (oidc, github).
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<String>,
}

fn connection_view(s: &AppState, c: &Connection) -> ConnectionView {
    let public = s.engine.public_issuer();
    let mut v = ConnectionView {
        id: c.id.to_string(),
        name: c.name.clone(),
        kind: c.kind.name().to_owned(),
        login_url: None,
        issuer: None,
        base_url: None,
        client_id: None,
        client_secret_set: None,
        scopes: None,
        allowed_domains: c.allowed_domains.clone(),
        enabled: c.enabled,
        created_at: rfc3339(c.created_at),
        auth_request_url: None,
        callback_url: Some(c.callback_url(public)),
    };
    match &c.kind {
        ConnectionKind::Federated { login_url } => {
            v.login_url = Some(login_url.clone());
            v.auth_request_url = Some(c.auth_request_url(public));
        }
        ConnectionKind::Oidc {
            issuer,
            client_id,
            client_secret,
            scopes,
        } => {
            v.issuer = Some(issuer.clone());
            v.client_id = Some(client_id.clone());
            v.client_secret_set = Some(!client_secret.is_empty());
            v.scopes = Some(scopes.clone());
        }
        ConnectionKind::Github {
            base_url,
            client_id,
            client_secret,
        } => {
            v.base_url = Some(base_url.clone());
            v.client_id = Some(client_id.clone());
            v.client_secret_set = Some(!client_secret.is_empty());
            v.scopes = Some(
                gatehouse_core::signin::GITHUB_SCOPES
                    .split(' ')
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }
    v
}

/// A connection to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnectionBody {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// `federated`: bring your own auth; `oidc`: an identity provider, by `preset` or
    /// OpenID Connect `issuer`; `github`: GitHub (the same as `oidc` with preset `github`).
    #[schema(pattern = "^(federated|oidc|github)$")]
    kind: String,
    /// The owner's login page (https, or http on loopback); required for `federated`.
    login_url: Option<String>,
    /// `google`, `entra`, `okta` or `github` (oidc; or give `issuer`).
    preset: Option<String>,
    /// The Entra tenant id, the Okta domain, or a GitHub Enterprise Server (host or URL), with
    /// `preset`.
    tenant: Option<String>,
    /// The provider's issuer URL (oidc; or give `preset`).
    issuer: Option<String>,
    /// Gatehouse's client id at the provider; required for `oidc` and `github`.
    client_id: Option<String>,
    /// Gatehouse's client secret at the provider (oidc: absent for a public client; required
    /// for GitHub).
    client_secret: Option<String>,
    /// Scopes to ask for (OpenID Connect only; default `openid email profile`).
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    allowed_domains: Vec<String>,
}

fn connection_kind(kind: &str, login_url: Option<String>) -> ApiResult<ConnectionKind> {
    match kind {
        "federated" => Ok(ConnectionKind::Federated {
            login_url: login_url.ok_or_else(|| {
                ApiError::invalid("login_url is required for a federated connection")
            })?,
        }),
        other => Err(ApiError::invalid(format!(
            "kind `{other}`: use federated, oidc or github"
        ))),
    }
}

fn new_connection_kind(n: &NewConnectionBody) -> ApiResult<ConnectionKind> {
    let preset = match (n.kind.as_str(), n.preset.as_deref()) {
        ("oidc", preset) => preset,
        ("github", None | Some("github")) => Some("github"),
        ("github", Some(_)) => {
            return Err(ApiError::invalid(
                "a github connection takes no other preset",
            ));
        }
        (other, _) => return connection_kind(other, n.login_url.clone()),
    };
    let client_id = n.client_id.as_deref().ok_or_else(|| {
        ApiError::invalid(format!(
            "client_id is required for an {} connection",
            n.kind
        ))
    })?;
    ConnectionKind::provider(
        preset,
        n.tenant.as_deref(),
        n.issuer.as_deref(),
        client_id,
        n.client_secret.as_deref().unwrap_or(""),
        n.scopes.clone(),
    )
    .map_err(|e| ApiError::invalid(e.0))
}

/// List connections, oldest first.
#[utoipa::path(get, path = "/connections", tag = "sign-in",
    responses((status = 200, body = Vec<ConnectionView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_connections(
    State(s): State<AppState>,
    Admin(_admin): Admin,
) -> ApiResult<Json<Vec<ConnectionView>>> {
    let all = s.engine.store().connections().await?;
    Ok(Json(all.iter().map(|c| connection_view(&s, c)).collect()))
}

/// Add a connection (enabled: offered to every MCP server without its own sign-in methods).
#[utoipa::path(post, path = "/connections", tag = "sign-in", request_body = NewConnectionBody,
    responses(
        (status = 201, body = ConnectionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)
    ))]
async fn create_connection(
    State(s): State<AppState>,
    Admin(who): Admin,
    Body(n): Body<NewConnectionBody>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    let new = NewConnection {
        kind: new_connection_kind(&n)?,
        name: n.name,
        allowed_domains: n.allowed_domains,
    };
    let c = s.engine.operator(&who.id).create_connection(new).await?;
    Ok((StatusCode::CREATED, Json(connection_view(&s, &c))))
}

/// One connection.
#[utoipa::path(get, path = "/connections/{id}", tag = "sign-in",
    params(("id" = String, Path, description = "conn_…", pattern = "^conn_[A-Za-z0-9]{1,59}$")),
    responses(
        (status = 200, body = ConnectionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn get_connection(
    State(s): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionView>> {
    let c = admin::connection(s.engine.store().as_ref(), &id).await?;
    Ok(Json(connection_view(&s, &c)))
}

/// What to change of a connection; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionChangeBody {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// A federated connection's login page.
    login_url: Option<String>,
    /// An oidc or github connection's new client secret (after rotating it at the provider).
    client_secret: Option<String>,
    allowed_domains: Option<Vec<String>>,
    enabled: Option<bool>,
}

/// Change a connection.
#[utoipa::path(patch, path = "/connections/{id}", tag = "sign-in", request_body = ConnectionChangeBody,
    params(("id" = String, Path, description = "conn_…", pattern = "^conn_[A-Za-z0-9]{1,59}$")),
    responses(
        (status = 200, body = ConnectionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    ))]
async fn update_connection(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Body(c): Body<ConnectionChangeBody>,
) -> ApiResult<Json<ConnectionView>> {
    let current = admin::connection(s.engine.store().as_ref(), &id).await?;
    let kind = match (c.login_url, c.client_secret, &current.kind) {
        (None, None, _) => None,
        (Some(url), None, ConnectionKind::Federated { .. }) => {
            Some(connection_kind("federated", Some(url))?)
        }
        (None, Some(secret), kind) if kind.is_provider() => {
            let mut k = current.kind.clone();
            if let Some(s) = k.client_secret_mut() {
                *s = secret;
            }
            Some(k)
        }
        (Some(_), _, _) => {
            return Err(ApiError::invalid(
                "login_url applies to federated connections only",
            ));
        }
        (None, Some(_), _) => {
            return Err(ApiError::invalid(
                "client_secret applies to oidc and github connections only",
            ));
        }
    };
    let change = admin::ConnectionChange {
        name: c.name,
        kind,
        allowed_domains: c.allowed_domains,
        enabled: c.enabled,
    };
    let updated = s
        .engine
        .operator(&who.id)
        .update_connection(&id, change)
        .await?;
    Ok(Json(connection_view(&s, &updated)))
}

/// Remove a connection and the identities linked through it (the people stay). Refused
/// while an MCP server names it among its sign-in methods.
#[utoipa::path(delete, path = "/connections/{id}", tag = "sign-in",
    params(("id" = String, Path, description = "conn_…", pattern = "^conn_[A-Za-z0-9]{1,59}$")),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    ))]
async fn delete_connection(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.engine.operator(&who.id).remove_connection(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
