//! The client protocol: the wire parser and the frames the server writes.
//! Owns byte-level syntax only; it must not know about subscriptions, auth or JetStream.

pub mod parser;

pub use parser::{parse, Limits, Op, ParseError, Parsed};
