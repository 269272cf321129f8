use super::*;

fn plain(sl: &mut Sublist<u32>, literal: &str) -> Vec<u32> {
    sl.match_subject(literal.as_bytes()).plain.clone()
}

#[test]
fn literal_and_wildcard_matches() {
    let mut sl = Sublist::new(true);
    sl.insert(b"foo.bar", None, 1).unwrap();
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"foo.>", None, 3).unwrap();
    sl.insert(b">", None, 4).unwrap();
    sl.insert(b"*.bar", None, 5).unwrap();
    sl.insert(b"foo.bar.baz", None, 6).unwrap();
    assert_eq!(plain(&mut sl, "foo.bar"), [1, 2, 3, 4, 5]);
    assert_eq!(plain(&mut sl, "foo.bar.baz"), [3, 4, 6]);
    assert_eq!(plain(&mut sl, "foo"), [4]);
    assert_eq!(plain(&mut sl, "x.bar"), [4, 5]);
    assert_eq!(plain(&mut sl, "foo..bar"), Vec::<u32>::new());
    assert_eq!(sl.count(), 6);
}

#[test]
fn queue_groups_are_grouped_and_sorted() {
    let mut sl = Sublist::new(true);
    sl.insert(b"foo", Some(b"q2"), 9).unwrap();
    sl.insert(b"foo", Some(b"q1"), 3).unwrap();
    sl.insert(b"*", Some(b"q1"), 1).unwrap();
    sl.insert(b"foo", None, 7).unwrap();
    let r = sl.match_subject(b"foo");
    assert_eq!(r.plain, [7]);
    let groups: Vec<(&[u8], &[u32])> = r.queues.iter().map(|(q, m)| (&q[..], &m[..])).collect();
    assert_eq!(groups, [(&b"q1"[..], &[1, 3][..]), (&b"q2"[..], &[9][..])]);
    assert_eq!(r.fanout(), 3);
}

#[test]
fn rejects_invalid_and_duplicate() {
    let mut sl = Sublist::new(true);
    for bad in [
        &b""[..],
        b"foo..bar",
        b"foo.",
        b">.foo",
        b"foo.>.bar",
        b"a b",
    ] {
        assert_eq!(sl.insert(bad, None, 1), Err(SublistError::InvalidSubject));
    }
    sl.insert(b"foo", None, 1).unwrap();
    assert_eq!(
        sl.insert(b"foo", None, 1),
        Err(SublistError::AlreadyPresent)
    );
    sl.insert(b"foo", Some(b"q"), 1).unwrap();
    assert_eq!(sl.count(), 2);
    assert!(sl.root.literals.len() == 1);
}

#[test]
fn remove_prunes_every_node() {
    let mut sl = Sublist::new(true);
    sl.insert(b"a.b.c", None, 1).unwrap();
    sl.insert(b"a.*.c", Some(b"q"), 2).unwrap();
    sl.insert(b"a.>", None, 3).unwrap();
    assert!(!sl.remove(b"a.b.c", None, &2));
    assert!(!sl.remove(b"a.b", None, &1));
    assert!(!sl.remove(b"a.*.c", None, &2));
    assert!(sl.remove(b"a.b.c", None, &1));
    assert!(sl.remove(b"a.*.c", Some(b"q"), &2));
    assert!(sl.remove(b"a.>", None, &3));
    assert!(sl.root.is_empty());
    assert_eq!(sl.count(), 0);
}

#[test]
fn cache_is_patched_on_insert_and_remove() {
    let mut sl = Sublist::new(true);
    sl.insert(b"foo.bar", None, 1).unwrap();
    let before = sl.match_subject(b"foo.bar");
    assert_eq!(before.plain, [1]);
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"foo.bar", Some(b"g"), 3).unwrap();
    let after = sl.match_subject(b"foo.bar");
    assert_eq!(after.plain, [1, 2]);
    assert_eq!(after.queues.len(), 1);
    // The result handed out earlier is a snapshot, untouched.
    assert_eq!(before.plain, [1]);
    sl.remove(b"foo.*", None, &2);
    sl.remove(b"foo.bar", Some(b"g"), &3);
    assert_eq!(*sl.match_subject(b"foo.bar"), *before);
    assert_eq!(sl.stats().cache_hits, 2);
}

#[test]
fn cache_hit_returns_the_same_allocation() {
    let mut sl = Sublist::new(true);
    sl.insert(b"foo", None, 1u32).unwrap();
    let a = sl.match_subject(b"foo");
    let b = sl.match_subject(b"foo");
    assert!(Arc::ptr_eq(&a, &b));
    let mut off = Sublist::new(false);
    off.insert(b"foo", None, 1u32).unwrap();
    assert!(!Arc::ptr_eq(
        &off.match_subject(b"foo"),
        &off.match_subject(b"foo")
    ));
    assert_eq!(off.cache_count(), 0);
}

#[test]
fn cache_sweeps_to_the_most_recently_used() {
    let mut sl = Sublist::new(true);
    sl.insert(b">", None, 1u32).unwrap();
    let hot = b"hot".to_vec();
    for i in 0..CACHE_MAX - 1 {
        sl.match_subject(format!("s.{i}").as_bytes());
        sl.match_subject(&hot);
    }
    assert_eq!(sl.cache_count(), CACHE_MAX);
    sl.match_subject(b"one.more");
    assert_eq!(sl.cache_count(), CACHE_SWEEP_TO);
    let hits = sl.stats().cache_hits;
    sl.match_subject(&hot);
    sl.match_subject(b"one.more");
    assert_eq!(sl.stats().cache_hits, hits + 2);
    assert_eq!(sl.cache_count(), CACHE_SWEEP_TO);
}

