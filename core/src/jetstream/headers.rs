//! Reading and writing the NATS header block (`NATS/1.0\r\nKey: value\r\n…\r\n\r\n`)
//! for the headers JetStream acts on.

use bytes::{BufMut, Bytes, BytesMut};

/// `Nats-Msg-Id`: the publisher's id of a message, for de-duplication.
pub const MSG_ID: &[u8] = b"Nats-Msg-Id";
/// `Nats-Expected-Stream`: publish only if the subject is in this stream.
pub const EXPECTED_STREAM: &[u8] = b"Nats-Expected-Stream";
/// `Nats-Expected-Last-Sequence`: publish only if the stream's last sequence is this.
pub const EXPECTED_LAST_SEQ: &[u8] = b"Nats-Expected-Last-Sequence";
/// `Nats-Expected-Last-Subject-Sequence`: … if the subject's last sequence is this.
pub const EXPECTED_LAST_SUBJECT_SEQ: &[u8] = b"Nats-Expected-Last-Subject-Sequence";
/// `Nats-Expected-Last-Msg-Id`: … if the stream's last message id is this.
pub const EXPECTED_LAST_MSG_ID: &[u8] = b"Nats-Expected-Last-Msg-Id";
/// `Nats-Rollup`: `sub` or `all`, replace what the stream holds.
pub const ROLLUP: &[u8] = b"Nats-Rollup";

/// The value of the first header named `name` in `block`, trimmed, as
/// nats-server reads it (names compared exactly).
pub fn value<'a>(block: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut lines = block.split(|&b| b == b'\n');
    lines.next()?; // the status line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if &line[..colon] == name {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

/// The header's value as text, if present and UTF-8.
pub fn text<'a>(block: Option<&'a [u8]>, name: &[u8]) -> Option<&'a str> {
    block.and_then(|b| value(b, name)).and_then(|v| std::str::from_utf8(v).ok())
}

/// Builds a header block: the status line (`NATS/1.0` or `NATS/1.0 404 No
/// Messages`), then the headers, then the blank line.
pub fn block(status: Option<(u16, &str)>, headers: &[(&[u8], &[u8])]) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_slice(b"NATS/1.0");
    if let Some((code, text)) = status {
        b.put_slice(format!(" {code} {text}").as_bytes());
    }
    b.put_slice(b"\r\n");
    put_headers(&mut b, headers)
}

/// `existing` with `extra` headers appended (a message's own headers kept
/// as they were, as direct get and republish add theirs after them).
pub fn append(existing: Option<&[u8]>, extra: &[(&[u8], &[u8])]) -> Bytes {
    let Some(existing) = existing.filter(|e| e.len() >= 4) else {
        return block(None, extra);
    };
    let body = existing.strip_suffix(b"\r\n\r\n").or_else(|| existing.strip_suffix(b"\r\n")).unwrap_or(existing);
    let mut b = BytesMut::with_capacity(existing.len() + 64);
    b.put_slice(body);
    b.put_slice(b"\r\n");
    put_headers(&mut b, extra)
}

/// Appends `Key: value` lines and the closing blank line.
/// `existing` without its `name` headers, then `name: value` appended (how
/// nats-server rewrites a header it changes).
pub fn replace(existing: Option<&[u8]>, name: &[u8], value: &[u8]) -> Bytes {
    let Some(existing) = existing.filter(|e| e.len() >= 4) else {
        return block(None, &[(name, value)]);
    };
    let mut b = BytesMut::with_capacity(existing.len() + 32);
    let mut lines = existing.split(|&c| c == b'\n');
    let status = lines.next().unwrap_or_default();
    b.put_slice(status.strip_suffix(b"\r").unwrap_or(status));
    b.put_slice(b"\r\n");
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let named = line.iter().position(|&c| c == b':').is_some_and(|colon| &line[..colon] == name);
        if !line.is_empty() && !named {
            b.put_slice(line);
            b.put_slice(b"\r\n");
        }
    }
    put_headers(&mut b, &[(name, value)])
}

fn put_headers(b: &mut BytesMut, headers: &[(&[u8], &[u8])]) -> Bytes {
    for (k, v) in headers {
        b.put_slice(k);
        b.put_slice(b": ");
        b.put_slice(v);
        b.put_slice(b"\r\n");
    }
    b.put_slice(b"\r\n");
    b.split().freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_drops_the_old_value_and_appends_the_new() {
        let h = b"NATS/1.0\r\nA: 1\r\nNats-TTL: 1\r\nB: 2\r\n\r\n";
        assert_eq!(&replace(Some(h), b"Nats-TTL", b"3")[..], b"NATS/1.0\r\nA: 1\r\nB: 2\r\nNats-TTL: 3\r\n\r\n");
        assert_eq!(&replace(None, b"Nats-TTL", b"3")[..], b"NATS/1.0\r\nNats-TTL: 3\r\n\r\n");
    }

    #[test]
    fn finds_values_and_builds_blocks() {
        let h = b"NATS/1.0\r\nNats-Msg-Id: abc \r\nX: 1\r\n\r\n";
        assert_eq!(value(h, MSG_ID), Some(&b"abc"[..]));
        assert_eq!(value(h, b"X"), Some(&b"1"[..]));
        assert_eq!(value(h, b"Y"), None);
        assert_eq!(value(h, b"nats-msg-id"), None);
        assert_eq!(&block(Some((404, "No Messages")), &[])[..], b"NATS/1.0 404 No Messages\r\n\r\n");
        let b = append(Some(h), &[(b"Nats-Stream", b"S")]);
        assert_eq!(&b[..], b"NATS/1.0\r\nNats-Msg-Id: abc \r\nX: 1\r\nNats-Stream: S\r\n\r\n");
        assert_eq!(&append(None, &[(b"A", b"b")])[..], b"NATS/1.0\r\nA: b\r\n\r\n");
    }
}
