//! HTTP tests: the real server on a loopback port, a fresh SQLite database per test (and two
//! server processes on one PostgreSQL database in `nodes`).

mod admin_api;
mod assertions;
mod audit;
mod bad_input;
mod dashboard;
mod doctor;
mod durability;
mod email_codes;
mod flow;
mod guard;
mod helpers;
mod introspection;
mod limits;
mod metadata;
mod nodes;
mod ops;
mod passkeys;
mod people;
mod process;
mod redirects;
mod registration;
mod sso;
mod token;
