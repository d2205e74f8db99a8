//! A small NATS client connection for the simulated clients: connect, write
//! protocol lines, and read the server's frames.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use turmoil::net::TcpStream;

/// Largest frame a simulated client accepts (anything bigger is a protocol error).
const MAX_FRAME: usize = 2 * 1024 * 1024;

/// How long a write may wait for the network to take it.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(600);

/// What the server sent.
#[derive(Debug)]
pub enum Frame {
    Info,
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    Err(String),
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

pub struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: BytesMut,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Conn {
    /// Connect, read INFO, send CONNECT and a PING, and wait for its PONG.
    pub async fn connect(name: &str) -> io::Result<Conn> {
        let tcp = TcpStream::connect(("server", crate::PORT)).await?;
        let (rd, wr) = tcp.into_split();
        let mut c = Conn {
            rd,
            wr,
            buf: BytesMut::with_capacity(4096),
        };
        match c.next().await? {
            Frame::Info => {}
            f => return Err(bad(format!("expected INFO, got {f:?}"))),
        }
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1,\"name\":\"{name}\"}}\r\nPING\r\n"
        );
        c.send(connect.as_bytes()).await?;
        loop {
            match c.next().await? {
                Frame::Pong => return Ok(c),
                Frame::Err(e) => return Err(bad(format!("-ERR {e}"))),
                _ => {}
            }
        }
    }

    /// Write everything, or fail after [`WRITE_TIMEOUT`] (a partitioned
    /// connection never takes more bytes: it is then given up).
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.wr.write_all(data)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// PUB, or HPUB when there are headers.
    pub async fn publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> io::Result<()> {
        let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
        let mut out = match headers {
            Some(h) => format!(
                "HPUB {subject}{reply} {} {}\r\n",
                h.len(),
                h.len() + payload.len()
            )
            .into_bytes(),
            None => format!("PUB {subject}{reply} {}\r\n", payload.len()).into_bytes(),
        };
        if let Some(h) = headers {
            out.extend_from_slice(h);
        }
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        self.send(&out).await
    }

    /// The next frame. Cancel-safe: bytes read stay in the buffer.
    pub async fn next(&mut self) -> io::Result<Frame> {
        loop {
            if let Some(f) = self.parse()? {
                return Ok(f);
            }
            if self.buf.len() > MAX_FRAME {
                return Err(bad("frame too large"));
            }
            self.buf.reserve(16 * 1024);
            if self.rd.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn parse(&mut self) -> io::Result<Option<Frame>> {
        let Some(eol) = memchr::memmem::find(&self.buf, b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&self.buf[..eol])
            .map_err(|_| bad("control line is not UTF-8"))?
            .to_string();
        let mut words = line.split_ascii_whitespace();
        let op = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let frame = match op.as_str() {
            "INFO" => Frame::Info,
            "PING" => Frame::Ping,
            "PONG" => Frame::Pong,
            "+OK" => Frame::Ok,
            "-ERR" => Frame::Err(line[4..].trim().to_string()),
            "MSG" | "HMSG" => {
                let hmsg = op == "HMSG";
                let fixed = if hmsg { 4 } else { 3 };
                if args.len() != fixed && args.len() != fixed + 1 {
                    return Err(bad(format!("bad {op} line: {line}")));
                }
                let num = |s: &str| {
                    s.parse::<usize>()
                        .map_err(|_| bad(format!("bad number in {line}")))
                };
                let total = num(args[args.len() - 1])?;
                let hdr = if hmsg { num(args[args.len() - 2])? } else { 0 };
                if hdr > total {
                    return Err(bad(format!("header longer than message: {line}")));
                }
                let need = eol + 2 + total + 2;
                if self.buf.len() < need {
                    return Ok(None);
                }
                if &self.buf[need - 2..need] != b"\r\n" {
                    return Err(bad(format!("message not followed by CRLF: {line}")));
                }
                let sid = args[1]
                    .parse::<u64>()
                    .map_err(|_| bad(format!("bad sid: {line}")))?;
                let reply = (args.len() == fixed + 1).then(|| args[2].to_string());
                let subject = args[0].to_string();
                self.buf.advance(eol + 2);
                let mut body = self.buf.split_to(total + 2).freeze();
                body.truncate(total);
                let headers = hmsg.then(|| body.split_to(hdr));
                return Ok(Some(Frame::Msg(Msg {
                    subject,
                    sid,
                    reply,
                    headers,
                    payload: body,
                })));
            }
            _ => return Err(bad(format!("unknown frame: {line}"))),
        };
        self.buf.advance(eol + 2);
        Ok(Some(frame))
    }
}
