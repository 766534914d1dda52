//! Differential suite: scripted sessions run against a real `redis-server`
//! (7.0.15) and against herald; every byte each connection receives must be
//! the same on both.
//!
//! # How it runs
//!
//! One test, `differential`, starts a redis-server on a free port (the
//! binary comes from `HERALD_REDIS_SERVER` or `PATH`; `bash scripts/test.sh`
//! installs it) and herald in-process on port 0, then runs every case found
//! in `tests/differential/*.case`, one after the other. Each case is first run
//! against redis-server alone: if one of its reads does not complete there,
//! the case itself is broken and is reported as such. Then it is run against
//! herald, and after every read step the bytes received are compared with
//! what redis-server sent at the same step. Between cases the harness waits
//! (bounded) until neither server reports any channel, pattern or shard
//! channel, so that cases do not see each other's subscriptions. Every
//! failing case is reported (file, line, step and both byte strings), then
//! the test fails.
//!
//! Environment:
//! - `HERALD_REDIS_SERVER`: path of the redis-server binary.
//! - `HERALD_DIFF_SELF=1`: compare redis-server with a second redis-server
//!   instead of herald (checks the harness and the cases themselves).
//! - `HERALD_DIFF_CASES=a,b`: run only the cases whose file name or title
//!   contains one of these substrings.
//! - `HERALD_DIFF_TIMEOUT_MS`: per-read timeout (default 5000).
//! - `HERALD_DIFF_REPEAT=N`: run the whole suite N times (flakiness hunt).
//! - `HERALD_DIFF_SHOW=1`: print what redis-server sent at each read step
//!   (for writing cases).
//!
//! # Case files
//!
//! A case file holds one or more cases. A line `# title: TEXT` starts a new
//! case (steps before the first title form a case named after the file).
//! Other lines starting with `#` and blank lines are comments. Each case gets
//! fresh connections; a connection is named by a word (`A`, `B`, `sub1`) and
//! is opened on first use. Steps:
//!
//! - `A> ARGS...`: send one command as a RESP multibulk. Arguments are split
//!   as redis-cli splits them: `"double quotes"` with `\n \r \t \b \a \\ \"
//!   \xHH` escapes, `'single quotes'` with `\'`.
//! - `A> RAW BYTES`: send exact bytes. `\r \n \t \0 \\ \xHH` are escapes;
//!   other characters (spaces inside too) are sent as written; leading and
//!   trailing blanks are dropped (write `\x20` for a space at either end).
//! - `A> INLINE TEXT`: send `TEXT` exactly as written (no escapes: the
//!   server parses the quotes and escapes of inline commands) followed by
//!   `\r\n`.
//! - `A> REPEAT N TEXT`: send `TEXT` (escapes as in RAW) `N` times.
//! - `A>> ...`: like `A>` but queued; everything queued on `A` leaves in one
//!   write together with `A`'s next `>` step (or before its next `<` step).
//!   Used for pipelines.
//! - `A< N [~directives]`: read exactly `N` complete RESP2/RESP3 frames
//!   (push `>` frames count as frames) and compare them.
//! - `A< close [~directives]`: read until the server closes the connection
//!   and compare everything received.
//!
//! A `#` that starts a word (outside quotes) begins a trailing comment; write
//! `"#x"` (or `\x23` in RAW) to send one. Every read has a timeout; a
//! timeout, an early close or bytes left unread at the end of a case fail the
//! case. Directives on a `<` step loosen the comparison, for values that are
//! inherently server-specific (use them sparingly):
//!
//! - `~ignore`: each frame only needs the same RESP type on both servers.
//! - `~shape`: same types, lengths of aggregates and nesting; scalar contents
//!   may differ.
//! - `~sorted`: compare the frames as a multiset (order-free).
//! - `~sorted=I`: element `I` (0-based) of each aggregate frame may come in
//!   any order across the frames (compared as a multiset); everything else is
//!   compared in order. `UNSUBSCRIBE` with no argument confirms channels in
//!   the order of Redis's hash table, while the counts still go down one by
//!   one: `A< 3 ~sorted=1`.
//! - `~unordered`: the elements of each aggregate frame (the pairs of a
//!   map) may come in any order, e.g. `PUBSUB CHANNELS`, whose order follows
//!   Redis's hash table.
//! - `~mask=KEY`: inside any aggregate, the element that follows a string
//!   element equal to `KEY` is replaced by a placeholder (HELLO's `id`,
//!   CONFIG GET's `port`). May be repeated.
//! - `~mask-at=P1,P2`: masks the element at each path of indices into the
//!   frame (`*.0,*.1` = elements 0 and 1 of every element): SLOWLOG GET's
//!   ids, times and durations.
//! - `~mask-words=0,2`: masks the space-separated words at these indices of
//!   string frames: MONITOR lines' time stamp and client address.
//! - `~mask-kv=k1,k2`: inside string values made of `key=value` words, the
//!   values of those keys are replaced by a placeholder (CLIENT INFO).

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Case files
// ---------------------------------------------------------------------------

