//! `gatehouse doctor URL`: does what an MCP host does before it signs anyone in, and says
//! which step would fail and what to change (MCP 2025-11-25 authorization, RFC 9728,
//! RFC 8414, OpenID Connect Discovery).
//!
//! 1. An unauthenticated MCP request: `401` with `WWW-Authenticate: Bearer` and, ideally,
//!    `resource_metadata`.
//! 2. Protected Resource Metadata at the URL the challenge names, the path-inserted and the
//!    root well-known URLs: `resource` is the URL the host connects to, an authorization
//!    server is named.
//! 3. The authorization server's metadata at every URL hosts try, each with the same issuer;
//!    PKCE S256; the JWKS; a way to register (DCR with `none`, or metadata documents).
//! 4. https everywhere off loopback.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use url::Url;

/// One step and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was tried.
    pub step: String,
    /// Whether it is as hosts need it.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// For a failure: what to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check made for one URL.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    /// The report as lines with ✓ and ✗, each failure followed by its fix.
    pub fn text(&self) -> String {
        let mut out = format!("Checking {} as an MCP host would:\n", self.url);
        for c in &self.checks {
            let mark = if c.ok { '✓' } else { '✗' };
            out.push_str(&format!("{mark} {}: {}\n", c.step, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("    fix: {fix}\n"));
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        out.push_str(&if failed == 0 {
            "Every step passed: hosts can discover this server, register and sign people in."
                .to_owned()
        } else {
            format!("{failed} step(s) failed.")
        });
        out
    }
}

struct Doctor {
    http: reqwest::Client,
    checks: Vec<Check>,
}

impl Doctor {
    fn pass(&mut self, step: impl Into<String>, detail: impl Into<String>) {
        self.checks.push(Check {
            step: step.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, step: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check {
            step: step.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }

    /// GETs `url` as JSON: the document, or why not.
    async fn json(&self, url: &str) -> Result<Value, String> {
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("no answer ({})", root_cause(&e)))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("answered {status}"));
        }
        resp.json::<Value>()
            .await
            .map_err(|_| "answered 200 but not with JSON".to_owned())
            .and_then(|v| {
                v.is_object()
                    .then_some(v)
                    .ok_or_else(|| "is not a JSON object".into())
            })
    }
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

fn on_loopback(url: &Url) -> bool {
    gatehouse_core::redirect::is_loopback(url)
}

/// `resource_metadata="…"` of a `WWW-Authenticate: Bearer` challenge.
fn challenge_param(header: &str, name: &str) -> Option<String> {
    let rest = header.trim().strip_prefix("Bearer")?.trim_start();
    let needle = format!("{name}=\"");
    let start = rest.find(&needle)? + needle.len();
    let end = rest[start..].find('"')? + start;
    Some(rest[start..end].to_owned())
}

/// Checks `url`; with `authorization_server`, the PRM must name that issuer.
pub async fn run(url: &str, authorization_server: Option<&str>) -> Result<Report, String> {
    let target = Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(format!("{url} is not an http(s) URL"));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("gatehouse-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let mut d = Doctor {
        http,
        checks: Vec::new(),
    };
    if target.scheme() == "https" || on_loopback(&target) {
        d.pass(
            "transport",
            format!("{} {}", target.scheme(), target.host_str().unwrap_or("")),
        );
    } else {
        d.fail(
            "transport",
            format!("{url} is plain http off loopback"),
            "serve the MCP server over https: hosts refuse authorization over plain http",
        );
    }

    let Some(named_prm) = challenge(&mut d, url).await else {
        return Ok(report(url, d)); // nothing answers there: the later steps would only repeat it
    };
    if let Some(issuer) = protected_resource(&mut d, url, named_prm, authorization_server).await {
        authorization_server_checks(&mut d, &issuer).await;
    }
    Ok(report(url, d))
}

fn report(url: &str, d: Doctor) -> Report {
    Report {
        url: url.to_owned(),
        ok: d.checks.iter().all(|c| c.ok),
        checks: d.checks,
    }
}

/// Step 1: the MCP `initialize` a host sends first, without a token. `None` when nothing
/// answers; else the PRM URL the challenge names, if any.
async fn challenge(d: &mut Doctor, url: &str) -> Option<Option<String>> {
    let step = "401 challenge";
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "gatehouse-doctor", "version": env!("CARGO_PKG_VERSION")}}
    });
    let resp = match d
        .http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            d.fail(
                step,
                format!("{url} did not answer ({})", root_cause(&e)),
                "start the MCP server, and check the URL hosts are given",
            );
            return None;
        }
    };
    let status = resp.status();
    let header = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if status != reqwest::StatusCode::UNAUTHORIZED {
        d.fail(
            step,
            format!("an MCP request without a token answered {status}"),
            "protect the MCP endpoint: without a token it must answer 401 (gatehouse-guard, or ScalekitProvider in FastMCP)",
        );
        return Some(None);
    }
    let Some(header) = header.filter(|h| h.trim_start().starts_with("Bearer")) else {
        d.fail(
            step,
            "401 without a `WWW-Authenticate: Bearer` challenge",
            "send `WWW-Authenticate: Bearer resource_metadata=\"<PRM URL>\"` with the 401 (RFC 9728 §5.1)",
        );
        return Some(None);
    };
    match challenge_param(&header, "resource_metadata") {
        Some(prm) => {
            d.pass(step, format!("401, resource_metadata=\"{prm}\""));
            Some(Some(prm))
        }
        None => {
            d.pass(
                step,
                "401 with a Bearer challenge but no resource_metadata: hosts fall back to the well-known URLs",
            );
            Some(None)
        }
    }
}

