//! Subjects and the sublist, each against a naive reference written here.

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use natrix_core::subject::{self, Sublist, SublistError, SublistResult};

/// The bytes nats-server refuses inside a subject.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

fn split(s: &[u8]) -> Vec<&[u8]> {
    s.split(|&b| b == b'.').collect()
}

/// Reference `is_valid_subject`: non-empty tokens, no whitespace, `>` only last.
fn ref_valid(s: &[u8]) -> bool {
    let t = split(s);
    t.iter().enumerate().all(|(i, tok)| {
        !tok.is_empty() && !tok.iter().copied().any(is_space) && (*tok != b">" || i + 1 == t.len())
    })
}

/// Reference matcher: recursion over token lists.
fn ref_match(pattern: &[u8], literal: &[u8]) -> bool {
    let l = split(literal);
    if l.iter().any(|t| t.is_empty()) {
        return false;
    }
    fn go(p: &[&[u8]], l: &[&[u8]]) -> bool {
        match (p, l) {
            ([], []) => true,
            ([full], rest) if *full == b">" => !rest.is_empty(),
            ([p0, p_rest @ ..], [l0, l_rest @ ..]) => {
                (*p0 == b"*" || p0 == l0) && go(p_rest, l_rest)
            }
            _ => false,
        }
    }
    go(&split(pattern), &l)
}

/// Input: a pattern and a literal separated by the first NUL.
///
/// Validation and matching agree with the references; the token helpers
/// agree with a plain split; `subject_is_subset` is sound on this literal.
pub fn subject_validation(data: &[u8]) {
    let (pattern, literal) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    for s in [pattern, literal] {
        assert_eq!(
            subject::is_valid_subject(s),
            ref_valid(s),
            "is_valid_subject({s:?})"
        );
        let toks = split(s);
        assert_eq!(subject::tokens(s).collect::<Vec<_>>(), toks);
        assert_eq!(subject::token_count(s), toks.len());
        let has_empty = toks.iter().any(|t| t.is_empty());
        assert_eq!(subject::has_no_empty_token(s), !has_empty);
        let wild = toks.iter().any(|t| *t == b"*" || *t == b">");
        assert_eq!(subject::is_literal(s), !wild);
        assert_eq!(subject::is_valid_literal_subject(s), !has_empty && !wild);
        assert_eq!(subject::is_valid_publish_subject(s), ref_valid(s) && !wild);
        assert_eq!(
            subject::is_valid_queue_name(s),
            !s.is_empty() && !s.iter().copied().any(is_space)
        );
    }
    let matched = subject::subject_matches(pattern, literal);
    assert_eq!(
        matched,
        ref_match(pattern, literal),
        "subject_matches({pattern:?}, {literal:?})"
    );
    if ref_valid(pattern) && ref_valid(literal) {
        assert!(
            subject::subject_is_subset(pattern, pattern),
            "{pattern:?} not a subset of itself"
        );
        if subject::subject_is_subset(literal, pattern) && subject::is_literal(literal) {
            assert!(
                matched,
                "{literal:?} is a subset of {pattern:?} but does not match it"
            );
        }
        if subject::subject_is_subset(pattern, literal) && subject::is_literal(pattern) {
            assert!(subject::subject_matches(literal, pattern));
        }
    }
}

/// Token alphabet: collisions and wildcards are common, junk is possible.
const TOKENS: [&[u8]; 8] = [b"a", b"b", b"foo", b"*", b">", b"", b"a*", b"b c"];

/// A subject built from [`TOKENS`].
#[derive(Arbitrary, Debug)]
struct Subj(Vec<u8>);

impl Subj {
    fn bytes(&self) -> Vec<u8> {
        let toks: Vec<&[u8]> = self
            .0
            .iter()
            .take(6)
            .map(|&i| TOKENS[usize::from(i % 8)])
            .collect();
        toks.join(&b'.')
    }
}

#[derive(Arbitrary, Debug)]
enum SublistOp {
    Insert {
        subject: Subj,
        queue: Option<u8>,
        value: u8,
    },
    Remove {
        subject: Subj,
        queue: Option<u8>,
        value: u8,
    },
    Match {
        literal: Subj,
    },
    MatchRaw {
        literal: Vec<u8>,
    },
}

type Entry = (Vec<u8>, Option<Vec<u8>>, u8);

