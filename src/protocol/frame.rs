//! The reply value ([`Frame`]) and its encoding to RESP2 and RESP3.
//!
//! Command handlers build a `Frame` (or write pre-encoded bytes) and the
//! connection encodes it for the client's negotiated protocol. RESP3-only
//! types are downgraded for RESP2 clients exactly as redis-server does
//! (maps become flat arrays, sets arrays, doubles bulk strings, booleans
//! integers, push frames arrays), so a handler is written once for both.

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol version a client speaks, chosen with `HELLO 2|3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default for every new connection.
    #[default]
    Resp2,
    /// RESP3, with maps, sets, doubles, nulls and out-of-band push frames.
    Resp3,
}

impl Protocol {
    /// The number clients use for the protocol (`HELLO 2`, `resp=3` in CLIENT LIST).
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply value, as RESP3 can express it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`: a status reply (must not contain CR or LF).
    Simple(Bytes),
    /// `-ERR ...`: the text after the dash, including its error code.
    Error(Bytes),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`: a binary-safe string.
    Bulk(Bytes),
    /// The nil reply: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// The nil array: `*-1` in RESP2, `_` in RESP3 (Redis's `addReplyNullArray`).
    NullArray,
    /// `*N`
    Array(Vec<Frame>),
    /// `%N` in RESP3, a flat array of 2N items in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// `~N` in RESP3, an array in RESP2.
    Set(Vec<Frame>),
    /// `,3.14` in RESP3, a bulk string in RESP2.
    Double(f64),
    /// `#t` / `#f` in RESP3, `:1` / `:0` in RESP2.
    Boolean(bool),
    /// `=N\r\ntxt:...` in RESP3 (format, text), a bulk string in RESP2.
    Verbatim(&'static str, Bytes),
    /// `>N` in RESP3, an array in RESP2: out-of-band data such as pub/sub messages.
    Push(Vec<Frame>),
    /// `(digits` in RESP3, a bulk string in RESP2 (only scripts make one).
    BigNumber(Bytes),
}

impl Frame {
    /// `+OK`, the most common reply.
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple status reply from static text.
    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    /// An error reply; `msg` includes the code, e.g. `"ERR syntax error"`.
    pub fn error(msg: impl Into<String>) -> Frame {
        Frame::Error(Bytes::from(msg.into()))
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(b: impl Into<Bytes>) -> Frame {
        Frame::Bulk(b.into())
    }

    /// A bulk string copied from a slice.
    pub fn bulk_from(b: &[u8]) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(b))
    }

    /// Appends this frame's encoding for `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        let r3 = proto == Protocol::Resp3;
        match self {
            Frame::Simple(s) => put_line(out, b'+', s),
            Frame::Error(s) => put_line(out, b'-', s),
            Frame::Integer(n) => put_int_line(out, b':', *n),
            Frame::Bulk(b) => put_bulk(out, b),
            Frame::Null => out.extend_from_slice(if r3 { b"_\r\n" } else { b"$-1\r\n" }),
            Frame::NullArray => out.extend_from_slice(if r3 { b"_\r\n" } else { b"*-1\r\n" }),
            Frame::Array(items) => {
                put_int_line(out, b'*', items.len() as i64);
                for f in items {
                    f.encode(proto, out);
                }
            }
            Frame::Map(pairs) => {
                if r3 {
                    put_int_line(out, b'%', pairs.len() as i64);
                } else {
                    put_int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Frame::Set(items) => {
                put_int_line(out, if r3 { b'~' } else { b'*' }, items.len() as i64);
                for f in items {
                    f.encode(proto, out);
                }
            }
            Frame::Push(items) => {
                put_int_line(out, if r3 { b'>' } else { b'*' }, items.len() as i64);
                for f in items {
                    f.encode(proto, out);
                }
            }
            Frame::Double(d) => {
                let text = format_double(*d);
                if r3 {
                    out.put_u8(b',');
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\r\n");
                } else {
                    put_bulk(out, text.as_bytes());
                }
            }
            Frame::Boolean(b) => {
                if r3 {
                    out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" });
                }
            }
            Frame::BigNumber(digits) => {
                if r3 {
                    out.put_u8(b'(');
                    out.extend_from_slice(digits);
                    out.extend_from_slice(b"\r\n");
                } else {
                    put_bulk(out, digits);
                }
            }
            Frame::Verbatim(fmt, text) => {
                if r3 {
                    put_int_line(out, b'=', (text.len() + 4) as i64);
                    out.extend_from_slice(fmt.as_bytes());
                    out.put_u8(b':');
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\r\n");
                } else {
                    put_bulk(out, text);
                }
            }
        }
    }

    /// Encodes into a fresh buffer (tests, one-off replies).
    pub fn to_bytes(&self, proto: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out.freeze()
    }
}

