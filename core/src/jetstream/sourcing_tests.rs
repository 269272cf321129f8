//! Mirrors and sources fed from their origins, and resumed after a crash
//! without duplicates or gaps.

use bytes::Bytes;
use serde_json::Value;

use super::config::CheckLimits;
use super::store::test_storage::TestDisk;
use super::JetStream;
use crate::time::UnixNanos;

const WALL: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

fn start(disk: &TestDisk) -> JetStream {
    let mut js = JetStream::new(CheckLimits::default(), Some(disk.shared()));
    js.enable("A", super::AccountLimits::default());
    js
}

/// Runs the clock until mirrors and sources have nothing left to move,
/// completing syncs as the runtime would.
fn settle(js: &mut JetStream, disk: &TestDisk) {
    for _ in 0..100 {
        js.flush();
        let tokens = disk.complete_syncs();
        js.handle_synced(&tokens);
        if !js.poll_timeout(WALL).is_some_and(|d| d.is_zero()) {
            return;
        }
        js.handle_timeout(WALL);
    }
    panic!("mirrors and sources never settled");
}

/// Sends an API request or a publish and returns the answers to the requester.
fn send(js: &mut JetStream, disk: &TestDisk, subject: &str, payload: &str) -> Vec<Value> {
    let reply = Bytes::from_static(b"_INBOX.r");
    let payload = Bytes::copy_from_slice(payload.as_bytes());
    if !js.handle_api("A", subject.as_bytes(), Some(&reply), &payload, WALL) {
        js.handle_publish("A", subject.as_bytes(), Some(&reply), None, &payload, WALL);
    }
    settle(js, disk);
    let mut answers = Vec::new();
    // Acks a stream sourcing through a durable consumer publishes reach
    // the consumer, as the server routes them; they may free more work.
    loop {
        let replies: Vec<_> = std::iter::from_fn(|| js.poll_reply()).collect();
        let mut acked = false;
        for r in replies {
            if r.subject.starts_with(b"$JS.ACK.") {
                acked |= js.handle_ack(&r.account, &r.subject, None, &r.payload, WALL);
            } else if &r.subject[..] == b"_INBOX.r" {
                answers.push(serde_json::from_slice(&r.payload).unwrap());
            }
        }
        if !acked {
            return answers;
        }
        settle(js, disk);
    }
}

fn ask(js: &mut JetStream, disk: &TestDisk, subject: &str, payload: &str) -> Value {
    let mut answers = send(js, disk, subject, payload);
    assert_eq!(answers.len(), 1, "{subject}: {answers:?}");
    answers.remove(0)
}

