//! Conformance scenarios. Each scenario runs against natrium
//! (`natrium::<name>`) and the reference Go nats-server (`nats_server::<name>`).
//! Row IDs (C4, W2, ...) refer to the feature matrix. `go` and `python` run
//! the same catalogue through nats.go and nats-py scenario programs.

mod auth;
mod consumers;
mod core;
mod go;
mod jetstream;
mod kv;
mod limits;
mod protocol;
mod python;
mod reconnect;
mod request;
