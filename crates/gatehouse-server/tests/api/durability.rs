//! Durability with real processes: what a node acknowledged survives `kill -9`, and a node
//! rides out its PostgreSQL server restarting, saying so on `/ready` meanwhile.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse_core::admin::Operator;
use gatehouse_core::audit::Recorder;
use gatehouse_core::model::{NewResource, ScopeDef};
use gatehouse_core::password::Password;
use gatehouse_core::store::Store;
use gatehouse_core::{Clock, ResourceUri, ScopeSet, SystemClock};
use gatehouse_store::postgres_testing as pg;
use gatehouse_store::{PgStore, SqliteStore};
use serde_json::{Value, json};

use crate::people::*;
use crate::process::{Node, free_port, wait_for_status};

/// Limits out of the way: the load comes from one address.
const UNLIMITED: [(&str, &str); 4] = [
    ("GATEHOUSE_REGISTRATIONS_PER_IP_PER_HOUR", "100000"),
    ("GATEHOUSE_PAGE_REQUESTS_PER_IP_PER_MINUTE", "1000000"),
    ("GATEHOUSE_TOKEN_REQUESTS_PER_IP_PER_MINUTE", "1000000"),
    ("GATEHOUSE_REFRESH_INTERVAL_MS", "100"),
];

const MCP_URL: &str = "http://127.0.0.1:8001/mcp";

/// Registers the to-do MCP server and a person in `store`, as an operator would; returns the
/// issuer path of the server.
async fn set_up(store: &dyn Store) -> String {
    let recorder = Recorder::default();
    let op = Operator::new(store, &recorder, "test", SystemClock.now());
    let r = op
        .register_resource(NewResource::new(
            "To-do list",
            ResourceUri::parse(MCP_URL).unwrap(),
            vec![ScopeDef::parse("todo:read").unwrap()],
        ))
        .await
        .unwrap();
    op.create_user(EMAIL, &Password::new_checked(PASSWORD).unwrap(), false)
        .await
        .unwrap();
    format!("/resources/{}", r.id)
}