/// Step 2: Protected Resource Metadata, as hosts look for it. The issuer it names.
async fn protected_resource(
    d: &mut Doctor,
    url: &str,
    named: Option<String>,
    expected_issuer: Option<&str>,
) -> Option<String> {
    let path_inserted = gatehouse_core::types::well_known_url(url, "oauth-protected-resource");
    let root = Url::parse(url)
        .map(|u| {
            format!(
                "{}/.well-known/oauth-protected-resource",
                u.origin().ascii_serialization()
            )
        })
        .unwrap_or_default();
    let mut candidates = Vec::new();
    if let Some(n) = named {
        candidates.push(("the challenge's resource_metadata", n));
    }
    if !candidates.iter().any(|(_, u)| *u == path_inserted) {
        candidates.push(("path-inserted PRM", path_inserted));
    }
    if !candidates.iter().any(|(_, u)| *u == root) {
        candidates.push(("root PRM", root));
    }
    let mut found = None;
    for (what, at) in candidates {
        match d.json(&at).await {
            Ok(doc) => {
                let resource = doc.get("resource").and_then(Value::as_str).unwrap_or("");
                if resource == url {
                    d.pass(what, format!("{at}: resource = {url}"));
                    found.get_or_insert(doc);
                } else if what == "root PRM" && found.is_some() {
                    d.pass(
                        what,
                        format!("{at} describes {resource}, another resource on this host (hosts use the path-inserted document)"),
                    );
                } else {
                    d.fail(
                        what,
                        format!("{at}: resource is `{resource}`, not the URL hosts connect to ({url})"),
                        format!("register the MCP server with exactly this URL ({url}) and serve its metadata with `resource` set to it; tokens are bound to that audience"),
                    );
                }
            }
            Err(e) if what == "root PRM" && found.is_some() => {
                d.pass(what, format!("{at} {e} (not needed: the path-inserted document answered)"));
            }
            Err(e) => d.fail(
                what,
                format!("{at} {e}"),
                "serve Protected Resource Metadata (RFC 9728) there; gatehouse-guard's metadata_router() does",
            ),
        }
    }
    let doc = found?;
    let servers: Vec<String> = doc
        .get("authorization_servers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let step = "authorization server";
    let Some(first) = servers.first().cloned() else {
        d.fail(
            step,
            "the metadata names no authorization_servers",
            "list the Gatehouse issuer of this MCP server in authorization_servers",
        );
        return None;
    };
    if let Some(expected) = expected_issuer
        && !servers.iter().any(|s| s == expected)
    {
        d.fail(
            step,
            format!("the metadata names {}, not {expected}", servers.join(", ")),
            format!("set the MCP server's authorization server to {expected} (the issuer `gatehouse servers show` prints)"),
        );
        return None;
    }
    let issuer = expected_issuer.map(str::to_owned).unwrap_or(first);
    d.pass(step, issuer.clone());
    Some(issuer)
}

/// Step 3: the authorization server as hosts discover and use it.
async fn authorization_server_checks(d: &mut Doctor, issuer: &str) {
    let Ok(iss) = Url::parse(issuer) else {
        d.fail(
            "issuer",
            format!("`{issuer}` is not a URL"),
            "name the issuer URL in authorization_servers",
        );
        return;
    };
    let loopback = on_loopback(&iss);
    if iss.scheme() != "https" && !loopback {
        d.fail(
            "issuer transport",
            format!("{issuer} is plain http off loopback"),
            "give Gatehouse an https public_url",
        );
    }
    let has_path = !iss.path().trim_end_matches('/').is_empty();
    let mut urls = vec![
        (
            "RFC 8414 metadata",
            gatehouse_core::types::well_known_url(issuer, "oauth-authorization-server"),
        ),
        (
            "OpenID discovery",
            gatehouse_core::types::well_known_url(issuer, "openid-configuration"),
        ),
    ];
    if has_path {
        urls.push((
            "OpenID discovery (appended)",
            format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
        ));
    }
    let mut metadata = None;
    for (what, at) in urls {
        match d.json(&at).await {
            Ok(doc) => {
                let got = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
                if got == issuer {
                    d.pass(what, format!("{at}: issuer matches"));
                    metadata.get_or_insert(doc);
                } else {
                    d.fail(
                        what,
                        format!("{at}: issuer is `{got}`, not `{issuer}`"),
                        "the issuer in the metadata must equal the authorization server URL byte for byte (RFC 8414 §3.3): check Gatehouse's public_url",
                    );
                }
            }
            Err(e) => d.fail(
                what,
                format!("{at} {e}"),
                "hosts try this URL; make it reach Gatehouse (a proxy that forwards /.well-known/)",
            ),
        }
    }
    let Some(m) = metadata else { return };
    let list = |k: &str| -> Vec<String> {
        m.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    if list("code_challenge_methods_supported")
        .iter()
        .any(|x| x == "S256")
    {
        d.pass("PKCE", "S256 advertised");
    } else {
        d.fail(
            "PKCE",
            "code_challenge_methods_supported lacks S256",
            "MCP hosts refuse an authorization server that does not advertise S256",
        );
    }
    for k in ["authorization_endpoint", "token_endpoint"] {
        match m.get(k).and_then(Value::as_str).map(Url::parse) {
            Some(Ok(u)) if u.scheme() == "https" || on_loopback(&u) => {}
            Some(Ok(u)) => d.fail(
                k,
                format!("{u} is plain http"),
                "give Gatehouse an https public_url",
            ),
            _ => d.fail(k, "missing or not a URL", "the metadata must name it"),
        }
    }
    match m.get("jwks_uri").and_then(Value::as_str) {
        Some(j) => match d.json(j).await {
            Ok(set)
                if set
                    .get("keys")
                    .and_then(Value::as_array)
                    .is_some_and(|k| !k.is_empty()) =>
            {
                d.pass(
                    "JWKS",
                    format!("{j}: {} key(s)", set["keys"].as_array().map_or(0, Vec::len)),
                );
            }
            Ok(_) => d.fail(
                "JWKS",
                format!("{j} holds no keys"),
                "start Gatehouse once: it creates its signing keys",
            ),
            Err(e) => d.fail(
                "JWKS",
                format!("{j} {e}"),
                "make jwks_uri reachable: MCP servers verify tokens with it",
            ),
        },
        None => d.fail(
            "JWKS",
            "the metadata names no jwks_uri",
            "the metadata must name it",
        ),
    }
    let dcr = m
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .is_some()
        && list("token_endpoint_auth_methods_supported")
            .iter()
            .any(|x| x == "none");
    let cimd = m.get("client_id_metadata_document_supported") == Some(&Value::Bool(true));
    match (dcr, cimd) {
        (false, false) => d.fail(
            "registration",
            "neither Dynamic Client Registration (with `none`) nor Client ID Metadata Documents is offered",
            "turn on dynamic registration or metadata documents for this MCP server (`gatehouse servers update ID --dynamic-registration on --metadata-documents on`), or pre-register every host",
        ),
        _ => d.pass(
            "registration",
            [dcr.then_some("Dynamic Client Registration"), cimd.then_some("Client ID Metadata Documents")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters_are_read() {
        let h = r#"Bearer error="invalid_token", resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="x y""#;
        assert_eq!(
            challenge_param(h, "resource_metadata").as_deref(),
            Some("https://a.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(challenge_param(h, "scope").as_deref(), Some("x y"));
        assert_eq!(challenge_param("Basic realm=\"x\"", "scope"), None);
    }
}
