//! The admin dashboard at `/admin`: server-rendered pages for administrators, signed in with
//! the same session as the sign-in page. Every form carries the session's CSRF token; every
//! change goes through the same `gatehouse_core::admin` operations as the CLI and the API and
//! is audited with the administrator as actor. Secrets (agent client secrets, API keys) are
//! shown once, on the page that answers the form that made them.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::admin::{self, AdminError};
use gatehouse_core::audit::{AuditQuery, EventType, Outcome};
use gatehouse_core::model::{
    ClientKind, NewResource, RefreshPolicy, Resource, ScopeDef, TokenAuthMethod, User,
};
use gatehouse_core::params::FormParams;
use gatehouse_core::session::SessionToken;
use gatehouse_core::signin::{
    Connection, ConnectionKind, Method, NewConnection, SignInPolicy, parse_methods,
};
use gatehouse_core::store::ConsentFilter;
use gatehouse_core::{ResourceUri, ScopeSet};

use super::AppState;
use super::ui::{html, login_url, message, signed_in};
use crate::audit::{Format, parse_time, render, rfc3339};

/// The signed-in administrator (for pages), or the response that sends anyone else away:
/// to the sign-in page, or a 403 page for people who are not administrators.
pub struct AdminPage {
    pub(crate) token: SessionToken,
    pub(crate) user: User,
}

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        match signed_in(s, &parts.headers).await? {
            None => Err(Redirect::to(&login_url(parts.uri.path(), None)).into_response()),
            Some((_, user)) if !user.admin => Err(message(
                StatusCode::FORBIDDEN,
                "Administrators only",
                &format!(
                    "You are signed in as {}, who is not an administrator of this Gatehouse.",
                    user.email
                ),
                Some("forbidden"),
            )),
            Some((token, user)) => Ok(AdminPage { token, user }),
        }
    }
}

/// An administrator's form, posted with their session's CSRF token.
pub struct AdminForm {
    token: SessionToken,
    user: User,
    form: FormParams,
}

/// Largest form accepted (the server form with its scopes is the biggest).
const FORM_LIMIT: usize = 64 * 1024;

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let AdminPage { token, user } = AdminPage::from_request_parts(&mut parts, s).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large",
                "Go back and send less.",
                Some("invalid_request"),
            )
        })?;
        let form = FormParams::parse(&bytes);
        if !token.csrf_matches(form.single("csrf").ok().flatten().unwrap_or("")) {
            return Err(message(
                StatusCode::BAD_REQUEST,
                "The form expired",
                "Go back, reload the page and try again.",
                Some("invalid_request"),
            ));
        }
        Ok(AdminForm { token, user, form })
    }
}

fn field<'a>(form: &'a FormParams, name: &str) -> &'a str {
    form.single(name).ok().flatten().unwrap_or("").trim()
}

/// An operator action that failed, as a page.
pub(crate) fn failed(e: AdminError) -> Response {
    let (status, title) = match &e {
        AdminError::Invalid(_) => (StatusCode::BAD_REQUEST, "That did not work"),
        AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        AdminError::Conflict(_) => (StatusCode::CONFLICT, "That already exists"),
        AdminError::Store(_) | AdminError::Key(_) => {
            tracing::error!(error = %e, "dashboard action failed");
            (StatusCode::SERVICE_UNAVAILABLE, "Something went wrong")
        }
    };
    message(status, title, &format!("{e}. Go back and try again."), None)
}

fn back(to: &str) -> Response {
    Redirect::to(to).into_response()
}

// ---------------------------------------------------------------- MCP servers

struct ServerRow {
    id: String,
    name: String,
    url: String,
    scopes: String,
    token_ttl: u32,
    registration: String,
}

fn registration(r: &Resource) -> String {
    match (r.dynamic_registration, r.metadata_documents) {
        (true, true) => "DCR and metadata documents".into(),
        (true, false) => "DCR only".into(),
        (false, true) => "metadata documents only".into(),
        (false, false) => "agents only".into(),
    }
}

#[derive(Template)]
#[template(path = "admin/servers.html")]
struct ServersPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    servers: Vec<ServerRow>,
}

/// `GET /admin`
pub async fn servers(State(s): State<AppState>, AdminPage { token, user }: AdminPage) -> Response {
    let list = match s.engine.store().resources().await {
        Ok(l) => l,
        Err(e) => return failed(e.into()),
    };
    let servers = list
        .iter()
        .map(|r| ServerRow {
            id: r.id.to_string(),
            name: r.name.clone(),
            url: r.url.to_string(),
            scopes: r.scope_set().to_param(),
            token_ttl: r.token_ttl,
            registration: registration(r),
        })
        .collect();
    html(
        StatusCode::OK,
        &ServersPage {
            section: "servers",
            csrf: &token.csrf_token(),
            email: &user.email,
            notice: None,
            servers,
        },
    )
}

/// The server form's sign-in choice: the defaults, or the methods ticked. Absent from
/// forms without the choice (the new-server form): keep what is there.
fn sign_in_form(form: &FormParams) -> Result<Option<Option<Vec<Method>>>, AdminError> {
    match field(form, "sign_in") {
        "default" => Ok(Some(None)),
        "custom" => parse_methods(form.all("method"))
            .map(|m| Some(Some(m)))
            .map_err(|e| AdminError::Invalid(format!("sign-in methods: {}", e.0))),
        _ => Ok(None),
    }
}

