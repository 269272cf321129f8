//! Configuration: the nats-server config file format and command-line flags,
//! parsed into typed [`ServerOptions`]. Files and environment variables are
//! inputs: the runtime supplies a resolver for `include` and `$VAR`.

pub mod options;

pub use options::*;
