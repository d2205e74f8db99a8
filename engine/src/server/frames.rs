//! The frames the server writes: MSG/HMSG, -ERR, +OK, PING/PONG, INFO.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

pub(crate) const PONG: &[u8] = b"PONG\r\n";
pub(crate) const PING: &[u8] = b"PING\r\n";
pub(crate) const OK: &[u8] = b"+OK\r\n";

/// Appends `MSG <subject> <sid> [reply] <#bytes>\r\n<payload>\r\n`, or the HMSG form
/// when `headers` is given.
pub(crate) fn write_msg(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    // nats-server delivers an HPUB with an empty header block (`HPUB s 0 n`) as MSG.
    let headers = headers.filter(|h| !h.is_empty());
    let mut num = itoa::Buffer::new();
    let hlen = headers.map_or(0, <[u8]>::len);
    let total = hlen + payload.len();
    out.reserve(subject.len() + sid.len() + reply.map_or(0, |r| r.len() + 1) + total + 40);
    out.put_slice(if headers.is_some() { b"HMSG " } else { b"MSG " });
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if let Some(r) = reply {
        out.put_slice(r);
        out.put_u8(b' ');
    }
    if let Some(h) = headers {
        out.put_slice(num.format(h.len()).as_bytes());
        out.put_u8(b' ');
    }
    out.put_slice(num.format(total).as_bytes());
    out.put_slice(b"\r\n");
    if let Some(h) = headers {
        out.put_slice(h);
    }
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// Appends `-ERR '<text>'\r\n`.
pub(crate) fn write_err(out: &mut BytesMut, text: &str) {
    out.put_slice(b"-ERR '");
    out.put_slice(text.as_bytes());
    out.put_slice(b"'\r\n");
}

/// Quotes like Go's `%q`, which nats-server uses in permission violations (rows E14–E16).
pub(crate) fn go_quote(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut q = String::with_capacity(b.len() + 2);
    q.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\x07' => q.push_str("\\a"),
                '\x08' => q.push_str("\\b"),
                '\x0c' => q.push_str("\\f"),
                '\n' => q.push_str("\\n"),
                '\r' => q.push_str("\\r"),
                '\t' => q.push_str("\\t"),
                '\x0b' => q.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(q, "\\x{:02x}", c as u32);
                }
                // C1 controls and the soft hyphen are not printable for Go.
                c if (0x80..0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                    let _ = write!(q, "\\u{:04x}", c as u32);
                }
                c => q.push(c),
            }
        }
        // Go escapes each byte that is not valid UTF-8 as \xNN.
        for byte in chunk.invalid() {
            let _ = write!(q, "\\x{byte:02x}");
        }
    }
    q.push('"');
    q
}

/// The INFO object (section 1.2), in nats-server's field order.
#[derive(Serialize)]
pub(crate) struct Info<'a> {
    pub server_id: &'a str,
    pub server_name: &'a str,
    pub version: &'a str,
    pub proto: u8,
    pub go: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub headers: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    pub max_payload: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub jetstream: bool,
    pub client_id: u64,
    pub client_ip: String,
}

/// Appends `INFO {json}\r\n`.
pub(crate) fn write_info(out: &mut BytesMut, info: &Info<'_>) {
    out.put_slice(b"INFO ");
    // Serializing a struct of strings and numbers cannot fail.
    if let Ok(json) = serde_json::to_vec(info) {
        out.put_slice(&json);
    }
    out.put_slice(b" \r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_and_hmsg_frames() {
        let mut b = BytesMut::new();
        write_msg(&mut b, b"foo.bar", b"1", None, None, b"hello");
        write_msg(
            &mut b,
            b"foo",
            b"22",
            Some(b"_INBOX.x"),
            Some(b"NATS/1.0\r\n\r\n"),
            b"hi",
        );
        assert_eq!(
            &b[..],
            b"MSG foo.bar 1 5\r\nhello\r\nHMSG foo 22 _INBOX.x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        );
        // An empty header block is delivered as MSG, as nats-server does.
        let mut b = BytesMut::new();
        write_msg(&mut b, b"foo", b"1", None, Some(b""), b"hi");
        assert_eq!(&b[..], b"MSG foo 1 2\r\nhi\r\n");
    }

    #[test]
    fn go_style_quoting() {
        assert_eq!(go_quote(b"foo.bar"), "\"foo.bar\"");
        assert_eq!(go_quote(b"a\"b\\c\x01"), "\"a\\\"b\\\\c\\x01\"");
        assert_eq!(go_quote(b"\x07\x0b\x7f"), "\"\\a\\v\\x7f\"");
        assert_eq!(
            go_quote("caf\u{e9}\u{85}".as_bytes()),
            "\"caf\u{e9}\\u0085\""
        );
        assert_eq!(go_quote(b"a\xffb\xe2\x82"), "\"a\\xffb\\xe2\\x82\"");
    }
}
