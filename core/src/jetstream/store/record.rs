//! The records of a file store's blocks and the frame of its meta files.
//!
//! A block is an append-only run of records, little-endian throughout:
//!
//! ```text
//! record    = kind:u8 len:u32 crc:u32 body      len counts the whole record;
//!                                               crc32c over kind, len, body
//! message   = seq:u64 time:i64 subject_len:u32 headers_len:u32
//!             subject headers payload           headers_len u32::MAX = none
//! message_s2 = seq:u64 time:i64 subject_len:u32 headers_len:u32
//!             subject snappy(headers payload)   a `compression: "s2"`
//!                                               stream's message, when
//!                                               compressing shrinks it
//! tombstone = seq:u64                           that message is removed
//! floor     = first_seq:u64 last_seq:u64 last_time:i64
//!                                               every sequence below
//!                                               first_seq is gone; last_seq
//!                                               was assigned at last_time
//! ```
//!
//! A meta file is `crc:u32 len:u32 blob`, the crc32c covering len and blob.

use bytes::{BufMut, Bytes, BytesMut};

use crate::time::UnixNanos;

/// Bytes before a record's body: kind, length, crc.
pub(super) const HEADER_LEN: usize = 9;
const KIND_MSG: u8 = 0xA1;
const KIND_TOMBSTONE: u8 = 0xA2;
const KIND_FLOOR: u8 = 0xA3;
const KIND_MSG_S2: u8 = 0xA4;
/// The most a compressed message may expand to: beyond any message a
/// stream accepts, so a damaged length cannot make a read allocate more.
const S2_DECODED_MAX: usize = 256 << 20;
const MSG_FIXED_LEN: usize = 24;
const TOMBSTONE_LEN: usize = 8;
const FLOOR_LEN: usize = 24;
const NO_HEADERS: u32 = u32::MAX;

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Record {
    /// A stored message.
    Msg {
        /// Its sequence.
        seq: u64,
        /// When it was stored.
        time: UnixNanos,
        /// Its subject.
        subject: Bytes,
        /// Its headers, if any.
        headers: Option<Bytes>,
        /// Its payload.
        payload: Bytes,
    },
    /// The message at `seq` was removed.
    Tombstone {
        /// The sequence removed.
        seq: u64,
    },
    /// Everything below `first_seq` is gone; `last_seq` was assigned.
    Floor {
        /// The lowest sequence that may be held.
        first_seq: u64,
        /// The highest sequence assigned so far.
        last_seq: u64,
        /// When `last_seq` was stored.
        last_time: UnixNanos,
    },
}

