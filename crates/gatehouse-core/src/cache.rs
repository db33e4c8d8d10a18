//! In-memory view of MCP servers and clients, so the token endpoint reads no rows.
//!
//! The view is dropped when the store's change version moves. Writes made through this
//! process call [`Catalog::invalidate`]; writes by another process (the CLI on the same data
//! directory, another node) are seen at the next [`Catalog::sync`], which the server runs
//! about once a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::model::{Client, Resource};
use crate::store::{Store, StoreError};
use crate::types::{ClientId, ResourceId};

/// Clients kept in memory at most; past this the map starts over, so unknown ids sent by a
/// caller cannot grow memory without bound.
const MAX_CACHED_CLIENTS: usize = 100_000;

/// Cached resources and clients in front of a [`Store`].
pub struct Catalog {
    store: Arc<dyn Store>,
    version: Mutex<Option<u64>>,
    resources: RwLock<Option<Arc<Vec<Arc<Resource>>>>>,
    clients: RwLock<HashMap<ClientId, Arc<Client>>>,
}

impl Catalog {
    /// An empty view of `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Catalog {
            store,
            version: Mutex::new(None),
            resources: RwLock::new(None),
            clients: RwLock::new(HashMap::new()),
        }
    }

    /// Every MCP server.
    pub async fn resources(&self) -> Result<Arc<Vec<Arc<Resource>>>, StoreError> {
        if let Some(list) = read(&self.resources).as_ref() {
            return Ok(list.clone());
        }
        let list: Arc<Vec<Arc<Resource>>> = Arc::new(
            self.store
                .resources()
                .await?
                .into_iter()
                .map(Arc::new)
                .collect(),
        );
        *write(&self.resources) = Some(list.clone());
        Ok(list)
    }

    /// The MCP server with this id.
    pub async fn resource(&self, id: &ResourceId) -> Result<Option<Arc<Resource>>, StoreError> {
        Ok(self
            .resources()
            .await?
            .iter()
            .find(|r| &r.id == id)
            .cloned())
    }

    /// The MCP server named by `s`: its URL (compared canonically) or its `res_…` id.
    pub async fn resource_named(&self, s: &str) -> Result<Option<Arc<Resource>>, StoreError> {
        Ok(self
            .resources()
            .await?
            .iter()
            .find(|r| r.id.as_str() == s || r.url.matches(s))
            .cloned())
    }

    /// The client with this id.
    pub async fn client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(c) = read(&self.clients).get(id) {
            return Ok(Some(c.clone()));
        }
        let Some(client) = self.store.client(id).await? else {
            return Ok(None);
        };
        let client = Arc::new(client);
        let mut map = write(&self.clients);
        if map.len() >= MAX_CACHED_CLIENTS {
            map.clear();
        }
        map.insert(id.clone(), client.clone());
        Ok(Some(client))
    }

    /// Drops one cached client, so the next lookup reads it again.
    pub fn forget_client(&self, id: &ClientId) {
        write(&self.clients).remove(id);
    }

    /// Drops everything cached.
    pub fn invalidate(&self) {
        *write(&self.resources) = None;
        write(&self.clients).clear();
    }

    /// Drops the cache if the store changed since the last call; `true` if it did.
    pub async fn sync(&self) -> Result<bool, StoreError> {
        let now = self.store.change_version().await?;
        let mut seen = self.version.lock().unwrap_or_else(|p| p.into_inner());
        // The first call has nothing to compare with: anything cached before it may be stale.
        let changed = *seen != Some(now);
        if changed {
            self.invalidate();
        }
        *seen = Some(now);
        Ok(changed)
    }
}

// The locks guard plain maps that are replaced whole; a panic elsewhere cannot leave them
// half-written, so a poisoned lock is safe to use.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}
