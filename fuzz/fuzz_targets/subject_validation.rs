//! Fuzz target `subject_validation`: see FUZZING.md and `natrix_fuzz::checks::subject_validation`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| natrix_fuzz::checks::subject_validation(data));
