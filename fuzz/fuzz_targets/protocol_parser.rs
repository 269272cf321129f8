//! Fuzz target `protocol_parser`: see FUZZING.md and `natrix_fuzz::checks::protocol_parser`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::protocol_parser(data));
