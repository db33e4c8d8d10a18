//! PostgreSQL through sqlx, for several Gatehouse nodes on one database.
//!
//! The SQL is SQLite's (`sqlite.rs`) where the two agree; where concurrency differs it is
//! PostgreSQL's own. Transactions run at READ COMMITTED, and every check-then-write takes
//! the row lock it depends on: a single-use record is read `FOR UPDATE`, an issuance holds
//! its grant `FOR SHARE` while a revocation locks the grants it revokes before it collects
//! their tokens, and a refresh token is rotated by a conditional update. Of concurrent
//! callers on any nodes, exactly one wins each race.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::audit::{AuditEvent, AuditQuery};
use gatehouse_core::email_code::EmailChallenge;
use gatehouse_core::keys::StoredKey;
use gatehouse_core::model::{ApiKey, Client, Resource, User};
use gatehouse_core::passkey::{CeremonyPurpose, PasskeyCeremony, StoredPasskey};
use gatehouse_core::records::{
    CodeRecord, Consent, Grant, Issuance, Prune, Pruned, RefreshRecord, Session,
};
use gatehouse_core::secret::SecretHash;
use gatehouse_core::signin::{Connection, Identity, LoginRequest, Profile, SignInPolicy};
use gatehouse_core::store::{
    ApiKeyStore, AuditStore, ClientStore, ConsentFilter, GRANT_RETENTION_SECS, GrantStore,
    KeyStore, PasskeyStore, PoolState, ResourceStore, RevocationStore, Revocations, RevokedToken,
    SessionStore, SignInStore, Store, StoreError, UserStore,
};
use gatehouse_core::types::{
    ApiKeyId, ConnectionId, EmailChallengeId, LoginRequestId, PasskeyCeremonyId, PasskeyId,
};
use gatehouse_core::{ClientId, GrantId, ResourceId, UnixTime, UserId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Transaction};

