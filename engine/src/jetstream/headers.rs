//! Reading and writing NATS header blocks (`NATS/1.0\r\nKey: value\r\n\r\n`).

/// The first value of `key` in a header block (keys compare exactly, as
/// nats-server's lookups of `Nats-*` headers do), trimmed of spaces.
pub fn get<'a>(block: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut lines = block.split(|&b| b == b'\n');
    lines.next()?; // the NATS/1.0 status line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if &line[..colon] == key.as_bytes() {
            return Some(trim(&line[colon + 1..]));
        }
    }
    None
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Build a header block from a status and key/value pairs.
pub fn build(status: Option<&str>, pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = b"NATS/1.0".to_vec();
    if let Some(s) = status {
        out.push(b' ');
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    push_pairs(out, pairs)
}

/// Add key/value pairs to an existing block (or make one).
pub fn append(block: &[u8], pairs: &[(&str, &str)]) -> Vec<u8> {
    if block.len() < 4 || !block.ends_with(b"\r\n\r\n") {
        return build(None, pairs);
    }
    push_pairs(block[..block.len() - 2].to_vec(), pairs)
}

/// `out` ends with a complete line; add `Key: value` lines and the blank line.
fn push_pairs(mut out: Vec<u8>, pairs: &[(&str, &str)]) -> Vec<u8> {
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_build_append() {
        let h = b"NATS/1.0\r\nNats-Msg-Id:  abc \r\nX: 1\r\nX: 2\r\n\r\n";
        assert_eq!(get(h, "Nats-Msg-Id"), Some(&b"abc"[..]));
        assert_eq!(get(h, "X"), Some(&b"1"[..]));
        assert_eq!(get(h, "nats-msg-id"), None);
        assert_eq!(get(b"", "X"), None);
        let b = build(Some("404 Message Not Found"), &[]);
        assert_eq!(b, b"NATS/1.0 404 Message Not Found\r\n\r\n");
        let a = append(b"NATS/1.0\r\nA: b\r\n\r\n", &[("Nats-Stream", "S")]);
        assert_eq!(a, b"NATS/1.0\r\nA: b\r\nNats-Stream: S\r\n\r\n");
        assert_eq!(append(b"", &[("K", "v")]), b"NATS/1.0\r\nK: v\r\n\r\n");
    }
}