/// A simple string or error line. A line break inside would end the frame
/// early and desynchronise the client, so each one becomes a space, as
/// Redis does for the error texts it formats.
fn put_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        out.extend_from_slice(text);
    } else {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes `<prefix><n>\r\n`.
pub fn put_int_line(out: &mut BytesMut, prefix: u8, n: i64) {
    // Assembled on the stack and appended once: every reply has such a
    // line (or several), and each append checks the buffer's room.
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    let mut line = [0u8; 24];
    line[0] = prefix;
    line[1..=digits.len()].copy_from_slice(digits);
    line[digits.len() + 1..digits.len() + 3].copy_from_slice(b"\r\n");
    out.extend_from_slice(&line[..digits.len() + 3]);
}

/// Writes a bulk string `$<len>\r\n<data>\r\n`.
pub fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_int_line(out, b'$', data.len() as i64);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Formats a double as redis-server 7.0 does in replies: `%.17g`
/// (`0.1` is `0.10000000000000001`, `1e20` is `1e+20`), and `inf`, `-inf`,
/// `nan` (`-nan` with the sign bit set, as glibc prints it: Lua's `0/0`
/// on x86).
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // An integral value under 10^17 (a timestamp, a counter, a rank) is
    // its integer digits in %.17g: no exponent, no decimals. Most scores
    // are such; this skips the two float formattings below.
    if d.fract() == 0.0 && d.abs() < 1e17 {
        return itoa::Buffer::new().format(d as i64).to_string();
    }
    format_general(d)
}

/// `%.17g` of a finite, nonzero `d` (see [`format_double`]).
fn format_general(d: f64) -> String {
    // %.17g: 17 significant digits; scientific notation when the exponent
    // is below -4 or at least 17; trailing zeros removed.
    let sci = format!("{:.16e}", d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", trim(mant), sign, exp.abs())
    } else {
        let decimals = (16 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, d)).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_doubles_format_as_the_general_path_does() {
        let mut d = 1.0f64;
        let mut seen = 0;
        while d < 1e18 {
            for v in [
                d,
                -d,
                d + 1.0,
                d - 1.0,
                (d * 0.7).trunc(),
                -(d * 0.3).trunc(),
            ] {
                if v != 0.0 {
                    assert_eq!(format_double(v), format_general(v), "{v}");
                    seen += 1;
                }
            }
            d *= 3.0;
        }
        assert!(seen > 100);
        assert_eq!(format_double(1e16), "10000000000000000");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(1_765_000_000_000.0), "1765000000000");
    }

    #[test]
    fn doubles_print_as_percent_17g() {
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(123456.0), "123456");
    }

    #[test]
    fn downgrades_resp3_types_for_resp2() {
        let m = Frame::Map(vec![(Frame::bulk_from(b"a"), Frame::Integer(1))]);
        assert_eq!(&m.to_bytes(Protocol::Resp2)[..], b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(&m.to_bytes(Protocol::Resp3)[..], b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(&Frame::Null.to_bytes(Protocol::Resp2)[..], b"$-1\r\n");
        assert_eq!(&Frame::NullArray.to_bytes(Protocol::Resp2)[..], b"*-1\r\n");
        assert_eq!(&Frame::Null.to_bytes(Protocol::Resp3)[..], b"_\r\n");
        assert_eq!(
            &Frame::Boolean(true).to_bytes(Protocol::Resp2)[..],
            b":1\r\n"
        );
    }
}