use crate::migrations::{self, MigrationName, MigrationStatus, Migrations};
use crate::rows::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How a node uses its connections.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Connections this node keeps open at most.
    pub max_connections: u32,
    /// How long a request waits for a free connection before it fails.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`Store`] in a PostgreSQL database, shared by every node that connects to it.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host/db`) and applies
    /// pending migrations. Migrations take an advisory lock, so nodes starting together apply
    /// them once.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, StoreError> {
        Self::connect_migrating(url, settings, Migrations::Apply).await
    }

    /// Connects to the database at `url`, doing `migrations`.
    pub async fn connect_migrating(
        url: &str,
        settings: PoolSettings,
        migrations: Migrations,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("the database URL: {e}")))?;
        Self::connect_with(options, settings, migrations).await
    }

    /// Connects with `options`: a test can set its own `search_path`, say.
    pub async fn connect_with(
        options: PgConnectOptions,
        settings: PoolSettings,
        migrations: Migrations,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            // A connection that broke (the database restarted) is noticed before use.
            .test_before_acquire(true)
            .connect_with(options.application_name("gatehouse"))
            .await
            .map_err(backend)?;
        migrations::on_open(&MIGRATOR, &pool, migrations).await?;
        Ok(PgStore { pool })
    }

    /// Where the database stands against this version's migrations.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        migrations::status_of(&MIGRATOR, &self.pool).await
    }

    /// Applies the migrations the database lacks; returns them.
    pub async fn migrate(&self) -> Result<Vec<MigrationName>, StoreError> {
        migrations::migrate(&MIGRATOR, &self.pool).await
    }

    /// A transaction at READ COMMITTED, PostgreSQL's default.
    async fn write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(backend)
    }

    /// Uses a single-use record: locks row `id` of `table`, reads it and marks it used at
    /// `now` unless it was. Returns the row as it was: a concurrent caller waits for the lock
    /// and then reads `used_at` set.
    async fn take_once<T>(
        &self,
        table: &'static str,
        id: &str,
        now: UnixTime,
        read: fn(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {table} WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(before) = row.as_ref().map(read).transpose()? else {
            return Ok(None);
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET used_at = $1 WHERE id = $2 AND used_at IS NULL"
        )))
        .bind(now.0)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(before))
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn bump(tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
    sqlx::query("UPDATE change_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl ResourceStore for PgStore {
    async fn insert_resource(&self, r: &Resource) -> Result<(), StoreError> {
        let scopes = to_json(&r.scopes)?;
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO resources (id, name, url, url_key, scopes, token_ttl, signing_alg,
                 dynamic_registration, metadata_documents, private_use_redirects,
                 refresh_tokens, sign_in_methods, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
        .bind(r.private_use_redirects)
        .bind(r.refresh_tokens.as_str())
        .bind(methods_json(r)?)
        .bind(r.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "MCP server id or URL already registered"))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn update_resource(&self, r: &Resource) -> Result<bool, StoreError> {
        let scopes = to_json(&r.scopes)?;
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE resources SET name = $1, url = $2, url_key = $3, scopes = $4, token_ttl = $5,
                 signing_alg = $6, dynamic_registration = $7, metadata_documents = $8,
                 private_use_redirects = $9, refresh_tokens = $10, sign_in_methods = $11
             WHERE id = $12",
        )
        .bind(&r.name)
        .bind(r.url.as_str())
        .bind(r.url.canonical())
        .bind(scopes)
        .bind(i64::from(r.token_ttl))
        .bind(r.signing_alg.as_str())
        .bind(r.dynamic_registration)
        .bind(r.metadata_documents)
        .bind(r.private_use_redirects)
        .bind(r.refresh_tokens.as_str())
        .bind(methods_json(r)?)
        .bind(r.id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "another MCP server has this URL"))?
        .rows_affected()
            > 0;
        if changed {
            bump(&mut tx).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(changed)
    }

    async fn resource(&self, id: &ResourceId) -> Result<Option<Resource>, StoreError> {
        sqlx::query("SELECT * FROM resources WHERE id = $1")
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
        let mut tx = self.write().await?;
        // Grants and consents of the server go by foreign key; those of its clients too.
        sqlx::query(
            "DELETE FROM grants WHERE client_id IN (SELECT id FROM clients WHERE resource_id = $1)",
        )
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("DELETE FROM clients WHERE resource_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = sqlx::query("DELETE FROM resources WHERE id = $1")
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
impl ClientStore for PgStore {
    async fn insert_client(&self, c: &Client) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO clients (id, resource_id, name, kind, secret_hash, scopes, redirect_uris,
                 auth_method, metadata, registration_token_hash, created_at, last_used_at,
                 disabled_at, tokens_revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(c.id.as_str())
        .bind(c.resource.as_ref().map(ResourceId::as_str))
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(c.secret_hash.as_ref().map(SecretHash::as_str))
        .bind(c.scopes.to_param())
        .bind(to_json(&c.redirect_uris)?)
        .bind(c.auth_method.as_str())
        .bind(to_json(&c.metadata)?)
        .bind(c.registration_token_hash.as_ref().map(SecretHash::as_str))
        .bind(c.created_at.0)
        .bind(c.last_used_at.map(|t| t.0))
        .bind(c.disabled_at.map(|t| t.0))
        .bind(c.tokens_revoked_at.map(|t| t.0))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "client id taken or MCP server missing"))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        sqlx::query("SELECT * FROM clients WHERE id = $1")
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
                sqlx::query("SELECT * FROM clients WHERE resource_id = $1 ORDER BY seq")
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

    async fn set_client_disabled(
        &self,
        id: &ClientId,
        disabled: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let found = sqlx::query(
            "UPDATE clients SET disabled_at = $1,
                 tokens_revoked_at = COALESCE($2, tokens_revoked_at)
             WHERE id = $3",
        )
        .bind(disabled.map(|t| t.0))
        .bind(disabled.map(|t| t.0))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0;
        if !found {
            return Ok(false);
        }
        if let Some(now) = disabled {
            record_revoked_client(&mut tx, id, now).await?;
            revoke_grants_where(&mut tx, GrantsOf::Client, id.as_str(), now).await?;
        }
        bump(&mut tx).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn delete_client(&self, id: &ClientId, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        record_revoked_client(&mut tx, id, now).await?;
        revoke_grants_where(&mut tx, GrantsOf::Client, id.as_str(), now).await?;
        for sql in [
            "DELETE FROM grants WHERE client_id = $1",
            "DELETE FROM consents WHERE client_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let deleted = sqlx::query("DELETE FROM clients WHERE id = $1")
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

    async fn replace_client_secret(
        &self,
        id: &ClientId,
        secret_hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let changed = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2")
            .bind(secret_hash.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        if changed {
            bump(&mut tx).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(changed)
    }

    async fn touch_client(&self, id: &ClientId, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE clients SET last_used_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn use_client_assertion(
        &self,
        client: &ClientId,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at
             WHERE client_assertions.expires_at <= $4",
        )
        .bind(client.as_str())
        .bind(jti)
        .bind(expires_at.0)
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n == 1)
    }
}

/// Which grants [`revoke_grants_where`] revokes.
#[derive(Clone, Copy)]
enum GrantsOf {
    Id,
    Client,
    User,
}

impl GrantsOf {
    fn column(self) -> &'static str {
        match self {
            GrantsOf::Id => "id",
            GrantsOf::Client => "client_id",
            GrantsOf::User => "user_id",
        }
    }
}

/// Records that every token issued to the client until `now` is revoked (the feed lists it
/// until those tokens have expired).
async fn record_revoked_client(
    tx: &mut Transaction<'_, Postgres>,
    id: &ClientId,
    now: UnixTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO revoked_clients (client_id, resource_id, revoked_at, expires_at)
         SELECT id, resource_id, $1, $2 FROM clients WHERE id = $3
         ON CONFLICT (client_id) DO UPDATE
         SET resource_id = excluded.resource_id, revoked_at = excluded.revoked_at,
             expires_at = excluded.expires_at",
    )
    .bind(now.0)
    .bind(now.0 + GRANT_RETENTION_SECS)
    .bind(id.as_str())
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Marks the grants whose `filter` column equals `value` revoked and records their
/// unexpired access tokens as revoked. The grants are locked first: an issuance in flight
/// holds its grant `FOR SHARE`, so this waits for it, and the tokens collected next include
/// the one it recorded.
async fn revoke_grants_where(
    tx: &mut Transaction<'_, Postgres>,
    filter: GrantsOf,
    value: &str,
    now: UnixTime,
) -> Result<u64, StoreError> {
    // The only text spliced in is a column name from the fixed list above.
    let column = filter.column();
    let locked: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM grants WHERE {column} = $1 AND revoked_at IS NULL FOR UPDATE"
    )))
    .bind(value)
    .fetch_all(&mut **tx)
    .await
    .map_err(backend)?;
    if locked.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, resource_id, client_id, expires_at, revoked_at)
         SELECT a.jti, g.resource_id, g.client_id, a.expires_at, $1
         FROM grant_access_tokens a JOIN grants g ON g.id = a.grant_id
         WHERE g.id = ANY($2) AND a.expires_at > $1
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(now.0)
    .bind(&locked)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    let n = sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = ANY($2)")
        .bind(now.0)
        .bind(&locked)
        .execute(&mut **tx)
        .await
        .map_err(backend)?
        .rows_affected();
    Ok(n)
}

#[async_trait]
impl KeyStore for PgStore {
    async fn insert_key(&self, k: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(k.kid.as_str())
        .bind(k.alg.as_str())
        .bind(&k.private_pkcs8)
        .bind(k.created_at.0)
        .bind(k.activates_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "kid already exists"))?;
        bump(&mut tx).await?;
        tx.commit().await.map_err(backend)
    }

    async fn insert_key_unless(&self, k: &StoredKey, from: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        // Readers go on; a second writer of keys waits here until this one commits, and
        // then sees its key.
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let stored = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pkcs8, created_at, activates_at)
             SELECT $1, $2, $3, $4, $5
             WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2 AND activates_at >= $6)",
        )
        .bind(k.kid.as_str())
        .bind(k.alg.as_str())
        .bind(&k.private_pkcs8)
        .bind(k.created_at.0)
        .bind(k.activates_at.0)
        .bind(from.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "kid already exists"))?
        .rows_affected()
            == 1;
        if stored {
            bump(&mut tx).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(stored)
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(key_from_row).collect()
    }
}

