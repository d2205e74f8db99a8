//! A minimal NATS client over raw TCP: enough protocol for load generation.
//!
//! Writes are the caller's own batched buffers; reads go through [`Reader`], which
//! parses `MSG`/`HMSG`/`PING`/`PONG`/`+OK`/`-ERR`/`INFO` without allocating per
//! message; [`status`] reads the status line of an `HMSG` (JetStream's pull
//! replies such as `404 No Messages`). Server PINGs are reported, not answered: every workload is far
//! shorter than the servers' 2-minute ping interval.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use memchr::memchr;

pub const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"natrium-benches\",\"lang\":\"rust\",\"version\":\"0.1.0\",\"protocol\":1,\"headers\":true,\"no_responders\":true}\r\n";

/// One server-to-client operation, borrowing from the read buffer.
pub enum Event<'a> {
    /// `MSG` or `HMSG`; `headers` is empty for `MSG`, and `payload` is the body
    /// after the headers.
    Msg {
        subject: &'a [u8],
        sid: u64,
        reply: Option<&'a [u8]>,
        headers: &'a [u8],
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    Err(&'a [u8]),
    Info,
}

/// The reading half of a connection.
pub struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Open a connection and send CONNECT (pipelined: INFO is read later, by the
/// reader). Returns the writing half and the reader.
pub fn connect(addr: SocketAddr) -> io::Result<(TcpStream, Reader)> {
    let mut w = TcpStream::connect(addr)?;
    w.set_nodelay(true)?;
    w.write_all(CONNECT)?;
    let r = w.try_clone()?;
    Ok((w, Reader::new(r)))
}

impl Reader {
    pub fn new(stream: TcpStream) -> Reader {
        Reader {
            stream,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
        }
    }

    pub fn set_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(t)
    }

    /// Read once (blocking, up to the read timeout) and hand every complete
    /// operation to `f`. `Ok(false)` when the read timed out; an error on EOF.
    pub fn read_some(&mut self, f: &mut dyn FnMut(Event<'_>)) -> io::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let n = match self.stream.read(&mut self.buf[self.end..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        };
        self.end += n;
        loop {
            let data = &self.buf[self.start..self.end];
            match parse_one(data)? {
                Some((ev, used)) => {
                    f(ev);
                    self.start += used;
                }
                None => {
                    // A frame larger than the buffer: make room for it.
                    if let Some(need) = frame_len_hint(data) {
                        if need > self.buf.len() {
                            self.buf.resize(need, 0);
                        }
                    }
                    break;
                }
            }
        }
        Ok(true)
    }

    /// Read until `f` returns true for an event, or `timeout` passes.
    pub fn read_until(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(Event<'_>) -> bool,
    ) -> io::Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        let mut done = false;
        while !done {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time"));
            }
            self.set_timeout(Some(left.max(Duration::from_millis(1))))?;
            self.read_some(&mut |ev| {
                if !done && f(ev) {
                    done = true;
                }
            })?;
        }
        Ok(())
    }
}

/// Send PING and wait for PONG: everything sent before has been processed.
pub fn flush(w: &mut TcpStream, r: &mut Reader, timeout: Duration) -> io::Result<()> {
    w.write_all(b"PING\r\n")?;
    let mut err = None;
    r.read_until(timeout, &mut |ev| match ev {
        Event::Pong => true,
        Event::Err(e) => {
            err = Some(String::from_utf8_lossy(e).into_owned());
            false
        }
        _ => false,
    })?;
    match err {
        Some(e) => Err(io::Error::other(format!("server said -ERR {e}"))),
        None => Ok(()),
    }
}

/// The status of an `HMSG` header block (`NATS/1.0 408 Request Timeout`): the
/// code and the description. `None` for a plain message or plain headers.
pub fn status(headers: &[u8]) -> Option<(u16, &[u8])> {
    let line = &headers[..memchr(b'\n', headers).unwrap_or(headers.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"NATS/1.0 ")?.trim_ascii_start();
    let code = rest.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit))?;
    let code = std::str::from_utf8(code).ok()?.parse().ok()?;
    Some((code, rest[3..].trim_ascii()))
}

fn parse_size(s: &[u8]) -> io::Result<usize> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad size"))
}

