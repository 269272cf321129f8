//! The core is pure (DESIGN.md, "The I/O boundary"): neither it nor anything
//! it depends on, transitively, may be an async runtime or an I/O crate.

// A test reads the lock file; the no-I/O rule is for the library.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};

/// Package name → names of its dependencies, read from the workspace's Cargo.lock.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("the workspace has a Cargo.lock");
    let mut graph = BTreeMap::new();
    for package in lock.split("[[package]]").skip(1) {
        let name = package
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned())
            .expect("every package has a name");
        let deps: Vec<String> = package
            .split("dependencies = [")
            .nth(1)
            .map(|d| {
                d.split(']')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|e| e.trim().trim_matches('"').split(' ').next())
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // Several versions of one crate: the union of their edges is a safe over-approximation.
        graph.entry(name).or_insert_with(Vec::new).extend(deps);
    }
    graph
}

#[test]
fn core_depends_on_no_io_crate() {
    let graph = lock_graph();
    let mut seen = BTreeSet::new();
    let mut stack = vec!["natrix-core".to_owned()];
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            stack.extend(graph.get(&name).into_iter().flatten().cloned());
        }
    }
    // Dev-dependencies (proptest) appear in the lock graph too; none of them does I/O either.
    for forbidden in ["tokio", "async-std", "mio", "socket2", "rustls", "hyper", "smol", "libc-io"] {
        assert!(!seen.contains(forbidden), "natrix-core depends on {forbidden}: {seen:?}");
    }
}
