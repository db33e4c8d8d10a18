//! `gatehouse migrate` and `gatehouse backup`: looking after the database apart from serving.

use std::path::Path;

use gatehouse_store::{MigrationName, Migrations};

use crate::config::Config;
use crate::serve::{BoxError, Database, open_sqlite};

/// Applies the schema migrations the database lacks (or with `check`, only names them and
/// fails if there are any). Nodes of the version before keep serving meanwhile: migrations
/// only add.
pub async fn migrate(config: &Config, check: bool, json: bool) -> Result<String, BoxError> {
    let db = Database::open(config, Migrations::Leave).await?;
    let status = db.migration_status().await?;
    let names = |ms: &[MigrationName]| ms.iter().map(ToString::to_string).collect::<Vec<_>>();
    if check && !status.pending.is_empty() {
        return Err(format!("pending migrations: {}", names(&status.pending).join(", ")).into());
    }
    let applied = if check {
        Vec::new()
    } else {
        db.migrate().await?
    };
    if json {
        let out = serde_json::json!({
            "applied": names(&applied),
            "newer": status.newer,
        });
        return Ok(serde_json::to_string_pretty(&out)?);
    }
    let mut out = Vec::new();
    if !status.newer.is_empty() {
        out.push(format!(
            "note: the database also has migrations of a newer Gatehouse: {:?}",
            status.newer
        ));
    }
    if applied.is_empty() {
        out.push("the database is up to date".to_owned());
    }
    out.extend(applied.iter().map(|m| format!("applied {m}")));
    Ok(out.join("\n"))
}

/// Writes a consistent copy of the SQLite database to `dest` (a new file, readable by its
/// owner only: it holds the signing keys), while the server may go on serving.
pub async fn backup(config: &Config, dest: &Path, json: bool) -> Result<String, BoxError> {
    if config.database_url.is_some() {
        return Err(
            "backup copies the SQLite database; for PostgreSQL use pg_dump (docs/operations.md)"
                .into(),
        );
    }
    let source = config.data_dir.join("gatehouse.db");
    if !source.exists() {
        return Err(format!("there is no database at {}", source.display()).into());
    }
    let store = open_sqlite(&config.data_dir, Migrations::Leave).await?;
    // VACUUM INTO writes into a new or empty file: made here, so that it is private from
    // the start.
    if let Err(e) = create_private(dest) {
        store.close().await;
        return Err(format!("cannot create {}: {e}", dest.display()).into());
    }
    let copied = store.backup_to(dest).await;
    store.close().await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(dest);
        return Err(format!("backup failed: {e}").into());
    }
    if json {
        let out = serde_json::json!({ "database": source, "backup": dest });
        return Ok(serde_json::to_string_pretty(&out)?);
    }
    Ok(format!(
        "backed up {} to {}",
        source.display(),
        dest.display()
    ))
}

/// Creates `path`, which must not exist, readable and writable by its owner only.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}
