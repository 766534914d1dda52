//! A minimal RESP2/RESP3 codec for the load generator.
//!
//! Commands are written as arrays of bulk strings. Replies are read with a
//! generic frame parser (handshakes, errors, anything unusual) and two
//! allocation-free fast paths for the hot loops: integer replies to PUBLISH,
//! and `message` / `pmessage` / `smessage` pushes read straight out of a
//! subscriber's receive buffer. Every parser works on a byte slice, returns
//! `Ok(None)` while the frame is incomplete, and never panics on bad input.

use std::fmt;

/// The server sent bytes that are not valid RESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Result of a parser: `Ok(None)` means "need more bytes"; `Ok(Some((x, n)))`
/// gives the parsed value and the number of bytes it used.
pub type ParseResult<T> = Result<Option<(T, usize)>, ProtocolError>;

/// Deepest nesting of aggregates the generic parser accepts.
const MAX_DEPTH: usize = 16;

/// Appends `n` in decimal to `out`.
pub fn push_decimal(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(n.to_string().as_bytes());
}

/// Appends a command (an array of bulk strings) to `out`.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    push_decimal(out, args.len());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        push_decimal(out, a.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A fully parsed reply, used outside the hot paths.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK` and other simple strings.
    Simple(String),
    /// `-ERR ...` or a RESP3 blob error `!`.
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$n` bulk string, or RESP3 verbatim string `=`.
    Bulk(Vec<u8>),
    /// `*`, `>` push, `~` set, or `%` map (flattened key, value, ...).
    Array(Vec<Frame>),
    /// RESP2 null bulk / null array, or RESP3 `_`.
    Null,
    /// RESP3 scalars the generator has no use for (`,` `#` `(`), as text.
    Other(String),
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Simple(s) | Frame::Other(s) => f.write_str(s),
            Frame::Error(s) => write!(f, "-{s}"),
            Frame::Integer(n) => write!(f, "{n}"),
            Frame::Bulk(b) => write!(f, "\"{}\"", String::from_utf8_lossy(b)),
            Frame::Null => f.write_str("(nil)"),
            Frame::Array(items) => {
                f.write_str("[")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{it}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Finds the end of the line starting at `pos`: returns the index of its
/// `\r` (the line is `buf[pos..idx]`), or `None` if no full line yet.
fn line_end(buf: &[u8], pos: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(rel) = buf
        .get(pos..)
        .and_then(|s| s.iter().position(|&b| b == b'\r'))
    else {
        return Ok(None);
    };
    let idx = pos + rel;
    match buf.get(idx + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(idx)),
        Some(_) => Err(ProtocolError("CR not followed by LF".into())),
    }
}

/// Parses a signed decimal integer from a header line.
fn parse_int(s: &[u8]) -> Result<i64, ProtocolError> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return Err(bad_int(s));
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(bad_int(s));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(c - b'0')))
            .ok_or_else(|| bad_int(s))?;
    }
    Ok(if neg { -v } else { v })
}

fn bad_int(s: &[u8]) -> ProtocolError {
    ProtocolError(format!("bad integer {:?}", String::from_utf8_lossy(s)))
}

/// Reads a length header (`$n`, `*n`, ...) whose type byte is at `pos`.
/// Returns the length (-1 for null) and the index just past the header line.
fn header(buf: &[u8], pos: usize) -> ParseResult<i64> {
    match line_end(buf, pos + 1)? {
        None => Ok(None),
        Some(end) => Ok(Some((parse_int(&buf[pos + 1..end])?, end + 2))),
    }
}

/// Reads a bulk body of `len` bytes at `pos` (followed by CRLF); returns the
/// body's range end and the index just past the CRLF.
fn bulk_body(buf: &[u8], pos: usize, len: i64) -> Result<Option<usize>, ProtocolError> {
    let len = usize::try_from(len).map_err(|_| ProtocolError(format!("bad length {len}")))?;
    let end = pos
        .checked_add(len)
        .ok_or_else(|| ProtocolError("length overflow".into()))?;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(ProtocolError("bulk string not terminated by CRLF".into()));
    }
    Ok(Some(end))
}

