//! Fuzz target `websocket_frames`: see FUZZING.md and `natrix_fuzz::checks::websocket_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::websocket_frames(data));