#[async_trait]
impl RevocationStore for PgStore {
    async fn revoke_token(&self, t: &RevokedToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, resource_id, client_id, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING",
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
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.is_some())
    }

    async fn revocations_since(
        &self,
        resource: &ResourceId,
        since: UnixTime,
        now: UnixTime,
    ) -> Result<Revocations, StoreError> {
        let tokens = sqlx::query(
            "SELECT * FROM revoked_tokens
             WHERE resource_id = $1 AND revoked_at >= $2 AND expires_at > $3
             ORDER BY revoked_at, jti",
        )
        .bind(resource.as_str())
        .bind(since.0)
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(revoked_token_from_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
        let clients = sqlx::query(
            "SELECT * FROM revoked_clients
             WHERE (resource_id = $1 OR resource_id IS NULL) AND revoked_at >= $2 AND expires_at > $3
             ORDER BY revoked_at, client_id",
        )
        .bind(resource.as_str())
        .bind(since.0)
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(revoked_client_from_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Revocations { tokens, clients })
    }
}

/// Stores a new person, on the pool or inside a transaction.
async fn insert_user_row<'e>(
    db: impl sqlx::Executor<'e, Database = Postgres>,
    u: &User,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, admin, created_at, disabled_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(u.id.as_str())
    .bind(&u.email)
    .bind(&u.password_hash)
    .bind(u.admin)
    .bind(u.created_at.0)
    .bind(u.disabled_at.map(|t| t.0))
    .execute(db)
    .await
    .map_err(|e| classify(e, "user id or email taken"))?;
    Ok(())
}

