//! JetStream: streams, their storage, and the `$JS.API` service.
//!
//! * [`types`], [`errors`], [`time`]: the API's JSON bodies, error codes and
//!   timestamps, as nats-server 2.9.10 sends them.
//! * [`store`]: a stream's messages, accounting and limits: metadata in
//!   memory, headers and payloads in a bounded cache (file-backed streams read
//!   older ones back from the log).
//! * [`log`] and [`persist`]: the on-disk record format and the storage
//!   operations that keep a file-backed stream durable; [`index`]: the
//!   checkpoint that spares recovery a scan of the whole log.
//! * [`consumer`]: consumer configuration, its 2.9.10 defaults, validation
//!   and update rules, and the consumer API's request and response bodies.
//! * [`acks`]: a consumer's delivery and ack bookkeeping; [`consumer_store`]:
//!   a durable consumer's files.
//! * [`stream`]: one stream's publish rules; [`service`]: the `$JS.API` handlers,
//!   PubAcks that wait for durability, and recovery.
//!
//! Everything here is engine code: no clock, no I/O; storage happens through
//! [`crate::storage`] operations.

pub mod acks;
pub mod consumer;
pub mod consumer_store;
pub mod errors;
pub mod headers;
pub mod index;
pub mod log;
pub mod persist;
pub mod service;
pub mod store;
pub mod stream;
pub mod time;
pub mod types;
