//! MQTT topics ↔ NATS subjects, both ways, with nats-server's rules:
//! `/` is the level separator and becomes `.`; an empty level (a leading,
//! trailing or doubled `/`) keeps a `/` inside a token (`/a` → `/.a`,
//! `a/` → `a./`, `a//b` → `a./.b`); a `.` in a topic becomes `//`; `+` and
//! `#` become `*` and `>` in filters and are refused in topic names;
//! whitespace and DEL are refused.

/// Why a topic cannot become a subject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Whitespace or DEL.
    #[error("character not supported for MQTT topics")]
    UnsupportedCharacters,
    /// `+` or `#` in a topic name.
    #[error("wildcards not allowed in publish's topic: {0:?}")]
    Wildcard(String),
}

/// The NATS subject of a topic name (PUBLISH, will).
pub fn topic_to_subject(topic: &str) -> Result<String, TopicError> {
    convert(topic, false)
}

/// The NATS subject of a topic filter (SUBSCRIBE).
pub fn filter_to_subject(filter: &str) -> Result<String, TopicError> {
    convert(filter, true)
}

fn convert(topic: &str, wildcards: bool) -> Result<String, TopicError> {
    let mt = topic.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(mt.len() + 4);
    let end = mt.len().saturating_sub(1);
    for (i, &c) in mt.iter().enumerate() {
        match c {
            b'/' => {
                if i == 0 || out.last() == Some(&b'.') {
                    out.extend_from_slice(b"/.");
                } else if i == end || mt[i + 1] == b'/' {
                    out.extend_from_slice(b"./");
                } else {
                    out.push(b'.');
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x7f => return Err(TopicError::UnsupportedCharacters),
            b'.' => out.extend_from_slice(b"//"),
            b'+' | b'#' if !wildcards => return Err(TopicError::Wildcard(topic.to_owned())),
            b'+' => out.push(b'*'),
            b'#' => out.push(b'>'),
            c => out.push(c),
        }
    }
    if out.last() == Some(&b'.') {
        out.push(b'/');
    }
    // Only ASCII bytes were replaced by ASCII bytes: still UTF-8.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// The MQTT topic of a NATS subject (deliveries).
pub fn subject_to_topic(subject: &str) -> String {
    let s = subject.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'/' if i + 1 < s.len() && s[i + 1] == b'.' => {
                out.push(b'/');
                i += 1;
            }
            b'/' if i + 1 < s.len() && s[i + 1] == b'/' => {
                out.push(b'.');
                i += 1;
            }
            b'/' => {}
            b'.' => out.push(b'/'),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Whether a filter's first level is a wildcard: such a filter does not
/// match subjects that start with `$` (MQTT-4.7.2-1).
pub fn filter_starts_with_wildcard(filter: &str) -> bool {
    filter.starts_with('+') || filter.starts_with('#')
}

/// For a subject ending in `.>` (MQTT `a/#`), the parent subject that the
/// filter also matches (`a`); `None` otherwise.
pub fn level_up(subject: &str) -> Option<&str> {
    subject.strip_suffix(".>").filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_map_as_nats_server_maps_them() {
        let cases = [
            ("foo", "foo"),
            ("foo/bar", "foo.bar"),
            ("/foo", "/.foo"),
            ("foo/", "foo./"),
            ("foo//bar", "foo./.bar"),
            ("//foo", "/./.foo"),
            ("foo.bar", "foo//bar"),
            ("a/b.c/d", "a.b//c.d"),
        ];
        for (topic, subject) in cases {
            assert_eq!(topic_to_subject(topic).unwrap(), subject, "{topic}");
            assert_eq!(subject_to_topic(subject), topic, "{subject}");
        }
        assert_eq!(filter_to_subject("a/+/c/#").unwrap(), "a.*.c.>");
        assert_eq!(filter_to_subject("#").unwrap(), ">");
        assert_eq!(subject_to_topic("a.b.c"), "a/b/c");
    }

    #[test]
    fn bad_topics_are_refused() {
        assert_eq!(topic_to_subject("a b"), Err(TopicError::UnsupportedCharacters));
        assert_eq!(filter_to_subject("a\x7f"), Err(TopicError::UnsupportedCharacters));
        assert!(matches!(topic_to_subject("a/+"), Err(TopicError::Wildcard(_))));
        assert!(matches!(topic_to_subject("#"), Err(TopicError::Wildcard(_))));
    }

    #[test]
    fn multi_level_filters_match_their_parent() {
        assert_eq!(level_up("a.b.>"), Some("a.b"));
        assert_eq!(level_up(">"), None);
        assert_eq!(level_up("a.*"), None);
        assert!(filter_starts_with_wildcard("#") && filter_starts_with_wildcard("+/a"));
        assert!(!filter_starts_with_wildcard("a/#"));
    }
}
