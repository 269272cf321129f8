//! The isolation checker passes the real server and catches servers that
//! leak across accounts.

use super::*;

fn assert_ok(r: &RunReport, faults: FaultMode) {
    if let Some(f) = &r.failure {
        panic!(
            "seed {} ({faults}): {} at {:?}: {}\n{}",
            r.seed, f.invariant, f.at, f.detail, f.recent
        );
    }
}

#[test]
fn one_seed_gives_one_trace_hash() {
    let a = run_seed(11, FaultMode::All);
    let b = run_seed(11, FaultMode::All);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_ne!(a.trace_hash, run_seed(12, FaultMode::All).trace_hash);
}

#[test]
fn real_server_keeps_accounts_apart() {
    for (seed, faults) in [
        (1, FaultMode::None),
        (2, FaultMode::Network),
        (3, FaultMode::All),
    ] {
        let r = run_seed(seed, faults);
        assert_ok(&r, faults);
        assert!(
            r.published > 0 && r.delivered > 0,
            "seed {seed} did something: {r:?}"
        );
    }
}

fn mutant(seed: u64, mutation: IsolationMutation) -> RunReport {
    run(IsolationConfig {
        mutation,
        ..IsolationConfig::new(seed, FaultMode::None)
    })
}

#[test]
fn a_server_with_one_account_for_all_is_caught() {
    // Some plans give every client the same account; most do not.
    let caught = (1..=10)
        .map(|seed| mutant(seed, IsolationMutation::OneAccount))
        .filter(|r| {
            r.failure
                .as_ref()
                .is_some_and(|f| f.invariant == "account-isolation")
        })
        .count();
    assert!(caught >= 5, "only {caught} of 10 seeds caught the leak");
}

#[test]
fn a_message_copied_into_another_account_is_caught() {
    let r = mutant(4, IsolationMutation::CopyToOtherAccount { nth: 20 });
    let f = r.failure.expect("the copy is caught");
    assert!(
        matches!(f.invariant, "account-isolation" | "no-extra-delivery"),
        "{}: {}",
        f.invariant,
        f.detail
    );
    assert_eq!(r.seed, 4);
}

#[test]
fn a_server_that_ignores_reloads_is_caught() {
    let caught = (1..=10)
        .map(|seed| mutant(seed, IsolationMutation::IgnoreReload))
        .filter(|r| r.failure.as_ref().is_some_and(|f| f.invariant == "reload-permissions"))
        .count();
    assert!(caught >= 5, "only {caught} of 10 seeds caught the ignored reload");
}
