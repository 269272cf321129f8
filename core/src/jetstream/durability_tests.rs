//! What JetStream answers and keeps when its disk fails it (a full disk,
//! damaged metadata), and when its acknowledgements go: after the sync
//! covering their writes, or at once with a sync interval. The test disk
//! completes syncs only when told to and forgets unsynced writes in a crash.

use std::time::Duration;

use bytes::Bytes;

use super::config::CheckLimits;
use super::store::test_storage::TestDisk;
use super::JetStream;
use crate::storage::{Storage as _, StorageExt as _};
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
    let tokens = disk.complete_syncs();
    js.handle_synced(&tokens);
    // Only what went to the requester's inbox (advisories go elsewhere).
    std::iter::from_fn(|| js.poll_reply())
        .filter(|r| &r.subject[..] == b"_INBOX.r")
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

const CREATE: &str = r#"{"name":"S","subjects":["s.>"],"storage":"file"}"#;

/// A publish whose write the full disk refused waits unacknowledged (it
/// is written, and acknowledged, once space returns); the publishes after
/// it are refused with nats-server's error until then.
#[test]
fn a_full_disk_refuses_publishes_with_insufficient_resources_then_recovers() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    assert!(send(&mut js, &disk, "$JS.API.STREAM.CREATE.S", CREATE)[0].contains(r#""config""#));
    assert!(send(&mut js, &disk, "s.a", "one")[0].contains(r#""seq":1"#));
    disk.set_full(true);
    assert_eq!(send(&mut js, &disk, "s.a", "two"), Vec::<String>::new(), "no ack for a write not on disk");
    let refused = send(&mut js, &disk, "s.a", "three");
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].contains(r#""code":503"#) && refused[0].contains(r#""err_code":10023"#)
            && refused[0].contains("insufficient resources"),
        "{refused:?}"
    );
    // The retry timer is armed.
    assert!(js.poll_timeout(WALL).is_some_and(|d| d <= super::SYNC_RETRY));
    disk.set_full(false);
    let acks = send(&mut js, &disk, "s.a", "four");
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert!(acks[0].contains(r#""seq":2"#) && acks[1].contains(r#""seq":3"#), "{acks:?}");
}

/// With the disk full and no more input, the retry timer writes the held
/// publish once space returns.
#[test]
fn a_held_write_is_retried_on_a_timer() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    send(&mut js, &disk, "$JS.API.STREAM.CREATE.S", CREATE);
    disk.set_full(true);
    assert!(send(&mut js, &disk, "s.a", "held").is_empty());
    disk.set_full(false);
    let due = js.poll_timeout(WALL).expect("a retry is due");
    let later = UnixNanos(WALL.0 + i64::try_from(due.as_nanos()).unwrap());
    js.handle_timeout(later);
    js.flush();
    let tokens = disk.complete_syncs();
    assert!(!tokens.is_empty(), "the held write was synced");
    js.handle_synced(&tokens);
    let acks: Vec<_> = std::iter::from_fn(|| js.poll_reply()).filter(|r| &r.subject[..] == b"_INBOX.r").collect();
    assert_eq!(acks.len(), 1);
    assert!(String::from_utf8_lossy(&acks[0].payload).contains(r#""seq":1"#));
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
    let tokens = disk.complete_syncs();
    assert!(!tokens.is_empty(), "one sync asked for");
    js.handle_synced(&tokens);
    assert_eq!(acks(&mut js), 2);
    disk.crash(0);
    assert_eq!(recovered_msgs(&disk), 2);
}

/// JetStream on `disk` with file streams `S` (`s.>`) and `T` (`t.>`), synced.
fn streams_s_and_t(disk: &TestDisk) -> JetStream {
    let mut js = start(disk);
    for (name, subjects) in [("S", "s.>"), ("T", "t.>")] {
        let config = format!(r#"{{"name":"{name}","subjects":["{subjects}"],"storage":"file"}}"#);
        let answer = send(&mut js, disk, &format!("$JS.API.STREAM.CREATE.{name}"), &config);
        assert!(answer[0].contains(r#""did_create":true"#), "{answer:?}");
    }
    js
}

/// The storage completes different files' syncs in any order: a PubAck
/// waits for its own stream's files only, while an answer that must follow
/// every write before it waits for all of them.
#[test]
fn a_slow_sync_of_one_stream_holds_back_no_other_streams_acks() {
    let disk = TestDisk::default();
    let mut js = streams_s_and_t(&disk);
    let payload = Bytes::from_static(b"m");
    assert!(js.handle_publish("A", b"s.a", Some(&Bytes::from_static(b"ack.s")), None, &payload, WALL));
    assert!(js.handle_publish("A", b"t.a", Some(&Bytes::from_static(b"ack.t")), None, &payload, WALL));
    assert!(js.handle_api("A", b"$JS.API.STREAM.INFO.T", Some(&Bytes::from_static(b"info")), &Bytes::new(), WALL));
    js.flush();
    assert_eq!(subjects(&mut js), Vec::<String>::new());
    // Stream S's disk is slow: T's sync completes first.
    let done = disk.complete_syncs_of(|file| !file.starts_with("A.S."));
    assert!(!done.is_empty(), "T's files were synced");
    js.handle_synced(&done);
    assert_eq!(subjects(&mut js), ["ack.t"], "T's ack goes; S's and the info, which follows S's write, wait");
    js.handle_synced(&disk.complete_syncs());
    assert_eq!(subjects(&mut js), ["ack.s", "info"]);
}

/// The subjects of the replies ready, advisories left out.
fn subjects(js: &mut JetStream) -> Vec<String> {
    std::iter::from_fn(|| js.poll_reply())
        .map(|r| String::from_utf8_lossy(&r.subject).into_owned())
        .filter(|s| !s.starts_with("$JS.EVENT."))
        .collect()
}

/// A PubAck waits for every sync its stream has outstanding, not only the
/// one its flush asked for: here the stream's metadata, written by its
/// creation and still being synced when the first message's block sync
/// completes. Acknowledged, the message would be lost with the stream.
#[test]
fn a_puback_waits_for_its_streams_metadata_to_be_durable() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    assert!(js.handle_api("A", b"$JS.API.STREAM.CREATE.S", Some(&Bytes::from_static(b"create")), &Bytes::from_static(CREATE.as_bytes()), WALL));
    js.flush();
    assert!(js.handle_publish("A", b"s.a", Some(&Bytes::from_static(b"ack")), None, &Bytes::from_static(b"m"), WALL));
    js.flush();
    js.handle_synced(&disk.complete_syncs_of(|file| !file.contains(".meta.")));
    assert_eq!(subjects(&mut js), Vec::<String>::new(), "the metadata is not durable yet");
    js.handle_synced(&disk.complete_syncs());
    assert_eq!(subjects(&mut js), ["create", "ack"]);
    disk.crash(0);
    assert_eq!(recovered_msgs(&disk), 1);
}

/// A flush that failed on one stream still asked for the others' syncs;
/// their PubAcks, held for the retry, wait for those syncs too, even when
/// the retry syncs other files of their stream.
#[test]
fn a_puback_held_by_a_failed_flush_waits_for_the_sync_that_flush_asked_for() {
    let disk = TestDisk::default();
    let mut js = streams_s_and_t(&disk);
    let m = Bytes::from_static(b"m");
    assert!(js.handle_publish("A", b"s.a", Some(&Bytes::from_static(b"ack")), None, &m, WALL));
    assert!(js.handle_publish("A", b"t.a", None, None, &m, WALL));
    disk.set_full_for(Some("A.T."));
    js.flush();
    disk.set_full_for(None);
    // Only S's metadata is written at the retry; its block's sync, asked
    // for by the failed flush, is slow.
    let update = r#"{"name":"S","subjects":["s.>"],"storage":"file","description":"x"}"#;
    assert!(js.handle_api("A", b"$JS.API.STREAM.UPDATE.S", Some(&Bytes::from_static(b"update")), &Bytes::from(update), WALL));
    js.flush();
    js.handle_synced(&disk.complete_syncs_of(|file| !file.ends_with(".blk")));
    assert_eq!(subjects(&mut js), Vec::<String>::new(), "S's block is not durable yet");
    js.handle_synced(&disk.complete_syncs());
    assert_eq!(subjects(&mut js), ["ack", "update"]);
    disk.crash(0);
    assert_eq!(recovered_msgs(&disk), 1);
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
    assert_eq!(disk.complete_syncs(), [], "no sync asked for yet");
    let wait = js.poll_timeout(WALL).expect("a sync is due");
    assert_eq!(wait, Duration::ZERO);
    js.handle_timeout(WALL);
    let tokens = disk.complete_syncs();
    assert!(!tokens.is_empty(), "the interval's sync");
    js.handle_synced(&tokens);
    publish(&mut js, 2);
    js.flush();
    assert_eq!(acks(&mut js), 1);
    assert_eq!(js.poll_timeout(WALL), Some(Duration::from_secs(2)));
    // Acknowledged means written (a killed process loses nothing)…
    assert_eq!(recovered_msgs(&disk), 2, "written at the input's end");
    // …and a publish without a reply is written at its input's end too.
    assert!(js.handle_publish("A", b"s", None, None, &Bytes::from_static(b"quiet"), WALL));
    assert!(js.needs_flush(), "the input's end writes it");
    js.flush();
    assert!(!js.needs_flush(), "with everything written, an input's end has nothing to flush");
    assert_eq!(recovered_msgs(&disk), 3);
    // …but a crash before the next interval loses the acknowledged message.
    disk.crash(0);
    assert_eq!(recovered_msgs(&disk), 1);
}

/// Pulls up to `batch` messages of consumer `D` of `S` and acknowledges
/// them (the syncs completed); returns their payloads.
fn pull_and_ack(js: &mut JetStream, disk: &TestDisk, batch: u64) -> Vec<String> {
    let reply = Bytes::from_static(b"_INBOX.p");
    let body = Bytes::from(format!(r#"{{"batch":{batch},"no_wait":true}}"#));
    assert!(js.handle_api("A", b"$JS.API.CONSUMER.MSG.NEXT.S.D", Some(&reply), &body, WALL));
    let mut got = Vec::new();
    while let Some((_, d)) = js.poll_delivery() {
        let Some(ack) = d.reply else { continue };
        got.push(String::from_utf8_lossy(&d.payload).into_owned());
        js.handle_ack("A", &ack, None, &Bytes::from_static(b"+ACK"), WALL);
    }
    js.flush();
    // Acks nothing confirms are saved on the clock: let it run.
    if let Some(due) = js.consumers_save_due() {
        js.handle_timeout(due);
        js.flush();
    }
    let tokens = disk.complete_syncs();
    js.handle_synced(&tokens);
    got
}

/// Stream `S` with messages m1 to m3, and durable consumer `D` of it
/// with explicit acks.
fn three_messages_and_consumer_d(disk: &TestDisk) -> JetStream {
    let mut js = start(disk);
    send(&mut js, disk, "$JS.API.STREAM.CREATE.S", CREATE);
    for m in ["m1", "m2", "m3"] {
        send(&mut js, disk, "s.x", m);
    }
    send(&mut js, disk, "$JS.API.CONSUMER.DURABLE.CREATE.S.D", r#"{"stream_name":"S","config":{"durable_name":"D","ack_policy":"explicit"}}"#);
    js
}

/// The newest saved generation of consumer `D`.
fn consumer_generation(disk: &TestDisk) -> u64 {
    disk.files()
        .into_iter()
        .filter_map(|(n, _)| n.rsplit_once('.').filter(|(p, _)| p.ends_with(".obs.D")).and_then(|(_, g)| g.parse().ok()))
        .max()
        .unwrap_or(0)
}

/// Acks that nothing confirms are saved at most once per
/// `CONSUMER_SAVE_INTERVAL`, on a timer (a crash before it may only
/// redeliver them); a double ack's save goes at once, and its confirmation
/// waits for that save's sync.
#[test]
fn unconfirmed_acks_are_saved_on_the_clock_and_a_double_ack_at_once() {
    let disk = TestDisk::default();
    let mut js = three_messages_and_consumer_d(&disk);
    let created = consumer_generation(&disk);
    assert!(created > 0, "the new consumer is saved at once");
    let reply = Bytes::from_static(b"_INBOX.p");
    assert!(js.handle_api("A", b"$JS.API.CONSUMER.MSG.NEXT.S.D", Some(&reply), &Bytes::from_static(br#"{"batch":3,"no_wait":true}"#), WALL));
    let acks: Vec<Bytes> = std::iter::from_fn(|| js.poll_delivery()).filter_map(|(_, d)| d.reply).collect();
    assert_eq!(acks.len(), 3);

    js.handle_ack("A", &acks[0], None, &Bytes::from_static(b"+ACK"), WALL);
    assert!(js.needs_flush(), "a changed consumer is looked at by the input's end");
    // A PubAck in the same batch waits for its stream's sync only.
    let puback = Bytes::from_static(b"_INBOX.pub");
    js.handle_publish("A", b"s.x", Some(&puback), None, &Bytes::from_static(b"m4"), WALL);
    js.flush();
    assert_eq!(consumer_generation(&disk), created, "saved within the interval: held back");
    let tokens = disk.complete_syncs();
    assert!(!tokens.is_empty(), "the stream's sync");
    js.handle_synced(&tokens);
    assert!(std::iter::from_fn(|| js.poll_reply()).any(|r| r.subject == puback), "the PubAck went with its sync");
    assert!(!js.needs_flush(), "a held-back save waits for its timer, not for every input's end");
    let interval = super::consumer::persist::CONSUMER_SAVE_INTERVAL;
    let later = UnixNanos(WALL.0 + i64::try_from(interval.as_nanos()).expect("fits"));
    assert_eq!(js.consumers_save_due(), Some(later));
    assert!(js.poll_timeout(WALL).is_some_and(|d| d <= interval), "the timer runs by then");
    js.handle_timeout(WALL);
    js.flush();
    assert_eq!(consumer_generation(&disk), created, "not before the interval passed");
    js.handle_timeout(later);
    js.flush();
    assert_eq!(consumer_generation(&disk), created + 1, "saved when the interval passed");
    let tokens = disk.complete_syncs();
    assert!(!tokens.is_empty(), "the save was synced");
    js.handle_synced(&tokens);

    // A double ack within the interval: saved at once, confirmed once synced.
    let confirm = Bytes::from_static(b"_INBOX.ack");
    js.handle_ack("A", &acks[1], Some(&confirm), &Bytes::from_static(b"+ACK"), later);
    js.flush();
    assert_eq!(consumer_generation(&disk), created + 2);
    assert!(std::iter::from_fn(|| js.poll_reply()).all(|r| r.subject != confirm), "no confirmation before the sync");
    let tokens = disk.complete_syncs();
    assert!(!tokens.is_empty(), "a sync was asked for");
    js.handle_synced(&tokens);
    assert!(std::iter::from_fn(|| js.poll_reply()).any(|r| r.subject == confirm));

    // An ack the clock never saved is lost in a crash: its message is
    // pending again (redelivered once its ack wait passes).
    js.handle_ack("A", &acks[2], None, &Bytes::from_static(b"+ACK"), later);
    js.flush();
    disk.crash(0);
    let mut js = start(&disk);
    let info = send(&mut js, &disk, "$JS.API.CONSUMER.INFO.S.D", "");
    assert!(info[0].contains(r#""num_ack_pending":1"#) && info[0].contains(r#""consumer_seq":2"#), "{info:?}");
}

#[test]
fn a_consumer_ahead_of_a_stream_that_lost_messages_delivers_what_takes_their_place() {
    let disk = TestDisk::default();
    let mut js = start(&disk);
    send(&mut js, &disk, "$JS.API.STREAM.CREATE.S", CREATE);
    for m in ["m1", "m2", "m3"] {
        send(&mut js, &disk, "s.x", m);
    }
    let (block, three) = disk.files().into_iter().find(|(n, _)| n.ends_with(".blk")).expect("a block");
    send(&mut js, &disk, "s.x", "m4");
    let created = send(&mut js, &disk, "$JS.API.CONSUMER.DURABLE.CREATE.S.D", r#"{"stream_name":"S","config":{"durable_name":"D","ack_policy":"explicit"}}"#);
    assert!(created[0].contains(r#""name":"D""#), "{created:?}");
    assert_eq!(pull_and_ack(&mut js, &disk, 4), ["m1", "m2", "m3", "m4"]);
    // The stream's last message is lost in a crash (its block ends after
    // the third), the consumer's state, which acknowledged it, is not.
    {
        let storage = disk.shared();
        let mut st = storage.lock();
        st.with_open(&block, false, |s, file| {
            s.truncate(file, three as u64)?;
            s.sync(file)
        })
        .expect("truncate and sync");
    }
    disk.complete_syncs();
    disk.crash(0);
    let mut js = start(&disk);
    let info = send(&mut js, &disk, "$JS.API.STREAM.INFO.S", "");
    assert!(info[0].contains(r#""last_seq":3"#), "{info:?}");
    // The next message takes sequence 4 and must reach the consumer.
    send(&mut js, &disk, "s.x", "m5");
    assert_eq!(pull_and_ack(&mut js, &disk, 4), ["m5"]);
    let info = send(&mut js, &disk, "$JS.API.CONSUMER.INFO.S.D", "");
    assert!(info[0].contains(r#""num_ack_pending":0"#) && info[0].contains(r#""num_pending":0"#), "{info:?}");
}

#[test]
fn a_consumer_save_cut_short_by_a_crash_is_not_built_upon() {
    let disk = TestDisk::default();
    let mut js = three_messages_and_consumer_d(&disk);
    assert_eq!(pull_and_ack(&mut js, &disk, 2), ["m1", "m2"]);
    // A crash cuts the next save short: its file holds a torn record.
    let saves: Vec<(String, u64)> = disk
        .files()
        .into_iter()
        .filter_map(|(n, _)| n.rsplit_once('.').filter(|(p, _)| p.contains(".obs.")).and_then(|(p, g)| Some((p.to_owned(), g.parse().ok()?))))
        .collect();
    let (p, g) = saves.iter().max_by_key(|(_, g)| *g).expect("a saved consumer").clone();
    disk.raw_append(&format!("{p}.{}", g + 1), b"torn");
    disk.crash(usize::MAX);
    let mut js = start(&disk);
    assert_eq!(pull_and_ack(&mut js, &disk, 3), ["m3"]);
    disk.crash(0);
    // The acknowledgement of m3 was confirmed: it must survive.
    let mut js = start(&disk);
    assert_eq!(pull_and_ack(&mut js, &disk, 3), Vec::<String>::new());
    let info = send(&mut js, &disk, "$JS.API.CONSUMER.INFO.S.D", "");
    assert!(info[0].contains(r#""num_ack_pending":0"#) && info[0].contains(r#""stream_seq":3"#), "{info:?}");
}
