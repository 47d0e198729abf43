#![no_main]
//! The host's config reader over any bytes (`trailwatch::fuzzing::config`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::config(data));