fn queue_name(q: Option<u8>) -> Option<Vec<u8>> {
    q.map(|q| vec![b'q', b'0' + q % 3])
}

/// What the sublist must answer for `literal`, from the model.
fn expected(model: &[Entry], literal: &[u8]) -> SublistResult<u8> {
    let mut plain = Vec::new();
    let mut queues: Vec<(Bytes, Vec<u8>)> = Vec::new();
    for (subject, queue, value) in model.iter().filter(|e| ref_match(&e.0, literal)) {
        let _ = subject;
        match queue {
            None => plain.push(*value),
            Some(q) => match queues.iter_mut().find(|(name, _)| name == q.as_slice()) {
                Some((_, members)) => members.push(*value),
                None => queues.push((Bytes::copy_from_slice(q), vec![*value])),
            },
        }
    }
    plain.sort_unstable();
    queues.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, members) in &mut queues {
        members.sort_unstable();
    }
    SublistResult { plain, queues }
}

/// Input: `arbitrary` ops on two sublists (cache on and off) and a model.
///
/// Insert and remove answer as the model says; every match equals the
/// model's; counts and the listing agree with the model.
pub fn sublist_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<SublistOp>::arbitrary(&mut u) else {
        return;
    };
    let mut lists = [Sublist::<u8>::with_seed(true, 7), Sublist::<u8>::new(false)];
    let mut model: Vec<Entry> = Vec::new();
    for op in ops.iter().take(512) {
        match op {
            SublistOp::Insert {
                subject,
                queue,
                value,
            } => {
                let (s, q) = (subject.bytes(), queue_name(*queue));
                let entry = (s.clone(), q.clone(), *value);
                let want = if !ref_valid(&s) {
                    Err(SublistError::InvalidSubject)
                } else if model.contains(&entry) {
                    Err(SublistError::AlreadyPresent)
                } else {
                    model.push(entry);
                    Ok(())
                };
                for list in &mut lists {
                    assert_eq!(
                        list.insert(&s, q.as_deref(), *value),
                        want,
                        "insert {s:?} {q:?} {value}"
                    );
                }
            }
            SublistOp::Remove {
                subject,
                queue,
                value,
            } => {
                let (s, q) = (subject.bytes(), queue_name(*queue));
                let entry = (s.clone(), q.clone(), *value);
                let at = model.iter().position(|e| *e == entry);
                if let Some(i) = at {
                    model.swap_remove(i);
                }
                for list in &mut lists {
                    assert_eq!(
                        list.remove(&s, q.as_deref(), value),
                        at.is_some(),
                        "remove {s:?} {q:?} {value}"
                    );
                }
            }
            SublistOp::Match { literal } => check_match(&mut lists, &model, &literal.bytes()),
            SublistOp::MatchRaw { literal } => check_match(&mut lists, &model, literal),
        }
        for list in &lists {
            assert_eq!(list.count(), model.len());
            assert!(list.cache_count() <= natrix_core::subject::sublist::CACHE_MAX);
        }
    }
    check_listing(&lists[0], &model);
}

fn check_match(lists: &mut [Sublist<u8>; 2], model: &[Entry], literal: &[u8]) {
    let want = expected(model, literal);
    for list in lists.iter_mut() {
        assert_eq!(*list.match_subject(literal), want, "match {literal:?}");
    }
    let mut hits: Vec<Entry> = lists[0]
        .subscriptions_matching(literal)
        .into_iter()
        .map(|(s, q, v)| (s.to_vec(), q.map(|q| q.to_vec()), v))
        .collect();
    let mut model_hits: Vec<Entry> = model
        .iter()
        .filter(|e| ref_match(&e.0, literal))
        .cloned()
        .collect();
    hits.sort();
    model_hits.sort();
    assert_eq!(hits, model_hits, "subscriptions_matching {literal:?}");
}

fn check_listing(list: &Sublist<u8>, model: &[Entry]) {
    let mut all: Vec<Entry> = list
        .all_subscriptions()
        .into_iter()
        .map(|(s, q, v)| (s.to_vec(), q.map(|q| q.to_vec()), v))
        .collect();
    let mut want = model.to_vec();
    all.sort();
    want.sort();
    assert_eq!(all, want, "all_subscriptions");
    assert_eq!(list.stats().num_subscriptions as usize, model.len());
}
