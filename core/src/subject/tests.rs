//! Validation and matching tables. The expectations in the first two
//! tables are what nats-server 2.15.1 answered to `SUB`/`PUB` (pedantic on
//! and off) over a raw connection.

use super::*;

/// (subject, SUB accepted, PUB accepted in pedantic mode)
const OBSERVED: &[(&[u8], bool, bool)] = &[
    (b"foo", true, true),
    (b"foo.bar", true, true),
    (b"foo..bar", false, false),
    (b"foo.", false, false),
    (b".foo", false, false),
    (b".", false, false),
    (b"..", false, false),
    (b"foo.*", true, false),
    (b"foo.>", true, false),
    (b">.foo", false, false),
    (b"foo.b*r", true, true),
    (b"foo.*bar", true, true),
    (b"*", true, false),
    (b">", true, false),
    (b"foo.>.bar", false, false),
    (b"foo.*.bar", true, false),
    (b"a\x00b", true, true),
    (b"\xff\xfe", true, true),
    (b"foo.\x7f", true, true),
    (b"foo.>>", true, true),
    (b"foo.**", true, true),
];

#[test]
fn validation_matches_observed_server() {
    for &(subject, sub_ok, pedantic_pub_ok) in OBSERVED {
        let shown = String::from_utf8_lossy(subject);
        assert_eq!(is_valid_subject(subject), sub_ok, "SUB {shown}");
        assert_eq!(
            is_valid_literal_subject(subject),
            pedantic_pub_ok,
            "PUB {shown}"
        );
    }
}

#[test]
fn empty_and_whitespace() {
    assert!(!is_valid_subject(b""));
    assert!(!is_valid_literal_subject(b""));
    for s in [
        &b"foo bar"[..],
        b"foo\tbar",
        b"a.b\r",
        b"\n",
        b" ",
        b"a.\x0c",
    ] {
        assert!(!is_valid_subject(s), "{s:?}");
        assert!(!is_valid_publish_subject(s), "{s:?}");
    }
    // nats-server's literal check ignores whitespace; the parser never
    // lets any through.
    assert!(is_valid_literal_subject(b"foo bar"));
}

#[test]
fn queue_names() {
    for q in [&b"q1"[..], b"a.b", b"*", b">", b"..", b"a*b", b"q\x00"] {
        assert!(is_valid_queue_name(q), "{q:?}");
    }
    for q in [&b""[..], b"a b", b"\t"] {
        assert!(!is_valid_queue_name(q), "{q:?}");
    }
}

#[test]
fn tokens_split_like_the_server() {
    let all: Vec<&[u8]> = tokens(b"a..b.").collect();
    assert_eq!(all, vec![&b"a"[..], b"", b"b", b""]);
    assert_eq!(tokens(b"").collect::<Vec<_>>(), vec![&b""[..]]);
    assert_eq!(token_count(b"a.b.c"), 3);
    assert_eq!(split_first_token(b"a.b"), (&b"a"[..], Some(&b"b"[..])));
    assert_eq!(split_first_token(b"a"), (&b"a"[..], None));
}

/// (pattern, literal, delivered)
const MATCHES: &[(&[u8], &[u8], bool)] = &[
    (b"foo", b"foo", true),
    (b"foo", b"foo.bar", false),
    (b"foo.*", b"foo.bar", true),
    (b"foo.*", b"foo", false),
    (b"foo.*", b"foo.bar.baz", false),
    (b"foo.>", b"foo.bar.baz", true),
    (b"foo.>", b"foo", false),
    (b">", b"foo", true),
    (b">", b"a.b.c", true),
    (b"*", b"a", true),
    (b"*.*", b"a.b", true),
    (b"*.b", b"a.c", false),
    (b"foo.b*r", b"foo.bar", false),
    (b"foo.b*r", b"foo.b*r", true),
    // Published wildcard tokens are literal text that wildcards match
    // (observed: PUB foo.* reaches a `>` subscriber).
    (b"foo.*", b"foo.*", true),
    (b">", b"foo.>", true),
    (b"foo.bar", b"foo.*", false),
    // Empty tokens reach nobody (observed: not even `>`).
    (b">", b"foo..bar", false),
    (b">", b"foo.", false),
    (b">", b".foo", false),
    (b">", b"", false),
];

#[test]
fn matching_table() {
    for &(pattern, literal, want) in MATCHES {
        let shown = (
            String::from_utf8_lossy(pattern),
            String::from_utf8_lossy(literal),
        );
        assert_eq!(subject_matches(pattern, literal), want, "{shown:?}");
    }
}

/// (subset, of, is subset)
const SUBSETS: &[(&[u8], &[u8], bool)] = &[
    (b"foo.*", b"foo.*", true),
    (b"foo.*", b"*.*", true),
    (b"foo.*", b">", true),
    (b"foo.*", b"foo.bar", false),
    (b"foo.bar", b"foo.*", true),
    (b"foo.>", b"foo.*", false),
    (b"foo.>", b"foo.>", true),
    (b"foo.>", b">", true),
    (b">", b"foo.>", false),
    (b"foo", b"foo.>", false),
    (b"foo.bar.baz", b"foo.>", true),
    (b"*", b"foo", false),
    (b"a.b", b"a.b.c", false),
    (b"a.b.c", b"a.b", false),
];

#[test]
fn subset_table() {
    for &(subset, of, want) in SUBSETS {
        let shown = (String::from_utf8_lossy(subset), String::from_utf8_lossy(of));
        assert_eq!(subject_is_subset(subset, of), want, "{shown:?}");
    }
}
