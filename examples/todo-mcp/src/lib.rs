//! A to-do list as an MCP server (official Rust SDK, Streamable HTTP at `/mcp`), protected by
//! the Gatehouse guard.
//!
//! Reads (`list_todos`, `get_todo`) need `todo:read`; writes (`create_todo`, `update_todo`,
//! `delete_todo`) need `todo:write`. The guard checks this per tool before the request reaches
//! the MCP server, and answers `403 insufficient_scope` when a scope is missing. Each person
//! (token subject) has their own list.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use gatehouse_guard::{Guard, Principal};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Scope needed to read to-dos.
pub const READ: &str = "todo:read";
/// Scope needed to change to-dos.
pub const WRITE: &str = "todo:write";

/// Each tool and the scopes it needs.
pub const TOOL_SCOPES: [(&str, &str); 5] = [
    ("create_todo", WRITE),
    ("list_todos", READ),
    ("get_todo", READ),
    ("update_todo", WRITE),
    ("delete_todo", WRITE),
];

/// A to-do item.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Todo {
    /// Its number, unique per person.
    pub id: u64,
    /// What to do.
    pub title: String,
    /// Whether it is done.
    pub done: bool,
}

#[derive(Default)]
struct Lists {
    next_id: u64,
    by_owner: HashMap<String, Vec<Todo>>,
}

/// Arguments of `create_todo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateTodo {
    /// What to do.
    pub title: String,
}

/// Arguments naming one to-do.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct TodoRef {
    /// The to-do's id.
    pub id: u64,
}

/// Arguments of `update_todo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateTodo {
    /// The to-do's id.
    pub id: u64,
    /// A new title.
    pub title: Option<String>,
    /// Mark done or not done.
    pub done: Option<bool>,
}

/// The MCP server.
#[derive(Clone)]
pub struct TodoServer {
    lists: Arc<Mutex<Lists>>,
    tool_router: ToolRouter<Self>,
}

impl Default for TodoServer {
    fn default() -> Self {
        Self::new()
    }
}

/// The person a request is for: the token's subject, or `anonymous` without a guard.
fn owner(parts: &http::request::Parts) -> String {
    parts
        .extensions
        .get::<Principal>()
        .map(|p| p.subject.clone())
        .unwrap_or_else(|| "anonymous".to_owned())
}

fn json_result<T: Serialize>(value: &T) -> Result<CallToolResult, ErrorData> {
    let text =
        serde_json::to_string(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

fn not_found(id: u64) -> ErrorData {
    ErrorData::invalid_params(format!("no to-do with id {id}"), None)
}

#[tool_router]
impl TodoServer {
    /// An empty server.
    pub fn new() -> Self {
        TodoServer {
            lists: Arc::default(),
            tool_router: Self::tool_router(),
        }
    }

    fn with_lists<T>(&self, f: impl FnOnce(&mut Lists) -> T) -> T {
        // The lists are plain data changed in single statements; a poisoned lock is still
        // consistent.
        f(&mut self.lists.lock().unwrap_or_else(|p| p.into_inner()))
    }

    #[tool(description = "Create a to-do. Needs todo:write.")]
    async fn create_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<CreateTodo>,
    ) -> Result<CallToolResult, ErrorData> {
        let title = args.title.trim().to_owned();
        if title.is_empty() {
            return Err(ErrorData::invalid_params("the title is empty", None));
        }
        let todo = self.with_lists(|l| {
            l.next_id += 1;
            let todo = Todo {
                id: l.next_id,
                title,
                done: false,
            };
            l.by_owner
                .entry(owner(&parts))
                .or_default()
                .push(todo.clone());
            todo
        });
        json_result(&todo)
    }

    #[tool(description = "List your to-dos. Needs todo:read.")]
    async fn list_todos(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let list = self.with_lists(|l| l.by_owner.get(&owner(&parts)).cloned().unwrap_or_default());
        json_result(&list)
    }

    #[tool(description = "Get one to-do by id. Needs todo:read.")]
    async fn get_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<TodoRef>,
    ) -> Result<CallToolResult, ErrorData> {
        let found = self.with_lists(|l| {
            l.by_owner
                .get(&owner(&parts))
                .and_then(|v| v.iter().find(|t| t.id == args.id).cloned())
        });
        json_result(&found.ok_or_else(|| not_found(args.id))?)
    }

    #[tool(description = "Change a to-do's title or mark it done. Needs todo:write.")]
    async fn update_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<UpdateTodo>,
    ) -> Result<CallToolResult, ErrorData> {
        let updated = self.with_lists(|l| {
            let todo = l
                .by_owner
                .get_mut(&owner(&parts))?
                .iter_mut()
                .find(|t| t.id == args.id)?;
            if let Some(title) = &args.title {
                todo.title = title.trim().to_owned();
            }
            if let Some(done) = args.done {
                todo.done = done;
            }
            Some(todo.clone())
        });
        json_result(&updated.ok_or_else(|| not_found(args.id))?)
    }

    #[tool(description = "Delete a to-do. Needs todo:write.")]
    async fn delete_todo(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(args): Parameters<TodoRef>,
    ) -> Result<CallToolResult, ErrorData> {
        let removed = self.with_lists(|l| {
            let list = l.by_owner.get_mut(&owner(&parts))?;
            let at = list.iter().position(|t| t.id == args.id)?;
            Some(list.remove(at))
        });
        json_result(&removed.ok_or_else(|| not_found(args.id))?)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TodoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("A to-do list. Reads need todo:read, writes need todo:write.")
    }
}

/// A guard for the to-do server at `resource`, trusting `issuer`, with the scopes of every
/// tool declared.
pub fn guard(resource: &str, issuer: &str) -> Result<Guard, gatehouse_guard::ConfigError> {
    guard_builder(resource, issuer).build()
}

/// The builder behind [`guard`], for callers that tune it further.
pub fn guard_builder(resource: &str, issuer: &str) -> gatehouse_guard::GuardBuilder {
    let mut builder = Guard::builder(resource, issuer)
        .scopes_supported([READ, WRITE])
        .resource_name("To-do list");
    for (tool, scope) in TOOL_SCOPES {
        builder = builder.tool_scopes(tool, [scope]);
    }
    builder
}

/// Serves `app` on `listener` with `TCP_NODELAY` (SSE responses go out in several writes,
/// which Nagle's algorithm would otherwise delay) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The HTTP app: the MCP server at `/mcp` behind `guard` (if any), and the Protected Resource
/// Metadata. `allowed_hosts` are the `Host` values rmcp accepts (DNS-rebinding protection).
pub fn app(guard: Option<Guard>, allowed_hosts: Vec<String>) -> Router {
    // rmcp calls the factory for every session (every request, for stateless clients): the
    // handlers share one set of lists.
    let server = TodoServer::new();
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_allowed_hosts(allowed_hosts),
    );
    let mcp = Router::new().nest_service("/mcp", service);
    match guard {
        Some(g) => mcp.layer(g.layer()).merge(g.metadata_router()),
        None => mcp,
    }
}
