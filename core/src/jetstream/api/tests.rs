//! Responses checked byte for byte against nats-server 2.15.1's answers.

use super::requests::*;
use super::responses::*;
use super::*;
use crate::jetstream::config::{check_stream_config, CheckLimits};

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

const CREATE_S1: &str = r#"{"type":"io.nats.jetstream.api.v1.stream_create_response","config":{"name":"S1","subjects":["foo.\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"file","num_replicas":1,"duplicate_window":120000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{},"allow_msg_ttl":false,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}},"created":"2026-12-06T19:59:27.716123485Z","state":{"messages":0,"bytes":0,"first_seq":0,"first_ts":"0001-01-01T00:00:00Z","last_seq":0,"last_ts":"0001-01-01T00:00:00Z","consumer_count":0},"ts":"2026-12-06T19:59:27.716760827Z","did_create":true}"#;

const INFO_X: &str = r#"{"type":"io.nats.jetstream.api.v1.stream_info_response","total":0,"offset":0,"limit":0,"config":{"name":"X","subjects":["X"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"new","storage":"file","num_replicas":1,"duplicate_window":120000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{},"allow_msg_ttl":false,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}},"created":"2026-12-06T20:00:26.395741004Z","state":{"messages":0,"bytes":0,"first_seq":2,"first_ts":"0001-01-01T00:00:00Z","last_seq":1,"last_ts":"2026-12-06T20:00:37.286547227Z","consumer_count":0},"cluster":{"leader":"NB3PTAVO3YXILQISCDZUTSY2NAXNWWOWQOM4YMXX2RLITXCTTBMQBQN5"},"ts":"2026-12-06T20:02:29.762647115Z"}"#;

fn strip_type_and(json: &str, drop: &[&str]) -> StreamInfo {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
    for k in drop {
        v.remove(*k);
    }
    serde_json::from_value(serde_json::Value::Object(v)).unwrap()
}

