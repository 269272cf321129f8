//! JetStream: the stream API driven by fuzzed requests (`js_api`), and the
//! file store recovered from fuzzed damage to its files
//! (`js_store_recovery`).

use std::collections::BTreeMap;


use bytes::Bytes;
use natrix_core::jetstream::api::{to_go_json, StreamConfigRequest};
use natrix_core::jetstream::config::{check_stream_config, CheckLimits};
use natrix_core::jetstream::store::{file_record_size, share_storage, FileStore, MsgStore, StoredMsg};
use natrix_core::jetstream::JetStream;
use natrix_core::storage::MemStorage;
use natrix_core::time::UnixNanos;

use super::nul_fields;

/// The disk: an in-memory one whose syncs complete whenever replies are
/// drained.
type Disk = MemStorage;

const T0: i64 = 1_700_000_000_000_000_000;
const REPLY: &[u8] = b"_INBOX.r";

/// What a `js_api` field asks: `$JS.API.` + the subject (with `{}` for
/// the stream name), or a publish on a stream subject.
const SUBJECTS: &[&str] = &[
    "INFO",
    "STREAM.CREATE.{}",
    "STREAM.UPDATE.{}",
    "STREAM.INFO.{}",
    "STREAM.DELETE.{}",
    "STREAM.NAMES",
    "STREAM.LIST",
    "STREAM.PURGE.{}",
    "STREAM.MSG.GET.{}",
    "STREAM.MSG.DELETE.{}",
    "DIRECT.GET.{}",
    "DIRECT.GET.{}.s.a",
];
const NAMES: &[&str] = &["S", "T", "s", "S.x", "*", ">", "", "A-B_c"];
const PUB_SUBJECTS: &[&str] = &["s.a", "s.b", "t", "s.a.b", "x", "t.1"];

/// Replies JetStream has for `_INBOX.r` after the syncs it asked for
/// completed, and every other reply's payload.
fn drain(js: &mut JetStream, disk: &Disk) -> (Vec<(Option<Bytes>, Bytes)>, usize) {
    js.flush();
    js.handle_synced(&disk.complete_syncs());
    let mut ours = Vec::new();
    let mut others = 0;
    while let Some(r) = js.poll_reply() {
        if &r.subject[..] == REPLY {
            ours.push((r.headers, r.payload));
        } else {
            others += 1;
        }
    }
    (ours, others)
}

/// The `state` of every stream in account "A" as `STREAM.INFO` gives it.
fn states(js: &mut JetStream, disk: &Disk, file_only: bool) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let reply = Bytes::from_static(REPLY);
    js.handle_api("A", b"$JS.API.STREAM.LIST", Some(&reply), &Bytes::new(), UnixNanos(T0));
    let (list, _) = drain(js, disk);
    let list: serde_json::Value = serde_json::from_slice(&list[0].1).expect("LIST answers JSON");
    for s in list["streams"].as_array().into_iter().flatten() {
        if file_only && s["config"]["storage"] != "file" {
            continue;
        }
        let name = s["config"]["name"].as_str().expect("a name").to_owned();
        out.insert(name, s["state"].clone());
    }
    out
}

/// A stream config body: accepted configs survive being written out and
/// read back unchanged.
fn config_round_trips(payload: &[u8], limits: &CheckLimits) {
    let Ok(req) = StreamConfigRequest::parse(payload) else { return };
    let Ok(cfg) = check_stream_config(req.config, limits) else { return };
    let json = to_go_json(&cfg);
    let again = StreamConfigRequest::parse(&json).expect("an accepted config reads back");
    let again = check_stream_config(again.config, limits).expect("an accepted config is accepted again");
    assert_eq!(again, cfg, "config changed on a round trip through {}", String::from_utf8_lossy(&json));
}

