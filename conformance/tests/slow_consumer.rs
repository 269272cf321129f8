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

/// A raw connection subscribed to `subject` that then never reads again,
/// with its client id.
async fn stalled_subscriber(server: &Server, subject: &str) -> (BufReader<TcpStream>, u64) {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let mut conn = BufReader::new(stream);
    let mut info = String::new();
    conn.read_line(&mut info).await.unwrap();
    assert!(info.starts_with("INFO "), "{info:?}");
    let info_json: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ").trim()).unwrap();
    let cid = info_json["client_id"].as_u64().expect("INFO has client_id");
    let hello = format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n");
    conn.get_mut().write_all(hello.as_bytes()).await.unwrap();
    let mut pong = String::new();
    conn.read_line(&mut pong).await.unwrap();
    assert_eq!(pong, "PONG\r\n");
    (conn, cid)
}

/// Reads and discards until the server closes the connection (end of
/// stream or reset); the caller bounds the wait.
async fn drain_until_closed(conn: &mut BufReader<TcpStream>) {
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = conn.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// `GET path` on the monitoring port, as JSON.
fn monitor_json(server: &Server, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let url = server.monitor_url.as_deref().expect("started with monitoring");
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {response}"))
}

/// Why `/connz?state=closed` says connection `cid` was closed.
fn close_reason(server: &Server, cid: u64) -> Option<String> {
    let connz = monitor_json(server, "/connz?state=closed");
    connz["connections"].as_array()?.iter().find(|c| c["cid"].as_u64() == Some(cid))?["reason"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn stalled_subscriber_is_cut_off_and_fast_one_keeps_up() {
    let server = Server::start(
        ServerOptions::new().monitoring().config("max_pending: 262144\nmax_payload: 65536\n"),
    );
    let (mut stalled, stalled_cid) = stalled_subscriber(&server, "firehose").await;
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
    tokio::time::timeout(Duration::from_secs(30), drain_until_closed(&mut stalled))
        .await
        .expect("the stalled subscriber was never disconnected");
    let reason = close_reason(&server, stalled_cid);
    assert!(
        matches!(reason.as_deref(), Some("Slow Consumer (Pending Bytes)" | "Slow Consumer (Write Deadline)")),
        "the stalled subscriber must be closed as a slow consumer, not {reason:?}"
    );
    // The healthy subscriber is still connected and still served.
    assert_eq!(fast.connection_state(), async_nats::connection::State::Connected);
    let mut after = fast.subscribe("after").await.unwrap();
    sync(&fast).await;
    publisher.publish("after", "still here".into()).await.unwrap();
    sync(&publisher).await;
    assert_eq!(next(&mut after).await.payload.as_ref(), b"still here");
    let open = monitor_json(&server, "/connz");
    assert_eq!(open["num_connections"].as_u64(), Some(2), "publisher and healthy subscriber stay: {open}");
    assert!(
        server.log().to_lowercase().contains("slow consumer"),
        "the server should log the slow consumer:\n{}",
        server.log()
    );
}
