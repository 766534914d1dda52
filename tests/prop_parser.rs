//! Property tests for the request parser (`herald::protocol::RequestParser`).
//!
//! - Any sequence of valid commands (multibulk with random binary
//!   arguments, inline commands with bare, single- and double-quoted
//!   arguments, and the empty commands Redis skips: `*0`, `*-1`, blank
//!   lines), encoded and cut into arbitrary chunks fed one at a time into
//!   a `BytesMut`, parses to exactly the commands that were encoded, the
//!   same as when the whole stream is fed at once or byte by byte.
//! - Arbitrary bytes (uniform, and biased towards protocol punctuation)
//!   never panic; every call either returns a command and consumes bytes,
//!   returns `None`, or returns a `ProtocolError` whose text starts with
//!   `Protocol error: ` and holds no line end; a `None` with no new bytes
//!   is stable; and the outcome does not depend on how the input was cut
//!   (below the inline limit, where Redis's outcome does not depend on it
//!   either).
//! - Inputs past the 64 KiB inline / header limits end in the "too big"
//!   errors and do not panic.

use bytes::{Bytes, BytesMut};
use herald::protocol::parse::INLINE_MAX_SIZE;
use herald::protocol::{ProtocolError, RequestParser};
use proptest::prelude::*;
use proptest::sample::Index;

const MAX_BULK: usize = 512 * 1024 * 1024;

/// One unit of a request stream.
#[derive(Debug, Clone)]
enum Item {
    /// `*N` then `$len` bulk strings.
    Multibulk(Vec<Vec<u8>>),
    /// An inline line: each argument with how it is written.
    Inline {
        args: Vec<(Vec<u8>, Quoting)>,
        /// Separator after each argument (spaces / tabs), and before the first.
        lead: Vec<u8>,
        seps: Vec<Vec<u8>>,
        crlf: bool,
    },
    /// `*0`, `*-1`, ...: skipped by the parser.
    EmptyMultibulk(i64),
    /// A line of only blanks: skipped by the parser.
    BlankLine { blanks: Vec<u8>, crlf: bool },
}

#[derive(Debug, Clone, Copy)]
enum Quoting {
    Bare,
    Single,
    Double,
}

impl Item {
    /// The command this item parses to (`None` for the skipped ones).
    fn expected(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            Item::Multibulk(args) => Some(args.clone()),
            Item::Inline { args, .. } => Some(args.iter().map(|(a, _)| a.clone()).collect()),
            Item::EmptyMultibulk(_) | Item::BlankLine { .. } => None,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Item::Multibulk(args) => {
                out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
                for a in args {
                    out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                    out.extend_from_slice(a);
                    out.extend_from_slice(b"\r\n");
                }
            }
            Item::Inline {
                args,
                lead,
                seps,
                crlf,
            } => {
                out.extend_from_slice(lead);
                for ((arg, q), sep) in args.iter().zip(seps) {
                    match q {
                        Quoting::Bare => out.extend_from_slice(arg),
                        Quoting::Single => {
                            out.push(b'\'');
                            out.extend_from_slice(arg);
                            out.push(b'\'');
                        }
                        Quoting::Double => {
                            out.push(b'"');
                            for &c in arg {
                                if c.is_ascii_alphanumeric() || c == b' ' {
                                    out.push(c);
                                } else {
                                    out.extend_from_slice(format!("\\x{c:02x}").as_bytes());
                                }
                            }
                            out.push(b'"');
                        }
                    }
                    out.extend_from_slice(sep);
                }
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            Item::EmptyMultibulk(n) => out.extend_from_slice(format!("*{n}\r\n").as_bytes()),
            Item::BlankLine { blanks, crlf } => {
                out.extend_from_slice(blanks);
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
        }
    }
}

fn blanks(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(&b" \t"[..]), min..=max)
}

/// A bare inline argument: no blanks, quotes, NUL, and not starting with `*`
/// (only the line's first byte decides multibulk vs inline, but keep it simple).
fn bare_arg() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(&b"abcXYZ019:._-{}$+*@\\\x80\xff"[..]),
        1..8,
    )
    .prop_filter("no leading *", |a| a[0] != b'*')
}