#[test]
fn stats_follow_the_server_definitions() {
    let mut sl = Sublist::new(true);
    sl.insert(b"foo.*", None, 1u32).unwrap();
    sl.insert(b"foo.bar", Some(b"q1"), 2).unwrap();
    sl.insert(b"foo.bar", Some(b"q1"), 3).unwrap();
    sl.insert(b">", None, 4).unwrap();
    for s in ["foo.bar", "foo.bar", "foo.baz", "x"] {
        sl.match_subject(s.as_bytes());
    }
    sl.remove(b">", None, &4);
    let st = sl.stats();
    assert_eq!(st.num_subscriptions, 3);
    assert_eq!(st.num_inserts, 4);
    assert_eq!(st.num_removes, 1);
    assert_eq!(st.num_matches, 4);
    assert_eq!(st.num_cache, 3);
    assert_eq!(st.cache_hit_rate, 0.25);
    // foo.bar: 1 plain + 1 group; foo.baz: 1; x: 0.
    assert_eq!(st.max_fanout, 2);
    assert_eq!(st.avg_fanout, 1.0);
    let mut total = SublistStats::default();
    total.add(&st);
    total.add(&st);
    assert_eq!(total.num_subscriptions, 6);
    assert_eq!(total.avg_fanout, 1.0);
    assert_eq!(total.cache_hit_rate, 0.25);
}

#[test]
fn listing_is_in_subject_order() {
    let mut sl = Sublist::new(true);
    sl.insert(b"foo.*", None, 1u32).unwrap();
    sl.insert(b"foo.bar", Some(b"q1"), 2).unwrap();
    sl.insert(b">", None, 4).unwrap();
    sl.insert(b"foo", None, 5).unwrap();
    let all: Vec<(String, Option<String>, u32)> = sl
        .all_subscriptions()
        .into_iter()
        .map(|(s, q, v)| {
            let q = q.map(|q| String::from_utf8(q.to_vec()).unwrap());
            (String::from_utf8(s.to_vec()).unwrap(), q, v)
        })
        .collect();
    let want = [
        ("foo", None, 5),
        ("foo.bar", Some("q1"), 2),
        ("foo.*", None, 1),
        (">", None, 4),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(s, q, v)| (s.to_string(), q.map(String::from), *v))
        .collect();
    assert_eq!(all, want);
    let hits: Vec<u32> = sl
        .subscriptions_matching(b"foo.bar")
        .into_iter()
        .map(|t| t.2)
        .collect();
    assert_eq!(hits, [2, 1, 4]);
    assert_eq!(sl.stats().num_matches, 0);
}

#[test]
fn very_deep_subjects_do_not_recurse() {
    // 200k tokens: far past any default control line, and deep enough to
    // overflow a thread stack if any walk recursed per token.
    let literal = vec!["t"; 200_000].join(".");
    let wildcards = vec!["*"; 200_000].join(".");
    let mut sl = Sublist::new(true);
    sl.insert(literal.as_bytes(), None, 1u32).unwrap();
    sl.insert(wildcards.as_bytes(), None, 2).unwrap();
    assert_eq!(sl.match_subject(literal.as_bytes()).plain, [1, 2]);
    assert_eq!(sl.all_subscriptions().len(), 2);
    assert!(sl.remove(wildcards.as_bytes(), None, &2));
    assert!(sl.remove(literal.as_bytes(), None, &1));
    assert!(sl.root.is_empty());
}

mod random {
    use super::*;
    use proptest::prelude::*;

    fn pattern() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec!["a", "b", "*", ">"]);
        prop::collection::vec(token, 1..=4).prop_map(|t| t.join(".").into_bytes())
    }

    proptest! {
        /// Removing everything, in any order, leaves no node behind, and
        /// each removal leaves the other subscriptions reachable.
        #[test]
        fn removing_everything_prunes_everything(
            subs in prop::collection::vec((pattern(), any::<bool>(), 0u8..3), 0..40),
            order in any::<prop::sample::Index>(),
        ) {
            let mut sl = Sublist::new(false);
            let mut present = Vec::new();
            for (p, queued, v) in subs {
                let q = queued.then_some(&b"q"[..]);
                if sl.insert(&p, q, v).is_ok() {
                    present.push((p, q, v));
                }
            }
            let start = if present.is_empty() { 0 } else { order.index(present.len()) };
            present.rotate_left(start);
            while let Some((p, q, v)) = present.pop() {
                prop_assert!(sl.remove(&p, q, &v));
                let mut listed = Vec::new();
                sl.for_each(|s, q, v| listed.push((s.to_vec(), q.map(<[u8]>::to_vec), *v)));
                let mut want: Vec<_> =
                    present.iter().map(|(p, q, v)| (p.clone(), q.map(<[u8]>::to_vec), *v)).collect();
                listed.sort();
                want.sort();
                prop_assert_eq!(listed, want);
            }
            prop_assert!(sl.root.is_empty());
        }
    }
}
