//! The encoder for what the server sends clients. Every function appends to
//! a connection's outbound `BytesMut`, reserving once and writing in place:
//! no intermediate `String` or `Vec` per message.

use bytes::{BufMut, BytesMut};

use super::ServerInfo;

/// `PING\r\n`.
pub const PING: &[u8] = b"PING\r\n";
/// `PONG\r\n`.
pub const PONG: &[u8] = b"PONG\r\n";
/// `+OK\r\n`, sent after each op to clients that asked for `verbose`.
pub const OK: &[u8] = b"+OK\r\n";

/// Bytes a `u64` takes at most in decimal.
const U64_DIGITS_MAX: usize = 20;

/// Appends `MSG <subject> <sid> [reply] <#bytes>\r\n<payload>\r\n`.
pub fn write_msg(
    buf: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    payload: &[u8],
) {
    let reply_len = reply.map_or(0, |r| r.len() + 1);
    buf.reserve(
        4 + subject.len() + 1 + sid.len() + reply_len + 1 + U64_DIGITS_MAX + 2 + payload.len() + 2,
    );
    buf.put_slice(b"MSG ");
    write_subject_sid_reply(buf, subject, sid, reply);
    write_u64(buf, payload.len() as u64);
    buf.put_slice(b"\r\n");
    buf.put_slice(payload);
    buf.put_slice(b"\r\n");
}

/// Appends `HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>\r\n`
/// then the headers (from `NATS/1.0` through the blank line), the payload and
/// `\r\n`. The total counts headers and payload.
pub fn write_hmsg(
    buf: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    headers: &[u8],
    payload: &[u8],
) {
    let reply_len = reply.map_or(0, |r| r.len() + 1);
    let body_len = headers.len() + payload.len();
    buf.reserve(
        5 + subject.len() + 1 + sid.len() + reply_len + 2 * (U64_DIGITS_MAX + 1) + 2 + body_len + 2,
    );
    buf.put_slice(b"HMSG ");
    write_subject_sid_reply(buf, subject, sid, reply);
    write_u64(buf, headers.len() as u64);
    buf.put_u8(b' ');
    write_u64(buf, body_len as u64);
    buf.put_slice(b"\r\n");
    buf.put_slice(headers);
    buf.put_slice(payload);
    buf.put_slice(b"\r\n");
}

/// `<subject> <sid> [reply] ` — the part MSG and HMSG share.
fn write_subject_sid_reply(buf: &mut BytesMut, subject: &[u8], sid: &[u8], reply: Option<&[u8]>) {
    buf.put_slice(subject);
    buf.put_u8(b' ');
    buf.put_slice(sid);
    buf.put_u8(b' ');
    if let Some(reply) = reply {
        buf.put_slice(reply);
        buf.put_u8(b' ');
    }
}

/// Appends `INFO {json} \r\n`. The space before `\r\n` is nats-server's: it
/// joins "INFO", the JSON and "\r\n" with spaces.
pub fn write_info(buf: &mut BytesMut, info: &ServerInfo) {
    buf.put_slice(b"INFO ");
    let mut writer = buf.writer();
    // Serializing plain strings, numbers and bools into memory cannot fail.
    serde_json::to_writer(&mut writer, info).expect("ServerInfo serializes");
    let buf = writer.into_inner();
    buf.put_slice(b" \r\n");
}

/// Appends `-ERR 'text'\r\n`.
pub fn write_err(buf: &mut BytesMut, text: &str) {
    buf.reserve(6 + text.len() + 3);
    buf.put_slice(b"-ERR '");
    buf.put_slice(text.as_bytes());
    buf.put_slice(b"'\r\n");
}