/// Parses one complete frame at the start of `buf`.
pub fn parse_frame(buf: &[u8]) -> ParseResult<Frame> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> ParseResult<Frame> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("frames nested too deeply".into()));
    }
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let text_line = |buf: &[u8]| -> ParseResult<String> {
        Ok(line_end(buf, pos + 1)?.map(|end| {
            (
                String::from_utf8_lossy(&buf[pos + 1..end]).into_owned(),
                end + 2,
            )
        }))
    };
    match tag {
        b'+' => Ok(text_line(buf)?.map(|(s, n)| (Frame::Simple(s), n))),
        b'-' => Ok(text_line(buf)?.map(|(s, n)| (Frame::Error(s), n))),
        b',' | b'#' | b'(' => Ok(text_line(buf)?.map(|(s, n)| (Frame::Other(s), n))),
        b'_' => Ok(line_end(buf, pos + 1)?.map(|end| (Frame::Null, end + 2))),
        b':' => match line_end(buf, pos + 1)? {
            None => Ok(None),
            Some(end) => Ok(Some((
                Frame::Integer(parse_int(&buf[pos + 1..end])?),
                end + 2,
            ))),
        },
        b'$' | b'=' | b'!' => {
            let Some((len, body)) = header(buf, pos)? else {
                return Ok(None);
            };
            if len < 0 {
                return Ok(Some((Frame::Null, body)));
            }
            let Some(end) = bulk_body(buf, body, len)? else {
                return Ok(None);
            };
            let bytes = buf[body..end].to_vec();
            let frame = if tag == b'!' {
                Frame::Error(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                Frame::Bulk(bytes)
            };
            Ok(Some((frame, end + 2)))
        }
        b'*' | b'>' | b'~' | b'%' | b'|' => {
            let Some((len, mut at)) = header(buf, pos)? else {
                return Ok(None);
            };
            if len < 0 {
                return Ok(Some((Frame::Null, at)));
            }
            let count = if matches!(tag, b'%' | b'|') {
                len * 2
            } else {
                len
            };
            // Do not trust the count for the allocation: a bogus header must
            // not reserve gigabytes.
            let mut items = Vec::with_capacity(usize::try_from(count.min(1024)).unwrap_or(0));
            for _ in 0..count {
                match parse_at(buf, at, depth + 1)? {
                    None => return Ok(None),
                    Some((f, next)) => {
                        items.push(f);
                        at = next;
                    }
                }
            }
            if tag == b'|' {
                // An attribute map annotates the frame that follows it.
                return parse_at(buf, at, depth + 1);
            }
            Ok(Some((Frame::Array(items), at)))
        }
        other => Err(ProtocolError(format!(
            "unexpected type byte {:?}",
            other as char
        ))),
    }
}

/// A reply to PUBLISH / SPUBLISH, as seen by a publisher.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The number of clients that received the message.
    Integer(i64),
    /// The server refused the command.
    Error(String),
    /// Anything else (a protocol mismatch for PUBLISH).
    Other(Frame),
}

/// Parses one reply at the start of `buf`, with a fast path for integers.
pub fn parse_reply(buf: &[u8]) -> ParseResult<Reply> {
    if buf.first() == Some(&b':') {
        return match line_end(buf, 1)? {
            None => Ok(None),
            Some(end) => Ok(Some((Reply::Integer(parse_int(&buf[1..end])?), end + 2))),
        };
    }
    Ok(parse_frame(buf)?.map(|(f, n)| {
        let r = match f {
            Frame::Error(e) => Reply::Error(e),
            Frame::Integer(i) => Reply::Integer(i),
            other => Reply::Other(other),
        };
        (r, n)
    }))
}

/// What a pub/sub push is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushKind {
    /// `message` (from SUBSCRIBE).
    Message,
    /// `pmessage` (from PSUBSCRIBE).
    PMessage,
    /// `smessage` (from SSUBSCRIBE).
    SMessage,
    /// A `subscribe`, `psubscribe` or `ssubscribe` confirmation.
    Subscribed,
    /// Any other push or array (e.g. `pong`, unsubscribe confirmations).
    Other,
}

/// One frame read by a subscriber.
#[derive(Debug, PartialEq)]
pub enum Incoming<'a> {
    /// A push; `last` is its last element's bytes (the payload of a message,
    /// or the subscription count of a confirmation, as text).
    Push {
        /// The kind of push, from its first element.
        kind: PushKind,
        /// The last element.
        last: &'a [u8],
    },
    /// Anything that is not a small array of bulk strings and integers.
    Frame(Frame),
}

