//! Incremental, zero-copy parser of client operations.
//!
//! [`parse`] is stateless: it looks at the start of the connection's buffer and
//! either returns one whole operation, says more bytes are needed, or reports a
//! violation that closes the connection. Its answer depends only on the bytes, so
//! it is the same however the bytes were split across reads, and for any prefix
//! that already decides the outcome (an op or an error) the answer does not change
//! when more bytes are appended.
//!
//! The syntax follows nats-server 2.9.10 (`server/parser.go`, `client.parse`, and
//! the argument processors in `server/client.go`):
//!
//! * Op names are ASCII case-insensitive. A byte that cannot continue any op name a
//!   client may send is `UnknownOp` at once ("Unknown Protocol Operation"), even
//!   before the line ends: empty lines, a leading space, `PUBX`, `PUB\r\n`,
//!   `-ERR\r\n`, and route/leaf ops (`MSG`, `HMSG`, `RS+`, `LS+`, `A+`, ...).
//! * `PUB`, `HPUB`, `SUB`, `UNSUB` and `-ERR` need a space or tab after the name;
//!   `CONNECT` and `INFO` do not (`CONNECT{}` is accepted, as in nats-server).
//!   Whitespace (spaces, tabs) after the name is skipped; the first other byte starts
//!   the argument and is never taken as the line end, even when it is `\r` or `\n`
//!   (nats-server moves to its `*_ARG` state on that byte without examining it).
//!   The line ends at the next `\n`; one `\r` just before it is dropped.
//! * `PING`, `PONG` and `+OK` ignore everything up to the next `\n`
//!   (`PINGX\r\n` and `PING foo\r\n` are a PING in nats-server).
//! * `PUB`/`HPUB` arguments are split on spaces and tabs (`processPub`,
//!   `processHeaderPub`); `SUB`/`UNSUB` arguments on spaces, tabs, `\r` and `\n`
//!   (`splitArg`). Sizes are `parseSize`: 1 to 9 ASCII digits, nothing else.
//! * After a payload exactly `\r\n` must follow; any other byte is `UnknownOp`.
//!
//! Control line length. nats-server compares only the *argument* (the line after
//! the op name and the whitespace that follows it, without the final `\r`) with
//! `max_control_line`, for every op that has one (CONNECT, INFO, -ERR included),
//! both when the line arrives whole and, as a partial argument, when a read ends
//! inside it (`overMaxControlLineLimit`). That rule is reproduced exactly, and
//! checked on the partial argument as soon as it is already too long. nats-server
//! keeps no bytes while it skips whitespace after an op name or the tail of a PING
//! line, so it never bounds those; a stateless parser must buffer them, so in
//! addition the whole line (all bytes before `\n`) may not exceed
//! `max_control_line + LINE_SLACK` bytes. Both rules depend only on the bytes, never
//! on how they were split. Deviations from nats-server, all on inputs no client
//! sends: a `\r` inside an argument is kept (nats-server, when the line arrives in
//! one read, drops the argument's last byte instead; when split, drops every `\r`
//! after the split), `HMSG` is `UnknownOp` (2.9.10 swallows `HMSG ...\r\n\r\n` from a
//! client as an empty message), and over-long whitespace runs or PING tails are
//! `ControlLineTooLong`.

use memchr::memchr;

/// One client operation, borrowing from the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// `CONNECT {json}`: the raw JSON text.
    Connect(&'a [u8]),
    /// `PUB <subject> [reply] <#bytes>` and its payload.
    Pub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        payload: &'a [u8],
    },
    /// `HPUB <subject> [reply] <#hdr> <#total>`: `headers` is the first #hdr bytes
    /// (ending in CRLFCRLF), `payload` the rest.
    HPub {
        subject: &'a [u8],
        reply: Option<&'a [u8]>,
        headers: &'a [u8],
        payload: &'a [u8],
    },
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    },
    /// `UNSUB <sid> [max]`.
    Unsub {
        sid: &'a [u8],
        max: Option<u64>,
    },
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

/// Bytes a whole control line (everything before its `\n`) may have beyond
/// `max_control_line`: room for the op name, the whitespace after it and the `\r`.
/// nats-server bounds only the argument; see the module docs.
///
/// Consequently [`parse`] never answers `Incomplete` once the buffer holds
/// `max_control_line + max_payload + LINE_SLACK + 3` bytes or more.
pub(crate) const LINE_SLACK: usize = 256;

/// nats-server's `parseSize` accepts at most 9 digits (999,999,999).
const MAX_SIZE_DIGITS: usize = 9;

const INCOMPLETE: Parsed<'static> = Parsed::Incomplete { need: None };

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pub,
    HPub,
    Sub,
    Unsub,
    Connect,
    Info,
    Err,
    Ping,
    Pong,
    Ok,
}