async fn token(base: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// What one browser made through to the end: a registration, a session and a consent, and a
/// refresh token (rotated once) nobody has used.
struct Chain {
    client: String,
    browser: Browser,
    refresh_token: String,
}

/// Registers a client, authorizes it (signing in and consenting the first time), exchanges
/// the code and refreshes once. Each registration is noted in `registered` as soon as it is
/// acknowledged. Panics on anything unexpected, as on a connection cut by the kill.
async fn chain(browser: Browser, path: String, registered: Arc<Mutex<Vec<String>>>) -> Chain {
    let base = browser.base.clone();
    let reg: Value = browser
        .http
        .post(format!("{base}{path}/oauth/register"))
        .json(
            &json!({"client_name": "Crash host", "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"], "application_type": "native"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = reg["client_id"].as_str().unwrap().to_owned();
    registered.lock().unwrap().push(client.clone());
    let p = pkce();
    let q = authorize_query(
        &client,
        &p,
        &[("resource", MCP_URL), ("scope", "todo:read offline_access")],
    );
    let code = param(&browser.authorize(&path, &q).await, "code").unwrap();
    let (status, first) = token(
        &base,
        &path,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", &p.verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = token(
        &base,
        &path,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(status, 200, "{second}");
    Chain {
        client,
        browser,
        refresh_token: second["refresh_token"].as_str().unwrap().to_owned(),
    }
}

fn browser(base: &str) -> Browser {
    Browser {
        base: base.to_owned(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_acknowledged_survives_kill_9_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("gatehouse.db"))
        .await
        .unwrap();
    let path = set_up(&store).await;
    store.close().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = vec![
        ("GATEHOUSE_DATA_DIR", dir.path().to_str().unwrap()),
        ("GATEHOUSE_PUBLIC_URL", base.as_str()),
    ];
    env.extend(UNLIMITED);
    let mut node = Node::start(port, &env).await;

    // Four browsers, each making chains one after another until the server dies under them.
    let registered = Arc::new(Mutex::new(Vec::new()));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (path, registered, acknowledged, killed) = (
                path.clone(),
                registered.clone(),
                acknowledged.clone(),
                killed.clone(),
            );
            let http = browser(&base).http;
            let base = base.clone();
            tokio::spawn(async move {
                loop {
                    let b = Browser {
                        base: base.clone(),
                        http: http.clone(),
                    };
                    // Its own task, so that the panic of a request the kill cut ends it alone.
                    match tokio::spawn(chain(b, path.clone(), registered.clone())).await {
                        Ok(c) => acknowledged.lock().unwrap().push(c),
                        Err(e) => {
                            assert!(killed.load(Ordering::SeqCst), "before the kill: {e}");
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < 8 {
        assert!(Instant::now() < deadline, "the load never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.store(true, Ordering::SeqCst);
    node.kill();
    for w in workers {
        w.await.unwrap();
    }

    let node = Node::start(port, &env).await;
    let registered = registered.lock().unwrap().clone();
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(registered.len() >= acknowledged.len());
    // Every registration is known: a stranger is sent to sign in, not told the client is
    // unknown.
    for client in &registered {
        let q = authorize_query(client, &pkce(), &[("resource", MCP_URL)]);
        let seen = browser(&node.url)
            .get(&format!("{path}/oauth/authorize?{q}"))
            .await;
        assert_eq!(seen.status, 303, "{client} survived: {}", seen.body);
    }
    for c in &acknowledged {
        // The refresh token works once more.
        let (status, body) = token(
            &node.url,
            &path,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &c.refresh_token),
                ("client_id", &c.client),
            ],
        )
        .await;
        assert_eq!(
            status, 200,
            "{} refreshes after the crash: {body}",
            c.client
        );
        // The session and the consent hold: straight back with a code, which works.
        let p = pkce();
        let q = authorize_query(
            &c.client,
            &p,
            &[("resource", MCP_URL), ("scope", "todo:read offline_access")],
        );
        let again = c.browser.get(&format!("{path}/oauth/authorize?{q}")).await;
        assert_eq!(again.status, 302, "{}: {}", c.client, again.body);
        let code = param(again.location.as_deref().unwrap(), "code").unwrap();
        let (status, body) = token(
            &node.url,
            &path,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &c.client),
                ("code_verifier", &p.verifier),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// A PostgreSQL server of this test's own (`scripts/postgres.sh` with `PG_NAME`), so that
/// stopping it disturbs no other test. Stopped when dropped.
struct Cluster {
    name: &'static str,
    url: String,
}

impl Cluster {
    fn script(name: &str, command: Option<&str>) -> String {
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../scripts/postgres.sh"
            ))
            .args(command)
            .env("PG_NAME", name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postgres.sh {command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn start(name: &'static str) -> Cluster {
        Cluster {
            name,
            url: Self::script(name, None),
        }
    }

    fn stop(&self) {
        Self::script(self.name, Some("stop"));
    }

    fn resume(&self) {
        Self::script(self.name, Some("resume"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rides_out_a_postgresql_restart_under_load() {
    if pg::database_url().is_none() {
        return;
    }
    let cluster = Cluster::start("gatehouse-postgres-restart");
    let store = PgStore::connect(&cluster.url, Default::default())
        .await
        .unwrap();
    let path = set_up(&store).await;
    let recorder = Recorder::default();
    let (agent, secret) = Operator::new(&store, &recorder, "test", SystemClock.now())
        .create_agent_client(
            path.trim_start_matches("/resources/"),
            "agent",
            ScopeSet::parse("todo:read").unwrap(),
        )
        .await
        .unwrap();
    store.close().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut env = vec![
        ("GATEHOUSE_DATABASE_URL", cluster.url.as_str()),
        ("GATEHOUSE_DATA_DIR", dir.path().to_str().unwrap()),
        ("GATEHOUSE_PUBLIC_URL", base.as_str()),
    ];
    env.extend(UNLIMITED);
    let node = Node::start(port, &env).await;
    wait_for_status(&format!("{base}/ready"), 200, Duration::from_secs(10)).await;

    // Load: registrations (writes) and agent tokens, two at a time, until told to stop.
    // Every answer is a success or a 503 that says to retry; nothing else, nothing hangs.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let load: Vec<_> = (0..2)
        .map(|i| {
            let (stop, answers, base, path) =
                (stop.clone(), answers.clone(), base.clone(), path.clone());
            let (agent, secret) = (agent.id.to_string(), secret.expose_secret().to_owned());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let request = if i == 0 {
                        http.post(format!("{base}{path}/oauth/register"))
                            .json(&json!({"client_name": "Host", "redirect_uris": [REDIRECT],
                                    "application_type": "native"}))
                    } else {
                        http.post(format!("{base}{path}/oauth/token"))
                            .basic_auth(&agent, Some(&secret))
                            .form(&[("grant_type", "client_credentials")])
                    };
                    let r = request.send().await.expect("an answer, in time");
                    let status = r.status().as_u16();
                    let retry = r.headers().get("retry-after").is_some();
                    let body = r.text().await.unwrap();
                    if status == 503 {
                        assert!(retry, "a 503 says when to retry: {body}");
                        assert!(body.contains("temporarily_unavailable"), "{body}");
                    }
                    answers.lock().unwrap().push((status, body));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stop();
    wait_for_status(&format!("{base}/ready"), 503, Duration::from_secs(15)).await;
    let during: Value = reqwest::get(format!("{base}/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(during["database"], "ok", "{during}");
    assert_eq!(
        reqwest::get(format!("{base}/health"))
            .await
            .unwrap()
            .status(),
        200,
        "alive all along"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.resume();
    wait_for_status(&format!("{base}/ready"), 200, Duration::from_secs(30)).await;
    let recovered = answers.lock().unwrap().len();
    // Back to work without a restart: registrations succeed again.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !answers.lock().unwrap()[recovered..]
        .iter()
        .any(|(s, _)| *s == 201)
    {
        assert!(Instant::now() < deadline, "registrations never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.await.unwrap();
    }
    let answers = answers.lock().unwrap();
    for (status, body) in answers.iter() {
        assert!(matches!(status, 200 | 201 | 503), "{status}: {body}");
    }
    assert!(
        answers.iter().any(|(s, _)| *s == 503),
        "the outage was seen by clients"
    );
    drop(node);
}
