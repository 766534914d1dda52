//! The request parser: turns bytes read from a client into commands.
//!
//! It follows redis-server's `processMultibulkBuffer` and
//! `processInlineBuffer` step by step, so that every malformed input gets
//! the same `Protocol error: ...` text and the same outcome (the error is
//! sent, then the connection is closed). The parser keeps its place across
//! reads, so a command split over many packets is never rescanned, and
//! arguments are handed out as [`Bytes`] cut from the read buffer without
//! a copy.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline command, and longest `*N` / `$N` header line, that is
/// accepted before the client is cut off (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// Largest multibulk count accepted (Redis allows up to `INT_MAX`).
const MAX_MULTIBULK: i64 = i32::MAX as i64;

/// Most arguments an unauthenticated client may send in one command.
const UNAUTH_MAX_MULTIBULK: i64 = 10;

/// Longest argument an unauthenticated client may send.
const UNAUTH_MAX_BULK: usize = 16384;

/// A protocol violation: the text to send after `-ERR `; the connection is
/// closed once it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Incremental request parser for one connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Arguments of the multibulk command being read.
    args: Vec<Bytes>,
    /// Arguments still expected for that command (0 = between commands).
    remaining: usize,
    /// Length of the bulk argument whose header was read, if any.
    bulk_len: Option<usize>,
    /// Largest bulk argument accepted (`proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Set by the connection while the client must still authenticate:
    /// then, as in Redis, a multibulk of more than 10 arguments or a bulk
    /// longer than 16 KiB is a protocol error (so an unauthenticated
    /// client cannot make the server buffer much).
    pub unauthenticated: bool,
}

impl RequestParser {
    /// A parser with the given `proto-max-bulk-len`.
    pub fn new(max_bulk_len: usize) -> Self {
        RequestParser {
            max_bulk_len,
            ..Default::default()
        }
    }

    /// True while a multibulk command is half read (its arguments so far are held).
    pub fn in_progress(&self) -> bool {
        self.remaining > 0
    }

    /// Parses the next complete command from `buf`, consuming its bytes.
    ///
    /// Returns `Ok(None)` when more bytes are needed. An empty command
    /// (`*0`, `*-1` or a blank inline line) is consumed and skipped, as
    /// Redis does.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] == b'*' {
                    if let Some(args) = self.whole_request(buf) {
                        return Ok(Some(args));
                    }
                }
                if buf[0] != b'*' {
                    match parse_inline(buf)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    }
                }
                // Multibulk header `*<count>\r\n`.
                let Some(cr) = header_end(buf) else {
                    if buf.len() > INLINE_MAX_SIZE {
                        return Err(err("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                // Redis needs the byte after '\r' to be present too.
                if cr + 1 >= buf.len() {
                    if buf.len() > INLINE_MAX_SIZE {
                        return Err(err("too big mbulk count string"));
                    }
                    return Ok(None);
                }
                let n = match string_to_i64(&buf[1..cr]) {
                    Some(n) if n <= MAX_MULTIBULK => n,
                    _ => return Err(err("invalid multibulk length")),
                };
                if n > UNAUTH_MAX_MULTIBULK && self.unauthenticated {
                    return Err(err("unauthenticated multibulk length"));
                }
                buf.advance(cr + 2);
                if n <= 0 {
                    continue;
                }
                self.remaining = n as usize;
                // Cap the up-front reservation: the count is the client's word.
                self.args = Vec::with_capacity(self.remaining.min(1024));
            }

            while self.remaining > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(cr) = header_end(buf) else {
                            if buf.len() > INLINE_MAX_SIZE {
                                return Err(err("too big bulk count string"));
                            }
                            return Ok(None);
                        };
                        if cr + 2 > buf.len() {
                            if buf.len() > INLINE_MAX_SIZE {
                                return Err(err("too big bulk count string"));
                            }
                            return Ok(None);
                        }
                        if buf[0] != b'$' {
                            // Redis's addReplyErrorFormat turns `\r` and `\n`
                            // into spaces so that the error stays one line.
                            // (A byte >= 0x80 is sent raw by Redis; a String
                            // can only hold it as its Latin-1 char.)
                            let got = match buf[0] {
                                b'\r' | b'\n' => ' ',
                                c => c as char,
                            };
                            return Err(ProtocolError(format!(
                                "Protocol error: expected '$', got '{got}'"
                            )));
                        }
                        let len = match string_to_i64(&buf[1..cr]) {
                            Some(n) if n >= 0 && (n as u64) <= self.max_bulk_len as u64 => {
                                n as usize
                            }
                            _ => return Err(err("invalid bulk length")),
                        };
                        if len > UNAUTH_MAX_BULK && self.unauthenticated {
                            return Err(err("unauthenticated bulk length"));
                        }
                        buf.advance(cr + 2);
                        self.bulk_len = Some(len);
                        len
                    }
                };
                // Redis skips the two bytes after the payload without checking them.
                if buf.len() < len + 2 {
                    return Ok(None);
                }
                // One split takes the payload and its two trailing bytes
                // (cut off the argument's view): no separate advance.
                let mut arg = buf.split_to(len + 2);
                arg.truncate(len);
                self.args.push(arg.freeze());
                self.bulk_len = None;
                self.remaining -= 1;
            }
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }
}

