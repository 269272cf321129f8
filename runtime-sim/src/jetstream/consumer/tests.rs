//! The consumer and KV checkers pass on the real core, bite on mutants,
//! and runs replay.

use super::{run, CConfig, CMutation};
use crate::jetstream::{run_seed, Scenario, CONSUMER_SCENARIOS};
use crate::world::RunReport;

fn must_pass(scenario: Scenario, seed: u64) -> RunReport {
    let r = run_seed(seed, scenario);
    if let Some(f) = &r.failure {
        panic!("{scenario} seed {seed}: {} {}\n{}", f.invariant, f.detail, f.recent);
    }
    r
}

#[test]
fn every_consumer_scenario_passes_a_few_seeds_and_does_something() {
    for scenario in CONSUMER_SCENARIOS {
        for seed in 100..104 {
            let r = must_pass(scenario, seed);
            assert!(r.delivered > 0 && r.replies > 0 && r.faults > 0, "{scenario} seed {seed}: {r:?}");
        }
    }
}

#[test]
fn one_seed_one_trace_hash() {
    for scenario in CONSUMER_SCENARIOS {
        let (a, b) = (run_seed(7, scenario), run_seed(7, scenario));
        assert_eq!((a.trace_hash, a.events), (b.trace_hash, b.events), "{scenario}");
        assert_ne!(a.trace_hash, run_seed(8, scenario).trace_hash, "{scenario}");
    }
}

/// Runs ten seeds of `scenario` with `mutation`; how many failed with `invariant`.
fn caught(scenario: Scenario, mutation: CMutation, invariant: &str) -> usize {
    let n = (0..10)
        .filter(|&seed| {
            let cfg = CConfig { mutation, ..CConfig::new(seed, scenario) };
            let r = run(cfg);
            match &r.failure {
                Some(f) if f.invariant == invariant => true,
                Some(f) => panic!("{scenario} seed {seed}: {} {}", f.invariant, f.detail),
                None => false,
            }
        })
        .count();
    eprintln!("{scenario} {mutation:?}: {invariant} in {n} of 10 seeds");
    n
}

#[test]
fn a_consumer_that_acks_without_delivering_is_caught() {
    let n = caught(Scenario::Consumer, CMutation::AckWithoutDelivery { nth: 5 }, "consumer-at-least-once");
    assert!(n >= 9, "caught in {n} of 10 seeds");
}

#[test]
fn a_work_queue_message_handed_to_two_consumers_is_caught() {
    let n = caught(Scenario::WorkQueue, CMutation::CrossConsumer { nth: 5 }, "work-queue-one-consumer");
    assert!(n >= 9, "caught in {n} of 10 seeds");
}

#[test]
fn a_request_served_out_of_turn_is_caught() {
    let n = caught(Scenario::Consumer, CMutation::RepeatRequest { nth: 5 }, "pull-round-robin");
    assert!(n >= 7, "caught in {n} of 10 seeds");
}

#[test]
fn a_stale_kv_read_is_caught() {
    let n = caught(Scenario::Kv, CMutation::StaleRead, "kv-linearizable");
    assert!(n >= 9, "caught in {n} of 10 seeds");
}

#[test]
fn a_consumer_that_forgets_a_confirmed_ack_is_caught() {
    let n = caught(Scenario::Consumer, CMutation::RedeliverAfterAck, "no-delivery-after-ack");
    assert!(n >= 9, "caught in {n} of 10 seeds");
}
