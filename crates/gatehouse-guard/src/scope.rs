//! Scope hierarchy (MCP: servers must account for broader scopes implying narrower ones).
//!
//! Scopes are `:`-separated paths. A granted scope satisfies a required one when they are
//! equal, when the granted one is a prefix path of it (`todo` covers `todo:read`), or when it
//! is a wildcard over it (`todo:*` covers `todo` and `todo:read`; `mcp:tools:*` covers
//! `mcp:tools:weather`).

/// Whether `granted` satisfies `required`.
pub fn scope_satisfies(granted: &str, required: &str) -> bool {
    if granted == required {
        return true;
    }
    let base = granted.strip_suffix(":*").unwrap_or(granted);
    if granted == "*" {
        return true;
    }
    if let Some(rest) = required.strip_prefix(base) {
        return rest.is_empty() || rest.starts_with(':');
    }
    false
}

/// The scopes of `required` that no scope of `granted` satisfies.
pub(crate) fn missing<'a>(granted: &[String], required: &'a [String]) -> Vec<&'a str> {
    required
        .iter()
        .filter(|r| !granted.iter().any(|g| scope_satisfies(g, r)))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_and_wildcards() {
        assert!(scope_satisfies("todo:read", "todo:read"));
        assert!(scope_satisfies("todo:*", "todo:read"));
        assert!(scope_satisfies("todo:*", "todo"));
        assert!(scope_satisfies("todo", "todo:read"));
        assert!(scope_satisfies("mcp:tools:*", "mcp:tools:weather"));
        assert!(scope_satisfies("mcp:tools:*", "mcp:tools:calendar:read"));
        assert!(!scope_satisfies("todo:read", "todo:write"));
        assert!(!scope_satisfies("todo:read", "todo"));
        assert!(
            !scope_satisfies("todo", "todolist:read"),
            "prefix must end at a segment"
        );
        assert!(!scope_satisfies("mcp:tools:*", "mcp:resources:x"));
        assert!(!scope_satisfies("todo:*", "todolist"));
    }

    #[test]
    fn missing_lists_every_unsatisfied_scope() {
        let granted = vec!["todo:read".to_owned()];
        let required = vec![
            "todo:read".to_owned(),
            "todo:write".to_owned(),
            "admin".to_owned(),
        ];
        assert_eq!(missing(&granted, &required), vec!["todo:write", "admin"]);
    }
}
