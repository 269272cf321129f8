//! What JetStream answers and keeps when its disk fails it (a full disk,
//! damaged metadata), and when its acknowledgements go: after the sync
//! covering their writes, or at once with a sync interval. The test disk
//! completes syncs only when told to and forgets unsynced writes in a crash.

use std::time::Duration;

use bytes::Bytes;

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

/// Sends an API request or a publish, completes the syncs, and returns
/// the payload of every reply to the requester.
fn send(js: &mut JetStream, disk: &TestDisk, subject: &str, payload: &str) -> Vec<String> {
    let reply = Bytes::from_static(b"_INBOX.r");
    let payload = Bytes::copy_from_slice(payload.as_bytes());
    if !js.handle_api("A", subject.as_bytes(), Some(&reply), &payload, WALL) {
        js.handle_publish("A", subject.as_bytes(), Some(&reply), None, &payload, WALL);
    }
    js.flush();
    if let Some(token) = disk.complete_syncs() {
        js.handle_synced(token);
    }
    // Only what went to the requester's inbox (advisories go elsewhere).
    std::iter::from_fn(|| js.poll_reply())
        .filter(|r| &r.subject[..] == b"_INBOX.r")
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

const CREATE: &str = r#"{"name":"S","subjects":["s.>"],"storage":"file"}"#;

#[test]
fn a_full_disk_refuses_publishes_with_insufficient_resources_then_recovers() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    assert!(send(&mut js, &disk, "$JS.API.STREAM.CREATE.S", CREATE)[0].contains(r#""config""#));
    assert!(send(&mut js, &disk, "s.a", "one")[0].contains(r#""seq":1"#));
    disk.set_full(true);
    let refused = send(&mut js, &disk, "s.a", "two");
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].contains(r#""code":503"#) && refused[0].contains(r#""err_code":10023"#)
            && refused[0].contains("insufficient resources"),
        "{refused:?}"
    );
    disk.set_full(false);
    assert!(send(&mut js, &disk, "s.a", "three")[0].contains(r#""seq":2"#));
}

#[test]
fn a_stream_whose_metadata_is_damaged_is_kept_not_recreated_over() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    send(&mut js, &disk, "$JS.API.STREAM.CREATE.S", CREATE);
    assert!(send(&mut js, &disk, "s.a", "kept")[0].contains(r#""seq":1"#));
    // One flipped bit in the metadata costs one of its copies only.
    let meta: Vec<(String, usize)> = disk.files().into_iter().filter(|(n, _)| n.contains(".meta.")).collect();
    assert_eq!(meta.len(), 1);
    let (name, len) = meta[0].clone();
    disk.flip_bit(&name, 3, 1);
    let mut js = start(&disk);
    assert!(send(&mut js, &disk, "$JS.API.STREAM.INFO.S", "")[0].contains(r#""messages":1"#));
    // Both copies damaged: the stream cannot come back, and a new stream
    // of the same name must not overwrite its messages.
    disk.flip_bit(&name, len / 2 + 3, 1);
    let blocks_before: Vec<_> = disk.files().into_iter().filter(|(n, _)| n.ends_with(".blk")).collect();
    let mut js = start(&disk);
    let answer = send(&mut js, &disk, "$JS.API.STREAM.CREATE.S", CREATE);
    assert!(answer[0].contains(r#""err_code":10077"#), "{answer:?}");
    let blocks_after: Vec<_> = disk.files().into_iter().filter(|(n, _)| n.ends_with(".blk")).collect();
    assert_eq!(blocks_before, blocks_after);
}

#[test]
fn a_creation_cut_short_by_a_crash_does_not_block_the_name() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    let reply = Bytes::from_static(b"_INBOX.r");
    js.handle_api("A", b"$JS.API.STREAM.CREATE.S", Some(&reply), &Bytes::from_static(CREATE.as_bytes()), WALL);
    js.flush();
    assert_eq!(js.poll_reply(), None, "not acknowledged before its sync");
    // The sync never completes; the crash keeps a few bytes of each file.
    disk.crash(5);
    let mut js = start(&disk);
    let answer = send(&mut js, &disk, "$JS.API.STREAM.CREATE.S", CREATE);
    assert!(answer[0].contains(r#""config""#), "{answer:?}");
}

fn create(js: &mut JetStream, disk: &TestDisk) {
    let answer = send(js, disk, "$JS.API.STREAM.CREATE.S", r#"{"name":"S","subjects":["s"]}"#);
    assert!(answer[0].contains(r#""did_create":true"#), "{answer:?}");
}

fn publish(js: &mut JetStream, n: u8) {
    let reply = Bytes::from_static(b"ack");
    assert!(js.handle_publish("A", b"s", Some(&reply), None, &Bytes::from(vec![n]), WALL));
}

fn acks(js: &mut JetStream) -> usize {
    std::iter::from_fn(|| js.poll_reply()).count()
}

fn recovered_msgs(disk: &TestDisk) -> u64 {
    let mut js = start(disk);
    let answer = send(&mut js, disk, "$JS.API.STREAM.INFO.S", "");
    let info: serde_json::Value = serde_json::from_str(&answer[0]).unwrap();
    info["state"]["messages"].as_u64().expect("a count")
}

#[test]
fn acks_wait_for_the_sync_that_covers_them() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    create(&mut js, &disk);
    publish(&mut js, 1);
    publish(&mut js, 2);
    js.flush();
    assert_eq!(acks(&mut js), 0, "nothing is acknowledged before its sync");
    let token = disk.complete_syncs().expect("one sync asked for");
    js.handle_synced(token);
    assert_eq!(acks(&mut js), 2);
    disk.crash(0);
    assert_eq!(recovered_msgs(&disk), 2);
}

#[test]
fn an_unsynced_write_is_never_acknowledged_and_may_be_lost() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    create(&mut js, &disk);
    publish(&mut js, 1);
    js.flush();
    disk.crash(0);
    assert_eq!(acks(&mut js), 0);
    assert_eq!(recovered_msgs(&disk), 0);
}

#[test]
fn with_a_sync_interval_acks_go_at_once_and_syncs_follow_the_clock() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    create(&mut js, &disk);
    js.set_sync_interval(Duration::from_secs(2));
    // The first sync is due at once; later ones an interval apart.
    js.handle_timeout(WALL);
    publish(&mut js, 1);
    js.flush();
    assert_eq!(acks(&mut js), 1, "acknowledged before any sync");
    assert_eq!(disk.complete_syncs(), None, "no sync asked for yet");
    let wait = js.poll_timeout(WALL).expect("a sync is due");
    assert_eq!(wait, Duration::ZERO);
    js.handle_timeout(WALL);
    js.handle_synced(disk.complete_syncs().expect("the interval's sync"));
    publish(&mut js, 2);
    js.flush();
    assert_eq!(acks(&mut js), 1);
    assert_eq!(js.poll_timeout(WALL), Some(Duration::from_secs(2)));
    // A crash before the next interval loses the acknowledged message.
    disk.crash(0);
    assert_eq!(recovered_msgs(&disk), 1);
}
