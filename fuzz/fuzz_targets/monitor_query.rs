//! Fuzz target `monitor_query`: see FUZZING.md and `natrix_fuzz::checks::monitor_query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::monitor_query(data));
