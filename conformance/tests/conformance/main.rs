//! Conformance scenarios. Each scenario runs against natrium
//! (`natrium::<name>`) and the reference Go nats-server (`nats_server::<name>`).
//! Row IDs (C4, W2, ...) refer to the feature matrix.

mod auth;
mod core;
mod limits;
mod protocol;
mod request;