/// Redis's `strchr(c->querybuf + c->qb_pos, c)`: it looks for the end of a
/// header or inline line in a NUL-terminated buffer, so a NUL byte before
/// the `\r` / `\n` hides it, and the client is left waiting (and cut off
/// with a "too big" error past [`INLINE_MAX_SIZE`]), as in Redis.
impl RequestParser {
    /// The usual case, a whole well-formed multibulk request at the start
    /// of `buf`: split off in one piece, its arguments slices of it (no
    /// step per header or argument on the buffer itself). None when the
    /// request is incomplete, malformed or over a limit: the step-by-step
    /// path then takes it, and gives Redis's exact errors.
    fn whole_request(&self, buf: &mut BytesMut) -> Option<Vec<Bytes>> {
        let b = &buf[..];
        let (n, mut pos) = plain_header(b, 0, b'*')?;
        if n == 0 || n > 1024 || (n > UNAUTH_MAX_MULTIBULK as u64 && self.unauthenticated) {
            return None;
        }
        let mut spans: smallvec::SmallVec<[(usize, usize); 8]> = smallvec::SmallVec::new();
        for _ in 0..n {
            let (len, start) = plain_header(b, pos, b'$')?;
            let len = usize::try_from(len).ok()?;
            if len > self.max_bulk_len || (len > UNAUTH_MAX_BULK && self.unauthenticated) {
                return None;
            }
            let end = start.checked_add(len)?;
            // Redis skips the two bytes after the payload without checking them.
            if end.checked_add(2)? > b.len() {
                return None;
            }
            spans.push((start, end));
            pos = end + 2;
        }
        let whole = buf.split_to(pos).freeze();
        Some(spans.iter().map(|&(s, e)| whole.slice(s..e)).collect())
    }
}

/// A `*<count>` / `$<len>` header at `at` made of `prefix` and plain digits
/// (no sign, no leading zero, at most 18 of them) followed by `\r` and one
/// more byte (which Redis skips unchecked): the number and where the next
/// item starts. None for anything else.
#[inline]
fn plain_header(b: &[u8], at: usize, prefix: u8) -> Option<(u64, usize)> {
    if b.get(at) != Some(&prefix) {
        return None;
    }
    let first = at + 1;
    let mut i = first;
    let mut v: u64 = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'0'..=b'9' if i - first < 18 => {
                v = v * 10 + u64::from(c - b'0');
                i += 1;
            }
            b'\r' => break,
            _ => return None,
        }
    }
    let digits = i - first;
    if digits == 0 || (digits > 1 && b[first] == b'0') || i + 1 >= b.len() {
        return None;
    }
    Some((v, i + 2))
}

/// Where the `\r` ending a `*<count>` or `$<len>` header is, as
/// `strchr(buf, '\r')` finds it (None if there is none yet). The usual
/// header, a few digits, is scanned byte by byte: a vectorised search costs
/// more than it saves on a line of three to five bytes.
#[inline]
fn header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < buf.len() && i < 24 {
        match buf[i] {
            b'0'..=b'9' | b'-' => i += 1,
            b'\r' => return Some(i),
            _ => break,
        }
    }
    strchr(buf, b'\r')
}

fn strchr(buf: &[u8], c: u8) -> Option<usize> {
    memchr::memchr2(c, 0, buf).filter(|&i| buf[i] == c)
}

fn err(what: &str) -> ProtocolError {
    ProtocolError(format!("Protocol error: {what}"))
}

/// Parses one inline command line (`PING\r\n`, `SET k "v v"\n`).
fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = strchr(buf, b'\n') else {
        if buf.len() > INLINE_MAX_SIZE {
            return Err(err("too big inline request"));
        }
        return Ok(None);
    };
    let mut line = buf.split_to(nl + 1);
    line.truncate(nl);
    if line.last() == Some(&b'\r') {
        line.truncate(nl - 1);
    }
    match split_args(&line) {
        Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
        None => Err(err("unbalanced quotes in request")),
    }
}