/// One scripted session.
#[derive(Debug, Clone)]
struct Case {
    /// The file it comes from (for messages).
    file: PathBuf,
    /// Line of its title (or 1).
    line: usize,
    /// The `# title:` text, or the file name.
    title: String,
    /// What to do, in order.
    steps: Vec<Step>,
}

/// One line of a case.
#[derive(Debug, Clone)]
struct Step {
    /// 1-based line number in the file.
    line: usize,
    /// The line as written, for messages.
    text: String,
    /// Connection name.
    conn: String,
    /// What the step does.
    action: Action,
}

#[derive(Debug, Clone)]
enum Action {
    /// Send these bytes (after anything queued on the connection).
    Send(Vec<u8>),
    /// Queue these bytes for the connection's next send.
    Queue(Vec<u8>),
    /// Read frames (or until close) and compare.
    Read { until: ReadUntil, norms: Vec<Norm> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadUntil {
    /// Exactly this many complete frames.
    Frames(usize),
    /// Everything until the server closes the connection.
    Close,
}

/// A loosening of the comparison of one read step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Norm {
    Ignore,
    Shape,
    Sorted,
    SortedAt(usize),
    Unordered,
    Mask(Vec<u8>),
    MaskKv(Vec<String>),
    MaskAt(Vec<Vec<Option<usize>>>),
    MaskWords(Vec<usize>),
}

fn parse_case_file(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cases: Vec<Case> = Vec::new();
    let mut current = Case {
        file: path.to_path_buf(),
        line: 1,
        title: stem.clone(),
        steps: Vec::new(),
    };
    for (idx, raw_line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = raw_line.trim();
        let err = |msg: String| format!("{}:{lineno}: {msg}: {raw_line}", path.display());
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(title) = rest.trim_start().strip_prefix("title:") {
                if !current.steps.is_empty() {
                    cases.push(current);
                }
                current = Case {
                    file: path.to_path_buf(),
                    line: lineno,
                    title: title.trim().to_string(),
                    steps: Vec::new(),
                };
            }
            continue;
        }
        let name_len = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| err("expected `NAME>` or `NAME<`".into()))?;
        if name_len == 0 {
            return Err(err("missing connection name".into()));
        }
        let conn = line[..name_len].to_string();
        let rest = &line[name_len..];
        let action = if let Some(body) = rest.strip_prefix(">>") {
            Action::Queue(parse_send(body).map_err(err)?)
        } else if let Some(body) = rest.strip_prefix('>') {
            Action::Send(parse_send(body).map_err(err)?)
        } else if let Some(body) = rest.strip_prefix('<') {
            parse_read(body).map_err(err)?
        } else {
            return Err(err(
                "expected `>`, `>>` or `<` after the connection name".into()
            ));
        };
        current.steps.push(Step {
            line: lineno,
            text: line.to_string(),
            conn,
            action,
        });
    }
    if !current.steps.is_empty() {
        cases.push(current);
    }
    for case in &cases {
        check_case(case)?;
    }
    Ok(cases)
}

/// Static checks: a case must read something, and must not end with queued
/// bytes that are never sent.
fn check_case(case: &Case) -> Result<(), String> {
    if !case
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Read { .. }))
    {
        return Err(format!(
            "{}:{}: case `{}` has no read step",
            case.file.display(),
            case.line,
            case.title
        ));
    }
    let mut queued: HashMap<&str, usize> = HashMap::new();
    for s in &case.steps {
        match s.action {
            Action::Queue(_) => {
                queued.insert(&s.conn, s.line);
            }
            _ => {
                queued.remove(s.conn.as_str());
            }
        }
    }
    if let Some((conn, line)) = queued.into_iter().next() {
        return Err(format!(
            "{}:{line}: bytes queued on `{conn}` are never sent",
            case.file.display()
        ));
    }
    Ok(())
}

/// Drops a trailing comment: from the first `#` that begins a word outside
/// quotes.
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut in_dq, mut in_sq) = (false, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_dq {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_dq = false;
            }
        } else if in_sq {
            if c == b'\\' && b.get(i + 1) == Some(&b'\'') {
                i += 1;
            } else if c == b'\'' {
                in_sq = false;
            }
        } else if c == b'"' {
            in_dq = true;
        } else if c == b'\'' {
            in_sq = true;
        } else if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
        i += 1;
    }
    s
}

