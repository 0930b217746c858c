//! Limits at the door: what every request must satisfy before any handler sees it.
//!
//! [`HttpLimits`] holds the limits (request body size, JSON nesting depth, and the connection
//! timeouts the server's connection layer applies). [`Door`] is the middleware that enforces
//! the per-request ones, in one pass:
//!
//! - a body larger than the limit is `413 payload_too_large`: refused from `Content-Length`
//!   before anything is read, and for bodies of unannounced length (chunked) by stopping the read
//!   at the limit, so no more than the limit is ever buffered;
//! - a JSON body nested deeper than the limit is `400 json_too_deep`, with the pointer of the
//!   value that crossed it;
//! - text PostgreSQL cannot store (NUL, written `\u0000` in JSON, or a lone UTF-16 surrogate
//!   escape such as `\ud800`) in any JSON string or object key, in a query parameter or in a path
//!   segment is `422 invalid_field` with its pointer, on every endpoint, instead of failing in
//!   the database. A query parameter holding a JSON array or object (filters such as `metadata`
//!   take one) is held to the same depth and text rules as a body.
//!
//! The JSON checks are one linear scan over the raw bytes ([`scan_json`]) that tracks where it
//! is as a stack of object keys (ranges of the input) and array indices, so nothing is decoded or
//! copied unless a problem must be reported. A body that is not valid JSON is passed on
//! untouched: the endpoint's own parser answers it with its usual `400`.

use std::fmt::Write as _;
use std::ops::Range;
use std::time::Duration;

use poem::error::ReadBodyError;
use poem::http::{StatusCode, Uri, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

use crate::error::ErrorBody;

/// Limits every request and connection is held to. The defaults are the documented ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects accepted in a JSON body (`[]` and `{}` are depth 1).
    pub max_json_depth: usize,
    /// Time a client has to send a request's headers once it starts (or, for a connection's
    /// first request, once it connects).
    pub header_read_timeout: Duration,
    /// Time an idle keep-alive connection is kept open waiting for its next request.
    pub keep_alive_timeout: Duration,
}

impl HttpLimits {
    /// The default largest body: 2 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
    /// The default deepest JSON nesting.
    pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
    /// The default header read timeout, in seconds.
    pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
    /// The default idle keep-alive timeout, in seconds.
    pub const DEFAULT_KEEP_ALIVE_TIMEOUT_SECS: u64 = 60;

    /// How the limits read in the API's description.
    pub fn describe(&self) -> String {
        format!(
            "Limits: request bodies of at most {body} bytes (larger ones answer `413 \
             payload_too_large`); JSON nested at most {depth} levels deep (deeper answers `400 \
             json_too_deep`); NUL characters and lone UTF-16 surrogates are refused in every \
             JSON string and key, query parameter and path segment (`422 invalid_field`); a \
             connection must send its request headers within {header} seconds, and an idle \
             keep-alive connection is closed after {idle} seconds.",
            body = self.max_body_bytes,
            depth = self.max_json_depth,
            header = self.header_read_timeout.as_secs(),
            idle = self.keep_alive_timeout.as_secs(),
        )
    }
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_json_depth: Self::DEFAULT_MAX_JSON_DEPTH,
            header_read_timeout: Duration::from_secs(Self::DEFAULT_HEADER_READ_TIMEOUT_SECS),
            keep_alive_timeout: Duration::from_secs(Self::DEFAULT_KEEP_ALIVE_TIMEOUT_SECS),
        }
    }
}

/// The middleware enforcing [`HttpLimits`] on each request's URI and body.
pub struct Door {
    limits: HttpLimits,
}

impl Door {
    /// The middleware for `limits`.
    pub fn new(limits: HttpLimits) -> Self {
        Self { limits }
    }
}

impl<E: Endpoint> Middleware<E> for Door {
    type Output = DoorEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        DoorEndpoint {
            inner,
            limits: self.limits,
        }
    }
}

/// An endpoint behind the [`Door`].
pub struct DoorEndpoint<E> {
    inner: E,
    limits: HttpLimits,
}

