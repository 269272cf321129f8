//! Fuzz target `js_api`: see FUZZING.md and `natrix_fuzz::checks::js_api`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::js_api(data));
