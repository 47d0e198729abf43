//! What trailwatch remembers between runs.

pub mod checkpoint;
