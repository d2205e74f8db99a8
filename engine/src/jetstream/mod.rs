//! JetStream API data types (not yet wired into the server).
//!
//! * [`types`]: serde types for the `$JS.API.*` request and response bodies,
//!   with nats-server 2.9.10's JSON field names, order and omitempty rules, plus
//!   stream configuration normalization ([`types::StreamConfig::normalize`]) and
//!   the update check ([`types::check_update`]).
//! * [`errors`]: [`errors::ApiError`] and constructors for the JetStream error
//!   codes (code, err_code and description as nats-server sends them).
//! * [`time`]: RFC 3339 formatting and parsing of unix nanoseconds, exactly as
//!   Go's `time.Time` JSON marshalling prints it.
//!
//! Everything here is pure: no clock, no I/O.

pub mod errors;
pub mod time;
pub mod types;
