//! Subjects: validation, wildcard matching, and the subscription index.
//!
//! A subject is a `.`-separated list of tokens. In a subscription, a token
//! that is exactly `*` matches any one token and a final token that is
//! exactly `>` matches one or more tokens. A token that merely *contains*
//! `*` or `>` (`foo.b*r`, `foo.>>`) is an ordinary literal token.
//!
//! The rules below were checked against nats-server 2.15.1 (the table in the
//! unit tests records what it answered):
//!
//! - `SUB` accepts any subject whose tokens are all non-empty and where `>`
//!   appears only as the last token; `foo..bar`, `foo.`, `.foo`, `>.foo`
//!   and `foo.>.bar` get `-ERR 'Invalid Subject'` and the connection stays
//!   open. NUL bytes and invalid UTF-8 are accepted.
//! - `PUB` is never rejected outside pedantic mode. A subject with an empty
//!   token (`foo..bar`, `foo.`) reaches nobody, not even a `>` subscriber;
//!   a subject with wildcard tokens (`foo.*`) is delivered as if `*` were an
//!   ordinary token (so it reaches `foo.*`, `foo.>` and `>` subscribers).
//! - In pedantic mode `PUB` to a subject that is not a valid literal (empty
//!   token, or a `*`/`>` token) gets `-ERR 'Invalid Publish Subject'`, yet the
//!   message is *still* routed exactly as above and the connection stays open.
//! - Queue names are not checked beyond being one whitespace-free argument
//!   (`a.b`, `*`, `>`, `..` all work); only the reserved `_sys_` group is
//!   refused, as a permissions violation (the server's concern, not this
//!   module's).
//! - Whitespace cannot reach a subject through the client protocol (the
//!   parser splits arguments on it), but subjects from configuration can
//!   carry it, so [`is_valid_subject`] rejects it like nats-server does.

pub(crate) mod hash;
pub(crate) mod map;
pub mod sublist;
pub mod transform;

pub(crate) use map::SubjectMap;
pub use sublist::{Sublist, SublistError, SublistResult, SublistStats};

/// Separates the tokens of a subject.
pub const TOKEN_SEPARATOR: u8 = b'.';
/// A token that is exactly this byte matches any single token.
pub const PARTIAL_WILDCARD: u8 = b'*';
/// A last token that is exactly this byte matches one or more tokens.
pub const FULL_WILDCARD: u8 = b'>';

/// Iterator over the tokens of a subject, without allocating.
///
/// Like splitting on `.`: an empty subject yields one empty token, and
/// `a..b` yields `a`, ``, `b`.
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match rest.iter().position(|&b| b == TOKEN_SEPARATOR) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

impl Tokens<'_> {
    /// True when no token is left.
    pub fn is_done(&self) -> bool {
        self.rest.is_none()
    }
}

/// Splits `subject` into its tokens (see [`Tokens`]).
pub fn tokens(subject: &[u8]) -> Tokens<'_> {
    Tokens {
        rest: Some(subject),
    }
}

/// Splits off the first token: `(token, Some(rest))`, or `(token, None)` on
/// the last one.
pub(crate) fn split_first_token(subject: &[u8]) -> (&[u8], Option<&[u8]>) {
    match subject.iter().position(|&b| b == TOKEN_SEPARATOR) {
        Some(i) => (&subject[..i], Some(&subject[i + 1..])),
        None => (subject, None),
    }
}

/// The whitespace nats-server refuses inside a subject.
fn is_subject_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

/// True if `token` is exactly `*`.
pub fn is_partial_wildcard(token: &[u8]) -> bool {
    token == [PARTIAL_WILDCARD]
}

/// True if `token` is exactly `>`.
pub fn is_full_wildcard(token: &[u8]) -> bool {
    token == [FULL_WILDCARD]
}

/// A subject a client may subscribe to: non-empty tokens, no whitespace,
/// `>` only as the last token. Wildcards are allowed.
///
/// Mirrors nats-server's `IsValidSubject` (without its optional UTF-8 check,
/// which the client path does not apply either).
pub fn is_valid_subject(subject: &[u8]) -> bool {
    let mut seen_full_wildcard = false;
    for token in tokens(subject) {
        if token.is_empty() || seen_full_wildcard {
            return false;
        }
        if token.iter().any(|&b| is_subject_whitespace(b)) {
            return false;
        }
        seen_full_wildcard = is_full_wildcard(token);
    }
    true
}

