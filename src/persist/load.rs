//! Reading AOF files: the record parser, start-up replay with Redis's
//! recovery rules, and the checks of `herald check-aof`.
//!
//! # Rules (Redis 7.0's `loadAppendOnlyFiles`)
//!
//! - Files are replayed in manifest order (base, then incremental files),
//!   each by a fresh internal client starting on database 0, through the
//!   normal command path (`command::execute`), with propagation off.
//! - A record cut short by the end of the file (a crash mid-write) in the
//!   *last* file is dropped and the file truncated to the last complete
//!   record, with a warning, when `aof-load-truncated` is `yes` (default);
//!   otherwise start-up stops. A MULTI whose EXEC never made it is dropped
//!   the same way (truncated before the MULTI). A short last record in any
//!   other file stops start-up: data after it would be lost.
//! - A file that starts with `REDIS` (a base written with
//!   `aof-use-rdb-preamble yes`) is loaded as an RDB file first; commands
//!   may follow it.
//! - Anything else that is not a well-formed RESP array of bulk strings
//!   (or a `#` annotation line), or names an unknown command, stops start-up
//!   with the file name and the byte offset of the bad record.

use std::fs;
use std::path::Path;

use bytes::Bytes;

use super::manifest::Manifest;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The file ends inside the record.
    Truncated,
    /// The bytes are not a command record (the reason).
    Bad(&'static str),
}

/// Largest argument count / bulk length accepted from a file (sanity bound
/// so that a corrupt length cannot make us allocate wildly).
const MAX_LEN: u64 = 1 << 40;

/// Reads one `\r\n`-terminated line starting at `pos`; returns the line
/// (without CRLF) and the position after it.
fn line(data: &[u8], pos: usize) -> Result<(&[u8], usize), RecordError> {
    let rest = data.get(pos..).ok_or(RecordError::Truncated)?;
    match memchr::memchr(b'\n', rest) {
        None => Err(RecordError::Truncated),
        Some(i) => {
            if i == 0 || rest[i - 1] != b'\r' {
                return Err(RecordError::Bad("line not terminated by CRLF"));
            }
            Ok((&rest[..i - 1], pos + i + 1))
        }
    }
}

fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Parses the record at `pos`: `Ok(None)` at the end of the data, else the
/// arguments and the position after the record. Annotation lines (`#...`)
/// are skipped.
pub fn next_record(
    data: &Bytes,
    mut pos: usize,
) -> Result<Option<(Vec<Bytes>, usize)>, RecordError> {
    loop {
        if pos >= data.len() {
            return Ok(None);
        }
        if data[pos] == b'#' {
            let (_, next) = line(data, pos)?;
            pos = next;
            continue;
        }
        break;
    }
    if data[pos] != b'*' {
        return Err(RecordError::Bad("expected '*'"));
    }
    let (head, mut p) = line(data, pos)?;
    let argc = number(&head[1..]).ok_or(RecordError::Bad("invalid argument count"))?;
    if !(1..=MAX_LEN).contains(&argc) {
        return Err(RecordError::Bad("invalid argument count"));
    }
    let mut args = Vec::with_capacity(argc.min(1024) as usize);
    for _ in 0..argc {
        if p >= data.len() {
            return Err(RecordError::Truncated);
        }
        if data[p] != b'$' {
            return Err(RecordError::Bad("expected '$'"));
        }
        let (h, after) = line(data, p)?;
        let len = number(&h[1..]).ok_or(RecordError::Bad("invalid bulk length"))?;
        if len > MAX_LEN {
            return Err(RecordError::Bad("invalid bulk length"));
        }
        let end = after
            .checked_add(len as usize)
            .ok_or(RecordError::Bad("invalid bulk length"))?;
        if end + 2 > data.len() {
            return Err(RecordError::Truncated);
        }
        if &data[end..end + 2] != b"\r\n" {
            return Err(RecordError::Bad("bulk string not terminated by CRLF"));
        }
        args.push(data.slice(after..end));
        p = end + 2;
    }
    Ok(Some((args, p)))
}