/// Redis's `string2ll`: a strict base-10 `i64` (no `+`, no leading zeros,
/// no spaces). Used wherever Redis parses a protocol length.
pub fn string_to_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Redis's `sdssplitargs`: splits a line into arguments, honouring
/// `"double quotes"` (with `\n`, `\xHH`, ... escapes) and `'single quotes'`.
/// Returns `None` for unbalanced quotes, or a closing quote not followed by
/// a space, as Redis does. Used for inline commands and config files.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut inq = false; // inside "double quotes"
        let mut insq = false; // inside 'single quotes'
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    // A closing quote must be followed by a space or the end.
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

/// `isspace` in the C locale, plus NUL as sdssplitargs treats it.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Option<ProtocolError>) {
        let mut p = RequestParser::new(512 * 1024 * 1024);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match p.next(&mut buf) {
                Ok(Some(c)) => out.push(c),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn multibulk_and_inline() {
        let (cmds, e) = parse_all(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\nset a \"b c\"\n");
        assert!(e.is_none());
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0], vec![Bytes::from("ECHO"), Bytes::from("hi")]);
        assert_eq!(cmds[1], vec![Bytes::from("PING")]);
        assert_eq!(cmds[2][2], Bytes::from("b c"));
    }

    #[test]
    fn protocol_errors() {
        assert_eq!(
            parse_all(b"*x\r\n").1.unwrap().0,
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            parse_all(b"*1\r\n!3\r\n").1.unwrap().0,
            "Protocol error: expected '$', got '!'"
        );
        assert_eq!(
            parse_all(b"*1\r\n$-3\r\n").1.unwrap().0,
            "Protocol error: invalid bulk length"
        );
        // As redis-server 7.0.15: a line end in the message becomes a space.
        assert_eq!(
            parse_all(b"*1\r\n\r\n").1.unwrap().0,
            "Protocol error: expected '$', got ' '"
        );
        assert_eq!(
            parse_all(b"*1\r\n\n\r\n").1.unwrap().0,
            "Protocol error: expected '$', got ' '"
        );
        assert_eq!(
            parse_all(b"*1\r\n\t\r\n").1.unwrap().0,
            "Protocol error: expected '$', got '\t'"
        );
        assert_eq!(
            parse_all(b"GET \"a\n").1.unwrap().0,
            "Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn nul_hides_the_line_end_as_in_redis() {
        // redis-server 7.0.15 searches header and inline lines with strchr.
        for input in [
            &b"PING\0\r\nPING\r\n"[..],
            b"\0PING\r\n",
            b"*1\0\r\n$4\r\nPING\r\n",
            b"*1\r\n$4\0\r\nPING\r\n",
        ] {
            assert_eq!(parse_all(input), (vec![], None), "{input:?}");
        }
        // ... until the line passes the inline limit.
        let long = |head: &[u8]| [head, &vec![b'a'; INLINE_MAX_SIZE]].concat();
        assert_eq!(
            parse_all(&long(b"PING\0\r\n")).1.unwrap().0,
            "Protocol error: too big inline request"
        );
        assert_eq!(
            parse_all(&long(b"*1\0\r\n")).1.unwrap().0,
            "Protocol error: too big mbulk count string"
        );
        assert_eq!(
            parse_all(&long(b"*1\r\n$4\0\r\n")).1.unwrap().0,
            "Protocol error: too big bulk count string"
        );
        // NUL inside a bulk payload is data.
        let (cmds, e) = parse_all(b"*1\r\n$3\r\na\0b\r\n");
        assert!(e.is_none());
        assert_eq!(cmds, vec![vec![Bytes::from_static(b"a\0b")]]);
    }

    #[test]
    fn unauthenticated_limits() {
        let run = |input: &[u8]| {
            let mut p = RequestParser::new(512 * 1024 * 1024);
            p.unauthenticated = true;
            let mut buf = BytesMut::from(input);
            p.next(&mut buf)
        };
        let ten = b"*10\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n";
        assert_eq!(run(ten).unwrap().unwrap().len(), 10);
        assert_eq!(
            run(b"*11\r\n").unwrap_err().0,
            "Protocol error: unauthenticated multibulk length"
        );
        assert!(run(b"*1\r\n$16384\r\n").unwrap().is_none());
        assert_eq!(
            run(b"*1\r\n$16385\r\n").unwrap_err().0,
            "Protocol error: unauthenticated bulk length"
        );
        // Redis's own limits come first.
        assert_eq!(
            run(b"*1\r\n$-5\r\n").unwrap_err().0,
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string_to_i64(b"12"), Some(12));
        assert_eq!(string_to_i64(b"-1"), Some(-1));
        assert_eq!(string_to_i64(b"012"), None);
        assert_eq!(string_to_i64(b"+1"), None);
        assert_eq!(string_to_i64(b""), None);
        assert_eq!(string_to_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string_to_i64(b"9223372036854775808"), None);
    }
}
