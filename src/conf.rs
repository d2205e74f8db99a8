//! The NATS config file format (nats-server's `conf` package), parsed into a tree of
//! values that remember where they came from.
//!
//! Supported syntax (feature matrix section 2.1):
//! - `key = value`, `key: value` and `key value`; a value ends at a new line, `;`, `,`
//!   or a comment (`#` or `//` to the end of the line).
//! - maps `{ … }` (`name { … }` needs no separator), arrays `[a, b]` with commas or new
//!   lines between values, nested freely; a whole file may be wrapped in `{ … }` (JSON).
//! - double-quoted strings with escapes (`\t \n \r \" \\ \xHH`, plus `\uXXXX`),
//!   single-quoted raw strings, unquoted barewords (`$2a$11$…` bcrypt hashes, paths,
//!   URLs, `1.2.3.4:4222`), `( … )` raw blocks closed by `)` alone on a line.
//! - integers with size suffixes (`k`=1000, `kb`/`ki`/`kib`=1024, then m/g/t/p/e),
//!   negative numbers, floats, booleans (`true/yes/on`, `false/no/off`, any case),
//!   ISO 8601 Zulu datetimes.
//! - variables: `NAME = value` defined in any enclosing map, referenced as `$NAME`;
//!   the innermost map wins, then the environment (its text parsed as a value).
//! - `include path` (quoted or not), relative to the including file's directory; the
//!   included keys land in the current map.
//!
//! Positions are 1-based lines and 1-based columns (in characters).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How deep includes may nest before we assume a loop.
pub const MAX_INCLUDE_DEPTH: usize = 10;
/// How deep maps and arrays may nest (guards the parser's stack).
pub const MAX_NESTING: usize = 128;

/// Where something is in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A config error: where it is and what is wrong. Displays as
/// `<file>:<line>:<col>: <message>` (nats-server's pedantic error shape), or
/// `<file>: <message>` when there is no position (line 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl ConfigError {
    pub fn at(pos: &Pos, message: impl Into<String>) -> Self {
        ConfigError {
            file: pos.file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }

    pub fn in_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: 0,
            col: 0,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// A parsed value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// An ISO 8601 Zulu datetime, kept as written (`2016-05-04T18:53:41Z`).
    Datetime(String),
    Array(Vec<Node>),
    Map(Map),
}

impl Value {
    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Integer(_) => "integer",
            Value::Float(_) => "float",
            Value::Bool(_) => "boolean",
            Value::Datetime(_) => "datetime",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }
}

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// One `key = value` of a map.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub node: Node,
    /// Whether some `$key` referred to this entry; such entries are variable
    /// definitions and are not checked as options.
    pub used_as_variable: bool,
}

/// A map, in file order. A key set twice keeps its last value (at its first place).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    pub entries: Vec<Entry>,
}

impl Map {
    pub fn new() -> Self {
        Map::default()
    }

    /// Sets an entry; a key already present (same spelling) is replaced.
    pub fn insert(&mut self, entry: Entry) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == entry.key) {
            *e = entry;
        } else {
            self.entries.push(entry);
        }
    }

    /// The entry with exactly this key.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The last entry whose key matches case-insensitively.
    pub fn get_ci(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Parses a config file; includes are resolved relative to its directory.
pub fn parse_file(path: &Path) -> Result<Map, ConfigError> {
    parse_file_at_depth(path, 0, &[])
}

/// Parses config text. `file` names it in errors and positions; includes are resolved
/// relative to its directory (the current directory when it has none).
pub fn parse_str(src: &str, file: &str) -> Result<Map, ConfigError> {
    let mut p = Parser::new(src, file, Path::new(file), 0, Vec::new(), Vec::new());
    p.parse_document()
}

fn parse_file_at_depth(path: &Path, depth: usize, chain: &[PathBuf]) -> Result<Map, ConfigError> {
    let name = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| {
        ConfigError::in_file(name.clone(), format!("error opening config file: {e}"))
    })?;
    let text = String::from_utf8(data)
        .map_err(|_| ConfigError::in_file(name.clone(), "config file is not valid UTF-8"))?;
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut chain = chain.to_vec();
    chain.push(canon);
    let mut p = Parser::new(&text, &name, path, depth, chain, Vec::new());
    p.parse_document()
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Characters that end an unquoted string value.
fn ends_bare(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => is_nl(c) || is_ws(c) || matches!(c, ';' | ',' | ']' | '}'),
    }
}

fn is_bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn show(c: Option<char>) -> String {
    match c {
        None => "EOF".to_string(),
        Some('\n') => "\\n".to_string(),
        Some('\r') => "\\r".to_string(),
        Some(c) => c.to_string(),
    }
}

struct Parser {
    src: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    file: Arc<str>,
    dir: PathBuf,
    /// Maps being built, outermost first: the variable scopes.
    scopes: Vec<Map>,
    nesting: usize,
    include_depth: usize,
    include_chain: Vec<PathBuf>,
    /// Environment variables being expanded (cycle guard).
    env_refs: Vec<String>,
}

type PResult<T> = Result<T, ConfigError>;

