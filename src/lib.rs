//! Rapport: a customer-relationship backend. The binary in `main.rs` is a thin command line
//! over this library, which the integration tests drive directly.

pub mod api_keys;
pub mod auth;
pub mod changes;
pub mod club;
pub mod complaints;
pub mod config;
pub mod customers;
pub mod db;
pub mod domains;
pub mod error;
pub mod health;
pub mod http;
pub mod kit;
pub mod openapi;
pub mod orders;
pub mod secrets;
pub mod seed;
pub mod server;
pub mod telemetry;
pub mod text_enum;
pub mod users;
pub mod visits;
pub mod webhooks;
