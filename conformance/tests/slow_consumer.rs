//! A subscriber that stops reading is disconnected as a slow consumer while
//! a subscriber that keeps up receives everything.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const MESSAGES: usize = 2_000;
const PAYLOAD_BYTES: usize = 16 * 1024;

/// A raw connection subscribed to `subject` that then never reads again.
async fn stalled_subscriber(server: &Server, subject: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let mut conn = BufReader::new(stream);
    let mut info = String::new();
    conn.read_line(&mut info).await.unwrap();
    assert!(info.starts_with("INFO "), "{info:?}");
    let hello = format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n");
    conn.get_mut().write_all(hello.as_bytes()).await.unwrap();
    let mut pong = String::new();
    conn.read_line(&mut pong).await.unwrap();
    assert_eq!(pong, "PONG\r\n");
    conn
}

/// Reads and discards until the server closes the connection.
async fn drain_until_closed(conn: &mut BufReader<TcpStream>) -> bool {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn stalled_subscriber_is_cut_off_and_fast_one_keeps_up() {
    let server =
        Server::start(ServerOptions::new().config("max_pending: 262144\nmax_payload: 65536\n"));
    let mut stalled = stalled_subscriber(&server, "firehose").await;
    let fast = connect(&server).await;
    let mut fast_sub = fast.subscribe("firehose").await.unwrap();
    sync(&fast).await;
    let publisher = connect(&server).await;
    let fast_reader = tokio::spawn(async move {
        let mut count = 0;
        while count < MESSAGES {
            match tokio::time::timeout(STEP, fast_sub.next()).await {
                Ok(Some(_)) => count += 1,
                _ => break,
            }
        }
        count
    });
    let payload = bytes::Bytes::from(vec![b'x'; PAYLOAD_BYTES]);
    for _ in 0..MESSAGES {
        publisher
            .publish("firehose", payload.clone())
            .await
            .unwrap();
    }
    sync(&publisher).await;
    let received = tokio::time::timeout(Duration::from_secs(60), fast_reader)
        .await
        .expect("fast subscriber fell behind")
        .unwrap();
    assert_eq!(received, MESSAGES, "the fast subscriber stopped receiving");
    let closed = tokio::time::timeout(Duration::from_secs(30), drain_until_closed(&mut stalled))
        .await
        .expect("the stalled subscriber was never disconnected");
    assert!(closed);
    assert!(
        server.log().to_lowercase().contains("slow consumer"),
        "the server should log the slow consumer:\n{}",
        server.log()
    );
}
