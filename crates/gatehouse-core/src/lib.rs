//! Gatehouse protocol engine.
//!
//! Everything an OAuth 2.1 authorization server for MCP servers decides lives here: typed
//! protocol values, client authentication, grants, signed access tokens, metadata documents,
//! introspection, revocation and the storage traits. It knows no HTTP framework, database or
//! filesystem: adapters hand it typed requests, a [`Clock`] and a [`Store`], and render what
//! it returns.

pub mod admin;
pub mod audit;
pub mod authorize;
pub mod cache;
pub mod cimd;
pub mod client_assertion;
pub mod client_auth;
pub mod client_keys;
pub mod clock;
#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;
pub mod email_code;
pub mod engine;
pub mod error;
pub mod grant;
pub mod introspection;
pub mod keys;
pub mod login;
pub mod metadata;
pub mod model;
pub mod params;
pub mod passkey;
pub mod password;
pub mod pkce;
pub mod random;
pub mod records;
pub mod redirect;
pub mod registration;
pub mod remote;
pub mod revocation;
pub mod seal;
pub mod secret;
pub mod session;
pub mod signin;
pub mod store;
pub mod token;
pub mod types;

pub use clock::{Clock, SystemClock, UnixTime};
pub use engine::{Engine, IssuerContext, Settings};
pub use error::{ErrorCode, OAuthError};
pub use model::{Client, ClientKind, Resource, ScopeDef, User};
pub use store::{Store, StoreError};
pub use types::{ClientId, GrantId, Issuer, Kid, ResourceId, ResourceUri, Scope, ScopeSet, UserId};
