//! Specifications of `categorize`, one behaviour per test, grouped by topic.

mod access;
mod logging;
mod naming;
mod network;
mod s3;

use super::{categorize, Input};

/// A management API call of `name` to `source`.
fn call(source: &'static str, name: &'static str) -> Input<'static> {
    Input {
        event_source: Some(source),
        event_name: Some(name),
        event_type: Some("AwsApiCall"),
        event_category: Some("Management"),
        ..Input::default()
    }
}

/// The same call with request parameters.
fn with_params(input: Input<'static>, params: &'static str) -> Input<'static> {
    Input {
        request_parameters: Some(params),
        ..input
    }
}

/// The metric name `input` is counted under.
fn metric(input: Input) -> String {
    categorize(&input).metric
}