/// Every message of `stream`: (sequence, subject, payload, headers).
fn messages(js: &mut JetStream, disk: &TestDisk, stream: &str) -> Vec<(u64, String, String, String)> {
    let info = ask(js, disk, &format!("$JS.API.STREAM.INFO.{stream}"), "");
    let (first, last) = (info["state"]["first_seq"].as_u64().unwrap(), info["state"]["last_seq"].as_u64().unwrap());
    let mut out = Vec::new();
    for seq in first.max(1)..=last {
        let got = ask(js, disk, &format!("$JS.API.STREAM.MSG.GET.{stream}"), &format!(r#"{{"seq":{seq}}}"#));
        if got.get("error").is_some() {
            continue;
        }
        let m = &got["message"];
        let decode = |v: &Value| {
            use base64::Engine;
            let text = v.as_str().unwrap_or_default();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(text).unwrap()).unwrap()
        };
        out.push((seq, m["subject"].as_str().unwrap().to_owned(), decode(&m["data"]), decode(&m["hdrs"])));
    }
    out
}

const ORIGIN: &str = r#"{"name":"O","subjects":["o.*"],"storage":"file"}"#;

#[test]
fn a_mirror_keeps_its_origins_sequences_and_skips_what_the_origin_lost() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.O", ORIGIN);
    for (subject, data) in [("o.a", "1"), ("o.b", "2"), ("o.a", "3")] {
        send(&mut js, &disk, subject, data);
    }
    ask(&mut js, &disk, "$JS.API.STREAM.MSG.DELETE.O", r#"{"seq":2}"#);
    let created = ask(&mut js, &disk, "$JS.API.STREAM.CREATE.M", r#"{"name":"M","storage":"file","mirror":{"name":"O"}}"#);
    assert_eq!(created["mirror"]["name"], "O");
    send(&mut js, &disk, "o.c", "4");
    let got = messages(&mut js, &disk, "M");
    let seqs: Vec<u64> = got.iter().map(|m| m.0).collect();
    assert_eq!(seqs, [1, 3, 4]);
    assert_eq!(got[2].1, "o.c");
    let info = ask(&mut js, &disk, "$JS.API.STREAM.INFO.M", "");
    assert_eq!(info["state"]["num_deleted"], 1);
    assert_eq!(info["mirror"]["lag"], 0);
    assert!(info["mirror"]["active"].as_i64().unwrap() >= 0);
    // A mirror with a start sequence begins there.
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.T", r#"{"name":"T","storage":"memory","mirror":{"name":"O","opt_start_seq":3}}"#);
    let seqs: Vec<u64> = messages(&mut js, &disk, "T").iter().map(|m| m.0).collect();
    assert_eq!(seqs, [3, 4]);
}

#[test]
fn a_mirror_resumes_after_a_crash_without_duplicates_or_gaps() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.O", ORIGIN);
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.M", r#"{"name":"M","storage":"file","mirror":{"name":"O"}}"#);
    for i in 0..5 {
        send(&mut js, &disk, "o.a", &i.to_string());
    }
    // Unsynced writes are lost in the crash: the last publishes reach the
    // origin's file (acknowledged) but the mirror's copy is never synced.
    let reply = Bytes::from_static(b"_INBOX.r");
    for i in 5..8 {
        js.handle_publish("A", b"o.a", Some(&reply), None, &Bytes::from(i.to_string()), WALL);
    }
    js.flush();
    disk.complete_syncs();
    disk.crash(0);
    let mut js = start(&disk);
    settle(&mut js, &disk);
    let origin: Vec<(u64, String)> = messages(&mut js, &disk, "O").into_iter().map(|m| (m.0, m.2)).collect();
    let mirror: Vec<(u64, String)> = messages(&mut js, &disk, "M").into_iter().map(|m| (m.0, m.2)).collect();
    assert_eq!(origin.len(), 8);
    assert_eq!(mirror, origin);
}

#[test]
fn a_source_resumes_after_a_crash_from_its_headers() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.O", ORIGIN);
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.P", r#"{"name":"P","subjects":["p.*"],"storage":"memory"}"#);
    let sourced = r#"{"name":"S","storage":"file","sources":[{"name":"O","filter_subject":"o.a"},
        {"name":"P","subject_transforms":[{"src":"p.*","dest":"q.{{wildcard(1)}}"}]}]}"#;
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.S", sourced);
    for (subject, data) in [("o.a", "1"), ("o.b", "x"), ("p.z", "2"), ("o.a", "3")] {
        send(&mut js, &disk, subject, data);
    }
    let got = messages(&mut js, &disk, "S");
    let seen: Vec<(&str, &str)> = got.iter().map(|m| (m.1.as_str(), m.2.as_str())).collect();
    assert_eq!(seen, [("o.a", "1"), ("q.z", "2"), ("o.a", "3")]);
    assert!(got[0].3.contains("Nats-Stream-Source: O 1 o.a > o.a "), "{}", got[0].3);
    assert!(got[1].3.contains("Nats-Stream-Source: P 1 p.* q.{{wildcard(1)}} p.z "), "{}", got[1].3);
    let info = ask(&mut js, &disk, "$JS.API.STREAM.INFO.S", "");
    assert_eq!(info["sources"][0]["name"], "O");
    assert_eq!(info["sources"][0]["seq"], 3);
    // Restarted, the source goes on after the last message it stored:
    // nothing is taken twice.
    let mut js = start(&disk);
    settle(&mut js, &disk);
    send(&mut js, &disk, "o.a", "5");
    let data: Vec<String> = messages(&mut js, &disk, "S").into_iter().map(|m| m.2).collect();
    assert_eq!(data, ["1", "2", "3", "5"]);
}