impl<E: Endpoint> Endpoint for DoorEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        if let Some(refusal) = check_uri(req.uri(), self.limits.max_json_depth) {
            return Ok(refusal);
        }
        let limit = self.limits.max_body_bytes;
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        if announced.is_some_and(|length| length > limit as u64) {
            return Ok(too_large(limit));
        }
        let body = req.take_body();
        let bytes = match body.into_bytes_limit(limit).await {
            Ok(bytes) => bytes,
            Err(ReadBodyError::PayloadTooLarge) => return Ok(too_large(limit)),
            Err(err) => return Err(err.into()),
        };
        if !bytes.is_empty() && is_json(&req) {
            match scan_json(&bytes, self.limits.max_json_depth) {
                Scan::Clean | Scan::NotJson => {}
                Scan::TooDeep { pointer } => {
                    return Ok(too_deep(&pointer, self.limits.max_json_depth));
                }
                Scan::Unstorable { pointer, problem } => {
                    return Ok(unstorable(&pointer, problem));
                }
            }
        }
        req.set_body(bytes);
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// `413` saying the limit. The connection is closed after it: the rest of the body is not read.
fn too_large(limit: usize) -> Response {
    let mut response = ErrorBody::new(
        "payload_too_large",
        format!("The request body exceeds the limit of {limit} bytes; send a smaller one."),
    )
    .into_response_with(StatusCode::PAYLOAD_TOO_LARGE);
    response.headers_mut().insert(
        header::CONNECTION,
        poem::http::HeaderValue::from_static("close"),
    );
    response
}

/// `400 json_too_deep` at `pointer`.
fn too_deep(pointer: &str, max_depth: usize) -> Response {
    ErrorBody::at(
        "json_too_deep",
        format!("This JSON is nested more than {max_depth} levels deep at this point; flatten it."),
        pointer,
    )
    .into_response_with(StatusCode::BAD_REQUEST)
}

fn unstorable(pointer: &str, problem: TextProblem) -> Response {
    let what = match problem {
        TextProblem::Nul => "a NUL character (\\u0000)",
        TextProblem::LoneSurrogate => "a lone UTF-16 surrogate escape (such as \\ud800)",
    };
    ErrorBody::at(
        "invalid_field",
        format!("This text contains {what}, which cannot be stored; remove it."),
        pointer,
    )
    .into_response_with(StatusCode::UNPROCESSABLE_ENTITY)
}

/// Whether the body is declared JSON (`application/json` or a `+json` type). Other bodies are
/// the endpoints' to refuse.
fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
        .unwrap_or(false)
}

/// A refusal of the URI: a NUL in a path segment or a query parameter, or a query parameter
/// holding a JSON array or object (filters such as `metadata` take one) that is too deep or
/// holds unstorable text.
fn check_uri(uri: &Uri, max_depth: usize) -> Option<Response> {
    match uri_problem(uri, max_depth)? {
        UriProblem::Text(pointer, problem) => Some(unstorable(&pointer, problem)),
        UriProblem::TooDeep(pointer) => Some(too_deep(&pointer, max_depth)),
    }
}

/// What is wrong with a URI, and where (`/path/<index>` for a path segment, counted from 0;
/// `/query/<name>` for a query parameter, followed by the pointer inside its JSON value).
#[derive(Debug, PartialEq, Eq)]
enum UriProblem {
    Text(String, TextProblem),
    TooDeep(String),
}

fn uri_problem(uri: &Uri, max_depth: usize) -> Option<UriProblem> {
    // A URI cannot hold a raw NUL byte: `%00` is the only way to write one.
    let has_nul = |text: &str| text.contains("%00");
    let path = uri.path();
    if has_nul(path) {
        let index = path
            .trim_start_matches('/')
            .split('/')
            .position(has_nul)
            .unwrap_or_default();
        return Some(UriProblem::Text(format!("/path/{index}"), TextProblem::Nul));
    }
    for pair in uri.query()?.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let mut pointer = String::from("/query/");
        escape_token(&percent_decode(name), &mut pointer);
        if has_nul(pair) {
            return Some(UriProblem::Text(pointer, TextProblem::Nul));
        }
        let value = percent_decode(value);
        if value.trim_start().starts_with(['{', '[']) {
            match scan_json(value.as_bytes(), max_depth) {
                Scan::Clean | Scan::NotJson => {}
                Scan::TooDeep { pointer: inner } => {
                    return Some(UriProblem::TooDeep(pointer + &inner));
                }
                Scan::Unstorable {
                    pointer: inner,
                    problem,
                } => return Some(UriProblem::Text(pointer + &inner, problem)),
            }
        }
    }
    None
}