/// A subject with no empty token and no wildcard token: what pedantic mode
/// requires of a `PUB` subject (else `-ERR 'Invalid Publish Subject'`), and
/// what `/subsz?test=` requires.
///
/// Mirrors nats-server's `IsValidLiteralSubject` exactly, which does not look
/// for whitespace (the client parser never lets any through).
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    tokens(subject).all(|t| !t.is_empty() && !is_partial_wildcard(t) && !is_full_wildcard(t))
}

/// A valid subject with no wildcard token (nats-server's
/// `IsValidPublishSubject`): whitespace is refused too.
pub fn is_valid_publish_subject(subject: &[u8]) -> bool {
    is_valid_subject(subject) && is_literal(subject)
}

/// True if no token of `subject` is a wildcard. Does not check validity.
pub fn is_literal(subject: &[u8]) -> bool {
    tokens(subject).all(|t| !is_partial_wildcard(t) && !is_full_wildcard(t))
}

/// A queue group name: one non-empty argument without whitespace. nats-server
/// checks nothing more (`a.b`, `*`, `>` are accepted as names).
pub fn is_valid_queue_name(queue: &[u8]) -> bool {
    !queue.is_empty() && !queue.iter().any(|&b| is_subject_whitespace(b))
}

/// True if `subject` has no empty token (and so is not empty).
///
/// A published subject failing this reaches no subscriber in nats-server.
pub fn has_no_empty_token(subject: &[u8]) -> bool {
    !subject.is_empty()
        && subject.first() != Some(&TOKEN_SEPARATOR)
        && subject.last() != Some(&TOKEN_SEPARATOR)
        && !subject.windows(2).any(|w| w == b"..")
}

/// Number of tokens in `subject`.
pub fn token_count(subject: &[u8]) -> usize {
    1 + subject.iter().filter(|&&b| b == TOKEN_SEPARATOR).count()
}

/// Does the subscription `pattern` receive a message published to `literal`?
///
/// Every token of `literal` is taken literally (a published `foo.*` is the
/// token `*`, which only a wildcard matches, as in nats-server). A `literal`
/// with an empty token matches nothing, since nats-server delivers such a
/// message to nobody. `>` is a wildcard only as the last token of `pattern`.
pub fn subject_matches(pattern: &[u8], literal: &[u8]) -> bool {
    if !has_no_empty_token(literal) {
        return false;
    }
    let mut literal_tokens = tokens(literal);
    let mut pattern_tokens = tokens(pattern);
    while let Some(p) = pattern_tokens.next() {
        if is_full_wildcard(p) && pattern_tokens.is_done() {
            return literal_tokens.next().is_some();
        }
        match literal_tokens.next() {
            Some(l) if is_partial_wildcard(p) || p == l => {}
            _ => return false,
        }
    }
    literal_tokens.is_done()
}

/// Is every subject matched by `subset` also matched by `of`? Both may hold
/// wildcards: `foo.*` is a subset of `foo.*`, `*.*` and `>`, not of
/// `foo.bar`. Used by permissions, imports and exports.
///
/// Both patterns are assumed valid ([`is_valid_subject`]).
pub fn subject_is_subset(subset: &[u8], of: &[u8]) -> bool {
    let mut sub_tokens = tokens(subset);
    let mut of_tokens = tokens(of);
    while let Some(o) = of_tokens.next() {
        let Some(s) = sub_tokens.next() else {
            return false;
        };
        if is_full_wildcard(o) && of_tokens.is_done() {
            return true;
        }
        let covered = if is_full_wildcard(s) || is_partial_wildcard(s) {
            // A wildcard in `subset` ranges over every token, so only the
            // same wildcard (or `*` for `*`) covers it.
            is_partial_wildcard(o) && is_partial_wildcard(s)
        } else {
            is_partial_wildcard(o) || o == s
        };
        if !covered {
            return false;
        }
    }
    sub_tokens.is_done()
}

#[cfg(test)]
mod tests;
