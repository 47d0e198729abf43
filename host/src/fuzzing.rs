//! Entry points for coverage-guided fuzzing of what the host reads from the network and from
//! disk (`fuzz/`, README "Fuzzing") and for the corpus replay the tests run: each takes any
//! bytes and must neither panic nor hang. Not part of the API.

use std::path::Path;

/// An S3 ListObjectsV2 answer.
pub fn s3_listing(data: &[u8]) {
    // The outcome is not the point: only that reading it neither panics nor hangs.
    drop(crate::aws::s3::parse_listing(data));
}

/// An AWS error answer (XML or JSON).
pub fn aws_error(data: &[u8]) {
    drop(crate::aws::client::read_error_body(data));
}

/// An SQS message body: an S3, SNS, EventBridge or CloudTrail notification.
pub fn notification(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        drop(crate::source::notification::parse("fuzz", text));
    }
}

/// A configuration file.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        drop(crate::config::Config::parse(text, Path::new("fuzz.toml")));
    }
}

#[cfg(test)]
mod tests {
    use trailwatch_plugin::fuzzing::replay_corpus;

    #[test]
    fn each_reader_survives_its_corpus() {
        for (target, f) in [
            ("s3_listing", super::s3_listing as fn(&[u8])),
            ("aws_error", super::aws_error),
            ("notification", super::notification),
            ("config", super::config),
        ] {
            assert!(replay_corpus(target, f) > 0, "no seeds for {target}");
        }
    }
}
