//! Gatehouse storage: the SQLite implementation of the core's store traits.
//!
//! One file per backend; SQL stays here, so the core has no database assumptions. Every
//! multi-record change runs in one transaction, and every write to resources, clients or keys
//! moves the change version in that same transaction.

mod rows;
mod sqlite;

pub use sqlite::SqliteStore;
