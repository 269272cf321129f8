//! The tokio runtime of natrix: sockets, TLS, files, clocks, signals and
//! HTTP monitoring around the pure core, which decides everything. The
//! `natrix` binary (`src/main.rs`) wires these pieces together; they are a
//! library so that benchmarks can drive the production routing path
//! without sockets.

pub mod clock;
pub mod conn;
pub mod driver;
pub mod http;
pub mod logger;
pub mod mqtt;
pub mod process;
pub mod reload;
pub mod resources;
pub mod signals;
pub mod storage;
pub mod tls;
pub mod ws;