fn parse_send(body: &str) -> Result<Vec<u8>, String> {
    let body = body.trim_start();
    let (word, rest) = match body.find(char::is_whitespace) {
        Some(i) => (&body[..i], &body[i..]),
        None => (body, ""),
    };
    match word {
        "RAW" => {
            let bytes = unescape(strip_raw_comment(rest).trim())?;
            if bytes.is_empty() {
                return Err("RAW needs bytes".into());
            }
            Ok(bytes)
        }
        "INLINE" => {
            let mut bytes = strip_raw_comment(rest).trim().as_bytes().to_vec();
            bytes.extend_from_slice(b"\r\n");
            Ok(bytes)
        }
        "REPEAT" => {
            let rest = strip_raw_comment(rest).trim();
            let (n, text) = rest
                .split_once(char::is_whitespace)
                .ok_or("REPEAT needs a count and text")?;
            let n: usize = n.parse().map_err(|_| format!("bad REPEAT count {n:?}"))?;
            let unit = unescape(text.trim())?;
            Ok(unit.repeat(n))
        }
        _ => {
            let args = split_args(strip_comment(body))?;
            if args.is_empty() {
                return Err("empty command".into());
            }
            Ok(encode_command(&args))
        }
    }
}

/// RAW text has no quotes: a comment starts at the first `#` after a blank.
fn strip_raw_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

fn parse_read(body: &str) -> Result<Action, String> {
    let body = strip_raw_comment(body);
    let mut words = body.split_whitespace();
    let what = words.next().ok_or("`<` needs a count or `close`")?;
    let until = if what == "close" {
        ReadUntil::Close
    } else {
        let n: usize = what
            .parse()
            .map_err(|_| format!("bad frame count {what:?}"))?;
        if n == 0 {
            return Err("frame count must be at least 1".into());
        }
        ReadUntil::Frames(n)
    };
    let mut norms = Vec::new();
    for w in words {
        let norm = match w {
            "~ignore" => Norm::Ignore,
            "~shape" => Norm::Shape,
            "~sorted" => Norm::Sorted,
            "~unordered" => Norm::Unordered,
            _ if w.starts_with("~sorted=") => {
                let i = &w["~sorted=".len()..];
                Norm::SortedAt(i.parse().map_err(|_| format!("bad index in {w:?}"))?)
            }
            _ => {
                if let Some(key) = w.strip_prefix("~mask=") {
                    Norm::Mask(unescape(key)?)
                } else if let Some(keys) = w.strip_prefix("~mask-kv=") {
                    Norm::MaskKv(keys.split(',').map(str::to_string).collect())
                } else if let Some(paths) = w.strip_prefix("~mask-at=") {
                    let mut all = Vec::new();
                    for p in paths.split(',') {
                        let mut path = Vec::new();
                        for step in p.split('.') {
                            path.push(if step == "*" {
                                None
                            } else {
                                Some(step.parse().map_err(|_| format!("bad path in {w:?}"))?)
                            });
                        }
                        all.push(path);
                    }
                    Norm::MaskAt(all)
                } else if let Some(idx) = w.strip_prefix("~mask-words=") {
                    let mut v = Vec::new();
                    for i in idx.split(',') {
                        v.push(i.parse().map_err(|_| format!("bad index in {w:?}"))?);
                    }
                    Norm::MaskWords(v)
                } else {
                    return Err(format!("unknown directive {w:?}"));
                }
            }
        };
        norms.push(norm);
    }
    Ok(Action::Read { until, norms })
}

/// `\r \n \t \0 \\ \xHH` escapes.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or("short \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x{hex}"))?);
                i += 2;
            }
            other => {
                return Err(format!(
                    "bad escape \\{}",
                    other.map(|&c| c as char).unwrap_or(' ')
                ))
            }
        }
        i += 2;
    }
    Ok(out)
}

/// Splits a line into arguments exactly as redis-cli does (`sdssplitargs`).
fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let is_space = |c: u8| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < b.len() && is_space(b[p]) {
            p += 1;
        }
        if p >= b.len() {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = at(p);
            if inq {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    let hex = std::str::from_utf8(&b[p + 2..p + 4]).unwrap();
                    cur.push(u8::from_str_radix(hex, 16).unwrap());
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        o => o,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err("unbalanced quotes".into());
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return Err("closing quote must be followed by a space".into());
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err("unbalanced quotes".into());
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    _ => cur.push(c),
                }
            }
            p += 1;
        }
        args.push(cur);
    }
}