#[async_trait]
impl UserStore for PgStore {
    async fn insert_user(&self, u: &User) -> Result<(), StoreError> {
        insert_user_row(&self.pool, u).await
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        sqlx::query("SELECT * FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query("SELECT * FROM users ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn delete_user(&self, id: &UserId, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        revoke_grants_where(&mut tx, GrantsOf::User, id.as_str(), now).await?;
        // Sessions, consents and grants (with their codes and tokens) go by foreign key.
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn set_admin(&self, id: &UserId, admin: bool) -> Result<bool, StoreError> {
        Ok(sqlx::query("UPDATE users SET admin = $1 WHERE id = $2")
            .bind(admin)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0)
    }

    async fn set_user_disabled(
        &self,
        id: &UserId,
        disabled: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let found = sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
            .bind(disabled.map(|t| t.0))
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        if found && let Some(now) = disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            revoke_grants_where(&mut tx, GrantsOf::User, id.as_str(), now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(found)
    }

    async fn set_password(&self, id: &UserId, password_hash: &str) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let found = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(found)
    }
}

#[async_trait]
impl ApiKeyStore for PgStore {
    async fn insert_api_key(&self, k: &ApiKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, user_id, secret_hash, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(k.id.as_str())
        .bind(&k.name)
        .bind(k.user.as_str())
        .bind(k.secret_hash.as_str())
        .bind(k.created_at.0)
        .bind(k.revoked_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "API key exists or user missing"))?;
        Ok(())
    }

    async fn api_key(&self, secret_hash: &SecretHash) -> Result<Option<ApiKey>, StoreError> {
        sqlx::query("SELECT * FROM api_keys WHERE secret_hash = $1")
            .bind(secret_hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        sqlx::query("SELECT * FROM api_keys ORDER BY created_at, seq")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(api_key_from_row)
            .collect()
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let found = sqlx::query("SELECT 1 FROM api_keys WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .is_some();
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now.0)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(found)
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (hash, user_id, created_at, last_seen_at, method)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(s.hash.as_str())
        .bind(s.user.as_str())
        .bind(s.created_at.0)
        .bind(s.last_seen_at.0)
        .bind(s.method.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "session exists or user missing"))?;
        Ok(())
    }

    async fn session(&self, hash: &SecretHash) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn touch_session(&self, hash: &SecretHash, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE hash = $2")
            .bind(now.0)
            .bind(hash.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_session(&self, hash: &SecretHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1")
            .bind(hash.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        sqlx::query("SELECT * FROM sessions WHERE user_id = $1 ORDER BY last_seen_at DESC")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(session_from_row)
            .collect()
    }

    async fn delete_sessions_of(&self, user: &UserId) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected())
    }
}

#[async_trait]
impl GrantStore for PgStore {
    async fn consent(
        &self,
        user: &UserId,
        client: &ClientId,
        resource: &ResourceId,
    ) -> Result<Option<Consent>, StoreError> {
        sqlx::query(
            "SELECT * FROM consents WHERE user_id = $1 AND client_id = $2 AND resource_id = $3",
        )
        .bind(user.as_str())
        .bind(client.as_str())
        .bind(resource.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(consent_from_row)
        .transpose()
    }

    async fn save_consent(&self, c: &Consent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, resource_id, scopes, granted_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id, client_id, resource_id)
             DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(c.user.as_str())
        .bind(c.client.as_str())
        .bind(c.resource.as_str())
        .bind(c.scopes.to_param())
        .bind(c.granted_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "user or MCP server missing"))?;
        Ok(())
    }

    async fn consents(&self, f: &ConsentFilter) -> Result<Vec<Consent>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new("SELECT * FROM consents WHERE 1 = 1");
        for (column, value) in [
            ("user_id", f.user.as_ref().map(|u| u.as_str())),
            ("client_id", f.client.as_ref().map(|c| c.as_str())),
            ("resource_id", f.resource.as_ref().map(|r| r.as_str())),
        ] {
            if let Some(v) = value {
                sql.push(format_args!(" AND {column} = "))
                    .push_bind(v.to_owned());
            }
        }
        sql.push(" ORDER BY granted_at, seq");
        sql.build()
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(consent_from_row)
            .collect()
    }

    async fn revoke_consent(
        &self,
        user: &UserId,
        client: &ClientId,
        resource: &ResourceId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query(
            "DELETE FROM consents WHERE user_id = $1 AND client_id = $2 AND resource_id = $3",
        )
        .bind(user.as_str())
        .bind(client.as_str())
        .bind(resource.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        let grants: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM grants WHERE user_id = $1 AND client_id = $2 AND resource_id = $3",
        )
        .bind(user.as_str())
        .bind(client.as_str())
        .bind(resource.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut revoked = 0;
        for g in &grants {
            revoked += revoke_grants_where(&mut tx, GrantsOf::Id, g, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted > 0 || revoked > 0)
    }

    async fn insert_code(&self, g: &Grant, c: &CodeRecord) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, resource_id, issuer, scopes, created_at,
                 revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(g.id.as_str())
        .bind(g.client.as_str())
        .bind(g.user.as_str())
        .bind(g.resource.as_str())
        .bind(&g.issuer)
        .bind(g.scopes.to_param())
        .bind(g.created_at.0)
        .bind(g.revoked_at.map(|t| t.0))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "grant exists, or its user or MCP server is missing"))?;
        sqlx::query(
            "INSERT INTO authorization_codes (hash, grant_id, redirect_uri, redirect_uri_sent,
                 challenge, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(c.hash.as_str())
        .bind(c.grant.as_str())
        .bind(&c.redirect_uri)
        .bind(c.redirect_uri_sent)
        .bind(&c.challenge)
        .bind(c.expires_at.0)
        .bind(c.used_at.map(|t| t.0))
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "code exists"))?;
        tx.commit().await.map_err(backend)
    }

    async fn take_code(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> Result<Option<CodeRecord>, StoreError> {
        // The conditional update is atomic: of concurrent callers, exactly one marks it.
        let mut tx = self.write().await?;
        let first = sqlx::query(
            "UPDATE authorization_codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL",
        )
        .bind(now.0)
        .bind(hash.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected()
            == 1;
        let row = sqlx::query("SELECT * FROM authorization_codes WHERE hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut code = code_from_row(&row)?;
        if first {
            // Returned as it was before this use.
            code.used_at = None;
        }
        Ok(Some(code))
    }

    async fn grant(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        sqlx::query("SELECT * FROM grants WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(grant_from_row)
            .transpose()
    }

    async fn record_issue(&self, issue: &Issuance) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        // Held until commit: a revocation of this grant waits, then sees the token.
        let active =
            sqlx::query("SELECT 1 FROM grants WHERE id = $1 AND revoked_at IS NULL FOR SHARE")
                .bind(issue.grant.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?
                .is_some();
        if !active {
            return Err(StoreError::Conflict(format!(
                "grant {} is missing or revoked",
                issue.grant
            )));
        }
        if let Some(rot) = &issue.rotates {
            let retry = rot.retry.as_ref();
            let rotated = sqlx::query(
                "UPDATE refresh_tokens SET rotated_at = $1, retry_request_hash = $2, retry_sealed = $3
                 WHERE hash = $4 AND rotated_at IS NULL",
            )
            .bind(rot.at.0)
            .bind(retry.map(|r| r.request_hash.as_str()))
            .bind(retry.map(|r| r.sealed.as_slice()))
            .bind(rot.old.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
            if rotated == 0 {
                return Err(StoreError::Conflict("refresh token already rotated".into()));
            }
        }
        sqlx::query(
            "INSERT INTO grant_access_tokens (jti, grant_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&issue.access.jti)
        .bind(issue.grant.as_str())
        .bind(issue.access.expires_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(e, "jti exists"))?;
        if let Some(r) = &issue.refresh {
            sqlx::query(
                "INSERT INTO refresh_tokens (hash, grant_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(r.hash.as_str())
            .bind(r.grant.as_str())
            .bind(r.created_at.0)
            .bind(r.expires_at.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(e, "refresh token exists"))?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn refresh_token(&self, hash: &SecretHash) -> Result<Option<RefreshRecord>, StoreError> {
        sqlx::query("SELECT * FROM refresh_tokens WHERE hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(refresh_from_row)
            .transpose()
    }

    async fn revoke_grant(&self, id: &GrantId, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        revoke_grants_where(&mut tx, GrantsOf::Id, id.as_str(), now).await?;
        let exists = sqlx::query("SELECT 1 FROM grants WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .is_some();
        tx.commit().await.map_err(backend)?;
        Ok(exists)
    }
}

/// Events per INSERT statement: 8 parameters each, well under SQLite's limit of 32,766.
const AUDIT_ROWS_PER_INSERT: usize = 500;

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // One multi-row INSERT per chunk: far cheaper than a statement per event.
        let mut tx = self.write().await?;
        for chunk in events.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut sql = QueryBuilder::<Postgres>::new(
                "INSERT INTO audit_events
                 (at, event, outcome, resource_id, client_id, user_id, actor, details) ",
            );
            sql.push_values(chunk, |mut row, e| {
                row.push_bind(e.at.0)
                    .push_bind(e.event.as_str())
                    .push_bind(e.outcome.as_str())
                    .push_bind(e.resource.clone())
                    .push_bind(e.client.clone())
                    .push_bind(e.user.clone())
                    .push_bind(e.actor.clone())
                    .push_bind(serde_json::to_string(&e.details).unwrap_or_default());
            });
            sql.build().execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new("SELECT * FROM audit_events WHERE 1 = 1");
        if !q.events.is_empty() {
            sql.push(" AND event IN (");
            let mut names = sql.separated(", ");
            for e in &q.events {
                names.push_bind(e.as_str());
            }
            sql.push(")");
        }
        if let Some(o) = q.outcome {
            sql.push(" AND outcome = ").push_bind(o.as_str());
        }
        for (column, value) in [
            ("resource_id", &q.resource),
            ("client_id", &q.client),
            ("user_id", &q.user),
        ] {
            if let Some(v) = value {
                sql.push(format_args!(" AND {column} = "))
                    .push_bind(v.clone());
            }
        }
        if let Some(t) = q.since {
            sql.push(" AND at >= ").push_bind(t.0);
        }
        if let Some(t) = q.until {
            sql.push(" AND at < ").push_bind(t.0);
        }
        if let Some(b) = q.before {
            sql.push(" AND seq < ").push_bind(b);
        }
        sql.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(q.limit));
        sql.build()
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(audit_from_row)
            .collect()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn close(&self) {
        PgStore::close(self).await;
    }

    fn pool_state(&self) -> Option<PoolState> {
        let open = self.pool.size();
        Some(PoolState {
            open,
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(open),
            max: self.pool.options().get_max_connections(),
        })
    }

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

    async fn prune(&self, p: &Prune) -> Result<Pruned, StoreError> {
        let mut tx = self.write().await?;
        let limit = i64::from(p.limit);
        let mut out = Pruned::default();
        // Unused self-registered clients, locked so that a use racing the clean-up waits;
        // with their grants and consents. Their live access tokens are listed as revoked
        // first, so that introspection stops accepting them.
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM clients WHERE kind = 'registered'
             AND (COALESCE(last_used_at, created_at) < $1
                  OR (last_used_at IS NULL AND created_at < $2)) LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(p.registrations_unused_before.0)
        .bind(p.registrations_never_used_before.0)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        if !stale.is_empty() {
            sqlx::query(
                "INSERT INTO revoked_tokens (jti, resource_id, client_id, expires_at, revoked_at)
                 SELECT a.jti, g.resource_id, g.client_id, a.expires_at, $1
                 FROM grant_access_tokens a JOIN grants g ON g.id = a.grant_id
                 WHERE g.client_id = ANY($2) AND g.revoked_at IS NULL AND a.expires_at > $1
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(p.now.0)
            .bind(&stale)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            for table in ["grants", "consents"] {
                out.deleted += sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE client_id = ANY($1)"
                )))
                .bind(&stale)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
            }
            let clients = sqlx::query("DELETE FROM clients WHERE id = ANY($1)")
                .bind(&stale)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected();
            out.add(clients, p.limit);
            bump(&mut tx).await?;
        }
        let old_grants = p.now.0 - GRANT_RETENTION_SECS;
        for (table, condition, at) in prune_by_time(p, old_grants) {
            let condition = condition.replace("{t}", "$1");
            let n = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM {table} WHERE {condition} LIMIT $2))"
            )))
            .bind(at)
            .bind(limit)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
            out.add(n, p.limit);
        }
        tx.commit().await.map_err(backend)?;
        Ok(out)
    }
}

const POLICY_SETTING: &str = "sign_in_policy";

#[async_trait]
impl SignInStore for PgStore {
    async fn sign_in_policy(&self) -> Result<Option<SignInPolicy>, StoreError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(POLICY_SETTING)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        value
            .map(|v| serde_json::from_str(&v).map_err(|_| corrupt("sign-in policy")))
            .transpose()
    }

    async fn set_sign_in_policy(&self, policy: &SignInPolicy) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(POLICY_SETTING)
        .bind(to_json(policy)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn insert_connection(&self, c: &Connection) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO connections (id, name, config, allowed_domains, enabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.id.as_str())
        .bind(&c.name)
        .bind(to_json(&c.kind)?)
        .bind(to_json(&c.allowed_domains)?)
        .bind(c.enabled)
        .bind(c.created_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "connection id taken"))?;
        Ok(())
    }

    async fn connection(&self, cid: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        sqlx::query("SELECT * FROM connections WHERE id = $1")
            .bind(cid.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(connection_from_row)
            .transpose()
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        sqlx::query("SELECT * FROM connections ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(connection_from_row)
            .collect()
    }

    async fn update_connection(&self, c: &Connection) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE connections SET name = $1, config = $2, allowed_domains = $3, enabled = $4
             WHERE id = $5",
        )
        .bind(&c.name)
        .bind(to_json(&c.kind)?)
        .bind(to_json(&c.allowed_domains)?)
        .bind(c.enabled)
        .bind(c.id.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0)
    }

    async fn delete_connection(&self, cid: &ConnectionId) -> Result<bool, StoreError> {
        // Login requests and identities go with it (ON DELETE CASCADE).
        Ok(sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(cid.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected()
            > 0)
    }

    async fn insert_login_request(&self, r: &LoginRequest) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_requests (id, connection_id, state_hash, browser_hash, return_to,
                 resource_id, created_at, expires_at, profile, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id.as_str())
        .bind(r.connection.as_str())
        .bind(r.state_hash.as_str())
        .bind(r.browser_hash.as_str())
        .bind(&r.return_to)
        .bind(r.server.as_ref().map(ResourceId::as_str))
        .bind(r.created_at.0)
        .bind(r.expires_at.0)
        .bind(r.profile.as_ref().map(to_json).transpose()?)
        .bind(r.used_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "login request exists or connection missing"))?;
        Ok(())
    }

    async fn login_request(
        &self,
        lid: &LoginRequestId,
    ) -> Result<Option<LoginRequest>, StoreError> {
        sqlx::query("SELECT * FROM login_requests WHERE id = $1")
            .bind(lid.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(login_request_from_row)
            .transpose()
    }

    async fn set_login_profile(
        &self,
        lid: &LoginRequestId,
        profile: &Profile,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE login_requests SET profile = $1
             WHERE id = $2 AND profile IS NULL AND used_at IS NULL",
        )
        .bind(to_json(profile)?)
        .bind(lid.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0)
    }

    async fn take_login_request(
        &self,
        lid: &LoginRequestId,
        now: UnixTime,
    ) -> Result<Option<LoginRequest>, StoreError> {
        self.take_once("login_requests", lid.as_str(), now, login_request_from_row)
            .await
    }

    async fn identity(
        &self,
        connection: &ConnectionId,
        subject: &str,
    ) -> Result<Option<Identity>, StoreError> {
        sqlx::query("SELECT * FROM identities WHERE connection_id = $1 AND subject = $2")
            .bind(connection.as_str())
            .bind(subject)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(identity_from_row)
            .transpose()
    }

    async fn identities_of(&self, user: &UserId) -> Result<Vec<Identity>, StoreError> {
        sqlx::query("SELECT * FROM identities WHERE user_id = $1 ORDER BY created_at, seq")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(identity_from_row)
            .collect()
    }

    async fn link_identity(
        &self,
        identity: &Identity,
        new_user: Option<&User>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        if let Some(u) = new_user {
            insert_user_row(&mut *tx, u).await?;
        }
        sqlx::query(
            "INSERT INTO identities (connection_id, subject, user_id, profile, created_at,
                 last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(identity.connection.as_str())
        .bind(&identity.subject)
        .bind(identity.user.as_str())
        .bind(to_json(&identity.profile)?)
        .bind(identity.created_at.0)
        .bind(identity.last_used_at.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            classify(
                e,
                "identity linked already, or connection or person missing",
            )
        })?;
        tx.commit().await.map_err(backend)
    }

    async fn touch_identity(
        &self,
        connection: &ConnectionId,
        subject: &str,
        profile: &Profile,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE identities SET profile = $1, last_used_at = $2
             WHERE connection_id = $3 AND subject = $4",
        )
        .bind(to_json(profile)?)
        .bind(now.0)
        .bind(connection.as_str())
        .bind(subject)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0)
    }

    async fn insert_email_challenge(&self, c: &EmailChallenge) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO email_challenges (id, email, code_hash, link_hash, browser_hash,
                 return_to, resource_id, created_at, expires_at, attempts, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.id.as_str())
        .bind(&c.email)
        .bind(c.code_hash.as_str())
        .bind(c.link_hash.as_str())
        .bind(c.browser_hash.as_str())
        .bind(&c.return_to)
        .bind(c.server.as_ref().map(ResourceId::as_str))
        .bind(c.created_at.0)
        .bind(c.expires_at.0)
        .bind(i64::from(c.attempts))
        .bind(c.used_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "email challenge exists"))?;
        Ok(())
    }

    async fn email_challenge(
        &self,
        cid: &EmailChallengeId,
    ) -> Result<Option<EmailChallenge>, StoreError> {
        sqlx::query("SELECT * FROM email_challenges WHERE id = $1")
            .bind(cid.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(email_challenge_from_row)
            .transpose()
    }

    async fn email_challenges_since(
        &self,
        email: &str,
        since: UnixTime,
    ) -> Result<Vec<EmailChallenge>, StoreError> {
        sqlx::query("SELECT * FROM email_challenges WHERE email = $1 AND created_at >= $2")
            .bind(email)
            .bind(since.0)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(email_challenge_from_row)
            .collect()
    }

    async fn count_email_attempt(&self, cid: &EmailChallengeId) -> Result<u32, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE email_challenges SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(cid.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        u32::try_from(n.unwrap_or(0)).map_err(|_| corrupt("attempts"))
    }

    async fn use_email_challenge(
        &self,
        cid: &EmailChallengeId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE email_challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL",
        )
        .bind(now.0)
        .bind(cid.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected()
            > 0)
    }
}