fn frame_len_hint(data: &[u8]) -> Option<usize> {
    let nl = memchr(b'\n', data)?;
    let line = data[..nl].strip_suffix(b"\r").unwrap_or(&data[..nl]);
    let size = line.rsplit(|&b| b == b' ').next()?;
    Some(nl + 1 + parse_size(size).ok()? + 2)
}

fn parse_one(data: &[u8]) -> io::Result<Option<(Event<'_>, usize)>> {
    let Some(nl) = memchr(b'\n', data) else {
        return Ok(None);
    };
    let line = &data[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (is_msg, is_hmsg) = (line.starts_with(b"MSG "), line.starts_with(b"HMSG "));
    if is_msg || is_hmsg {
        let mut args = [&b""[..]; 5];
        let mut n = 0;
        for a in line.split(|&b| b == b' ').skip(1).filter(|a| !a.is_empty()) {
            if n == 5 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad MSG"));
            }
            args[n] = a;
            n += 1;
        }
        let plain_args = if is_msg { 3 } else { 4 };
        let reply = match n {
            x if x == plain_args => None,
            x if x == plain_args + 1 => Some(args[2]),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad MSG args")),
        };
        let size = parse_size(args[n - 1])?;
        let hdr = if is_hmsg { parse_size(args[n - 2])? } else { 0 };
        if hdr > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HMSG headers past its size",
            ));
        }
        let total = nl + 1 + size + 2;
        if data.len() < total {
            return Ok(None);
        }
        let body = &data[nl + 1..nl + 1 + size];
        return Ok(Some((
            Event::Msg {
                subject: args[0],
                sid: parse_size(args[1])? as u64,
                reply,
                headers: &body[..hdr],
                payload: &body[hdr..],
            },
            total,
        )));
    }
    let ev = if line.starts_with(b"PING") {
        Event::Ping
    } else if line.starts_with(b"PONG") {
        Event::Pong
    } else if line.starts_with(b"+OK") {
        Event::Ok
    } else if let Some(e) = line.strip_prefix(b"-ERR") {
        Event::Err(e)
    } else if line.starts_with(b"INFO") {
        Event::Info
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected line {:?}", String::from_utf8_lossy(line)),
        ));
    };
    Ok(Some((ev, nl + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames() {
        let data = b"INFO {}\r\nMSG a 1 5\r\nhello\r\nMSG b 2 r 0\r\n\r\nHMSG c 3 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHMSG d 4 $JS.ACK.S.C.1.2.3.4.0 0 0\r\n\r\nPONG\r\n";
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Some((ev, used)) = parse_one(&data[pos..]).unwrap() {
            seen.push(match ev {
                Event::Msg {
                    subject,
                    sid,
                    reply,
                    headers,
                    payload,
                } => format!(
                    "msg {} {sid} {:?} {}+{}",
                    String::from_utf8_lossy(subject),
                    reply.map(|r| String::from_utf8_lossy(r).into_owned()),
                    headers.len(),
                    payload.len()
                ),
                Event::Pong => "pong".into(),
                Event::Info => "info".into(),
                _ => "other".into(),
            });
            pos += used;
        }
        assert_eq!(
            seen,
            [
                "info",
                "msg a 1 None 0+5",
                "msg b 2 Some(\"r\") 0+0",
                "msg c 3 None 12+2",
                "msg d 4 Some(\"$JS.ACK.S.C.1.2.3.4.0\") 0+0",
                "pong"
            ]
        );
        assert_eq!(pos, data.len());
        assert!(parse_one(b"MSG a 1 5\r\nhel").unwrap().is_none());
        assert!(parse_one(b"HMSG a 1 9 5\r\nNATS/1.0\r\n\r\n").is_err());
    }

    #[test]
    fn reads_status_lines() {
        assert_eq!(
            status(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\n\r\n"),
            Some((408, &b"Request Timeout"[..]))
        );
        assert_eq!(
            status(b"NATS/1.0 404 No Messages\r\n\r\n"),
            Some((404, &b"No Messages"[..]))
        );
        assert_eq!(status(b"NATS/1.0 100\r\n\r\n"), Some((100, &b""[..])));
        assert_eq!(status(b"NATS/1.0\r\nFoo: 1\r\n\r\n"), None);
        assert_eq!(status(b""), None);
    }
}
