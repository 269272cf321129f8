//! Fuzz target `cli_args`: see FUZZING.md and `natrix_fuzz::checks::cli_args`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::cli_args(data));
