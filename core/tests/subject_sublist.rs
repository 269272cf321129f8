//! The sublist against a naive model, and subject matching against a
//! straightforward reference, under random inputs. Small alphabets make
//! wildcards and shared prefixes collide often.

use std::collections::BTreeMap;

use natrix_core::subject::{
    subject_is_subset, subject_matches, Sublist, SublistError, SublistResult,
};
use proptest::prelude::*;

type Queue = Option<Vec<u8>>;

/// A subscription subject, sometimes invalid (`>` not last).
fn pattern() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec!["a", "b", "*", ">"]);
    prop::collection::vec(token, 1..=3).prop_map(|t| t.join(".").into_bytes())
}

/// A published subject: literal tokens, a literal `*`, sometimes an empty token.
fn literal() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec!["a", "b", "c", "*", ""]);
    let tokens = prop::collection::vec(token, 1..=4);
    tokens.prop_map(|t| t.join(".").into_bytes())
}

fn queue() -> impl Strategy<Value = Queue> {
    prop::sample::select(vec![None, Some(b"q1".to_vec()), Some(b"q2".to_vec())])
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Vec<u8>, Queue, u8),
    Remove(Vec<u8>, Queue, u8),
    Match(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (pattern(), queue(), 0u8..4).prop_map(|(p, q, v)| Op::Insert(p, q, v)),
        2 => (pattern(), queue(), 0u8..4).prop_map(|(p, q, v)| Op::Remove(p, q, v)),
        4 => literal().prop_map(Op::Match),
    ]
}

fn model_valid(pattern: &[u8]) -> bool {
    let toks: Vec<&[u8]> = pattern.split(|&b| b == b'.').collect();
    toks.iter().all(|t| !t.is_empty()) && toks.iter().rev().skip(1).all(|t| *t != b">")
}

/// Independent matcher: recursion over token lists.
fn reference_matches(pattern: &[u8], literal: &[u8]) -> bool {
    fn go(p: &[&[u8]], l: &[&[u8]]) -> bool {
        match (p.split_first(), l.split_first()) {
            (None, None) => true,
            (Some((pt, [])), _) if *pt == b">" => !l.is_empty(),
            (Some((pt, pr)), Some((lt, lr))) => (*pt == b"*" || pt == lt) && go(pr, lr),
            _ => false,
        }
    }
    let p: Vec<&[u8]> = pattern.split(|&b| b == b'.').collect();
    let l: Vec<&[u8]> = literal.split(|&b| b == b'.').collect();
    l.iter().all(|t| !t.is_empty()) && go(&p, &l)
}

fn model_result(model: &[(Vec<u8>, Queue, u8)], literal: &[u8]) -> SublistResult<u8> {
    let mut plain = Vec::new();
    let mut groups: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (_, q, v) in model
        .iter()
        .filter(|(p, _, _)| reference_matches(p, literal))
    {
        match q {
            None => plain.push(*v),
            Some(q) => groups.entry(q.clone()).or_default().push(*v),
        }
    }
    plain.sort();
    let queues = groups
        .into_iter()
        .map(|(q, mut m)| {
            m.sort();
            (q.into(), m)
        })
        .collect();
    SublistResult { plain, queues }
}

fn run(ops: Vec<Op>, cache: bool) -> Result<(), TestCaseError> {
    let mut sl = Sublist::new(cache);
    let mut model: Vec<(Vec<u8>, Queue, u8)> = Vec::new();
    for op in ops {
        match op {
            Op::Insert(p, q, v) => {
                let got = sl.insert(&p, q.as_deref(), v);
                let entry = (p.clone(), q, v);
                let want = if !model_valid(&p) {
                    Err(SublistError::InvalidSubject)
                } else if model.contains(&entry) {
                    Err(SublistError::AlreadyPresent)
                } else {
                    model.push(entry);
                    Ok(())
                };
                prop_assert_eq!(got, want);
            }
            Op::Remove(p, q, v) => {
                let entry = (p.clone(), q.clone(), v);
                let want = model
                    .iter()
                    .position(|e| *e == entry)
                    .map(|i| model.remove(i));
                prop_assert_eq!(sl.remove(&p, q.as_deref(), &v), want.is_some());
            }
            Op::Match(l) => {
                prop_assert_eq!(&*sl.match_subject(&l), &model_result(&model, &l));
                let mut listed: Vec<_> = sl
                    .subscriptions_matching(&l)
                    .into_iter()
                    .map(|(s, q, v)| (s.to_vec(), q.map(|q| q.to_vec()), v))
                    .collect();
                let mut want: Vec<_> = model
                    .iter()
                    .filter(|(p, _, _)| reference_matches(p, &l))
                    .cloned()
                    .collect();
                listed.sort();
                want.sort();
                prop_assert_eq!(listed, want);
            }
        }
        prop_assert_eq!(sl.count(), model.len());
    }
    let mut all: Vec<_> = sl
        .all_subscriptions()
        .into_iter()
        .map(|(s, q, v)| (s.to_vec(), q.map(|q| q.to_vec()), v))
        .collect();
    all.sort();
    model.sort();
    prop_assert_eq!(all, model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sublist_agrees_with_model_cached(ops in prop::collection::vec(op(), 0..80)) {
        run(ops, true)?;
    }

    #[test]
    fn sublist_agrees_with_model_uncached(ops in prop::collection::vec(op(), 0..80)) {
        run(ops, false)?;
    }

    #[test]
    fn matches_agree_with_reference(
        pattern in "[ab*>.]{0,7}",
        literal in "[ab*>.]{0,7}",
    ) {
        let (p, l) = (pattern.as_bytes(), literal.as_bytes());
        prop_assert_eq!(subject_matches(p, l), reference_matches(p, l));
    }

    #[test]
    fn subset_agrees_with_brute_force(sub in pattern(), of in pattern()) {
        prop_assume!(model_valid(&sub) && model_valid(&of));
        // Every literal over {a, b, z} (z in neither pattern) up to one token
        // longer than both patterns decides the relation.
        let mut literals = vec![Vec::new()];
        let mut all = Vec::new();
        for _ in 0..4 {
            literals = literals
                .iter()
                .flat_map(|l: &Vec<&str>| ["a", "b", "z"].map(|t| [l.clone(), vec![t]].concat()))
                .collect();
            all.extend(literals.iter().map(|l| l.join(".").into_bytes()));
        }
        let brute = all
            .iter()
            .all(|l| !reference_matches(&sub, l) || reference_matches(&of, l));
        prop_assert_eq!(subject_is_subset(&sub, &of), brute);
    }
}

#[test]
fn holds_a_million_subscriptions() {
    let mut sl = Sublist::new(true);
    for i in 0..1_000_000u32 {
        let subject = format!("svc.{}.{}", i % 1000, i);
        sl.insert(subject.as_bytes(), None, i).unwrap();
    }
    sl.insert(b"svc.*.42", Some(b"workers".as_slice()), u32::MAX)
        .unwrap();
    sl.insert(b"svc.>", None, u32::MAX - 1).unwrap();
    assert_eq!(sl.count(), 1_000_002);
    let r = sl.match_subject(b"svc.42.42");
    assert_eq!(r.plain, [42, u32::MAX - 1]);
    assert_eq!(r.queues.len(), 1);
    for i in 0..1_000_000u32 {
        let subject = format!("svc.{}.{}", i % 1000, i);
        assert!(sl.remove(subject.as_bytes(), None, &i));
    }
    assert_eq!(sl.count(), 2);
    assert_eq!(sl.match_subject(b"svc.42.42").plain, [u32::MAX - 1]);
}
