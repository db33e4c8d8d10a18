//! Reading records out of rows, for every backend: a row gives up its cells through
//! [`Cells`], and each `*_from_row` function turns one row into a core record, checking what
//! it reads. The SQL that fetched the row is the backend's own.

use gatehouse_core::audit::{AuditEvent, EventType, Outcome};
use gatehouse_core::email_code::EmailChallenge;
use gatehouse_core::keys::{SigningAlg, StoredKey};
use gatehouse_core::model::{
    ApiKey, Client, ClientKind, RefreshPolicy, Resource, ScopeDef, TokenAuthMethod, User,
};
use gatehouse_core::passkey::{CeremonyPurpose, PasskeyCeremony, StoredPasskey};
use gatehouse_core::records::{CodeRecord, Consent, Grant, RefreshRecord, RetryAnswer, Session};
use gatehouse_core::redirect::RedirectUri;
use gatehouse_core::secret::SecretHash;
use gatehouse_core::signin::{Connection, ConnectionKind, Identity, LoginRequest, Method};
use gatehouse_core::store::{RevokedClient, RevokedToken, StoreError};
use gatehouse_core::types::{
    ApiKeyId, ConnectionId, EmailChallengeId, LoginRequestId, PasskeyCeremonyId, PasskeyId,
};
use gatehouse_core::{ClientId, GrantId, Kid, ResourceId, ResourceUri, ScopeSet, UnixTime, UserId};
use sqlx::Row;

/// The cells of a row, by column name, in the types the schemas use: text, 64-bit integers,
/// booleans and bytes.
pub(crate) trait Cells {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// A time in Unix seconds.
    fn time(&self, column: &str) -> Result<UnixTime, StoreError> {
        self.int(column).map(UnixTime)
    }

    fn opt_time(&self, column: &str) -> Result<Option<UnixTime>, StoreError> {
        Ok(self.opt_int(column)?.map(UnixTime))
    }

    /// An id, parsed with `parse`.
    fn id<T, E: std::fmt::Display>(
        &self,
        column: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(&self.text(column)?).map_err(|e| StoreError::Backend(format!("{column}: {e}")))
    }

    fn opt_id<T, E: std::fmt::Display>(
        &self,
        column: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        self.opt_text(column)?
            .map(|s| parse(&s).map_err(|e| StoreError::Backend(format!("{column}: {e}"))))
            .transpose()
    }

    /// A JSON document, as `T`.
    fn json<T: serde::de::DeserializeOwned>(
        &self,
        column: &str,
        what: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(column)?).map_err(|_| corrupt(what))
    }
}

macro_rules! cells {
    ($row:ty) => {
        impl Cells for $row {
            fn text(&self, column: &str) -> Result<String, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError> {
                self.try_get(column).map_err(backend)
            }
            fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError> {
                self.try_get(column).map_err(backend)
            }
        }
    };
}

cells!(sqlx::sqlite::SqliteRow);
cells!(sqlx::postgres::PgRow);