fn frame(out: &mut BytesMut, kind: u8, body_len: usize, body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    let len = u32::try_from(HEADER_LEN + body_len).expect("a record stays under 4 GiB");
    out.put_u8(kind);
    out.put_u32_le(len);
    out.put_u32_le(0);
    body(out);
    debug_assert_eq!(out.len() - start, HEADER_LEN + body_len);
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&out[start..start + 5]),
        &out[start + HEADER_LEN..],
    );
    out[start + 5..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// The length of the record [`put_msg`] writes.
pub(super) fn msg_len(subject: &[u8], headers: Option<&[u8]>, payload: &[u8]) -> usize {
    HEADER_LEN + MSG_FIXED_LEN + subject.len() + headers.map_or(0, <[u8]>::len) + payload.len()
}

/// The subject, headers and payload of `record`, a message record as
/// [`put_msg`] wrote it with a subject of `subject_len` bytes and
/// `headers_len` of headers, as slices of it; `None` for a compressed
/// record.
pub(super) fn msg_parts(
    record: Bytes,
    subject_len: usize,
    headers_len: Option<usize>,
) -> Option<(Bytes, Option<Bytes>, Bytes)> {
    if record.first() != Some(&KIND_MSG) {
        return None;
    }
    let subject_start = HEADER_LEN + MSG_FIXED_LEN;
    let start = subject_start + subject_len;
    let payload_start = start + headers_len.unwrap_or(0);
    let headers = headers_len.map(|_| record.slice(start..payload_start));
    Some((record.slice(subject_start..start), headers, record.slice(payload_start..)))
}

/// Appends a message record to `out`.
pub(super) fn put_msg(
    out: &mut BytesMut,
    seq: u64,
    time: UnixNanos,
    subject: &[u8],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let headers_len = headers.map_or(0, <[u8]>::len);
    let body_len = MSG_FIXED_LEN + subject.len() + headers_len + payload.len();
    frame(out, KIND_MSG, body_len, |out| {
        out.put_u64_le(seq);
        out.put_i64_le(time.0);
        out.put_u32_le(u32::try_from(subject.len()).expect("a subject stays under 4 GiB"));
        out.put_u32_le(headers.map_or(NO_HEADERS, |h| {
            u32::try_from(h.len())
                .ok()
                .filter(|&l| l != NO_HEADERS)
                .expect("headers stay under 4 GiB")
        }));
        out.put_slice(subject);
        out.put_slice(headers.unwrap_or_default());
        out.put_slice(payload);
    });
}

/// Appends a message record to `out`, its headers and payload compressed
/// (Snappy's block format, which S2 decoders read) when that makes the
/// record smaller; otherwise as [`put_msg`] writes it.
pub(super) fn put_msg_compressed(
    out: &mut BytesMut,
    seq: u64,
    time: UnixNanos,
    subject: &[u8],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let headers_bytes = headers.unwrap_or_default();
    let mut raw = Vec::with_capacity(headers_bytes.len() + payload.len());
    raw.extend_from_slice(headers_bytes);
    raw.extend_from_slice(payload);
    let packed = match snap::raw::Encoder::new().compress_vec(&raw) {
        Ok(p) if p.len() < raw.len() => p,
        _ => return put_msg(out, seq, time, subject, headers, payload),
    };
    let body_len = MSG_FIXED_LEN + subject.len() + packed.len();
    frame(out, KIND_MSG_S2, body_len, |out| {
        out.put_u64_le(seq);
        out.put_i64_le(time.0);
        out.put_u32_le(u32::try_from(subject.len()).expect("a subject stays under 4 GiB"));
        out.put_u32_le(headers.map_or(NO_HEADERS, |h| {
            u32::try_from(h.len())
                .ok()
                .filter(|&l| l != NO_HEADERS)
                .expect("headers stay under 4 GiB")
        }));
        out.put_slice(subject);
        out.put_slice(&packed);
    });
}

/// Appends a tombstone record for `seq` to `out`.
pub(super) fn put_tombstone(out: &mut BytesMut, seq: u64) {
    frame(out, KIND_TOMBSTONE, TOMBSTONE_LEN, |out| {
        out.put_u64_le(seq)
    });
}

/// Appends a floor record to `out`.
pub(super) fn put_floor(out: &mut BytesMut, first_seq: u64, last_seq: u64, last_time: UnixNanos) {
    frame(out, KIND_FLOOR, FLOOR_LEN, |out| {
        out.put_u64_le(first_seq);
        out.put_u64_le(last_seq);
        out.put_i64_le(last_time.0);
    });
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the record starting at `offset` of `buf`: the record and its
/// length, or `None` when no whole, intact record starts there. Message
/// fields are copied out, so they do not pin `buf`.
pub(super) fn decode(buf: &[u8], offset: usize) -> Option<(Record, usize)> {
    let rest = buf.get(offset..)?;
    if rest.len() < HEADER_LEN {
        return None;
    }
    let kind = rest[0];
    let len = u32_at(rest, 1) as usize;
    let body_len = len.checked_sub(HEADER_LEN)?;
    let fits = match kind {
        KIND_MSG | KIND_MSG_S2 => body_len >= MSG_FIXED_LEN,
        KIND_TOMBSTONE => body_len == TOMBSTONE_LEN,
        KIND_FLOOR => body_len == FLOOR_LEN,
        _ => false,
    };
    if !fits || len > rest.len() {
        return None;
    }
    let body = &rest[HEADER_LEN..len];
    let crc = crc32c::crc32c_append(crc32c::crc32c(&rest[..5]), body);
    if crc != u32_at(rest, 5) {
        return None;
    }
    let record = match kind {
        KIND_MSG => decode_msg(body)?,
        KIND_MSG_S2 => decode_msg_s2(body)?,
        KIND_TOMBSTONE => Record::Tombstone {
            seq: u64_at(body, 0),
        },
        _ => Record::Floor {
            first_seq: u64_at(body, 0),
            last_seq: u64_at(body, 8),
            last_time: UnixNanos(u64_at(body, 16) as i64),
        },
    };
    Some((record, len))
}

/// True when the bytes from `offset` on are the start of a record cut short
/// (a torn write), not a whole record that is damaged.
pub(super) fn is_torn(buf: &[u8], offset: usize) -> bool {
    let rest = &buf[offset.min(buf.len())..];
    rest.len() < HEADER_LEN || u32_at(rest, 1) as usize > rest.len()
}

/// True when the bytes from `offset` to the end of `buf` are one whole
/// record but for its length field: what one flipped bit in that field
/// leaves, which would otherwise pass for a torn tail.
pub(super) fn is_whole_but_its_length(buf: &[u8], offset: usize) -> bool {
    let rest = &buf[offset.min(buf.len())..];
    let Ok(len) = u32::try_from(rest.len()) else {
        return false;
    };
    if rest.len() < HEADER_LEN || u32_at(rest, 1) == len {
        return false;
    }
    let mut head = [0u8; 5];
    head[0] = rest[0];
    head[1..].copy_from_slice(&len.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&head), &rest[HEADER_LEN..]) == u32_at(rest, 5)
}

fn decode_msg(body: &[u8]) -> Option<Record> {
    let subject_len = u32_at(body, 16) as usize;
    let headers_field = u32_at(body, 20);
    let headers_len = if headers_field == NO_HEADERS {
        0
    } else {
        headers_field as usize
    };
    let subject_end = MSG_FIXED_LEN.checked_add(subject_len)?;
    let headers_end = subject_end.checked_add(headers_len)?;
    if headers_end > body.len() {
        return None;
    }
    Some(Record::Msg {
        seq: u64_at(body, 0),
        time: UnixNanos(u64_at(body, 8) as i64),
        subject: Bytes::copy_from_slice(&body[MSG_FIXED_LEN..subject_end]),
        headers: (headers_field != NO_HEADERS)
            .then(|| Bytes::copy_from_slice(&body[subject_end..headers_end])),
        payload: Bytes::copy_from_slice(&body[headers_end..]),
    })
}

/// A compressed message's body: the fixed fields and subject as in a plain
/// one, then headers and payload decompressed together.
fn decode_msg_s2(body: &[u8]) -> Option<Record> {
    let subject_len = u32_at(body, 16) as usize;
    let headers_field = u32_at(body, 20);
    let headers_len = if headers_field == NO_HEADERS { 0 } else { headers_field as usize };
    let subject_end = MSG_FIXED_LEN.checked_add(subject_len)?;
    let packed = body.get(subject_end..)?;
    let decoded_len = snap::raw::decompress_len(packed).ok()?;
    if decoded_len > S2_DECODED_MAX || headers_len > decoded_len {
        return None;
    }
    let raw = Bytes::from(snap::raw::Decoder::new().decompress_vec(packed).ok()?);
    Some(Record::Msg {
        seq: u64_at(body, 0),
        time: UnixNanos(u64_at(body, 8) as i64),
        subject: Bytes::copy_from_slice(&body[MSG_FIXED_LEN..subject_end]),
        headers: (headers_field != NO_HEADERS).then(|| raw.slice(..headers_len)),
        payload: raw.slice(headers_len..),
    })
}

/// A meta file holding `blob`.
pub(super) fn encode_meta(blob: &[u8]) -> BytesMut {
    let len = u32::try_from(blob.len()).expect("stream metadata stays under 4 GiB");
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), blob);
    let mut out = BytesMut::with_capacity(2 * (8 + blob.len()));
    // Two copies: damage to one (a flipped bit, a bad sector) leaves the
    // other, so a stream never loses its configuration to one bad bit.
    for _ in 0..2 {
        out.put_u32_le(crc);
        out.put_u32_le(len);
        out.put_slice(blob);
    }
    out
}

