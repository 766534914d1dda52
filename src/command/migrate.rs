//! MIGRATE: moves keys to another Redis-protocol server (redis-server or
//! herald) as RESTORE commands carrying DUMP payloads, as Redis's
//! `migrateCommand`. Like Redis, it runs synchronously with the database
//! held, so the keys cannot change between being sent and being deleted;
//! the target's replies are read with the command's timeout. Keys the
//! target acknowledged are deleted (unless COPY) and logged as one DEL.
//!
//! Redis keeps the connection to a target open for 10 s to reuse it;
//! herald opens one per call (always sending SELECT), which changes the
//! cost of a call, not its effects.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::persist::aof::encode_command;
use crate::persist::rdb;
use crate::protocol::Frame;
use crate::store::Db;

const ERR_CONNECT: &str = "IOERR error or timeout connecting to the client";
const ERR_WRITE: &str = "IOERR error or timeout writing to target instance";
const ERR_READ: &str = "IOERR error or timeout reading to target instance";

/// Options after `MIGRATE host port key db timeout`.
#[derive(Default)]
struct Options {
    copy: bool,
    replace: bool,
    auth: Option<(Option<Bytes>, Bytes)>,
    /// Index of the first key of a KEYS list.
    keys_at: Option<usize>,
}

fn parse_options(args: &[Bytes]) -> Result<Options, &'static str> {
    let mut o = Options::default();
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"copy") {
            o.copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            o.replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") {
            if more == 0 {
                return Err(ERR_SYNTAX);
            }
            j += 1;
            o.auth = Some((None, args[j].clone()));
        } else if a.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(ERR_SYNTAX);
            }
            o.auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !args[3].is_empty() {
                return Err("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string");
            }
            o.keys_at = Some(j + 1);
            break;
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key [key ...]].
pub fn migrate(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let o = match parse_options(args) {
        Ok(o) => o,
        Err(e) => return c.error(e),
    };
    let (Some(timeout), Some(dbid)) = (parse_i64(&args[5]), parse_i64(&args[4])) else {
        return c.error(ERR_NOT_INTEGER);
    };
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let candidates = match o.keys_at {
        Some(at) => &args[at..],
        None => &args[3..4],
    };
    // Keys that exist now (a missing one is skipped, as Redis does).
    let keys: Vec<&Bytes> = candidates.iter().filter(|k| db.get(k).is_some()).collect();
    if keys.is_empty() {
        return c.reply(Frame::simple("NOKEY"));
    }
    let enc = super::dump::encoding(c);
    let mut request = Vec::new();
    if let Some((user, password)) = &o.auth {
        let mut cmd = vec![Bytes::from_static(b"AUTH")];
        cmd.extend(user.iter().cloned());
        cmd.push(password.clone());
        encode_command(&mut request, &cmd);
    }
    encode_command(&mut request, &[&b"SELECT"[..], dbid.to_string().as_bytes()]);
    let mut sent = Vec::with_capacity(keys.len());
    for key in keys {
        let ttl = match db.deadline(key) {
            Some(at) => (at as i64 - db.now as i64).max(1),
            None => 0,
        };
        let Some(value) = db.get(key) else {
            continue;
        };
        let payload = rdb::dump(value, &enc);
        let ttl = ttl.to_string();
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), &payload];
        if o.replace {
            cmd.push(b"REPLACE");
        }
        encode_command(&mut request, &cmd);
        sent.push(key.clone());
    }
    let replies = match exchange(
        &args[1],
        &args[2],
        timeout,
        &request,
        1 + usize::from(o.auth.is_some()),
        sent.len(),
    ) {
        Ok(r) => r,
        Err(e) => return c.error(e),
    };
    // An AUTH or SELECT error fails every key; a RESTORE error its own key
    // (the first error is the one reported).
    let preamble_error = replies
        .preamble
        .iter()
        .find(|l| l.starts_with(b"-"))
        .cloned();
    let mut error = preamble_error.clone();
    let mut deleted = Vec::new();
    for (key, line) in sent.iter().zip(&replies.restores) {
        if preamble_error.is_some() || line.starts_with(b"-") {
            error.get_or_insert_with(|| line.clone());
            continue;
        }
        if !o.copy && db.delete(key) {
            deleted.push(key.clone());
        }
    }
    if !deleted.is_empty() {
        db.propagate_with(|| {
            let mut cmd = vec![Bytes::from_static(b"DEL")];
            cmd.extend(deleted.iter().map(|k| crate::store::own(k)));
            cmd
        });
    }
    match error {
        Some(line) => c.error(format!(
            "ERR Target instance replied with error: {}",
            String::from_utf8_lossy(&line[1..])
        )),
        None if replies.restores.len() < sent.len() => c.error(ERR_READ),
        None => c.reply(Frame::ok()),
    }
}

/// The target's reply lines: AUTH / SELECT first, then one per RESTORE
/// (fewer when the connection failed midway).
struct Replies {
    preamble: Vec<Vec<u8>>,
    restores: Vec<Vec<u8>>,
}

/// Connects, sends `request` and reads `preamble` + `restores` reply lines
/// (each a status or an error: the replies of AUTH, SELECT and RESTORE).
fn exchange(
    host: &[u8],
    port: &[u8],
    timeout: Duration,
    request: &[u8],
    preamble: usize,
    restores: usize,
) -> Result<Replies, &'static str> {
    let addr = format!(
        "{}:{}",
        String::from_utf8_lossy(host),
        String::from_utf8_lossy(port)
    );
    let target = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(ERR_CONNECT)?;
    // Redis connects without blocking and waits for the socket to become
    // writable, which a refused connection also does: only a timeout is a
    // connection error there; a refusal shows when it writes.
    let mut stream = TcpStream::connect_timeout(&target, timeout).map_err(|e| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            ERR_CONNECT
        } else {
            ERR_WRITE
        }
    })?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.set_read_timeout(Some(timeout)))
        .map_err(|_| ERR_CONNECT)?;
    stream.write_all(request).map_err(|_| ERR_WRITE)?;
    let mut reader = BufReader::new(stream);
    let mut read_line = || -> Option<Vec<u8>> {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(n) if n > 0 => {
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.pop();
                }
                Some(line)
            }
            _ => None,
        }
    };
    let mut out = Replies {
        preamble: Vec::with_capacity(preamble),
        restores: Vec::with_capacity(restores),
    };
    for _ in 0..preamble {
        out.preamble.push(read_line().ok_or(ERR_READ)?);
    }
    for _ in 0..restores {
        match read_line() {
            Some(l) => out.restores.push(l),
            None => break,
        }
    }
    Ok(out)
}
