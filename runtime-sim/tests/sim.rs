//! The simulator against the real `natrix_core::Server`: determinism, a few
//! seeds per fault mode, and proof that the checkers catch broken delivery.

use natrix_sim::{run, run_seed, FaultMode, Mutation, RunReport, SimConfig};

fn assert_ok(r: &RunReport) {
    if let Some(f) = &r.failure {
        panic!(
            "seed {} failed: {}: {}\n{}",
            r.seed, f.invariant, f.detail, f.recent
        );
    }
}

#[test]
fn one_seed_gives_one_trace_hash() {
    for faults in [FaultMode::None, FaultMode::All] {
        let (a, b) = (run_seed(5, faults), run_seed(5, faults));
        assert_ok(&a);
        assert_eq!(
            (a.trace_hash, a.events, a.delivered),
            (b.trace_hash, b.events, b.delivered)
        );
    }
    assert_ne!(
        run_seed(5, FaultMode::All).trace_hash,
        run_seed(6, FaultMode::All).trace_hash
    );
}

#[test]
fn real_server_passes_a_few_seeds_in_every_mode() {
    for seed in 40..43 {
        for faults in [FaultMode::None, FaultMode::Network, FaultMode::All] {
            let r = run_seed(seed, faults);
            assert_ok(&r);
            assert!(r.published > 500 && r.delivered > 500, "seed {seed}: {r:?}");
        }
    }
}

fn mutant(seed: u64, mutation: Mutation) -> RunReport {
    let mut cfg = SimConfig::new(seed, FaultMode::None);
    cfg.mutation = mutation;
    run(cfg)
}

/// The first seed (from 1) whose faithful run passes and delivers to a queue
/// group, so that the mutation has something to break.
fn healthy_seed() -> u64 {
    (1..50)
        .find(|&s| mutant(s, Mutation::None).failure.is_none())
        .expect("a passing seed")
}

fn assert_caught(r: &RunReport, seed: u64, invariants: &[&str]) {
    let f = r
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("mutation not caught: {r:?}"));
    assert_eq!(r.seed, seed, "the report carries the seed");
    assert!(
        invariants.contains(&f.invariant),
        "caught as {}: {}",
        f.invariant,
        f.detail
    );
    assert!(!f.recent.is_empty(), "the report carries the last events");
}

#[test]
fn dropping_one_delivered_message_is_caught() {
    let seed = healthy_seed();
    assert_caught(
        &mutant(seed, Mutation::DropMessage { nth: 200 }),
        seed,
        &["no-lost-message", "request-reply"],
    );
}

#[test]
fn duplicating_one_delivered_message_is_caught() {
    let seed = healthy_seed();
    assert_caught(
        &mutant(seed, Mutation::DuplicateMessage { nth: 200 }),
        seed,
        &["no-extra-delivery"],
    );
}

#[test]
fn queue_group_delivering_to_two_members_is_caught() {
    // Seeds with at least two members in one queue group on one node.
    let caught = (1..40)
        .filter_map(|seed| {
            let r = mutant(seed, Mutation::QueueDoubleDelivery { nth: 100 });
            r.failure.map(|f| (seed, f))
        })
        .inspect(|(seed, f)| {
            assert_eq!(
                f.invariant, "queue-group-exactly-one",
                "seed {seed}: {}",
                f.detail
            )
        })
        .count();
    assert!(
        caught >= 3,
        "only {caught} seeds exercised a double queue delivery"
    );
}
