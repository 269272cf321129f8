//! Fuzz target `jwt_auth`: see FUZZING.md and `natrix_fuzz::checks::jwt_auth`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::jwt_auth(data));
