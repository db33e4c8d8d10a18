//! `gatehouse demo`: Gatehouse, the to-do MCP server behind the guard, and an agent client,
//! in one process, with instructions to try them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::admin::Operator;
use gatehouse_core::audit::Recorder;
use gatehouse_core::model::{NewResource, ScopeDef};
use gatehouse_core::password::Password;
use gatehouse_core::store::{AuditStore, ResourceStore, UserStore};
use gatehouse_core::{Clock, ResourceUri, ScopeSet, SystemClock};
use gatehouse_store::Migrations;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::serve::{BoxError, RunningServer, open_sqlite, shutdown_signal, start_app};

/// Runs the demo until Ctrl-C. `data_dir` is kept if given; otherwise a temporary directory
/// is used and removed at the end.
pub async fn run(
    config: &Config,
    data_dir: Option<PathBuf>,
    mcp_listen: SocketAddr,
) -> Result<(), BoxError> {
    let temp = match &data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("gatehouse-demo-")
                .tempdir()?,
        ),
    };
    let dir = data_dir.unwrap_or_else(|| {
        temp.as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default()
    });
    let public = config.public_issuer()?;
    let store = Arc::new(open_sqlite(&dir, Migrations::Apply).await?);

    // The to-do server: reuse it if this data directory has it already.
    let mcp_url = format!("http://{mcp_listen}/mcp");
    let recorder = Recorder::default();
    let op = Operator::new(store.as_ref(), &recorder, "demo", SystemClock.now());
    let existing = store
        .resources()
        .await?
        .into_iter()
        .find(|r| r.url.matches(&mcp_url));
    let resource = match existing {
        Some(r) => r,
        None => {
            let new = NewResource::new(
                "To-do list (demo)",
                ResourceUri::parse(&mcp_url).map_err(|e| e.0)?,
                vec![
                    ScopeDef::parse("todo:read=Read your to-dos")?,
                    ScopeDef::parse("todo:write=Create, change and delete your to-dos")?,
                ],
            );
            op.register_resource(new).await?
        }
    };
    let (client, secret) = op
        .create_agent_client(
            resource.id.as_str(),
            "demo agent",
            ScopeSet::parse("todo:read todo:write")?,
        )
        .await?;

    // A person to sign in as, e.g. from MCP Inspector.
    let demo_email = "demo@example.com";
    let (demo_user, demo_password) = match store.user_by_email(demo_email).await? {
        Some(u) => (u, None),
        None => {
            let password = Password::generate();
            // The demo person also administers the demo, so the dashboard can be tried.
            let u = op.create_user(demo_email, &password, true).await?;
            (u, Some(password))
        }
    };
    store.append_audit(&recorder.events()).await?;
    let password_line = match &demo_password {
        Some(p) => p.expose_secret().to_owned(),
        None => "(unchanged: this data directory already had the demo person)".to_owned(),
    };

    let stop = shutdown_signal();
    let state = start_app(public.clone(), store.clone(), config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let server = RunningServer::start_with(
        state,
        listener,
        Duration::from_millis(config.refresh_interval_ms.max(50)),
    )?;

    let issuer = resource.issuer(&public);
    let guard = todo_mcp::guard(&mcp_url, issuer.as_str())?;
    let mcp_listener = TcpListener::bind(mcp_listen)
        .await
        .map_err(|e| format!("cannot listen on {mcp_listen}: {e}"))?;
    let hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mcp = tokio::spawn(todo_mcp::serve(
        mcp_listener,
        todo_mcp::app(Some(guard), hosts),
        shutdown_signal(),
    ));

    let token_endpoint = issuer.join(gatehouse_core::metadata::paths::TOKEN);
    println!(
        r#"Gatehouse demo is running. Press Ctrl-C to stop.

  Authorization server  {public}
  Issuer                {issuer}
  MCP server            {mcp_url}   (todo-mcp, protected by the guard)
  Agent client          {cid}
  Client secret         {secret}
  Person                {email}   (also an administrator: {public}/admin)
  Password              {password_line}
  Data directory        {dir}{temp_note}

Connect an MCP host (it registers itself, sends you to sign in, then asks for consent):

  npx @modelcontextprotocol/inspector@2 {mcp_url}
  # or, in Claude Code:  claude mcp add --transport http todo {mcp_url}

Try it:

  # 1. Without a token the MCP server answers 401 and points at its metadata:
  curl -i -X POST {mcp_url}

  # 2. Where that leads: the MCP server's metadata, then Gatehouse's:
  curl -s {prm}
  curl -s {as_meta}

  # 3. An agent gets a token with client credentials:
  TOKEN=$(curl -s -u '{cid}:{secret}' -d grant_type=client_credentials {token_endpoint} | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

  # 4. And lists the MCP server's tools with it:
  curl -s -X POST {mcp_url} -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/list' \
    -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}'

  # A token with only todo:read may list but not create: add -d scope=todo:read in step 3,
  # then call create_todo and see 403 insufficient_scope.
"#,
        cid = client.id,
        email = demo_user.email,
        secret = secret.expose_secret(),
        dir = dir.display(),
        temp_note = if temp.is_some() {
            " (temporary, removed on exit)"
        } else {
            ""
        },
        prm = gatehouse_core::types::well_known_url(&mcp_url, "oauth-protected-resource"),
        as_meta = issuer.well_known("oauth-authorization-server"),
    );

    stop.await;
    println!("Stopping…");
    server.stop().await?;
    let _ = mcp.await;
    store.close().await;
    drop(temp);
    Ok(())
}
