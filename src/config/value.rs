//! Option values: parsing a config line's or CONFIG SET's arguments into a
//! [`Value`] exactly as redis-server 7.0 does (same accepted forms, same
//! error texts), and printing a value as CONFIG GET shows it.
//!
//! The C library helpers Redis leans on (`strtoll`, `memtoull`, `strtod`,
//! `sdssplitlen`, `sdscatrepr`) are reproduced here with their quirks, since
//! they decide what is accepted.

use std::path::{Path, PathBuf};

use super::def::{Def, Kind, NumFormat, Special, StrCheck};
use crate::protocol::parse::string_to_i64;
use crate::util::glob;

/// A client class's output buffer limits (`client-output-buffer-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferLimit {
    /// Disconnect as soon as the buffer holds this many bytes (0 = no limit).
    pub hard_bytes: u64,
    /// Disconnect when the buffer stays above this many bytes ...
    pub soft_bytes: u64,
    /// ... for this many seconds (0 with `soft_bytes` 0 = no soft limit).
    pub soft_seconds: u64,
}

/// Output buffer limits of the three client classes Redis configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientOutputBufferLimits {
    /// Ordinary clients.
    pub normal: BufferLimit,
    /// Replicas (`replica` or `slave` in the option).
    pub replica: BufferLimit,
    /// Clients subscribed to at least one channel or pattern.
    pub pubsub: BufferLimit,
}

/// A parsed option value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Bool(bool),
    /// As stored in Redis's C variable (a percentage is stored negated).
    Num(i128),
    /// An enum id, or the OR of flag bits.
    Enum(u32),
    Str(String),
    /// `save`: (seconds, changes) pairs.
    Save(Vec<(i64, i32)>),
    Obuf(ClientOutputBufferLimits),
    Oom([i32; 3]),
    /// `notify-keyspace-events` as given (already checked).
    Notify(String),
    Bind(Vec<String>),
    /// `replicaof`: host and port, or none.
    ReplicaOf(Option<(String, i32)>),
    Percentiles(Vec<f64>),
}

/// What a value is parsed against: facts of the configuration being changed.
pub(super) struct Context<'a> {
    /// The option's current value.
    pub(super) old: &'a Value,
    /// The current `dir` (relative `dir` values are taken from there).
    pub(super) dir: &'a Path,
    /// Reading a config file or the command line, and a `save` line was
    /// already read: `save` lines add to each other instead of replacing.
    pub(super) save_appends: bool,
    /// For `proc-title-template`'s check: whether the title would be empty
    /// without the literal text.
    pub(super) cluster_enabled: bool,
    pub(super) unixsocket: &'a str,
    pub(super) config_file: &'a str,
}

const CONFIG_BINDADDR_MAX: usize = 16;

/// Parses `args` (one argument, or several for a multi-argument option) as
/// option `def`. The error is Redis's text for the failure.
pub(super) fn parse(def: &Def, args: &[&[u8]], cx: &Context) -> Result<Value, String> {
    let one = || args.first().copied().unwrap_or(b"");
    match def.kind {
        Kind::Bool { no_active_defrag } => {
            let v = yes_no(one()).ok_or("argument must be 'yes' or 'no'")?;
            if v && no_active_defrag {
                return Err(
                    "Active defragmentation cannot be enabled: it requires a Redis server \
                     compiled with a modified Jemalloc like the one shipped by default with the \
                     Redis source distribution"
                        .into(),
                );
            }
            Ok(Value::Bool(v))
        }
        Kind::Num {
            format,
            min,
            max,
            unsigned,
        } => parse_number(one(), format, min, max, unsigned).map(Value::Num),
        Kind::Enum(values) => {
            let s = one();
            values
                .iter()
                .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(s))
                .map(|&(_, id)| Value::Enum(id))
                .ok_or_else(|| enum_error(values))
        }
        Kind::Flags(values) => {
            if args.is_empty() {
                return Err(enum_error(values));
            }
            let mut bits = 0;
            for a in args {
                let mut matched = false;
                for &(name, v) in values {
                    if name.as_bytes().eq_ignore_ascii_case(a) {
                        bits |= v;
                        matched = true;
                    }
                }
                if !matched {
                    return Err(enum_error(values));
                }
            }
            // shutdown-on-sigint / shutdown-on-sigterm: SHUTDOWN_SAVE | SHUTDOWN_NOSAVE.
            if bits & 1 != 0 && bits & 2 != 0 {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            Ok(Value::Enum(bits))
        }
        Kind::Str(check) => {
            let s = text(one())?;
            if let Some(check) = check {
                check_string(check, s, cx)?;
            }
            Ok(Value::Str(s.to_string()))
        }
        Kind::Special(s) => parse_special(s, args, cx),
    }
}

