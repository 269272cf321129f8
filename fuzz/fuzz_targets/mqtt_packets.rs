//! Fuzz target `mqtt_packets`: see FUZZING.md and `natrix_fuzz::checks::mqtt_packets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::mqtt_packets(data));
