//! The `gatehouse` binary: administrative commands on a data directory, configuration errors,
//! and `serve` shutting down gracefully.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn gatehouse(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--public-url",
            "https://auth.example.com",
        ])
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `gatehouse` with `input` on standard input.
fn gatehouse_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--public-url",
            "https://auth.example.com",
        ])
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn servers_add_list_show_remove() {
    let dir = tempfile::tempdir().unwrap();
    let added = json(&gatehouse(
        dir.path(),
        &[
            "servers",
            "add",
            "--name",
            "To-do",
            "--url",
            "https://mcp.example.com/mcp",
            "--scope",
            "todo:read=Read your to-dos",
            "--scope",
            "todo:write",
            "--token-ttl",
            "900",
            "--alg",
            "es256",
            "--json",
        ],
    ));
    let id = added["id"].as_str().unwrap();
    assert!(id.starts_with("res_"));
    assert_eq!(
        added["issuer"],
        format!("https://auth.example.com/resources/{id}")
    );
    assert_eq!(added["url"], "https://mcp.example.com/mcp");
    assert_eq!(
        added["scopes"][0],
        serde_json::json!({ "name": "todo:read", "description": "Read your to-dos" })
    );
    assert_eq!(added["token_ttl"], 900);
    assert_eq!(added["signing_alg"], "ES256");
    let prm = &added["protected_resource_metadata"];
    assert_eq!(prm["resource"], "https://mcp.example.com/mcp");
    assert_eq!(
        prm["authorization_servers"],
        serde_json::json!([added["issuer"]])
    );
    assert_eq!(
        prm["scopes_supported"],
        serde_json::json!(["todo:read", "todo:write"])
    );
    assert_eq!(
        added["protected_resource_metadata_url"],
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    );

    let text = gatehouse(
        dir.path(),
        &[
            "servers",
            "add",
            "--name",
            "Notes",
            "--url",
            "https://notes.example.com/mcp",
        ],
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("res_") && text.contains("https://auth.example.com/resources/res_"),
        "{text}"
    );
    assert!(
        text.contains("\"authorization_servers\""),
        "the human output shows the PRM JSON: {text}"
    );

    let list = json(&gatehouse(dir.path(), &["servers", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    let shown = json(&gatehouse(dir.path(), &["servers", "show", id, "--json"]));
    assert_eq!(shown, added);

    let dup = gatehouse(
        dir.path(),
        &[
            "servers",
            "add",
            "--name",
            "Again",
            "--url",
            "https://MCP.example.com/mcp/",
        ],
    );
    assert_eq!(dup.status.code(), Some(1));
    assert!(
        stderr(&dup).contains("already registered"),
        "{}",
        stderr(&dup)
    );

    assert!(
        gatehouse(dir.path(), &["servers", "remove", id])
            .status
            .success()
    );
    let missing = gatehouse(dir.path(), &["servers", "show", id]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no MCP server"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn bad_server_input_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["servers", "add", "--name", "x", "--url", "not a url"],
            "--url",
        ),
        (
            &[
                "servers",
                "add",
                "--name",
                "x",
                "--url",
                "https://x.example/mcp#frag",
            ],
            "fragment",
        ),
        (
            &[
                "servers",
                "add",
                "--name",
                "x",
                "--url",
                "https://x.example/mcp",
                "--scope",
                "bad\"scope",
            ],
            "scope",
        ),
        (
            &[
                "servers",
                "add",
                "--name",
                "x",
                "--url",
                "https://x.example/mcp",
                "--token-ttl",
                "5",
            ],
            "lifetime",
        ),
        (&["servers", "show", "conn_123"], "res_"),
    ];
    for (args, needle) in cases {
        let out = gatehouse(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let out = gatehouse(
        dir.path(),
        &[
            "servers",
            "add",
            "--name",
            "x",
            "--url",
            "https://x.example/mcp",
            "--alg",
            "HS256",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "clap rejects the value");
}

#[test]
fn clients_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let server = json(&gatehouse(
        dir.path(),
        &[
            "servers",
            "add",
            "--name",
            "To-do",
            "--url",
            "https://mcp.example.com/mcp",
            "--scope",
            "todo:read",
            "--scope",
            "todo:write",
            "--json",
        ],
    ));
    let sid = server["id"].as_str().unwrap();
    let client = json(&gatehouse(
        dir.path(),
        &[
            "clients",
            "add",
            "--server",
            sid,
            "--name",
            "agent",
            "--scope",
            "todo:read",
            "--json",
        ],
    ));
    let cid = client["client_id"].as_str().unwrap();
    assert!(cid.starts_with("m2m_"));
    assert!(
        client["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("ghs_")
    );
    assert_eq!(client["scopes"], serde_json::json!(["todo:read"]));
    assert_eq!(
        client["token_endpoint"],
        format!("https://auth.example.com/resources/{sid}/oauth/token")
    );

    let list = json(&gatehouse(
        dir.path(),
        &["clients", "list", "--server", sid, "--json"],
    ));
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        list[0].get("client_secret").is_none(),
        "the secret is shown once only"
    );
    let raw = std::fs::read(dir.path().join("gatehouse.db")).unwrap();
    let secret = client["client_secret"].as_str().unwrap().as_bytes();
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret),
        "the secret is not stored"
    );

    let bad = gatehouse(
        dir.path(),
        &[
            "clients", "add", "--server", sid, "--name", "agent", "--scope", "admin",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("does not offer: admin"),
        "{}",
        stderr(&bad)
    );

    // A key set on loopback only in development mode, as the server fetches it.
    let keyed = [
        "clients",
        "add",
        "--server",
        sid,
        "--name",
        "signer",
        "--jwks-uri",
        "http://127.0.0.1:9/jwks.json",
        "--json",
    ];
    let refused = gatehouse(dir.path(), &keyed);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("https"), "{}", stderr(&refused));
    let signer = json(
        &Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(keyed)
            .env("GATEHOUSE_DEV_LOOPBACK_METADATA_DOCUMENTS", "true")
            .env_remove("GATEHOUSE_CONFIG")
            .output()
            .unwrap(),
    );
    assert_eq!(
        signer["token_endpoint_auth_method"], "private_key_jwt",
        "{signer}"
    );
    assert!(
        gatehouse(
            dir.path(),
            &["clients", "remove", signer["client_id"].as_str().unwrap()]
        )
        .status
        .success()
    );

    assert!(
        gatehouse(dir.path(), &["clients", "remove", cid])
            .status
            .success()
    );
    assert_eq!(
        json(&gatehouse(dir.path(), &["clients", "list", "--json"])),
        serde_json::json!([])
    );
    assert_eq!(
        gatehouse(dir.path(), &["clients", "remove", cid])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["servers", "list"])
        .env("GATEHOUSE_LISTEN_ADDR", "x")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("listen_addr"), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        "data_dir = \"d\"\ncolour = true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["servers", "list"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
    let help = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for key in [
        "GATEHOUSE_PUBLIC_URL",
        "GATEHOUSE_DATA_DIR",
        "GATEHOUSE_LOG_FORMAT",
        "refresh_interval_ms",
    ] {
        assert!(help.contains(key), "--help documents {key}");
    }
}

#[test]
fn serve_answers_ready_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            break out;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(r#""database":"ok""#), "{body}");
    assert!(
        dir.path().join("gatehouse.db").exists(),
        "first start creates the database"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}

#[test]
fn users_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Generated password, shown once.
    let ada = json(&gatehouse(
        d,
        &["users", "add", "--email", "Ada@Example.com", "--json"],
    ));
    assert_eq!(ada["email"], "ada@example.com", "emails are normalised");
    let password = ada["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 24);
    // Password from standard input.
    let out = gatehouse_stdin(
        d,
        &[
            "users",
            "add",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        "bobs long password\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bob@example.com") && !text.contains("bobs long password"));
    // The database holds an argon2id hash, never the password.
    let db = std::fs::read(d.join("gatehouse.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(!db.contains(&password) && !db.contains("bobs long password"));
    assert!(db.contains("$argon2id$"));

    let dup = gatehouse(d, &["users", "add", "--email", "ada@example.com"]);
    assert!(!dup.status.success());
    assert!(
        stderr(&dup).contains("already has an account"),
        "{}",
        stderr(&dup)
    );
    let bad = gatehouse(d, &["users", "add", "--email", "not-an-email"]);
    assert!(
        stderr(&bad).contains("not an email address"),
        "{}",
        stderr(&bad)
    );

    let list = json(&gatehouse(d, &["users", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = gatehouse(d, &["users", "remove", "ada@example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = json(&gatehouse(d, &["users", "list", "--json"]));
    assert_eq!(list[0]["email"], "bob@example.com");
    let missing = gatehouse(d, &["users", "remove", "ada@example.com"]);
    assert!(stderr(&missing).contains("no user"), "{}", stderr(&missing));
}

#[test]
fn admin_changes_are_audited_and_the_log_reads_back_filtered_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = json(&gatehouse(
        d,
        &[
            "servers",
            "add",
            "--name",
            "To-do",
            "--url",
            "https://mcp.example.com/mcp",
            "--scope",
            "todo:read",
            "--json",
        ],
    ));
    let id = server["id"].as_str().unwrap();
    let client = json(&gatehouse(
        d,
        &[
            "clients",
            "add",
            "--server",
            id,
            "--name",
            "bot",
            "--scope",
            "todo:read",
            "--json",
        ],
    ));
    let cid = client["client_id"].as_str().unwrap();
    json(&gatehouse(
        d,
        &["users", "add", "--email", "ada@example.com", "--json"],
    ));
    assert!(gatehouse(d, &["clients", "remove", cid]).status.success());

    let all = json(&gatehouse(d, &["audit", "--json"]));
    let all = all.as_array().unwrap();
    let summary: Vec<(&str, &str)> = all
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["details"]["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("client.deleted", ""),
            ("admin.change", "user.created"),
            ("admin.change", "client.created"),
            ("admin.change", "server.created"),
        ],
        "newest first"
    );
    assert!(
        all.iter()
            .all(|e| e["actor"] == "cli" && e["outcome"] == "success")
    );
    assert!(
        all.iter()
            .all(|e| e["time"].as_str().unwrap().ends_with('Z'))
    );
    assert_eq!(all[2]["client"], cid);
    assert_eq!(all[3]["resource"], id);

    // Filters narrow; the person filter takes an email.
    let only = json(&gatehouse(
        d,
        &["audit", "--event", "client.deleted", "--json"],
    ));
    assert_eq!(only.as_array().unwrap().len(), 1);
    let theirs = json(&gatehouse(
        d,
        &["audit", "--user", "ada@example.com", "--json"],
    ));
    assert_eq!(theirs[0]["details"]["action"], "user.created");
    // Created, the agent created in it, and that agent deleted.
    let of_server = json(&gatehouse(d, &["audit", "--server", id, "--json"]));
    assert_eq!(of_server.as_array().unwrap().len(), 3);
    let failures = json(&gatehouse(d, &["audit", "--outcome", "failure", "--json"]));
    assert_eq!(failures, Value::Array(vec![]));
    let future = json(&gatehouse(
        d,
        &["audit", "--since", "2100-01-01T00:00:00Z", "--json"],
    ));
    assert_eq!(future, Value::Array(vec![]));
    let recent = json(&gatehouse(d, &["audit", "--since", "1h", "--json"]));
    assert_eq!(recent.as_array().unwrap().len(), 4);

    // Pages: two at a time, continuing before the last seq.
    let first = json(&gatehouse(d, &["audit", "--limit", "2", "--json"]));
    let last = first[1]["seq"].as_i64().unwrap().to_string();
    let second = json(&gatehouse(
        d,
        &["audit", "--limit", "2", "--before", &last, "--json"],
    ));
    assert_eq!(second[0]["details"]["action"], "client.created");
    assert_eq!(second.as_array().unwrap().len(), 2);

    // Exports.
    let jsonl = gatehouse(d, &["audit", "--format", "jsonl"]);
    let lines: Vec<Value> = String::from_utf8(jsonl.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let csv = String::from_utf8(gatehouse(d, &["audit", "--format", "csv"]).stdout).unwrap();
    assert!(csv.contains("details\r\n"), "RFC 4180 line ends");
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("seq,time,event,outcome,resource,client,user,actor,details")
    );
    assert_eq!(rows.count(), 4);
    let table = String::from_utf8(gatehouse(d, &["audit"]).stdout).unwrap();
    assert!(table.starts_with("SEQ"), "{table}");
    assert!(table.contains("admin.change"));

    // Mistakes are explained.
    let bad = gatehouse(d, &["audit", "--event", "token.exploded"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("they are: token.issued"),
        "{}",
        stderr(&bad)
    );
    let bad = gatehouse(d, &["audit", "--since", "yesterday"]);
    assert!(
        stderr(&bad).contains("--since: `yesterday` is not a time"),
        "{}",
        stderr(&bad)
    );
    let bad = gatehouse(d, &["audit", "--limit", "0"]);
    assert!(!bad.status.success());
}

#[test]
fn rotating_a_secret_prints_a_new_one_and_consents_are_listed_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = json(&gatehouse(
        d,
        &[
            "servers",
            "add",
            "--name",
            "To-do",
            "--url",
            "https://mcp.example.com/mcp",
            "--json",
        ],
    ));
    let id = server["id"].as_str().unwrap();
    let client = json(&gatehouse(
        d,
        &["clients", "add", "--server", id, "--name", "bot", "--json"],
    ));
    let cid = client["client_id"].as_str().unwrap();
    let updated = json(&gatehouse(
        d,
        &[
            "servers",
            "update",
            id,
            "--name",
            "Tasks",
            "--token-ttl",
            "120",
            "--metadata-documents",
            "off",
            "--json",
        ],
    ));
    assert_eq!(
        (updated["name"].as_str(), updated["token_ttl"].as_u64()),
        (Some("Tasks"), Some(120))
    );
    assert_eq!(updated["metadata_documents"], false);
    assert_eq!(updated["url"], "https://mcp.example.com/mcp", "untouched");
    let bad = gatehouse(d, &["servers", "update", id, "--token-ttl", "5"]);
    assert!(stderr(&bad).contains("token lifetime"), "{}", stderr(&bad));
    let rotated = json(&gatehouse(d, &["clients", "rotate-secret", cid, "--json"]));
    assert_eq!(rotated["client_id"], cid);
    let new = rotated["client_secret"].as_str().unwrap();
    assert!(new.starts_with("ghs_") && new != client["client_secret"].as_str().unwrap());
    let text = gatehouse(d, &["clients", "rotate-secret", cid]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("shown once"));
    let audit = json(&gatehouse(
        d,
        &[
            "audit",
            "--event",
            "admin.change",
            "--client",
            cid,
            "--json",
        ],
    ));
    assert_eq!(audit[0]["details"]["action"], "client.secret_rotated");
    assert_eq!(audit[0]["resource"], id);
    let missing = gatehouse(d, &["clients", "rotate-secret", "m2m_nothere000000000000"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no client"),
        "{}",
        stderr(&missing)
    );

    json(&gatehouse(
        d,
        &["users", "add", "--email", "ada@example.com", "--json"],
    ));
    assert_eq!(
        json(&gatehouse(d, &["consents", "list", "--json"])),
        Value::Array(vec![])
    );
    let none = gatehouse(d, &["consents", "list"]);
    assert!(String::from_utf8_lossy(&none.stdout).contains("No consents match."));
    let revoke = gatehouse(
        d,
        &[
            "consents",
            "revoke",
            "--user",
            "ada@example.com",
            "--client",
            cid,
            "--server",
            id,
        ],
    );
    assert!(!revoke.status.success());
    assert!(
        stderr(&revoke).contains("has no consent"),
        "{}",
        stderr(&revoke)
    );
    let unknown = gatehouse(d, &["consents", "list", "--user", "bob@example.com"]);
    assert!(
        stderr(&unknown).contains("no user bob@example.com"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn administrators_and_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = json(&gatehouse(
        d,
        &[
            "users",
            "add",
            "--email",
            "root@example.com",
            "--admin",
            "--json",
        ],
    ));
    assert_eq!(root["admin"], true);
    json(&gatehouse(
        d,
        &["users", "add", "--email", "ada@example.com", "--json"],
    ));
    let refused = gatehouse(
        d,
        &[
            "api-keys",
            "create",
            "--user",
            "ada@example.com",
            "--name",
            "x",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not an administrator"),
        "{}",
        stderr(&refused)
    );
    assert!(
        gatehouse(d, &["users", "set-admin", "ada@example.com", "on"])
            .status
            .success()
    );

    let key = json(&gatehouse(
        d,
        &[
            "api-keys",
            "create",
            "--user",
            "ada@example.com",
            "--name",
            "deploy",
            "--json",
        ],
    ));
    assert!(key["secret"].as_str().unwrap().starts_with("gha_"));
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    let listed = json(&gatehouse(d, &["api-keys", "list", "--json"]));
    assert_eq!(listed[0]["name"], "deploy");
    assert!(listed[0].get("secret").is_none(), "never listed");
    let id = key["id"].as_str().unwrap();
    assert!(gatehouse(d, &["api-keys", "revoke", id]).status.success());
    assert!(!json(&gatehouse(d, &["api-keys", "list", "--json"]))[0]["revoked_at"].is_null());
    let missing = gatehouse(d, &["api-keys", "revoke", "key_nothere00000000000"]);
    assert!(
        stderr(&missing).contains("no API key"),
        "{}",
        stderr(&missing)
    );
    assert!(
        gatehouse(d, &["users", "set-admin", "ada@example.com", "off"])
            .status
            .success()
    );
    let users = json(&gatehouse(d, &["users", "list", "--json"]));
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["admin"] == (u["email"] == "root@example.com"))
    );
    let actions: Vec<String> = json(&gatehouse(
        d,
        &["audit", "--event", "admin.change", "--json"],
    ))
    .as_array()
    .unwrap()
    .iter()
    .map(|e| e["details"]["action"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(
        actions,
        [
            "user.admin_revoked",
            "api_key.revoked",
            "api_key.created",
            "user.admin_granted",
            "user.created",
            "user.created",
        ]
    );
    // `users add --admin` makes an administrator in one change.
    let created = json(&gatehouse(
        d,
        &["audit", "--user", "root@example.com", "--json"],
    ));
    assert_eq!(created[0]["details"]["admin"], true);
}

#[test]
fn disabling_clients_and_people_new_passwords_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = json(&gatehouse(
        d,
        &[
            "servers",
            "add",
            "--name",
            "Todo",
            "--url",
            "https://todo.example/mcp",
            "--scope",
            "todo:read",
            "--json",
        ],
    ));
    let id = server["id"].as_str().unwrap();
    let agent = json(&gatehouse(
        d,
        &[
            "clients",
            "add",
            "--server",
            id,
            "--name",
            "bot",
            "--scope",
            "todo:read",
            "--json",
        ],
    ));
    let cid = agent["client_id"].as_str().unwrap();

    let off = json(&gatehouse(d, &["clients", "disable", cid, "--json"]));
    assert!(off["disabled_at"].is_i64(), "{off}");
    let listed = gatehouse(d, &["clients", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("disabled"));
    let on = json(&gatehouse(d, &["clients", "enable", cid, "--json"]));
    assert!(on["disabled_at"].is_null(), "{on}");

    let made = json(&gatehouse(
        d,
        &["users", "add", "--email", "ada@example.com", "--json"],
    ));
    let first = made["password"].as_str().unwrap().to_owned();
    let off = json(&gatehouse(
        d,
        &["users", "disable", "ada@example.com", "--json"],
    ));
    assert!(off["disabled_at"].is_i64(), "{off}");
    json(&gatehouse(
        d,
        &["users", "enable", "ada@example.com", "--json"],
    ));
    let reset = json(&gatehouse(
        d,
        &["users", "reset-password", "ada@example.com", "--json"],
    ));
    let second = reset["password"].as_str().unwrap();
    assert!(second.len() >= 20 && second != first);
    assert!(reset.get("password_hash").is_none());
    assert_eq!(
        json(&gatehouse(
            d,
            &["users", "sessions", "ada@example.com", "--json"]
        )),
        Value::Array(vec![])
    );
    assert_eq!(
        json(&gatehouse(
            d,
            &["users", "end-sessions", "ada@example.com", "--json"]
        )),
        serde_json::json!({"ended": 0})
    );
    let missing = gatehouse(
        d,
        &[
            "users",
            "end-sessions",
            "ada@example.com",
            "--session",
            "ses_0000",
        ],
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("has no session ses_0000"),
        "{}",
        stderr(&missing)
    );

    let actions: Vec<String> = json(&gatehouse(
        d,
        &["audit", "--event", "admin.change", "--json"],
    ))
    .as_array()
    .unwrap()
    .iter()
    .map(|e| e["details"]["action"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(
        actions[..6],
        [
            "user.sessions_ended",
            "user.password_reset",
            "user.enabled",
            "user.disabled",
            "user.created",
            "client.enabled",
        ]
    );
}

#[test]
fn signing_keys_are_listed_and_rotated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&gatehouse(
        d,
        &[
            "servers",
            "add",
            "--name",
            "Todo",
            "--url",
            "https://todo.example/mcp",
            "--json",
        ],
    ));
    let keys = json(&gatehouse(d, &["keys", "list", "--json"]));
    assert_eq!(keys[0]["state"], "active");
    let made = json(&gatehouse(
        d,
        &["keys", "rotate", "--alg", "RS256", "--json"],
    ));
    assert_eq!(made[0]["state"], "next");
    // Published a day ahead by default (and a second for the clock's rounding).
    assert_eq!(
        made[0]["activates_at"].as_i64().unwrap() - made[0]["created_at"].as_i64().unwrap(),
        86_401
    );
    let none = gatehouse(d, &["keys", "rotate", "--alg", "EdDSA"]);
    assert!(
        stderr(&none).contains("no EdDSA key to rotate"),
        "{}",
        stderr(&none)
    );
    let again = gatehouse(d, &["keys", "rotate"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("rotation of the RS256 key is under way"),
        "{}",
        stderr(&again)
    );
    let table = gatehouse(d, &["keys", "list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("active") && text.contains("next"), "{text}");
    let rotated = json(&gatehouse(
        d,
        &["audit", "--event", "key.rotated", "--json"],
    ));
    assert_eq!(rotated[0]["details"]["kid"], made[0]["kid"]);
    assert_eq!(rotated[0]["actor"], "cli");
}

#[test]
fn connections_and_sign_in_methods() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shown = json(&gatehouse(d, &["sign-in", "show", "--json"]));
    // https://auth.example.com can be a WebAuthn relying party: passkeys are offered.
    assert_eq!(
        shown["default_methods"],
        serde_json::json!(["password", "passkey"])
    );
    assert_eq!(shown["email_delivery"], false);
    assert_eq!(shown["passkeys_available"], true);

    let conn = json(&gatehouse(
        d,
        &[
            "connections",
            "add-federated",
            "--name",
            "Acme",
            "--login-url",
            "https://login.acme.example/mcp",
            "--domain",
            "@Acme.example",
            "--json",
        ],
    ));
    let id = conn["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("conn_"));
    assert_eq!(conn["allowed_domains"], serde_json::json!(["acme.example"]));
    assert_eq!(
        conn["callback_url"],
        format!("https://auth.example.com/sso/v1/connections/{id}/partner:callback")
    );
    assert_eq!(
        conn["auth_request_url"],
        format!(
            "https://auth.example.com/api/v1/connections/{id}/auth-requests/{{login_request_id}}/user"
        )
    );
    let text = gatehouse(d, &["connections", "show", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("admin API key as bearer"), "{text}");

    let bad = gatehouse(
        d,
        &[
            "connections",
            "add-federated",
            "--name",
            "X",
            "--login-url",
            "ftp://x",
            "--json",
        ],
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("must be https"), "{}", stderr(&bad));
    let no_secret = gatehouse(
        d,
        &[
            "connections",
            "add-oidc",
            "--name",
            "GitHub",
            "--preset",
            "github",
            "--client-id",
            "Iv1.abc",
        ],
    );
    assert!(!no_secret.status.success());
    assert!(
        stderr(&no_secret).contains("GitHub requires one"),
        "{}",
        stderr(&no_secret)
    );
    let github = gatehouse_stdin(
        d,
        &[
            "connections",
            "add-oidc",
            "--name",
            "Corp GitHub",
            "--preset",
            "github",
            "--tenant",
            "github.corp.example",
            "--client-id",
            "Iv1.abc",
            "--client-secret-stdin",
        ],
        "first-secret\n",
    );
    let text = String::from_utf8_lossy(&github.stdout);
    assert!(github.status.success(), "{}", stderr(&github));
    assert!(
        text.contains("kind:     github")
            && text.contains("github:   https://github.corp.example")
            && text.contains("read:user user:email")
            && text.contains("Set this authorization callback URL in the GitHub OAuth app")
            && !text.contains("first-secret"),
        "{text}"
    );
    let gh_id = text
        .split_whitespace()
        .find(|w| w.starts_with("conn_"))
        .unwrap()
        .to_owned();
    let rotated = gatehouse_stdin(
        d,
        &[
            "connections",
            "update",
            &gh_id,
            "--client-secret-stdin",
            "--json",
        ],
        "second-secret\n",
    );
    assert_eq!(json(&rotated)["client_secret_set"], true);
    let federated_secret = gatehouse_stdin(
        d,
        &["connections", "update", &id, "--client-secret-stdin"],
        "x\n",
    );
    assert!(
        stderr(&federated_secret).contains("only identity providers"),
        "{}",
        stderr(&federated_secret)
    );
    json(&gatehouse(d, &["connections", "remove", &gh_id, "--json"]));
    let res_id = gatehouse(d, &["connections", "show", "res_abc", "--json"]);
    assert!(
        stderr(&res_id).contains("MCP server id"),
        "{}",
        stderr(&res_id)
    );

    let server = json(&gatehouse(
        d,
        &[
            "servers",
            "add",
            "--name",
            "To-do",
            "--url",
            "https://mcp.example.com/mcp",
            "--sign-in",
            &format!("{id},password"),
            "--json",
        ],
    ));
    assert_eq!(
        server["sign_in_methods"],
        serde_json::json!([id, "password"])
    );
    let sid = server["id"].as_str().unwrap().to_owned();
    let unknown = gatehouse(
        d,
        &[
            "servers",
            "update",
            &sid,
            "--sign-in",
            "conn_nosuchthing",
            "--json",
        ],
    );
    assert!(
        stderr(&unknown).contains("no such connection"),
        "{}",
        stderr(&unknown)
    );
    let typo = gatehouse(
        d,
        &["servers", "update", &sid, "--sign-in", "sms", "--json"],
    );
    assert!(
        stderr(&typo).contains("not a sign-in method"),
        "{}",
        stderr(&typo)
    );

    let in_use = gatehouse(d, &["connections", "remove", &id, "--json"]);
    assert!(!in_use.status.success());
    assert!(
        stderr(&in_use).contains("remove it from that server"),
        "{}",
        stderr(&in_use)
    );

    let off = json(&gatehouse(d, &["connections", "disable", &id, "--json"]));
    assert_eq!(off["enabled"], false);
    let set = json(&gatehouse(
        d,
        &[
            "sign-in",
            "set",
            "--password",
            "off",
            "--passkey",
            "off",
            "--json",
        ],
    ));
    assert_eq!(set["password"], false);
    assert_eq!(set["default_methods"], serde_json::json!([]));
    json(&gatehouse(d, &["connections", "enable", &id, "--json"]));
    let set = json(&gatehouse(d, &["sign-in", "show", "--json"]));
    assert_eq!(set["default_methods"], serde_json::json!([id]));

    let reset = json(&gatehouse(
        d,
        &["servers", "update", &sid, "--sign-in", "default", "--json"],
    ));
    assert_eq!(reset["sign_in_methods"], Value::Null);
    json(&gatehouse(d, &["connections", "remove", &id, "--json"]));
    let list = json(&gatehouse(d, &["connections", "list", "--json"]));
    assert_eq!(list, serde_json::json!([]));
    let log = json(&gatehouse(
        d,
        &["audit", "--event", "admin.change", "--json"],
    ));
    let actions: Vec<&str> = log["items"]
        .as_array()
        .or(log.as_array())
        .unwrap()
        .iter()
        .filter_map(|e| e["details"]["action"].as_str())
        .collect();
    for a in [
        "connection.created",
        "connection.updated",
        "connection.deleted",
        "sign_in.policy_changed",
    ] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
}

#[test]
fn migrate_applies_once_and_backup_copies_a_working_database() {
    let dir = tempfile::tempdir().unwrap();
    let manual = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(args)
            .env_remove("GATEHOUSE_CONFIG")
            .env("GATEHOUSE_AUTO_MIGRATE", "false")
            .output()
            .unwrap()
    };
    // With auto_migrate off nothing migrates by itself: the operator does.
    let refused = manual(&["servers", "list"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("run `gatehouse migrate` first"),
        "{}",
        stderr(&refused)
    );
    let check = manual(&["migrate", "--check"]);
    assert!(!check.status.success());
    assert!(
        stderr(&check).contains("pending migrations: 0001 foundation"),
        "{}",
        stderr(&check)
    );
    let out = manual(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("applied 0001 foundation\n"), "{said}");
    assert!(said.contains("applied 0010 passkeys"), "{said}");
    let up = json(&manual(&["migrate", "--json"]));
    assert_eq!(up, serde_json::json!({"applied": [], "newer": []}));
    for args in [&["migrate"][..], &["migrate", "--check"]] {
        let out = manual(args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "the database is up to date"
        );
    }
    let added = json(&manual(&[
        "servers",
        "add",
        "--name",
        "Kept",
        "--url",
        "https://kept.example/mcp",
        "--json",
    ]));

    // The copy is private, complete, and opens as a data directory of its own.
    let copy = dir.path().join("copy.db");
    let out = json(&gatehouse(
        dir.path(),
        &["backup", copy.to_str().unwrap(), "--json"],
    ));
    assert_eq!(out["backup"], copy.to_str().unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "it holds the signing keys");
    }
    let again = gatehouse(dir.path(), &["backup", copy.to_str().unwrap()]);
    assert!(!again.status.success(), "never overwrites");
    assert!(
        stderr(&again).contains("cannot create"),
        "{}",
        stderr(&again)
    );
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join("gatehouse.db")).unwrap();
    let listed = json(&gatehouse(restored.path(), &["servers", "list", "--json"]));
    assert_eq!(listed[0]["id"], added["id"], "{listed}");

    let pg = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "backup",
            "x.db",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .env_remove("GATEHOUSE_CONFIG")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(stderr(&pg).contains("pg_dump"), "{}", stderr(&pg));
    let empty = tempfile::tempdir().unwrap();
    let missing = gatehouse(empty.path(), &["backup", "y.db"]);
    assert!(
        stderr(&missing).contains("there is no database"),
        "{}",
        stderr(&missing)
    );
}