/// `js_api`: NUL-separated requests. Each field's first byte picks the
/// request (API subject or publish), its second the stream name; the rest
/// is the body (for a publish, a header block ending in a blank line may
/// lead it). Checks: no panic; each API request with a reply that the
/// server listens on gets exactly one reply to it, JSON with a `type` (a
/// direct get: headers or a payload); stream configs round-trip; after
/// every sync completed, a restart from the same files restores every
/// file stream with the same state.
pub fn js_api(data: &[u8]) {
    let limits = CheckLimits::default();
    let disk = Disk::default();
    let mut js = JetStream::new(limits.clone(), Some(share_storage(Box::new(disk.clone()))));
    js.enable("A", natrix_core::jetstream::api::AccountLimits::default());
    let reply = Bytes::from_static(REPLY);
    for (i, field) in nul_fields(data).into_iter().take(64).enumerate() {
        let bytes = field.as_bytes();
        let (Some(&op), name) = (bytes.first(), bytes.get(1).copied().unwrap_or(0)) else { continue };
        let body = Bytes::copy_from_slice(bytes.get(2..).unwrap_or_default());
        let wall = UnixNanos(T0 + i as i64 * 1_000_000_000);
        js.handle_timeout(wall);
        let kind = usize::from(op) % (SUBJECTS.len() + 2);
        if kind >= SUBJECTS.len() {
            let subject = PUB_SUBJECTS[usize::from(name) % PUB_SUBJECTS.len()];
            let (hdrs, payload) = split_headers(&body, kind == SUBJECTS.len());
            js.handle_publish("A", subject.as_bytes(), Some(&reply), hdrs.as_ref(), &payload, wall);
            let (ours, _) = drain(&mut js, &disk);
            assert!(ours.len() <= 1, "one PubAck at most for a publish");
            for (_, p) in ours {
                serde_json::from_slice::<serde_json::Value>(&p).expect("a PubAck is JSON");
            }
            continue;
        }
        let stream = NAMES[usize::from(name) % NAMES.len()];
        let subject = format!("$JS.API.{}", SUBJECTS[kind].replace("{}", stream));
        if subject.starts_with("$JS.API.STREAM.CREATE.") || subject.starts_with("$JS.API.STREAM.UPDATE.") {
            config_round_trips(&body, &limits);
        }
        let listening = js.handle_api("A", subject.as_bytes(), Some(&reply), &body, wall);
        let (ours, _) = drain(&mut js, &disk);
        assert_eq!(ours.len(), usize::from(listening), "{subject}: one reply when listening, else none");
        let Some((headers, payload)) = ours.into_iter().next() else { continue };
        if subject.starts_with("$JS.API.DIRECT.GET.") {
            assert!(headers.is_some(), "a direct get answers with headers");
        } else {
            let v: serde_json::Value = serde_json::from_slice(&payload).expect("an API answer is JSON");
            assert!(v["type"].is_string(), "{subject}: no type in {v}");
        }
    }
    let before = states(&mut js, &disk, true);
    drop(js);
    let mut restarted = JetStream::new(limits, Some(share_storage(Box::new(disk.clone()))));
    restarted.enable("A", natrix_core::jetstream::api::AccountLimits::default());
    let after = states(&mut restarted, &disk, true);
    assert_eq!(before, after, "a restart changed the file streams");
}

/// A publish body: with headers, the part up to the first blank line.
fn split_headers(body: &Bytes, with_headers: bool) -> (Option<Bytes>, Bytes) {
    if !with_headers {
        return (None, body.clone());
    }
    match body.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => (Some(body.slice(..end + 4)), body.slice(end + 4..)),
        None => (Some(Bytes::from_static(b"NATS/1.0\r\n\r\n")), body.clone()),
    }
}

