//! Fuzz target `system_requests`: see FUZZING.md and `natrix_fuzz::checks::system_requests`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::system_requests(data));
