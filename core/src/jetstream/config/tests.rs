use super::*;
use crate::jetstream::api::json::to_go_json;
use crate::jetstream::api::StreamConfigRequest;

fn parse(json: &str) -> StreamConfig {
    StreamConfigRequest::parse(json.as_bytes()).unwrap().config
}

fn create(json: &str) -> Result<StreamConfig, crate::jetstream::api::ApiError> {
    check_stream_config(parse(json), &CheckLimits::default())
}

fn create_err(json: &str) -> (u16, u16, String) {
    let e = create(json).unwrap_err();
    (e.code, e.err_code, e.description)
}

/// The `config` of nats-server 2.15.1's answer to
/// `{"name":"S1","subjects":["foo.>"]}` (dynamic metadata included).
const S1_CONFIG: &str = r#"{"name":"S1","subjects":["foo.\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"file","num_replicas":1,"duplicate_window":120000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{},"allow_msg_ttl":false,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}}"#;

#[test]
fn defaults_match_nats_server_create() {
    let mut cfg = create(r#"{"name":"S1","subjects":["foo.>"]}"#).unwrap();
    cfg.set_static_metadata();
    let sent = cfg.with_dynamic_metadata("2.15.1");
    assert_eq!(String::from_utf8(to_go_json(&sent)).unwrap(), S1_CONFIG);
}

#[test]
fn config_round_trips_nats_server_json() {
    let cfg: StreamConfig = serde_json::from_str(S1_CONFIG).unwrap();
    assert_eq!(String::from_utf8(to_go_json(&cfg)).unwrap(), S1_CONFIG);
    // A memory stream with most optional fields, as 2.15.1 returned it.
    let rich = r#"{"name":"M","description":"d","subjects":["m.*"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":1000000000,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"memory","num_replicas":1,"duplicate_window":1000000000,"compression":"none","republish":{"src":"\u003e","dest":"rp.\u003e"},"allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":true,"consumer_limits":{"max_ack_pending":5},"allow_msg_ttl":true,"subject_delete_marker_ttl":2000000000,"metadata":{"_nats.level":"5","_nats.req.level":"1","_nats.ver":"2.15.1","a":"b"}}"#;
    let cfg: StreamConfig = serde_json::from_str(rich).unwrap();
    assert_eq!(String::from_utf8(to_go_json(&cfg)).unwrap(), rich);
}

#[test]
fn create_applies_defaults_like_nats_server() {
    // Returned by 2.15.1 for the request below (modulo metadata).
    let req = r#"{"name":"M","storage":"memory","subjects":["m.*"],"max_age":1000000000,"allow_msg_ttl":true,"subject_delete_marker_ttl":2000000000,"placement":{},"republish":{"dest":"rp.>"}}"#;
    let cfg = create(req).unwrap();
    assert_eq!(cfg.duplicate_window, 1_000_000_000, "capped to max_age");
    assert!(cfg.allow_rollup_hdrs, "delete markers turn roll-ups on");
    assert_eq!(cfg.placement, None, "empty placement dropped");
    assert_eq!(cfg.republish.unwrap().src, ">");
    let cfg = create(r#"{"name":"X"}"#).unwrap();
    assert_eq!(cfg.subjects, vec!["X".to_string()]);
    assert_eq!(
        (
            cfg.max_msgs,
            cfg.max_bytes,
            cfg.max_consumers,
            cfg.max_msg_size
        ),
        (-1, -1, -1, -1)
    );
    assert_eq!(cfg.num_replicas, 1);
    let mirror = create(r#"{"name":"ab","mirror":{"name":"X"}}"#).unwrap();
    assert!(mirror.subjects.is_empty());
    assert_eq!(mirror.duplicate_window, 0, "no default window on mirrors");
    let sched = create(r#"{"name":"E","allow_msg_schedules":true}"#).unwrap();
    assert!(sched.allow_rollup_hdrs);
}

#[test]
fn discard_is_case_insensitive() {
    assert_eq!(
        parse(r#"{"name":"X","discard":"NEW"}"#).discard,
        DiscardPolicy::New
    );
}

#[test]
fn validation_errors_match_nats_server() {
    let long_description = format!(r#"{{"name":"ab","description":"{}"}}"#, "a".repeat(4097));
    // Each case was sent to nats-server 2.15.1; the answers are its own.
    let cases: Vec<(&str, (u16, u16, &str))> = vec![
        (r#"{"name":"X","num_replicas":3}"#, (500, 10074, "replicas > 1 not supported in non-clustered mode")),
        (r#"{"name":"X","sealed":true}"#, (500, 10052, "stream configuration for create can not be sealed")),
        (r#"{"name":"X","max_age":10000000}"#, (500, 10052, "max age needs to be >= 100ms")),
        (r#"{"name":"X","subjects":["a.>","a.b"]}"#, (500, 10052, r#"subject "a.>" overlaps with "a.b""#)),
        (r#"{"name":"X","subjects":["foo..bar"]}"#, (500, 10052, "invalid subject")),
        (r#"{"name":"X","discard_new_per_subject":true}"#, (500, 10052, "discard new per subject requires discard new policy to be set")),
        (r#"{"name":"a/b"}"#, (400, 10128, "Stream name can not contain path separators")),
        (r#"{"name":"ab","mirror_direct":true}"#, (500, 10052, "stream has no mirror but does have mirror direct")),
        (r#"{"name":"ab","subjects":[">"]}"#, (500, 10052, "capturing all subjects requires no-ack to be true")),
        (r#"{"name":"ab","subjects":["$JS.API.>"]}"#, (500, 10052, "subjects that overlap with jetstream api require no-ack to be true")),
        (r#"{"name":"ab","deny_purge":true,"allow_rollup_hdrs":true}"#, (500, 10052, "roll-ups require the purge permission")),
        (r#"{"name":"ab","max_age":1000000000,"duplicate_window":5000000000}"#, (500, 10052, "duplicates window can not be larger then max age")),
        (r#"{"name":"ab","mirror":{"name":"X"},"subjects":["z"]}"#, (400, 10034, "stream mirrors can not contain subjects")),
        (r#"{"name":"ab","num_replicas":-1}"#, (400, 10133, "replicas count cannot be negative")),
        (r#"{"name":"ab","num_replicas":6}"#, (500, 10052, "maximum replicas is 5")),
        (r#"{"name":"ab","subjects":["q"],"republish":{"src":"q","dest":"q"}}"#, (500, 10052, "stream configuration for republish destination forms a cycle")),
        (r#"{"name":"ab","subject_transform":{"src":"ab","dest":"x.*"}}"#, (400, 10156, "stream transform: invalid subject")),
        (r#"{"name":"ab","subject_transform":{"src":"ab.*","dest":"x.$2"},"subjects":["ab.*"]}"#, (400, 10156, "stream transform: invalid mapping destination: wildcard index out of range in $2: [2]")),
        (r#"{"name":"ab","placement":{"preferred":"x"}}"#, (500, 10052, "preferred server not permitted in placement")),
        (r#"{"name":"ab","sources":[{"name":"X"},{"name":"X"}]}"#, (400, 10140, "duplicate source configuration detected")),
        (r#"{"name":"ab","mirror":{"name":"X"},"first_seq":5}"#, (400, 10143, "stream mirrors can not have first sequence configured")),
        (&long_description, (500, 10052, "stream description is too long, maximum allowed is 4096")),
        (r#"{"name":"ab","max_msgs_per_subject":0,"discard":"new","discard_new_per_subject":true}"#, (500, 10052, "discard new per subject requires max msgs per subject > 0")),
        (r#"{"name":"ab","subject_delete_marker_ttl":500000000}"#, (500, 10052, "subject delete marker TTL must be at least 1 second")),
        (r#"{"name":"ab","subjects":["a","a"]}"#, (500, 10052, r#"subject "a" overlaps with "a""#)),
        (r#"{"name":"ab","duplicate_window":-5}"#, (500, 10052, "duplicates window can not be negative")),
        (r#"{"name":"ab","max_age":-5}"#, (500, 10052, "max age can not be negative")),
        (r#"{"name":"B","persist_mode":"async","allow_atomic":true}"#, (500, 10052, "async persist mode is not supported with atomic batch publish")),
        (r#"{"name":"a.b"}"#, (500, 10052, "stream name is required and can not contain '.', '*', '>', '\\', '/'")),
        (r#"{"name":"ab","allow_msg_counter":true,"discard":"new"}"#, (500, 10052, "counter stream cannot use discard new")),
    ];
    for (req, (code, err_code, text)) in cases {
        assert_eq!(create_err(req), (code, err_code, text.to_string()), "{req}");
    }
}

#[test]
fn update_rules_match_nats_server() {
    let limits = CheckLimits::default();
    let old = create(r#"{"name":"M","storage":"memory","subjects":["m.*"],"max_age":1000000000,"allow_msg_ttl":true}"#).unwrap();
    let upd = |json: &str| check_stream_update(&old, parse(json), &limits);
    let err = |json: &str| upd(json).unwrap_err().description;
    assert_eq!(
        err(r#"{"name":"M","storage":"file","subjects":["m.*"]}"#),
        "stream configuration update can not change storage type"
    );
    assert_eq!(
        err(r#"{"name":"M","storage":"memory","retention":"workqueue","subjects":["m.*"]}"#),
        "stream configuration update can not change retention policy to/from workqueue"
    );
    assert_eq!(
        err(r#"{"name":"M","storage":"memory","subjects":["m.*"]}"#),
        "message TTL status can not be disabled"
    );
    let r3 = upd(r#"{"name":"M","storage":"memory","subjects":["m.*"],"max_age":1000000000,"allow_msg_ttl":true,"num_replicas":3}"#).unwrap_err();
    assert_eq!((r3.code, r3.err_code), (500, 10074));
    assert_eq!(
        err(r#"{"name":"Q","storage":"memory","allow_msg_ttl":true}"#),
        "stream configuration name must match original"
    );
    // Sealing adjusts the config as 2.15.1 did.
    let sealed = upd(r#"{"name":"M","storage":"memory","subjects":["m.*"],"max_age":1000000000,"allow_msg_ttl":true,"sealed":true}"#).unwrap();
    assert_eq!((sealed.max_age, sealed.discard), (0, DiscardPolicy::New));
    assert!(sealed.deny_delete && sealed.deny_purge && !sealed.allow_rollup_hdrs);
    let unseal = check_stream_update(
        &sealed,
        parse(r#"{"name":"M","storage":"memory","subjects":["m.*"],"allow_msg_ttl":true}"#),
        &limits,
    );
    assert_eq!(
        unseal.unwrap_err().description,
        "stream configuration update can not unseal a sealed stream"
    );
    let mirror = create(r#"{"name":"ab","mirror":{"name":"X"}}"#).unwrap();
    let moved = check_stream_update(
        &mirror,
        parse(r#"{"name":"ab","mirror":{"name":"Y"}}"#),
        &limits,
    );
    assert_eq!(moved.unwrap_err().err_code, 10055);
    assert!(
        check_stream_update(&mirror, parse(r#"{"name":"ab"}"#), &limits).is_ok(),
        "promotion"
    );
}

#[test]
fn names_and_overlaps() {
    assert!(valid_stream_name("ORDERS-1_x"));
    for bad in [
        "",
        "a.b",
        "a*",
        "a>",
        "a b",
        "a/b",
        "a\\b",
        &"x".repeat(256),
    ] {
        assert!(!valid_stream_name(bad), "{bad}");
    }
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(subjects_overlap(&s(&["foo.>"]), &s(&["foo.bar"])));
    assert!(subjects_overlap(&s(&["foo.*.baz"]), &s(&["foo.bar.*"])));
    assert!(!subjects_overlap(&s(&["foo.>"]), &s(&["foo"])));
    assert!(!subjects_overlap(&s(&["a.*"]), &s(&["a.b.c"])));
    assert!(
        subjects_overlap(&s(&["x", "a.*"]), &s(&["a.b.>"])) == subjects_collide("a.*", "a.b.>")
    );
}

#[test]
fn cycles_are_detected_through_lookup() {
    let a = create(r#"{"name":"A","sources":[{"name":"B"}]}"#).unwrap();
    let lookup = move |name: &str| (name == "A").then(|| a.clone());
    let b = parse(r#"{"name":"B","sources":[{"name":"A"}]}"#);
    let err = checks::check_stream_config_with(b, &CheckLimits::default(), &lookup).unwrap_err();
    assert_eq!(err.description, "detected cycle");
}

#[test]
fn static_metadata_levels() {
    let mut cfg = parse(r#"{"name":"B","allow_batched":true}"#);
    cfg.set_static_metadata();
    assert_eq!(cfg.metadata[METADATA_REQUIRED_LEVEL], "4");
    let mut repeat = parse(r#"{"name":"B","allow_batched":true,"metadata":{"_nats.ver":"x"}}"#);
    repeat.copy_metadata_from(&cfg);
    assert_eq!(repeat.metadata, cfg.metadata);
}
