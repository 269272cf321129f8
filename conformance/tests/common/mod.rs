//! Helpers shared by the async-nats conformance tests.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::StreamExt;
pub use natrix_conformance::{Server, ServerOptions};

/// Upper bound for any single await in a test; a hang becomes a failure.
pub const STEP: Duration = Duration::from_secs(5);

/// Starts a server with no options and connects a client to it.
pub async fn start_and_connect() -> (Server, async_nats::Client) {
    let server = Server::start(ServerOptions::new());
    let client = connect(&server).await;
    (server, client)
}

/// Connects to `server` with default options, failing fast.
pub async fn connect(server: &Server) -> async_nats::Client {
    tokio::time::timeout(STEP, async_nats::connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", server.target(), server.log()))
}

/// Awaits the next message on `sub`, failing after [`STEP`].
pub async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(STEP, sub.next())
        .await
        .expect("no message within timeout")
        .expect("subscription ended")
}

/// Asserts that nothing arrives on `sub` within `wait`.
pub async fn assert_silent(sub: &mut async_nats::Subscriber, wait: Duration) {
    if let Ok(Some(msg)) = tokio::time::timeout(wait, sub.next()).await {
        panic!("unexpected message on {}: {:?}", msg.subject, msg.payload);
    }
}

/// Waits until the server has processed everything `client` sent so far.
///
/// async-nats' `flush` only empties the socket buffer; a message to our own
/// fresh subscription comes back only after the server handled every earlier
/// command on this connection (a server processes a connection in order).
pub async fn sync(client: &async_nats::Client) {
    let subject = client.new_inbox();
    let mut probe = client.subscribe(subject.clone()).await.unwrap();
    client.publish(subject, "sync".into()).await.unwrap();
    client.flush().await.unwrap();
    next(&mut probe).await;
}
