//! The slow log (SLOWLOG GET / LEN / RESET), as Redis 7.0's `slowlog.c`.
//!
//! A command whose run took at least `slowlog-log-slower-than`
//! microseconds (negative: never, 0: every command) is recorded, newest
//! first, keeping at most `slowlog-max-len` entries. An entry keeps at most
//! [`MAX_ARGC`] arguments (the last one then says how many more there
//! were) and at most [`MAX_STRING`] bytes of each (with how many more),
//! exactly as Redis words it, plus the client's address and name.
//!
//! The log sits behind a mutex that only a slow command (or SLOWLOG
//! itself) takes: whether a command is slow is decided before, from the
//! duration and an atomic threshold (see [`super::Observe`]).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::protocol::Frame;

/// Most arguments an entry keeps (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const MAX_ARGC: usize = 32;
/// Most bytes kept of one argument (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const MAX_STRING: usize = 128;

/// One slow command.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique, increasing id (not reset by SLOWLOG RESET, as in Redis).
    pub id: u64,
    /// Unix time (seconds) the command was logged.
    pub time: u64,
    /// How long it ran, in microseconds.
    pub duration_us: u64,
    /// The arguments, shortened as described in the module header.
    pub args: Vec<Bytes>,
    /// `ip:port` of the client.
    pub peer: String,
    /// The client's name (empty if none).
    pub name: Bytes,
}

/// The slow log itself: newest entry first.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// The arguments an entry keeps: at most [`MAX_ARGC`], each at most
/// [`MAX_STRING`] bytes, with Redis's "... (N more arguments)" and
/// "... (N more bytes)" markers.
pub fn shorten(args: &[Bytes]) -> Vec<Bytes> {
    let argc = args.len();
    let kept = argc.min(MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (j, a) in args.iter().take(kept).enumerate() {
        if kept != argc && j == kept - 1 {
            out.push(Bytes::from(format!(
                "... ({} more arguments)",
                argc - kept + 1
            )));
        } else if a.len() > MAX_STRING {
            let mut s = a[..MAX_STRING].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
            out.push(Bytes::from(s));
        } else {
            // Copied: an argument is a slice of the client's read buffer.
            out.push(Bytes::copy_from_slice(a));
        }
    }
    out
}

impl SlowLog {
    /// Records a command (already known to be slow enough) and trims the
    /// log to `max_len` entries.
    pub fn push(&mut self, mut e: Entry, max_len: usize) {
        e.id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(e);
        self.entries.truncate(max_len);
    }

    /// Number of entries (SLOWLOG LEN).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets every entry (SLOWLOG RESET); ids go on increasing.
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// SLOWLOG GET's reply for the `count` newest entries: for each,
    /// `[id, time, duration, [args...], peer, name]`.
    pub fn get(&self, count: usize) -> Frame {
        Frame::Array(
            self.entries
                .iter()
                .take(count)
                .map(|e| {
                    Frame::Array(vec![
                        Frame::Integer(e.id as i64),
                        Frame::Integer(e.time as i64),
                        Frame::Integer(e.duration_us as i64),
                        Frame::Array(e.args.iter().cloned().map(Frame::Bulk).collect()),
                        Frame::Bulk(Bytes::from(e.peer.clone())),
                        Frame::Bulk(e.name.clone()),
                    ])
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortening_matches_redis() {
        let long = Bytes::from(vec![b'x'; 200]);
        let out = shorten(&[Bytes::from_static(b"set"), long]);
        assert_eq!(out[1].len(), 128 + "... (72 more bytes)".len());
        assert!(out[1].ends_with(b"x... (72 more bytes)"));
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        let out = shorten(&many);
        assert_eq!(out.len(), 32);
        assert_eq!(&out[31][..], b"... (9 more arguments)");
        assert_eq!(&out[30][..], b"30");
    }

    #[test]
    fn newest_first_and_trimmed() {
        let mut log = SlowLog::default();
        let e = |n: &str| Entry {
            id: 0,
            time: 0,
            duration_us: 1,
            args: vec![Bytes::from(n.to_string())],
            peer: String::new(),
            name: Bytes::new(),
        };
        log.push(e("a"), 2);
        log.push(e("b"), 2);
        log.push(e("c"), 2);
        assert_eq!(log.len(), 2);
        let Frame::Array(items) = log.get(10) else {
            panic!("array")
        };
        let Frame::Array(first) = &items[0] else {
            panic!("array")
        };
        assert_eq!(first[0], Frame::Integer(2));
        log.reset();
        assert_eq!(log.len(), 0);
        log.push(e("d"), 2);
        let Frame::Array(items) = log.get(1) else {
            panic!("array")
        };
        let Frame::Array(first) = &items[0] else {
            panic!("array")
        };
        assert_eq!(first[0], Frame::Integer(3));
    }
}