/// Parse the first operation in `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ParseError> {
    let Some((kind, kw_len)) = op_name(buf)? else {
        return Ok(INCOMPLETE);
    };
    let line_max = limits.max_control_line.saturating_add(LINE_SLACK);

    // PING, PONG, +OK: nats-server ignores every byte up to the '\n'.
    if matches!(kind, Kind::Ping | Kind::Pong | Kind::Ok) {
        let rest = buf.get(kw_len..).unwrap_or_default();
        return match memchr(b'\n', rest) {
            Some(i) => {
                let nl = kw_len + i;
                if nl > line_max {
                    return Err(ParseError::ControlLineTooLong);
                }
                let op = match kind {
                    Kind::Ping => Op::Ping,
                    Kind::Pong => Op::Pong,
                    _ => Op::Ok,
                };
                Ok(Parsed::Op(op, nl + 1))
            }
            None if buf.len() > line_max => Err(ParseError::ControlLineTooLong),
            None => Ok(INCOMPLETE),
        };
    }

    // Ops with an argument.
    let mut pos = kw_len;
    if !matches!(kind, Kind::Connect | Kind::Info) {
        match buf.get(pos) {
            None => return Ok(INCOMPLETE),
            Some(b' ' | b'\t') => pos += 1,
            Some(_) => return Err(ParseError::UnknownOp),
        }
    }
    while let Some(b' ' | b'\t') = buf.get(pos) {
        pos += 1;
    }
    // `start` is the first argument byte; the search for '\n' begins after it.
    let start = pos;
    let Some(after_start) = buf.get(start + 1..) else {
        // Still in the name or the whitespace after it.
        return if buf.len() > line_max {
            Err(ParseError::ControlLineTooLong)
        } else {
            Ok(INCOMPLETE)
        };
    };
    let Some(i) = memchr(b'\n', after_start) else {
        // Incomplete line. The final argument is at least as long as what is here,
        // less a last '\r' that may turn out to precede the '\n'.
        let mut partial = buf.len() - start;
        if partial > 1 && buf.last() == Some(&b'\r') {
            partial -= 1;
        }
        return if partial > limits.max_control_line || buf.len() > line_max {
            Err(ParseError::ControlLineTooLong)
        } else {
            Ok(INCOMPLETE)
        };
    };
    let nl = start + 1 + i;
    let arg_end = if buf.get(nl - 1) == Some(&b'\r') && nl - 1 > start {
        nl - 1
    } else {
        nl
    };
    let arg = buf.get(start..arg_end).unwrap_or_default();
    if arg.len() > limits.max_control_line || nl > line_max {
        return Err(ParseError::ControlLineTooLong);
    }
    let line_len = nl + 1;

    match kind {
        Kind::Pub => {
            let mut f = Fields::new(arg, pub_delim);
            let (subject, reply, size) = match (f.next(), f.next(), f.next(), f.next()) {
                (Some(s), Some(n), None, _) => (s, None, n),
                (Some(s), Some(r), Some(n), None) => (s, Some(r), n),
                _ => return Err(ParseError::BadArgs),
            };
            let size = parse_size(size).ok_or(ParseError::BadArgs)?;
            if size > limits.max_payload {
                return Err(ParseError::PayloadTooLarge);
            }
            let (payload, used) = match payload(buf, line_len, size)? {
                Some(p) => p,
                None => {
                    return Ok(Parsed::Incomplete {
                        need: Some(line_len + size + 2),
                    })
                }
            };
            Ok(Parsed::Op(
                Op::Pub {
                    subject,
                    reply,
                    payload,
                },
                used,
            ))
        }
        Kind::HPub => {
            if !limits.headers {
                // processHeaderPub: ErrMsgHeadersNotSupported, closed without -ERR.
                return Err(ParseError::BadArgs);
            }
            let mut f = Fields::new(arg, pub_delim);
            let (subject, reply, hdr, total) =
                match (f.next(), f.next(), f.next(), f.next(), f.next()) {
                    (Some(s), Some(h), Some(t), None, _) => (s, None, h, t),
                    (Some(s), Some(r), Some(h), Some(t), None) => (s, Some(r), h, t),
                    _ => return Err(ParseError::BadArgs),
                };
            let hdr = parse_size(hdr).ok_or(ParseError::BadArgs)?;
            let total = parse_size(total).ok_or(ParseError::BadArgs)?;
            if hdr > total {
                return Err(ParseError::BadArgs);
            }
            if total > limits.max_payload {
                return Err(ParseError::PayloadTooLarge);
            }
            let (area, used) = match payload(buf, line_len, total)? {
                Some(p) => p,
                None => {
                    return Ok(Parsed::Incomplete {
                        need: Some(line_len + total + 2),
                    })
                }
            };
            let (headers, payload) = area.split_at(hdr);
            Ok(Parsed::Op(
                Op::HPub {
                    subject,
                    reply,
                    headers,
                    payload,
                },
                used,
            ))
        }
        Kind::Sub => {
            let mut f = Fields::new(arg, split_arg_delim);
            let op = match (f.next(), f.next(), f.next(), f.next()) {
                (Some(subject), Some(sid), None, _) => Op::Sub {
                    subject,
                    queue: None,
                    sid,
                },
                (Some(subject), Some(q), Some(sid), None) => Op::Sub {
                    subject,
                    queue: Some(q),
                    sid,
                },
                _ => return Err(ParseError::BadArgs),
            };
            Ok(Parsed::Op(op, line_len))
        }
        Kind::Unsub => {
            let mut f = Fields::new(arg, split_arg_delim);
            let op = match (f.next(), f.next(), f.next()) {
                (Some(sid), None, _) => Op::Unsub { sid, max: None },
                // A max that is not a number is -1 in nats-server (processUnsub), which
                // unsubscribes at once, exactly as an absent max does: map it to None.
                (Some(sid), Some(max), None) => Op::Unsub {
                    sid,
                    max: parse_size(max).map(|n| n as u64),
                },
                _ => return Err(ParseError::BadArgs),
            };
            Ok(Parsed::Op(op, line_len))
        }
        Kind::Connect => Ok(Parsed::Op(Op::Connect(arg), line_len)),
        Kind::Info => Ok(Parsed::Op(Op::Info(arg), line_len)),
        Kind::Err => Ok(Parsed::Op(Op::Err(arg), line_len)),
        Kind::Ping | Kind::Pong | Kind::Ok => Err(ParseError::UnknownOp), // handled above
    }
}

