//! Dashboard pages, by area.

pub mod failures;