fn encode_command(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

// ---------------------------------------------------------------------------
// RESP frames
// ---------------------------------------------------------------------------

/// A parsed RESP2/RESP3 frame, kept exact enough to re-encode byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// `+ - : , # ( _` lines: the type byte and the line's text.
    Line(u8, Vec<u8>),
    /// `$ ! =` blobs; `None` is a null (`$-1`).
    Blob(u8, Option<Vec<u8>>),
    /// `* ~ > % |` aggregates (maps and attributes hold keys and values
    /// flat); `None` is a null array (`*-1`).
    Agg(u8, Option<Vec<Frame>>),
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| p + from)
}

/// Parses one frame at `pos`: `Ok(None)` when more bytes are needed.
fn parse_frame(buf: &[u8], pos: usize) -> Result<Option<(Frame, usize)>, String> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..eol];
    let next = eol + 2;
    let int = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length in {:?}", escape(&buf[pos..next])))
    };
    match kind {
        b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => {
            Ok(Some((Frame::Line(kind, line.to_vec()), next)))
        }
        b'$' | b'!' | b'=' => {
            let n = int()?;
            if n < 0 {
                return Ok(Some((Frame::Blob(kind, None), next)));
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(format!("blob not followed by CRLF at byte {end}"));
            }
            Ok(Some((
                Frame::Blob(kind, Some(buf[next..end].to_vec())),
                end + 2,
            )))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int()?;
            if n < 0 {
                return Ok(Some((Frame::Agg(kind, None), next)));
            }
            let count = if matches!(kind, b'%' | b'|') {
                2 * n
            } else {
                n
            } as usize;
            let mut items = Vec::with_capacity(count.min(1024));
            let mut at = next;
            for _ in 0..count {
                match parse_frame(buf, at)? {
                    Some((f, after)) => {
                        items.push(f);
                        at = after;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Frame::Agg(kind, Some(items)), at)))
        }
        other => Err(format!(
            "unknown RESP type byte {:?} at byte {pos}",
            other as char
        )),
    }
}

fn encode_frame(f: &Frame, out: &mut Vec<u8>) {
    match f {
        Frame::Line(k, text) => {
            out.push(*k);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Frame::Blob(k, None) => {
            out.push(*k);
            out.extend_from_slice(b"-1\r\n");
        }
        Frame::Blob(k, Some(data)) => {
            out.push(*k);
            out.extend_from_slice(format!("{}\r\n", data.len()).as_bytes());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Frame::Agg(k, None) => {
            out.push(*k);
            out.extend_from_slice(b"-1\r\n");
        }
        Frame::Agg(k, Some(items)) => {
            let n = if matches!(k, b'%' | b'|') {
                items.len() / 2
            } else {
                items.len()
            };
            out.push(*k);
            out.extend_from_slice(format!("{n}\r\n").as_bytes());
            for i in items {
                encode_frame(i, out);
            }
        }
    }
}

fn shape(f: &Frame) -> String {
    match f {
        Frame::Line(k, _) | Frame::Blob(k, _) | Frame::Agg(k, None) => (*k as char).to_string(),
        Frame::Agg(k, Some(items)) => {
            let inner: Vec<String> = items.iter().map(shape).collect();
            format!("{}{}[{}]", *k as char, items.len(), inner.join(" "))
        }
    }
}

fn string_value(f: &Frame) -> Option<&[u8]> {
    match f {
        Frame::Line(b'+', t) => Some(t),
        Frame::Blob(b'$', Some(d)) => Some(d),
        _ => None,
    }
}

const MASKED: &[u8] = b"<masked>";

fn apply_mask(f: &mut Frame, key: &[u8]) {
    if let Frame::Agg(_, Some(items)) = f {
        let mut i = 0;
        while i < items.len() {
            if string_value(&items[i]) == Some(key) && i + 1 < items.len() {
                items[i + 1] = Frame::Line(b'+', MASKED.to_vec());
                i += 2;
            } else {
                apply_mask(&mut items[i], key);
                i += 1;
            }
        }
    }
}

fn apply_mask_kv(f: &mut Frame, keys: &[String]) {
    let mask_text = |t: &mut Vec<u8>| {
        let s = String::from_utf8_lossy(t).into_owned();
        let masked: Vec<String> = s
            .split(' ')
            .map(|w| match w.split_once('=') {
                Some((k, _)) if keys.iter().any(|x| x == k) => format!("{k}=<masked>"),
                _ => w.to_string(),
            })
            .collect();
        *t = masked.join(" ").into_bytes();
    };
    match f {
        Frame::Line(b'+', t) => mask_text(t),
        // A verbatim string starts with its format: `txt:`.
        Frame::Blob(b'=', Some(d)) if d.len() >= 4 && d[3] == b':' => {
            let mut text = d.split_off(4);
            mask_text(&mut text);
            d.extend_from_slice(&text);
        }
        Frame::Blob(_, Some(d)) => mask_text(d),
        Frame::Agg(_, Some(items)) => items.iter_mut().for_each(|i| apply_mask_kv(i, keys)),
        _ => {}
    }
}

/// Masks the element at `path` inside an aggregate frame (`None` steps
/// match every index): SLOWLOG GET's ids, times and durations.
fn apply_mask_at(f: &mut Frame, path: &[Option<usize>]) {
    let Some((step, rest)) = path.split_first() else {
        *f = Frame::Line(b'+', MASKED.to_vec());
        return;
    };
    if let Frame::Agg(_, Some(items)) = f {
        for (i, item) in items.iter_mut().enumerate() {
            if step.is_none_or(|s| s == i) {
                apply_mask_at(item, rest);
            }
        }
    }
}

/// Masks the space-separated words at the given indices of string frames
/// (MONITOR lines: the time stamp and the client's address).
fn apply_mask_words(f: &mut Frame, idx: &[usize]) {
    let mask = |t: &mut Vec<u8>| {
        let words: Vec<&[u8]> = t.split(|&b| b == b' ').collect();
        let mut out = Vec::new();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            if idx.contains(&i) {
                out.extend_from_slice(MASKED);
            } else {
                out.extend_from_slice(w);
            }
        }
        *t = out;
    };
    match f {
        Frame::Line(b'+', t) => mask(t),
        Frame::Blob(_, Some(d)) => mask(d),
        Frame::Agg(_, Some(items)) => items.iter_mut().for_each(|i| apply_mask_words(i, idx)),
        _ => {}
    }
}

/// Puts the elements of an aggregate (the pairs of a map) in a canonical
/// order.
fn sort_elements(f: &mut Frame) {
    let enc = |f: &Frame| {
        let mut out = Vec::new();
        encode_frame(f, &mut out);
        out
    };
    if let Frame::Agg(kind, Some(items)) = f {
        if matches!(kind, b'%' | b'|') {
            let mut pairs: Vec<(Vec<u8>, Frame, Frame)> = Vec::new();
            let mut it = std::mem::take(items).into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                let mut key = enc(&k);
                key.extend(enc(&v));
                pairs.push((key, k, v));
            }
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            *items = pairs.into_iter().flat_map(|(_, k, v)| [k, v]).collect();
        } else {
            items.sort_by_key(enc);
        }
    }
}

