//! Fuzz target `js_store_recovery`: see FUZZING.md and `natrix_fuzz::checks::js_store_recovery`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::js_store_recovery(data));
