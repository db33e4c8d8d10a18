//! RFC 9728 Protected Resource Metadata, at the path-inserted well-known URL of the resource
//! and at the root well-known URL (MCP clients try the `WWW-Authenticate` URL, then both).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::json;
use tower_http::cors::{Any, CorsLayer};

use crate::{Guard, GuardConfig};

pub(crate) fn document(config: &GuardConfig) -> serde_json::Value {
    let mut doc = json!({
        "resource": config.resource,
        "authorization_servers": [config.authorization_server],
        "bearer_methods_supported": ["header"],
        // MCP: offline_access is not a resource scope and is never listed here.
        "scopes_supported": config.scopes_supported.iter().filter(|s| *s != "offline_access").collect::<Vec<_>>(),
    });
    if let Some(name) = &config.resource_name {
        doc["resource_name"] = name.clone().into();
    }
    doc
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>(guard: Guard) -> Router<S> {
    let doc = document(guard.config());
    let path = url::Url::parse(&guard.config().resource)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_headers(Any)
        .max_age(Duration::from_secs(3600));
    let handler = move || {
        let doc = doc.clone();
        async move { Json(doc) }
    };
    let mut router = Router::new().route(
        "/.well-known/oauth-protected-resource",
        get(handler.clone()),
    );
    if !path.is_empty() {
        router = router.route(
            &format!("/.well-known/oauth-protected-resource{path}"),
            get(handler),
        );
    }
    router.layer(cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_access_is_never_published() {
        // MCP: offline_access is a request to the AS, not a scope of the resource (RS-4).
        let guard = Guard::builder(
            "https://mcp.example.com/mcp",
            "https://as.example/resources/res_1",
        )
        .scopes_supported(["todo:read", "offline_access"])
        .build()
        .unwrap();
        let doc = document(guard.config());
        assert_eq!(doc["scopes_supported"], json!(["todo:read"]));
        assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
}
