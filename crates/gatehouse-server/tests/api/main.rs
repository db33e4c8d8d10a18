//! HTTP tests: the real server on a loopback port, a fresh SQLite database per test.

mod admin_api;
mod audit;
mod bad_input;
mod dashboard;
mod email_codes;
mod flow;
mod guard;
mod helpers;
mod introspection;
mod metadata;
mod passkeys;
mod people;
mod registration;
mod sso;
mod token;
