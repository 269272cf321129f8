//! WebSocket transport for NATS clients, as nats-server speaks it: the
//! HTTP upgrade ([`handshake`]), frames and permessage-deflate ([`frame`]),
//! and origin checks ([`origin`]). Pure functions over bytes: the runtime
//! owns the sockets and feeds the NATS bytes the frames carry to the same
//! session a TCP client has.

pub mod frame;
pub mod handshake;
pub mod origin;