#[test]
fn create_response_matches_nats_server() {
    let info = strip_type_and(CREATE_S1, &["type", "did_create"]);
    assert_eq!(text(stream_create_response(&info)), CREATE_S1);
    // The same config, built from the request through the checks.
    let req = StreamConfigRequest::parse(br#"{"name":"S1","subjects":["foo.>"]}"#).unwrap();
    let mut cfg = check_stream_config(req.config, &CheckLimits::default()).unwrap();
    cfg.set_static_metadata();
    assert_eq!(cfg.with_dynamic_metadata("2.15.1"), info.config);
}

#[test]
fn info_response_matches_nats_server() {
    let info = strip_type_and(INFO_X, &["type", "total", "offset", "limit"]);
    assert_eq!(info.state.first_ts, None);
    assert!(info.state.last_ts.is_some());
    assert_eq!(
        text(stream_info_response(&info, ApiPaged::default())),
        INFO_X
    );
}

#[test]
fn error_bodies_match_nats_server() {
    let cases = [
        (
            kinds::STREAM_CREATE,
            ApiError::stream_name_exist(),
            r#"{"type":"io.nats.jetstream.api.v1.stream_create_response","error":{"code":400,"err_code":10058,"description":"stream name already in use with a different configuration"}}"#,
        ),
        (
            kinds::STREAM_CREATE,
            ApiError::stream_replicas_not_supported(),
            r#"{"type":"io.nats.jetstream.api.v1.stream_create_response","error":{"code":500,"err_code":10074,"description":"replicas \u003e 1 not supported in non-clustered mode"}}"#,
        ),
        (
            kinds::STREAM_INFO,
            ApiError::stream_not_found(),
            r#"{"type":"io.nats.jetstream.api.v1.stream_info_response","error":{"code":404,"err_code":10059,"description":"stream not found"},"total":0,"offset":0,"limit":0}"#,
        ),
        (
            kinds::STREAM_PURGE,
            ApiError::bad_request(),
            r#"{"type":"io.nats.jetstream.api.v1.stream_purge_response","error":{"code":400,"err_code":10003,"description":"bad request"},"purged":0}"#,
        ),
        (
            kinds::STREAM_NAMES,
            ApiError::invalid_json(r#"json: unknown field "x""#),
            r#"{"type":"io.nats.jetstream.api.v1.stream_names_response","error":{"code":400,"err_code":10025,"description":"invalid JSON: json: unknown field \"x\""},"total":0,"offset":0,"limit":0,"streams":null}"#,
        ),
        (
            kinds::STREAM_MSG_DELETE,
            ApiError::stream_msg_delete_failed("stream store EOF"),
            r#"{"type":"io.nats.jetstream.api.v1.stream_msg_delete_response","error":{"code":500,"err_code":10057,"description":"stream store EOF"}}"#,
        ),
        (
            kinds::STREAM_DELETE,
            ApiError::not_empty_request(),
            r#"{"type":"io.nats.jetstream.api.v1.stream_delete_response","error":{"code":400,"err_code":10038,"description":"expected an empty request payload"}}"#,
        ),
    ];
    for (kind, err, want) in cases {
        assert_eq!(text(error_response(kind, &err)), want);
    }
}

#[test]
fn request_json_errors_match_nats_server() {
    let err = |body: &str| {
        StreamConfigRequest::parse(body.as_bytes())
            .unwrap_err()
            .description
    };
    assert_eq!(
        err(r#"{"name":"X","foo":1}"#),
        r#"invalid JSON: json: unknown field "foo""#
    );
    assert_eq!(err(r#"{"name":"#), "invalid JSON: unexpected EOF");
    assert_eq!(err(r#"{"name":"X","max_msgs":"a"}"#), "invalid JSON: json: cannot unmarshal string into Go struct field StreamConfigRequest.max_msgs of type int64");
    assert_eq!(
        err(r#"{"name":"X","retention":"bogus"}"#),
        r#"invalid JSON: can not unmarshal "\"bogus\"""#
    );
    assert_eq!(
        err(r#"{"name":"X","compression":"zz"}"#),
        "invalid JSON: unknown compression algorithm"
    );
    assert_eq!(err(r#"{"name":"X","max_msg_size":3000000000}"#), "invalid JSON: json: cannot unmarshal number 3000000000 into Go struct field StreamConfigRequest.max_msg_size of type int32");
    assert_eq!(err("[1]"), "invalid JSON: json: cannot unmarshal array into Go value of type server.StreamConfigRequest");
    assert_eq!(
        err(r#"{"name":"T","template_owner":"x"}"#),
        r#"invalid JSON: json: unknown field "template_owner""#
    );
    // Empty, null, and several values (the last name wins) decode.
    assert_eq!(StreamConfigRequest::parse(b"").unwrap().config.name, "");
    assert_eq!(StreamConfigRequest::parse(b"null").unwrap().config.name, "");
    assert_eq!(
        StreamConfigRequest::parse(br#"{"name":"X"} {"name":"Z"}"#)
            .unwrap()
            .config
            .name,
        "Z"
    );
    assert!(
        StreamConfigRequest::parse(br#"{"name":"X","pedantic":true}"#)
            .unwrap()
            .pedantic
    );
}

#[test]
fn msg_get_and_delete_requests() {
    let bad = |body: &str| MsgGetRequest::parse(body.as_bytes()).unwrap_err().err_code;
    for body in [
        "",
        "{}",
        r#"{"seq":1,"last_by_subj":"X"}"#,
        r#"{"batch":2}"#,
        r#"{"last_by_subj":"a","next_by_subj":"b"}"#,
    ] {
        assert_eq!(bad(body), 10003, "{body}");
    }
    assert_eq!(MsgGetRequest::parse(br#"{"seq":1}"#).unwrap().seq, 1);
    assert!(
        MsgGetRequest::parse(br#"{"seq":1,"no_hdr":true}"#)
            .unwrap()
            .no_hdr
    );
    assert_eq!(
        MsgGetRequest::parse(br#"{"seq":5,"next_by_subj":"a.*"}"#)
            .unwrap()
            .next_by_subj,
        "a.*"
    );
    assert_eq!(MsgDeleteRequest::parse(b"").unwrap_err().err_code, 10003);
    assert!(
        MsgDeleteRequest::parse(br#"{"seq":1,"no_erase":true}"#)
            .unwrap()
            .no_erase
    );
    assert_eq!(
        StreamPurgeRequest::parse(br#"{"seq":1,"keep":1}"#)
            .unwrap_err()
            .err_code,
        10003
    );
    assert_eq!(StreamPurgeRequest::parse(b"garbage").unwrap(), None);
    assert_eq!(
        check_empty_request(br#"{"a":1}"#).unwrap_err().err_code,
        10038
    );
    assert!(check_empty_request(b" {} ").is_ok());
    assert_eq!(
        StreamNamesRequest::parse(br#"{"offset":-4}"#)
            .unwrap()
            .offset,
        0
    );
    assert_eq!(
        StreamInfoRequest::parse(br#"{"bogus":true}"#)
            .unwrap_err()
            .description,
        r#"invalid JSON: json: unknown field "bogus""#
    );
}

#[test]
fn success_bodies_match_nats_server() {
    let msg = StoredMsgJson {
        subject: "X".into(),
        seq: 1,
        hdrs: b"NATS/1.0\r\nNats-Msg-Id: a1\r\n\r\n".to_vec(),
        data: b"hello".to_vec(),
        time: UnixNanos(1_796_587_237_286_547_227),
    };
    assert_eq!(
        text(stream_msg_get_response(&msg)),
        r#"{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"X","seq":1,"hdrs":"TkFUUy8xLjANCk5hdHMtTXNnLUlkOiBhMQ0KDQo=","data":"aGVsbG8=","time":"2026-12-06T20:00:37.286547227Z"}}"#
    );
    assert_eq!(
        text(success_response(kinds::STREAM_DELETE)),
        r#"{"type":"io.nats.jetstream.api.v1.stream_delete_response","success":true}"#
    );
    assert_eq!(
        text(stream_purge_response(0)),
        r#"{"type":"io.nats.jetstream.api.v1.stream_purge_response","success":true,"purged":0}"#
    );
    let names = vec!["S1".to_string(), "X".to_string()];
    let paged = ApiPaged {
        total: 2,
        offset: 0,
        limit: NAMES_LIMIT,
    };
    assert_eq!(
        text(stream_names_response(&names, paged)),
        r#"{"type":"io.nats.jetstream.api.v1.stream_names_response","total":2,"offset":0,"limit":1024,"streams":["S1","X"]}"#
    );
}

#[test]
fn account_info_matches_nats_server() {
    let want = r#"{"type":"io.nats.jetstream.api.v1.account_info_response","memory":0,"storage":0,"reserved_memory":0,"reserved_storage":0,"streams":1,"consumers":0,"limits":{"max_memory":-1,"max_storage":-1,"max_streams":-1,"max_consumers":-1,"max_ack_pending":-1,"memory_max_stream_bytes":-1,"storage_max_stream_bytes":-1,"max_bytes_required":false},"api":{"level":5,"total":2,"errors":0}}"#;
    let info = AccountInfo {
        streams: 1,
        api: ApiStats {
            level: 5,
            total: 2,
            errors: 0,
        },
        ..Default::default()
    };
    assert_eq!(text(account_info_response(&info)), want);
}

#[test]
fn pub_acks_match_nats_server() {
    let ack = PubAck {
        stream: "X".into(),
        seq: 1,
        ..Default::default()
    };
    assert_eq!(text(ack.to_json()), r#"{"stream":"X","seq":1}"#);
    let dup = PubAck {
        duplicate: true,
        ..ack
    };
    assert_eq!(
        text(dup.to_json()),
        r#"{"stream":"X","seq":1,"duplicate": true}"#
    );
    let err = PubAck::error_json("X", "", &ApiError::stream_wrong_last_sequence(1));
    assert_eq!(
        text(err),
        r#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 1"},"stream":"X","seq":0}"#
    );
    let err = PubAck::error_json("X", "", &ApiError::stream_rollup_not_allowed());
    assert_eq!(
        text(err),
        r#"{"error":{"code":500,"err_code":10111,"description":"rollup not permitted"},"stream":"X","seq":0}"#
    );
}

#[test]
fn stream_action_advisory_shape() {
    let adv = StreamActionAdvisory::new(
        "ID".into(),
        UnixNanos(0),
        "S".into(),
        StreamAction::Modify,
        String::new(),
    );
    assert_eq!(adv.subject(), "$JS.EVENT.ADVISORY.STREAM.UPDATED.S");
    assert_eq!(
        text(adv.to_json()),
        r#"{"type":"io.nats.jetstream.advisory.v1.stream_action","id":"ID","timestamp":"1970-01-01T00:00:00Z","stream":"S","action":"modify"}"#
    );
}
