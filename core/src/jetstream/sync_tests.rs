//! JetStream's acknowledgements and syncs, on a test disk that completes
//! syncs only when told to and forgets unsynced writes in a crash.

use std::time::Duration;

use bytes::Bytes;

use super::config::CheckLimits;
use super::store::test_storage::TestDisk;
use super::{AccountLimits, JetStream};
use crate::time::UnixNanos;

const T0: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

fn started(disk: &TestDisk) -> JetStream {
    let mut js = JetStream::new(CheckLimits::default(), Some(disk.shared()));
    js.enable("A", AccountLimits::default());
    js
}

fn create(js: &mut JetStream, disk: &TestDisk) {
    let body = Bytes::from_static(br#"{"name":"S","subjects":["s"]}"#);
    assert!(js.handle_api("A", b"$JS.API.STREAM.CREATE.S", Some(&Bytes::from_static(b"r")), &body, T0));
    js.flush();
    js.handle_synced(disk.complete_syncs().expect("the stream's files need a sync"));
    // The creation advisory, then the answer.
    assert_eq!(acks(js), 2);
}

fn publish(js: &mut JetStream, n: u8) {
    let reply = Bytes::from_static(b"ack");
    assert!(js.handle_publish("A", b"s", Some(&reply), None, &Bytes::from(vec![n]), T0));
}

fn acks(js: &mut JetStream) -> usize {
    std::iter::from_fn(|| js.poll_reply()).count()
}

fn recovered_msgs(disk: &TestDisk) -> u64 {
    let mut js = started(disk);
    let body = Bytes::new();
    assert!(js.handle_api("A", b"$JS.API.STREAM.INFO.S", Some(&Bytes::from_static(b"r")), &body, T0));
    let info: serde_json::Value = serde_json::from_slice(&js.poll_reply().expect("info").payload).unwrap();
    info["state"]["messages"].as_u64().expect("a count")
}

#[test]
fn acks_wait_for_the_sync_that_covers_them() {
    let disk = TestDisk::default();
    let mut js = started(&disk);
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
    let mut js = started(&disk);
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
    let mut js = started(&disk);
    create(&mut js, &disk);
    js.set_sync_interval(Duration::from_secs(2));
    // The first sync is due at once; later ones an interval apart.
    js.handle_timeout(T0);
    publish(&mut js, 1);
    js.flush();
    assert_eq!(acks(&mut js), 1, "acknowledged before any sync");
    assert_eq!(disk.complete_syncs(), None, "no sync asked for yet");
    let wait = js.poll_timeout(T0).expect("a sync is due");
    assert_eq!(wait, Duration::ZERO);
    js.handle_timeout(T0);
    js.handle_synced(disk.complete_syncs().expect("the interval's sync"));
    publish(&mut js, 2);
    js.flush();
    assert_eq!(acks(&mut js), 1);
    assert_eq!(js.poll_timeout(T0), Some(Duration::from_secs(2)));
    // A crash before the next interval loses the acknowledged message.
    disk.crash(0);
    assert_eq!(recovered_msgs(&disk), 1);
}
