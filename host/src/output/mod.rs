//! The output document: NDJSON lines of normalized events, and the stable names they use.

pub mod finding;
pub mod names;
pub mod ndjson;
pub mod scoring;