/// Parses one frame a subscriber receives, at the start of `buf`. Pushes of
/// up to 4 bulk / integer elements take the allocation-free path.
pub fn parse_incoming(buf: &[u8]) -> ParseResult<Incoming<'_>> {
    match fast_message(buf) {
        Fast::Message(kind, body, end) => {
            return Ok(Some((
                Incoming::Push {
                    kind,
                    last: &buf[body..end],
                },
                end + 2,
            )))
        }
        Fast::Incomplete => return Ok(None),
        Fast::Other => {}
    }
    if !matches!(buf.first(), Some(b'*') | Some(b'>')) {
        return Ok(parse_frame(buf)?.map(|(f, n)| (Incoming::Frame(f), n)));
    }
    let Some((count, mut at)) = header(buf, 0)? else {
        return Ok(None);
    };
    if !(1..=4).contains(&count) {
        return Ok(parse_frame(buf)?.map(|(f, n)| (Incoming::Frame(f), n)));
    }
    let mut first: &[u8] = &[];
    let mut last: &[u8] = &[];
    for i in 0..count {
        let item = match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {
                let Some((len, body)) = header(buf, at)? else {
                    return Ok(None);
                };
                if len < 0 {
                    at = body;
                    &buf[body..body]
                } else {
                    let Some(end) = bulk_body(buf, body, len)? else {
                        return Ok(None);
                    };
                    at = end + 2;
                    &buf[body..end]
                }
            }
            Some(b':') => {
                let Some(end) = line_end(buf, at + 1)? else {
                    return Ok(None);
                };
                let text = &buf[at + 1..end];
                at = end + 2;
                text
            }
            Some(_) => return Ok(parse_frame(buf)?.map(|(f, n)| (Incoming::Frame(f), n))),
        };
        if i == 0 {
            first = item;
        }
        last = item;
    }
    let kind = match first {
        b"message" => PushKind::Message,
        b"pmessage" => PushKind::PMessage,
        b"smessage" => PushKind::SMessage,
        b"subscribe" | b"psubscribe" | b"ssubscribe" => PushKind::Subscribed,
        _ => PushKind::Other,
    };
    Ok(Some((Incoming::Push { kind, last }, at)))
}

/// Outcome of [`fast_message`].
enum Fast {
    /// A message push: its kind, and the payload's start and end.
    Message(PushKind, usize, usize),
    /// A message push, not complete yet.
    Incomplete,
    /// Something else, or something unusual: use the general parser.
    Other,
}

/// The exact starts of the message pushes (RESP2 and RESP3), their kind and
/// how many bulk strings come before the payload.
const MESSAGE_HEADS: [(&[u8], PushKind, usize); 6] = [
    (b"*3\r\n$7\r\nmessage\r\n", PushKind::Message, 1),
    (b">3\r\n$7\r\nmessage\r\n", PushKind::Message, 1),
    (b"*4\r\n$8\r\npmessage\r\n", PushKind::PMessage, 2),
    (b">4\r\n$8\r\npmessage\r\n", PushKind::PMessage, 2),
    (b"*3\r\n$8\r\nsmessage\r\n", PushKind::SMessage, 1),
    (b">3\r\n$8\r\nsmessage\r\n", PushKind::SMessage, 1),
];

/// The hot path of a subscriber: recognises a message push by its exact
/// start and skips to its payload, parsing only the bulk lengths.
fn fast_message(buf: &[u8]) -> Fast {
    let Some((kind, skip, mut at)) = MESSAGE_HEADS.iter().find_map(|&(head, kind, skip)| {
        let n = head.len().min(buf.len());
        (buf[..n] == head[..n]).then_some((kind, skip, head.len()))
    }) else {
        return Fast::Other;
    };
    if at > buf.len() {
        return Fast::Incomplete;
    }
    for i in 0..=skip {
        match fast_bulk(buf, at) {
            Fast::Message(_, body, end) if i == skip => return Fast::Message(kind, body, end),
            Fast::Message(_, _, end) => at = end + 2,
            other => return other,
        }
    }
    Fast::Other
}

