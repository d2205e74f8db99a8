//! JetStream: streams, their storage, and the `$JS.API` service.

pub mod store;
