//! Subject mappings: rewriting a subject that matches one pattern into
//! another, as imports (and, later, `mappings {}`) do.

use bytes::{Bytes, BytesMut};

use super::{is_full_wildcard, is_partial_wildcard, tokens};

/// A subject mapping: subjects matching `from` are rewritten to `to`, the
/// tokens `from`'s wildcards matched filling `to`'s wildcards in order
/// (`feed.*` → `myfeed.*`, `news.>` → `b.news.>`). A stream import's `to`
/// may also name them by number (`$2.$1` or `{{wildcard(2)}}`).
#[derive(Clone, Debug)]
pub(crate) struct SubjectMap {
    pub from: Bytes,
    pub to: Bytes,
    /// `to` names wildcards by number.
    pub numbered: bool,
}

impl SubjectMap {
    /// A mapping filling `to`'s wildcards in order (service imports).
    pub fn new(from: Bytes, to: Bytes) -> Self {
        SubjectMap {
            from,
            to,
            numbered: false,
        }
    }

    /// A stream import's mapping, where `to` may name wildcards by number.
    pub fn stream(from: Bytes, to: Bytes) -> Self {
        let numbered = tokens(&to).any(|t| wildcard_number(t).is_some());
        SubjectMap { from, to, numbered }
    }

    /// Writes the mapped `subject` into `out`. `subject` must match `from`.
    pub fn apply(&self, subject: &[u8], out: &mut BytesMut) {
        if self.from == self.to {
            out.extend_from_slice(subject);
            return;
        }
        if self.numbered {
            self.apply_numbered(subject, out);
            return;
        }
        let mut captured = tokens(subject);
        let mut from = tokens(&self.from);
        let mut first = true;
        for t in tokens(&self.to) {
            if !first {
                out.extend_from_slice(b".");
            }
            first = false;
            if is_partial_wildcard(t) {
                out.extend_from_slice(next_capture(&mut from, &mut captured).unwrap_or(t));
            } else if is_full_wildcard(t) {
                // `>` takes the rest of the subject from where `from`'s `>` began.
                for f in from.by_ref() {
                    if is_full_wildcard(f) {
                        break;
                    }
                    captured.next();
                }
                let mut rest_first = true;
                for c in captured.by_ref() {
                    if !rest_first {
                        out.extend_from_slice(b".");
                    }
                    rest_first = false;
                    out.extend_from_slice(c);
                }
            } else {
                out.extend_from_slice(t);
            }
        }
    }
}

impl SubjectMap {
    /// [`SubjectMap::apply`] for a `to` naming wildcards by number: rare,
    /// so it may collect the captured tokens first.
    fn apply_numbered(&self, subject: &[u8], out: &mut BytesMut) {
        let captured: Vec<&[u8]> = tokens(&self.from)
            .zip(tokens(subject))
            .filter(|(f, _)| is_partial_wildcard(f))
            .map(|(_, s)| s)
            .collect();
        let rest_at = tokens(&self.from).position(is_full_wildcard);
        let mut stars = 0;
        for (i, t) in tokens(&self.to).enumerate() {
            if i > 0 {
                out.extend_from_slice(b".");
            }
            let number = if is_partial_wildcard(t) {
                stars += 1;
                Some(stars)
            } else {
                wildcard_number(t)
            };
            match number {
                Some(n) => out.extend_from_slice(
                    n.checked_sub(1)
                        .and_then(|n| captured.get(n))
                        .copied()
                        .unwrap_or(t),
                ),
                None if is_full_wildcard(t) => {
                    let rest: Vec<&[u8]> = tokens(subject)
                        .skip(rest_at.unwrap_or(usize::MAX))
                        .collect();
                    out.extend_from_slice(&rest.join(&b"."[..]));
                }
                None => out.extend_from_slice(t),
            }
        }
    }
}

/// The subject token matched by `from`'s next `*`.
fn next_capture<'a>(
    from: &mut super::Tokens<'_>,
    captured: &mut super::Tokens<'a>,
) -> Option<&'a [u8]> {
    for f in from.by_ref() {
        let c = captured.next()?;
        if is_partial_wildcard(f) {
            return Some(c);
        }
    }
    None
}

/// The wildcard a mapping destination token stands for: `$N` or
/// `{{wildcard(N)}}` (nats-server's two spellings), numbered from 1.
pub(crate) fn wildcard_number(token: &[u8]) -> Option<usize> {
    if let Some(digits) = token.strip_prefix(b"$") {
        return std::str::from_utf8(digits).ok()?.parse().ok();
    }
    let inner = mapping_function(token)?.trim_start();
    let rest = inner
        .strip_prefix("wildcard")
        .or_else(|| inner.strip_prefix("Wildcard"))?;
    let args = rest
        .trim_start()
        .strip_prefix('(')?
        .trim_end()
        .strip_suffix(')')?;
    args.trim().parse().ok()
}

/// The inside of a `{{…}}` mapping function token.
pub(crate) fn mapping_function(token: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(token).ok()?;
    text.strip_prefix("{{")?.strip_suffix("}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(from: &str, to: &str, subject: &str) -> String {
        let m = SubjectMap::stream(
            Bytes::copy_from_slice(from.as_bytes()),
            Bytes::copy_from_slice(to.as_bytes()),
        );
        let mut out = BytesMut::new();
        m.apply(subject.as_bytes(), &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn maps_wildcards_in_order() {
        assert_eq!(map("feed.*", "myfeed.*", "feed.y"), "myfeed.y");
        assert_eq!(map("news.>", "b.news.>", "news.x.y"), "b.news.x.y");
        assert_eq!(map("svc.a", "local.a", "svc.a"), "local.a");
        assert_eq!(map("a.*.c.>", "x.*.>", "a.1.c.2.3"), "x.1.2.3");
        assert_eq!(map("same.>", "same.>", "same.q"), "same.q");
    }

    #[test]
    fn maps_numbered_wildcards() {
        assert_eq!(map("s.*.*", "t.$2.$1", "s.a.b"), "t.b.a");
        assert_eq!(
            map("s.*.*", "t.{{wildcard(2)}}.{{ Wildcard( 1 ) }}", "s.a.b"),
            "t.b.a"
        );
        assert_eq!(map("s.*", "t.*.$1", "s.a"), "t.a.a");
        assert_eq!(map("s.*.>", "t.$1.>", "s.a.b.c"), "t.a.b.c");
        assert_eq!(
            map("s.*", "t.$price", "s.a"),
            "t.$price",
            "not a number: a literal"
        );
    }
}