/// Decodes a query component (`%XX` and `+`), replacing what is not UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high << 4) | low);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Appends `token` to a JSON pointer, escaped (RFC 6901: `~` as `~0`, `/` as `~1`).
fn escape_token(token: &str, pointer: &mut String) {
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Text PostgreSQL cannot store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextProblem {
    /// `\u0000`.
    Nul,
    /// A high surrogate escape not followed by a low one, or a low one alone.
    LoneSurrogate,
}

/// What [`scan_json`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// Valid JSON within the depth limit, every string storable.
    Clean,
    /// Not valid JSON (or not UTF-8): left to the endpoint's parser.
    NotJson,
    /// An array or object deeper than the limit starts at `pointer`.
    TooDeep {
        /// Where the limit was crossed.
        pointer: String,
    },
    /// Valid JSON whose first unstorable string (or key) is at `pointer`.
    Unstorable {
        /// The string, or for a key the member it names.
        pointer: String,
        /// What is wrong with it.
        problem: TextProblem,
    },
}

/// Where the scanner is inside a container.
enum Frame {
    /// In an object, at the member whose key is this range of the input (between the quotes,
    /// still escaped).
    Object(Range<usize>),
    /// In an array, at this index.
    Array(usize),
}

/// Checks a JSON document in one pass: syntax, nesting depth (at most `max_depth` levels) and
/// storable text. Time and memory are linear in the input; the depth check stops the scan as
/// soon as the limit is crossed.
pub fn scan_json(input: &[u8], max_depth: usize) -> Scan {
    if std::str::from_utf8(input).is_err() {
        return Scan::NotJson;
    }
    let mut scanner = Scanner {
        input,
        pos: 0,
        stack: Vec::new(),
        max_depth,
        first_problem: None,
    };
    match scanner.document() {
        Err(Stop::NotJson) => Scan::NotJson,
        Err(Stop::TooDeep(pointer)) => Scan::TooDeep { pointer },
        Ok(()) => match scanner.first_problem {
            None => Scan::Clean,
            Some((pointer, problem)) => Scan::Unstorable { pointer, problem },
        },
    }
}

/// Why a scan stopped early.
enum Stop {
    NotJson,
    TooDeep(String),
}

