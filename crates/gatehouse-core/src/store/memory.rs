//! An in-memory store for tests and the protocol test suite.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ClientStore, KeyStore, ResourceStore, RevocationStore, RevokedToken, Store, StoreError,
};
use crate::keys::StoredKey;
use crate::model::{Client, Resource};
use crate::types::{ClientId, ResourceId};

#[derive(Default)]
struct State {
    resources: Vec<Resource>,
    clients: Vec<Client>,
    keys: Vec<StoredKey>,
    revoked: Vec<RevokedToken>,
    version: u64,
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

    async fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        Ok(self.with(|s| s.resources.clone()))
    }

    async fn delete_resource(&self, id: &ResourceId) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.resources.len();
            s.resources.retain(|r| &r.id != id);
            let removed = s.resources.len() != before;
            if removed {
                s.clients.retain(|c| &c.resource != id);
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
            if !s.resources.iter().any(|r| r.id == client.resource) {
                return Err(StoreError::Conflict(format!(
                    "no MCP server {}",
                    client.resource
                )));
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
                .filter(|c| resource.is_none_or(|r| &c.resource == r))
                .cloned()
                .collect()
        }))
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let before = s.clients.len();
            s.clients.retain(|c| &c.id != id);
            let removed = s.clients.len() != before;
            if removed {
                s.version += 1;
            }
            removed
        }))
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
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn change_version(&self) -> Result<u64, StoreError> {
        Ok(self.with(|s| s.version))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        crate::contract::run_all(|| async { super::MemoryStore::new() }).await;
    }
}
