#![no_main]
//! The plugin's reader over any bytes (`trailwatch_plugin::fuzzing::reader`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| trailwatch_plugin::fuzzing::reader(data));
