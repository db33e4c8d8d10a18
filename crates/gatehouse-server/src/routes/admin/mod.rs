//! The administrative faces, split by area (docs: review-2026-12 §6.2). The dashboard and the
//! API still live mostly in `admin_ui.rs` and `admin_api.rs`; new areas start here.

pub mod ui;
