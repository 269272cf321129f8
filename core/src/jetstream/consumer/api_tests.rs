//! The consumer API driven through [`JetStream`], answers compared byte for
//! byte with nats-server 2.15.1's (captured with nats-py; times and the
//! server version normalised).

use bytes::Bytes;

use crate::jetstream::config::CheckLimits;
use crate::jetstream::{JetStream, Reply};
use crate::time::UnixNanos;

/// Replaces the values of time fields and `_nats.ver` with placeholders.
fn normalise(json: &str) -> String {
    let mut out = json.to_owned();
    for key in ["\"created\":\"", "\"ts\":\"", "\"last_active\":\"", "\"_nats.ver\":\""] {
        let mut from = 0;
        while let Some(i) = out[from..].find(key) {
            let start = from + i + key.len();
            let end = start + out[start..].find('"').unwrap();
            out.replace_range(start..end, "X");
            from = start;
        }
    }
    out
}

fn request(js: &mut JetStream, subject: &str, body: &str, wall: i64) -> String {
    let reply = Bytes::from_static(b"_INBOX.r");
    assert!(js.handle_api("A", subject.as_bytes(), Some(&reply), &Bytes::from(body.to_owned()), UnixNanos(wall)));
    js.flush();
    // Advisories may precede the answer; the answer goes to the inbox.
    let Reply { payload, .. } =
        std::iter::from_fn(|| js.poll_reply()).find(|r| &r.subject[..] == b"_INBOX.r").expect("an answer");
    normalise(std::str::from_utf8(&payload).unwrap())
}

fn setup() -> JetStream {
    let mut js = JetStream::new(CheckLimits::default(), None);
    js.enable("A", crate::jetstream::api::AccountLimits::default());
    let r = request(&mut js, "$JS.API.STREAM.CREATE.S", r#"{"name":"S","subjects":["s.>"],"storage":"memory"}"#, 1);
    assert!(r.contains("did_create"), "{r}");
    for i in 0..3 {
        assert!(js.handle_publish("A", b"s.a", None, None, &Bytes::from_static(b"hi"), UnixNanos(10 + i)));
    }
    js
}

const DURABLE: &str = r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","stream_name":"S","name":"D","created":"2026-12-06T20:43:12.636774324Z","config":{"durable_name":"D","name":"D","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}},"delivered":{"consumer_seq":0,"stream_seq":0},"ack_floor":{"consumer_seq":0,"stream_seq":0},"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":3,"ts":"2026-12-06T20:43:12.636897693Z"}"#;

const FILTERED: &str = r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","stream_name":"S","name":"C3","created":"2026-12-06T20:43:12.639353545Z","config":{"name":"C3","deliver_policy":"all","ack_policy":"none","max_deliver":-1,"filter_subject":"s.a","replay_policy":"instant","max_waiting":512,"inactive_threshold":5000000000,"num_replicas":0,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}},"delivered":{"consumer_seq":0,"stream_seq":0},"ack_floor":{"consumer_seq":0,"stream_seq":0},"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":3,"ts":"2026-12-06T20:43:12.639383555Z"}"#;

const PUSH_EPHEMERAL_CONFIG: &str = r#""config":{"deliver_policy":"all","ack_policy":"none","max_deliver":-1,"replay_policy":"instant","deliver_subject":"dlv","inactive_threshold":5000000000,"num_replicas":0,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}}"#;

const AFTER_ACKS: &str = r#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","stream_name":"S","name":"Q","created":"2026-12-06T20:43:38.640443916Z","config":{"name":"Q","deliver_policy":"all","ack_policy":"explicit","ack_wait":1000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"inactive_threshold":5000000000,"num_replicas":0,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}},"delivered":{"consumer_seq":3,"stream_seq":3,"last_active":"2026-12-06T20:43:38.942797295Z"},"ack_floor":{"consumer_seq":1,"stream_seq":1,"last_active":"2026-12-06T20:43:38.942817115Z"},"num_ack_pending":1,"num_redelivered":0,"num_waiting":0,"num_pending":0,"ts":"2026-12-06T20:43:38.942824818Z"}"#;