/// Appends `n` in decimal.
pub fn write_u64(buf: &mut BytesMut, n: u64) {
    let mut digits = itoa::Buffer::new();
    buf.put_slice(digits.format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        f(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn msg_without_reply() {
        let out = encoded(|b| write_msg(b, b"foo.bar", b"9", None, b"Hello World"));
        assert_eq!(out, b"MSG foo.bar 9 11\r\nHello World\r\n");
    }

    #[test]
    fn msg_with_reply_and_empty_payload() {
        let out = encoded(|b| write_msg(b, b"foo", b"sid1", Some(b"_INBOX.x"), b""));
        assert_eq!(out, b"MSG foo sid1 _INBOX.x 0\r\n\r\n");
    }

    #[test]
    fn hmsg_counts_headers_and_total() {
        let headers = b"NATS/1.0\r\nFoodGroup: vegetable\r\n\r\n";
        let out = encoded(|b| {
            write_hmsg(
                b,
                b"FOO.BAR",
                b"9",
                Some(b"BAZ.69"),
                headers,
                b"Hello World",
            )
        });
        let mut want = b"HMSG FOO.BAR 9 BAZ.69 34 45\r\n".to_vec();
        want.extend_from_slice(headers);
        want.extend_from_slice(b"Hello World\r\n");
        assert_eq!(out, want);
    }

    /// What nats-server 2.15.1 sent a client subscribed with `SUB foo.bar 9`
    /// and `SUB foo.* q 10` for four publishes (captured from the socket).
    #[test]
    fn matches_captured_nats_server_deliveries() {
        let captured: &[u8] = b"MSG foo.bar 9 11\r\nHello World\r\n\
            MSG foo.bar 10 11\r\nHello World\r\n\
            MSG foo.bar 9 _INBOX.x 0\r\n\r\n\
            MSG foo.bar 10 _INBOX.x 0\r\n\r\n\
            HMSG foo.bar 9 BAZ.69 34 45\r\nNATS/1.0\r\nFoodGroup: vegetable\r\n\r\nHello World\r\n\
            HMSG foo.bar 10 BAZ.69 34 45\r\nNATS/1.0\r\nFoodGroup: vegetable\r\n\r\nHello World\r\n\
            HMSG foo.bar 9 12 12\r\nNATS/1.0\r\n\r\n\r\n\
            HMSG foo.bar 10 12 12\r\nNATS/1.0\r\n\r\n\r\n\
            PONG\r\n";
        let headers = b"NATS/1.0\r\nFoodGroup: vegetable\r\n\r\n";
        let out = encoded(|b| {
            for sid in [b"9", b"10" as &[u8]] {
                write_msg(b, b"foo.bar", sid, None, b"Hello World");
            }
            for sid in [b"9", b"10" as &[u8]] {
                write_msg(b, b"foo.bar", sid, Some(b"_INBOX.x"), b"");
            }
            for sid in [b"9", b"10" as &[u8]] {
                write_hmsg(b, b"foo.bar", sid, Some(b"BAZ.69"), headers, b"Hello World");
            }
            for sid in [b"9", b"10" as &[u8]] {
                write_hmsg(b, b"foo.bar", sid, None, b"NATS/1.0\r\n\r\n", b"");
            }
            b.extend_from_slice(PONG);
        });
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(captured)
        );
    }

    #[test]
    fn err_quotes_text() {
        let out = encoded(|b| write_err(b, "Unknown Protocol Operation"));
        assert_eq!(out, b"-ERR 'Unknown Protocol Operation'\r\n");
    }

    #[test]
    fn u64_extremes() {
        assert_eq!(encoded(|b| write_u64(b, 0)), b"0");
        assert_eq!(encoded(|b| write_u64(b, u64::MAX)), b"18446744073709551615");
    }

    #[test]
    fn appends_after_existing_bytes() {
        let mut buf = BytesMut::from(&b"PONG\r\n"[..]);
        write_msg(&mut buf, b"a", b"1", None, b"x");
        assert_eq!(&buf[..], b"PONG\r\nMSG a 1 1\r\nx\r\n");
    }
}
