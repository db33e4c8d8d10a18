//! The `gatehouse` binary.

use std::process::ExitCode;

use clap::Parser;
use gatehouse_server::cli::{Cli, Command, doctor, run_admin};
use gatehouse_server::config::{Config, LogFormat};
use gatehouse_server::serve::serve;
use gatehouse_server::{demo, maintenance};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.config() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    init_logging(&config, matches!(cli.command, Command::Serve { .. }));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { .. } => serve(&config).await.map(|()| None),
            Command::Demo { mcp_listen, .. } => {
                demo::run(&config, cli.global.data_dir.clone(), mcp_listen)
                    .await
                    .map(|()| None)
            }
            Command::Migrate { check, json } => {
                maintenance::migrate(&config, check, json).await.map(Some)
            }
            Command::Backup { to, json } => maintenance::backup(&config, &to, json).await.map(Some),
            Command::Doctor {
                url,
                authorization_server,
                json,
            } => {
                let report = doctor::run(&url, authorization_server.as_deref()).await?;
                let out = if json {
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                } else {
                    report.text()
                };
                if report.ok {
                    Ok(Some(out))
                } else {
                    println!("{out}");
                    Err("the MCP server is not ready for hosts".into())
                }
            }
            other => run_admin(other, &config).await.map(Some),
        }
    });
    match result {
        Ok(Some(out)) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Logs go to stderr. Administrative commands log warnings only, so their stdout stays
/// clean for scripts.
fn init_logging(config: &Config, serving: bool) {
    let level = if serving {
        config.log_level.as_str()
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
