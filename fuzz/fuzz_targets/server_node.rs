//! Fuzz target `server_node`: see FUZZING.md and `natrix_fuzz::checks::server_node`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::server_node(data));