/// `js_store_recovery`: a file store is written (the first byte picks how
/// many messages, the second the block size, the third which to remove),
/// then damaged by the rest of the input in 4-byte edits
/// (`file, offset (2 bytes), value`): the low bits of the file byte pick
/// XOR, set, truncate or append, the rest which file. Checks: reopening
/// never panics; nothing it serves differs from what was written under
/// that sequence, or was removed; its state agrees with what it serves;
/// undamaged, it serves every message.
pub fn js_store_recovery(data: &[u8]) {
    let edits = data.get(3..).unwrap_or_default();
    let (n, block, remove) = (
        1 + usize::from(data.first().copied().unwrap_or(8) % 48),
        64 + 32 * u64::from(data.get(1).copied().unwrap_or(4) % 32),
        data.get(2).copied().unwrap_or(0),
    );
    let disk = Disk::default();
    let storage = share_storage(Box::new(disk.clone()));
    let mut store = FileStore::create(storage.clone(), "A.S.".into(), 1, block).expect("a new store");
    let mut written: BTreeMap<u64, StoredMsg> = BTreeMap::new();
    let mut removed: BTreeMap<u64, StoredMsg> = BTreeMap::new();
    for i in 0..n {
        let subject = Bytes::from(format!("s.{}", i % 5));
        let headers = (i % 3 == 0).then(|| Bytes::from(format!("NATS/1.0\r\nk: {i}\r\n\r\n")));
        let payload = Bytes::from(vec![b'a' + (i % 26) as u8; i * 7 % 90]);
        let time = UnixNanos(T0 + i as i64);
        let seq = store.store(&subject, headers.as_deref(), &payload, time).expect("a store on a good disk");
        written.insert(seq, StoredMsg { seq, subject, headers, payload, time });
    }
    for seq in [u64::from(remove % 64), u64::from(remove / 4)] {
        if store.remove(seq, remove % 2 == 0).expect("a remove on a good disk") {
            removed.extend(written.remove(&seq).map(|m| (seq, m)));
        }
    }
    let _ = store.sync();
    drop(store);
    damage(&disk, edits);
    let Ok(mut reopened) = FileStore::open(storage, "A.S.".into(), block) else {
        // Refusing to open is a report, not a wrong answer.
        return;
    };
    let state = reopened.state();
    let (mut count, mut bytes, mut seq) = (0u64, 0u64, state.first_seq);
    while let Ok(Some(msg)) = reopened.load_next(b">", seq) {
        assert!(msg.seq >= seq, "load_next went back");
        // A removed message may come back when damage took its tombstone
        // (its delete is then lost, as in nats-server), but only as written.
        let original = written.get(&msg.seq).or_else(|| removed.get(&msg.seq));
        let original = original.unwrap_or_else(|| panic!("served seq {} never written", msg.seq));
        assert_eq!(&msg, original, "served a message that differs from what was written");
        assert!(!edits.is_empty() || written.contains_key(&msg.seq), "an undamaged store served a removed message");
        count += 1;
        bytes += file_record_size(&msg.subject, msg.headers.as_deref(), &msg.payload);
        assert!(count <= (written.len() + removed.len()) as u64);
        seq = msg.seq + 1;
    }
    for s in written.keys().copied().chain([0, state.last_seq + 1]) {
        if let Ok(Some(msg)) = reopened.load(s) {
            assert_eq!(Some(&msg), written.get(&s).or_else(|| removed.get(&s)), "load({s}) served a wrong message");
        }
    }
    if edits.is_empty() {
        assert_eq!(count, written.len() as u64, "an undamaged store lost messages");
        assert_eq!((state.msgs, state.bytes), (count, bytes), "state disagrees with the messages");
    }
    assert!(state.msgs <= (written.len() + removed.len()) as u64, "state counts more messages than were written");
}

/// Applies 4-byte edits to the disk's files.
fn damage(disk: &Disk, edits: &[u8]) {
    let names: Vec<String> = disk.files().into_iter().map(|(name, _)| name).collect();
    if names.is_empty() {
        return;
    }
    for e in edits.chunks(4).take(32) {
        let &[which, hi, lo, value] = e else { break };
        let name = &names[usize::from(which >> 2) % names.len()];
        let at = usize::from(u16::from_be_bytes([hi, lo]));
        disk.edit_file(name, |f| match which & 3 {
            0 if !f.is_empty() => {
                let i = at % f.len();
                f[i] ^= value.max(1);
            }
            1 if !f.is_empty() => {
                let i = at % f.len();
                f[i] = value;
            }
            2 => {
                let len = f.len();
                f.truncate(at % (len + 1));
            }
            3 => f.extend(std::iter::repeat_n(value, usize::from(hi % 64))),
            _ => {}
        });
    }
}
