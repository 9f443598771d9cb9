//! Integration tests: the real HTTP app against a real PostgreSQL, one database per test.

mod common;

mod api_keys;
mod auth;
mod customers;
mod http;
mod operations;
mod orders;
mod users;
