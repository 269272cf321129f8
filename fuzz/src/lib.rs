//! The checks behind natrix's fuzz targets. Each takes the raw fuzzer input
//! and panics on any broken invariant. `core/tests/fuzz_corpus.rs` includes
//! the same module by path to replay `fuzz/corpus/` under `cargo test`.

pub mod checks;
