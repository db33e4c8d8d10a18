//! Gatehouse storage: the SQLite and PostgreSQL implementations of the core's store traits.
//!
//! One file per backend; SQL stays here, so the core has no database assumptions. Every
//! multi-record change runs in one transaction, and every write to resources, clients or keys
//! moves the change version in that same transaction.

mod migrations;
mod postgres;
mod rows;
mod sqlite;

pub use migrations::{MigrationName, MigrationStatus, Migrations};
#[cfg(feature = "test-support")]
pub use postgres::testing as postgres_testing;
pub use postgres::{PgStore, PoolSettings};
pub use sqlite::SqliteStore;
