//! `todo-mcp`: run the example MCP server.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// A to-do list MCP server protected by Gatehouse.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// The public URL of the MCP endpoint: the audience tokens must carry.
    #[arg(long, value_name = "URL")]
    resource: Option<String>,
    /// The issuer to trust, as printed by `gatehouse servers add` ({public}/resources/res_…).
    #[arg(long, value_name = "ISSUER")]
    authorization_server: String,
    /// How long the issuer's keys are cached (keep it at most Gatehouse's
    /// key_publish_ahead_secs).
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    jwks_max_age_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let resource = args
        .resource
        .unwrap_or_else(|| format!("http://{}/mcp", args.listen));
    let guard = match todo_mcp::guard_builder(&resource, &args.authorization_server)
        .jwks_timing(
            std::time::Duration::from_secs(args.jwks_max_age_secs),
            std::time::Duration::from_secs(30),
        )
        .build()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = url::Url::parse(&resource)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        hosts.push(host);
    }
    let app = todo_mcp::app(Some(guard), hosts);
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(listen = %args.listen, resource = %resource, issuer = %args.authorization_server, "todo MCP server ready");
    if let Err(e) = todo_mcp::serve(listener, app, shutdown()).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