/// The server form's fields as a complete change (every field is on the form).
fn server_form(form: &FormParams) -> Result<admin::ResourceChange, AdminError> {
    let url = ResourceUri::parse(field(form, "url"))
        .map_err(|e| AdminError::Invalid(format!("URL: {}", e.0)))?;
    let scopes = field(form, "scopes")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            ScopeDef::parse(l).map_err(|e| AdminError::Invalid(format!("scope `{l}`: {}", e.0)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(admin::ResourceChange {
        name: Some(field(form, "name").to_owned()),
        url: Some(url),
        scopes: Some(scopes),
        token_ttl: Some(field(form, "token_ttl").parse().map_err(|_| {
            AdminError::Invalid("the token lifetime must be a number of seconds".into())
        })?),
        signing_alg: Some(
            gatehouse_core::keys::SigningAlg::parse(field(form, "alg"))
                .ok_or_else(|| AdminError::Invalid("choose RS256, ES256 or EdDSA".into()))?,
        ),
        refresh_tokens: Some(
            RefreshPolicy::parse(field(form, "refresh_tokens"))
                .ok_or_else(|| AdminError::Invalid("choose a refresh-token policy".into()))?,
        ),
        dynamic_registration: Some(field(form, "dynamic_registration") == "on"),
        metadata_documents: Some(field(form, "metadata_documents") == "on"),
        private_use_redirects: Some(field(form, "private_use_redirects") == "on"),
        sign_in_methods: sign_in_form(form)?,
    })
}

/// `POST /admin/servers/{id}/update`
pub async fn update_server(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let updated = match server_form(&form) {
        Ok(change) => {
            s.engine
                .operator(&who.id)
                .update_resource(&id, change)
                .await
        }
        Err(e) => Err(e),
    };
    match updated {
        Ok(r) => {
            s.engine.invalidate();
            back(&format!("/admin/servers/{}", r.id))
        }
        Err(e) => failed(e),
    }
}

/// `POST /admin/servers`
pub async fn create_server(
    State(s): State<AppState>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let made = async {
        let c = server_form(&form)?;
        let mut new = NewResource::new(
            c.name.unwrap_or_default(),
            c.url
                .ok_or_else(|| AdminError::Invalid("a URL is needed".into()))?,
            c.scopes.unwrap_or_default(),
        );
        new.token_ttl = c.token_ttl;
        new.signing_alg = c.signing_alg;
        new.refresh_tokens = c.refresh_tokens;
        new.dynamic_registration = c.dynamic_registration;
        new.metadata_documents = c.metadata_documents;
        new.private_use_redirects = c.private_use_redirects;
        new.sign_in_methods = c.sign_in_methods.flatten();
        s.engine.operator(&who.id).register_resource(new).await
    }
    .await;
    match made {
        Ok(r) => {
            s.engine.invalidate();
            back(&format!("/admin/servers/{}", r.id))
        }
        Err(e) => failed(e),
    }
}

struct ClientRow {
    id: String,
    name: String,
    kind: &'static str,
    /// An agent with a secret the operator manages (not one that signs with its keys).
    has_secret: bool,
    disabled: bool,
    scopes: String,
    created: String,
    last_used: String,
    /// Other registrations of the same host (same name and redirect URIs), newest first:
    /// hosts that register on every connection show as one row with a count.
    more: Vec<ClientRow>,
}

impl ClientRow {
    fn of(c: &gatehouse_core::model::Client) -> ClientRow {
        ClientRow {
            id: c.id.to_string(),
            name: if c.name.is_empty() {
                "(unnamed)".into()
            } else {
                c.name.clone()
            },
            kind: c.kind.as_str(),
            has_secret: c.kind == ClientKind::Agent
                && c.auth_method != TokenAuthMethod::PrivateKeyJwt,
            disabled: c.disabled_at.is_some(),
            scopes: c.scopes.to_param(),
            created: rfc3339(c.created_at),
            last_used: c
                .last_used_at
                .map(rfc3339)
                .unwrap_or_else(|| "never".into()),
            more: Vec::new(),
        }
    }

    /// One row per client, the self-registered clients of one host (same name and redirect
    /// URIs) in one row: the newest, with the others under it.
    fn grouped(clients: &[gatehouse_core::model::Client]) -> Vec<ClientRow> {
        let mut sorted: Vec<&gatehouse_core::model::Client> = clients.iter().collect();
        sorted.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        // A host: its name and redirect URIs; `None` for clients that are not registrations.
        type Host = Option<(String, Vec<String>)>;
        let mut rows: Vec<(Host, ClientRow)> = Vec::new();
        for c in sorted {
            let host = (c.kind == ClientKind::Registered).then(|| {
                let uris = c
                    .redirect_uris
                    .iter()
                    .map(|u| u.as_str().to_owned())
                    .collect();
                (c.name.clone(), uris)
            });
            match rows.iter_mut().find(|(k, _)| host.is_some() && *k == host) {
                Some((_, row)) => row.more.push(ClientRow::of(c)),
                None => rows.push((host, ClientRow::of(c))),
            }
        }
        let mut rows: Vec<ClientRow> = rows.into_iter().map(|(_, r)| r).collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name).then(b.created.cmp(&a.created)));
        rows
    }
}