/// The blob of one frame that fills `frame` exactly, if intact.
fn decode_meta_frame(frame: &Bytes) -> Option<Bytes> {
    if frame.len() < 8 {
        return None;
    }
    let len = u32_at(frame, 4) as usize;
    if frame.len() != 8 + len {
        return None;
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[4..8]), &frame[8..]);
    (crc == u32_at(frame, 0)).then(|| frame.slice(8..))
}

/// True when a meta file has the length one of its frames says: one copy
/// (as older versions wrote) or two; either copy's length field will do,
/// in case the other is damaged. A crash leaves a shorter prefix.
pub(super) fn meta_is_whole(file: &[u8]) -> bool {
    let says = |at: usize| (file.len() >= at + 8).then(|| 8 + u32_at(file, at + 4) as usize);
    let len = file.len();
    says(0).is_some_and(|f| len == f || len == 2 * f)
        || (len % 2 == 0 && says(len / 2) == Some(len / 2))
}

/// The blob of a meta file, or `None` when both its copies are damaged
/// (a file of one copy, as older versions wrote, is read too).
pub(super) fn decode_meta(file: &Bytes) -> Option<Bytes> {
    if let Some(blob) = decode_meta_frame(file) {
        return Some(blob);
    }
    // The first copy, as long as it says (the second may be torn)…
    if file.len() >= 8 {
        let first_len = (u32_at(file, 4) as usize).saturating_add(8);
        if first_len <= file.len() {
            if let Some(blob) = decode_meta_frame(&file.slice(..first_len)) {
                return Some(blob);
            }
        }
    }
    // …or the second, when the first one's length is what was damaged.
    if file.len() % 2 == 0 {
        return decode_meta_frame(&file.slice(file.len() / 2..));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_any_flipped_bit() {
        let mut buf = BytesMut::new();
        put_msg(&mut buf, 7, UnixNanos(-3), b"a.b", Some(b""), b"hello");
        put_msg(&mut buf, 8, UnixNanos(9), b"c", None, b"");
        put_tombstone(&mut buf, 7);
        put_floor(&mut buf, 9, 8, UnixNanos(9));
        let mut offset = 0;
        let mut records = Vec::new();
        while let Some((record, len)) = decode(&buf, offset) {
            records.push(record);
            offset += len;
        }
        assert_eq!(offset, buf.len());
        assert_eq!(records.len(), 4);
        assert_eq!(
            records[0],
            Record::Msg {
                seq: 7,
                time: UnixNanos(-3),
                subject: Bytes::from_static(b"a.b"),
                headers: Some(Bytes::new()),
                payload: Bytes::from_static(b"hello"),
            }
        );
        assert!(matches!(&records[1], Record::Msg { headers: None, .. }));
        assert_eq!(records[2], Record::Tombstone { seq: 7 });
        let (_, first_len) = decode(&buf, 0).unwrap();
        for bit in 0..first_len * 8 {
            let mut damaged = buf.to_vec();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&damaged, 0).is_none(), "bit {bit}");
        }
    }

    #[test]
    fn a_torn_record_is_never_whole_but_its_length_and_a_flipped_length_is() {
        let mut buf = BytesMut::new();
        put_msg(&mut buf, 7, UnixNanos(5), b"a.b", None, b"hello world");
        for cut in 0..buf.len() {
            assert!(!is_whole_but_its_length(&buf[..cut], 0), "cut at {cut}");
        }
        assert!(!is_whole_but_its_length(&buf, 0), "an intact record");
        for bit in 8..40 {
            let mut damaged = buf.to_vec();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(is_whole_but_its_length(&damaged, 0), "bit {bit}");
        }
    }

    #[test]
    fn meta_survives_any_one_flipped_bit_and_a_torn_second_copy() {
        let blob = b"{\"name\":\"ORDERS\"}";
        let file = encode_meta(blob).freeze();
        assert_eq!(&decode_meta(&file).unwrap()[..], blob);
        for bit in 0..file.len() * 8 {
            let mut damaged = file.to_vec();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                decode_meta(&Bytes::from(damaged)).as_deref(),
                Some(&blob[..]),
                "bit {bit}"
            );
        }
        let copy = file.len() / 2;
        for cut in copy..file.len() {
            assert_eq!(
                decode_meta(&file.slice(..cut)).as_deref(),
                Some(&blob[..]),
                "cut at {cut}"
            );
        }
        // One copy, as older versions wrote it, still reads.
        assert_eq!(decode_meta(&file.slice(..copy)).as_deref(), Some(&blob[..]));
    }

    #[test]
    fn a_whole_meta_file_is_told_from_a_torn_one_whatever_bit_flipped() {
        let file = encode_meta(b"{\"name\":\"ORDERS\"}").freeze();
        for bit in 0..file.len() * 8 {
            let mut damaged = file.to_vec();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(meta_is_whole(&damaged), "bit {bit}");
        }
        for cut in 0..file.len() {
            assert!(
                !meta_is_whole(&file[..cut]) || cut == file.len() / 2,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn meta_with_both_copies_damaged_or_torn_early_is_refused() {
        let file = encode_meta(b"{\"name\":\"ORDERS\"}").freeze();
        let copy = file.len() / 2;
        let mut damaged = file.to_vec();
        damaged[10] ^= 4;
        damaged[copy + 10] ^= 4;
        assert!(decode_meta(&Bytes::from(damaged)).is_none());
        for cut in 0..copy {
            assert!(decode_meta(&file.slice(..cut)).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn compressed_messages_round_trip_and_damage_is_caught() {
        let payload = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(4);
        let mut buf = BytesMut::new();
        put_msg_compressed(&mut buf, 3, UnixNanos(4), b"s", Some(b"NATS/1.0\r\n\r\n"), &payload);
        assert!(buf.len() < payload.len());
        let (record, len) = decode(&buf, 0).unwrap();
        assert_eq!(len, buf.len());
        let Record::Msg { seq, headers, payload: got, .. } = record else { panic!("a message") };
        assert_eq!((seq, headers.as_deref(), &got[..]), (3, Some(&b"NATS/1.0\r\n\r\n"[..]), &payload[..]));
        // Incompressible: written plain.
        let mut plain = BytesMut::new();
        put_msg_compressed(&mut plain, 1, UnixNanos(0), b"s", None, b"xy");
        let mut expected = BytesMut::new();
        put_msg(&mut expected, 1, UnixNanos(0), b"s", None, b"xy");
        assert_eq!(plain, expected);
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(decode(&buf, 0).is_none());
    }
}
