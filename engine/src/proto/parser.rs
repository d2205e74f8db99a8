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
/// byte after the payload is not the expected `\r` or `\n` (nats-server's
/// MSG_END_R/MSG_END_N check each byte as it arrives, so a wrong `\r` is an error
/// one byte before the `need` the caller was given; no op completes before it).
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const L: Limits = Limits {
        max_control_line: 4096,
        max_payload: 1 << 20,
        headers: true,
    };

    fn p(buf: &[u8]) -> Result<Parsed<'_>, ParseError> {
        parse(buf, &L)
    }

    fn op(buf: &[u8]) -> (Op<'_>, usize) {
        match p(buf) {
            Ok(Parsed::Op(op, n)) => (op, n),
            other => panic!(
                "{:?}: expected an op, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    fn err(buf: &[u8]) -> ParseError {
        err_with(buf, &L)
    }

    fn err_with(buf: &[u8], l: &Limits) -> ParseError {
        match parse(buf, l) {
            Err(e) => e,
            other => panic!(
                "{:?}: expected an error, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    fn incomplete(buf: &[u8]) -> Option<usize> {
        match p(buf) {
            Ok(Parsed::Incomplete { need }) => need,
            other => panic!(
                "{:?}: expected Incomplete, got {other:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }

    // ---- simple ops -------------------------------------------------------------

    #[test]
    fn ping_pong_ok() {
        assert_eq!(op(b"PING\r\n"), (Op::Ping, 6));
        assert_eq!(op(b"ping\r\nPONG\r\n"), (Op::Ping, 6));
        assert_eq!(op(b"PoNg\r\n"), (Op::Pong, 6));
        assert_eq!(op(b"+OK\r\n"), (Op::Ok, 5));
        assert_eq!(op(b"+ok\n"), (Op::Ok, 4));
        assert_eq!(op(b"PING\n"), (Op::Ping, 5));
        // parser.go OP_PING/OP_PONG/OP_PLUS_OK ignore everything up to '\n'.
        assert_eq!(op(b"PINGX\r\n"), (Op::Ping, 7));
        assert_eq!(op(b"PING foo\r\n"), (Op::Ping, 10));
        assert_eq!(op(b"PING  \r  \n"), (Op::Ping, 10));
        assert_eq!(op(b"PONGPONG\r\n"), (Op::Pong, 10));
        assert_eq!(op(b"+OKAY\r\n"), (Op::Ok, 7));
        for pre in [
            &b""[..],
            b"P",
            b"PI",
            b"PIN",
            b"PING",
            b"PING\r",
            b"+",
            b"+O",
            b"+OK \r",
        ] {
            assert_eq!(incomplete(pre), None);
        }
    }

    #[test]
    fn unknown_ops() {
        for bad in [
            &b"\r\n"[..],
            b"\n",
            b" PING\r\n",
            b"\tPING",
            b"xxx",
            b"Px",
            b"PIx",
            b"PINx",
            b"POx",
            b"PONx",
            b"+x",
            b"+Ox",
            b"-x",
            b"-Ex",
            b"-ERx",
            b"-ERRx",
            b"-ERR\r\n",
            b"Cx",
            b"CONNECx",
            b"PUx",
            b"PUBX",
            b"PUB\r\n",
            b"PUB\n",
            b"HPUBx",
            b"HPUB\r\n",
            b"Sx",
            b"SUB\r\n",
            b"SUBx",
            b"Ux",
            b"UNSUBx",
            b"UNSUBUNSUB 1\r\n",
            b"UNSUB_2\r\n",
            b"UNSUB\r\n",
            b"Ix",
            b"INFx",
            // Route, gateway and leafnode ops are not client ops.
            b"MSG foo 1 2\r\n",
            b"M",
            b"HMSG foo 1 2 2\r\n",
            b"RS+ $G foo\r\n",
            b"RS- $G foo\r\n",
            b"LS+ $G foo\r\n",
            b"LMSG foo\r\n",
            b"A+ foo\r\n",
            b"A- foo\r\n",
            b"R",
            b"L",
            b"A",
            b"\x00",
            b"\x0d",
            b"\x0b",
        ] {
            assert_eq!(
                err(bad),
                ParseError::UnknownOp,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn connect_info_err() {
        assert_eq!(
            op(b"CONNECT {\"verbose\":false}\r\n"),
            (Op::Connect(b"{\"verbose\":false}"), 27)
        );
        assert_eq!(op(b"connect\t \t{}\n"), (Op::Connect(b"{}"), 13));
        // No separator is needed after CONNECT and INFO (OP_CONNECT/OP_INFO states).
        assert_eq!(op(b"CONNECT{}\r\n"), (Op::Connect(b"{}"), 11));
        // Trailing whitespace is part of the argument.
        assert_eq!(op(b"CONNECT {} \r\n"), (Op::Connect(b"{} "), 13));
        // The first byte after the whitespace starts the argument even if it is '\r'.
        assert_eq!(op(b"CONNECT\r\n"), (Op::Connect(b"\r"), 9));
        assert_eq!(op(b"CONNECT \r\n"), (Op::Connect(b"\r"), 10));
        // ... or '\n': the line then ends at the next '\n'.
        assert_eq!(incomplete(b"CONNECT\n"), None);
        assert_eq!(op(b"CONNECT\n{}\r\n"), (Op::Connect(b"\n{}"), 12));
        assert_eq!(
            op(b"INFO {\"server_id\":\"x\"}\r\n"),
            (Op::Info(b"{\"server_id\":\"x\"}"), 24)
        );
        assert_eq!(op(b"iNfO{}\n"), (Op::Info(b"{}"), 7));
        assert_eq!(op(b"INFO  \r\n"), (Op::Info(b"\r"), 8));
        assert_eq!(
            op(b"-ERR 'Unknown Protocol Operation'\r\n"),
            (Op::Err(b"'Unknown Protocol Operation'"), 35)
        );
        assert_eq!(op(b"-err\t\tboom\n"), (Op::Err(b"boom"), 11));
        for pre in [
            &b"C"[..],
            b"CONNECT",
            b"CONNECT ",
            b"CONNECT {",
            b"CONNECT {}\r",
            b"INFO",
            b"-ERR",
            b"-ERR x",
        ] {
            assert_eq!(incomplete(pre), None);
        }
    }

    // ---- PUB --------------------------------------------------------------------

    #[test]
    fn pub_basic() {
        assert_eq!(
            op(b"PUB foo 5\r\nhello\r\nPING\r\n"),
            (
                Op::Pub {
                    subject: b"foo",
                    reply: None,
                    payload: b"hello"
                },
                18
            )
        );
        assert_eq!(
            op(b"pub\tfoo.bar \t reply.x\t\t5\nhello\r\n"),
            (
                Op::Pub {
                    subject: b"foo.bar",
                    reply: Some(b"reply.x"),
                    payload: b"hello"
                },
                32
            )
        );
        assert_eq!(
            op(b"PuB foo 0\r\n\r\n"),
            (
                Op::Pub {
                    subject: b"foo",
                    reply: None,
                    payload: b""
                },
                13
            )
        );
        assert_eq!(
            op(b"PUB foo 007\r\n1234567\r\n"),
            (
                Op::Pub {
                    subject: b"foo",
                    reply: None,
                    payload: b"1234567"
                },
                22
            )
        );
        // Trailing whitespace after the size is fine.
        assert_eq!(
            op(b"PUB foo 1 \t\r\nx\r\n"),
            (
                Op::Pub {
                    subject: b"foo",
                    reply: None,
                    payload: b"x"
                },
                16
            )
        );
        // The payload may contain CRLF and anything else.
        assert_eq!(
            op(b"PUB a 4\r\n\r\n\r\n\r\n"),
            (
                Op::Pub {
                    subject: b"a",
                    reply: None,
                    payload: b"\r\n\r\n"
                },
                15
            )
        );
    }

    #[test]
    fn pub_incomplete_and_need() {
        let full = b"PUB foo 5\r\nhello\r\n";
        for i in 0..full.len() {
            let need = incomplete(&full[..i]);
            if i >= 11 {
                assert_eq!(need, Some(18), "prefix {i}");
            } else {
                assert_eq!(need, None, "prefix {i}");
            }
        }
    }

    #[test]
    fn pub_bad_args() {
        for bad in [
            &b"PUB foo\r\n"[..],
            b"PUB  \r\n",
            b"PUB \r\n",
            b"PUB foo bar\r\n",
            b"PUB foo bar       \r\n",
            b"PUB a b c 1\r\n",
            b"PUB foo -1\r\n",
            b"PUB foo +1\r\n",
            b"PUB foo 1x\r\n",
            b"PUB foo 0x10\r\n",
            b"PUB foo 3333333333333333333333333333333333333333333333333333333333333333\r\n",
            // parseSize takes at most 9 digits.
            b"PUB foo 0000000001\r\n",
            b"PUB foo 1000000000\r\n",
        ] {
            assert_eq!(
                err(bad),
                ParseError::BadArgs,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // processPub splits on space/tab only: "\r" inside is part of a field.
        assert_eq!(err(b"PUB foo\r5\r\n"), ParseError::BadArgs);
        assert_eq!(
            op(b"PUB foo\rx 1\r\nx\r\n").0,
            Op::Pub {
                subject: b"foo\rx",
                reply: None,
                payload: b"x"
            }
        );
    }

    #[test]
    fn pub_payload_limits() {
        let l = Limits {
            max_payload: 10,
            ..L
        };
        assert!(matches!(
            parse(b"PUB foo 10\r\n0123456789\r\n", &l),
            Ok(Parsed::Op(..))
        ));
        // Decided as soon as the control line is complete.
        assert_eq!(err_with(b"PUB foo 11\r\n", &l), ParseError::PayloadTooLarge);
        assert_eq!(
            err_with(b"PUB foo 999999999\n", &l),
            ParseError::PayloadTooLarge
        );
        assert_eq!(
            err_with(b"PUB foo r 11\r\n", &l),
            ParseError::PayloadTooLarge
        );
        // Argument errors come first.
        assert_eq!(err_with(b"PUB foo 1000000000\r\n", &l), ParseError::BadArgs);
        let l0 = Limits {
            max_payload: 0,
            ..L
        };
        assert!(matches!(
            parse(b"PUB foo 0\r\n\r\n", &l0),
            Ok(Parsed::Op(..))
        ));
        assert_eq!(err_with(b"PUB foo 1\r\n", &l0), ParseError::PayloadTooLarge);
    }

    #[test]
    fn pub_trailer() {
        // MSG_END_R / MSG_END_N need exactly "\r\n" after the payload.
        assert_eq!(err(b"PUB foo 2\r\nok \r\n"), ParseError::UnknownOp);
        assert_eq!(err(b"PUB foo 2\r\nok\r \n"), ParseError::UnknownOp);
        assert_eq!(err(b"PUB foo 2\r\nok\n"), ParseError::UnknownOp);
        assert_eq!(err(b"PUB foo 2\r\nokk"), ParseError::UnknownOp);
        assert_eq!(err(b"PUB foo 0\r\n\n"), ParseError::UnknownOp);
        assert_eq!(err(b"PUB foo 2\r\nok\rx"), ParseError::UnknownOp);
        assert_eq!(incomplete(b"PUB foo 2\r\nok\r"), Some(15));
    }

    // ---- HPUB -------------------------------------------------------------------

    #[test]
    fn hpub() {
        let buf = b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
        assert_eq!(
            op(buf),
            (
                Op::HPub {
                    subject: b"foo",
                    reply: None,
                    headers: b"NATS/1.0\r\n\r\n",
                    payload: b"hi"
                },
                buf.len()
            )
        );
        let buf = b"hpub foo\tbar 12 12\nNATS/1.0\r\n\r\n\r\n";
        assert_eq!(
            op(buf),
            (
                Op::HPub {
                    subject: b"foo",
                    reply: Some(b"bar"),
                    headers: b"NATS/1.0\r\n\r\n",
                    payload: b""
                },
                buf.len()
            )
        );
        assert_eq!(
            op(b"HPUB foo 0 0\r\n\r\n"),
            (
                Op::HPub {
                    subject: b"foo",
                    reply: None,
                    headers: b"",
                    payload: b""
                },
                16
            )
        );
        assert_eq!(incomplete(b"HPUB foo 12 14\r\nNATS"), Some(32));
        assert_eq!(incomplete(b"HPUB foo 12 14"), None);
        assert_eq!(
            err(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\n"),
            ParseError::UnknownOp
        );
    }

    #[test]
    fn hpub_errors() {
        for bad in [
            &b"HPUB foo 12\r\n"[..],
            b"HPUB foo\r\n",
            b"HPUB  \r\n",
            b"HPUB a b c d e\r\n",
            b"HPUB foo 15 14\r\n",
            b"HPUB foo x 14\r\n",
            b"HPUB foo 1 x\r\n",
            b"HPUB foo -1 14\r\n",
            b"HPUB foo 1 1000000000\r\n",
        ] {
            assert_eq!(
                err(bad),
                ParseError::BadArgs,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let l = Limits {
            max_payload: 10,
            ..L
        };
        assert_eq!(
            err_with(b"HPUB foo 5 11\r\n", &l),
            ParseError::PayloadTooLarge
        );
        // hdr > total is checked before the payload limit.
        assert_eq!(err_with(b"HPUB foo 12 11\r\n", &l), ParseError::BadArgs);
        // Without headers negotiated, HPUB closes without -ERR, once the line is complete.
        let nh = Limits {
            headers: false,
            ..L
        };
        assert_eq!(err_with(b"HPUB foo 12 14\r\n", &nh), ParseError::BadArgs);
        assert_eq!(
            err_with(b"HPUB foo 1 999999999\r\n", &nh),
            ParseError::BadArgs
        );
        assert_eq!(
            parse(b"HPUB foo 12 14", &nh),
            Ok(Parsed::Incomplete { need: None })
        );
        assert_eq!(err_with(b"HPUBX", &nh), ParseError::UnknownOp);
    }

    // ---- SUB / UNSUB ------------------------------------------------------------

    #[test]
    fn sub_unsub() {
        assert_eq!(
            op(b"SUB foo 1\r\n"),
            (
                Op::Sub {
                    subject: b"foo",
                    queue: None,
                    sid: b"1"
                },
                11
            )
        );
        assert_eq!(
            op(b"sub\tfoo.*  q\t 22\n"),
            (
                Op::Sub {
                    subject: b"foo.*",
                    queue: Some(b"q"),
                    sid: b"22"
                },
                17
            )
        );
        assert_eq!(
            op(b"SUB foo 1 \r\n"),
            (
                Op::Sub {
                    subject: b"foo",
                    queue: None,
                    sid: b"1"
                },
                12
            )
        );
        // splitArg also splits on '\r'.
        assert_eq!(
            op(b"SUB foo\r1\r\n"),
            (
                Op::Sub {
                    subject: b"foo",
                    queue: None,
                    sid: b"1"
                },
                11
            )
        );
        for bad in [
            &b"SUB foo\r\n"[..],
            b"SUB  \r\n",
            b"SUB \r\n",
            b"SUB foo bar baz 22\r\n",
        ] {
            assert_eq!(
                err(bad),
                ParseError::BadArgs,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            op(b"UNSUB 1\r\n"),
            (
                Op::Unsub {
                    sid: b"1",
                    max: None
                },
                9
            )
        );
        assert_eq!(
            op(b"unsub\t1\t5\n"),
            (
                Op::Unsub {
                    sid: b"1",
                    max: Some(5)
                },
                10
            )
        );
        assert_eq!(
            op(b"UNSUB 1 0\r\n"),
            (
                Op::Unsub {
                    sid: b"1",
                    max: Some(0)
                },
                11
            )
        );
        assert_eq!(
            op(b"UNSUB 1 999999999\r\n").0,
            Op::Unsub {
                sid: b"1",
                max: Some(999_999_999)
            }
        );
        // A bad max is -1 in nats-server: unsubscribe at once, like no max.
        assert_eq!(
            op(b"UNSUB 1 x\r\n").0,
            Op::Unsub {
                sid: b"1",
                max: None
            }
        );
        assert_eq!(
            op(b"UNSUB 1 -5\r\n").0,
            Op::Unsub {
                sid: b"1",
                max: None
            }
        );
        assert_eq!(
            op(b"UNSUB 1 1000000000\r\n").0,
            Op::Unsub {
                sid: b"1",
                max: None
            }
        );
        for bad in [
            &b"UNSUB \r\n"[..],
            b"UNSUB          \t       \r\n",
            b"UNSUB 1 2 3\r\n",
        ] {
            assert_eq!(
                err(bad),
                ParseError::BadArgs,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    // ---- control line length ----------------------------------------------------

    #[test]
    fn control_line_is_the_argument() {
        // nats-server TestMaxControlLine: mcl 8, "foo.bar.baz 2" is 13 bytes.
        let l = Limits {
            max_control_line: 8,
            ..L
        };
        let pub_ = b"PUB foo.bar.baz 2\r\nok\r\n";
        assert_eq!(err_with(&pub_[..14], &l), ParseError::ControlLineTooLong);
        assert_eq!(err_with(pub_, &l), ParseError::ControlLineTooLong);
        // Exactly 8 bytes of argument is fine; the op name and the '\r' do not count.
        assert!(matches!(
            parse(b"PUB abcde 12\r\n0123456789ab\r\n", &l),
            Ok(Parsed::Op(..))
        ));
        assert_eq!(
            err_with(b"PUB abcdef 12\r\n", &l),
            ParseError::ControlLineTooLong
        );
        assert!(matches!(
            parse(b"CONNECT {\"a\":1}\r\n", &l),
            Ok(Parsed::Op(..))
        ));
        assert_eq!(
            err_with(b"CONNECT {\"a\":123}\r\n", &l),
            ParseError::ControlLineTooLong
        );
        assert_eq!(
            err_with(b"SUB foo.bar 1\r\n", &l),
            ParseError::ControlLineTooLong
        );
        assert_eq!(
            err_with(b"UNSUB 123456789\r\n", &l),
            ParseError::ControlLineTooLong
        );
        assert_eq!(
            err_with(b"INFO {\"a\":123}\n", &l),
            ParseError::ControlLineTooLong
        );
        assert_eq!(
            err_with(b"-ERR 123456789\n", &l),
            ParseError::ControlLineTooLong
        );
        // Checked before the argument syntax and the payload size.
        assert_eq!(
            err_with(b"PUB a b c d e\r\n", &l),
            ParseError::ControlLineTooLong
        );
        let lp = Limits {
            max_control_line: 8,
            max_payload: 1,
            headers: false,
        };
        assert_eq!(
            err_with(b"HPUB f 100 100\r\n", &lp),
            ParseError::ControlLineTooLong
        );
        // Partial argument: 8 bytes plus a '\r' that may precede the '\n' waits...
        assert_eq!(
            parse(b"PUB abcde 12\r", &l),
            Ok(Parsed::Incomplete { need: None })
        );
        assert_eq!(
            parse(b"PUB abcde 12", &l),
            Ok(Parsed::Incomplete { need: None })
        );
        // ... 9 bytes do not.
        assert_eq!(
            err_with(b"PUB abcde 123", &l),
            ParseError::ControlLineTooLong
        );
        assert_eq!(
            err_with(b"PUB abcde 12 ", &l),
            ParseError::ControlLineTooLong
        );
    }

    #[test]
    fn control_line_default_limit() {
        let mut line = b"PUB ".to_vec();
        line.extend(std::iter::repeat_n(b'a', 4094));
        line.extend(b" 0");
        assert_eq!(line.len() - 4, 4096);
        assert_eq!(p(&line), Ok(Parsed::Incomplete { need: None }));
        let mut ok = line.clone();
        ok.extend(b"\r\n\r\n");
        assert!(matches!(p(&ok), Ok(Parsed::Op(..))));
        line.push(b'0');
        assert_eq!(p(&line), Err(ParseError::ControlLineTooLong));
        let mut connect = b"CONNECT ".to_vec();
        connect.extend(std::iter::repeat_n(b' ', 5000));
        assert_eq!(p(&connect), Err(ParseError::ControlLineTooLong));
    }

    #[test]
    fn whole_line_bound() {
        // Whitespace after the op name and PING tails are not bounded by nats-server;
        // here the whole line is bounded by max_control_line + LINE_SLACK.
        let l = Limits {
            max_control_line: 8,
            ..L
        };
        let max = 8 + LINE_SLACK;
        for kw in [&b"PUB "[..], b"CONNECT", b"PING"] {
            let mut line = kw.to_vec();
            line.resize(max, b' ');
            assert_eq!(parse(&line, &l), Ok(Parsed::Incomplete { need: None }));
            let mut whole = line.clone();
            whole.extend(b"x\n");
            assert_eq!(parse(&whole, &l), Err(ParseError::ControlLineTooLong));
            line.push(b' ');
            assert_eq!(parse(&line, &l), Err(ParseError::ControlLineTooLong));
        }
        let mut line = b"PUB".to_vec();
        line.resize(max - 4, b'\t');
        line.extend(b"f 0\n\r\n");
        assert!(matches!(parse(&line, &l), Ok(Parsed::Op(..))));
        let mut ping = b"PING".to_vec();
        ping.resize(max, b'x');
        ping.push(b'\n');
        assert_eq!(parse(&ping, &l), Ok(Parsed::Op(Op::Ping, max + 1)));
    }

    #[test]
    fn mixed_stream() {
        let stream = b"CONNECT {}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nHPUB foo 4 6\r\n\r\n\r\nyo\r\nUNSUB 1\r\nPING\r\n";
        let ops = drive(stream, &L, &[1]).0;
        assert_eq!(
            ops,
            vec![
                OwnedOp::Connect(b"{}".to_vec()),
                OwnedOp::Sub {
                    subject: b"foo".to_vec(),
                    queue: None,
                    sid: b"1".to_vec()
                },
                OwnedOp::Pub {
                    subject: b"foo".to_vec(),
                    reply: None,
                    payload: b"hi".to_vec()
                },
                OwnedOp::HPub {
                    subject: b"foo".to_vec(),
                    reply: None,
                    headers: b"\r\n\r\n".to_vec(),
                    payload: b"yo".to_vec()
                },
                OwnedOp::Unsub {
                    sid: b"1".to_vec(),
                    max: None
                },
                OwnedOp::Ping,
            ]
        );
    }

    // ---- property tests ---------------------------------------------------------

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum OwnedOp {
        Connect(Vec<u8>),
        Pub {
            subject: Vec<u8>,
            reply: Option<Vec<u8>>,
            payload: Vec<u8>,
        },
        HPub {
            subject: Vec<u8>,
            reply: Option<Vec<u8>>,
            headers: Vec<u8>,
            payload: Vec<u8>,
        },
        Sub {
            subject: Vec<u8>,
            queue: Option<Vec<u8>>,
            sid: Vec<u8>,
        },
        Unsub {
            sid: Vec<u8>,
            max: Option<u64>,
        },
        Ping,
        Pong,
        Info(Vec<u8>),
        Ok,
        Err(Vec<u8>),
    }

    impl From<&Op<'_>> for OwnedOp {
        fn from(op: &Op<'_>) -> Self {
            let v = |s: &[u8]| s.to_vec();
            match *op {
                Op::Connect(a) => OwnedOp::Connect(v(a)),
                Op::Pub {
                    subject,
                    reply,
                    payload,
                } => OwnedOp::Pub {
                    subject: v(subject),
                    reply: reply.map(v),
                    payload: v(payload),
                },
                Op::HPub {
                    subject,
                    reply,
                    headers,
                    payload,
                } => OwnedOp::HPub {
                    subject: v(subject),
                    reply: reply.map(v),
                    headers: v(headers),
                    payload: v(payload),
                },
                Op::Sub {
                    subject,
                    queue,
                    sid,
                } => OwnedOp::Sub {
                    subject: v(subject),
                    queue: queue.map(v),
                    sid: v(sid),
                },
                Op::Unsub { sid, max } => OwnedOp::Unsub { sid: v(sid), max },
                Op::Ping => OwnedOp::Ping,
                Op::Pong => OwnedOp::Pong,
                Op::Info(a) => OwnedOp::Info(v(a)),
                Op::Ok => OwnedOp::Ok,
                Op::Err(a) => OwnedOp::Err(v(a)),
            }
        }
    }

    /// Feeds `stream` in chunks (sizes cycled from `chunks`, 0 meaning 1) exactly as the
    /// engine uses `parse`: append the read, parse in a loop, drop what was consumed,
    /// and skip parsing while the buffer is shorter than a known `need`.
    /// Returns the ops, the error if any, and the bytes left unparsed.
    fn drive(
        stream: &[u8],
        l: &Limits,
        chunks: &[usize],
    ) -> (Vec<OwnedOp>, Option<ParseError>, usize) {
        let mut buf: Vec<u8> = Vec::new();
        let mut ops = Vec::new();
        let mut need = 0usize;
        let mut fed = 0usize;
        let mut k = 0usize;
        while fed < stream.len() {
            let n = chunks
                .get(k % chunks.len().max(1))
                .copied()
                .unwrap_or(1)
                .max(1);
            k += 1;
            let n = n.min(stream.len() - fed);
            buf.extend_from_slice(&stream[fed..fed + n]);
            fed += n;
            if buf.len() < need {
                continue;
            }
            loop {
                match parse(&buf, l) {
                    Ok(Parsed::Op(op, used)) => {
                        assert!(used > 0 && used <= buf.len());
                        ops.push(OwnedOp::from(&op));
                        buf.drain(..used);
                    }
                    Ok(Parsed::Incomplete { need: nd }) => {
                        if let Some(nd) = nd {
                            assert!(nd > buf.len());
                        }
                        need = nd.unwrap_or(0);
                        break;
                    }
                    Err(e) => return (ops, Some(e), buf.len()),
                }
            }
        }
        (ops, None, buf.len())
    }

    fn with_case(kw: &str, mask: u16) -> String {
        kw.chars()
            .enumerate()
            .map(|(i, c)| {
                if mask & (1 << i) != 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    fn ws() -> impl Strategy<Value = String> {
        "[ \t]{1,3}"
    }

    fn eol() -> impl Strategy<Value = &'static str> {
        prop_oneof![3 => Just("\r\n"), 1 => Just("\n")]
    }

    fn token() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._>*$-]{1,12}"
    }

    /// A decimal rendering of `n`, sometimes zero-padded (at most 9 digits).
    fn size(n: usize, pad: usize) -> String {
        let s = n.to_string();
        let width = (s.len() + pad % 3).min(MAX_SIZE_DIGITS.max(s.len()));
        format!("{s:0>width$}")
    }

    /// A valid op and one of its serialisations.
    fn valid_op() -> impl Strategy<Value = (OwnedOp, Vec<u8>)> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..48);
        let text = "[!-~][ -~\t]{0,24}";
        prop_oneof![
            (
                any::<u16>(),
                token(),
                proptest::option::of(token()),
                bytes(),
                ws(),
                ws(),
                ws(),
                eol(),
                any::<usize>()
            )
                .prop_map(|(m, s, r, pl, w1, w2, w3, e, pad)| {
                    let mut out = format!("{}{w1}{s}{w2}", with_case("pub", m));
                    if let Some(r) = &r {
                        out += &format!("{r}{w3}");
                    }
                    out += &format!("{}{e}", size(pl.len(), pad));
                    let mut out = out.into_bytes();
                    out.extend(&pl);
                    out.extend(b"\r\n");
                    let op = OwnedOp::Pub {
                        subject: s.into_bytes(),
                        reply: r.map(String::into_bytes),
                        payload: pl,
                    };
                    (op, out)
                }),
            (
                any::<u16>(),
                token(),
                proptest::option::of(token()),
                bytes(),
                bytes(),
                ws(),
                ws(),
                eol()
            )
                .prop_map(|(m, s, r, h, pl, w1, w2, e)| {
                    let mut out = format!("{}{w1}{s}{w2}", with_case("hpub", m));
                    if let Some(r) = &r {
                        out += &format!("{r} ");
                    }
                    out += &format!("{}{w2}{}{e}", h.len(), h.len() + pl.len());
                    let mut out = out.into_bytes();
                    out.extend(&h);
                    out.extend(&pl);
                    out.extend(b"\r\n");
                    let op = OwnedOp::HPub {
                        subject: s.into_bytes(),
                        reply: r.map(String::into_bytes),
                        headers: h,
                        payload: pl,
                    };
                    (op, out)
                }),
            (
                any::<u16>(),
                token(),
                proptest::option::of(token()),
                token(),
                ws(),
                ws(),
                eol()
            )
                .prop_map(|(m, s, q, sid, w1, w2, e)| {
                    let mut out = format!("{}{w1}{s}{w2}", with_case("sub", m));
                    if let Some(q) = &q {
                        out += &format!("{q}{w1}");
                    }
                    out += &format!("{sid}{e}");
                    let op = OwnedOp::Sub {
                        subject: s.into_bytes(),
                        queue: q.map(String::into_bytes),
                        sid: sid.into_bytes(),
                    };
                    (op, out.into_bytes())
                }),
            (
                any::<u16>(),
                token(),
                proptest::option::of(prop_oneof![
                    (0u64..1_000_000_000).prop_map(|n| (n.to_string(), Some(n))),
                    "[a-z-]{1,4}".prop_map(|s| (s, None)),
                    (1_000_000_000u64..u64::MAX).prop_map(|n| (n.to_string(), None)),
                ]),
                ws(),
                eol()
            )
                .prop_map(|(m, sid, max, w, e)| {
                    let mut out = format!("{}{w}{sid}", with_case("unsub", m));
                    if let Some((s, _)) = &max {
                        out += &format!("{w}{s}");
                    }
                    out += e;
                    let op = OwnedOp::Unsub {
                        sid: sid.into_bytes(),
                        max: max.and_then(|(_, n)| n),
                    };
                    (op, out.into_bytes())
                }),
            (any::<u16>(), "[ \t]{0,3}", text, eol()).prop_map(|(m, w, t, e)| {
                let out = format!("{}{w}{t}{e}", with_case("connect", m));
                (OwnedOp::Connect(t.into_bytes()), out.into_bytes())
            }),
            (any::<u16>(), "[ \t]{0,3}", text, eol()).prop_map(|(m, w, t, e)| {
                let out = format!("{}{w}{t}{e}", with_case("info", m));
                (OwnedOp::Info(t.into_bytes()), out.into_bytes())
            }),
            (any::<u16>(), ws(), text, eol()).prop_map(|(m, w, t, e)| {
                let out = format!("-{}{w}{t}{e}", with_case("err", m));
                (OwnedOp::Err(t.into_bytes()), out.into_bytes())
            }),
            (
                any::<u16>(),
                prop_oneof![Just("ping"), Just("pong"), Just("+ok")],
                "[ -~\t]{0,6}",
                eol()
            )
                .prop_map(|(m, kw, tail, e)| {
                    let out = format!("{}{tail}{e}", with_case(kw, m));
                    let op = match kw {
                        "ping" => OwnedOp::Ping,
                        "pong" => OwnedOp::Pong,
                        _ => OwnedOp::Ok,
                    };
                    (op, out.into_bytes())
                }),
        ]
    }

    fn ops_stream() -> impl Strategy<Value = (Vec<OwnedOp>, Vec<u8>)> {
        proptest::collection::vec(valid_op(), 0..12).prop_map(|v| {
            let mut ops = Vec::new();
            let mut bytes = Vec::new();
            for (op, b) in v {
                ops.push(op);
                bytes.extend(b);
            }
            (ops, bytes)
        })
    }

    /// Every answer on a prefix that is not `Incomplete` is the answer on the whole
    /// buffer, and `need` is a true lower bound.
    fn check_prefixes(full: &[u8], l: &Limits) {
        let whole = parse(full, l);
        let bound = l.max_control_line + l.max_payload + LINE_SLACK + 3;
        for i in 0..=full.len() {
            let r = parse(&full[..i], l);
            match &r {
                Ok(Parsed::Op(_, n)) => {
                    assert!(*n > 0 && *n <= i);
                    assert_eq!(r, whole, "prefix {i}");
                }
                Err(_) => assert_eq!(r, whole, "prefix {i}"),
                Ok(Parsed::Incomplete { need }) => {
                    assert!(i < bound, "Incomplete at {i} >= {bound}");
                    if let Some(n) = *need {
                        assert!(n > i);
                        assert!(n <= bound);
                        // No op can complete before `need` (a wrong byte after the
                        // payload may already be an error, as in nats-server).
                        for j in i..n.min(full.len()) {
                            assert!(
                                !matches!(parse(&full[..j], l), Ok(Parsed::Op(..))),
                                "need {n} from prefix {i} but prefix {j} has an op"
                            );
                        }
                        if n <= full.len() {
                            assert!(!matches!(
                                parse(&full[..n], l),
                                Ok(Parsed::Incomplete { .. })
                            ));
                        }
                    }
                }
            }
        }
    }

    fn small_limits() -> impl Strategy<Value = Limits> {
        (0usize..48, 0usize..64, any::<bool>()).prop_map(|(m, p, h)| Limits {
            max_control_line: m,
            max_payload: p,
            headers: h,
        })
    }

    proptest! {
        #[test]
        fn split_reads_give_the_same_ops(
            (ops, bytes) in ops_stream(),
            chunks in proptest::collection::vec(0usize..40, 1..16),
        ) {
            let (whole, e, left) = drive(&bytes, &L, &[bytes.len().max(1)]);
            prop_assert_eq!(&whole, &ops);
            prop_assert_eq!(e, None);
            prop_assert_eq!(left, 0);
            let split = drive(&bytes, &L, &chunks);
            prop_assert_eq!(&split.0, &ops);
            prop_assert_eq!(split.1, None);
            prop_assert_eq!(split.2, 0);
            let bytewise = drive(&bytes, &L, &[1]);
            prop_assert_eq!(&bytewise.0, &ops);
            prop_assert_eq!(bytewise.2, 0);
        }

        #[test]
        fn random_split_points(
            (ops, bytes) in ops_stream(),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..10),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            points.dedup();
            let chunks: Vec<usize> = points.windows(2).map(|w| w[1] - w[0]).collect();
            let got = drive(&bytes, &L, &chunks);
            prop_assert_eq!(&got.0, &ops);
            prop_assert_eq!(got.1, None);
            prop_assert_eq!(got.2, 0);
        }

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400), l in small_limits()) {
            check_prefixes(&bytes, &l);
            // The engine loop always ends with an error or an Incomplete within bounds.
            let (_, e, left) = drive(&bytes, &l, &[bytes.len().max(1)]);
            if e.is_none() {
                prop_assert!(left < l.max_control_line + l.max_payload + LINE_SLACK + 3);
            }
        }

        #[test]
        fn arbitrary_text(
            bytes in proptest::collection::vec(
                prop_oneof![
                    Just(b' '), Just(b'\t'), Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'5'),
                    Just(b'P'), Just(b'u'), Just(b'B'), Just(b'S'), Just(b'I'), Just(b'n'),
                    Just(b'G'), Just(b'h'), Just(b'o'), any::<u8>()
                ],
                0..300,
            ),
            l in small_limits(),
        ) {
            check_prefixes(&bytes, &l);
        }

        #[test]
        fn corrupted_ops(
            (_, mut bytes) in ops_stream(),
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..4),
            l in small_limits(),
        ) {
            if !bytes.is_empty() {
                for (i, b) in flips {
                    let i = i.index(bytes.len());
                    bytes[i] = b;
                }
            }
            let chunk = bytes.len().max(1);
            let (ops, e, left) = drive(&bytes, &l, &[chunk]);
            let split = drive(&bytes, &l, &[1]);
            prop_assert_eq!(&split.0, &ops);
            prop_assert_eq!(split.1, e);
            if e.is_none() {
                prop_assert_eq!(split.2, left);
            }
            // Check the prefixes of what remains after the last op.
            let mut rest: &[u8] = &bytes;
            loop {
                check_prefixes(rest, &l);
                match parse(rest, &l) {
                    Ok(Parsed::Op(_, n)) => rest = &rest[n..],
                    _ => break,
                }
            }
        }
    }
}