fn inline_arg() -> impl Strategy<Value = (Vec<u8>, Quoting)> {
    prop_oneof![
        bare_arg().prop_map(|a| (a, Quoting::Bare)),
        // Single quotes: anything printable but `'` and `\`, possibly empty.
        prop::collection::vec(prop::sample::select(&b"ab \t\"*$-"[..]), 0..6)
            .prop_map(|a| (a, Quoting::Single)),
        // Double quotes: any bytes, escaped as \xHH.
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|a| (a, Quoting::Double)),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 1..6)
            .prop_map(Item::Multibulk),
        3 => (
            prop::collection::vec(inline_arg(), 1..5),
            blanks(0, 2),
            prop::collection::vec(blanks(1, 3), 5),
            any::<bool>(),
        )
            .prop_map(|(args, lead, mut seps, crlf)| {
                seps.truncate(args.len());
                // The last separator is optional trailing blanks.
                if let Some(last) = seps.last_mut() {
                    if last.len() > 1 {
                        last.clear();
                    }
                }
                // The first byte of the line must not be `*`.
                Item::Inline { args, lead, seps, crlf }
            }),
        1 => prop_oneof![Just(0i64), Just(-1i64), -100i64..0].prop_map(Item::EmptyMultibulk),
        1 => (blanks(0, 3), any::<bool>()).prop_map(|(blanks, crlf)| Item::BlankLine { blanks, crlf }),
    ]
}

/// What parsing a stream gave: the commands, then the error if any.
type Outcome = (Vec<Vec<Bytes>>, Option<ProtocolError>);

/// Feeds `chunks` one by one, calling `next` until `Ok(None)` after each,
/// checking the per-call invariants on the way.
fn feed<'a>(
    max_bulk: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Outcome, TestCaseError> {
    let mut parser = RequestParser::new(max_bulk);
    let mut buf = BytesMut::new();
    let mut cmds = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match parser.next(&mut buf) {
                Ok(Some(cmd)) => {
                    prop_assert!(buf.len() < before, "a command must consume bytes");
                    prop_assert!(!cmd.is_empty(), "empty commands are skipped");
                    cmds.push(cmd);
                }
                Ok(None) => {
                    // Stable: with no new bytes, nothing more happens.
                    let len = buf.len();
                    prop_assert_eq!(parser.next(&mut buf), Ok(None));
                    prop_assert_eq!(buf.len(), len);
                    break;
                }
                Err(e) => {
                    prop_assert!(
                        e.0.starts_with("Protocol error: "),
                        "unexpected error text {:?}",
                        e.0
                    );
                    // It is sent as one `-ERR ...` line.
                    prop_assert!(!e.0.contains(['\r', '\n']), "line end in {:?}", e.0);
                    // The connection closes here: nothing after it is read.
                    return Ok((cmds, Some(e)));
                }
            }
        }
    }
    Ok((cmds, None))
}

/// Cuts `data` at the given points (any order, duplicates allowed).
fn split<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut prev = 0;
    for a in at {
        chunks.push(&data[prev..a]);
        prev = a;
    }
    chunks.push(&data[prev..]);
    chunks
}

fn as_vecs(cmds: &[Vec<Bytes>]) -> Vec<Vec<Vec<u8>>> {
    cmds.iter()
        .map(|c| c.iter().map(|a| a.to_vec()).collect())
        .collect()
}

