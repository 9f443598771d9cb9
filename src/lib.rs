//! Rapport: a customer-relationship backend. The binary in `main.rs` is a thin command line
//! over this library, which the integration tests drive directly.

pub mod api_keys;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod http;
pub mod openapi;
pub mod server;
pub mod telemetry;
pub mod users;