/// A database error: `Unavailable` when the database could not be reached (no connection in
/// time, a connection lost or refused, the server shutting down), else `Backend`.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    let lost = match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now; class 08:
        // connection exceptions.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    };
    if lost {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// Maps unique and foreign-key violations to `Conflict`, everything else to `Backend`.
pub(crate) fn classify(e: sqlx::Error, what: &str) -> StoreError {
    if let Some(db) = e.as_database_error()
        && (db.is_unique_violation() || db.is_foreign_key_violation())
    {
        return StoreError::Conflict(format!("{what}: {}", db.message()));
    }
    backend(e)
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is not valid"))
}

/// A JSON document to store.
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

/// An MCP server's own sign-in methods as stored: a JSON array, or NULL for the defaults.
pub(crate) fn methods_json(r: &Resource) -> Result<Option<String>, StoreError> {
    r.sign_in_methods.as_ref().map(to_json).transpose()
}

pub(crate) fn resource_from_row(row: &impl Cells) -> Result<Resource, StoreError> {
    let scopes: Vec<ScopeDef> = row.json("scopes", "scopes")?;
    Ok(Resource {
        id: row.id("id", ResourceId::parse)?,
        name: row.text("name")?,
        url: row.id("url", ResourceUri::parse)?,
        scopes,
        token_ttl: u32::try_from(row.int("token_ttl")?).map_err(|_| corrupt("token lifetime"))?,
        signing_alg: SigningAlg::parse(&row.text("signing_alg")?).ok_or_else(|| corrupt("alg"))?,
        dynamic_registration: row.flag("dynamic_registration")?,
        metadata_documents: row.flag("metadata_documents")?,
        private_use_redirects: row.flag("private_use_redirects")?,
        refresh_tokens: RefreshPolicy::parse(&row.text("refresh_tokens")?)
            .ok_or_else(|| corrupt("refresh-token policy"))?,
        sign_in_methods: row
            .opt_text("sign_in_methods")?
            .map(|m| serde_json::from_str(&m).map_err(|_| corrupt("sign-in methods")))
            .transpose()?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn client_from_row(row: &impl Cells) -> Result<Client, StoreError> {
    // A URI registered under older, looser rules that no longer holds is dropped, not fatal:
    // it could not be used any more, and the rest of the client stays readable.
    let stored: Vec<String> = row.json("redirect_uris", "redirect URIs")?;
    let redirect_uris = stored
        .iter()
        .filter_map(|u| {
            RedirectUri::parse(u)
                .inspect_err(|e| tracing::warn!(error = %e, "stored redirect URI dropped"))
                .ok()
        })
        .collect();
    Ok(Client {
        id: row.id("id", ClientId::parse)?,
        resource: row.opt_id("resource_id", ResourceId::parse)?,
        name: row.text("name")?,
        kind: ClientKind::parse(&row.text("kind")?).ok_or_else(|| corrupt("client kind"))?,
        secret_hash: row.opt_text("secret_hash")?.map(SecretHash::from_stored),
        scopes: ScopeSet::parse(&row.text("scopes")?).map_err(|_| corrupt("scopes"))?,
        redirect_uris,
        auth_method: TokenAuthMethod::parse(&row.text("auth_method")?)
            .ok_or_else(|| corrupt("auth method"))?,
        metadata: row.json("metadata", "metadata")?,
        registration_token_hash: row
            .opt_text("registration_token_hash")?
            .map(SecretHash::from_stored),
        created_at: row.time("created_at")?,
        last_used_at: row.opt_time("last_used_at")?,
        disabled_at: row.opt_time("disabled_at")?,
        tokens_revoked_at: row.opt_time("tokens_revoked_at")?,
    })
}

pub(crate) fn key_from_row(row: &impl Cells) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: Kid::new(row.text("kid")?),
        alg: SigningAlg::parse(&row.text("alg")?).ok_or_else(|| corrupt("key algorithm"))?,
        private_pkcs8: row.bytes("private_pkcs8")?,
        created_at: row.time("created_at")?,
        activates_at: row.time("activates_at")?,
    })
}

pub(crate) fn revoked_token_from_row(row: &impl Cells) -> Result<RevokedToken, StoreError> {
    Ok(RevokedToken {
        jti: row.text("jti")?,
        resource: row.id("resource_id", ResourceId::parse)?,
        client: row.id("client_id", ClientId::parse)?,
        expires_at: row.time("expires_at")?,
        revoked_at: row.time("revoked_at")?,
    })
}

pub(crate) fn revoked_client_from_row(row: &impl Cells) -> Result<RevokedClient, StoreError> {
    Ok(RevokedClient {
        client: row.id("client_id", ClientId::parse)?,
        resource: row.opt_id("resource_id", ResourceId::parse)?,
        revoked_at: row.time("revoked_at")?,
        expires_at: row.time("expires_at")?,
    })
}

pub(crate) fn user_from_row(row: &impl Cells) -> Result<User, StoreError> {
    Ok(User {
        id: row.id("id", UserId::parse)?,
        email: row.text("email")?,
        password_hash: row.text("password_hash")?,
        admin: row.flag("admin")?,
        created_at: row.time("created_at")?,
        disabled_at: row.opt_time("disabled_at")?,
    })
}

pub(crate) fn api_key_from_row(row: &impl Cells) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: row.id("id", ApiKeyId::parse)?,
        name: row.text("name")?,
        user: row.id("user_id", UserId::parse)?,
        secret_hash: SecretHash::from_stored(row.text("secret_hash")?),
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

pub(crate) fn session_from_row(row: &impl Cells) -> Result<Session, StoreError> {
    Ok(Session {
        hash: SecretHash::from_stored(row.text("hash")?),
        user: row.id("user_id", UserId::parse)?,
        created_at: row.time("created_at")?,
        last_seen_at: row.time("last_seen_at")?,
        method: Method::parse(&row.text("method")?).map_err(|_| corrupt("sign-in method"))?,
    })
}

pub(crate) fn consent_from_row(row: &impl Cells) -> Result<Consent, StoreError> {
    Ok(Consent {
        user: row.id("user_id", UserId::parse)?,
        client: row.id("client_id", ClientId::parse)?,
        resource: row.id("resource_id", ResourceId::parse)?,
        scopes: ScopeSet::parse(&row.text("scopes")?).map_err(|_| corrupt("scopes"))?,
        granted_at: row.time("granted_at")?,
    })
}

pub(crate) fn grant_from_row(row: &impl Cells) -> Result<Grant, StoreError> {
    Ok(Grant {
        id: GrantId::from_stored(row.text("id")?),
        client: row.id("client_id", ClientId::parse)?,
        user: row.id("user_id", UserId::parse)?,
        resource: row.id("resource_id", ResourceId::parse)?,
        issuer: row.text("issuer")?,
        scopes: ScopeSet::parse(&row.text("scopes")?).map_err(|_| corrupt("scopes"))?,
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

pub(crate) fn code_from_row(row: &impl Cells) -> Result<CodeRecord, StoreError> {
    Ok(CodeRecord {
        hash: SecretHash::from_stored(row.text("hash")?),
        grant: GrantId::from_stored(row.text("grant_id")?),
        redirect_uri: row.text("redirect_uri")?,
        redirect_uri_sent: row.flag("redirect_uri_sent")?,
        challenge: row.text("challenge")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
    })
}

pub(crate) fn refresh_from_row(row: &impl Cells) -> Result<RefreshRecord, StoreError> {
    let retry = match (
        row.opt_text("retry_request_hash")?,
        row.opt_bytes("retry_sealed")?,
    ) {
        (Some(r), Some(sealed)) => Some(RetryAnswer {
            request_hash: SecretHash::from_stored(r),
            sealed,
        }),
        _ => None,
    };
    Ok(RefreshRecord {
        hash: SecretHash::from_stored(row.text("hash")?),
        grant: GrantId::from_stored(row.text("grant_id")?),
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        rotated_at: row.opt_time("rotated_at")?,
        retry,
    })
}

pub(crate) fn audit_from_row(row: &impl Cells) -> Result<AuditEvent, StoreError> {
    let name = row.text("event")?;
    let outcome = row.text("outcome")?;
    Ok(AuditEvent {
        seq: Some(row.int("seq")?),
        at: row.time("at")?,
        event: EventType::parse(&name)
            .ok_or_else(|| StoreError::Backend(format!("unknown audit event {name}")))?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| StoreError::Backend(format!("unknown outcome {outcome}")))?,
        resource: row.opt_text("resource_id")?,
        client: row.opt_text("client_id")?,
        user: row.opt_text("user_id")?,
        actor: row.opt_text("actor")?,
        details: match serde_json::from_str(&row.text("details")?) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(StoreError::Backend(
                    "audit details are not an object".into(),
                ));
            }
        },
    })
}

pub(crate) fn connection_from_row(row: &impl Cells) -> Result<Connection, StoreError> {
    Ok(Connection {
        id: row.id("id", ConnectionId::parse)?,
        name: row.text("name")?,
        kind: row.json::<ConnectionKind>("config", "connection settings")?,
        allowed_domains: row.json("allowed_domains", "allowed domains")?,
        enabled: row.flag("enabled")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn email_challenge_from_row(row: &impl Cells) -> Result<EmailChallenge, StoreError> {
    Ok(EmailChallenge {
        id: row.id("id", EmailChallengeId::parse)?,
        email: row.text("email")?,
        code_hash: SecretHash::from_stored(row.text("code_hash")?),
        link_hash: SecretHash::from_stored(row.text("link_hash")?),
        browser_hash: SecretHash::from_stored(row.text("browser_hash")?),
        return_to: row.text("return_to")?,
        server: row.opt_id("resource_id", ResourceId::parse)?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        attempts: u32::try_from(row.int("attempts")?).map_err(|_| corrupt("attempts"))?,
        used_at: row.opt_time("used_at")?,
    })
}

pub(crate) fn passkey_from_row(row: &impl Cells) -> Result<StoredPasskey, StoreError> {
    Ok(StoredPasskey {
        id: row.id("id", PasskeyId::parse)?,
        user: row.id("user_id", UserId::parse)?,
        credential_id: row.text("credential_id")?,
        name: row.text("name")?,
        credential: row.text("credential")?,
        created_at: row.time("created_at")?,
        last_used_at: row.opt_time("last_used_at")?,
    })
}

pub(crate) fn ceremony_from_row(row: &impl Cells) -> Result<PasskeyCeremony, StoreError> {
    let purpose = match (
        row.text("purpose")?.as_str(),
        row.opt_id("user_id", UserId::parse)?,
    ) {
        ("register", Some(u)) => CeremonyPurpose::Register(u),
        ("sign_in", None) => CeremonyPurpose::SignIn,
        _ => return Err(corrupt("passkey ceremony purpose")),
    };
    Ok(PasskeyCeremony {
        id: row.id("id", PasskeyCeremonyId::parse)?,
        purpose,
        state: row.text("state")?,
        browser_hash: SecretHash::from_stored(row.text("browser_hash")?),
        return_to: row.text("return_to")?,
        server: row.opt_id("resource_id", ResourceId::parse)?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
    })
}

pub(crate) fn login_request_from_row(row: &impl Cells) -> Result<LoginRequest, StoreError> {
    Ok(LoginRequest {
        id: row.id("id", LoginRequestId::parse)?,
        connection: row.id("connection_id", ConnectionId::parse)?,
        state_hash: SecretHash::from_stored(row.text("state_hash")?),
        browser_hash: SecretHash::from_stored(row.text("browser_hash")?),
        return_to: row.text("return_to")?,
        server: row.opt_id("resource_id", ResourceId::parse)?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        profile: row
            .opt_text("profile")?
            .map(|p| serde_json::from_str(&p).map_err(|_| corrupt("profile")))
            .transpose()?,
        used_at: row.opt_time("used_at")?,
    })
}

pub(crate) fn identity_from_row(row: &impl Cells) -> Result<Identity, StoreError> {
    Ok(Identity {
        connection: row.id("connection_id", ConnectionId::parse)?,
        subject: row.text("subject")?,
        user: row.id("user_id", UserId::parse)?,
        profile: row.json("profile", "profile")?,
        created_at: row.time("created_at")?,
        last_used_at: row.time("last_used_at")?,
    })
}

/// What a clean-up pass deletes by time, the same in both databases: `(table, condition on
/// one bound time written `{t}`, the time)`. Grants go a while after they were made, once no refresh
/// token of theirs is left (`old_grants`).
pub(crate) fn prune_by_time(
    p: &gatehouse_core::records::Prune,
    old_grants: i64,
) -> [(&'static str, &'static str, i64); 13] {
    let now = p.now.0;
    [
        ("audit_events", "at < {t}", p.audit_before.0),
        ("revoked_clients", "expires_at <= {t}", now),
        ("authorization_codes", "expires_at <= {t}", now),
        ("refresh_tokens", "expires_at <= {t}", now),
        ("revoked_tokens", "expires_at <= {t}", now),
        ("client_assertions", "expires_at <= {t}", now),
        ("grant_access_tokens", "expires_at <= {t}", now),
        ("sessions", "last_seen_at < {t}", p.sessions_idle_before.0),
        ("sessions", "created_at < {t}", p.sessions_created_before.0),
        ("login_requests", "expires_at <= {t}", now),
        ("email_challenges", "expires_at <= {t}", now),
        ("passkey_ceremonies", "expires_at <= {t}", now),
        (
            "grants",
            "created_at < {t} AND NOT EXISTS
                 (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)",
            old_grants,
        ),
    ]
}