/// What scanning one file found (without running anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Complete records up to `valid` (a trailing open MULTI excluded).
    pub records: usize,
    /// Bytes that form complete records (and complete transactions).
    pub valid: usize,
    /// The file's size.
    pub size: usize,
    /// Set if the file ends in a problem: (offset, what).
    pub problem: Option<(usize, RecordError)>,
}

/// Scans a file's bytes record by record, as the loader would read them.
pub fn scan(data: &Bytes) -> Scan {
    let mut pos = 0;
    let mut records = 0;
    let mut in_multi: Option<(usize, usize)> = None;
    loop {
        match next_record(data, pos) {
            Ok(None) => break,
            Ok(Some((args, end))) => {
                if args[0].eq_ignore_ascii_case(b"multi") {
                    in_multi = Some((pos, records));
                } else if args[0].eq_ignore_ascii_case(b"exec") {
                    in_multi = None;
                }
                records += 1;
                pos = end;
            }
            Err(e) => {
                let (valid, records) = in_multi.unwrap_or((pos, records));
                return Scan {
                    records,
                    valid,
                    size: data.len(),
                    problem: Some((pos, e)),
                };
            }
        }
    }
    if let Some((start, recs)) = in_multi {
        return Scan {
            records: recs,
            valid: start,
            size: data.len(),
            problem: Some((start, RecordError::Truncated)),
        };
    }
    Scan {
        records,
        valid: pos,
        size: data.len(),
        problem: None,
    }
}

/// What loading did, for the start-up log.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Commands replayed.
    pub commands: usize,
    /// Bytes dropped from the tail of the last file.
    pub truncated: u64,
}

/// Runs the commands of a log being loaded, through the server's own
/// command path (the command layer implements it with an internal client),
/// so that a replayed write is applied exactly as the client's was.
pub trait Replay {
    /// Runs one logged command; false if the server does not know it (the
    /// log is then refused, as Redis refuses it).
    fn command(&mut self, args: Vec<Bytes>) -> bool;
    /// One file is over: the next starts afresh (database 0, no
    /// transaction or block left open), as Redis loads each file with a
    /// new client.
    fn end_of_file(&mut self);
    /// Loads the RDB file at the start of `data` (a base file written with
    /// an RDB preamble); where it ends, or the error naming its offset.
    fn rdb(&mut self, data: &[u8]) -> Result<usize, String>;
}

