//! Harness for starting natrix and nats-server processes.
