//! An in-memory store for tests and the protocol test suite.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ApiKeyStore, AuditStore, ClientStore, ConsentFilter, GRANT_RETENTION_SECS, GrantStore,
    KeyStore, PasskeyStore, ResourceStore, RevocationStore, Revocations, RevokedClient,
    RevokedToken, SessionStore, SignInStore, Store, StoreError, UserStore,
};
use crate::audit::{AuditEvent, AuditQuery};
use crate::clock::UnixTime;
use crate::email_code::EmailChallenge;
use crate::keys::StoredKey;
use crate::model::{ApiKey, Client, ClientKind, Resource, User};
use crate::passkey::{PasskeyCeremony, StoredPasskey};
use crate::records::{
    CodeRecord, Consent, Grant, Issuance, IssuedAccess, Prune, Pruned, RefreshRecord, Session,
};
use crate::secret::SecretHash;
use crate::signin::{Connection, Identity, LoginRequest, Profile, SignInPolicy};
use crate::types::{
    ApiKeyId, ClientId, ConnectionId, EmailChallengeId, GrantId, LoginRequestId, PasskeyCeremonyId,
    PasskeyId, ResourceId, UserId,
};

#[derive(Default)]
struct State {
    resources: Vec<Resource>,
    clients: Vec<Client>,
    keys: Vec<StoredKey>,
    revoked: Vec<RevokedToken>,
    revoked_clients: Vec<RevokedClient>,
    assertions: std::collections::HashMap<(ClientId, String), UnixTime>,
    users: Vec<User>,
    sessions: Vec<Session>,
    consents: Vec<Consent>,
    grants: Vec<Grant>,
    codes: Vec<CodeRecord>,
    refresh: Vec<RefreshRecord>,
    access: Vec<(GrantId, IssuedAccess)>,
    audit: Vec<AuditEvent>,
    audit_seq: i64,
    api_keys: Vec<ApiKey>,
    policy: Option<SignInPolicy>,
    connections: Vec<Connection>,
    login_requests: Vec<LoginRequest>,
    identities: Vec<Identity>,
    email_challenges: Vec<EmailChallenge>,
    passkeys: Vec<StoredPasskey>,
    ceremonies: Vec<PasskeyCeremony>,
    version: u64,
}

impl State {
    /// Revokes the grants matching `pick`, recording their live access tokens as revoked.
    fn revoke_grants(&mut self, now: UnixTime, pick: impl Fn(&Grant) -> bool) -> usize {
        let mut n = 0;
        for g in self.grants.iter_mut().filter(|g| pick(g)) {
            n += 1;
            if g.revoked_at.is_some() {
                continue;
            }
            g.revoked_at = Some(now);
            for (_, a) in self
                .access
                .iter()
                .filter(|(id, a)| id == &g.id && a.expires_at > now)
            {
                if !self.revoked.iter().any(|t| t.jti == a.jti) {
                    self.revoked.push(RevokedToken {
                        jti: a.jti.clone(),
                        resource: g.resource.clone(),
                        client: g.client.clone(),
                        expires_at: a.expires_at,
                        revoked_at: now,
                    });
                }
            }
        }
        n
    }

    /// Deletes grants matching `pick` and everything hanging off them.
    fn delete_grants(&mut self, pick: impl Fn(&Grant) -> bool) -> u64 {
        let gone: Vec<GrantId> = self
            .grants
            .iter()
            .filter(|g| pick(g))
            .map(|g| g.id.clone())
            .collect();
        self.grants.retain(|g| !gone.contains(&g.id));
        self.codes.retain(|c| !gone.contains(&c.grant));
        self.refresh.retain(|r| !gone.contains(&r.grant));
        self.access.retain(|(g, _)| !gone.contains(g));
        gone.len() as u64
    }
}

