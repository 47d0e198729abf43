//! The output document: NDJSON lines of normalized events, and the stable names they use.

pub mod names;
pub mod ndjson;
