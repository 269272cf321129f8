//! The `$JS.API` and publish paths driven as the control plane drives
//! them, on memory streams, checked against what nats-server answers.

use bytes::Bytes;
use serde_json::Value;

use super::*;

const T0: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

/// JetStream with account "A" enabled and no storage (memory streams only).
fn js() -> JetStream {
    let mut js = JetStream::new(CheckLimits::default(), None);
    js.enable("A", AccountLimits::default());
    js
}

/// Every reply released so far.
fn replies(js: &mut JetStream) -> Vec<Reply> {
    js.flush();
    std::iter::from_fn(|| js.poll_reply()).collect()
}

/// Sends an API request from account "A"; returns whether the server
/// listens on the subject and the replies it sent.
fn request(js: &mut JetStream, subject: &str, payload: &str) -> (bool, Vec<Reply>) {
    let reply = Bytes::from_static(b"_INBOX.r");
    let listening = js.handle_api("A", subject.as_bytes(), Some(&reply), &Bytes::copy_from_slice(payload.as_bytes()), T0);
    (listening, replies(js))
}

/// The JSON answer to an API request.
fn ask(js: &mut JetStream, subject: &str, payload: &str) -> Value {
    let (listening, replies) = request(js, subject, payload);
    assert!(listening, "{subject}");
    // Advisories may precede the answer; the answer goes to the inbox.
    let answers: Vec<&Reply> = replies.iter().filter(|r| &r.subject[..] == b"_INBOX.r").collect();
    assert_eq!(answers.len(), 1, "{subject}");
    serde_json::from_slice(&answers[0].payload).unwrap()
}

fn publish(js: &mut JetStream, subject: &str, payload: &str) -> Value {
    let reply = Bytes::from_static(b"_INBOX.p");
    assert!(js.handle_publish("A", subject.as_bytes(), Some(&reply), None, &Bytes::copy_from_slice(payload.as_bytes()), T0));
    let replies = replies(js);
    assert_eq!(replies.len(), 1);
    serde_json::from_slice(&replies[0].payload).unwrap()
}

