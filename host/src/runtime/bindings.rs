//! The host side of the WIT contract, generated from `wit/plugin.wit`.
//!
//! Synchronous bindings: each file is read on a worker thread with its own store, so nothing
//! here needs an async executor. Imports (`host-log` and `input`) are implemented on `StoreState`.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
});

pub use self::exports::trailwatch::plugin::{
    documents, hashing, integrity, meta, observing, parser, scoring, scoring_memory, scoring_write_back, selection,
    trail_check,
};
pub use self::trailwatch::plugin::types;
