//! Fuzz target `connect_json`: see FUZZING.md and `natrix_fuzz::checks::connect_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::connect_json(data));
