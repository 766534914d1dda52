//! The replication backlog: the last `repl-backlog-size` bytes of the
//! replication stream, kept so that a replica whose link broke can get
//! what it missed (a partial resync, `+CONTINUE`) instead of a whole new
//! copy of the dataset.

use std::collections::VecDeque;

use bytes::Bytes;

/// A bounded window over the replication stream. Offsets are stream byte
/// counts (`master_repl_offset`): the backlog holds the bytes between
/// [`start`](Backlog::start) and [`end`](Backlog::end).
#[derive(Debug)]
pub struct Backlog {
    /// Chunks as they were fed, oldest first (shared with the replicas'
    /// outboxes: feeding copies nothing).
    chunks: VecDeque<Bytes>,
    /// Bytes held in `chunks`.
    held: usize,
    /// Bytes to skip at the front of the first chunk (trimmed).
    skip: usize,
    /// Most bytes held (`repl-backlog-size`).
    size: usize,
    /// Stream offset just past the newest byte.
    end: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte has stream offset
    /// `end`.
    pub fn new(size: usize, end: u64) -> Backlog {
        Backlog {
            chunks: VecDeque::new(),
            held: 0,
            skip: 0,
            size: size.max(1),
            end,
        }
    }

    /// Appends `bytes`, dropping the oldest beyond the size.
    pub fn push(&mut self, bytes: Bytes) {
        self.end += bytes.len() as u64;
        self.held += bytes.len();
        self.chunks.push_back(bytes);
        self.trim();
    }

    /// Changes the size (CONFIG SET repl-backlog-size).
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        self.trim();
    }

    fn trim(&mut self) {
        while self.held - self.skip > self.size {
            let excess = self.held - self.skip - self.size;
            let Some(first) = self.chunks.front() else {
                break;
            };
            let avail = first.len() - self.skip;
            if excess >= avail {
                self.held -= first.len();
                self.skip = 0;
                self.chunks.pop_front();
            } else {
                self.skip += excess;
            }
        }
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> u64 {
        (self.held - self.skip) as u64
    }

    /// Stream offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.end - self.histlen()
    }

    /// Stream offset just past the newest byte.
    #[cfg(test)]
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The bytes from stream offset `from` to the end, if the backlog
    /// still holds them all.
    pub fn since(&self, from: u64) -> Option<Vec<Bytes>> {
        if from < self.start() || from > self.end {
            return None;
        }
        let mut to_skip = (from - self.start()) as usize + self.skip;
        let mut out = Vec::new();
        for c in &self.chunks {
            if to_skip >= c.len() {
                to_skip -= c.len();
                continue;
            }
            out.push(c.slice(to_skip..));
            to_skip = 0;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(parts: Vec<Bytes>) -> Vec<u8> {
        parts.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn keeps_the_last_size_bytes() {
        let mut b = Backlog::new(10, 100);
        b.push(Bytes::from_static(b"abcdef"));
        b.push(Bytes::from_static(b"ghijkl"));
        assert_eq!(b.end(), 112);
        assert_eq!(b.histlen(), 10);
        assert_eq!(b.start(), 102);
        assert_eq!(joined(b.since(102).unwrap_or_default()), b"cdefghijkl");
        assert_eq!(joined(b.since(108).unwrap_or_default()), b"ijkl");
        assert_eq!(joined(b.since(112).unwrap_or_default()), b"");
        assert!(b.since(101).is_none());
        assert!(b.since(113).is_none());
        b.resize(3);
        assert_eq!(joined(b.since(109).unwrap_or_default()), b"jkl");
    }
}