/// A [`Store`] held in memory. Every method takes one lock, so each is atomic.
#[derive(Default)]
pub struct MemoryStore(Mutex<State>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock means a panic happened while holding it; the data is plain values
        // and still consistent, since every mutation below is a single push or retain.
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl ResourceStore for MemoryStore {
    async fn insert_resource(&self, resource: &Resource) -> Result<(), StoreError> {
        self.with(|s| {
            let canonical = resource.url.canonical();
            if s.resources.iter().any(|r| r.id == resource.id) {
                return Err(StoreError::Conflict(format!("{} exists", resource.id)));
            }
            if s.resources.iter().any(|r| r.url.canonical() == canonical) {
                return Err(StoreError::Conflict(format!(
                    "an MCP server with URL {} exists",
                    resource.url
                )));
            }
            s.resources.push(resource.clone());
            s.version += 1;
            Ok(())
        })
    }

    async fn resource(&self, id: &ResourceId) -> Result<Option<Resource>, StoreError> {
        Ok(self.with(|s| s.resources.iter().find(|r| &r.id == id).cloned()))
    }

    async fn update_resource(&self, resource: &Resource) -> Result<bool, StoreError> {
        self.with(|s| {
            let canonical = resource.url.canonical();
            if s.resources
                .iter()
                .any(|r| r.id != resource.id && r.url.canonical() == canonical)
            {
                return Err(StoreError::Conflict(format!(
                    "an MCP server with URL {} exists",
                    resource.url
                )));
            }
            let Some(r) = s.resources.iter_mut().find(|r| r.id == resource.id) else {
                return Ok(false);
            };
            *r = Resource {
                created_at: r.created_at,
                ..resource.clone()
            };
            s.version += 1;
            Ok(true)
        })
    }

    async fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        Ok(self.with(|s| s.resources.clone()))
    }

    async fn delete_resource(&self, id: &ResourceId) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.resources.len();
            s.resources.retain(|r| &r.id != id);
            let removed = s.resources.len() != before;
            if removed {
                s.clients.retain(|c| c.resource.as_ref() != Some(id));
                s.consents.retain(|c| &c.resource != id);
                s.delete_grants(|g| &g.resource == id);
                s.version += 1;
            }
            removed
        }))
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.with(|s| {
            if s.clients.iter().any(|c| c.id == client.id) {
                return Err(StoreError::Conflict(format!("{} exists", client.id)));
            }
            if let Some(r) = &client.resource
                && !s.resources.iter().any(|x| &x.id == r)
            {
                return Err(StoreError::Conflict(format!("no MCP server {r}")));
            }
            s.clients.push(client.clone());
            s.version += 1;
            Ok(())
        })
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        Ok(self.with(|s| s.clients.iter().find(|c| &c.id == id).cloned()))
    }

    async fn clients(&self, resource: Option<&ResourceId>) -> Result<Vec<Client>, StoreError> {
        Ok(self.with(|s| {
            s.clients
                .iter()
                .filter(|c| resource.is_none_or(|r| c.resource.as_ref() == Some(r)))
                .cloned()
                .collect()
        }))
    }

    async fn delete_client(&self, id: &ClientId, now: UnixTime) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(gone) = s.clients.iter().position(|c| &c.id == id) else {
                return false;
            };
            let client = s.clients.remove(gone);
            s.revoked_clients.retain(|r| &r.client != id);
            s.revoked_clients.push(RevokedClient {
                client: client.id,
                resource: client.resource,
                revoked_at: now,
                expires_at: now.plus(GRANT_RETENTION_SECS),
            });
            s.consents.retain(|c| &c.client != id);
            // The grants go; their live access tokens stay listed as revoked.
            s.revoke_grants(now, |g| &g.client == id);
            s.delete_grants(|g| &g.client == id);
            s.version += 1;
            true
        }))
    }

    async fn replace_client_secret(
        &self,
        id: &ClientId,
        secret_hash: &SecretHash,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(c) = s.clients.iter_mut().find(|c| &c.id == id) else {
                return false;
            };
            c.secret_hash = Some(secret_hash.clone());
            s.version += 1;
            true
        }))
    }

    async fn set_client_disabled(
        &self,
        id: &ClientId,
        disabled: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(c) = s.clients.iter_mut().find(|c| &c.id == id) else {
                return false;
            };
            c.disabled_at = disabled;
            let resource = c.resource.clone();
            if let Some(now) = disabled {
                c.tokens_revoked_at = Some(now);
                s.revoked_clients.retain(|r| &r.client != id);
                s.revoked_clients.push(RevokedClient {
                    client: id.clone(),
                    resource,
                    revoked_at: now,
                    expires_at: now.plus(GRANT_RETENTION_SECS),
                });
                s.revoke_grants(now, |g| &g.client == id);
            }
            s.version += 1;
            true
        }))
    }

    async fn touch_client(&self, id: &ClientId, now: UnixTime) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some(c) = s.clients.iter_mut().find(|c| &c.id == id) {
                c.last_used_at = Some(now);
            }
        });
        Ok(())
    }

    async fn use_client_assertion(
        &self,
        client: &ClientId,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let key = (client.clone(), jti.to_owned());
            match s.assertions.get(&key) {
                Some(exp) if exp.0 > now.0 => false,
                _ => {
                    s.assertions.insert(key, expires_at);
                    true
                }
            }
        }))
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        self.with(|s| {
            if s.users
                .iter()
                .any(|u| u.id == user.id || u.email == user.email)
            {
                return Err(StoreError::Conflict(format!(
                    "a user with email {} exists",
                    user.email
                )));
            }
            s.users.push(user.clone());
            Ok(())
        })
    }

    async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.with(|s| s.users.iter().find(|u| &u.id == id).cloned()))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        Ok(self.with(|s| s.users.iter().find(|u| u.email == email).cloned()))
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.with(|s| s.users.clone()))
    }

    async fn delete_user(&self, id: &UserId, now: UnixTime) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.users.len();
            s.users.retain(|u| &u.id != id);
            let removed = s.users.len() != before;
            if removed {
                s.sessions.retain(|x| &x.user != id);
                s.consents.retain(|c| &c.user != id);
                s.revoke_grants(now, |g| &g.user == id);
                s.delete_grants(|g| &g.user == id);
                s.api_keys.retain(|k| &k.user != id);
                s.identities.retain(|i| &i.user != id);
                s.passkeys.retain(|p| &p.user != id);
            }
            removed
        }))
    }

    async fn set_admin(&self, id: &UserId, admin: bool) -> Result<bool, StoreError> {
        Ok(
            self.with(|s| match s.users.iter_mut().find(|u| &u.id == id) {
                Some(u) => {
                    u.admin = admin;
                    true
                }
                None => false,
            }),
        )
    }

    async fn set_user_disabled(
        &self,
        id: &UserId,
        disabled: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(u) = s.users.iter_mut().find(|u| &u.id == id) else {
                return false;
            };
            u.disabled_at = disabled;
            if let Some(now) = disabled {
                s.sessions.retain(|x| &x.user != id);
                s.revoke_grants(now, |g| &g.user == id);
            }
            true
        }))
    }

    async fn set_password(&self, id: &UserId, password_hash: &str) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(u) = s.users.iter_mut().find(|u| &u.id == id) else {
                return false;
            };
            u.password_hash = password_hash.to_owned();
            s.sessions.retain(|x| &x.user != id);
            true
        }))
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.with(|s| {
            if s.sessions.iter().any(|x| x.hash == session.hash) {
                return Err(StoreError::Conflict("session exists".into()));
            }
            if !s.users.iter().any(|u| u.id == session.user) {
                return Err(StoreError::Conflict(format!("no user {}", session.user)));
            }
            s.sessions.push(session.clone());
            Ok(())
        })
    }

    async fn session(&self, hash: &SecretHash) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|s| s.sessions.iter().find(|x| &x.hash == hash).cloned()))
    }

    async fn touch_session(&self, hash: &SecretHash, now: UnixTime) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some(x) = s.sessions.iter_mut().find(|x| &x.hash == hash) {
                x.last_seen_at = now;
            }
        });
        Ok(())
    }

    async fn delete_session(&self, hash: &SecretHash) -> Result<(), StoreError> {
        self.with(|s| s.sessions.retain(|x| &x.hash != hash));
        Ok(())
    }

    async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        let mut found: Vec<Session> = self.with(|s| {
            s.sessions
                .iter()
                .filter(|x| &x.user == user)
                .cloned()
                .collect()
        });
        found.sort_by_key(|x| std::cmp::Reverse(x.last_seen_at));
        Ok(found)
    }

    async fn delete_sessions_of(&self, user: &UserId) -> Result<u64, StoreError> {
        Ok(self.with(|s| {
            let before = s.sessions.len();
            s.sessions.retain(|x| &x.user != user);
            (before - s.sessions.len()) as u64
        }))
    }
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn consent(
        &self,
        user: &UserId,
        client: &ClientId,
        resource: &ResourceId,
    ) -> Result<Option<Consent>, StoreError> {
        Ok(self.with(|s| {
            s.consents
                .iter()
                .find(|c| &c.user == user && &c.client == client && &c.resource == resource)
                .cloned()
        }))
    }

    async fn save_consent(&self, consent: &Consent) -> Result<(), StoreError> {
        self.with(|s| {
            s.consents.retain(|c| {
                !(c.user == consent.user
                    && c.client == consent.client
                    && c.resource == consent.resource)
            });
            s.consents.push(consent.clone());
        });
        Ok(())
    }

    async fn consents(&self, f: &ConsentFilter) -> Result<Vec<Consent>, StoreError> {
        Ok(self.with(|s| {
            let mut list: Vec<Consent> = s
                .consents
                .iter()
                .filter(|c| {
                    f.user.as_ref().is_none_or(|u| &c.user == u)
                        && f.client.as_ref().is_none_or(|x| &c.client == x)
                        && f.resource.as_ref().is_none_or(|r| &c.resource == r)
                })
                .cloned()
                .collect();
            list.sort_by_key(|c| c.granted_at);
            list
        }))
    }

    async fn revoke_consent(
        &self,
        user: &UserId,
        client: &ClientId,
        resource: &ResourceId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.consents.len();
            s.consents
                .retain(|c| !(&c.user == user && &c.client == client && &c.resource == resource));
            let of = |g: &Grant| &g.user == user && &g.client == client && &g.resource == resource;
            let live = s.grants.iter().any(|g| of(g) && g.revoked_at.is_none());
            s.revoke_grants(now, of);
            s.consents.len() != before || live
        }))
    }

    async fn insert_code(&self, grant: &Grant, code: &CodeRecord) -> Result<(), StoreError> {
        self.with(|s| {
            if s.grants.iter().any(|g| g.id == grant.id)
                || s.codes.iter().any(|c| c.hash == code.hash)
            {
                return Err(StoreError::Conflict("grant or code exists".into()));
            }
            s.grants.push(grant.clone());
            s.codes.push(code.clone());
            Ok(())
        })
    }

    async fn take_code(
        &self,
        hash: &SecretHash,
        now: UnixTime,
    ) -> Result<Option<CodeRecord>, StoreError> {
        Ok(self.with(|s| {
            let c = s.codes.iter_mut().find(|c| &c.hash == hash)?;
            let before = c.clone();
            if c.used_at.is_none() {
                c.used_at = Some(now);
            }
            Some(before)
        }))
    }

    async fn grant(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        Ok(self.with(|s| s.grants.iter().find(|g| &g.id == id).cloned()))
    }

    async fn record_issue(&self, issue: &Issuance) -> Result<(), StoreError> {
        self.with(|s| {
            let active = s
                .grants
                .iter()
                .any(|g| g.id == issue.grant && g.revoked_at.is_none());
            if !active {
                return Err(StoreError::Conflict(format!(
                    "grant {} is missing or revoked",
                    issue.grant
                )));
            }
            if let Some(rot) = &issue.rotates {
                let Some(old) = s
                    .refresh
                    .iter_mut()
                    .find(|r| r.hash == rot.old && r.rotated_at.is_none())
                else {
                    return Err(StoreError::Conflict("refresh token already rotated".into()));
                };
                old.rotated_at = Some(rot.at);
                old.retry = rot.retry.clone();
            }
            s.access.push((issue.grant.clone(), issue.access.clone()));
            if let Some(r) = &issue.refresh {
                s.refresh.push(r.clone());
            }
            Ok(())
        })
    }

    async fn refresh_token(&self, hash: &SecretHash) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(self.with(|s| s.refresh.iter().find(|r| &r.hash == hash).cloned()))
    }

    async fn revoke_grant(&self, id: &GrantId, now: UnixTime) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.revoke_grants(now, |g| &g.id == id) > 0))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.with(|s| {
            if s.keys.iter().any(|k| k.kid == key.kid) {
                return Err(StoreError::Conflict(format!("key {} exists", key.kid)));
            }
            s.keys.push(key.clone());
            s.version += 1;
            Ok(())
        })
    }

    async fn insert_key_unless(&self, key: &StoredKey, from: UnixTime) -> Result<bool, StoreError> {
        self.with(|s| {
            if s.keys
                .iter()
                .any(|k| k.alg == key.alg && k.activates_at >= from)
            {
                return Ok(false);
            }
            if s.keys.iter().any(|k| k.kid == key.kid) {
                return Err(StoreError::Conflict(format!("key {} exists", key.kid)));
            }
            s.keys.push(key.clone());
            s.version += 1;
            Ok(true)
        })
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        Ok(self.with(|s| s.keys.clone()))
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn revoke_token(&self, token: &RevokedToken) -> Result<(), StoreError> {
        self.with(|s| {
            if !s.revoked.iter().any(|t| t.jti == token.jti) {
                s.revoked.push(token.clone());
            }
        });
        Ok(())
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.revoked.iter().any(|t| t.jti == jti)))
    }

    async fn revocations_since(
        &self,
        resource: &ResourceId,
        since: UnixTime,
        now: UnixTime,
    ) -> Result<Revocations, StoreError> {
        Ok(self.with(|s| {
            let mut tokens: Vec<RevokedToken> = s
                .revoked
                .iter()
                .filter(|t| &t.resource == resource && t.revoked_at >= since && t.expires_at > now)
                .cloned()
                .collect();
            tokens.sort_by_key(|t| t.revoked_at);
            let mut clients: Vec<RevokedClient> = s
                .revoked_clients
                .iter()
                .filter(|c| {
                    c.resource.as_ref().is_none_or(|r| r == resource)
                        && c.revoked_at >= since
                        && c.expires_at > now
                })
                .cloned()
                .collect();
            clients.sort_by_key(|c| c.revoked_at);
            Revocations { tokens, clients }
        }))
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn insert_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.with(|s| {
            if !s.users.iter().any(|u| u.id == key.user) {
                return Err(StoreError::Conflict(format!("no user {}", key.user)));
            }
            if s.api_keys
                .iter()
                .any(|k| k.id == key.id || k.secret_hash == key.secret_hash)
            {
                return Err(StoreError::Conflict("API key exists".into()));
            }
            s.api_keys.push(key.clone());
            Ok(())
        })
    }

    async fn api_key(&self, secret_hash: &SecretHash) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.with(|s| {
            s.api_keys
                .iter()
                .find(|k| &k.secret_hash == secret_hash)
                .cloned()
        }))
    }

    async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.with(|s| s.api_keys.clone()))
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, now: UnixTime) -> Result<bool, StoreError> {
        Ok(
            self.with(|s| match s.api_keys.iter_mut().find(|k| &k.id == id) {
                Some(k) => {
                    k.revoked_at.get_or_insert(now);
                    true
                }
                None => false,
            }),
        )
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.with(|s| {
            for e in events {
                s.audit_seq += 1;
                s.audit.push(AuditEvent {
                    seq: Some(s.audit_seq),
                    ..e.clone()
                });
            }
        });
        Ok(())
    }

    async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self.with(|s| {
            s.audit
                .iter()
                .rev()
                .filter(|e| q.matches(e))
                .take(q.limit as usize)
                .cloned()
                .collect()
        }))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn change_version(&self) -> Result<u64, StoreError> {
        Ok(self.with(|s| s.version))
    }

    async fn prune(&self, p: &Prune) -> Result<Pruned, StoreError> {
        Ok(self.with(|s| {
            let (now, l) = (p.now, p.limit);
            let mut out = Pruned::default();
            out.add(remove_some(&mut s.codes, l, |c| c.expires_at <= now), l);
            out.add(remove_some(&mut s.refresh, l, |r| r.expires_at <= now), l);
            out.add(remove_some(&mut s.revoked, l, |t| t.expires_at <= now), l);
            let before = s.assertions.len();
            s.assertions.retain(|_, exp| *exp > now);
            out.add((before - s.assertions.len()) as u64, l);
            out.add(
                remove_some(&mut s.revoked_clients, l, |c| c.expires_at <= now),
                l,
            );
            out.add(
                remove_some(&mut s.sessions, l, |x| {
                    x.last_seen_at < p.sessions_idle_before
                        || x.created_at < p.sessions_created_before
                }),
                l,
            );
            out.add(
                remove_some(&mut s.login_requests, l, |r| r.expires_at <= now),
                l,
            );
            out.add(
                remove_some(&mut s.email_challenges, l, |c| c.expires_at <= now),
                l,
            );
            out.add(
                remove_some(&mut s.ceremonies, l, |c| c.expires_at <= now),
                l,
            );
            let stale: Vec<ClientId> = s
                .clients
                .iter()
                .filter(|c| {
                    c.kind == ClientKind::Registered
                        && (c.last_used_at.unwrap_or(c.created_at) < p.registrations_unused_before
                            || c.last_used_at.is_none()
                                && c.created_at < p.registrations_never_used_before)
                })
                .map(|c| c.id.clone())
                .take(l as usize)
                .collect();
            if !stale.is_empty() {
                s.clients.retain(|c| !stale.contains(&c.id));
                s.consents.retain(|c| !stale.contains(&c.client));
                s.revoke_grants(now, |g| stale.contains(&g.client));
                out.deleted += s.delete_grants(|g| stale.contains(&g.client));
                out.add(stale.len() as u64, l);
                s.version += 1;
            }
            let old = now.plus(-GRANT_RETENTION_SECS);
            let live: Vec<GrantId> = s.refresh.iter().map(|r| r.grant.clone()).collect();
            let unused: Vec<GrantId> = s
                .grants
                .iter()
                .filter(|g| g.created_at < old && !live.contains(&g.id))
                .map(|g| g.id.clone())
                .take(l as usize)
                .collect();
            out.add(s.delete_grants(|g| unused.contains(&g.id)), l);
            s.access.retain(|(_, a)| a.expires_at > now);
            out.add(remove_some(&mut s.audit, l, |e| e.at < p.audit_before), l);
            out
        }))
    }
}

