//! Incremental, zero-copy parser of client operations.
//!
//! STUB: the real parser lands on the `proto` branch. Interface is final.

/// One client operation, borrowing from the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// `CONNECT {json}`: the raw JSON text.
    Connect(&'a [u8]),
    /// `PUB <subject> [reply] <#bytes>` and its payload.
    Pub { subject: &'a [u8], reply: Option<&'a [u8]>, payload: &'a [u8] },
    /// `HPUB <subject> [reply] <#hdr> <#total>`: `headers` is the first #hdr bytes
    /// (ending in CRLFCRLF), `payload` the rest.
    HPub { subject: &'a [u8], reply: Option<&'a [u8]>, headers: &'a [u8], payload: &'a [u8] },
    /// `SUB <subject> [queue] <sid>`.
    Sub { subject: &'a [u8], queue: Option<&'a [u8]>, sid: &'a [u8] },
    /// `UNSUB <sid> [max]`.
    Unsub { sid: &'a [u8], max: Option<u64> },
    Ping,
    Pong,
    /// `INFO {json}` sent by a client (ignored by the server).
    Info(&'a [u8]),
    /// `+OK` sent by a client (ignored).
    Ok,
    /// `-ERR <text>` sent by a client (ignored).
    Err(&'a [u8]),
}

/// Limits the parser enforces while it reads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_control_line: usize,
    pub max_payload: usize,
    /// Whether this connection negotiated `headers:true` (HPUB is a violation otherwise).
    pub headers: bool,
}

/// Why the bytes cannot be parsed. Each maps to nats-server's reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// `-ERR 'Unknown Protocol Operation'`, then close (row E1).
    UnknownOp,
    /// `-ERR 'maximum control line exceeded'`, then close (row E6).
    ControlLineTooLong,
    /// `-ERR 'Maximum Payload Violation'`, then close (row E5).
    PayloadTooLarge,
    /// Bad arguments: close with no -ERR ("Protocol Violation", row E20).
    BadArgs,
}

/// The outcome of one call to [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A whole operation, and how many bytes of the input it used.
    Op(Op<'a>, usize),
    /// More bytes are needed. `need`, when known, is the total length the buffer
    /// must reach before parsing can make progress.
    Incomplete { need: Option<usize> },
}

/// Parse the first operation in `buf`.
pub fn parse<'a>(_buf: &'a [u8], _limits: &Limits) -> Result<Parsed<'a>, ParseError> {
    Ok(Parsed::Incomplete { need: None })
}