/// Splits bytes into complete frames plus whatever trails them (for `close`
/// reads, which may end in a partial frame or garbage).
fn split_frames(buf: &[u8]) -> (Vec<Frame>, Vec<u8>) {
    let mut frames = Vec::new();
    let mut pos = 0;
    while let Ok(Some((f, next))) = parse_frame(buf, pos) {
        frames.push(f);
        pos = next;
    }
    (frames, buf[pos..].to_vec())
}

/// What a read step compares: the frames normalised by the step's
/// directives, then rendered as comparable strings.
fn comparison_key(bytes: &[u8], norms: &[Norm]) -> Vec<String> {
    let (mut frames, rest) = split_frames(bytes);
    for n in norms {
        match n {
            Norm::Mask(key) => frames.iter_mut().for_each(|f| apply_mask(f, key)),
            Norm::MaskKv(keys) => frames.iter_mut().for_each(|f| apply_mask_kv(f, keys)),
            Norm::MaskAt(paths) => {
                for f in frames.iter_mut() {
                    for p in paths {
                        apply_mask_at(f, p);
                    }
                }
            }
            Norm::MaskWords(idx) => frames.iter_mut().for_each(|f| apply_mask_words(f, idx)),
            _ => {}
        }
    }
    if norms.contains(&Norm::Unordered) {
        frames.iter_mut().for_each(sort_elements);
    }
    let mut unordered: Vec<String> = Vec::new();
    for n in norms {
        if let Norm::SortedAt(i) = n {
            for f in frames.iter_mut() {
                if let Frame::Agg(_, Some(items)) = f {
                    if let Some(item) = items.get_mut(*i) {
                        let mut out = Vec::new();
                        encode_frame(item, &mut out);
                        unordered.push(escape(&out));
                        *item = Frame::Line(b'+', MASKED.to_vec());
                    }
                }
            }
        }
    }
    unordered.sort();
    let mut keys: Vec<String> = frames
        .iter()
        .map(|f| {
            if norms.contains(&Norm::Ignore) {
                match f {
                    Frame::Line(k, _) | Frame::Blob(k, _) | Frame::Agg(k, _) => {
                        (*k as char).to_string()
                    }
                }
            } else if norms.contains(&Norm::Shape) {
                shape(f)
            } else {
                let mut out = Vec::new();
                encode_frame(f, &mut out);
                escape(&out)
            }
        })
        .collect();
    if norms.contains(&Norm::Sorted) {
        keys.sort();
    }
    if !unordered.is_empty() {
        keys.push(format!("(order-free elements) {}", unordered.join(" ")));
    }
    if !rest.is_empty() {
        keys.push(format!("(trailing) {}", escape(&rest)));
    }
    keys
}

