//! Output formats for normalized events.

pub mod ndjson;
