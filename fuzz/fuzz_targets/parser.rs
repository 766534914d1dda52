//! Fuzz target for herald's request parser (`herald::protocol::RequestParser`).
//!
//! Input: one byte of options, two bytes choosing a split point, then the
//! bytes a client sends. The stream is parsed three ways: whole, cut in two
//! at the chosen point (each part appended to a `BytesMut`, then `next`
//! called until `Ok(None)`), and (for short inputs) one byte at a time.
//! Checked:
//! - no panic, no endless loop: every call returns a command and consumes
//!   bytes, returns `None` (and a second call with no new bytes changes
//!   nothing), or returns an error whose text starts with `Protocol error: `
//!   and holds no line end (it is sent as one `-ERR` line);
//! - the outcome (commands, then the error if any) does not depend on the
//!   cuts while the input is under the 64 KiB inline limit;
//! - every command has at least one argument, and re-encoded as multibulk
//!   it parses back to itself.

#![no_main]

use bytes::{Bytes, BytesMut};
use herald::protocol::parse::INLINE_MAX_SIZE;
use herald::protocol::RequestParser;
use libfuzzer_sys::fuzz_target;

type Outcome = (Vec<Vec<Bytes>>, Option<String>);

fn feed<'a>(max_bulk: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut parser = RequestParser::new(max_bulk);
    let mut buf = BytesMut::new();
    let mut cmds = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match parser.next(&mut buf) {
                Ok(Some(cmd)) => {
                    assert!(buf.len() < before, "a command must consume bytes");
                    assert!(!cmd.is_empty(), "empty commands are skipped");
                    cmds.push(cmd);
                }
                Ok(None) => {
                    let len = buf.len();
                    assert_eq!(parser.next(&mut buf), Ok(None), "None is stable");
                    assert_eq!(buf.len(), len, "a repeated None consumes nothing");
                    break;
                }
                Err(e) => {
                    assert!(e.0.starts_with("Protocol error: "), "bad text {:?}", e.0);
                    assert!(!e.0.contains(['\r', '\n']), "line end in {:?}", e.0);
                    return (cmds, Some(e.0));
                }
            }
        }
    }
    (cmds, None)
}

fn encode(cmds: &[Vec<Bytes>]) -> Vec<u8> {
    let mut out = Vec::new();
    for cmd in cmds {
        out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for arg in cmd {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [opts, a, b, stream @ ..] = data else {
        return;
    };
    // A tiny proto-max-bulk-len reaches "invalid bulk length" more often.
    let max_bulk = if opts & 1 == 1 { 8 } else { 512 * 1024 * 1024 };
    let cut = usize::from(u16::from_le_bytes([*a, *b])) % (stream.len() + 1);

    let whole = feed(max_bulk, [stream]);
    let split = feed(max_bulk, [&stream[..cut], &stream[cut..]]);
    if stream.len() <= INLINE_MAX_SIZE {
        assert_eq!(whole, split, "outcome depends on the cut at {cut}");
        if stream.len() <= 2048 {
            assert_eq!(whole, feed(max_bulk, stream.chunks(1)), "byte by byte");
        }
    }

    // What was parsed re-encodes as multibulk and parses back to itself.
    let again = feed(max_bulk, [encode(&whole.0).as_slice()]);
    if again.1.is_none() {
        assert_eq!(again.0, whole.0, "round trip");
    } else {
        // Only an argument over a tiny proto-max-bulk-len may fail.
        assert_eq!(
            again.1.as_deref(),
            Some("Protocol error: invalid bulk length")
        );
        assert!(whole.0.iter().flatten().any(|arg| arg.len() > max_bulk));
    }
});
