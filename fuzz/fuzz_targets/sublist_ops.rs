//! Fuzz target `sublist_ops`: see FUZZING.md and `natrix_fuzz::checks::sublist_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::sublist_ops(data));