/// Replays the files of `manifest` (in `dir`) into the keyspace. Errors are
/// complete messages naming the file and offset.
pub fn replay(
    run: &mut dyn Replay,
    dir: &Path,
    manifest: &Manifest,
    load_truncated: bool,
) -> Result<Loaded, String> {
    let files = manifest.load_order();
    // Every file the manifest names must be there before anything loads:
    // redis-server 7.0 stats them all first and refuses to start on the
    // first one missing (a missing file is lost data, even the last one).
    for e in &files {
        if let Err(err) = fs::metadata(dir.join(&e.name)) {
            return Err(format!(
                "Unable to obtain the AOF file {} length. stat: {}",
                e.name,
                super::aof::strerror(&err)
            ));
        }
    }
    let mut out = Loaded::default();
    for (i, e) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let path = dir.join(&e.name);
        let data = match fs::read(&path) {
            Ok(d) => Bytes::from(d),
            Err(err) => {
                return Err(format!(
                    "Can't open the append-only file {}: {err}",
                    path.display()
                ))
            }
        };
        let mut pos = 0;
        if super::rdb::file::is_rdb(&data) {
            // A base written with `aof-use-rdb-preamble yes`: the data set
            // as an RDB file, then (Redis < 7 only) commands.
            pos = run
                .rdb(&data)
                .map_err(|m| format!("Bad RDB preamble in the AOF file {}: {m}", e.name))?;
        }
        let mut multi_start: Option<usize> = None;
        let problem = loop {
            match next_record(&data, pos) {
                Ok(None) => break multi_start.map(|s| (s, RecordError::Truncated, true)),
                Ok(Some((args, end))) => {
                    if args[0].eq_ignore_ascii_case(b"multi") {
                        multi_start = Some(pos);
                    } else if args[0].eq_ignore_ascii_case(b"exec") {
                        multi_start = None;
                    }
                    let name = args[0].clone();
                    if !run.command(args) {
                        return Err(format!(
                            "Unknown command '{}' reading the append only file {} at offset {pos}",
                            String::from_utf8_lossy(&name),
                            e.name
                        ));
                    }
                    out.commands += 1;
                    pos = end;
                }
                Err(err) => break Some((multi_start.unwrap_or(pos), err, multi_start.is_some())),
            }
        };
        run.end_of_file();
        let Some((valid, err, in_multi)) = problem else {
            continue;
        };
        let at = if in_multi { valid } else { pos };
        match err {
            RecordError::Bad(why) => {
                return Err(format!(
                    "Bad file format reading the append only file {} at offset {at} ({why}): make a backup of your AOF file, then use herald check-aof --fix {}",
                    e.name,
                    dir.display()
                ));
            }
            RecordError::Truncated if !last => {
                return Err(format!(
                    "Fatal error: the truncated file {} is not the last file (short read at offset {at})",
                    e.name
                ));
            }
            RecordError::Truncated if !load_truncated => {
                return Err(format!(
                    "Unexpected end of file reading the append only file {} at offset {at}. You can: 1) Make a backup of your AOF file, then use herald check-aof --fix {}. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                    e.name,
                    dir.display()
                ));
            }
            RecordError::Truncated => {
                if in_multi {
                    tracing::warn!(
                        "Revert incomplete MULTI/EXEC transaction in AOF file {}",
                        e.name
                    );
                }
                tracing::warn!(
                    "!!! Warning: short read while loading the AOF file {}!!! Truncating it to offset {valid} (of {}); AOF loaded anyway because aof-load-truncated is enabled",
                    e.name,
                    data.len()
                );
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(valid as u64).and_then(|_| f.sync_all()));
                if let Err(err) = f {
                    return Err(format!(
                        "Error truncating the AOF file {} to offset {valid}: {err}",
                        e.name
                    ));
                }
                out.truncated += (data.len() - valid) as u64;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn parses_records_and_annotations() {
        let d = b("#TS:1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        let (args, end) = next_record(&d, 0).unwrap().unwrap();
        assert_eq!(args, vec![b("GET"), b("k")]);
        assert_eq!(end, d.len());
        assert_eq!(next_record(&d, end), Ok(None));
    }

    #[test]
    fn every_prefix_is_truncated_or_complete() {
        let rec = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n";
        for cut in 1..rec.len() {
            let d = b(&rec[..cut]);
            assert_eq!(next_record(&d, 0), Err(RecordError::Truncated), "cut {cut}");
        }
    }

    #[test]
    fn garbage_is_bad() {
        assert!(matches!(
            next_record(&b("x\r\n"), 0),
            Err(RecordError::Bad(_))
        ));
        assert!(matches!(
            next_record(&b("*1\r\n+OK\r\n"), 0),
            Err(RecordError::Bad(_))
        ));
        assert!(matches!(
            next_record(&b("*1\r\n$2\r\nabXY"), 0),
            Err(RecordError::Bad(_))
        ));
    }

    #[test]
    fn scan_reverts_open_multi() {
        let d = b("*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nMULTI\r\n*1\r\n$4\r\nPING\r\n");
        let s = scan(&d);
        assert_eq!(s.valid, 14);
        assert_eq!(s.records, 1);
    }
}