#[async_trait]
impl PasskeyStore for PgStore {
    async fn insert_passkey(&self, p: &StoredPasskey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, name, credential, created_at,
                 last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(p.id.as_str())
        .bind(p.user.as_str())
        .bind(&p.credential_id)
        .bind(&p.name)
        .bind(&p.credential)
        .bind(p.created_at.0)
        .bind(p.last_used_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "passkey exists, or person missing"))?;
        Ok(())
    }

    async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<StoredPasskey>, StoreError> {
        sqlx::query("SELECT * FROM passkeys WHERE credential_id = $1")
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(passkey_from_row)
            .transpose()
    }

    async fn passkeys_of(&self, user: &UserId) -> Result<Vec<StoredPasskey>, StoreError> {
        sqlx::query("SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at, seq")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(passkey_from_row)
            .collect()
    }

    async fn touch_passkey(
        &self,
        pid: &PasskeyId,
        credential: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3")
                .bind(credential)
                .bind(now.0)
                .bind(pid.as_str())
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected()
                > 0,
        )
    }

    async fn delete_passkey(&self, user: &UserId, pid: &PasskeyId) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                .bind(pid.as_str())
                .bind(user.as_str())
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected()
                > 0,
        )
    }

    async fn insert_passkey_ceremony(&self, c: &PasskeyCeremony) -> Result<(), StoreError> {
        let (purpose, user) = match &c.purpose {
            CeremonyPurpose::Register(u) => ("register", Some(u.as_str())),
            CeremonyPurpose::SignIn => ("sign_in", None),
        };
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id, purpose, user_id, state, browser_hash,
                 return_to, resource_id, created_at, expires_at, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(c.id.as_str())
        .bind(purpose)
        .bind(user)
        .bind(&c.state)
        .bind(c.browser_hash.as_str())
        .bind(&c.return_to)
        .bind(c.server.as_ref().map(ResourceId::as_str))
        .bind(c.created_at.0)
        .bind(c.expires_at.0)
        .bind(c.used_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(|e| classify(e, "passkey ceremony exists, or person missing"))?;
        Ok(())
    }

    async fn take_passkey_ceremony(
        &self,
        cid: &PasskeyCeremonyId,
        now: UnixTime,
    ) -> Result<Option<PasskeyCeremony>, StoreError> {
        self.take_once("passkey_ceremonies", cid.as_str(), now, ceremony_from_row)
            .await
    }
}