/// Reads a bulk string at `at` (kind left as `Other`); anything unusual
/// (no `$`, a null or huge length, a missing CRLF) defers to the general
/// parser.
fn fast_bulk(buf: &[u8], at: usize) -> Fast {
    match buf.get(at) {
        None => return Fast::Incomplete,
        Some(b'$') => {}
        Some(_) => return Fast::Other,
    }
    let mut i = at + 1;
    let mut len: usize = 0;
    loop {
        match buf.get(i) {
            None => return Fast::Incomplete,
            Some(b'\r') if i > at + 1 => break,
            Some(&c) if c.is_ascii_digit() && i < at + 16 => {
                len = len * 10 + usize::from(c - b'0');
            }
            Some(_) => return Fast::Other,
        }
        i += 1;
    }
    match buf.get(i + 1) {
        None => return Fast::Incomplete,
        Some(b'\n') => {}
        Some(_) => return Fast::Other,
    }
    let body = i + 2;
    let end = body + len;
    match buf.get(end..end + 2) {
        None => Fast::Incomplete,
        Some(b"\r\n") => Fast::Message(PushKind::Other, body, end),
        Some(_) => Fast::Other,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `v` as 16 lowercase hex digits into `out[..16]`.
pub fn put_hex16(out: &mut [u8], v: u64) {
    for (i, slot) in out.iter_mut().take(16).enumerate() {
        *slot = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

/// Reads the 16 hex digits at the start of `b`, or `None` if they are not.
pub fn parse_hex16(b: &[u8]) -> Option<u64> {
    let digits = b.get(..16)?;
    let mut v: u64 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"PUBLISH", b"ch", b""]);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n");
    }

    #[test]
    fn parses_frames_and_partials() {
        let full = b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse_frame(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let (f, n) = parse_frame(full).unwrap().unwrap();
        assert_eq!(n, full.len());
        assert_eq!(
            f,
            Frame::Array(vec![
                Frame::Bulk(b"server".to_vec()),
                Frame::Bulk(b"redis".to_vec()),
                Frame::Bulk(b"proto".to_vec()),
                Frame::Integer(3),
            ])
        );
        assert_eq!(
            parse_frame(b"-ERR nope\r\n").unwrap(),
            Some((Frame::Error("ERR nope".into()), 11))
        );
        assert!(parse_frame(b"?x\r\n").is_err());
        assert!(parse_frame(b":12a\r\n").is_err());
    }

    #[test]
    fn parses_replies() {
        assert_eq!(
            parse_reply(b":42\r\n:1").unwrap(),
            Some((Reply::Integer(42), 5))
        );
        assert_eq!(parse_reply(b":42\r").unwrap(), None);
        assert_eq!(
            parse_reply(b"-ERR x\r\n").unwrap(),
            Some((Reply::Error("ERR x".into()), 8))
        );
    }

    #[test]
    fn parses_pushes() {
        let msg = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        for cut in 0..msg.len() {
            assert_eq!(parse_incoming(&msg[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse_incoming(msg).unwrap(),
            Some((
                Incoming::Push {
                    kind: PushKind::Message,
                    last: b"hello"
                },
                msg.len()
            ))
        );
        let smsg = b">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        for cut in 0..smsg.len() {
            assert_eq!(parse_incoming(&smsg[..cut]), Ok(None), "cut at {cut}");
        }
        // A null payload is unusual: the general parser takes it.
        let null = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$-1\r\n";
        let (p, n) = parse_incoming(null).unwrap().unwrap();
        assert_eq!(n, null.len());
        assert_eq!(
            p,
            Incoming::Push {
                kind: PushKind::Message,
                last: b""
            }
        );
        assert!(parse_incoming(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhelloXX").is_err());
        let pmsg = b">4\r\n$8\r\npmessage\r\n$3\r\nc:*\r\n$3\r\nc:1\r\n$2\r\nhi\r\n";
        let (p, _) = parse_incoming(pmsg).unwrap().unwrap();
        assert_eq!(
            p,
            Incoming::Push {
                kind: PushKind::PMessage,
                last: b"hi"
            }
        );
        let sub = b"*3\r\n$10\r\nssubscribe\r\n$2\r\nch\r\n:1\r\n";
        let (p, _) = parse_incoming(sub).unwrap().unwrap();
        assert_eq!(
            p,
            Incoming::Push {
                kind: PushKind::Subscribed,
                last: b"1"
            }
        );
        let (p, _) = parse_incoming(b"+PONG\r\n").unwrap().unwrap();
        assert_eq!(p, Incoming::Frame(Frame::Simple("PONG".into())));
    }

    #[test]
    fn hex_round_trip() {
        let mut b = [0u8; 16];
        for v in [0u64, 1, 0xdead_beef, u64::MAX] {
            put_hex16(&mut b, v);
            assert_eq!(parse_hex16(&b), Some(v));
        }
        assert_eq!(parse_hex16(b"0123"), None);
        assert_eq!(parse_hex16(b"000000000000000g"), None);
    }
}
