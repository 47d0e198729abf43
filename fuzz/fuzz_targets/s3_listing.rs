#![no_main]
//! The host's s3_listing reader over any bytes (`trailwatch::fuzzing::s3_listing`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::s3_listing(data));