/// Bytes biased towards what drives the parser into its states.
fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        prop::sample::select(vec![
            &b"*"[..],
            b"$",
            b"\r\n",
            b"\r",
            b"\n",
            b"0",
            b"1",
            b"2",
            b"3",
            b"-1",
            b"-",
            b"\"",
            b"'",
            b"\\",
            b"\\x4",
            b"\\xzz",
            b" ",
            b"\t",
            b"\0",
            b"PING",
            b"*1\r\n",
            b"*2\r\n",
            b"$1\r\n",
            b"$0\r\n",
            b"$4\r\n",
            b"9223372036854775808",
            b"2147483648",
            b"536870913",
        ])
        .prop_map(|t| t.to_vec()),
    ];
    prop::collection::vec(token, 0..60).prop_map(|ts| ts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Valid streams parse to what was encoded, however they are cut.
    #[test]
    fn any_split_of_a_valid_stream_parses_the_same(
        items in prop::collection::vec(item(), 0..12),
        cuts in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let mut stream = Vec::new();
        for it in &items {
            it.encode(&mut stream);
        }
        let expected: Vec<Vec<Vec<u8>>> = items.iter().filter_map(Item::expected).collect();

        let (whole, err) = feed(MAX_BULK, [stream.as_slice()])?;
        prop_assert_eq!(err, None, "stream {:?}", String::from_utf8_lossy(&stream));
        prop_assert_eq!(as_vecs(&whole), expected.clone());

        let (chunked, err) = feed(MAX_BULK, split(&stream, &cuts))?;
        prop_assert_eq!(err, None);
        prop_assert_eq!(as_vecs(&chunked), expected.clone());

        let (bytewise, err) = feed(MAX_BULK, stream.chunks(1))?;
        prop_assert_eq!(err, None);
        prop_assert_eq!(as_vecs(&bytewise), expected);
    }

    /// Arbitrary bytes: no panic, every call makes progress or stops, and the
    /// outcome does not depend on the cuts.
    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<Index>(), 0..16),
    ) {
        let whole = feed(MAX_BULK, [data.as_slice()])?;
        let chunked = feed(MAX_BULK, split(&data, &cuts))?;
        prop_assert_eq!(whole, chunked);
    }

    /// The same with protocol-shaped noise, and a small proto-max-bulk-len.
    #[test]
    fn protocolish_bytes_never_panic(
        data in protocolish(),
        cuts in prop::collection::vec(any::<Index>(), 0..16),
        small_max in any::<bool>(),
    ) {
        let max = if small_max { 3 } else { MAX_BULK };
        let whole = feed(max, [data.as_slice()])?;
        let chunked = feed(max, split(&data, &cuts))?;
        let bytewise = feed(max, data.chunks(1))?;
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(&whole, &bytewise);
    }

    /// A valid prefix followed by garbage: the valid commands come out first.
    #[test]
    fn valid_prefix_then_garbage(
        items in prop::collection::vec(item(), 1..6),
        garbage in protocolish(),
        cuts in prop::collection::vec(any::<Index>(), 0..16),
    ) {
        let mut stream = Vec::new();
        for it in &items {
            it.encode(&mut stream);
        }
        let expected: Vec<Vec<Vec<u8>>> = items.iter().filter_map(Item::expected).collect();
        stream.extend_from_slice(&garbage);
        let (cmds, _) = feed(MAX_BULK, split(&stream, &cuts))?;
        prop_assert!(cmds.len() >= expected.len());
        prop_assert_eq!(as_vecs(&cmds[..expected.len()]), expected);
    }
}

fn outcome_error(chunks: &[&[u8]]) -> Option<String> {
    let mut parser = RequestParser::new(MAX_BULK);
    let mut buf = BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.next(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Some(e.0),
            }
        }
    }
    None
}

/// Past the 64 KiB limit, lines that never end are cut off with Redis's texts.
#[test]
fn limits_end_in_too_big_errors() {
    let big = vec![b'a'; INLINE_MAX_SIZE + 1];
    let cases: [(&[u8], &str); 3] = [
        (b"PING ", "Protocol error: too big inline request"),
        (b"*", "Protocol error: too big mbulk count string"),
        (b"*1\r\n$", "Protocol error: too big bulk count string"),
    ];
    for (head, text) in cases {
        // Fed in 16 KiB reads, as redis-server reads.
        let stream = [head, big.as_slice()].concat();
        let chunks: Vec<&[u8]> = stream.chunks(16 * 1024).collect();
        assert_eq!(outcome_error(&chunks).as_deref(), Some(text), "{head:?}");
    }
    // A 64 KiB bulk argument is fine: the limit is on header lines.
    let arg = vec![b'x'; INLINE_MAX_SIZE * 2];
    let mut stream = format!("*2\r\n$4\r\nECHO\r\n${}\r\n", arg.len()).into_bytes();
    stream.extend_from_slice(&arg);
    stream.extend_from_slice(b"\r\n");
    let chunks: Vec<&[u8]> = stream.chunks(16 * 1024).collect();
    assert_eq!(outcome_error(&chunks), None);
}
