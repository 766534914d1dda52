//! `herald check-rdb FILE`: checks an RDB file like `redis-check-rdb`:
//! loads every key with the same loader start-up uses (into nothing) and
//! reports the counts, or the first problem with its byte offset.

use bytes::Bytes;

use super::rdb::file::{load, LoadOptions, Sink};
use super::snapshot::Item;

/// Counts what a file holds without keeping it.
#[derive(Default)]
struct Counter {
    keys: u64,
    expires: u64,
    libraries: u64,
}

impl Sink for Counter {
    fn library(&mut self, _code: Bytes) -> Result<(), String> {
        self.libraries += 1;
        Ok(())
    }

    fn key(&mut self, _db: usize, item: Item) -> Result<(), String> {
        self.keys += 1;
        self.expires += item.expire_at.is_some() as u64;
        Ok(())
    }
}

/// Checks the RDB file at the start of `data`: (keys, where it ends), or
/// the error with its offset (`herald check-aof` checks a preamble so).
pub fn check(data: &[u8]) -> Result<(u64, usize), super::rdb::file::LoadError> {
    let mut c = Counter::default();
    let l = load(data, options(), &mut c)?;
    Ok((c.keys, l.end))
}

fn options() -> LoadOptions {
    LoadOptions {
        now_ms: crate::util::now_ms(),
        skip_expired: false,
        verify_checksum: true,
    }
}

/// Runs the command with its arguments (after `check-rdb`); the exit
/// status: 0 when the file is sound, 1 otherwise.
pub fn main(args: &[String]) -> i32 {
    let [path] = args else {
        eprintln!("Usage: herald check-rdb <rdb-file-name>");
        return 1;
    };
    println!("[offset 0] Checking RDB file {path}");
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            println!("--- RDB ERROR DETECTED ---\nCan't open {path}: {e}");
            return 1;
        }
    };
    let mut c = Counter::default();
    match load(&data, options(), &mut c) {
        Ok(l) => {
            println!("[offset {}] \\o/ RDB looks OK! \\o/", l.end);
            println!("[info] RDB version {}", l.version);
            println!("[info] {} keys read", c.keys);
            println!("[info] {} expires", c.expires);
            println!("[info] {} function libraries", c.libraries);
            if l.end < data.len() {
                println!(
                    "[info] {} bytes follow the RDB data (an AOF's commands)",
                    data.len() - l.end
                );
            }
            0
        }
        Err(e) => {
            println!("--- RDB ERROR DETECTED ---");
            println!("[offset {}] {}", e.offset, e.message);
            println!("[additional info] {} keys read before the error", c.keys);
            1
        }
    }
}
