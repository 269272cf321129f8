//! The JetStream checker bites, and runs replay.

use super::{run, run_seed, JsConfig, JsMutation, Scenario, SCENARIOS};

#[test]
fn every_scenario_passes_a_few_seeds_and_acks_something() {
    for scenario in SCENARIOS {
        for seed in 100..103 {
            let r = run_seed(seed, scenario);
            if let Some(f) = &r.failure {
                panic!(
                    "{scenario} seed {seed}: {} {}\n{}",
                    f.invariant, f.detail, f.recent
                );
            }
            assert!(
                r.delivered > 0 && r.replies > 0,
                "{scenario} seed {seed}: {r:?}"
            );
        }
    }
}

#[test]
fn one_seed_one_trace_hash() {
    for scenario in SCENARIOS {
        let (a, b) = (run_seed(7, scenario), run_seed(7, scenario));
        assert_eq!(
            (a.trace_hash, a.events),
            (b.trace_hash, b.events),
            "{scenario}"
        );
        assert_ne!(a.trace_hash, run_seed(8, scenario).trace_hash, "{scenario}");
    }
}

#[test]
fn a_disk_that_lies_about_syncs_loses_acked_writes_and_is_caught() {
    let caught = (0..10)
        .filter(|&seed| {
            let cfg = JsConfig {
                mutation: JsMutation::LyingDisk,
                ..JsConfig::new(seed, Scenario::PowerLoss)
            };
            run(cfg)
                .failure
                .is_some_and(|f| ["lost-acked-write", "sequence-reused"].contains(&f.invariant))
        })
        .count();
    assert!(caught >= 8, "caught in {caught} of 10 seeds");
}

#[test]
fn scenario_names_round_trip() {
    for scenario in SCENARIOS {
        assert_eq!(scenario.to_string().parse::<Scenario>(), Ok(scenario));
    }
    assert!("js-nope".parse::<Scenario>().is_err());
}
