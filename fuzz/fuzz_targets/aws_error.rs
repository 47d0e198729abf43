#![no_main]
//! The host's aws_error reader over any bytes (`trailwatch::fuzzing::aws_error`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch::fuzzing::aws_error(data));
