#![no_main]
//! The host's notification reader over any bytes (`trailwatch::fuzzing::notification`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::notification(data));
