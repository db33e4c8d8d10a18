//! Just enough JSON-RPC to know which MCP tools a request calls.

use serde::Deserialize;

#[derive(Deserialize)]
struct Message {
    method: Option<String>,
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    One(Message),
    Batch(Vec<Message>),
}

/// The names of the tools a JSON-RPC body (one message or a batch) calls with `tools/call`.
/// A body that is not JSON-RPC calls none; the MCP server will answer it.
pub(crate) fn called_tools(body: &[u8]) -> Vec<String> {
    let messages = match serde_json::from_slice::<Body>(body) {
        Ok(Body::One(m)) => vec![m],
        Ok(Body::Batch(v)) => v,
        Err(_) => return Vec::new(),
    };
    messages
        .into_iter()
        .filter(|m| m.method.as_deref() == Some("tools/call"))
        .filter_map(|m| m.params.and_then(|p| p.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tool_calls_in_single_and_batch_bodies() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_todo","arguments":{}}}"#;
        assert_eq!(called_tools(one), vec!["create_todo"]);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_todo"}}]"#;
        assert_eq!(called_tools(batch), vec!["get_todo"]);
        assert!(called_tools(b"not json").is_empty());
        assert!(called_tools(br#"{"method":"tools/list"}"#).is_empty());
    }
}