/// Removes at most `limit` items of `items` that `gone` picks; returns how many went.
fn remove_some<T>(items: &mut Vec<T>, limit: u32, gone: impl Fn(&T) -> bool) -> u64 {
    let mut left = limit;
    items.retain(|x| {
        if left > 0 && gone(x) {
            left -= 1;
            false
        } else {
            true
        }
    });
    u64::from(limit - left)
}

#[async_trait]
impl SignInStore for MemoryStore {
    async fn sign_in_policy(&self) -> Result<Option<SignInPolicy>, StoreError> {
        Ok(self.with(|s| s.policy))
    }

    async fn set_sign_in_policy(&self, policy: &SignInPolicy) -> Result<(), StoreError> {
        self.with(|s| s.policy = Some(*policy));
        Ok(())
    }

    async fn insert_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.with(|s| {
            if s.connections.iter().any(|c| c.id == connection.id) {
                return Err(StoreError::Conflict(format!(
                    "connection {} exists",
                    connection.id
                )));
            }
            s.connections.push(connection.clone());
            Ok(())
        })
    }

    async fn connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        Ok(self.with(|s| s.connections.iter().find(|c| &c.id == id).cloned()))
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        Ok(self.with(|s| s.connections.clone()))
    }

    async fn update_connection(&self, connection: &Connection) -> Result<bool, StoreError> {
        Ok(self.with(
            |s| match s.connections.iter_mut().find(|c| c.id == connection.id) {
                Some(c) => {
                    *c = Connection {
                        created_at: c.created_at,
                        ..connection.clone()
                    };
                    true
                }
                None => false,
            },
        ))
    }

    async fn delete_connection(&self, id: &ConnectionId) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.connections.len();
            s.connections.retain(|c| &c.id != id);
            let removed = s.connections.len() != before;
            if removed {
                s.login_requests.retain(|r| &r.connection != id);
                s.identities.retain(|i| &i.connection != id);
            }
            removed
        }))
    }

    async fn insert_login_request(&self, request: &LoginRequest) -> Result<(), StoreError> {
        self.with(|s| {
            if s.login_requests.iter().any(|r| r.id == request.id) {
                return Err(StoreError::Conflict(format!(
                    "login request {} exists",
                    request.id
                )));
            }
            if !s.connections.iter().any(|c| c.id == request.connection) {
                return Err(StoreError::Conflict(format!(
                    "no connection {}",
                    request.connection
                )));
            }
            s.login_requests.push(request.clone());
            Ok(())
        })
    }

    async fn login_request(&self, id: &LoginRequestId) -> Result<Option<LoginRequest>, StoreError> {
        Ok(self.with(|s| s.login_requests.iter().find(|r| &r.id == id).cloned()))
    }

    async fn set_login_profile(
        &self,
        id: &LoginRequestId,
        profile: &Profile,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            match s
                .login_requests
                .iter_mut()
                .find(|r| &r.id == id && r.profile.is_none() && r.used_at.is_none())
            {
                Some(r) => {
                    r.profile = Some(profile.clone());
                    true
                }
                None => false,
            }
        }))
    }

    async fn take_login_request(
        &self,
        id: &LoginRequestId,
        now: UnixTime,
    ) -> Result<Option<LoginRequest>, StoreError> {
        Ok(self.with(|s| {
            let r = s.login_requests.iter_mut().find(|r| &r.id == id)?;
            let before = r.clone();
            if r.used_at.is_none() {
                r.used_at = Some(now);
            }
            Some(before)
        }))
    }

    async fn identity(
        &self,
        connection: &ConnectionId,
        subject: &str,
    ) -> Result<Option<Identity>, StoreError> {
        Ok(self.with(|s| {
            s.identities
                .iter()
                .find(|i| &i.connection == connection && i.subject == subject)
                .cloned()
        }))
    }

    async fn identities_of(&self, user: &UserId) -> Result<Vec<Identity>, StoreError> {
        Ok(self.with(|s| {
            s.identities
                .iter()
                .filter(|i| &i.user == user)
                .cloned()
                .collect()
        }))
    }

    async fn link_identity(
        &self,
        identity: &Identity,
        new_user: Option<&User>,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            if s.identities
                .iter()
                .any(|i| i.connection == identity.connection && i.subject == identity.subject)
            {
                return Err(StoreError::Conflict(
                    "the identity is linked already".into(),
                ));
            }
            if !s.connections.iter().any(|c| c.id == identity.connection) {
                return Err(StoreError::Conflict(format!(
                    "no connection {}",
                    identity.connection
                )));
            }
            match new_user {
                Some(u) => {
                    if s.users.iter().any(|x| x.id == u.id || x.email == u.email) {
                        return Err(StoreError::Conflict(format!(
                            "a person with the email {} exists",
                            u.email
                        )));
                    }
                    s.users.push(u.clone());
                }
                None if !s.users.iter().any(|x| x.id == identity.user) => {
                    return Err(StoreError::Conflict(format!("no person {}", identity.user)));
                }
                None => {}
            }
            s.identities.push(identity.clone());
            Ok(())
        })
    }

    async fn touch_identity(
        &self,
        connection: &ConnectionId,
        subject: &str,
        profile: &Profile,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            match s
                .identities
                .iter_mut()
                .find(|i| &i.connection == connection && i.subject == subject)
            {
                Some(i) => {
                    i.profile = profile.clone();
                    i.last_used_at = now;
                    true
                }
                None => false,
            }
        }))
    }

    async fn insert_email_challenge(&self, challenge: &EmailChallenge) -> Result<(), StoreError> {
        self.with(|s| {
            if s.email_challenges.iter().any(|c| c.id == challenge.id) {
                return Err(StoreError::Conflict(format!(
                    "email challenge {} exists",
                    challenge.id
                )));
            }
            s.email_challenges.push(challenge.clone());
            Ok(())
        })
    }

    async fn email_challenge(
        &self,
        id: &EmailChallengeId,
    ) -> Result<Option<EmailChallenge>, StoreError> {
        Ok(self.with(|s| s.email_challenges.iter().find(|c| &c.id == id).cloned()))
    }

    async fn email_challenges_since(
        &self,
        email: &str,
        since: UnixTime,
    ) -> Result<Vec<EmailChallenge>, StoreError> {
        Ok(self.with(|s| {
            s.email_challenges
                .iter()
                .filter(|c| c.email == email && c.created_at >= since)
                .cloned()
                .collect()
        }))
    }

    async fn count_email_attempt(&self, id: &EmailChallengeId) -> Result<u32, StoreError> {
        Ok(self.with(
            |s| match s.email_challenges.iter_mut().find(|c| &c.id == id) {
                Some(c) => {
                    c.attempts += 1;
                    c.attempts
                }
                None => 0,
            },
        ))
    }

    async fn use_email_challenge(
        &self,
        id: &EmailChallengeId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            match s
                .email_challenges
                .iter_mut()
                .find(|c| &c.id == id && c.used_at.is_none())
            {
                Some(c) => {
                    c.used_at = Some(now);
                    true
                }
                None => false,
            }
        }))
    }
}