#[test]
fn a_source_reads_through_a_durable_consumer_and_acks_once_on_disk() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.W", r#"{"name":"W","subjects":["w.*"],"retention":"workqueue","storage":"file"}"#);
    for i in 1..=3 {
        send(&mut js, &disk, "w.a", &i.to_string());
    }
    let sourced = r#"{"name":"AGG","storage":"file","sources":[{"name":"W","consumer":{"name":"agg","deliver_subject":"agg.deliver"}}]}"#;
    let created = ask(&mut js, &disk, "$JS.API.STREAM.CREATE.AGG", sourced);
    assert_eq!(created["config"]["sources"][0]["consumer"]["name"], "agg", "{created}");
    // No consumer yet: nothing moves, and no error shows (as nats-server).
    let info = ask(&mut js, &disk, "$JS.API.STREAM.INFO.AGG", "");
    assert_eq!((info["state"]["messages"].as_u64(), info["sources"][0]["active"].as_i64()), (Some(0), Some(-1)));
    assert!(info["sources"][0].get("error").is_none(), "{info}");
    // A consumer that does not ack by flow control is not used.
    let explicit = r#"{"stream_name":"W","config":{"durable_name":"agg","deliver_subject":"agg.deliver","ack_policy":"explicit"}}"#;
    ask(&mut js, &disk, "$JS.API.CONSUMER.CREATE.W.agg", explicit);
    let info = ask(&mut js, &disk, "$JS.API.STREAM.INFO.AGG", "");
    assert_eq!(info["sources"][0]["error"]["err_code"], 10217, "{info}");
    assert_eq!(info["state"]["messages"], 0);
    ask(&mut js, &disk, "$JS.API.CONSUMER.DELETE.W.agg", "");
    let fc = r#"{"stream_name":"W","config":{"durable_name":"agg","deliver_subject":"agg.deliver","ack_policy":"flow_control"}}"#;
    let c = ask(&mut js, &disk, "$JS.API.CONSUMER.CREATE.W.agg", fc);
    assert_eq!((c["config"]["flow_control"].as_bool(), c["config"]["idle_heartbeat"].as_i64()), (Some(true), Some(1_000_000_000)), "{c}");
    send(&mut js, &disk, "w.b", "4");
    let got = messages(&mut js, &disk, "AGG");
    let data: Vec<&str> = got.iter().map(|m| m.2.as_str()).collect();
    assert_eq!(data, ["1", "2", "3", "4"]);
    assert!(got[0].3.contains("Nats-Stream-Source: W:C="), "{}", got[0].3);
    // Acknowledged once stored: the work queue let them go.
    let w = ask(&mut js, &disk, "$JS.API.STREAM.INFO.W", "");
    assert_eq!(w["state"]["messages"], 0, "{w}");
    let c = ask(&mut js, &disk, "$JS.API.CONSUMER.INFO.W.agg", "");
    assert_eq!((c["delivered"]["stream_seq"].as_u64(), c["ack_floor"]["stream_seq"].as_u64()), (Some(4), Some(4)), "{c}");
    assert_eq!(c["num_ack_pending"], 0);
    assert_eq!(c["push_bound"], true, "the sourcing stream listens on its deliver subject");
}

#[test]
fn an_unsynced_source_write_is_not_acknowledged_upstream() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.W", r#"{"name":"W","subjects":["w.*"],"retention":"workqueue","storage":"file"}"#);
    let fc = r#"{"stream_name":"W","config":{"durable_name":"agg","deliver_subject":"agg.deliver","ack_policy":"flow_control"}}"#;
    ask(&mut js, &disk, "$JS.API.CONSUMER.CREATE.W.agg", fc);
    let sourced = r#"{"name":"AGG","storage":"file","sources":[{"name":"W","consumer":{"name":"agg","deliver_subject":"agg.deliver"}}]}"#;
    ask(&mut js, &disk, "$JS.API.STREAM.CREATE.AGG", sourced);
    send(&mut js, &disk, "w.a", "1");
    // The next one is stored upstream and copied, but the copy's sync never
    // completes: the crash loses it, and the work queue still holds it.
    let reply = Bytes::from_static(b"_INBOX.r");
    js.handle_publish("A", b"w.a", Some(&reply), None, &Bytes::from_static(b"2"), WALL);
    js.flush();
    disk.complete_syncs();
    js.handle_timeout(WALL);
    for r in std::iter::from_fn(|| js.poll_reply()) {
        assert!(!r.subject.starts_with(b"$JS.ACK."), "acked before the copy was on disk");
    }
    disk.crash(0);
    let mut js = start(&disk);
    settle(&mut js, &disk);
    send(&mut js, &disk, "w.a", "3");
    let data: Vec<String> = messages(&mut js, &disk, "AGG").into_iter().map(|m| m.2).collect();
    assert_eq!(data, ["1", "2", "3"]);
}
