//! Reads a reply back into a [`Frame`]: what a command wrote, for a Lua
//! script that called it (`redis.call` turns replies into Lua values). The
//! command layer encodes replies as bytes (RESP2 or RESP3, as the script
//! asked with `redis.setresp`). The input is the server's own, but it is
//! parsed defensively: anything malformed gives `None`, never a panic.

use bytes::Bytes;

use super::parse::string_to_i64;
use super::Frame;

/// Parses one complete reply from the start of `buf`.
pub fn parse(buf: &Bytes) -> Option<Frame> {
    let mut pos = 0;
    parse_at(buf, &mut pos, 0)
}

/// The deepest nesting followed (replies never come close).
const MAX_DEPTH: usize = 512;

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = memchr::memchr(b'\r', rest)?;
    if rest.get(end + 1) != Some(&b'\n') {
        return None;
    }
    *pos += end + 2;
    Some(&rest[..end])
}

fn parse_at(buf: &Bytes, pos: &mut usize, depth: usize) -> Option<Frame> {
    if depth > MAX_DEPTH {
        return None;
    }
    let kind = *buf.get(*pos)?;
    *pos += 1;
    let text = line(buf, pos)?;
    let count = |text: &[u8]| string_to_i64(text);
    Some(match kind {
        b'+' => Frame::Simple(Bytes::copy_from_slice(text)),
        b'-' => Frame::Error(Bytes::copy_from_slice(text)),
        b':' => Frame::Integer(count(text)?),
        b'$' | b'=' => {
            let n = count(text)?;
            if n < 0 {
                return Some(Frame::Null);
            }
            let n = n as usize;
            let start = *pos;
            let end = start.checked_add(n)?;
            if buf.get(end..end + 2)? != b"\r\n" {
                return None;
            }
            *pos = end + 2;
            let body = buf.slice(start..end);
            if kind == b'=' {
                let fmt = if body.starts_with(b"mkd:") {
                    "mkd"
                } else {
                    "txt"
                };
                Frame::Verbatim(fmt, body.slice(4.min(body.len())..))
            } else {
                Frame::Bulk(body)
            }
        }
        b'*' | b'~' | b'>' => {
            let n = count(text)?;
            if n < 0 {
                return Some(Frame::NullArray);
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                items.push(parse_at(buf, pos, depth + 1)?);
            }
            match kind {
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                _ => Frame::Array(items),
            }
        }
        b'%' => {
            let n = count(text)?;
            let mut pairs = Vec::with_capacity((n.max(0) as usize).min(1024));
            for _ in 0..n {
                let k = parse_at(buf, pos, depth + 1)?;
                let v = parse_at(buf, pos, depth + 1)?;
                pairs.push((k, v));
            }
            Frame::Map(pairs)
        }
        b'_' => Frame::Null,
        b'#' => Frame::Boolean(text == b"t"),
        b',' => Frame::Double(parse_double(text)?),
        b'(' => Frame::BigNumber(Bytes::copy_from_slice(text)),
        _ => return None,
    })
}

/// A RESP3 double as Redis writes it (`inf`, `-inf`, `nan` included).
fn parse_double(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    #[test]
    fn round_trips_every_kind() {
        let frames = [
            Frame::simple("OK"),
            Frame::error("ERR bad"),
            Frame::Integer(-42),
            Frame::bulk_from(b"a\r\nb"),
            Frame::Array(vec![Frame::Integer(1), Frame::Array(vec![])]),
            Frame::Map(vec![(Frame::bulk_from(b"k"), Frame::Double(1.5))]),
            Frame::Set(vec![Frame::bulk_from(b"x")]),
            Frame::Boolean(true),
            Frame::Verbatim("txt", Bytes::from_static(b"hello")),
            Frame::BigNumber(Bytes::from_static(b"1234567890123456789012")),
        ];
        for f in frames {
            let bytes = f.to_bytes(Protocol::Resp3);
            assert_eq!(parse(&bytes), Some(f));
        }
        assert_eq!(parse(&Bytes::from_static(b"$-1\r\n")), Some(Frame::Null));
        assert_eq!(
            parse(&Bytes::from_static(b"*-1\r\n")),
            Some(Frame::NullArray)
        );
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            &b""[..],
            b"$5\r\nab\r\n",
            b"*2\r\n:1\r\n",
            b"?x\r\n",
            b":x\r\n",
        ] {
            assert_eq!(parse(&Bytes::copy_from_slice(bad)), None);
        }
    }
}
