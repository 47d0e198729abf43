#![no_main]
//! The plugin's digest over any bytes (`trailwatch_plugin::fuzzing::digest`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch_plugin::fuzzing::digest(data));
