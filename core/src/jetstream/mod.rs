//! JetStream: persistent streams of messages, configured and queried through the `$JS.API` JSON API.

pub mod api;
pub mod config;