#[test]
fn create_responses_match_nats_server() {
    let mut js = setup();
    let r = request(&mut js, "$JS.API.CONSUMER.DURABLE.CREATE.S.D", r#"{"stream_name":"S","config":{"durable_name":"D","ack_policy":"explicit"}}"#, 100);
    assert_eq!(r, normalise(DURABLE));
    let r = request(&mut js, "$JS.API.CONSUMER.CREATE.S.C3.s.a", r#"{"stream_name":"S","config":{"name":"C3","filter_subject":"s.a"}}"#, 100);
    assert_eq!(r, normalise(FILTERED));
    let r = request(&mut js, "$JS.API.CONSUMER.CREATE.S", r#"{"stream_name":"S","config":{"deliver_subject":"dlv","ack_policy":"none"}}"#, 100);
    assert!(r.contains(&normalise(PUSH_EPHEMERAL_CONFIG)), "{r}");
    let names = request(&mut js, "$JS.API.CONSUMER.NAMES.S", "", 100);
    assert!(names.starts_with(r#"{"type":"io.nats.jetstream.api.v1.consumer_names_response","total":3,"offset":0,"limit":1024,"consumers":["#), "{names}");
    assert!(names.contains(r#""C3","D""#), "{names}");
    let info = request(&mut js, "$JS.API.STREAM.INFO.S", "", 100);
    assert!(info.contains(r#""consumer_count":3}"#), "{info}");
}

#[test]
fn errors_match_nats_server() {
    let mut js = setup();
    let cases = [
        ("$JS.API.CONSUMER.CREATE.S.C1", r#"{"stream_name":"S","config":{"name":"C1"},"action":"update"}"#,
         r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10149,"description":"consumer does not exist"}}"#),
        ("$JS.API.CONSUMER.CREATE.S.C4.s.b", r#"{"stream_name":"S","config":{"name":"C4","filter_subject":"s.a"}}"#,
         r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10131,"description":"Consumer create request did not match filtered subject from create subject"}}"#),
        ("$JS.API.CONSUMER.CREATE.S.C5", r#"{"stream_name":"S","config":{"name":"C5","deliver_policy":"by_start_sequence"}}"#,
         r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10094,"description":"consumer delivery policy is deliver by start sequence, but optional start sequence is not set"}}"#),
        ("$JS.API.CONSUMER.CREATE.X.C5", r#"{"stream_name":"X","config":{"name":"C5"}}"#,
         r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#),
        ("$JS.API.CONSUMER.CREATE.S.C7", r#"{"stream_name":"S","config":{"name":"C7","durable_name":"C8"}}"#,
         r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10017,"description":"consumer name in subject does not match durable name in request"}}"#),
        ("$JS.API.CONSUMER.INFO.S.NOPE", "",
         r#"{"type":"io.nats.jetstream.api.v1.consumer_info_response","error":{"code":404,"err_code":10014,"description":"consumer not found"}}"#),
        ("$JS.API.CONSUMER.DELETE.S.NOPE", "",
         r#"{"type":"io.nats.jetstream.api.v1.consumer_delete_response","error":{"code":404,"err_code":10014,"description":"consumer not found"}}"#),
    ];
    for (subject, body, want) in cases {
        assert_eq!(request(&mut js, subject, body, 100), want, "{subject}");
    }
    let ok = request(&mut js, "$JS.API.CONSUMER.CREATE.S.C1", r#"{"stream_name":"S","config":{"name":"C1"},"action":"create"}"#, 100);
    assert!(ok.contains(r#""name":"C1""#));
    let again = request(&mut js, "$JS.API.CONSUMER.CREATE.S.C1", r#"{"stream_name":"S","config":{"name":"C1"},"action":"create"}"#, 100);
    assert_eq!(again, r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10148,"description":"consumer already exists"}}"#);
    assert_eq!(request(&mut js, "$JS.API.CONSUMER.DELETE.S.C1", "", 100), r#"{"type":"io.nats.jetstream.api.v1.consumer_delete_response","success":true}"#);
}

#[test]
fn acks_through_the_manager_match_nats_server_info() {
    let mut js = setup();
    request(&mut js, "$JS.API.CONSUMER.CREATE.S.Q", r#"{"stream_name":"S","config":{"name":"Q","ack_policy":"explicit","ack_wait":1000000000}}"#, 100);
    let inbox = Bytes::from_static(b"inb");
    assert!(js.handle_api("A", b"$JS.API.CONSUMER.MSG.NEXT.S.Q", Some(&inbox), &Bytes::from_static(br#"{"batch":3,"no_wait":true}"#), UnixNanos(200)));
    let out: Vec<_> = std::iter::from_fn(|| js.poll_delivery()).collect();
    assert_eq!(out.len(), 3, "the batch is complete: no status follows");
    let acks: Vec<Bytes> = out.iter().filter_map(|(_, d)| d.reply.clone()).collect();
    assert_eq!(&acks[0][..], b"$JS.ACK.S.Q.1.1.1.10.2");
    let confirm = Bytes::from_static(b"_INBOX.ack");
    assert!(js.handle_ack("A", &acks[0], Some(&confirm), &Bytes::from_static(b"+ACK"), UnixNanos(300)));
    js.flush();
    let r = js.poll_reply().expect("the double-ack confirmation");
    assert_eq!((&r.subject[..], r.payload.len()), (&b"_INBOX.ack"[..], 0));
    assert!(js.handle_ack("A", &acks[1], None, &Bytes::from_static(br#"-NAK {"delay":100000000}"#), UnixNanos(300)));
    assert!(js.handle_ack("A", &acks[2], None, &Bytes::from_static(b"+TERM reason"), UnixNanos(300)));
    let info = request(&mut js, "$JS.API.CONSUMER.INFO.S.Q", "", 400);
    assert_eq!(info, normalise(AFTER_ACKS));
}

#[test]
fn create_answers_as_nats_server_where_the_differential_suite_found_otherwise() {
    let mut js = setup();
    let error = |r: &str| serde_json::from_str::<serde_json::Value>(r).unwrap()["error"].clone();
    // No config: an empty one, named by the subject.
    let r = request(&mut js, "$JS.API.CONSUMER.CREATE.S.E", r#"{"stream_name":"S"}"#, 100);
    assert!(r.contains(r#""name":"E""#) && error(&r).is_null(), "{r}");
    // `action: create` of a durable with the very configuration it has is no error.
    let durable = r#"{"stream_name":"S","config":{"durable_name":"D","ack_policy":"explicit"},"action":"create"}"#;
    assert!(error(&request(&mut js, "$JS.API.CONSUMER.CREATE.S.D", durable, 100)).is_null());
    assert!(error(&request(&mut js, "$JS.API.CONSUMER.CREATE.S.D", durable, 100)).is_null());
    let changed = r#"{"stream_name":"S","config":{"durable_name":"D","ack_policy":"all"},"action":"create"}"#;
    assert_eq!(error(&request(&mut js, "$JS.API.CONSUMER.CREATE.S.D", changed, 100))["err_code"], 10148);
    // Go's texts for an unknown field and an unknown policy.
    let r = request(&mut js, "$JS.API.CONSUMER.CREATE.S.X", r#"{"stream_name":"S","config":{"max_request_batch":2}}"#, 100);
    assert_eq!(error(&r)["description"], r#"invalid JSON: json: unknown field "max_request_batch""#);
    let r = request(&mut js, "$JS.API.CONSUMER.CREATE.S.X", r#"{"stream_name":"S","config":{"ack_policy":"sometimes"}}"#, 100);
    assert_eq!(error(&r)["description"], r#"invalid JSON: can not unmarshal "\"sometimes\"""#);
}

#[test]
fn an_unreadable_pull_request_is_a_400_in_go_s_words() {
    let mut js = setup();
    request(&mut js, "$JS.API.CONSUMER.CREATE.S.Q", r#"{"stream_name":"S","config":{"name":"Q"}}"#, 100);
    let inbox = Bytes::from_static(b"inb");
    assert!(js.handle_api("A", b"$JS.API.CONSUMER.MSG.NEXT.S.Q", Some(&inbox), &Bytes::from_static(b"{bad json"), UnixNanos(200)));
    let (_, d) = js.poll_delivery().expect("a status");
    let status = d.headers.unwrap();
    assert_eq!(&status[..], &b"NATS/1.0 400 Bad Request - invalid character 'b' looking for beginning of object key string\r\n\r\n"[..]);
}

/// The `flow_control` ack policy (nats-server 2.14): its defaults, its
/// required API level and its checks, each answer as nats-server 2.15.1's.
#[test]
fn flow_control_ack_policy_matches_nats_server() {
    let mut js = setup();
    let cases: [(&str, &str, &str); 7] = [
        (
            "$JS.API.CONSUMER.DURABLE.CREATE.S.F",
            r#"{"stream_name":"S","config":{"durable_name":"F","deliver_subject":"fc.d","ack_policy":"flow_control"}}"#,
            r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","stream_name":"S","name":"F","created":"2026-12-07T06:32:11.578609335Z","config":{"durable_name":"F","name":"F","deliver_policy":"all","ack_policy":"flow_control","max_deliver":-1,"replay_policy":"instant","max_ack_pending":1000,"flow_control":true,"deliver_subject":"fc.d","idle_heartbeat":1000000000,"num_replicas":0,"metadata":{"_nats.level":"5","_nats.req.level":"4","_nats.ver":"2.15.1"}},"delivered":{"consumer_seq":0,"stream_seq":0},"ack_floor":{"consumer_seq":0,"stream_seq":0},"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":3,"ts":"2026-12-07T06:32:11.578688795Z"}"#,
        ),
        (
            "$JS.API.CONSUMER.CREATE.S.P",
            r#"{"stream_name":"S","config":{"name":"P","ack_policy":"flow_control"}}"#,
            r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10218,"description":"flow control ack policy requires a push based consumer"}}"#,
        ),
        (
            "$JS.API.CONSUMER.CREATE.S.P",
            r#"{"stream_name":"S","pedantic":true,"config":{"name":"P","deliver_subject":"fc.p","ack_policy":"flow_control","max_ack_pending":5}}"#,
            r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10219,"description":"flow control ack policy requires flow control"}}"#,
        ),
        (
            "$JS.API.CONSUMER.CREATE.S.P",
            r#"{"stream_name":"S","pedantic":true,"config":{"name":"P","deliver_subject":"fc.p","ack_policy":"flow_control","flow_control":true,"idle_heartbeat":2000000000,"max_ack_pending":5}}"#,
            r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":500,"err_code":10052,"description":"flow control ack policy heartbeat needs to be 1s"}}"#,
        ),
        (
            "$JS.API.CONSUMER.CREATE.S.P",
            r#"{"stream_name":"S","config":{"name":"P","deliver_subject":"fc.p","ack_policy":"flow_control","ack_wait":5000000000}}"#,
            r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10221,"description":"flow control ack policy requires unset ack wait"}}"#,
        ),
        (
            "$JS.API.CONSUMER.CREATE.S.P",
            r#"{"stream_name":"S","config":{"name":"P","deliver_subject":"fc.p","ack_policy":"flow_control","max_deliver":3}}"#,
            r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","error":{"code":400,"err_code":10222,"description":"flow control ack policy requires unset max deliver"}}"#,
        ),
        (
            "$JS.API.CONSUMER.CREATE.S.P",
            r#"{"stream_name":"S","pedantic":true,"config":{"name":"P","deliver_subject":"fc.p","ack_policy":"flow_control","flow_control":true,"idle_heartbeat":1000000000}}"#,
            r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","stream_name":"S","name":"P","created":"2026-12-07T06:32:11.58471219Z","config":{"name":"P","deliver_policy":"all","ack_policy":"flow_control","max_deliver":-1,"replay_policy":"instant","max_ack_pending":1000,"flow_control":true,"deliver_subject":"fc.p","idle_heartbeat":1000000000,"inactive_threshold":5000000000,"num_replicas":0,"metadata":{"_nats.level":"5","_nats.req.level":"4","_nats.ver":"2.15.1"}},"delivered":{"consumer_seq":0,"stream_seq":0},"ack_floor":{"consumer_seq":0,"stream_seq":0},"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":3,"ts":"2026-12-07T06:32:11.584776618Z"}"#,
        ),
    ];
    for (subject, body, want) in cases {
        assert_eq!(request(&mut js, subject, body, 100), normalise(want), "{body}");
    }
}