/// Recognise the op name at the start of `buf`: `Ok(None)` while the bytes so far
/// are a proper prefix of a client op name, `UnknownOp` as soon as they cannot be.
#[inline(always)]
fn op_name(buf: &[u8]) -> Result<Option<(Kind, usize)>, ParseError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    // Every keyword byte after the first is a lowercase letter, so `b | 0x20 == k`
    // holds exactly for `k` and its uppercase form.
    let (kind, kw): (Kind, &[u8]) = match b0 {
        b'P' | b'p' => match buf.get(1) {
            None => return Ok(None),
            Some(b'U' | b'u') => (Kind::Pub, b"pub"),
            Some(b'I' | b'i') => (Kind::Ping, b"ping"),
            Some(b'O' | b'o') => (Kind::Pong, b"pong"),
            Some(_) => return Err(ParseError::UnknownOp),
        },
        b'S' | b's' => (Kind::Sub, b"sub"),
        b'H' | b'h' => (Kind::HPub, b"hpub"),
        b'U' | b'u' => (Kind::Unsub, b"unsub"),
        b'C' | b'c' => (Kind::Connect, b"connect"),
        b'I' | b'i' => (Kind::Info, b"info"),
        b'+' => (Kind::Ok, b"+ok"),
        b'-' => (Kind::Err, b"-err"),
        _ => return Err(ParseError::UnknownOp),
    };
    if buf.iter().zip(kw).skip(1).any(|(&b, &k)| b | 0x20 != k) {
        return Err(ParseError::UnknownOp);
    }
    if buf.len() < kw.len() {
        return Ok(None);
    }
    Ok(Some((kind, kw.len())))
}

/// The `size` payload bytes starting at `start` and the CRLF after them:
/// `Some((payload, consumed))`, `None` while incomplete, `UnknownOp` as soon as a
/// byte after the payload is not the expected `\r` or `\n`.
#[inline(always)]
fn payload(buf: &[u8], start: usize, size: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
    // No overflow: start <= buf.len() and size has at most 9 digits.
    let end = start + size;
    match (buf.get(end), buf.get(end + 1)) {
        (Some(b'\r'), Some(b'\n')) => Ok(buf.get(start..end).map(|p| (p, end + 2))),
        (Some(b'\r'), None) | (None, _) => Ok(None),
        _ => Err(ParseError::UnknownOp),
    }
}

/// nats-server's `parseSize`: 1 to 9 ASCII digits.
#[inline(always)]
fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > MAX_SIZE_DIGITS {
        return None;
    }
    let mut n = 0usize;
    for &b in d {
        let v = b.wrapping_sub(b'0');
        if v > 9 {
            return None;
        }
        n = n * 10 + v as usize;
    }
    Some(n)
}

/// Separators of `processPub` / `processHeaderPub`.
#[inline(always)]
fn pub_delim(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Separators of `splitArg` (SUB, UNSUB).
#[inline(always)]
fn split_arg_delim(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Iterator over the non-empty runs of non-delimiter bytes of an argument.
struct Fields<'a, F> {
    rest: &'a [u8],
    delim: F,
}

impl<'a, F: Fn(u8) -> bool> Fields<'a, F> {
    #[inline(always)]
    fn new(arg: &'a [u8], delim: F) -> Self {
        Fields { rest: arg, delim }
    }
}

impl<'a, F: Fn(u8) -> bool> Iterator for Fields<'a, F> {
    type Item = &'a [u8];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        let begin = self.rest.iter().position(|&b| !(self.delim)(b))?;
        let tail = self.rest.get(begin..).unwrap_or_default();
        let len = tail
            .iter()
            .position(|&b| (self.delim)(b))
            .unwrap_or(tail.len());
        let (field, rest) = tail.split_at(len);
        self.rest = rest;
        Some(field)
    }
}