/// Test support: a fresh store in a schema of its own, on the server the tests were given.
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    use std::str::FromStr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sqlx::postgres::PgConnectOptions;

    use super::{PgStore, PoolSettings};

    /// `TEST_POSTGRES_URL`, which `scripts/test.sh` sets (not `GATEHOUSE_…`: every such
    /// variable is a setting to the server). Without it the PostgreSQL tests are skipped,
    /// except under CI, where they fail.
    pub fn database_url() -> Option<String> {
        match std::env::var("TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                assert!(
                    std::env::var("CI").is_err(),
                    "CI must run the PostgreSQL tests: set TEST_POSTGRES_URL (scripts/postgres.sh)"
                );
                eprintln!("TEST_POSTGRES_URL is not set: PostgreSQL tests skipped");
                None
            }
        }
    }

    /// A new, empty schema on `url`, named after `name` and this process; returns its name.
    pub async fn fresh_schema(url: &str, name: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "t_{name}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let options = PgConnectOptions::from_str(url).expect("a PostgreSQL URL");
        let admin = sqlx::PgPool::connect_with(options)
            .await
            .expect("the test database answers");
        for sql in [
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            format!("CREATE SCHEMA {schema}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&admin)
                .await
                .expect("a schema for the test");
        }
        admin.close().await;
        schema
    }

    /// `url` with `schema` first on the search path, for another process (`gatehouse
    /// --database-url …`).
    pub fn url_in(url: &str, schema: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20search_path%3D{schema}")
    }

    /// A store in a fresh schema.
    pub async fn store(url: &str, name: &str) -> PgStore {
        let schema = fresh_schema(url, name).await;
        PgStore::connect(&url_in(url, &schema), PoolSettings::default())
            .await
            .expect("the store opens")
    }
}

