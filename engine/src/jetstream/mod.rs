//! JetStream: streams, their storage, and the `$JS.API` service.

pub mod log;
pub mod persist;
pub mod store;
