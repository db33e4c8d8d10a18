//! The Gatehouse authorization server: HTTP adapter over `gatehouse-core`, configuration, and
//! the `gatehouse` command line.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod github;
pub mod mail;
pub mod maintenance;
pub mod metrics;
pub mod oidc;
pub mod routes;
pub mod serve;
pub mod throttle;