struct Scanner<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Frame>,
    max_depth: usize,
    /// The first unstorable string; the scan goes on to make sure the document is JSON at all.
    first_problem: Option<(String, TextProblem)>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Stop> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Stop::NotJson)
        }
    }

    /// The pointer of the value the scanner is at.
    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for frame in &self.stack {
            pointer.push('/');
            match frame {
                Frame::Object(key) => escape_token(&decode(&self.input[key.clone()]), &mut pointer),
                Frame::Array(index) => {
                    let _ = write!(pointer, "{index}");
                }
            }
        }
        pointer
    }

    fn document(&mut self) -> Result<(), Stop> {
        self.value()?;
        self.skip_whitespace();
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(Stop::NotJson)
        }
    }

    /// Scans one value and everything nested in it, without recursion: containers push a frame
    /// and the loop comes back to them.
    fn value(&mut self) -> Result<(), Stop> {
        let base = self.stack.len();
        loop {
            // At the start of a value.
            self.skip_whitespace();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if self.stack.len() >= self.max_depth {
                        return Err(Stop::TooDeep(self.pointer()));
                    }
                    self.pos += 1;
                    self.skip_whitespace();
                    if open == b'{' {
                        if self.peek() == Some(b'}') {
                            self.pos += 1;
                        } else {
                            let key = self.key()?;
                            self.stack.push(Frame::Object(key));
                            continue;
                        }
                    } else if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        self.stack.push(Frame::Array(0));
                        continue;
                    }
                }
                Some(b'"') => {
                    self.pos += 1;
                    if let Some(problem) = self.string()?
                        && self.first_problem.is_none()
                    {
                        self.first_problem = Some((self.pointer(), problem));
                    }
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(Stop::NotJson),
            }
            // After a value: close containers until one has a next member.
            loop {
                if self.stack.len() == base {
                    return Ok(());
                }
                self.skip_whitespace();
                let next = self.peek();
                match self.stack.last_mut() {
                    Some(Frame::Array(index)) => match next {
                        Some(b',') => {
                            *index += 1;
                            self.pos += 1;
                            break;
                        }
                        Some(b']') => {
                            self.pos += 1;
                            self.stack.pop();
                        }
                        _ => return Err(Stop::NotJson),
                    },
                    Some(Frame::Object(_)) => match next {
                        Some(b',') => {
                            self.pos += 1;
                            self.skip_whitespace();
                            // The next key is named from the object, not from the last member.
                            self.stack.pop();
                            let key = self.key()?;
                            self.stack.push(Frame::Object(key));
                            break;
                        }
                        Some(b'}') => {
                            self.pos += 1;
                            self.stack.pop();
                        }
                        _ => return Err(Stop::NotJson),
                    },
                    None => return Ok(()),
                }
            }
        }
    }

    /// Scans a member's key and its colon; the key's range (between the quotes).
    fn key(&mut self) -> Result<Range<usize>, Stop> {
        if self.peek() != Some(b'"') {
            return Err(Stop::NotJson);
        }
        self.pos += 1;
        let start = self.pos;
        let problem = self.string()?;
        let key = start..self.pos - 1;
        if let Some(problem) = problem
            && self.first_problem.is_none()
        {
            let mut pointer = self.pointer();
            pointer.push('/');
            escape_token(&decode(&self.input[key.clone()]), &mut pointer);
            self.first_problem = Some((pointer, problem));
        }
        self.expect(b':')?;
        Ok(key)
    }

    /// Scans the rest of a string after its opening quote; its first unstorable escape.
    fn string(&mut self) -> Result<Option<TextProblem>, Stop> {
        let mut problem = None;
        loop {
            let Some(byte) = self.peek() else {
                return Err(Stop::NotJson);
            };
            self.pos += 1;
            match byte {
                b'"' => return Ok(problem),
                b'\\' => {
                    let Some(escaped) = self.peek() else {
                        return Err(Stop::NotJson);
                    };
                    self.pos += 1;
                    match escaped {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let unit = self.hex4()?;
                            let found = match unit {
                                0 => Some(TextProblem::Nul),
                                0xD800..=0xDBFF => {
                                    // Valid only as the first half of a pair.
                                    if self.input.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                        let mark = self.pos;
                                        self.pos += 2;
                                        match self.hex4()? {
                                            0xDC00..=0xDFFF => None,
                                            _ => {
                                                // Scan the second escape on its own.
                                                self.pos = mark;
                                                Some(TextProblem::LoneSurrogate)
                                            }
                                        }
                                    } else {
                                        Some(TextProblem::LoneSurrogate)
                                    }
                                }
                                0xDC00..=0xDFFF => Some(TextProblem::LoneSurrogate),
                                _ => None,
                            };
                            if problem.is_none() {
                                problem = found;
                            }
                        }
                        _ => return Err(Stop::NotJson),
                    }
                }
                // Control characters must be escaped in JSON.
                0x00..=0x1F => return Err(Stop::NotJson),
                _ => {}
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Stop> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or(Stop::NotJson)?;
        let mut unit = 0u32;
        for &digit in digits {
            unit = (unit << 4) | u32::from(hex_value(digit).ok_or(Stop::NotJson)?);
        }
        self.pos += 4;
        Ok(unit)
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Stop> {
        if self.input.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Stop::NotJson)
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), Stop> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Stop::NotJson),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), Stop> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(Stop::NotJson);
        }
        self.digits();
        Ok(())
    }
}

