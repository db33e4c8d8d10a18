//! SQLite through sqlx, in WAL mode so the CLI can write while the server runs.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::keys::{SigningAlg, StoredKey};
use gatehouse_core::model::{Client, ClientKind, Resource, ScopeDef};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::store::{
    ClientStore, KeyStore, ResourceStore, RevocationStore, RevokedToken, Store, StoreError,
};
use gatehouse_core::{ClientId, Kid, ResourceId, ResourceUri, ScopeSet, UnixTime};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A [`Store`] in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed change survives a power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options, 8).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(backend)?
            .foreign_keys(true);
        // One connection: every connection to `:memory:` is a separate database.
        Self::connect(options, 1).await
    }

    async fn connect(options: SqliteConnectOptions, max: u32) -> Result<Self, StoreError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrations: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Maps unique and foreign-key violations to `Conflict`, everything else to `Backend`.
fn classify(e: sqlx::Error, what: &str) -> StoreError {
    if let Some(db) = e.as_database_error()
        && (db.is_unique_violation() || db.is_foreign_key_violation())
    {
        return StoreError::Conflict(format!("{what}: {}", db.message()));
    }
    backend(e)
}

async fn bump(tx: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
    sqlx::query("UPDATE change_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is not valid"))
}

fn resource_from_row(row: &SqliteRow) -> Result<Resource, StoreError> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(backend);
    let scopes: Vec<ScopeDef> =
        serde_json::from_str(&get_s("scopes")?).map_err(|_| corrupt("scopes"))?;
    Ok(Resource {
        id: ResourceId::parse(&get_s("id")?).map_err(|_| corrupt("resource id"))?,
        name: get_s("name")?,
        url: ResourceUri::parse(&get_s("url")?).map_err(|_| corrupt("resource URL"))?,
        scopes,
        token_ttl: row.try_get::<i64, _>("token_ttl").map_err(backend)? as u32,
        signing_alg: SigningAlg::parse(&get_s("signing_alg")?).ok_or_else(|| corrupt("alg"))?,
        dynamic_registration: row.try_get("dynamic_registration").map_err(backend)?,
        metadata_documents: row.try_get("metadata_documents").map_err(backend)?,
        created_at: UnixTime(row.try_get("created_at").map_err(backend)?),
    })
}

fn client_from_row(row: &SqliteRow) -> Result<Client, StoreError> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(backend);
    Ok(Client {
        id: ClientId::parse(&get_s("id")?).map_err(|_| corrupt("client id"))?,
        resource: ResourceId::parse(&get_s("resource_id")?).map_err(|_| corrupt("resource id"))?,
        name: get_s("name")?,
        kind: ClientKind::parse(&get_s("kind")?).ok_or_else(|| corrupt("client kind"))?,
        secret_hash: row
            .try_get::<Option<String>, _>("secret_hash")
            .map_err(backend)?
            .map(SecretHash::from_stored),
        scopes: ScopeSet::parse(&get_s("scopes")?).map_err(|_| corrupt("scopes"))?,
        created_at: UnixTime(row.try_get("created_at").map_err(backend)?),
    })
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn insert_resource(&self, r: &Resource) -> Result<(), StoreError> {
        let scopes = serde_json::to_string(&r.scopes).map_err(backend)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO resources (id, name, url, url_key, scopes, token_ttl, signing_alg,
                 dynamic_registration, metadata_documents, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id.as_str())
        .bind(&r.name)
        .bind(r.url.as_str())
        .bind(r.url.canonical())
        .bind(scopes)
        .bind(i64::from(r.token_ttl))
        .bind(r.signing_alg.as_str())
        .bind(r.dynamic_registration)
        .bind(r.metadata_documents)
        .bind(r.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "MCP server id or URL already registered"))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn resource(&self, id: &ResourceId) -> Result<Option<Resource>, StoreError> {
        sqlx::query("SELECT * FROM resources WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(resource_from_row)
            .transpose()
    }

    async fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        sqlx::query("SELECT * FROM resources ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(resource_from_row)
            .collect()
    }

    async fn delete_resource(&self, id: &ResourceId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM clients WHERE resource_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = sqlx::query("DELETE FROM resources WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        if deleted {
            bump(&mut tx).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, c: &Client) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO clients (id, resource_id, name, kind, secret_hash, scopes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(c.id.as_str())
        .bind(c.resource.as_str())
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(c.secret_hash.as_ref().map(SecretHash::as_str))
        .bind(c.scopes.to_param())
        .bind(c.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "client id taken or MCP server missing"))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        sqlx::query("SELECT * FROM clients WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(client_from_row)
            .transpose()
    }

    async fn clients(&self, resource: Option<&ResourceId>) -> Result<Vec<Client>, StoreError> {
        let rows = match resource {
            Some(r) => {
                sqlx::query("SELECT * FROM clients WHERE resource_id = ? ORDER BY seq")
                    .bind(r.as_str())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query("SELECT * FROM clients ORDER BY seq")
                    .fetch_all(&self.pool)
                    .await
            }
        };
        rows.map_err(backend)?.iter().map(client_from_row).collect()
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let deleted = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        if deleted {
            bump(&mut tx).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, k: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(k.kid.as_str())
        .bind(k.alg.as_str())
        .bind(&k.private_pkcs8)
        .bind(k.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "kid already exists"))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    kid: Kid::new(row.try_get::<String, _>("kid").map_err(backend)?),
                    alg: SigningAlg::parse(&row.try_get::<String, _>("alg").map_err(backend)?)
                        .ok_or_else(|| corrupt("key algorithm"))?,
                    private_pkcs8: row.try_get("private_pkcs8").map_err(backend)?,
                    created_at: UnixTime(row.try_get("created_at").map_err(backend)?),
                })
            })
            .collect()
    }
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn revoke_token(&self, t: &RevokedToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, resource_id, client_id, expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&t.jti)
        .bind(t.resource.as_str())
        .bind(t.client.as_str())
        .bind(t.expires_at.0)
        .bind(t.revoked_at.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.is_some())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn change_version(&self) -> Result<u64, StoreError> {
        let v: i64 = sqlx::query_scalar("SELECT version FROM change_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_in_memory_passes_the_contract() {
        gatehouse_core::contract::run_all(|| async { SqliteStore::in_memory().await.unwrap() })
            .await;
    }

    #[tokio::test]
    async fn sqlite_file_passes_the_contract_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        gatehouse_core::contract::run_all(|| {
            let path = dir.path().join(format!(
                "db{}.sqlite",
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ));
            async move { SqliteStore::open(&path).await.unwrap() }
        })
        .await;
        let path = dir.path().join("reopen.sqlite");
        let store = SqliteStore::open(&path).await.unwrap();
        let key = StoredKey::generate(SigningAlg::EdDSA, UnixTime(1)).unwrap();
        store.insert_key(&key).await.unwrap();
        store.close().await;
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            again.keys().await.unwrap(),
            vec![key],
            "migrations re-run cleanly, data kept"
        );
    }
}