#[async_trait]
impl PasskeyStore for MemoryStore {
    async fn insert_passkey(&self, passkey: &StoredPasskey) -> Result<(), StoreError> {
        self.with(|s| {
            if s.passkeys
                .iter()
                .any(|p| p.id == passkey.id || p.credential_id == passkey.credential_id)
            {
                return Err(StoreError::Conflict("passkey exists".into()));
            }
            if !s.users.iter().any(|u| u.id == passkey.user) {
                return Err(StoreError::Conflict("no such person".into()));
            }
            s.passkeys.push(passkey.clone());
            Ok(())
        })
    }

    async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<StoredPasskey>, StoreError> {
        Ok(self.with(|s| {
            s.passkeys
                .iter()
                .find(|p| p.credential_id == credential_id)
                .cloned()
        }))
    }

    async fn passkeys_of(&self, user: &UserId) -> Result<Vec<StoredPasskey>, StoreError> {
        Ok(self.with(|s| {
            s.passkeys
                .iter()
                .filter(|p| &p.user == user)
                .cloned()
                .collect()
        }))
    }

    async fn touch_passkey(
        &self,
        id: &PasskeyId,
        credential: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(
            self.with(|s| match s.passkeys.iter_mut().find(|p| &p.id == id) {
                Some(p) => {
                    p.credential = credential.to_owned();
                    p.last_used_at = Some(now);
                    true
                }
                None => false,
            }),
        )
    }

    async fn delete_passkey(&self, user: &UserId, id: &PasskeyId) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.passkeys.len();
            s.passkeys.retain(|p| !(&p.id == id && &p.user == user));
            s.passkeys.len() != before
        }))
    }

    async fn insert_passkey_ceremony(&self, ceremony: &PasskeyCeremony) -> Result<(), StoreError> {
        self.with(|s| {
            if s.ceremonies.iter().any(|c| c.id == ceremony.id) {
                return Err(StoreError::Conflict("ceremony exists".into()));
            }
            s.ceremonies.push(ceremony.clone());
            Ok(())
        })
    }

    async fn take_passkey_ceremony(
        &self,
        id: &PasskeyCeremonyId,
        now: UnixTime,
    ) -> Result<Option<PasskeyCeremony>, StoreError> {
        Ok(self.with(|s| {
            let c = s.ceremonies.iter_mut().find(|c| &c.id == id)?;
            let before = c.clone();
            if c.used_at.is_none() {
                c.used_at = Some(now);
            }
            Some(before)
        }))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        crate::contract::run_all(|| async { super::MemoryStore::new() }).await;
    }
}
