//! Natrium's sans-IO NATS engine. (Driver documentation lives on [`Server`].)

pub mod config;
pub mod proto;
pub mod subject;

pub use config::Config;
