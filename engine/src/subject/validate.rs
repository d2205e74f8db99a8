//! Subject syntax (rows W1–W3) and single-pattern matching.

/// Token separator.
pub(crate) const SEP: u8 = b'.';
/// Partial wildcard token: matches exactly one token.
pub(crate) const PWC: &[u8] = b"*";
/// Full wildcard token: matches one or more trailing tokens (last token only).
pub(crate) const FWC: &[u8] = b">";

#[inline]
fn is_forbidden_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Shared syntax check; `allow_wildcards` selects subscription vs literal rules.
fn check(s: &[u8], allow_wildcards: bool) -> bool {
    if s.is_empty() {
        return false;
    }
    let mut tokens = s.split(|&b| b == SEP).peekable();
    while let Some(tok) = tokens.next() {
        if tok.is_empty() || tok.iter().any(|&b| is_forbidden_byte(b)) {
            return false;
        }
        if tok == PWC {
            if !allow_wildcards {
                return false;
            }
        } else if tok == FWC && (!allow_wildcards || tokens.peek().is_some()) {
            return false;
        }
    }
    true
}

/// Whether `s` is a valid subscription subject (wildcards allowed).
///
/// Tokens are separated by `.`; no token may be empty; no space, tab, CR or LF
/// anywhere. `*` is a wildcard token anywhere; `>` only as the last token. A
/// token merely containing `*` or `>` (e.g. `foo*`) is literal text.
pub fn is_valid_subject(s: &[u8]) -> bool {
    check(s, true)
}

/// Whether `s` is a valid literal subject (no wildcard tokens): pedantic PUB.
pub fn is_valid_literal_subject(s: &[u8]) -> bool {
    check(s, false)
}

/// Whether the published subject `s` has any empty token (then it matches nothing).
#[inline]
pub(crate) fn has_empty_token(s: &[u8]) -> bool {
    s.is_empty() || s[0] == SEP || s[s.len() - 1] == SEP || memchr::memmem::find(s, b"..").is_some()
}

/// Whether the pattern holds a wildcard token (`*` or `>`), i.e. can match more than
/// the subject spelled exactly like it.
pub(crate) fn has_wildcard_token(pattern: &[u8]) -> bool {
    pattern.split(|&b| b == SEP).any(|t| t == PWC || t == FWC)
}

/// Whether `s` is a literal subject that `pattern` (which may hold wildcards) matches.
///
/// The tokens of `s` are literal text (`*`/`>` in `s` are not wildcards). A subject
/// with an empty token matches nothing. In `pattern`, `*` matches exactly one token
/// and `>` as the last token matches one or more tokens; a `>` token anywhere else
/// (an invalid pattern) makes the pattern match nothing, which is consistent with
/// how [`SubjectIndex`](super::SubjectIndex) treats such a pattern.
pub fn subject_matches(pattern: &[u8], s: &[u8]) -> bool {
    if has_empty_token(s) {
        return false;
    }
    let mut pt = pattern.split(|&b| b == SEP);
    let mut st = s.split(|&b| b == SEP);
    loop {
        match (pt.next(), st.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) => {
                if p == FWC {
                    // `t` is the first of the one or more tokens `>` swallows.
                    return pt.next().is_none();
                }
                if p != PWC && p != t {
                    return false;
                }
            }
            _ => return false,
        }
    }
}
