//! Fuzz target `config_parse`: see FUZZING.md and `natrix_fuzz::checks::config_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::config_parse(data));