struct ConsentRow {
    user: String,
    email: String,
    client: String,
    scopes: String,
    granted: String,
}

#[derive(Template)]
#[template(path = "admin/server.html")]
struct ServerPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    id: String,
    name: String,
    url: String,
    issuer: String,
    scopes: Vec<(String, String)>,
    token_ttl: u32,
    alg: &'static str,
    refresh: &'static str,
    registration: String,
    prm_url: String,
    prm: String,
    scopes_text: String,
    dcr: bool,
    cimd: bool,
    app_schemes: bool,
    alg_options: Vec<(&'static str, bool)>,
    refresh_options: Vec<(&'static str, &'static str, bool)>,
    sign_in_summary: String,
    sign_in_custom: bool,
    /// Every method that can be chosen: its value, label and whether it is chosen.
    method_options: Vec<(String, String, bool)>,
    rust_snippet: String,
    python_snippet: String,
    node_snippet: String,
    clients: Vec<ClientRow>,
    consents: Vec<ConsentRow>,
}

/// `GET /admin/servers/{id}`
pub async fn server(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminPage { token, user }: AdminPage,
) -> Response {
    let store = s.engine.store().as_ref();
    let loaded = async {
        let r = admin::resource(store, &id).await?;
        let clients = store.clients(Some(&r.id)).await?;
        let consents = admin::consents(
            store,
            &ConsentFilter {
                resource: Some(r.id.clone()),
                ..ConsentFilter::default()
            },
        )
        .await?;
        let mut rows = Vec::new();
        for c in consents {
            let email = store
                .user(&c.user)
                .await?
                .map(|u| u.email)
                .unwrap_or_else(|| c.user.to_string());
            rows.push(ConsentRow {
                user: c.user.to_string(),
                email,
                client: c.client.to_string(),
                scopes: c.scopes.to_param(),
                granted: rfc3339(c.granted_at),
            });
        }
        let connections = store.connections().await?;
        Ok::<_, AdminError>((r, clients, rows, connections))
    }
    .await;
    let (r, clients, consents, connections) = match loaded {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let public = s.engine.public_issuer();
    let issuer = r.issuer(public).to_string();
    let scopes_list = r.scope_set().to_vec();
    let page = ServerPage {
        section: "servers",
        csrf: &token.csrf_token(),
        email: &user.email,
        notice: None,
        id: r.id.to_string(),
        name: r.name.clone(),
        url: r.url.to_string(),
        issuer: issuer.clone(),
        scopes: r
            .scopes
            .iter()
            .map(|d| (d.name.to_string(), d.description.clone()))
            .collect(),
        token_ttl: r.token_ttl,
        alg: r.signing_alg.as_str(),
        refresh: r.refresh_tokens.as_str(),
        registration: registration(&r),
        prm_url: gatehouse_core::types::well_known_url(r.url.as_str(), "oauth-protected-resource"),
        prm: serde_json::to_string_pretty(&r.protected_resource_metadata(public))
            .unwrap_or_default(),
        scopes_text: r
            .scopes
            .iter()
            .map(|d| {
                if d.description.is_empty() {
                    d.name.to_string()
                } else {
                    format!("{}={}", d.name, d.description)
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        dcr: r.dynamic_registration,
        cimd: r.metadata_documents,
        app_schemes: r.private_use_redirects,
        alg_options: ["RS256", "ES256", "EdDSA"]
            .into_iter()
            .map(|a| (a, a == r.signing_alg.as_str()))
            .collect(),
        refresh_options: [
            ("offline_access", "when offline_access is granted"),
            ("always", "always"),
            ("never", "never"),
        ]
        .into_iter()
        .map(|(v, label)| (v, label, v == r.refresh_tokens.as_str()))
        .collect(),
        sign_in_summary: match &r.sign_in_methods {
            Some(m) => format!("only {}", method_labels(m, &connections)),
            None => "the defaults".to_owned(),
        },
        sign_in_custom: r.sign_in_methods.is_some(),
        method_options: {
            let chosen = r.sign_in_methods.clone().unwrap_or_default();
            let mut all: Vec<Method> = chosen.clone();
            for m in [Method::Password, Method::EmailCode, Method::Passkey]
                .into_iter()
                .chain(connections.iter().map(|c| Method::Connection(c.id.clone())))
            {
                if !all.contains(&m) {
                    all.push(m);
                }
            }
            all.iter()
                .map(|m| {
                    (
                        m.to_string(),
                        method_labels(std::slice::from_ref(m), &connections),
                        chosen.contains(m),
                    )
                })
                .collect()
        },
        rust_snippet: format!(
            "let guard = gatehouse_guard::Guard::builder(\"{url}\", \"{issuer}\")\n    .scopes_supported({scopes:?})\n    .build()?;\nlet app = mcp_router.layer(guard.layer()).merge(guard.metadata_router());",
            url = r.url,
            scopes = scopes_list,
        ),
        python_snippet: format!(
            "from fastmcp import FastMCP\nfrom fastmcp.server.auth.providers.scalekit import ScalekitProvider\n\nauth = ScalekitProvider(\n    environment_url=\"{public}\",\n    resource_id=\"{id}\",\n    base_url=\"<your MCP server's base URL>\",\n    required_scopes={scopes:?},\n)\nmcp = FastMCP(\"{name}\", auth=auth)",
            id = r.id,
            scopes = scopes_list,
            name = r.name,
        ),
        node_snippet: format!(
            "import {{ Scalekit }} from '@scalekit-sdk/node';\n\n// An agent client's id and secret (create one below).\nconst scalekit = new Scalekit('{public}', process.env.CLIENT_ID, process.env.CLIENT_SECRET);\n\napp.use('/mcp', async (req, res, next) => {{\n  const token = req.headers.authorization?.match(/^Bearer (.+)$/)?.[1];\n  try {{\n    await scalekit.validateToken(token, {{ issuer: '{issuer}', audience: ['{url}'] }});\n    next();\n  }} catch {{\n    res.set('WWW-Authenticate', 'Bearer resource_metadata=\"{prm}\"').status(401).end();\n  }}\n}});",
            url = r.url,
            prm = gatehouse_core::types::well_known_url(r.url.as_str(), "oauth-protected-resource"),
        ),
        clients: ClientRow::grouped(&clients),
        consents,
    };
    html(StatusCode::OK, &page)
}

/// `POST /admin/servers/{id}/delete`
pub async fn delete_server(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form: _,
    }: AdminForm,
) -> Response {
    match s.engine.operator(&who.id).remove_resource(&id).await {
        Ok(()) => {
            s.engine.invalidate();
            back("/admin")
        }
        Err(e) => failed(e),
    }
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
struct SecretPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    title: &'a str,
    text: &'a str,
    facts: Vec<(&'a str, String)>,
    secret_label: &'a str,
    secret: &'a str,
    back: String,
}

fn secret_page(page: &SecretPage<'_>) -> Response {
    let mut r = html(StatusCode::OK, page);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /admin/servers/{id}/clients`: an agent client, its secret shown once.
pub async fn create_client(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let scopes = match ScopeSet::parse(field(&form, "scopes")) {
        Ok(sc) => sc,
        Err(e) => return failed(AdminError::Invalid(format!("scopes: {}", e.0))),
    };
    let op = s.engine.operator(&who.id);
    let jwks_uri = field(&form, "jwks_uri");
    if !jwks_uri.is_empty() {
        let keys = serde_json::json!({ "jwks_uri": jwks_uri });
        return match op
            .create_agent_client_with_keys(&id, field(&form, "name"), scopes, keys)
            .await
        {
            Ok(_) => {
                s.engine.invalidate();
                back(&format!("/admin/servers/{id}#clients"))
            }
            Err(e) => failed(e),
        };
    }
    let made = op
        .create_agent_client(&id, field(&form, "name"), scopes)
        .await;
    let (client, secret) = match made {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    s.engine.invalidate();
    let token_endpoint = format!("{}/resources/{id}/oauth/token", s.engine.public_issuer());
    secret_page(&SecretPage {
        section: "servers",
        csrf: &token.csrf_token(),
        email: &who.email,
        notice: None,
        title: "Agent client created",
        text: "The agent gets tokens with the client credentials grant at the token endpoint below.",
        facts: vec![
            ("Name", client.name.clone()),
            ("client_id", client.id.to_string()),
            ("Scopes", client.scopes.to_param()),
            ("Token endpoint", token_endpoint),
        ],
        secret_label: "client_secret",
        secret: secret.expose_secret(),
        back: format!("/admin/servers/{id}#clients"),
    })
}

/// `POST /admin/clients/{client_id}/rotate`
pub async fn rotate_client(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    AdminForm {
        token,
        user: who,
        form: _,
    }: AdminForm,
) -> Response {
    let (client, secret) = match s
        .engine
        .operator(&who.id)
        .rotate_client_secret(&client_id)
        .await
    {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    s.engine.invalidate();
    let server = client
        .resource
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    secret_page(&SecretPage {
        section: "servers",
        csrf: &token.csrf_token(),
        email: &who.email,
        notice: None,
        title: "New client secret",
        text: "The old secret no longer works. Tokens already issued stay valid until they expire.",
        facts: vec![
            ("Name", client.name.clone()),
            ("client_id", client.id.to_string()),
        ],
        secret_label: "client_secret",
        secret: secret.expose_secret(),
        back: format!("/admin/servers/{server}#clients"),
    })
}

/// `POST /admin/clients/{client_id}/delete`
pub async fn delete_client(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    match s.engine.operator(&who.id).remove_client(&client_id).await {
        Ok(()) => {
            s.engine.invalidate();
            back(&format!(
                "/admin/servers/{}#clients",
                field(&form, "server")
            ))
        }
        Err(e) => failed(e),
    }
}

/// `POST /admin/clients/{client_id}/disabled`: `disabled=on|off`.
pub async fn set_client_disabled(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let off = field(&form, "disabled") == "on";
    match s
        .engine
        .operator(&who.id)
        .set_client_disabled(&client_id, off)
        .await
    {
        Ok(c) => {
            s.engine.invalidate();
            let server = c.resource.map(|r| r.to_string()).unwrap_or_default();
            back(&format!("/admin/servers/{server}#clients"))
        }
        Err(e) => failed(e),
    }
}

/// `POST /admin/consents/revoke`
pub async fn revoke_consent(
    State(s): State<AppState>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let server = field(&form, "server");
    match s
        .engine
        .operator(&who.id)
        .revoke_consent(field(&form, "user"), field(&form, "client"), server)
        .await
    {
        Ok(_) => back(&format!("/admin/servers/{server}#consents")),
        Err(e) => failed(e),
    }
}

// ---------------------------------------------------------------- people and API keys

struct UserRow {
    id: String,
    email: String,
    admin: bool,
    disabled: bool,
    created: String,
}

struct KeyRow {
    id: String,
    name: String,
    owner: String,
    created: String,
    state: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin/people.html")]
struct PeoplePage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    users: Vec<UserRow>,
    keys: Vec<KeyRow>,
}

/// `GET /admin/people`
pub async fn people(State(s): State<AppState>, AdminPage { token, user }: AdminPage) -> Response {
    let store = s.engine.store();
    let (users, keys) = match (store.users().await, store.api_keys().await) {
        (Ok(u), Ok(k)) => (u, k),
        (Err(e), _) | (_, Err(e)) => return failed(e.into()),
    };
    let email_of = |id: &gatehouse_core::UserId| {
        users
            .iter()
            .find(|u| &u.id == id)
            .map(|u| u.email.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let page = PeoplePage {
        section: "people",
        csrf: &token.csrf_token(),
        email: &user.email,
        notice: None,
        keys: keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.to_string(),
                name: k.name.clone(),
                owner: email_of(&k.user),
                created: rfc3339(k.created_at),
                state: if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                },
                active: k.revoked_at.is_none(),
            })
            .collect(),
        users: users
            .iter()
            .map(|u| UserRow {
                id: u.id.to_string(),
                email: u.email.clone(),
                admin: u.admin,
                disabled: u.disabled_at.is_some(),
                created: rfc3339(u.created_at),
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

/// `POST /admin/people`: a person with a generated password, shown once.
pub async fn create_person(
    State(s): State<AppState>,
    AdminForm {
        token,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let made = async {
        let (password, hash) =
            super::hash_password(gatehouse_core::password::Password::generate()).await?;
        let admin = field(&form, "admin") == "on";
        let op = s.engine.operator(&who.id);
        let u = op
            .create_user_with_hash(field(&form, "email"), hash, admin)
            .await?;
        Ok::<_, AdminError>((u, password))
    }
    .await;
    let (u, password) = match made {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    secret_page(&SecretPage {
        section: "people",
        csrf: &token.csrf_token(),
        email: &who.email,
        notice: None,
        title: "Person added",
        text: "Give them this password; they sign in with their email and it.",
        facts: vec![("Email", u.email.clone()), ("Id", u.id.to_string())],
        secret_label: "Password",
        secret: password.expose_secret(),
        back: "/admin/people".into(),
    })
}

struct SessionRow {
    id: String,
    created: String,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "admin/person.html")]
struct PersonPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    person: UserRow,
    myself: bool,
    sessions: Vec<SessionRow>,
}

/// `GET /admin/people/{id}`: a person, their sessions, and what can be done to them.
pub async fn person(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminPage { token, user }: AdminPage,
) -> Response {
    let store = s.engine.store().as_ref();
    let found = async {
        let u = admin::user(store, &id).await?;
        let sessions = store.sessions_of(&u.id).await?;
        Ok::<_, AdminError>((u, sessions))
    }
    .await;
    let (u, sessions) = match found {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let page = PersonPage {
        section: "people",
        csrf: &token.csrf_token(),
        email: &user.email,
        notice: None,
        myself: u.id == user.id,
        person: UserRow {
            id: u.id.to_string(),
            email: u.email.clone(),
            admin: u.admin,
            disabled: u.disabled_at.is_some(),
            created: rfc3339(u.created_at),
        },
        sessions: sessions
            .iter()
            .map(|x| SessionRow {
                id: x.id(),
                created: rfc3339(x.created_at),
                last_seen: rfc3339(x.last_seen_at),
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

/// `POST /admin/people/{id}/disabled`: `disabled=on|off`.
pub async fn set_person_disabled(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let off = field(&form, "disabled") == "on";
    if off && who.id.as_str() == id {
        return failed(AdminError::Invalid("you cannot disable yourself".into()));
    }
    match s.engine.operator(&who.id).set_user_disabled(&id, off).await {
        Ok(u) => back(&format!("/admin/people/{}", u.id)),
        Err(e) => failed(e),
    }
}

/// `POST /admin/people/{id}/password`: a generated password, shown once; sessions end.
pub async fn reset_password(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token,
        user: who,
        form: _,
    }: AdminForm,
) -> Response {
    let made = async {
        let u = admin::user(s.engine.store().as_ref(), &id).await?;
        let (password, hash) =
            super::hash_password(gatehouse_core::password::Password::generate()).await?;
        let u = s
            .engine
            .operator(&who.id)
            .reset_password(u.id.as_str(), hash)
            .await?;
        Ok::<_, AdminError>((u, password))
    }
    .await;
    let (u, password) = match made {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    secret_page(&SecretPage {
        section: "people",
        csrf: &token.csrf_token(),
        email: &who.email,
        notice: None,
        title: "New password",
        text: "Give them this password. The old one no longer works, and their sessions ended.",
        facts: vec![("Email", u.email.clone()), ("Id", u.id.to_string())],
        secret_label: "Password",
        secret: password.expose_secret(),
        back: format!("/admin/people/{}", u.id),
    })
}

/// `POST /admin/people/{id}/sessions/end`: one session (`session=ses_…`) or all.
pub async fn end_sessions(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let one = Some(field(&form, "session")).filter(|x| !x.is_empty());
    match s.engine.operator(&who.id).end_sessions(&id, one).await {
        Ok(_) => back(&format!("/admin/people/{id}")),
        Err(e) => failed(e),
    }
}

/// `POST /admin/people/{id}/delete`
pub async fn delete_person(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form: _,
    }: AdminForm,
) -> Response {
    if who.id.as_str() == id {
        return failed(AdminError::Invalid("you cannot remove yourself".into()));
    }
    match s.engine.operator(&who.id).remove_user(&id).await {
        Ok(_) => back("/admin/people"),
        Err(e) => failed(e),
    }
}

/// `POST /admin/people/{id}/admin`
pub async fn set_admin(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let on = field(&form, "admin") == "on";
    if !on && who.id.as_str() == id {
        return failed(AdminError::Invalid(
            "you cannot remove your own administrator role".into(),
        ));
    }
    match s.engine.operator(&who.id).set_admin(&id, on).await {
        Ok(_) => back("/admin/people"),
        Err(e) => failed(e),
    }
}

/// `POST /admin/keys`: an API key for the signed-in administrator, shown once.
pub async fn create_key(
    State(s): State<AppState>,
    AdminForm {
        token,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let (key, secret) = match s
        .engine
        .operator(&who.id)
        .create_api_key(who.id.as_str(), field(&form, "name"))
        .await
    {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    secret_page(&SecretPage {
        section: "people",
        csrf: &token.csrf_token(),
        email: &who.email,
        notice: None,
        title: "API key created",
        text: "Send it as `Authorization: Bearer …` to the admin API at /admin/api/v1.",
        facts: vec![("Name", key.name.clone()), ("Id", key.id.to_string())],
        secret_label: "Secret",
        secret: secret.expose_secret(),
        back: "/admin/people".into(),
    })
}

/// `POST /admin/keys/{id}/revoke`
pub async fn revoke_key(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form: _,
    }: AdminForm,
) -> Response {
    match s.engine.operator(&who.id).revoke_api_key(&id).await {
        Ok(()) => back("/admin/people"),
        Err(e) => failed(e),
    }
}

// ---------------------------------------------------------------- signing keys

struct SigningKeyRow {
    kid: String,
    alg: &'static str,
    state: &'static str,
    activates: String,
    until: String,
}

#[derive(Template)]
#[template(path = "admin/signing_keys.html")]
struct SigningKeysPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    keys: Vec<SigningKeyRow>,
    publish_ahead: String,
    rotation_days: i64,
}

/// A span of seconds as an operator reads it: `24 hours`, `90 seconds`.
fn span(secs: i64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// `GET /admin/signing-keys`
pub async fn signing_keys(
    State(s): State<AppState>,
    AdminPage { token, user }: AdminPage,
) -> Response {
    let keys = match admin::signing_keys(s.engine.store().as_ref(), s.engine.now()).await {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let settings = s.engine.settings();
    let page = SigningKeysPage {
        section: "signing-keys",
        csrf: &token.csrf_token(),
        email: &user.email,
        notice: None,
        keys: keys
            .iter()
            .filter(|k| k.state != gatehouse_core::keys::KeyState::Expired)
            .map(|k| SigningKeyRow {
                kid: k.kid.to_string(),
                alg: k.alg.as_str(),
                state: k.state.as_str(),
                activates: rfc3339(k.activates_at),
                until: k.published_until.map(rfc3339).unwrap_or_default(),
            })
            .collect(),
        publish_ahead: span(settings.key_publish_ahead),
        rotation_days: settings.key_rotation / 86_400,
    };
    html(StatusCode::OK, &page)
}

/// `POST /admin/signing-keys/rotate`
pub async fn rotate_signing_keys(
    State(s): State<AppState>,
    AdminForm {
        token: _,
        user: who,
        form: _,
    }: AdminForm,
) -> Response {
    match s.engine.rotate_keys(who.id.as_str(), None).await {
        Ok(_) => back("/admin/signing-keys"),
        Err(e) => failed(e),
    }
}

// ---------------------------------------------------------------- sign-in

/// Methods as an operator reads them: "Email and password, Acme (connection)".
fn method_labels(methods: &[Method], connections: &[Connection]) -> String {
    methods
        .iter()
        .map(|m| match m {
            Method::Password => "Email and password".to_owned(),
            Method::EmailCode => "One-time codes by email".to_owned(),
            Method::Passkey => "Passkeys".to_owned(),
            Method::Connection(id) => match connections.iter().find(|c| &c.id == id) {
                Some(c) if c.enabled => format!("{} (connection)", c.name),
                Some(c) => format!("{} (connection, disabled)", c.name),
                None => format!("{id} (removed connection)"),
            },
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct ConnectionRow {
    id: String,
    name: String,
    kind: &'static str,
    domains: String,
    enabled: bool,
    /// Bring your own auth: the owner's login page. OpenID Connect: the issuer. GitHub: its
    /// URL.
    login_url: String,
    auth_request_url: String,
    callback_url: String,
    /// Identity providers: Gatehouse's client id at the provider, whether it has a secret,
    /// and the scopes asked for.
    client_id: String,
    secret_set: bool,
    scopes: String,
}

#[derive(Template)]
#[template(path = "admin/sign_in.html")]
struct SignInPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    password: bool,
    email_code: bool,
    passkey: bool,
    email_delivery: bool,
    passkeys_available: bool,
    defaults: String,
    connections: Vec<ConnectionRow>,
}

/// `GET /admin/sign-in`
pub async fn sign_in(State(s): State<AppState>, AdminPage { token, user }: AdminPage) -> Response {
    let store = s.engine.store().as_ref();
    let loaded = async {
        let policy = admin::sign_in_policy(store).await?;
        let connections = store.connections().await?;
        let (defaults, _) = s.engine.offered_methods(None).await?;
        Ok::<_, AdminError>((policy, connections, defaults))
    }
    .await;
    let (policy, connections, defaults) = match loaded {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let public = s.engine.public_issuer();
    let page = SignInPage {
        section: "sign-in",
        csrf: &token.csrf_token(),
        email: &user.email,
        notice: None,
        password: policy.password,
        email_code: policy.email_code,
        passkey: policy.passkey,
        email_delivery: s.engine.settings().email_delivery,
        passkeys_available: s.engine.passkeys_available(),
        defaults: method_labels(&defaults, &connections),
        connections: connections
            .iter()
            .map(|c| {
                let (login_url, client_id, secret_set, scopes) = match &c.kind {
                    ConnectionKind::Federated { login_url } => {
                        (login_url.clone(), String::new(), false, String::new())
                    }
                    ConnectionKind::Oidc {
                        issuer,
                        client_id,
                        client_secret,
                        scopes,
                    } => (
                        issuer.clone(),
                        client_id.clone(),
                        !client_secret.is_empty(),
                        scopes.join(" "),
                    ),
                    ConnectionKind::Github {
                        base_url,
                        client_id,
                        client_secret,
                    } => (
                        base_url.clone(),
                        client_id.clone(),
                        !client_secret.is_empty(),
                        gatehouse_core::signin::GITHUB_SCOPES.to_owned(),
                    ),
                };
                ConnectionRow {
                    id: c.id.to_string(),
                    name: c.name.clone(),
                    kind: c.kind.name(),
                    domains: if c.allowed_domains.is_empty() {
                        "any".to_owned()
                    } else {
                        c.allowed_domains.join(", ")
                    },
                    enabled: c.enabled,
                    login_url,
                    auth_request_url: c.auth_request_url(public),
                    callback_url: c.callback_url(public),
                    client_id,
                    secret_set,
                    scopes,
                }
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

/// `POST /admin/sign-in`: the built-in methods.
pub async fn save_sign_in(
    State(s): State<AppState>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let policy = SignInPolicy {
        password: field(&form, "password") == "on",
        email_code: field(&form, "email_code") == "on",
        passkey: field(&form, "passkey") == "on",
    };
    match s.engine.operator(&who.id).set_sign_in_policy(policy).await {
        Ok(()) => back("/admin/sign-in"),
        Err(e) => failed(e),
    }
}

/// `POST /admin/connections`: a bring-your-own-auth connection, or (`kind=oidc`) an
/// identity provider by preset (GitHub among them) or OpenID Connect issuer.
pub async fn create_connection(
    State(s): State<AppState>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let words = |name: &str| -> Vec<String> {
        field(&form, name)
            .split([' ', ','])
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let given = |name: &str| Some(field(&form, name).trim()).filter(|v| !v.is_empty());
    let kind = if field(&form, "kind") == "oidc" {
        match ConnectionKind::provider(
            given("preset"),
            given("tenant"),
            given("issuer"),
            field(&form, "client_id"),
            field(&form, "client_secret"),
            words("scopes"),
        ) {
            Ok(k) => k,
            Err(e) => return failed(AdminError::Invalid(e.0)),
        }
    } else {
        ConnectionKind::Federated {
            login_url: field(&form, "login_url").to_owned(),
        }
    };
    let new = NewConnection {
        name: field(&form, "name").to_owned(),
        kind,
        allowed_domains: words("domains"),
    };
    match s.engine.operator(&who.id).create_connection(new).await {
        Ok(_) => back("/admin/sign-in#connections"),
        Err(e) => failed(e),
    }
}

/// `POST /admin/connections/{id}/enabled`
pub async fn set_connection_enabled(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form,
    }: AdminForm,
) -> Response {
    let change = admin::ConnectionChange {
        enabled: Some(field(&form, "enabled") == "on"),
        ..Default::default()
    };
    match s
        .engine
        .operator(&who.id)
        .update_connection(&id, change)
        .await
    {
        Ok(_) => back("/admin/sign-in#connections"),
        Err(e) => failed(e),
    }
}

/// `POST /admin/connections/{id}/delete`
pub async fn delete_connection(
    State(s): State<AppState>,
    Path(id): Path<String>,
    AdminForm {
        token: _,
        user: who,
        form: _,
    }: AdminForm,
) -> Response {
    match s.engine.operator(&who.id).remove_connection(&id).await {
        Ok(()) => back("/admin/sign-in#connections"),
        Err(e) => failed(e),
    }
}

// ---------------------------------------------------------------- audit log

struct EventRow {
    time: String,
    event: &'static str,
    outcome: &'static str,
    resource: String,
    client: String,
    who: String,
    details: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    section: &'a str,
    csrf: &'a str,
    email: &'a str,
    notice: Option<&'a str>,
    event_types: Vec<&'static str>,
    filter_event: String,
    filter_outcome: String,
    filter_server: String,
    filter_client: String,
    filter_user: String,
    filter_since: String,
    filter_until: String,
    query: String,
    events: Vec<EventRow>,
    older: Option<String>,
}

/// The filters of a query string and the audit query they make, or what is wrong with them.
fn audit_query(s: &AppState, raw: &str, limit: u32) -> Result<(FormParams, AuditQuery), String> {
    let q = FormParams::parse(raw.as_bytes());
    let get = |n: &str| q.single(n).ok().flatten().unwrap_or("").trim().to_owned();
    let now = s.engine.now();
    let time = |n: &str| {
        let v = get(n);
        if v.is_empty() {
            Ok(None)
        } else {
            parse_time(&v, now)
                .map(Some)
                .map_err(|e| format!("{n}: {e}"))
        }
    };
    let opt = |n: &str| Some(get(n)).filter(|v| !v.is_empty());
    let query = AuditQuery {
        events: match opt("event") {
            None => vec![],
            Some(e) => vec![EventType::parse(&e).ok_or(format!("`{e}` is not an event type"))?],
        },
        outcome: match opt("outcome") {
            None => None,
            Some(o) => Some(Outcome::parse(&o).ok_or("outcome is success or failure")?),
        },
        resource: opt("server"),
        client: opt("client"),
        user: opt("user"),
        since: time("since")?,
        until: time("until")?,
        before: match opt("before") {
            None => None,
            Some(b) => Some(b.parse().map_err(|_| "`before` is not a sequence number")?),
        },
        limit,
    };
    Ok((q, query))
}

fn bad_filters(why: &str) -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "Check the filters",
        why,
        Some("invalid_request"),
    )
}

const FILTERS: [&str; 7] = [
    "event", "outcome", "server", "client", "user", "since", "until",
];

/// `GET /admin/audit`
pub async fn audit_log(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    AdminPage { token, user }: AdminPage,
) -> Response {
    let raw = raw.unwrap_or_default();
    let (q, query) = match audit_query(&s, &raw, 100) {
        Ok(x) => x,
        Err(why) => return bad_filters(&why),
    };
    let events = match s.engine.store().audit_events(&query).await {
        Ok(e) => e,
        Err(e) => return failed(e.into()),
    };
    let get = |n: &str| q.single(n).ok().flatten().unwrap_or("").trim().to_owned();
    let mut filters = form_urlencoded::Serializer::new(String::new());
    for f in FILTERS {
        let v = get(f);
        if !v.is_empty() {
            filters.append_pair(f, &v);
        }
    }
    let filters = filters.finish();
    let older = (events.len() == query.limit as usize)
        .then(|| events.last().and_then(|e| e.seq))
        .flatten()
        .map(|seq| {
            let sep = if filters.is_empty() { "" } else { "&" };
            format!("{filters}{sep}before={seq}")
        });
    let page = AuditPage {
        section: "audit",
        csrf: &token.csrf_token(),
        email: &user.email,
        notice: None,
        event_types: EventType::ALL.iter().map(|e| e.as_str()).collect(),
        filter_event: get("event"),
        filter_outcome: get("outcome"),
        filter_server: get("server"),
        filter_client: get("client"),
        filter_user: get("user"),
        filter_since: get("since"),
        filter_until: get("until"),
        query: filters,
        older,
        events: events
            .iter()
            .map(|e| EventRow {
                time: rfc3339(e.at),
                event: e.event.as_str(),
                outcome: e.outcome.as_str(),
                resource: e.resource.clone().unwrap_or_default(),
                client: e.client.clone().unwrap_or_default(),
                who: [e.user.clone(), e.actor.clone().map(|a| format!("by {a}"))]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
                details: if e.details.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&e.details).unwrap_or_default()
                },
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

/// `GET /admin/audit/export?format=jsonl|csv&…filters`: the matching events (up to 1,000
/// per file, newest first; page with `before`) as a download.
pub async fn audit_export(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
    _admin: AdminPage,
) -> Response {
    let raw = raw.unwrap_or_default();
    let (q, query) = match audit_query(&s, &raw, AuditQuery::MAX_LIMIT) {
        Ok(x) => x,
        Err(why) => return bad_filters(&why),
    };
    let (format, mime, ext) = match q.single("format").ok().flatten() {
        Some("csv") => (Format::Csv, "text/csv; charset=utf-8", "csv"),
        Some("jsonl") | None => (Format::JsonLines, "application/x-ndjson", "jsonl"),
        Some(other) => {
            return message(
                StatusCode::BAD_REQUEST,
                "Unknown format",
                &format!("`{other}` is not jsonl or csv."),
                Some("invalid_request"),
            );
        }
    };
    let events = match s.engine.store().audit_events(&query).await {
        Ok(e) => e,
        Err(e) => return failed(e.into()),
    };
    let mut r = render(&events, format).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"gatehouse-audit.{ext}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