impl Parser {
    fn new(
        src: &str,
        file: &str,
        path: &Path,
        include_depth: usize,
        include_chain: Vec<PathBuf>,
        env_refs: Vec<String>,
    ) -> Self {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Parser {
            src: src.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            file: Arc::from(file),
            dir,
            scopes: Vec::new(),
            nesting: 0,
            include_depth,
            include_chain,
            env_refs,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err(ConfigError::at(&self.pos(), msg))
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src.get(self.i + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.src.get(self.i).copied()?;
        self.i += 1;
        let newline = c == '\n' || (c == '\r' && self.peek() != Some('\n'));
        if newline {
            self.line += 1;
            self.col = 1;
        } else if c != '\r' {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.bump();
        }
    }

    fn at_comment(&self) -> bool {
        self.peek() == Some('#') || (self.peek() == Some('/') && self.peek_at(1) == Some('/'))
    }

    /// Skips a comment up to (not including) the end of the line.
    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| !is_nl(c)) {
            self.bump();
        }
    }

    /// Skips white space, new lines and comments.
    fn skip_all(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => return,
            }
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return self.err(format!("maps and arrays nest deeper than {MAX_NESTING}"));
        }
        Ok(())
    }

    fn parse_document(&mut self) -> PResult<Map> {
        self.scopes.push(Map::new());
        // Top-level `{ … }` wrappers (JSON form) are transparent.
        let mut blocks: Vec<Pos> = Vec::new();
        loop {
            self.skip_all();
            match self.peek() {
                None => {
                    if let Some(p) = blocks.last() {
                        return Err(ConfigError::at(p, "Unexpected EOF: '{' is never closed"));
                    }
                    break;
                }
                Some('{') => {
                    blocks.push(self.pos());
                    self.bump();
                    self.enter()?;
                    continue;
                }
                Some('}') if !blocks.is_empty() => {
                    blocks.pop();
                    self.nesting -= 1;
                    self.bump();
                    self.value_end(false, !blocks.is_empty())?;
                    continue;
                }
                Some(';') | Some(',') => {
                    self.bump();
                    continue;
                }
                _ => {}
            }
            self.parse_entry()?;
            self.value_end(false, !blocks.is_empty())?;
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// After a value in a map: white space, then a terminator.
    fn value_end(&mut self, nested: bool, in_block: bool) -> PResult<()> {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            Some(c) if is_nl(c) || c == ';' || c == ',' => {
                self.bump();
                Ok(())
            }
            Some('}') if nested || in_block => Ok(()),
            _ if self.at_comment() => {
                self.skip_comment();
                Ok(())
            }
            c if nested => self.err(format!(
                "Expected a map value terminator ',' or a map terminator '}}', but got '{}' instead",
                show(c)
            )),
            c => self.err(format!(
                "Expected a top-level value to end with a new line, comment or EOF, but got '{}' instead",
                show(c)
            )),
        }
    }

    /// Parses one `key = value` (or `include …`) into the innermost scope.
    fn parse_entry(&mut self) -> PResult<()> {
        let key_pos = self.pos();
        let key = match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let mut k = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(ConfigError::at(
                                &key_pos,
                                "unterminated quoted key (unexpected EOF)",
                            ))
                        }
                        Some(c) if c == q => break,
                        Some(c) => k.push(c),
                    }
                }
                k
            }
            Some(c @ ('=' | ':')) => {
                return self.err(format!("Unexpected key separator '{c}'"));
            }
            Some(c @ (']' | '}')) => return self.err(format!("Unexpected '{c}'")),
            _ => {
                let mut k = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ':' | '{' | '[') {
                        break;
                    }
                    k.push(c);
                    self.bump();
                }
                if k.eq_ignore_ascii_case("include") && self.peek().is_some_and(char::is_whitespace)
                {
                    return self.parse_include();
                }
                k
            }
        };
        // Separator: white space (new lines too), then optionally one '=' or ':'.
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        if matches!(self.peek(), Some('=') | Some(':')) {
            self.bump();
            self.skip_ws();
        }
        let node = self.parse_value()?;
        self.scopes
            .last_mut()
            .expect("scope stack is never empty while parsing")
            .insert(Entry {
                key,
                key_pos,
                node,
                used_as_variable: false,
            });
        Ok(())
    }

    fn parse_include(&mut self) -> PResult<()> {
        self.skip_ws();
        let pos = self.pos();
        let path = match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(ConfigError::at(
                                &pos,
                                "unterminated quoted include (unexpected EOF)",
                            ))
                        }
                        Some(c) if c == q => break,
                        Some(c) => s.push(c),
                    }
                }
                s
            }
            Some('[') => return self.err("Expected include value but found start of an array"),
            Some('{') => return self.err("Expected include value but found start of a map"),
            Some('(') => return self.err("Expected include value but found start of a block"),
            Some(c) if c.is_ascii_digit() || c == '-' => {
                return self.err("Expected include value but found start of a number")
            }
            Some('\\') => return self.err("Expected include value but found escape sequence"),
            None => return self.err("Expected include value but found EOF"),
            Some(c) if is_nl(c) => return self.err("Expected include value but found new line"),
            _ => {
                let mut s = String::new();
                while let Some(c) = self.peek() {
                    if is_nl(c) || is_ws(c) || c == ';' || c == '}' || c == '\'' {
                        break;
                    }
                    s.push(c);
                    self.bump();
                }
                s
            }
        };
        if self.include_depth + 1 > MAX_INCLUDE_DEPTH {
            return Err(ConfigError::at(
                &pos,
                format!("error parsing include file '{path}': includes nest deeper than {MAX_INCLUDE_DEPTH}"),
            ));
        }
        let full = self.dir.join(&path);
        let canon = std::fs::canonicalize(&full).unwrap_or_else(|_| full.clone());
        if self.include_chain.contains(&canon) {
            return Err(ConfigError::at(
                &pos,
                format!("error parsing include file '{path}': include cycle"),
            ));
        }
        let map = match parse_file_at_depth(&full, self.include_depth + 1, &self.include_chain) {
            Ok(m) => m,
            Err(e) if e.line == 0 => {
                return Err(ConfigError::at(
                    &pos,
                    format!("error parsing include file '{path}', {}", e.message),
                ))
            }
            Err(e) => return Err(e),
        };
        let scope = self
            .scopes
            .last_mut()
            .expect("scope stack is never empty while parsing");
        for e in map.entries {
            scope.insert(e);
        }
        Ok(())
    }

    fn parse_value(&mut self) -> PResult<Node> {
        let pos = self.pos();
        let value = match self.peek() {
            None => return self.err("Expected value but found EOF"),
            Some(c) if is_nl(c) => return self.err("Expected value but found new line"),
            Some('[') => {
                self.bump();
                self.enter()?;
                let v = self.parse_array()?;
                self.nesting -= 1;
                v
            }
            Some('{') => {
                self.bump();
                self.enter()?;
                let v = self.parse_map()?;
                self.nesting -= 1;
                v
            }
            Some('\'') => {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(ConfigError::at(
                                &pos,
                                "unterminated quoted string (unexpected EOF)",
                            ))
                        }
                        Some('\'') => break,
                        Some(c) => s.push(c),
                    }
                }
                Value::String(s)
            }
            Some('"') => {
                self.bump();
                Value::String(self.parse_dq_string(&pos)?)
            }
            Some('(') => {
                self.bump();
                Value::String(self.parse_block(&pos)?)
            }
            Some('-') => {
                self.bump();
                match self.peek() {
                    Some(c) if c.is_ascii_digit() => {}
                    Some('.') => return self.err("Floats must start with a digit, not '.'"),
                    c => return self.err(format!("Expected a digit but got '{}'", show(c))),
                }
                self.parse_number(&pos, true)?
            }
            Some('.') => return self.err("Floats must start with a digit"),
            Some(c) if c.is_ascii_digit() => self.parse_number(&pos, false)?,
            Some(c @ (';' | ',' | ']' | '}')) => {
                return self.err(format!("Expected a value but got '{c}'"))
            }
            Some(_) => return self.parse_bare(&pos, String::new(), false),
        };
        Ok(Node { value, pos })
    }

    fn parse_array(&mut self) -> PResult<Value> {
        let mut items = Vec::new();
        loop {
            self.skip_all();
            match self.peek() {
                None => return self.err("Unexpected EOF processing array"),
                Some(']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                Some(',') => return self.err("Unexpected array value terminator ','"),
                _ => {}
            }
            items.push(self.parse_value()?);
            self.skip_ws();
            match self.peek() {
                None => return self.err("Unexpected EOF processing array"),
                Some(']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                Some(c) if c == ',' || is_nl(c) => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                c => {
                    return self.err(format!(
                        "Expected an array value terminator ',' or an array terminator ']', but got '{}' instead",
                        show(c)
                    ))
                }
            }
        }
    }

    fn parse_map(&mut self) -> PResult<Value> {
        self.scopes.push(Map::new());
        loop {
            self.skip_all();
            match self.peek() {
                None => return self.err("Unexpected EOF processing map"),
                Some('}') => {
                    self.bump();
                    break;
                }
                Some(';') | Some(',') => {
                    self.bump();
                    continue;
                }
                _ => {}
            }
            self.parse_entry()?;
            self.value_end(true, false)?;
        }
        Ok(Value::Map(self.scopes.pop().unwrap_or_default()))
    }

    /// Reads one escape after a backslash into `out`.
    fn parse_escape(&mut self, out: &mut Vec<u8>) -> PResult<()> {
        let epos = self.pos();
        let c = self.bump();
        let simple = match c {
            Some('t') => Some('\t'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('"') => Some('"'),
            Some('\\') => Some('\\'),
            _ => None,
        };
        if let Some(s) = simple {
            let mut buf = [0u8; 4];
            out.extend_from_slice(s.encode_utf8(&mut buf).as_bytes());
            return Ok(());
        }
        match c {
            Some('x') => {
                let mut h = String::new();
                for _ in 0..2 {
                    match self.bump() {
                        Some(c) if !is_nl(c) => h.push(c),
                        _ => {
                            return Err(ConfigError::at(
                                &epos,
                                "Expected two hexadecimal digits after '\\x', but hit end of line",
                            ))
                        }
                    }
                }
                let b = u8::from_str_radix(&h, 16).map_err(|_| {
                    ConfigError::at(
                        &epos,
                        format!("Expected two hexadecimal digits after '\\x', but got '{h}'"),
                    )
                })?;
                out.push(b);
                Ok(())
            }
            Some('u') => {
                let mut h = String::new();
                for _ in 0..4 {
                    match self.bump() {
                        Some(c) if c.is_ascii_hexdigit() => h.push(c),
                        _ => {
                            return Err(ConfigError::at(
                                &epos,
                                "Expected four hexadecimal digits after '\\u'",
                            ))
                        }
                    }
                }
                let ch = u32::from_str_radix(&h, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| {
                        ConfigError::at(&epos, format!("'\\u{h}' is not a valid character"))
                    })?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                Ok(())
            }
            c => Err(ConfigError::at(
                &epos,
                format!(
                    "Invalid escape character '{}'. Only the following escape characters are allowed: \\xXX, \\uXXXX, \\t, \\n, \\r, \\\", \\\\",
                    show(c)
                ),
            )),
        }
    }

    fn parse_dq_string(&mut self, start: &Pos) -> PResult<String> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.bump() {
                None => {
                    return Err(ConfigError::at(
                        start,
                        "unterminated quoted string (unexpected EOF)",
                    ))
                }
                Some('"') => break,
                Some('\\') => self.parse_escape(&mut out)?,
                Some(c) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// `( … )`: raw text up to a `)` alone on its line.
    fn parse_block(&mut self, start: &Pos) -> PResult<String> {
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(ConfigError::at(start, "Unexpected EOF processing block")),
                Some('\n') if self.peek() == Some(')') => {
                    let after = self.peek_at(1);
                    if after.is_none() || after == Some('\n') || after == Some('\r') {
                        s.push('\n');
                        self.bump();
                        return Ok(s);
                    }
                    s.push('\n');
                }
                Some(c) => s.push(c),
            }
        }
    }

    /// A value starting with a digit (or `-` and a digit, already consumed): an
    /// integer (maybe with a size suffix), a float, a datetime, an IP address, or
    /// failing those an unquoted string.
    fn parse_number(&mut self, pos: &Pos, neg: bool) -> PResult<Value> {
        let start = if neg { self.i - 1 } else { self.i };
        let mut ndigits = 0;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            ndigits += 1;
        }
        let text = |p: &Parser| -> String { p.src[start..p.i].iter().collect() };
        match self.peek() {
            Some('-') if !neg => {
                if ndigits != 4 {
                    return self.err("All ISO8601 dates must be in full Zulu form");
                }
                self.bump();
                for f in "00-00T00:00:00Z".chars() {
                    let c = self.peek();
                    let ok = match (f, c) {
                        ('0', Some(c)) => c.is_ascii_digit(),
                        (f, Some(c)) => f == c,
                        _ => false,
                    };
                    if !ok {
                        return self.err(format!(
                            "Expected {} in ISO8601 datetime, but found '{}' instead",
                            if f == '0' {
                                "digit".to_string()
                            } else {
                                format!("'{f}'")
                            },
                            show(c)
                        ));
                    }
                    self.bump();
                }
                Ok(Value::Datetime(text(self)))
            }
            Some('.') => {
                self.bump();
                if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return self.err(format!(
                        "Floats must have a digit after the '.', but got '{}' instead",
                        show(self.peek())
                    ));
                }
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
                if self.peek() == Some('.') {
                    // An IP address, maybe with a port: a string.
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
                    {
                        self.bump();
                    }
                    return Ok(Value::String(text(self)));
                }
                let t = text(self);
                t.parse::<f64>()
                    .map(Value::Float)
                    .map_err(|_| ConfigError::at(pos, format!("expected float, but got '{t}'")))
            }
            Some(c) if "kKmMgGtTpPeE".contains(c) => {
                let digits_end = self.i;
                self.bump();
                while self.peek().is_some_and(|c| "bBiI".contains(c)) {
                    self.bump();
                }
                if !ends_bare(self.peek()) {
                    if neg {
                        return Ok(Value::Integer(self.int(pos, start, digits_end, "")?));
                    }
                    return self.parse_bare_value(pos, start);
                }
                let suffix: String = self.src[digits_end..self.i].iter().collect();
                Ok(Value::Integer(self.int(pos, start, digits_end, &suffix)?))
            }
            c if ends_bare(c) || neg => Ok(Value::Integer(self.int(pos, start, self.i, "")?)),
            _ => self.parse_bare_value(pos, start),
        }
    }

    fn parse_bare_value(&mut self, pos: &Pos, start: usize) -> PResult<Value> {
        let prefix: String = self.src[start..self.i].iter().collect();
        Ok(self.parse_bare(pos, prefix, true)?.value)
    }

    fn int(&self, pos: &Pos, start: usize, digits_end: usize, suffix: &str) -> PResult<i64> {
        let digits: String = self.src[start..digits_end].iter().collect();
        let full = format!("{digits}{suffix}");
        let n: i64 = digits
            .parse()
            .map_err(|_| ConfigError::at(pos, format!("integer '{full}' is out of the range")))?;
        let mult: i64 = match suffix.to_ascii_lowercase().as_str() {
            "" => 1,
            "k" => 1_000,
            "kb" | "ki" | "kib" => 1 << 10,
            "m" => 1_000_000,
            "mb" | "mi" | "mib" => 1 << 20,
            "g" => 1_000_000_000,
            "gb" | "gi" | "gib" => 1 << 30,
            "t" => 1_000_000_000_000,
            "tb" | "ti" | "tib" => 1 << 40,
            "p" => 1_000_000_000_000_000,
            "pb" | "pi" | "pib" => 1 << 50,
            "e" => 1_000_000_000_000_000_000,
            "eb" | "ei" | "eib" => 1 << 60,
            _ => {
                return Err(ConfigError::at(
                    pos,
                    format!("invalid size suffix in '{full}'"),
                ))
            }
        };
        n.checked_mul(mult)
            .ok_or_else(|| ConfigError::at(pos, format!("integer '{full}' is out of the range")))
    }

    /// An unquoted value: a string, boolean or `$variable`. `prefix` holds text
    /// already consumed (the digits of what looked like a number: then a string).
    fn parse_bare(&mut self, pos: &Pos, prefix: String, from_number: bool) -> PResult<Node> {
        let mut out: Vec<u8> = prefix.into_bytes();
        let mut escaped = false;
        while !ends_bare(self.peek()) {
            let c = self.bump().unwrap_or_default();
            if c == '\\' {
                escaped = true;
                self.parse_escape(&mut out)?;
            } else {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        let s = String::from_utf8_lossy(&out).into_owned();
        let node = |value| Node {
            value,
            pos: pos.clone(),
        };
        if escaped || from_number {
            return Ok(node(Value::String(s)));
        }
        if let Some(b) = is_bool_word(&s) {
            return Ok(node(Value::Bool(b)));
        }
        if let Some(name) = s.strip_prefix('$') {
            return self.lookup_variable(pos, name);
        }
        Ok(node(Value::String(s)))
    }

    fn lookup_variable(&mut self, pos: &Pos, name: &str) -> PResult<Node> {
        // Unquoted bcrypt hashes look like variables; they are strings.
        if ["2a$", "2b$", "2y$"].iter().any(|p| name.starts_with(p)) {
            return Ok(Node {
                value: Value::String(format!("${name}")),
                pos: pos.clone(),
            });
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(e) = scope.entries.iter_mut().find(|e| e.key == name) {
                e.used_as_variable = true;
                return Ok(Node {
                    value: e.node.value.clone(),
                    pos: pos.clone(),
                });
            }
        }
        if self.env_refs.iter().any(|r| r == name) {
            return Err(ConfigError::at(
                pos,
                format!("variable reference for '{name}' could not be parsed: variable reference cycle for '{name}'"),
            ));
        }
        let Some(val) = (if name.is_empty() || name.contains('=') || name.contains('\0') {
            None
        } else {
            std::env::var_os(name)
        }) else {
            return Err(ConfigError::at(
                pos,
                format!("variable reference for '{name}' can not be found"),
            ));
        };
        let val = val.to_string_lossy().into_owned();
        if val.is_empty() {
            return Ok(Node {
                value: Value::String(String::new()),
                pos: pos.clone(),
            });
        }
        let mut refs = self.env_refs.clone();
        refs.push(name.to_string());
        let mut sub = Parser::new(
            &format!("pk={val}"),
            &self.file,
            &self.dir.join("env"),
            self.include_depth,
            self.include_chain.clone(),
            refs,
        );
        let map = sub.parse_document().map_err(|e| {
            ConfigError::at(
                pos,
                format!(
                    "variable reference for '{name}' could not be parsed: {}",
                    e.message
                ),
            )
        })?;
        match map.get("pk") {
            Some(e) => Ok(Node {
                value: e.node.value.clone(),
                pos: pos.clone(),
            }),
            None => Err(ConfigError::at(
                pos,
                format!("variable reference for '{name}' could not be parsed"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Map {
        parse_str(src, "t.conf").unwrap_or_else(|e| panic!("{e}"))
    }

    fn val(src: &str) -> Value {
        parse(src).get("k").expect("key k").node.value.clone()
    }

    fn err(src: &str) -> String {
        parse_str(src, "t.conf")
            .expect_err("should fail")
            .to_string()
    }

    fn s(x: &str) -> Value {
        Value::String(x.to_string())
    }

    /// A unique scratch directory, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "natrium-conf-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).unwrap();
            }
            std::fs::write(&p, text).unwrap();
            p
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn separators() {
        for src in [
            "k = 1",
            "k: 1",
            "k 1",
            "k=1;",
            "k=1,",
            "k:1 ",
            "  k   =   1  # c",
            "k\t1",
            "k =1 // c",
            "\n\nk\n= 1\n",
            "k 1;",
            "{ k: 1 }",
            "{\"k\": 1}",
        ] {
            assert_eq!(val(src), Value::Integer(1), "{src:?}");
        }
        let m = parse("a = x\r\nm {\r\n b = [1,\r\n 2]\r\n}\r\nc = 3\r\n");
        assert_eq!(m.get("a").unwrap().node.value, s("x"));
        assert_eq!(m.get("c").unwrap().node.pos.line, 6);
        let m = parse("a=1; b=2, c: 3\nd 4");
        let got: Vec<_> = m
            .iter()
            .map(|e| (e.key.as_str(), e.node.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Value::Integer(1)),
                ("b", Value::Integer(2)),
                ("c", Value::Integer(3)),
                ("d", Value::Integer(4))
            ]
        );
    }

    #[test]
    fn maps_and_arrays() {
        let m = parse(
            "outer {\n  inner = { x: 1, y: [a, b\n c] }\n  z: 2\n}\narr = [\n 1,\n 'two' # c\n {n: 3}\n [4]\n]\nempty {}\nea []\n",
        );
        let Value::Map(outer) = &m.get("outer").unwrap().node.value else {
            panic!()
        };
        let Value::Map(inner) = &outer.get("inner").unwrap().node.value else {
            panic!()
        };
        assert_eq!(inner.get("x").unwrap().node.value, Value::Integer(1));
        let Value::Array(y) = &inner.get("y").unwrap().node.value else {
            panic!()
        };
        let ys: Vec<_> = y.iter().map(|n| n.value.clone()).collect();
        assert_eq!(ys, vec![s("a"), s("b"), s("c")]);
        assert_eq!(outer.get("z").unwrap().node.value, Value::Integer(2));
        let Value::Array(arr) = &m.get("arr").unwrap().node.value else {
            panic!()
        };
        assert_eq!(arr.len(), 4);
        assert_eq!(arr[1].value, s("two"));
        assert!(
            matches!(&arr[2].value, Value::Map(mm) if mm.get("n").unwrap().node.value == Value::Integer(3))
        );
        assert_eq!(ints(&arr[3].value), vec![4]);
        assert_eq!(m.get("empty").unwrap().node.value, Value::Map(Map::new()));
        assert_eq!(m.get("ea").unwrap().node.value, Value::Array(vec![]));
        // trailing commas, numbers at the end of arrays
        assert_eq!(ints(&val("k = [1, 2,]")), vec![1, 2]);
    }

    fn ints(v: &Value) -> Vec<i64> {
        match v {
            Value::Array(a) => a
                .iter()
                .map(|n| match n.value {
                    Value::Integer(i) => i,
                    _ => panic!(),
                })
                .collect(),
            _ => panic!(),
        }
    }

    #[test]
    fn arrays_of_numbers() {
        assert_eq!(ints(&val("k = [1, 2, 3]")), vec![1, 2, 3]);
        assert_eq!(ints(&val("k = [1,2,3]")), vec![1, 2, 3]);
        assert_eq!(ints(&val("k = [1k,\n2kb\n]")), vec![1000, 2048]);
    }

    #[test]
    fn comments() {
        let m = parse(
            "# top\n// also\na = 1 # trailing\nb = x // trailing\nc { # in map\n d: 2 // x\n}\n",
        );
        assert_eq!(m.get("a").unwrap().node.value, Value::Integer(1));
        assert_eq!(m.get("b").unwrap().node.value, s("x"));
        assert_eq!(m.len(), 3);
        // '#' inside a bare word is part of it
        assert_eq!(val("k = a#b"), s("a#b"));
    }

    #[test]
    fn strings() {
        assert_eq!(
            val(r#"k = "a\tb\nc\r\"q\"\\ \x41\u00e9""#),
            s("a\tb\nc\r\"q\"\\ Aé")
        );
        assert_eq!(val(r#"k = 'raw \n $X'"#), s("raw \\n $X"));
        assert_eq!(val("k = \"$X\""), s("$X"));
        assert_eq!(val("k = nats://localhost:4222"), s("nats://localhost:4222"));
        assert_eq!(val("k = /var/lib/nats"), s("/var/lib/nats"));
        assert_eq!(val("k = 127.0.0.1"), s("127.0.0.1"));
        assert_eq!(val("k = 1.2.3.4:4222"), s("1.2.3.4:4222"));
        assert_eq!(val("k = 4222abc"), s("4222abc"));
        assert_eq!(val("k = 1h30m"), s("1h30m"));
        assert_eq!(val("k = 500ms"), s("500ms"));
        assert_eq!(val("k = 30s"), s("30s"));
        assert_eq!(val("k = \"\""), s(""));
        assert_eq!(
            val("k = $2a$11$3kIDaCxw.Glsl1.u5nKa6eUnNDLV5HV9tIuUp7EHhMt6Nm9myW1aS"),
            s("$2a$11$3kIDaCxw.Glsl1.u5nKa6eUnNDLV5HV9tIuUp7EHhMt6Nm9myW1aS")
        );
        assert_eq!(
            val("k = (\nline 1\n  line 2\n)\n"),
            s("\nline 1\n  line 2\n")
        );
        assert_eq!(
            val("k = 2016-05-04T18:53:41Z"),
            Value::Datetime("2016-05-04T18:53:41Z".into())
        );
    }

    #[test]
    fn quoted_keys() {
        let m = parse("\"a b\" = 1\n'c:d': 2");
        assert_eq!(m.get("a b").unwrap().node.value, Value::Integer(1));
        assert_eq!(m.get("c:d").unwrap().node.value, Value::Integer(2));
    }

    #[test]
    fn numbers_and_units() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("123", 123),
            ("-1", -1),
            ("-123", -123),
            ("1k", 1000),
            ("1K", 1000),
            ("1kb", 1024),
            ("1KB", 1024),
            ("1ki", 1024),
            ("1KiB", 1024),
            ("2m", 2_000_000),
            ("1mb", 1 << 20),
            ("1MB", 1 << 20),
            ("1Mi", 1 << 20),
            ("1mib", 1 << 20),
            ("1g", 1_000_000_000),
            ("1Gb", 1 << 30),
            ("4GB", 4 << 30),
            ("1gib", 1 << 30),
            ("1t", 1_000_000_000_000),
            ("1tb", 1 << 40),
            ("1p", 1_000_000_000_000_000),
            ("1pb", 1 << 50),
            ("1e", 1_000_000_000_000_000_000),
            ("1eb", 1 << 60),
            ("-1m", -1_000_000),
            ("-1GB", -(1 << 30)),
        ];
        for (src, want) in cases {
            assert_eq!(val(&format!("k = {src}")), Value::Integer(*want), "{src}");
            assert_eq!(val(&format!("k = {src}\n")), Value::Integer(*want), "{src}");
        }
        assert_eq!(val("k = 2.5"), Value::Float(2.5));
        assert_eq!(val("k = -0.5"), Value::Float(-0.5));
        assert_eq!(val("k = '1k'"), s("1k"));
        assert!(err("k = 99999999999999999999").contains("out of the range"));
        assert!(err("k = 16eb").contains("out of the range"));
        assert!(err("k = 1kbb").contains("invalid size suffix"));
    }

    #[test]
    fn booleans() {
        for (w, b) in [
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("yes", true),
            ("YES", true),
            ("on", true),
            ("On", true),
            ("false", false),
            ("FALSE", false),
            ("no", false),
            ("NO", false),
            ("off", false),
            ("OFF", false),
        ] {
            assert_eq!(val(&format!("k = {w}")), Value::Bool(b), "{w}");
        }
        assert_eq!(val("k = \"true\""), s("true"));
        assert_eq!(val("k = truely"), s("truely"));
    }

    #[test]
    fn variables_scoping() {
        let m = parse(
            "A = outer\nB = top\nblock {\n  A = inner\n  x = $A\n  y = $B\n  deep { z = $A }\n}\nw = $A\nn = 42\nm = $n\n",
        );
        let Value::Map(b) = &m.get("block").unwrap().node.value else {
            panic!()
        };
        assert_eq!(b.get("x").unwrap().node.value, s("inner"));
        assert_eq!(b.get("y").unwrap().node.value, s("top"));
        let Value::Map(d) = &b.get("deep").unwrap().node.value else {
            panic!()
        };
        assert_eq!(d.get("z").unwrap().node.value, s("inner"));
        assert_eq!(m.get("w").unwrap().node.value, s("outer"));
        assert_eq!(m.get("m").unwrap().node.value, Value::Integer(42));
        // used definitions are marked, the others not
        assert!(m.get("A").unwrap().used_as_variable);
        assert!(m.get("n").unwrap().used_as_variable);
        assert!(!m.get("w").unwrap().used_as_variable);
        // maps as variables, referenced inside arrays
        let m = parse("P = { publish: a }\nusers = [ {user: x, permissions: $P} ]");
        let Value::Array(u) = &m.get("users").unwrap().node.value else {
            panic!()
        };
        let Value::Map(um) = &u[0].value else {
            panic!()
        };
        assert!(matches!(
            um.get("permissions").unwrap().node.value,
            Value::Map(_)
        ));
    }

    #[test]
    fn variables_env() {
        let name = format!("NATRIUM_CONF_TEST_{}", std::process::id());
        std::env::set_var(&name, "4222");
        std::env::set_var(format!("{name}_S"), "hello world");
        std::env::set_var(format!("{name}_LOOP"), format!("${name}_LOOP"));
        let m = parse(&format!("a = ${name}\nb = \"${name}\"\n"));
        assert_eq!(m.get("a").unwrap().node.value, Value::Integer(4222));
        assert_eq!(m.get("b").unwrap().node.value, s(&format!("${name}")));
        // a config variable shadows the environment
        let m = parse(&format!("{name} = 7\na = ${name}\n"));
        assert_eq!(m.get("a").unwrap().node.value, Value::Integer(7));
        let e = err(&format!("a = ${name}_S"));
        assert!(e.starts_with("t.conf:1:5: variable reference"), "{e}");
        let e = err(&format!("a = ${name}_LOOP"));
        assert!(e.contains("cycle"), "{e}");
        std::env::remove_var(&name);
        std::env::remove_var(format!("{name}_S"));
        std::env::remove_var(format!("{name}_LOOP"));
    }

    #[test]
    fn error_positions() {
        assert_eq!(
            err("a = 1\nb = \"never closed\n"),
            "t.conf:2:5: unterminated quoted string (unexpected EOF)"
        );
        assert_eq!(
            err("a = 1\n  b = 'never closed"),
            "t.conf:2:7: unterminated quoted string (unexpected EOF)"
        );
        assert_eq!(
            err("x {\n  y = $NATRIUM_SURELY_UNDEFINED_VAR_XYZ\n}"),
            "t.conf:2:7: variable reference for 'NATRIUM_SURELY_UNDEFINED_VAR_XYZ' can not be found"
        );
        assert_eq!(
            err("a = 1 2"),
            "t.conf:1:7: Expected a top-level value to end with a new line, comment or EOF, but got '2' instead"
        );
        assert_eq!(
            err("m { a = 1 ] }"),
            "t.conf:1:11: Expected a map value terminator ',' or a map terminator '}', but got ']' instead"
        );
        assert_eq!(
            err("a = [1, 2"),
            "t.conf:1:10: Unexpected EOF processing array"
        );
        assert_eq!(
            err("m {\n a = 1\n"),
            "t.conf:3:1: Unexpected EOF processing map"
        );
        assert_eq!(
            err("a =\nb = 1"),
            "t.conf:1:4: Expected value but found new line"
        );
        assert_eq!(err("= 1"), "t.conf:1:1: Unexpected key separator '='");
        assert!(err("k = \"\\q\"").starts_with("t.conf:1:7: Invalid escape character 'q'"));
        assert!(err("k = 12-34").contains("ISO8601"));
        assert!(err("k = .5").contains("Floats must start with a digit"));
        assert!(err("k").contains("Expected value but found EOF"));
        assert!(err("k = [,]").contains("Unexpected array value terminator"));
        assert!(err("{ a = 1").contains("never closed"));
    }

    #[test]
    fn includes() {
        let dir = TempDir::new("inc");
        dir.write("sub/users.conf", "user = bob\npassword = 'secret'\n");
        dir.write("sub/nested.conf", "include ./users.conf\nextra: 1\n");
        dir.write("vars.conf", "PORT = 4333\n");
        let main = dir.write(
            "main.conf",
            "include 'vars.conf'\nport = $PORT\nauthorization {\n  include \"sub/nested.conf\"\n  timeout: 2\n}\nINCLUDE sub/users.conf;\n",
        );
        let m = parse_file(&main).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.get("port").unwrap().node.value, Value::Integer(4333));
        assert_eq!(m.get("user").unwrap().node.value, s("bob"));
        let Value::Map(a) = &m.get("authorization").unwrap().node.value else {
            panic!()
        };
        assert_eq!(a.get("user").unwrap().node.value, s("bob"));
        assert_eq!(a.get("password").unwrap().node.value, s("secret"));
        assert_eq!(a.get("extra").unwrap().node.value, Value::Integer(1));
        assert_eq!(a.get("timeout").unwrap().node.value, Value::Integer(2));
        // positions in included files name the included file
        assert!(a.get("user").unwrap().key_pos.file.ends_with("users.conf"));

        // errors inside an include point into it
        dir.write("bad.conf", "ok = 1\nbroken = \"x\n");
        let top = dir.write("top.conf", "include bad.conf\n");
        let e = parse_file(&top).unwrap_err();
        assert!(
            e.file.ends_with("bad.conf") && e.line == 2 && e.col == 10,
            "{e}"
        );
        // missing include
        let top = dir.write("top2.conf", "a = 1\ninclude nope.conf\n");
        let e = parse_file(&top).unwrap_err().to_string();
        assert!(
            e.contains("top2.conf:2:9: error parsing include file 'nope.conf'"),
            "{e}"
        );
        // cycles are refused
        dir.write("c1.conf", "include c2.conf\n");
        let c2 = dir.write("c2.conf", "include c1.conf\n");
        assert!(parse_file(&c2)
            .unwrap_err()
            .to_string()
            .contains("include cycle"));
        let selfinc = dir.write("self.conf", "include self.conf\n");
        assert!(parse_file(&selfinc)
            .unwrap_err()
            .to_string()
            .contains("include cycle"));
        // depth is bounded
        for i in 0..15 {
            dir.write(&format!("d{i}.conf"), &format!("include d{}.conf\n", i + 1));
        }
        dir.write("d15.conf", "x = 1\n");
        let e = parse_file(&dir.0.join("d0.conf")).unwrap_err().to_string();
        assert!(e.contains("nest deeper"), "{e}");
        // bad include syntax
        assert!(err("include [a]").contains("start of an array"));
        assert!(err("include\n").contains("new line"));
    }

    #[test]
    fn positions_recorded() {
        let m = parse("a = 1\n  bb: \"x\"\n");
        let b = m.get("bb").unwrap();
        assert_eq!((b.key_pos.line, b.key_pos.col), (2, 3));
        assert_eq!((b.node.pos.line, b.node.pos.col), (2, 7));
    }

    #[test]
    fn later_key_wins() {
        let m = parse("a = 1\na = 2\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m.get("a").unwrap().node.value, Value::Integer(2));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!("k = {}", "[".repeat(10_000));
        assert!(err(&src).contains("nest deeper"));
        let src = format!("k = {}", "{a ".repeat(10_000));
        assert!(err(&src).contains("nest deeper"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(src in "\\PC{0,200}") {
            let _ = parse_str(&src, "p.conf");
        }

        #[test]
        fn never_panics_on_config_alphabet(src in "[a-z0-9 =:{}\\[\\],;#/\"'$\\\\.\\n\\t()-kKmMbB]{0,200}") {
            let _ = parse_str(&src, "p.conf");
        }
    }
}
