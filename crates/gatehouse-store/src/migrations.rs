//! Schema migrations. By default a store applies what it lacks when it opens (under a lock, so
//! nodes starting together apply them once); for rolling upgrades an operator applies them
//! with `gatehouse migrate` and nodes only check. A database a newer version migrated still
//! opens: migrations only add, so this version's queries keep working on it.

use std::fmt;

use gatehouse_core::store::StoreError;
use sqlx::migrate::{Migrate, MigrateError, Migrator};

/// The table sqlx records applied migrations in.
const TABLE: &str = "_sqlx_migrations";

/// What opening a store does with migrations this version has and the database lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Migrations {
    /// Applies them.
    #[default]
    Apply,
    /// Refuses to open until they are applied (with `gatehouse migrate`).
    Require,
    /// Opens as it is: for `gatehouse migrate`, which looks and applies itself.
    Leave,
}

/// One migration, shown as `0007 key rotation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationName {
    /// Its number.
    pub version: i64,
    /// What it does.
    pub description: String,
}

impl fmt::Display for MigrationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04} {}", self.version, self.description)
    }
}

/// Where a database stands against this version's migrations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationStatus {
    /// This version's migrations the database lacks, in order.
    pub pending: Vec<MigrationName>,
    /// Migrations applied to the database that this version does not know: a newer version
    /// applied them.
    pub newer: Vec<i64>,
}

/// Reads where the database behind `conn` stands against `migrator`.
async fn status<C: Migrate + ?Sized>(
    migrator: &Migrator,
    conn: &mut C,
) -> Result<MigrationStatus, StoreError> {
    conn.ensure_migrations_table(TABLE).await.map_err(failed)?;
    if let Some(version) = conn.dirty_version(TABLE).await.map_err(failed)? {
        return Err(StoreError::Backend(format!(
            "migration {version} failed part-way; restore the database from a backup"
        )));
    }
    let applied = conn.list_applied_migrations(TABLE).await.map_err(failed)?;
    let pending = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .map(|m| MigrationName {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect();
    let newer = applied
        .iter()
        .filter(|a| !migrator.version_exists(a.version))
        .map(|a| a.version)
        .collect();
    Ok(MigrationStatus { pending, newer })
}

/// Applies `migrator`'s pending migrations through `pool`, tolerating newer ones.
async fn apply<'a, A>(migrator: &Migrator, pool: A) -> Result<(), StoreError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: Migrate,
{
    let mut tolerant = Migrator::with_migrations(migrator.iter().cloned().collect());
    tolerant.set_ignore_missing(true);
    tolerant.run(pool).await.map_err(failed)
}

/// What opening a store on `pool` does with `migrations`.
pub(crate) async fn on_open<DB>(
    migrator: &Migrator,
    pool: &sqlx::Pool<DB>,
    migrations: Migrations,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    DB::Connection: Migrate,
{
    match migrations {
        Migrations::Apply => apply(migrator, pool).await,
        Migrations::Require => require_none_pending(&status_of(migrator, pool).await?),
        Migrations::Leave => Ok(()),
    }
}

/// Where the database behind `pool` stands against `migrator`.
pub(crate) async fn status_of<DB>(
    migrator: &Migrator,
    pool: &sqlx::Pool<DB>,
) -> Result<MigrationStatus, StoreError>
where
    DB: sqlx::Database,
    DB::Connection: Migrate,
{
    let mut conn = pool.acquire().await.map_err(crate::rows::backend)?;
    status(migrator, &mut *conn).await
}

/// Applies what the database behind `pool` lacks of `migrator`; returns it.
pub(crate) async fn migrate<DB>(
    migrator: &Migrator,
    pool: &sqlx::Pool<DB>,
) -> Result<Vec<MigrationName>, StoreError>
where
    DB: sqlx::Database,
    DB::Connection: Migrate,
{
    let pending = status_of(migrator, pool).await?.pending;
    apply(migrator, pool).await?;
    Ok(pending)
}

/// Refuses to go on while `status` has pending migrations.
fn require_none_pending(status: &MigrationStatus) -> Result<(), StoreError> {
    if status.pending.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = status.pending.iter().map(ToString::to_string).collect();
    Err(StoreError::Backend(format!(
        "the database lacks {} migration(s) of this version ({}): run `gatehouse migrate` first",
        names.len(),
        names.join(", ")
    )))
}

fn failed(e: MigrateError) -> StoreError {
    StoreError::Backend(format!("migrations: {e}"))
}
