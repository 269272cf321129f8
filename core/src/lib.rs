//! natrix-core: every decision a NATS server makes, with no I/O.
//!
//! The runtimes (`natrix` on tokio, `natrix-sim` in simulation) feed the core
//! inputs — accepted connections, received bytes, the time, a random seed —
//! and carry out its outputs: bytes to send, connections to close, log lines.
//! See DESIGN.md, "The I/O boundary".

#![forbid(unsafe_code)]

pub mod account;
pub mod auth;
pub mod close;
pub mod config;
pub mod jetstream;
pub mod log;
pub mod mqtt;
pub mod protocol;
pub mod server;
mod slab;
mod sync;
pub mod storage;
pub mod subject;
pub mod time;
pub mod websocket;

pub use server::{ConnId, Output, Server};
/// The monitoring endpoints are the server's view of itself; they live
/// under it and are re-exported here, where the runtimes look.
pub use server::monitor;
pub use time::{Instant, UnixNanos};