#[cfg(test)]
mod tests {
    use super::testing;
    use super::*;

    #[tokio::test]
    async fn postgres_passes_the_contract() {
        let Some(url) = testing::database_url() else {
            return;
        };
        gatehouse_core::contract::run_all(|| testing::store(&url, "contract")).await;
    }

    #[tokio::test]
    async fn migrations_are_required_until_applied_once() {
        let Some(url) = testing::database_url() else {
            return;
        };
        let db = testing::url_in(&url, &testing::fresh_schema(&url, "migrate").await);
        let open = |m| PgStore::connect_migrating(&db, PoolSettings::default(), m);
        let err = open(Migrations::Require)
            .await
            .err()
            .expect("an unmigrated database is refused");
        assert!(err.to_string().contains("gatehouse migrate"), "{err}");
        let store = open(Migrations::Leave).await.unwrap();
        let pending = store.migration_status().await.unwrap().pending;
        assert!(!pending.is_empty());
        assert_eq!(store.migrate().await.unwrap(), pending);
        assert_eq!(store.migrate().await.unwrap(), vec![], "once");
        store.pool.close().await;
        let store = open(Migrations::Require).await.unwrap();
        assert_eq!(
            store.migration_status().await.unwrap(),
            MigrationStatus::default()
        );
    }
}