/// Bytes as a readable string: printable ASCII as is, `\r \n \t \\ \"`
/// escaped, anything else as `\xHH`.
fn escape(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 8);
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Escapes, shortening very long byte strings in the middle.
fn show(b: &[u8]) -> String {
    const MAX: usize = 600;
    if b.len() <= MAX {
        format!("\"{}\"", escape(b))
    } else {
        format!(
            "\"{}\" ... ({} bytes) ... \"{}\"",
            escape(&b[..MAX / 2]),
            b.len() - MAX,
            escape(&b[b.len() - MAX / 2..])
        )
    }
}

// ---------------------------------------------------------------------------
// Running a case against one server
// ---------------------------------------------------------------------------

/// One client connection of a case.
struct Conn {
    stream: TcpStream,
    /// Received and not yet consumed by a read step.
    buf: Vec<u8>,
    /// Bytes queued by `>>` steps.
    queued: Vec<u8>,
}

/// How one read step ended on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    /// The bytes the step consumed.
    bytes: Vec<u8>,
}

/// Why a case could not run to the end on a server.
struct StepError {
    /// Index of the step in the case.
    step: usize,
    /// What happened (timeout, early close...).
    what: String,
}

impl Conn {
    fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            queued: Vec::new(),
        })
    }

    fn flush_queued(&mut self) {
        if !self.queued.is_empty() {
            let bytes = std::mem::take(&mut self.queued);
            // A write error (the server closed on a protocol error) is not
            // itself compared: the reads that follow show what happened.
            let _ = self.stream.write_all(&bytes);
        }
    }

    /// Reads more bytes, waiting at most until `deadline`: `Ok(false)` on EOF.
    fn fill(&mut self, deadline: Instant) -> Result<bool, String> {
        let now = Instant::now();
        if now >= deadline {
            return Err("timeout".into());
        }
        self.stream
            .set_read_timeout(Some(deadline - now))
            .map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err("timeout".into())
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(false)
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn read_frames(&mut self, n: usize, timeout: Duration) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut pos = 0;
            let mut got = 0;
            while got < n {
                match parse_frame(&self.buf, pos) {
                    Ok(Some((_, next))) => {
                        pos = next;
                        got += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(format!(
                            "malformed reply ({e}); received {}",
                            show(&self.buf)
                        ))
                    }
                }
            }
            if got == n {
                return Ok(self.buf.drain(..pos).collect());
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(format!(
                        "connection closed after {got} of {n} frames; received {}",
                        show(&self.buf)
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "{e} after {got} of {n} frames; received {}",
                        show(&self.buf)
                    ))
                }
            }
        }
    }

    fn read_until_close(&mut self, timeout: Duration) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) => return Ok(std::mem::take(&mut self.buf)),
                Err(e) => {
                    return Err(format!(
                        "{e} waiting for the close; received {}",
                        show(&self.buf)
                    ))
                }
            }
        }
    }
}

/// Runs `case` against the server at `addr`. With `expected` (the reference
/// server's observations), every read is compared as soon as it completes.
fn run_case(
    case: &Case,
    addr: SocketAddr,
    timeout: Duration,
    expected: Option<&[Observed]>,
) -> Result<Vec<Observed>, CaseFailure> {
    let mut conns: HashMap<String, Conn> = HashMap::new();
    let mut observed = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        let fail = |what: String| CaseFailure::Step(StepError { step: i, what });
        if !conns.contains_key(&step.conn) {
            let c = Conn::open(addr).map_err(|e| fail(format!("cannot connect: {e}")))?;
            conns.insert(step.conn.clone(), c);
        }
        let conn = conns.get_mut(&step.conn).unwrap();
        match &step.action {
            Action::Queue(bytes) => conn.queued.extend_from_slice(bytes),
            Action::Send(bytes) => {
                conn.queued.extend_from_slice(bytes);
                conn.flush_queued();
            }
            Action::Read { until, norms } => {
                conn.flush_queued();
                let bytes = match until {
                    ReadUntil::Frames(n) => conn.read_frames(*n, timeout),
                    ReadUntil::Close => conn.read_until_close(timeout),
                }
                .map_err(|e| match expected {
                    Some(exp) => fail(format!(
                        "{e}; redis-server sent {}",
                        show(&exp[observed.len()].bytes)
                    )),
                    None => fail(e),
                })?;
                let obs = Observed { bytes };
                if let Some(exp) = expected {
                    let want = &exp[observed.len()];
                    let same = if norms.is_empty() {
                        want.bytes == obs.bytes
                    } else {
                        comparison_key(&want.bytes, norms) == comparison_key(&obs.bytes, norms)
                    };
                    if !same {
                        return Err(CaseFailure::Differ {
                            step: i,
                            want: want.bytes.clone(),
                            got: obs.bytes,
                        });
                    }
                }
                observed.push(obs);
            }
        }
    }
    // Bytes that arrived but that no step read: the case is incomplete, or a
    // server sent more than the other.
    let mut names: Vec<&String> = conns.keys().collect();
    names.sort();
    for name in names {
        let c = &conns[name];
        if !c.buf.is_empty() {
            return Err(CaseFailure::Leftover {
                conn: name.clone(),
                bytes: c.buf.clone(),
            });
        }
    }
    for c in conns.values() {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
    Ok(observed)
}

