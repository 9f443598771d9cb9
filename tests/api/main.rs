//! Integration tests: the real HTTP app against a real PostgreSQL, one database per test.

mod common;
mod kit;

mod api_keys;
mod auth;
mod changes;
mod cli;
mod club;
mod complaints;
mod customers;
mod domain_kit;
mod faults;
mod http;
mod instances;
mod member_club;
mod member_feed;
mod members;
mod operations;
mod orders;
mod owasp;
mod receiver;
mod scale;
mod users;
mod visits;
mod webhooks;
