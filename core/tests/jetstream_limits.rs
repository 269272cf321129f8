//! JetStream's resource limits, driven through the API as a client would:
//! an account's streams, bytes and consumers, and the server's budget.

use bytes::Bytes;
use natrix_core::jetstream::api::AccountLimits;
use natrix_core::jetstream::config::CheckLimits;
use natrix_core::jetstream::JetStream;
use natrix_core::time::UnixNanos;
use serde_json::{json, Value};

const NOW: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

fn server(max_memory: i64) -> JetStream {
    JetStream::new(CheckLimits { jetstream_max_memory: max_memory, ..CheckLimits::default() }, None)
}

/// Sends `body` to `$JS.API.<api>` in `account` and returns the JSON answer.
fn api(js: &mut JetStream, account: &str, api: &str, body: Value) -> Value {
    let payload = Bytes::from(if body.is_null() { Vec::new() } else { body.to_string().into_bytes() });
    let subject = format!("$JS.API.{api}");
    assert!(js.handle_api(account, subject.as_bytes(), Some(&Bytes::from_static(b"_INBOX.r")), &payload, NOW));
    js.flush();
    // Advisories may come first; the answer goes to the requester's inbox.
    let reply = std::iter::from_fn(|| js.poll_reply()).find(|r| &r.subject[..] == b"_INBOX.r").expect("an answer");
    serde_json::from_slice(&reply.payload).unwrap()
}

fn publish(js: &mut JetStream, account: &str, subject: &str, payload: &[u8]) -> Value {
    let reply = Bytes::from_static(b"_INBOX.ack");
    assert!(js.handle_publish(account, subject.as_bytes(), Some(&reply), None, &Bytes::copy_from_slice(payload), NOW));
    js.flush();
    serde_json::from_slice(&js.poll_reply().expect("an ack").payload).unwrap()
}

fn memory_stream(name: &str, max_bytes: i64) -> Value {
    json!({"name": name, "subjects": [format!("{name}.>")], "storage": "memory", "max_bytes": max_bytes})
}

fn err_code(answer: &Value) -> Option<u64> {
    answer["error"]["err_code"].as_u64()
}

#[test]
fn max_streams_refuses_one_more_but_not_the_same_again() {
    let mut js = server(-1);
    js.enable("A", AccountLimits { max_streams: 1, ..AccountLimits::default() });
    let first = api(&mut js, "A", "STREAM.CREATE.S1", memory_stream("S1", -1));
    assert_eq!(err_code(&first), None, "{first}");
    let again = api(&mut js, "A", "STREAM.CREATE.S1", memory_stream("S1", -1));
    assert_eq!(err_code(&again), None, "{again}");
    let second = api(&mut js, "A", "STREAM.CREATE.S2", memory_stream("S2", -1));
    assert_eq!(second["error"], json!({"code": 400, "err_code": 10027, "description": "maximum number of streams reached"}));
}

#[test]
fn reservations_are_bounded_by_the_account_and_reported() {
    let mut js = server(-1);
    js.enable("A", AccountLimits { max_memory: 1000, ..AccountLimits::default() });
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.CREATE.S1", memory_stream("S1", 600))), None);
    let over = api(&mut js, "A", "STREAM.CREATE.S2", memory_stream("S2", 401));
    assert_eq!(over["error"], json!({"code": 500, "err_code": 10028, "description": "insufficient memory resources available"}));
    // Growing S1 past what is left is refused too; shrinking is not.
    let grow = api(&mut js, "A", "STREAM.UPDATE.S1", memory_stream("S1", 1001));
    assert_eq!(err_code(&grow), Some(10028));
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.UPDATE.S1", memory_stream("S1", 500))), None);
    let info = api(&mut js, "A", "INFO", Value::Null);
    assert_eq!(info["reserved_memory"], 500);
    assert_eq!(info["limits"]["max_memory"], 1000);
    assert_eq!(info["limits"]["max_storage"], -1);
}

#[test]
fn publishes_past_the_account_limit_are_refused_and_nothing_is_stored() {
    let mut js = server(-1);
    js.enable("A", AccountLimits { max_memory: 200, ..AccountLimits::default() });
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.CREATE.S", memory_stream("S", -1))), None);
    // Each record counts 22 bytes plus subject and payload: 22 + 3 + 100.
    let ok = publish(&mut js, "A", "S.a", &[b'x'; 100]);
    assert_eq!(ok["seq"], 1, "{ok}");
    let refused = publish(&mut js, "A", "S.a", &[b'x'; 100]);
    assert_eq!(refused["error"], json!({"code": 400, "err_code": 10002, "description": "resource limits exceeded for account"}));
    let info = api(&mut js, "A", "STREAM.INFO.S", Value::Null);
    assert_eq!(info["state"]["messages"], 1);
    // Something smaller still fits.
    assert_eq!(publish(&mut js, "A", "S.a", &[b'x'; 10])["seq"], 2);
}

#[test]
fn the_server_budget_is_shared_by_every_account() {
    let mut js = server(1000);
    js.enable("A", AccountLimits::default());
    js.enable("B", AccountLimits::default());
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.CREATE.S", memory_stream("S", 800))), None);
    let b = api(&mut js, "B", "STREAM.CREATE.T", memory_stream("T", 201));
    assert_eq!(err_code(&b), Some(10028));
    assert_eq!(err_code(&api(&mut js, "B", "STREAM.CREATE.T", memory_stream("T", 200))), None);
}

#[test]
fn a_server_over_its_budget_refuses_publishes() {
    let mut js = server(150);
    js.enable("A", AccountLimits::default());
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.CREATE.S", memory_stream("S", -1))), None);
    // Usage may pass the budget by one message; then the server is full.
    assert_eq!(publish(&mut js, "A", "S.a", &[b'x'; 100])["seq"], 1);
    assert_eq!(publish(&mut js, "A", "S.a", &[b'x'; 100])["seq"], 2);
    let refused = publish(&mut js, "A", "S.a", b"x");
    assert_eq!(refused["error"], json!({"code": 503, "err_code": 10023, "description": "insufficient resources"}));
}

#[test]
fn account_bounds_on_one_stream_apply() {
    let mut js = server(-1);
    let limits = AccountLimits { max_bytes_required: true, memory_max_stream_bytes: 100, ..AccountLimits::default() };
    js.enable("A", limits);
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.CREATE.S", memory_stream("S", -1))), Some(10113));
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.CREATE.S", memory_stream("S", 101))), Some(10122));
    assert_eq!(err_code(&api(&mut js, "A", "STREAM.CREATE.S", memory_stream("S", 100))), None);
}

#[test]
fn max_consumers_of_a_stream_may_not_pass_the_account_limit() {
    let mut js = server(-1);
    js.enable("A", AccountLimits { max_consumers: 2, ..AccountLimits::default() });
    let mut cfg = memory_stream("S", -1);
    cfg["max_consumers"] = json!(3);
    let answer = api(&mut js, "A", "STREAM.CREATE.S", cfg);
    assert_eq!(answer["error"], json!({"code": 400, "err_code": 10026, "description": "maximum consumers limit reached"}));
}