#[test]
fn direct_get_has_no_responder_without_a_direct_stream() {
    let mut js = js();
    // No such stream: nats-server has no subscription, so no responders.
    for subject in ["$JS.API.DIRECT.GET.NOPE", "$JS.API.DIRECT.GET.NOPE.foo"] {
        assert_eq!(request(&mut js, subject, r#"{"seq":1}"#), (false, Vec::new()));
    }
    let created = ask(&mut js, "$JS.API.STREAM.CREATE.S", r#"{"name":"S","subjects":["s.>"],"storage":"memory"}"#);
    assert_eq!(created["config"]["allow_direct"], false);
    assert!(!request(&mut js, "$JS.API.DIRECT.GET.S", r#"{"seq":1}"#).0);
    // The plain API still answers, with its 404 error.
    let got = ask(&mut js, "$JS.API.STREAM.MSG.GET.NOPE", r#"{"seq":1}"#);
    assert_eq!(got["error"]["err_code"], 10059);
    // With allow_direct, the stream answers; a missing message is a 404 status.
    ask(&mut js, "$JS.API.STREAM.UPDATE.S", r#"{"name":"S","subjects":["s.>"],"storage":"memory","allow_direct":true}"#);
    let (listening, got) = request(&mut js, "$JS.API.DIRECT.GET.S", r#"{"seq":1}"#);
    assert!(listening);
    assert_eq!(got[0].headers.as_deref(), Some(&b"NATS/1.0 404 Message Not Found\r\n\r\n"[..]));
    publish(&mut js, "s.a", "hi");
    let (_, got) = request(&mut js, "$JS.API.DIRECT.GET.S.s.a", "");
    assert_eq!(&got[0].payload[..], b"hi");
}

#[test]
fn stream_bytes_are_nats_servers_memory_sizes() {
    let mut js = js();
    ask(&mut js, "$JS.API.STREAM.CREATE.M", r#"{"name":"M","subjects":["world"],"storage":"memory"}"#);
    assert_eq!(publish(&mut js, "world", "Hello world!")["seq"], 1);
    let info = ask(&mut js, "$JS.API.STREAM.INFO.M", "");
    assert_eq!(info["state"]["bytes"], 5 + 12 + 16);
}

/// What the differential scenarios found against nats-server 2.15.1.
#[test]
fn create_answers_as_nats_server() {
    let mut js = js();
    // The name is compared as sent: empty body, empty name, other name.
    for body in ["", r#"{"subjects":["e"]}"#, r#"{"name":"U","subjects":["e"]}"#] {
        let got = ask(&mut js, "$JS.API.STREAM.CREATE.E", body);
        assert_eq!(got["error"]["err_code"], 10056, "{body}");
    }
    let got = ask(&mut js, "$JS.API.STREAM.CREATE.E", "{not json");
    assert_eq!(
        got["error"]["description"],
        "invalid JSON: invalid character 'n' looking for beginning of object key string at offset 2"
    );
    // A stream that never held a message reports first_seq 0.
    let created = ask(&mut js, "$JS.API.STREAM.CREATE.E", r#"{"name":"E","subjects":["e.*"],"storage":"memory"}"#);
    assert_eq!((created["state"]["first_seq"].as_u64(), created["state"]["last_seq"].as_u64()), (Some(0), Some(0)));
    publish(&mut js, "e.a", "1");
    assert_eq!(ask(&mut js, "$JS.API.STREAM.INFO.E", "")["state"]["first_seq"], 1);
}

#[test]
fn account_info_counts_requests_answered_before_it() {
    let mut js = js();
    assert_eq!(ask(&mut js, "$JS.API.INFO", "")["api"]["total"], 0);
    ask(&mut js, "$JS.API.STREAM.INFO.NOPE", "");
    let info = ask(&mut js, "$JS.API.INFO", "");
    assert_eq!((info["api"]["total"].as_u64(), info["api"]["errors"].as_u64()), (Some(2), Some(1)));
}

#[test]
fn subject_details_are_paged() {
    let mut js = js();
    ask(&mut js, "$JS.API.STREAM.CREATE.S", r#"{"name":"S","subjects":["s.*"],"storage":"memory"}"#);
    for s in ["s.a", "s.b", "s.c", "s.a"] {
        publish(&mut js, s, "x");
    }
    let none = ask(&mut js, "$JS.API.STREAM.INFO.S", "");
    assert_eq!((none["total"].as_u64(), none["limit"].as_u64()), (Some(0), Some(0)));
    let all = ask(&mut js, "$JS.API.STREAM.INFO.S", r#"{"subjects_filter":">"}"#);
    assert_eq!((all["total"].as_u64(), all["offset"].as_u64(), all["limit"].as_u64()), (Some(3), Some(0), Some(100_000)));
    assert_eq!(all["state"]["subjects"], serde_json::json!({"s.a": 2, "s.b": 1, "s.c": 1}));
    let rest = ask(&mut js, "$JS.API.STREAM.INFO.S", r#"{"subjects_filter":">","offset":1}"#);
    assert_eq!(rest["offset"], 1);
    assert_eq!(rest["state"]["subjects"], serde_json::json!({"s.b": 1, "s.c": 1}));
}

#[test]
fn malformed_direct_get_is_a_408_malformed_request() {
    let mut js = js();
    ask(&mut js, "$JS.API.STREAM.CREATE.S", r#"{"name":"S","subjects":["s"],"storage":"memory","allow_direct":true}"#);
    let (_, got) = request(&mut js, "$JS.API.DIRECT.GET.S", "{bad");
    assert_eq!(got[0].headers.as_deref(), Some(&b"NATS/1.0 408 Malformed Request\r\n\r\n"[..]));
}

fn hpublish(js: &mut JetStream, subject: &str, headers: &str, wall: UnixNanos) -> Value {
    let reply = Bytes::from_static(b"_INBOX.p");
    let hdrs = Bytes::from(format!("NATS/1.0\r\n{headers}\r\n\r\n"));
    assert!(js.handle_publish("A", subject.as_bytes(), Some(&reply), Some(&hdrs), &Bytes::from_static(b"x"), wall));
    let replies = replies(js);
    serde_json::from_slice(&replies[0].payload).unwrap()
}

#[test]
fn messages_expire_by_their_ttl() {
    let mut js = js();
    ask(&mut js, "$JS.API.STREAM.CREATE.N", r#"{"name":"N","subjects":["n"],"storage":"memory"}"#);
    // Without allow_msg_ttl a TTL is refused; an unreadable one is invalid either way.
    assert_eq!(hpublish(&mut js, "n", "Nats-TTL: 2s", T0)["error"]["err_code"], 10166);
    assert_eq!(hpublish(&mut js, "n", "Nats-TTL: soon", T0)["error"]["err_code"], 10165);
    ask(&mut js, "$JS.API.STREAM.CREATE.T", r#"{"name":"T","subjects":["t.*"],"storage":"memory","allow_msg_ttl":true}"#);
    assert_eq!(publish(&mut js, "t.a", "kept")["seq"], 1);
    assert_eq!(hpublish(&mut js, "t.b", "Nats-TTL: 2s", T0)["seq"], 2);
    assert_eq!(hpublish(&mut js, "t.c", "Nats-TTL: 3", T0)["seq"], 3);
    assert_eq!(hpublish(&mut js, "t.c", "Nats-TTL: 500ms", T0)["error"]["err_code"], 10165);
    assert_eq!(js.poll_timeout(T0), Some(Duration::from_secs(2)));
    let later = |s: i64| UnixNanos(T0.0 + s * 1_000_000_000);
    js.handle_timeout(later(2));
    assert_eq!(ask(&mut js, "$JS.API.STREAM.INFO.T", "")["state"]["messages"], 2);
    js.handle_timeout(later(3));
    let state = &ask(&mut js, "$JS.API.STREAM.INFO.T", "")["state"];
    assert_eq!((state["messages"].as_u64(), state["first_seq"].as_u64(), state["last_seq"].as_u64()), (Some(1), Some(1), Some(3)));
}

#[test]
fn the_last_message_of_a_subject_leaves_a_delete_marker_when_it_ages_out() {
    let mut js = js();
    let cfg = r#"{"name":"M","subjects":["m.*"],"storage":"memory","allow_msg_ttl":true,"allow_rollup_hdrs":true,"subject_delete_marker_ttl":2000000000}"#;
    ask(&mut js, "$JS.API.STREAM.CREATE.M", cfg);
    // A TTL under the markers' is raised to theirs, the header rewritten.
    assert_eq!(hpublish(&mut js, "m.a", "Foo: bar\r\nNats-TTL: 1", T0)["seq"], 1);
    assert_eq!(hpublish(&mut js, "m.b", "Nats-TTL: 1", T0)["seq"], 2);
    assert_eq!(publish(&mut js, "m.b", "kept")["seq"], 3);
    let got = ask(&mut js, "$JS.API.STREAM.MSG.GET.M", r#"{"seq":1}"#);
    let hdrs = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, got["message"]["hdrs"].as_str().unwrap()).unwrap();
    assert_eq!(hdrs, b"NATS/1.0\r\nFoo: bar\r\nNats-TTL: 2\r\n\r\n");
    let later = |s: i64| UnixNanos(T0.0 + s * 1_000_000_000);
    js.handle_timeout(later(1));
    assert_eq!(ask(&mut js, "$JS.API.STREAM.INFO.M", "")["state"]["messages"], 3);
    // m.a was its subject's last message: a marker takes its place; m.b
    // still has a message, so its expired one simply goes.
    js.handle_timeout(later(2));
    let state = &ask(&mut js, "$JS.API.STREAM.INFO.M", "")["state"];
    assert_eq!((state["messages"].as_u64(), state["first_seq"].as_u64(), state["last_seq"].as_u64()), (Some(2), Some(3), Some(4)));
    let marker = ask(&mut js, "$JS.API.STREAM.MSG.GET.M", r#"{"seq":4}"#);
    assert_eq!(marker["message"]["subject"], "m.a");
    let hdrs = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, marker["message"]["hdrs"].as_str().unwrap()).unwrap();
    assert_eq!(hdrs, b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: 2s\r\nNats-Rollup: sub\r\n\r\n");
    // The marker expires in turn, leaving no marker of its own.
    js.handle_timeout(later(4));
    let state = &ask(&mut js, "$JS.API.STREAM.INFO.M", "")["state"];
    assert_eq!((state["messages"].as_u64(), state["last_seq"].as_u64()), (Some(1), Some(4)));
}
