//! Core messaging through async-nats: pub/sub, wildcards, queues,
//! request/reply, headers, no responders, auto-unsubscribe.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::RequestErrorKind;
use bytes::Bytes;
use common::*;
use futures_util::StreamExt;

#[tokio::test]
async fn publish_reaches_subscriber() {
    let (_server, client) = start_and_connect().await;
    let mut sub = client.subscribe("greet.joe").await.unwrap();
    sync(&client).await;
    client.publish("greet.joe", "hello".into()).await.unwrap();
    let msg = next(&mut sub).await;
    assert_eq!(msg.subject.as_str(), "greet.joe");
    assert_eq!(msg.payload, Bytes::from("hello"));
}

#[tokio::test]
async fn publish_from_other_connection_and_empty_payload() {
    let (server, publisher) = start_and_connect().await;
    let subscriber = connect(&server).await;
    let mut sub = subscriber.subscribe("empty").await.unwrap();
    sync(&subscriber).await;
    publisher.publish("empty", Bytes::new()).await.unwrap();
    sync(&publisher).await;
    let msg = next(&mut sub).await;
    assert!(msg.payload.is_empty());
}

#[tokio::test]
async fn single_token_wildcard_matches_one_token() {
    let (_server, client) = start_and_connect().await;
    let mut sub = client.subscribe("orders.*.created").await.unwrap();
    sync(&client).await;
    for subject in [
        "orders.eu.created",
        "orders.eu.x.created",
        "orders.created",
        "orders.us.created",
    ] {
        client.publish(subject, subject.into()).await.unwrap();
    }
    assert_eq!(next(&mut sub).await.subject.as_str(), "orders.eu.created");
    assert_eq!(next(&mut sub).await.subject.as_str(), "orders.us.created");
    assert_silent(&mut sub, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn full_wildcard_matches_one_or_more_tokens() {
    let (_server, client) = start_and_connect().await;
    let mut sub = client.subscribe("metrics.>").await.unwrap();
    sync(&client).await;
    for subject in ["metrics", "metrics.cpu", "metrics.cpu.core0", "other.cpu"] {
        client.publish(subject, subject.into()).await.unwrap();
    }
    assert_eq!(next(&mut sub).await.subject.as_str(), "metrics.cpu");
    assert_eq!(next(&mut sub).await.subject.as_str(), "metrics.cpu.core0");
    assert_silent(&mut sub, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn queue_group_delivers_each_message_exactly_once() {
    const MEMBERS: usize = 3;
    const MESSAGES: usize = 300;
    let (server, publisher) = start_and_connect().await;
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        let client = connect(&server).await;
        let sub = client
            .queue_subscribe("work", "workers".into())
            .await
            .unwrap();
        sync(&client).await;
        members.push((client, sub));
    }
    // A plain subscriber on the same subject still gets every message.
    let mut watcher = publisher.subscribe("work").await.unwrap();
    sync(&publisher).await;
    for i in 0..MESSAGES {
        publisher
            .publish("work", i.to_string().into())
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for _ in 0..MESSAGES {
        next(&mut watcher).await;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_member = Vec::new();
    for (_client, sub) in members.iter_mut() {
        let mut count = 0;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await
        {
            *seen
                .entry(String::from_utf8_lossy(&msg.payload).into_owned())
                .or_default() += 1;
            count += 1;
        }
        per_member.push(count);
    }
    assert_eq!(
        per_member.iter().sum::<usize>(),
        MESSAGES,
        "per member: {per_member:?}"
    );
    assert_eq!(seen.len(), MESSAGES);
    assert!(
        seen.values().all(|&n| n == 1),
        "a message was delivered twice"
    );
    assert!(
        per_member.iter().filter(|&&n| n > 0).count() > 1,
        "no load spread: {per_member:?}"
    );
}

#[tokio::test]
async fn request_reply_round_trip() {
    let (server, requester) = start_and_connect().await;
    let responder = connect(&server).await;
    let mut service = responder.subscribe("svc.echo").await.unwrap();
    sync(&responder).await;
    let task = tokio::spawn(async move {
        let msg = next(&mut service).await;
        let reply = msg.reply.expect("request carries a reply subject");
        let mut body = b"echo:".to_vec();
        body.extend_from_slice(&msg.payload);
        responder.publish(reply, body.into()).await.unwrap();
        sync(&responder).await;
    });
    let answer = tokio::time::timeout(STEP, requester.request("svc.echo", "ping".into()))
        .await
        .expect("request timed out")
        .expect("request failed");
    assert_eq!(answer.payload, Bytes::from("echo:ping"));
    task.await.unwrap();
}

#[tokio::test]
async fn headers_round_trip() {
    let (_server, client) = start_and_connect().await;
    let mut sub = client.subscribe("hdr").await.unwrap();
    sync(&client).await;
    let mut headers = HeaderMap::new();
    headers.insert("X-Trace", "abc-123");
    headers.append("X-Multi", "one");
    headers.append("X-Multi", "two");
    client
        .publish_with_headers("hdr", headers, "body".into())
        .await
        .unwrap();
    let msg = next(&mut sub).await;
    let got = msg.headers.expect("headers delivered");
    assert_eq!(got.get("X-Trace").map(|v| v.as_str()), Some("abc-123"));
    let multi: Vec<&str> = got.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, vec!["one", "two"]);
    assert_eq!(msg.payload, Bytes::from("body"));
}

#[tokio::test]
async fn request_without_responders_fails_fast() {
    let (_server, client) = start_and_connect().await;
    let err = tokio::time::timeout(STEP, client.request("nobody.home", "x".into()))
        .await
        .expect("no-responders must answer before the request timeout")
        .expect_err("request must fail");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
}

#[tokio::test]
async fn unsubscribe_after_stops_at_max() {
    let (_server, client) = start_and_connect().await;
    let mut sub = client.subscribe("limited").await.unwrap();
    sub.unsubscribe_after(3).await.unwrap();
    sync(&client).await;
    for i in 0..10 {
        client
            .publish("limited", i.to_string().into())
            .await
            .unwrap();
    }
    sync(&client).await;
    let mut got = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
        got.push(msg.payload);
    }
    assert_eq!(
        got,
        vec![Bytes::from("0"), Bytes::from("1"), Bytes::from("2")]
    );
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let (_server, client) = start_and_connect().await;
    let mut sub = client.subscribe("gone").await.unwrap();
    let mut keep = client.subscribe("gone").await.unwrap();
    sync(&client).await;
    sub.unsubscribe().await.unwrap();
    sync(&client).await;
    client.publish("gone", "x".into()).await.unwrap();
    assert_eq!(next(&mut keep).await.payload, Bytes::from("x"));
}