/// Decodes the inside of a JSON string already scanned as valid; lone surrogates become U+FFFD.
/// Used only to name keys in pointers.
fn decode(raw: &[u8]) -> String {
    let mut units: Vec<u16> = Vec::new();
    let mut out = String::with_capacity(raw.len());
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(units.drain(..)).map(|c| c.unwrap_or('\u{FFFD}')));
    };
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() {
            let escaped = raw[i + 1];
            i += 2;
            let simple = match escaped {
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let unit = raw
                        .get(i..i + 4)
                        .and_then(|digits| std::str::from_utf8(digits).ok())
                        .and_then(|digits| u16::from_str_radix(digits, 16).ok())
                        .unwrap_or(0xFFFD);
                    i += 4;
                    units.push(unit);
                    continue;
                }
                other => char::from(other),
            };
            flush(&mut units, &mut out);
            out.push(simple);
        } else {
            flush(&mut units, &mut out);
            // Copy the run of plain bytes up to the next escape; the input is UTF-8.
            let end = raw[i..]
                .iter()
                .position(|&byte| byte == b'\\')
                .map_or(raw.len(), |offset| i + offset);
            out.push_str(&String::from_utf8_lossy(&raw[i..end]));
            i = end;
        }
    }
    flush(&mut units, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Scan {
        scan_json(text.as_bytes(), 4)
    }

    fn unstorable_at(pointer: &str, problem: TextProblem) -> Scan {
        Scan::Unstorable {
            pointer: pointer.to_owned(),
            problem,
        }
    }

    #[test]
    fn valid_documents_are_clean() {
        for text in [
            "null",
            " true ",
            "-0.5e+10",
            "\"plain \\\"quoted\\\" \\n text é \\u00e9\"",
            "{\"a\": [1, 2, {\"b\": \"c\"}], \"d\": {}}",
            "[]",
            "{}",
        ] {
            assert_eq!(scan(text), Scan::Clean, "{text}");
        }
    }

    #[test]
    fn what_is_not_json_is_left_to_the_parser() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "\"\\u12\"",
            "\"raw\ncontrol\"",
            "[1] [2]",
            "{1: 2}",
            // Not valid JSON, even with an unstorable string before the mistake.
            "[\"\\u0000\", ]",
        ] {
            assert_eq!(scan(text), Scan::NotJson, "{text:?}");
        }
        assert_eq!(scan_json(b"\"\xff\"", 4), Scan::NotJson);
    }

    #[test]
    fn nul_is_found_with_its_pointer() {
        assert_eq!(
            scan("{\"identifier\": \"a\\u0000b\", \"password\": \"x\"}"),
            unstorable_at("/identifier", TextProblem::Nul)
        );
        assert_eq!(
            scan("{\"list\": [\"ok\", {\"x\": 1, \"y\": \"\\u0000\"}]}"),
            unstorable_at("/list/1/y", TextProblem::Nul)
        );
        assert_eq!(scan("\"\\u0000\""), unstorable_at("", TextProblem::Nul));
    }

    #[test]
    fn pointers_escape_tilde_and_slash_and_decode_keys() {
        assert_eq!(
            scan("{\"a/b\": {\"m~n\": [0, \"\\u0000\"]}}"),
            unstorable_at("/a~1b/m~0n/1", TextProblem::Nul)
        );
        assert_eq!(
            scan("{\"\\u0041\\\"\": \"\\u0000\"}"),
            unstorable_at("/A\"", TextProblem::Nul)
        );
    }

    #[test]
    fn an_unstorable_key_names_its_member() {
        assert_eq!(
            scan("{\"outer\": {\"a\\u0000\": 1}}"),
            unstorable_at("/outer/a\u{0}", TextProblem::Nul)
        );
        assert_eq!(
            scan("{\"\\ud800\": 1}"),
            unstorable_at("/\u{FFFD}", TextProblem::LoneSurrogate)
        );
    }

    #[test]
    fn lone_surrogates_are_found_and_pairs_pass() {
        assert_eq!(scan("\"\\ud83d\\ude00 smile\""), Scan::Clean);
        assert_eq!(scan("\"\\uD83D\\uDE00\""), Scan::Clean);
        for text in [
            "[\"\\ud800\"]",
            "[\"\\ud800x\"]",
            "[\"\\udc00\"]",
            "[\"\\ud800\\u0041\"]",
            "[\"\\ude00\\ud83d\"]",
        ] {
            assert_eq!(
                scan(text),
                unstorable_at("/0", TextProblem::LoneSurrogate),
                "{text}"
            );
        }
        // A high surrogate followed by NUL: the first problem is reported.
        assert_eq!(
            scan("[\"\\ud800\\u0000\"]"),
            unstorable_at("/0", TextProblem::LoneSurrogate)
        );
    }

    #[test]
    fn the_first_problem_is_reported() {
        assert_eq!(
            scan("[\"fine\", \"\\u0000\", \"\\ud800\"]"),
            unstorable_at("/1", TextProblem::Nul)
        );
    }

    #[test]
    fn depth_at_the_limit_passes_and_one_over_is_refused() {
        assert_eq!(scan("[[[[1]]]]"), Scan::Clean);
        assert_eq!(scan("{\"a\": {\"b\": [{}]}}"), Scan::Clean);
        assert_eq!(
            scan("[[[[[1]]]]]"),
            Scan::TooDeep {
                pointer: "/0/0/0/0".to_owned()
            }
        );
        assert_eq!(
            scan("{\"a\": [0, {\"b~\": [{\"c\": 1}]}]}"),
            Scan::TooDeep {
                pointer: "/a/1/b~0/0".to_owned()
            }
        );
        // Siblings do not add up: depth is nesting, not count.
        let wide = format!("[{}]", vec!["[[[]]]"; 1000].join(","));
        assert_eq!(scan(&wide), Scan::Clean);
    }

    #[test]
    fn deep_nesting_stops_early_without_recursion() {
        let deep = "[".repeat(1_000_000);
        assert_eq!(
            scan_json(deep.as_bytes(), 64),
            Scan::TooDeep {
                pointer: "/0".repeat(64)
            }
        );
    }

    #[test]
    fn long_strings_and_many_keys_are_linear() {
        // Quadratic work on several megabytes would take minutes; linear takes milliseconds.
        let long = format!("{{\"k\": \"{}\\u0000\"}}", "x\\n".repeat(2_000_000));
        let started = std::time::Instant::now();
        assert_eq!(
            scan_json(long.as_bytes(), 64),
            unstorable_at("/k", TextProblem::Nul)
        );
        let members: Vec<String> = (0..200_000).map(|i| format!("\"key{i}\": [{i}]")).collect();
        let wide = format!("{{{}}}", members.join(","));
        assert_eq!(scan_json(wide.as_bytes(), 64), Scan::Clean);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn nul_in_the_path_or_query_is_found() {
        let problem = |uri: &str| uri_problem(&uri.parse::<Uri>().unwrap(), 2);
        let nul = |pointer: &str| Some(UriProblem::Text(pointer.to_owned(), TextProblem::Nul));
        assert_eq!(problem("/workflows?limit=10&tag=%01&flag"), None);
        assert_eq!(problem("/workflows/a%00b/versions"), nul("/path/1"));
        assert_eq!(problem("/workflows?limit=1&tag=a%00"), nul("/query/tag"));
        assert_eq!(problem("/w?a%2Fb%00=1"), nul("/query/a~1b\u{0}"));
        assert_eq!(problem("/w?flag%00"), nul("/query/flag\u{0}"));
        let uri: Uri = "/workflows?tag=%00".parse().unwrap();
        assert_eq!(
            check_uri(&uri, 2).map(|response| response.status()),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
    }

    #[test]
    fn json_in_a_query_parameter_is_scanned_too() {
        let problem = |uri: &str| uri_problem(&uri.parse::<Uri>().unwrap(), 2);
        // metadata={"team":{"lead":"\u0000"}}
        assert_eq!(
            problem("/w?metadata=%7B%22team%22%3A%7B%22lead%22%3A%22%5Cu0000%22%7D%7D"),
            Some(UriProblem::Text(
                "/query/metadata/team/lead".to_owned(),
                TextProblem::Nul
            ))
        );
        // metadata=[[["\ud800"]]]: too deep before the surrogate is reached.
        assert_eq!(
            problem("/w?metadata=[[[%22%5Cud800%22]]]"),
            Some(UriProblem::TooDeep("/query/metadata/0/0".to_owned()))
        );
        // A search for the text \u0000 is text, not JSON.
        assert_eq!(problem("/w?name=%5Cu0000&metadata=%7B%22a%22%3A1%7D"), None);
    }

    #[test]
    fn query_names_are_decoded_and_escaped_in_pointers() {
        assert_eq!(percent_decode("a%2Fb+c%7e"), "a/b c~");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        let mut pointer = String::new();
        escape_token(&percent_decode("a%2Fb~"), &mut pointer);
        assert_eq!(pointer, "a~1b~0");
    }
}