enum CaseFailure {
    /// A step could not complete.
    Step(StepError),
    /// A read step received different bytes than on the reference server.
    Differ {
        step: usize,
        want: Vec<u8>,
        got: Vec<u8>,
    },
    /// Bytes received that no step consumed.
    Leftover { conn: String, bytes: Vec<u8> },
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/// The server a case is compared against: herald, or a second redis-server
/// in self-check mode.
enum Target {
    Herald(herald::server::ServerHandle),
    Redis(common::RedisServer),
}

impl Target {
    fn addr(&self) -> SocketAddr {
        match self {
            Target::Herald(handle) => handle.addr(),
            Target::Redis(r) => r.addr,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Target::Herald(_) => "herald",
            Target::Redis(_) => "redis#2",
        }
    }
}

/// Starts herald in-process (it runs on its own threads) on a free port.
fn start_herald() -> Target {
    let handle = common::herald();
    if let Err(e) = common::wait_for_ping(handle.addr(), Duration::from_secs(10), None) {
        panic!("herald {e}");
    }
    Target::Herald(handle)
}

/// Waits until the server reports no channel, pattern or shard channel (the
/// previous case's connections are gone), at most `timeout`.
fn wait_idle(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let probe = [
        encode_command(&[b"PUBSUB".to_vec(), b"NUMPAT".to_vec()]),
        encode_command(&[b"PUBSUB".to_vec(), b"CHANNELS".to_vec()]),
        encode_command(&[b"PUBSUB".to_vec(), b"SHARDCHANNELS".to_vec()]),
    ]
    .concat();
    let mut conn = Conn::open(addr).map_err(|e| format!("cannot connect: {e}"))?;
    let mut last = Vec::new();
    let idle = common::poll(timeout, || {
        let _ = conn.stream.write_all(&probe);
        match conn.read_frames(3, Duration::from_secs(2)) {
            Ok(reply) if reply == b":0\r\n*0\r\n*0\r\n" => Some(Ok(())),
            Ok(reply) => {
                last = reply;
                None
            }
            Err(e) => Some(Err(e)),
        }
    });
    idle.unwrap_or_else(|| {
        Err(format!(
            "subscriptions of earlier cases still reported after {timeout:?} (PUBSUB NUMPAT/CHANNELS/SHARDCHANNELS: {})",
            show(&last)
        ))
    })
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .collect();
    files.sort();
    files
}

/// Both byte strings, where they first differ and, for long ones, the bytes
/// around that place; with directives, the normalised forms too.
fn explain_difference(tname: &str, want: &[u8], got: &[u8], norms: &[Norm]) -> String {
    let at = want.iter().zip(got).take_while(|(a, b)| a == b).count();
    let mut msg = format!(
        "      redis : {}\n      {tname:6}: {}\n      first difference at byte {at}",
        show(want),
        show(got)
    );
    if want.len().max(got.len()) > 200 {
        let from = at.saturating_sub(40);
        let window = |b: &[u8]| show(&b[from.min(b.len())..(at + 80).min(b.len())]);
        msg.push_str(&format!(
            ", bytes {from}..:\n      redis : {}\n      {tname:6}: {}",
            window(want),
            window(got)
        ));
    }
    if !norms.is_empty() {
        msg.push_str(&format!(
            "\n      normalised redis : {:?}\n      normalised {tname:6}: {:?}",
            comparison_key(want, norms),
            comparison_key(got, norms)
        ));
    }
    msg
}

/// The case file's path relative to the package, for messages.
fn rel(p: &Path) -> String {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(p)
        .display()
        .to_string()
}

fn describe(case: &Case, step: usize) -> String {
    let s = &case.steps[step];
    format!("{}:{} `{}`", rel(&case.file), s.line, s.text)
}

#[test]
fn differential() {
    let self_mode = std::env::var("HERALD_DIFF_SELF").is_ok_and(|v| !v.is_empty() && v != "0");
    let filters: Vec<String> = std::env::var("HERALD_DIFF_CASES")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let timeout = Duration::from_millis(
        std::env::var("HERALD_DIFF_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000),
    );
    let repeat: usize = std::env::var("HERALD_DIFF_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);

    let show_replies = std::env::var("HERALD_DIFF_SHOW").is_ok_and(|v| !v.is_empty() && v != "0");

    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for file in case_files() {
        match parse_case_file(&file) {
            Ok(c) => cases.extend(c),
            Err(e) => problems.push(format!("BAD CASE FILE {e}")),
        }
    }
    cases.retain(|c| {
        filters.is_empty()
            || filters.iter().any(|f| {
                c.title.contains(f.as_str())
                    || c.file
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .contains(f.as_str())
            })
    });
    assert!(
        !cases.is_empty() || !problems.is_empty(),
        "no differential case found"
    );

    let reference = common::RedisServer::start();
    let target = if self_mode {
        Target::Redis(common::RedisServer::start())
    } else {
        start_herald()
    };
    let (ra, ta) = (reference.addr, target.addr());
    let tname = target.name();
    let started = Instant::now();
    let mut passed = 0;
    let mut failed = 0;
    let mut target_idle_ok = true;
    for round in 0..repeat {
        for case in &cases {
            let head = format!("[{}] {}:{}", case.title, rel(&case.file), case.line);
            let head = if repeat > 1 {
                format!("{head} (round {})", round + 1)
            } else {
                head
            };
            if let Err(e) = wait_idle(ra, timeout) {
                problems.push(format!(
                    "FAIL {head}: redis-server not idle before the case: {e}"
                ));
                failed += 1;
                continue;
            }
            if target_idle_ok {
                if let Err(e) = wait_idle(ta, timeout) {
                    // Reported once; later cases run anyway.
                    problems.push(format!("NOTE before {head}: {tname} not idle: {e}"));
                    target_idle_ok = false;
                }
            }
            let expected = match run_case(case, ra, timeout, None) {
                Ok(obs) => obs,
                Err(CaseFailure::Step(e)) => {
                    problems.push(format!(
                        "BROKEN CASE {head}: fails against redis-server itself at {}: {}",
                        describe(case, e.step),
                        e.what
                    ));
                    failed += 1;
                    continue;
                }
                Err(CaseFailure::Leftover { conn, bytes }) => {
                    problems.push(format!(
                        "BROKEN CASE {head}: redis-server sent bytes that no step reads on `{conn}`: {}",
                        show(&bytes)
                    ));
                    failed += 1;
                    continue;
                }
                Err(CaseFailure::Differ { .. }) => unreachable!("nothing to compare with"),
            };
            if show_replies {
                let reads = case
                    .steps
                    .iter()
                    .filter(|s| matches!(s.action, Action::Read { .. }));
                for (step, obs) in reads.zip(&expected) {
                    eprintln!(
                        "{}:{} {:24} {}",
                        rel(&case.file),
                        step.line,
                        step.text,
                        show(&obs.bytes)
                    );
                }
            }
            match run_case(case, ta, timeout, Some(&expected)) {
                Ok(_) => passed += 1,
                Err(f) => {
                    failed += 1;
                    problems.push(match f {
                        CaseFailure::Step(e) => format!(
                            "FAIL {head}\n    at {}: on {tname}: {}",
                            describe(case, e.step),
                            e.what
                        ),
                        CaseFailure::Differ { step, want, got } => {
                            let norms = match &case.steps[step].action {
                                Action::Read { norms, .. } => norms.as_slice(),
                                _ => &[],
                            };
                            format!(
                                "FAIL {head}\n    at {}: replies differ\n{}",
                                describe(case, step),
                                explain_difference(tname, &want, &got, norms)
                            )
                        }
                        CaseFailure::Leftover { conn, bytes } => format!(
                            "FAIL {head}\n    {tname} sent more than redis-server on `{conn}`: {}",
                            show(&bytes)
                        ),
                    });
                }
            }
        }
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!(
        "differential ({} vs redis-server): {} cases, {passed} passed, {failed} failed in {:.1} s",
        tname,
        cases.len() * repeat,
        started.elapsed().as_secs_f64()
    );
    drop(target);
    drop(reference);
    assert!(
        problems.iter().all(|p| p.starts_with("NOTE")),
        "differential suite: {failed} failing case(s), {} problem(s); see the messages above",
        problems.len()
    );
}
