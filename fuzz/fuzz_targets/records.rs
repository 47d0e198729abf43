#![no_main]
//! CloudTrail-like records chosen by the input, read fast and by serde_json, typed and rendered
//! (`trailwatch_plugin::fuzzing::records`): any difference is a finding.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    trailwatch_plugin::fuzzing::records(data);
});
