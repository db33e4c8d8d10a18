//! `TestApp`: a Gatehouse server on 127.0.0.1:0 with its own data directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_core::admin::Operator;
use gatehouse_core::keys::{SigningAlg, SigningKey, StoredKey};
use gatehouse_core::model::{NewResource, Resource, ScopeDef};
use gatehouse_core::store::Store;
use gatehouse_core::{Clock, Engine, Issuer, ResourceUri, ScopeSet, SystemClock};
use gatehouse_server::config::Config;
use gatehouse_server::metrics::Metrics;
use gatehouse_server::serve::{RunningServer, app_state, open_sqlite, start_engine_with};
use gatehouse_store::Migrations;
use serde_json::Value;
use tokio::net::TcpListener;

pub struct TestApp {
    pub base: String,
    pub engine: Arc<Engine>,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    _server: RunningServer,
    _dir: tempfile::TempDir,
}

pub struct AgentClient {
    pub id: String,
    pub secret: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server with the default configuration changed by `tune`.
    pub async fn spawn_with(tune: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_named("127.0.0.1", tune).await
    }

    /// A server whose public URL is `http://{host}:{port}` (it listens on 127.0.0.1):
    /// `localhost` makes it a WebAuthn relying party, which an IP address cannot be.
    pub async fn spawn_named(host: &str, tune: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::default();
        tune(&mut config);
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(open_sqlite(dir.path(), Migrations::Apply).await.unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{host}:{}", listener.local_addr().unwrap().port());
        let metrics = Arc::new(Metrics::new());
        let public = Issuer::parse(&base).unwrap();
        let engine = start_engine_with(public, store.clone(), &config, metrics.clone())
            .await
            .unwrap();
        let state = app_state(engine.clone(), metrics, &config).unwrap();
        let server = RunningServer::start_with(state, listener, Duration::from_millis(50)).unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            base,
            engine,
            store,
            http,
            _server: server,
            _dir: dir,
        }
    }

    /// The stored audit events, oldest first, without the set-up the test made as an
    /// operator.
    pub async fn audit_log(&self) -> Vec<gatehouse_core::audit::AuditEvent> {
        self.engine.flush_audit().await;
        let mut all = self
            .store
            .audit_events(&gatehouse_core::audit::AuditQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        all.reverse();
        all.retain(|e| e.actor.as_deref() != Some("test"));
        all
    }

    /// The reasons of the audit events of `kind` about `client`, oldest first.
    pub async fn audited_reasons(&self, kind: &str, client: &str) -> Vec<String> {
        self.audit_log()
            .await
            .iter()
            .filter(|e| e.event.as_str() == kind && e.client.as_deref() == Some(client))
            .map(|e| e.details["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The test acting as an operator (actor `test`), recording into the server's audit log.
    pub fn op(&self) -> Operator<'_> {
        self.engine.operator("test")
    }

    /// Changes an MCP server's settings, as the operator does, and lets the engine see it.
    pub async fn change_server(&self, r: &Resource, change: gatehouse_core::admin::ResourceChange) {
        self.op()
            .update_resource(r.id.as_str(), change)
            .await
            .unwrap();
        self.engine.refresh().await.unwrap();
    }

    /// Registers an MCP server at `url` with scopes `todo:read` and `todo:write`.
    pub async fn add_server(&self, url: &str, alg: SigningAlg) -> Resource {
        let mut new = NewResource::new(
            "To-do list",
            ResourceUri::parse(url).unwrap(),
            vec![
                ScopeDef::parse("todo:read=Read your to-dos").unwrap(),
                ScopeDef::parse("todo:write=Change your to-dos").unwrap(),
            ],
        );
        new.token_ttl = Some(600);
        new.signing_alg = Some(alg);
        let r = self.op().register_resource(new).await.unwrap();
        self.engine.refresh().await.unwrap();
        r
    }

    /// Makes MCP server `r` offer exactly `methods`, and the server see it.
    pub async fn offer(&self, r: &Resource, methods: Vec<gatehouse_core::signin::Method>) {
        self.op()
            .update_resource(
                r.id.as_str(),
                gatehouse_core::admin::ResourceChange {
                    sign_in_methods: Some(Some(methods)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        self.engine.refresh().await.unwrap();
    }

    pub async fn add_client(&self, resource: &Resource, scopes: &str) -> AgentClient {
        let (c, s) = self
            .op()
            .create_agent_client(
                resource.id.as_str(),
                "test agent",
                ScopeSet::parse(scopes).unwrap(),
            )
            .await
            .unwrap();
        self.engine.refresh().await.unwrap();
        AgentClient {
            id: c.id.to_string(),
            secret: s.expose_secret().to_owned(),
        }
    }

    pub fn issuer_of(&self, r: &Resource) -> String {
        format!("{}/resources/{}", self.base, r.id)
    }

    /// GETs `path` (relative to the base URL).
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// POSTs a form to `path` (relative to the base URL).
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<&AgentClient>,
    ) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = basic {
            req = req.basic_auth(&c.id, Some(&c.secret));
        }
        req.send().await.unwrap()
    }

    /// A client-credentials token from `issuer_path`'s token endpoint ("" for the root).
    pub async fn token(
        &self,
        issuer_path: &str,
        client: &AgentClient,
        extra: &[(&str, &str)],
    ) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let resp = self
            .post_form(&format!("{issuer_path}/oauth/token"), &form, Some(client))
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The stored key that signs with `alg`, parsed.
    pub async fn signing_key(&self, alg: SigningAlg) -> SigningKey {
        let keys = self.store.keys().await.unwrap();
        let stored = keys.iter().rev().find(|k| k.alg == alg).unwrap();
        SigningKey::load(stored).unwrap()
    }
}

/// A fresh key that Gatehouse does not know.
pub fn foreign_key(alg: SigningAlg) -> SigningKey {
    SigningKey::load(&StoredKey::generate(alg, SystemClock.now()).unwrap()).unwrap()
}

/// The claims of a JWT, without verifying it.
pub fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The header of a JWT.
pub fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn now() -> i64 {
    SystemClock.now().0
}

/// Compares `actual` with the golden file `golden/{name}.json`; `UPDATE_GOLDEN=1` rewrites it.
pub fn assert_golden(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/golden")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}; run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        pretty, expected,
        "golden {name} differs (UPDATE_GOLDEN=1 rewrites it)"
    );
}

/// Replaces every occurrence of `from` in string values with `to`.
pub fn redact(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(a) => Value::Array(a.iter().map(|x| redact(x, from, to)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), redact(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}
