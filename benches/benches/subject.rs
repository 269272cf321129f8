//! Subject validation and sublist matching: literal and wildcard interest,
//! from one to a million subscriptions, with the match cache hit and missed.
//!
//! Run: `cargo bench -p natrix-bench --bench subject`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use natrix_core::subject::{is_valid_publish_subject, is_valid_subject, Sublist};

/// Subscription counts to index.
const SIZES: [u32; 4] = [1, 1_000, 100_000, 1_000_000];

/// Distinct subjects the cache-miss case cycles through: far more than the
/// cache holds, so every lookup walks the trie.
const MISS_SUBJECTS: u32 = 100_000;

fn validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("subject/validate");
    let cases: [(&str, &[u8]); 4] = [
        ("literal_3", b"orders.eu.created"),
        ("literal_16", b"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p"),
        ("wildcard", b"orders.*.created.>"),
        (
            "long_token_64",
            b"x1234567890123456789012345678901234567890123456789012345678901.y",
        ),
    ];
    for (name, subject) in cases {
        g.throughput(Throughput::Bytes(subject.len() as u64));
        g.bench_function(BenchmarkId::new("is_valid_subject", name), |b| {
            b.iter(|| is_valid_subject(black_box(subject)))
        });
    }
    g.bench_function("is_valid_publish_subject/literal_3", |b| {
        b.iter(|| is_valid_publish_subject(black_box(b"orders.eu.created")))
    });
    g.finish();
}

/// The subject of subscription `i`: three tokens, spread so the trie has
/// wide middle levels like real services (`svc.<group>.<item>`).
fn subject_of(i: u32) -> Vec<u8> {
    format!("svc.g{}.i{}", i / 1000, i % 1000).into_bytes()
}

/// An index of `n` literal subscriptions, plus wildcard interest when
/// `wildcards` is set (`svc.*.i7`, `svc.g0.*`, `svc.>`, `*.*.i7`).
fn build(n: u32, wildcards: bool, cache: bool) -> Sublist<u32> {
    let mut s = Sublist::new(cache);
    for i in 0..n {
        s.insert(&subject_of(i), None, i).expect("valid subject");
    }
    if wildcards {
        for (k, w) in ["svc.*.i7", "svc.g0.*", "svc.>", "*.*.i7"]
            .iter()
            .enumerate()
        {
            s.insert(w.as_bytes(), None, n + k as u32)
                .expect("valid wildcard");
        }
    }
    s
}

fn sublist_match(c: &mut Criterion) {
    let mut g = c.benchmark_group("sublist/match");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        for wildcards in [false, true] {
            let kind = if wildcards { "wildcard" } else { "literal" };
            let mut hit = build(n, wildcards, true);
            // `svc.g0.i7` has a literal subscriber and all four wildcards.
            g.bench_function(BenchmarkId::new(format!("{kind}/cache_hit"), n), |b| {
                b.iter(|| hit.match_subject(black_box(b"svc.g0.i7")).fanout())
            });
            drop(hit);
            let mut miss = build(n, wildcards, true);
            let subjects: Vec<Vec<u8>> = (0..MISS_SUBJECTS)
                .map(|i| subject_of(i % n.max(1)))
                .collect();
            let mut next = 0usize;
            g.bench_function(BenchmarkId::new(format!("{kind}/cache_miss"), n), |b| {
                b.iter(|| {
                    next = (next + 7919) % subjects.len();
                    miss.match_subject(black_box(&subjects[next])).fanout()
                })
            });
            drop(miss);
            let mut off = build(n, wildcards, false);
            g.bench_function(BenchmarkId::new(format!("{kind}/no_cache"), n), |b| {
                b.iter(|| off.match_subject(black_box(b"svc.g0.i7")).fanout())
            });
        }
    }
    g.finish();
}

fn sublist_churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("sublist/churn");
    g.throughput(Throughput::Elements(1));
    let mut s = build(100_000, true, true);
    // Warm the cache so insert and remove pay for patching it.
    for i in 0..1000 {
        s.match_subject(&subject_of(i));
    }
    let mut i = 0u32;
    g.bench_function("insert_remove/100000", |b| {
        b.iter(|| {
            i = (i + 1) % 1000;
            let subject = subject_of(i);
            s.insert(&subject, Some(b"q"), u32::MAX).expect("fresh");
            assert!(s.remove(&subject, Some(b"q"), &u32::MAX));
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Short runs: the benches share two cores with builds.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = validation, sublist_match, sublist_churn }
criterion_main!(benches);