fn enum_error(values: &[(&str, u32)]) -> String {
    let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    format!(
        "argument(s) must be one of the following: {}",
        names.join(", ")
    )
}

fn text(arg: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(arg).map_err(|_| "argument must be valid UTF-8".to_string())
}

/// Redis's `yesnotoi`.
fn yes_no(s: &[u8]) -> Option<bool> {
    if s.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

/// Redis's `numericParseString` and `numericBoundaryCheck`.
fn parse_number(
    s: &[u8],
    format: NumFormat,
    min: i128,
    max: i128,
    unsigned: bool,
) -> Result<i128, String> {
    let mut ll: Option<i64> = None;
    if matches!(format, NumFormat::Memory | NumFormat::MemoryPercent) {
        // Stored into a `long long` first: sizes past i64::MAX wrap.
        ll = memtoull(s).map(|v| v as i64);
    }
    if ll.is_none() && format == NumFormat::MemoryPercent && s.len() > 1 && s.ends_with(b"%") {
        ll = string_to_i64(&s[..s.len() - 1])
            .filter(|&p| p >= 0)
            .map(|p| -p);
    }
    if ll.is_none() && format == NumFormat::Octal {
        let (v, end, overflow) = strtoll(s, 8);
        if !overflow && end == s.len() {
            ll = Some(v);
        }
    }
    if ll.is_none() && format == NumFormat::Int {
        ll = string_to_i64(s);
    }
    let Some(ll) = ll else {
        return Err(match format {
            NumFormat::MemoryPercent => "argument must be a memory or percent value",
            NumFormat::Memory => "argument must be a memory value",
            NumFormat::Octal => "argument couldn't be parsed as an octal number",
            NumFormat::Int => "argument couldn't be parsed into an integer",
        }
        .into());
    };
    if unsigned {
        let v = ll as u64 as i128;
        if v > max || v < min {
            return Err(if format == NumFormat::Octal {
                format!("argument must be between {min:o} and {max:o} inclusive")
            } else {
                format!("argument must be between {min} and {max} inclusive")
            });
        }
        return Ok(v);
    }
    let v = ll as i128;
    if format == NumFormat::MemoryPercent && v < 0 {
        if v < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
    } else if v > max || v < min {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(v)
}

/// Redis's `memtoull`: digits then an optional unit (`b`, `k` = 1000,
/// `kb` = 1024, `m`, `mb`, `g`, `gb`, any case). As in Redis 7.0, an empty
/// digit string reads as 0, a number too big for 64 bits as `u64::MAX`, and
/// the unit multiplication wraps around.
pub(super) fn memtoull(s: &[u8]) -> Option<u64> {
    if s.first() == Some(&b'-') {
        return None;
    }
    let digits = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let unit = &s[digits..];
    let mul: u64 = if unit.is_empty() || unit.eq_ignore_ascii_case(b"b") {
        1
    } else if unit.eq_ignore_ascii_case(b"k") {
        1000
    } else if unit.eq_ignore_ascii_case(b"kb") {
        1024
    } else if unit.eq_ignore_ascii_case(b"m") {
        1000 * 1000
    } else if unit.eq_ignore_ascii_case(b"mb") {
        1024 * 1024
    } else if unit.eq_ignore_ascii_case(b"g") {
        1000 * 1000 * 1000
    } else if unit.eq_ignore_ascii_case(b"gb") {
        1024 * 1024 * 1024
    } else {
        return None;
    };
    if digits >= 128 {
        return None;
    }
    // strtoull saturates on overflow (Redis does not check ERANGE).
    let val = s[..digits].iter().fold(0u64, |v, &c| {
        v.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    });
    // Redis 7.0 multiplies without an overflow check.
    Some(val.wrapping_mul(mul))
}

/// C's `isspace` in the C locale.
fn c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `strtoll` (base 8 or 10): returns the value (saturated on overflow),
/// the index where parsing stopped (0 if no digits were read) and whether it
/// overflowed.
pub(super) fn strtoll(s: &[u8], base: u32) -> (i64, usize, bool) {
    let mut i = 0;
    while i < s.len() && c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut mag: u128 = 0;
    while i < s.len() {
        let d = match s[i] {
            c @ b'0'..=b'9' if u32::from(c - b'0') < base => u128::from(c - b'0'),
            _ => break,
        };
        mag = (mag * u128::from(base) + d).min(1 << 64);
        i += 1;
    }
    if i == start {
        return (0, 0, false);
    }
    if neg {
        if mag > 1 << 63 {
            (i64::MIN, i, true)
        } else {
            ((mag as i128).wrapping_neg() as i64, i, false)
        }
    } else if mag > i64::MAX as u128 {
        (i64::MAX, i, true)
    } else {
        (mag as i64, i, false)
    }
}

/// `strtoll(s, &end, 10)` that must consume the whole argument.
fn whole_strtoll(s: &[u8]) -> Option<i64> {
    let (v, end, _) = strtoll(s, 10);
    (end == s.len()).then_some(v)
}

/// Redis's `pathIsBaseName`.
fn is_base_name(s: &str) -> bool {
    !s.contains('/') && !s.contains('\\')
}

fn check_string(check: StrCheck, s: &str, cx: &Context) -> Result<(), String> {
    let err = |m: &str| Err(m.to_string());
    match check {
        StrCheck::DbFilename if !is_base_name(s) => {
            err("dbfilename can't be a path, just a filename")
        }
        StrCheck::AofFilename if s.is_empty() => err("appendfilename can't be empty"),
        StrCheck::AofFilename if !is_base_name(s) => {
            err("appendfilename can't be a path, just a filename")
        }
        StrCheck::AofDirname if s.is_empty() => err("appenddirname can't be empty"),
        StrCheck::AofDirname if !is_base_name(s) => {
            err("appenddirname can't be a path, just a dirname")
        }
        StrCheck::Hostname if s.len() >= 256 => err("Hostnames must be less than 256 characters"),
        StrCheck::Hostname
            if !s
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') =>
        {
            err("Hostnames may only contain alphanumeric characters, hyphens or dots")
        }
        StrCheck::ProcTitle if !proc_title_ok(s, cx) => {
            err("template format is invalid or contains unknown variables")
        }
        _ => Ok(()),
    }
}

/// Redis's `validateProcTitleTemplate`: `sdstemplate` expansion (with an
/// empty title) must succeed and give a non-empty title.
fn proc_title_ok(template: &str, cx: &Context) -> bool {
    let t = template.as_bytes();
    let mut out_len = 0;
    let mut i = 0;
    while i < t.len() {
        let Some(open) = t[i..].iter().position(|&c| c == b'{') else {
            out_len += t.len() - i;
            break;
        };
        out_len += open;
        let sv = i + open + 1;
        if sv >= t.len() {
            return false;
        }
        if t[sv] == b'{' {
            out_len += 1;
            i = sv + 1;
            continue;
        }
        let Some(close) = t[sv..].iter().position(|&c| c == b'}') else {
            return false;
        };
        out_len += match &t[sv..sv + close] {
            b"title" => 0,
            b"listen-addr" | b"port" | b"tls-port" => 1,
            b"server-mode" => usize::from(cx.cluster_enabled),
            b"config-file" => cx.config_file.len(),
            b"unixsocket" => cx.unixsocket.len(),
            _ => return false,
        };
        i = sv + close + 1;
    }
    out_len > 0
}

fn parse_special(s: Special, args: &[&[u8]], cx: &Context) -> Result<Value, String> {
    let argc = args.len();
    match s {
        Special::Dir => {
            if argc != 1 {
                return Err("wrong number of arguments".into());
            }
            let p = Path::new(text(args[0])?);
            let p = if p.is_relative() && !p.as_os_str().is_empty() {
                cx.dir.join(p)
            } else {
                p.to_path_buf()
            };
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err("Not a directory".into()),
                Err(e) => return Err(os_error_text(&e)),
            }
            let p = std::fs::canonicalize(&p).map_err(|e| os_error_text(&e))?;
            Ok(Value::Str(p.to_string_lossy().into_owned()))
        }
        Special::Save => {
            let args = if argc == 1 && args[0].is_empty() {
                &[][..]
            } else {
                args
            };
            if args.len() % 2 == 1 {
                return Err("Invalid save parameters".into());
            }
            let mut points = match (cx.save_appends, cx.old) {
                (true, Value::Save(old)) => old.clone(),
                _ => Vec::new(),
            };
            for pair in args.chunks(2) {
                let secs = whole_strtoll(pair[0]).filter(|&v| v >= 1);
                let changes = whole_strtoll(pair[1]).filter(|&v| v >= 0);
                match (secs, changes) {
                    (Some(s), Some(c)) => points.push((s, c as i32)),
                    _ => return Err("Invalid save parameters".into()),
                }
            }
            Ok(Value::Save(points))
        }
        Special::ClientOutputBufferLimit => {
            if !argc.is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut limits = match cx.old {
                Value::Obuf(o) => *o,
                _ => ClientOutputBufferLimits::default(),
            };
            for group in args.chunks(4) {
                let class = group[0];
                let slot = if class.eq_ignore_ascii_case(b"normal") {
                    &mut limits.normal
                } else if class.eq_ignore_ascii_case(b"slave")
                    || class.eq_ignore_ascii_case(b"replica")
                {
                    &mut limits.replica
                } else if class.eq_ignore_ascii_case(b"pubsub") {
                    &mut limits.pubsub
                } else {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    );
                };
                // soft_seconds goes through a C `int`.
                let secs = whole_strtoll(group[3]).map(|v| v as i32);
                match (memtoull(group[1]), memtoull(group[2]), secs) {
                    (Some(hard), Some(soft), Some(secs)) if secs >= 0 => {
                        *slot = BufferLimit {
                            hard_bytes: hard,
                            soft_bytes: soft,
                            soft_seconds: secs as u64,
                        };
                    }
                    _ => {
                        return Err("Error in hard, soft or soft_seconds setting in buffer \
                             limit configuration."
                            .into())
                    }
                }
            }
            Ok(Value::Obuf(limits))
        }
        Special::OomScoreAdjValues => {
            if argc != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut v = [0i32; 3];
            for (slot, a) in v.iter_mut().zip(args) {
                match whole_strtoll(a) {
                    Some(n) if (-2000..=2000).contains(&n) => *slot = n as i32,
                    _ => {
                        return Err("Invalid oom-score-adj-values, elements must be between \
                             -2000 and 2000."
                            .into())
                    }
                }
            }
            Ok(Value::Oom(v))
        }
        Special::NotifyKeyspaceEvents => {
            if argc != 1 {
                return Err("wrong number of arguments".into());
            }
            let s = text(args[0])?;
            super::notify::parse(s)
                .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")?;
            Ok(Value::Notify(s.to_string()))
        }
        Special::Bind => {
            if argc > CONFIG_BINDADDR_MAX {
                return Err("Too many bind addresses specified.".into());
            }
            if argc == 1 && args[0].is_empty() {
                return Ok(Value::Bind(Vec::new()));
            }
            let addrs = args
                .iter()
                .map(|a| text(a).map(str::to_string))
                .collect::<Result<_, _>>()?;
            Ok(Value::Bind(addrs))
        }
        Special::ReplicaOf => {
            if argc != 2 {
                return Err("wrong number of arguments".into());
            }
            if args[0].eq_ignore_ascii_case(b"no") && args[1].eq_ignore_ascii_case(b"one") {
                return Ok(Value::ReplicaOf(None));
            }
            // strtol into an `int`, then checked.
            match whole_strtoll(args[1]).map(|p| p as i32) {
                Some(port) if (0..=65535).contains(&port) => {
                    Ok(Value::ReplicaOf(Some((text(args[0])?.to_string(), port))))
                }
                _ => Err("Invalid master port".into()),
            }
        }
        Special::LatencyTrackingInfoPercentiles => {
            let args = if argc == 1 && args[0].is_empty() {
                &[][..]
            } else {
                args
            };
            let mut out = Vec::with_capacity(args.len());
            for a in args {
                let p = string_to_f64(a)
                    .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&p) {
                    return Err("latency-tracking-info-percentiles parameters should sit \
                         between [0.0,100.0]"
                        .into());
                }
                out.push(p);
            }
            Ok(Value::Percentiles(out))
        }
    }
}

/// An OS error as C's `strerror` words it (without Rust's "(os error N)").
pub(super) fn os_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Redis's `string2d`: a whole `strtod` number, no leading space, no NaN,
/// no overflow or underflow to zero. (Hex floats are not taken.)
fn string_to_f64(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty() || c_space(s[0]) {
        return None;
    }
    let v: f64 = t.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    if v.is_infinite() && !lower.contains("inf") {
        return None; // overflow (ERANGE)
    }
    if v == 0.0 {
        let mantissa = lower.split('e').next().unwrap_or("");
        if mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None; // underflow to zero (ERANGE)
        }
    }
    Some(v)
}

/// `%f` then Redis's `trimDoubleString`.
fn format_percentile(v: f64) -> String {
    let mut s = format!("{v:.6}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// The name an enum option shows for `id` (the first of its synonyms).
pub(super) fn enum_name(values: &[(&'static str, u32)], id: u32) -> &'static str {
    values
        .iter()
        .find(|&&(_, v)| v == id)
        .map_or("unknown", |&(n, _)| n)
}

/// Redis's `configEnumGetName` for flag sets.
fn flags_names(values: &[(&str, u32)], bits: u32) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut unmatched = bits;
    for &(name, v) in values {
        if v == bits {
            return name.to_string();
        }
        if v != 0 && v == unmatched & v {
            names.push(name);
            unmatched &= !v;
        }
    }
    if names.is_empty() || unmatched != 0 {
        return "unknown".into();
    }
    names.join(" ")
}

/// The value as CONFIG GET prints it.
pub(super) fn display(def: &Def, v: &Value) -> String {
    match v {
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Num(n) => match def.kind {
            Kind::Num {
                format: NumFormat::MemoryPercent,
                ..
            } if *n < 0 => format!("{}%", -n),
            Kind::Num {
                format: NumFormat::Octal,
                ..
            } => format!("{n:o}"),
            _ => n.to_string(),
        },
        Value::Enum(id) => match def.kind {
            Kind::Enum(values) => enum_name(values, *id).into(),
            Kind::Flags(values) => flags_names(values, *id),
            _ => String::new(),
        },
        Value::Str(s) => s.clone(),
        Value::Save(points) => points
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Obuf(o) => {
            let one = |name: &str, l: &BufferLimit| {
                format!(
                    "{name} {} {} {}",
                    l.hard_bytes, l.soft_bytes, l.soft_seconds
                )
            };
            format!(
                "{} {} {}",
                one("normal", &o.normal),
                one("slave", &o.replica),
                one("pubsub", &o.pubsub)
            )
        }
        Value::Oom(v) => format!("{} {} {}", v[0], v[1], v[2]),
        Value::Notify(raw) => super::notify::parse(raw)
            .map(super::notify::to_string)
            .unwrap_or_default(),
        Value::Bind(addrs) => addrs.join(" "),
        Value::ReplicaOf(Some((host, port))) => format!("{host} {port}"),
        Value::ReplicaOf(None) => String::new(),
        Value::Percentiles(p) => p
            .iter()
            .map(|&v| format_percentile(v))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Redis's `sdssplitlen(value, " ")`: how CONFIG SET splits the value of a
/// multi-argument option (every single space separates, so two spaces make
/// an empty argument; an empty value gives no arguments).
pub(super) fn split_spaces(v: &[u8]) -> Vec<&[u8]> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(|&c| c == b' ').collect()
}

/// Redis's `sdscatrepr`: `arg` in double quotes with C escapes.
pub(super) fn repr(arg: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in arg {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

/// Expands a glob in a file path (`include /etc/redis/conf.d/*.conf`) as
/// glob(3) does: wildcards in any component, sorted results, a leading `.`
/// matched only explicitly; no match gives no paths.
pub(super) fn expand_path_glob(pattern: &str) -> Vec<PathBuf> {
    let absolute = pattern.starts_with('/');
    let mut current: Vec<PathBuf> = vec![if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if !comp.contains(['*', '?', '[']) {
            for base in &current {
                let p = base.join(comp);
                if p.exists() || p.is_symlink() {
                    next.push(p);
                }
            }
        } else {
            for base in &current {
                let dir = if base.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    base.as_path()
                };
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.') || comp.starts_with('.'))
                    .filter(|n| glob::matches(comp.as_bytes(), n.as_bytes()))
                    .map(|n| base.join(n))
                    .collect();
                found.sort();
                next.extend(found);
            }
        }
        current = next;
    }
    current
}
