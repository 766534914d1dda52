//! `cjson`: JSON encoding and decoding of Lua values, as Redis's Lua has it.
//! It follows the library Redis bundles, Lua CJSON 2.1.0 (Mark Pulford;
//! `deps/lua/src/lua_cjson.c` with its `strbuf.c` and `fpconv.c`, and
//! Redis's fixes):
//!
//! - numbers are written with `%.14g` (`encode_number_precision`), NaN and
//!   infinity refused unless `encode_invalid_numbers` allows them;
//! - strings are escaped as cjson does it, `/` included (`\/`), other bytes
//!   passed through unchecked;
//! - a table whose keys are all positive integers is an array (holes are
//!   `null`) unless it is excessively sparse (`encode_sparse_array`), any
//!   other table an object with string or number keys; an empty table is
//!   `{}`;
//! - `cjson.null` (a NULL light userdata) is JSON's null both ways;
//! - decoding reads numbers with C's `strtod` (so hex, `inf` and `nan` are
//!   accepted by default, `decode_invalid_numbers`), stops at a NUL byte,
//!   and reports errors as "Expected X but found Y at character N";
//! - nesting is limited by `encode_max_depth` / `decode_max_depth` (1000
//!   by default) and by the Lua stack a C function may use, with cjson's
//!   messages.
//!
//! Each `cjson` table (the global one and those `cjson.new()` makes) has
//! its own settings. Encoding and decoding keep their own stacks instead of
//! recursing.

use std::sync::Arc;

use mlua::{Function, LightUserData, Lua, Table, Value};
use parking_lot::Mutex;

use crate::util::strtod::strtod;

use super::{
    arg_error, check_cstring, check_integer, check_lstring, format_g, function, get_exact, one,
    type_name, value_number, Args, Entries, LibError, LibResult, Out, MAX_C_STACK, MAX_DEPTH,
};

/// An encoding larger than this fails as an allocation would (it can only
/// come from a sparse array with sparseness checks turned off).
const MAX_OUTPUT: usize = 512 << 20;

/// The settings of one `cjson` table (`json_config_t`).
#[derive(Clone, Debug)]
struct Config {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 refuse, 1 allow, 2 write `null`.
    encode_invalid_numbers: i32,
    decode_invalid_numbers: i32,
    encode_keep_buffer: i32,
    encode_number_precision: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            encode_keep_buffer: 1,
            encode_number_precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// The global `cjson` table.
pub(crate) fn open(lua: &Lua, entries: &Function) -> mlua::Result<Table> {
    module(lua, entries)
}

/// A `cjson` table with settings of its own (`lua_cjson_new`).
fn module(lua: &Lua, entries: &Function) -> mlua::Result<Table> {
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    let c = cfg.clone();
    let walk = entries.clone();
    t.set(
        "encode",
        function(lua, move |lua, a| {
            let cfg = c.lock().clone();
            encode(lua, a, &cfg, &walk)
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "decode",
        function(lua, move |lua, a| {
            let cfg = c.lock().clone();
            decode(lua, a, &cfg)
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "encode_sparse_array",
        function(lua, move |lua, a| {
            arg_init(lua, a, 3)?;
            let mut cfg = c.lock();
            let convert = enum_option(lua, a, 1, &mut cfg.sparse_convert, BOOL_OPTIONS)?;
            let ratio = integer_option(lua, a, 2, &mut cfg.sparse_ratio, 0, i32::MAX)?;
            let safe = integer_option(lua, a, 3, &mut cfg.sparse_safe, 0, i32::MAX)?;
            let mut out = Out::new(lua)?;
            out.push(convert)?;
            out.push(ratio)?;
            out.push(safe)?;
            Ok(out)
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "encode_max_depth",
        function(lua, move |lua, a| {
            arg_init(lua, a, 1)?;
            let mut cfg = c.lock();
            one(
                lua,
                integer_option(lua, a, 1, &mut cfg.encode_max_depth, 1, i32::MAX)?,
            )
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "decode_max_depth",
        function(lua, move |lua, a| {
            arg_init(lua, a, 1)?;
            let mut cfg = c.lock();
            one(
                lua,
                integer_option(lua, a, 1, &mut cfg.decode_max_depth, 1, i32::MAX)?,
            )
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "encode_number_precision",
        function(lua, move |lua, a| {
            arg_init(lua, a, 1)?;
            let mut cfg = c.lock();
            one(
                lua,
                integer_option(lua, a, 1, &mut cfg.encode_number_precision, 1, 14)?,
            )
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "encode_keep_buffer",
        function(lua, move |lua, a| {
            arg_init(lua, a, 1)?;
            let mut cfg = c.lock();
            one(
                lua,
                enum_option(lua, a, 1, &mut cfg.encode_keep_buffer, BOOL_OPTIONS)?,
            )
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "encode_invalid_numbers",
        function(lua, move |lua, a| {
            arg_init(lua, a, 1)?;
            let mut cfg = c.lock();
            let options: &[&str] = &["off", "on", "null"];
            one(
                lua,
                enum_option(lua, a, 1, &mut cfg.encode_invalid_numbers, options)?,
            )
        })?,
    )?;
    let c = cfg;
    t.set(
        "decode_invalid_numbers",
        function(lua, move |lua, a| {
            arg_init(lua, a, 1)?;
            let mut cfg = c.lock();
            one(
                lua,
                enum_option(lua, a, 1, &mut cfg.decode_invalid_numbers, BOOL_OPTIONS)?,
            )
        })?,
    )?;
    let walk = entries.clone();
    t.set(
        "new",
        function(lua, move |lua, _| {
            one(lua, Value::Table(module(lua, &walk)?))
        })?,
    )?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// `cjson.null`: a NULL light userdata.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// `json_arg_init`: at most `n` arguments.
fn arg_init(lua: &Lua, args: &Args, n: usize) -> LibResult<()> {
    if args.len() > n {
        return Err(arg_error(lua, n + 1, b"found too many arguments"));
    }
    Ok(())
}

fn is_nil(args: &Args, i: usize) -> bool {
    matches!(args.get(i), None | Some(Value::Nil))
}

/// `json_integer_option`: sets an integer setting when given (the C keeps
/// it in an `int`), answers the setting.
fn integer_option(
    lua: &Lua,
    args: &Args,
    i: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> LibResult<Value> {
    if !is_nil(args, i) {
        let value = check_integer(lua, args, i)? as i32;
        if !(min..=max).contains(&value) {
            let msg = format!("expected integer between {min} and {max}");
            return Err(arg_error(lua, 1, msg.as_bytes()));
        }
        *setting = value;
    }
    Ok(Value::Number(f64::from(*setting)))
}

/// `json_enum_option` with `bool_true` 1: a boolean or one of `options` by
/// name; answers a boolean for off/on, the name otherwise.
fn enum_option(
    lua: &Lua,
    args: &Args,
    i: usize,
    setting: &mut i32,
    options: &[&str],
) -> LibResult<Value> {
    if !is_nil(args, i) {
        if let Some(Value::Boolean(b)) = args.get(i) {
            *setting = i32::from(b);
        } else {
            let name = check_cstring(lua, args, i)?;
            match options.iter().position(|o| o.as_bytes() == name.as_slice()) {
                Some(p) => *setting = p as i32,
                None => {
                    let mut msg = b"invalid option '".to_vec();
                    msg.extend_from_slice(&name);
                    msg.push(b'\'');
                    return Err(arg_error(lua, i, &msg));
                }
            }
        }
    }
    Ok(if *setting == 0 || *setting == 1 {
        Value::Boolean(*setting == 1)
    } else {
        let name = options.get(*setting as usize).copied().unwrap_or("");
        Value::String(lua.create_string(name)?)
    })
}

// ------------------------------------------------------------- encoding ----

/// A table being written.
enum Frame {
    Array {
        t: Table,
        len: i64,
        next: i64,
        slots: usize,
        depth: i32,
    },
    Object {
        walk: Entries,
        first: bool,
        slots: usize,
        depth: i32,
    },
}

/// `cjson.encode(value)`.
fn encode(lua: &Lua, args: &Args, cfg: &Config, entries: &Function) -> LibResult<Out> {
    if args.len() != 1 {
        return Err(arg_error(lua, 1, b"expected 1 argument"));
    }
    let value = args.get(1).unwrap_or(Value::Nil);
    let mut e = Encoder {
        cfg,
        entries,
        out: Vec::new(),
    };
    e.run(value)?;
    one(lua, Value::String(lua.create_string(&e.out)?))
}

struct Encoder<'a> {
    cfg: &'a Config,
    /// Starts walks over tables' entries.
    entries: &'a Function,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn run(&mut self, value: Value) -> LibResult<()> {
        let mut stack: Vec<Frame> = Vec::new();
        // The value to write next, the C's stack slots in use with it on
        // top, and the depth of the table it is in.
        let mut next = Some((value, 1usize, 0i32));
        loop {
            if let Some((v, slots, depth)) = next.take() {
                if let Value::Table(t) = v {
                    stack.push(self.open(t, slots, depth + 1)?);
                } else {
                    self.scalar(&v)?;
                }
            }
            if self.out.len() > MAX_OUTPUT {
                return Err(LibError::from("not enough memory"));
            }
            let Some(top) = stack.last_mut() else {
                return Ok(());
            };
            match top {
                Frame::Array {
                    t,
                    len,
                    next: i,
                    slots,
                    depth,
                } => {
                    if *i > *len {
                        self.out.push(b']');
                        stack.pop();
                        continue;
                    }
                    if *i > 1 {
                        self.out.push(b',');
                    }
                    let v = get_exact(t, *i)?;
                    *i += 1;
                    next = Some((v, *slots + 1, *depth));
                }
                Frame::Object {
                    walk,
                    first,
                    slots,
                    depth,
                } => {
                    let Some((k, v)) = walk.next()? else {
                        self.out.push(b'}');
                        stack.pop();
                        continue;
                    };
                    if !*first {
                        self.out.push(b',');
                    }
                    *first = false;
                    match &k {
                        Value::Integer(_) | Value::Number(_) => {
                            self.out.push(b'"');
                            self.number(value_number(&k).unwrap_or(0.0))?;
                            self.out.extend_from_slice(b"\":");
                        }
                        Value::String(s) => {
                            self.string(&s.as_bytes());
                            self.out.push(b':');
                        }
                        other => {
                            return Err(LibError::from(format!(
                                "Cannot serialise {}: table key must be a number or string",
                                type_name(Some(other))
                            )))
                        }
                    }
                    next = Some((v, *slots + 2, *depth));
                }
            }
        }
    }

    /// Starts a table at `depth` (`json_check_encode_depth`, then array or
    /// object).
    fn open(&mut self, t: Table, slots: usize, depth: i32) -> LibResult<Frame> {
        if depth > self.cfg.encode_max_depth
            || slots + 3 > MAX_C_STACK
            || depth as usize > MAX_DEPTH
        {
            return Err(LibError::from(format!(
                "Cannot serialise, excessive nesting ({depth})"
            )));
        }
        let len = self.array_length(&t)?;
        if len > 0 {
            self.out.push(b'[');
            Ok(Frame::Array {
                t,
                len: i64::from(len),
                next: 1,
                slots,
                depth,
            })
        } else {
            self.out.push(b'{');
            Ok(Frame::Object {
                walk: Entries::of(self.entries, &t)?,
                first: true,
                slots,
                depth,
            })
        }
    }

    /// The array length of a table, or -1 for an object
    /// (`lua_array_length`), with the C's `int` arithmetic.
    fn array_length(&self, t: &Table) -> LibResult<i32> {
        let (mut max, mut items) = (0i32, 0i32);
        let walk = Entries::of(self.entries, t)?;
        while let Some((k, _)) = walk.next()? {
            let k = match k {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => return Ok(-1),
            };
            if k == 0.0 || k.floor() != k || k < 1.0 {
                return Ok(-1);
            }
            if k > f64::from(max) {
                // (int) of a double: x86-64 gives INT_MIN when it overflows.
                max = if k < 2_147_483_648.0 {
                    k as i32
                } else {
                    i32::MIN
                };
            }
            items = items.wrapping_add(1);
        }
        let cfg = self.cfg;
        if cfg.sparse_ratio > 0
            && max > items.wrapping_mul(cfg.sparse_ratio)
            && max > cfg.sparse_safe
        {
            if cfg.sparse_convert == 0 {
                return Err(LibError::from(
                    "Cannot serialise table: excessively sparse array",
                ));
            }
            return Ok(-1);
        }
        Ok(max)
    }

    fn scalar(&mut self, v: &Value) -> LibResult<()> {
        match v {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => self.number(value_number(v).unwrap_or(0.0))?,
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            other => {
                return Err(LibError::from(format!(
                    "Cannot serialise {}: type not supported",
                    type_name(Some(other))
                )))
            }
        }
        Ok(())
    }

    fn number(&mut self, n: f64) -> LibResult<()> {
        match self.cfg.encode_invalid_numbers {
            0 => {
                if !n.is_finite() {
                    return Err(LibError::from(
                        "Cannot serialise number: must not be NaN or Inf",
                    ));
                }
            }
            1 => {
                if n.is_nan() {
                    self.out.extend_from_slice(b"nan");
                    return Ok(());
                }
            }
            _ => {
                if !n.is_finite() {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
            }
        }
        let precision = self.cfg.encode_number_precision.clamp(1, 14) as usize;
        self.out
            .extend_from_slice(format_g(n, precision).as_bytes());
        Ok(())
    }

    /// A string, quoted and escaped (`char2escape`).
    fn string(&mut self, s: &[u8]) {
        self.out.reserve(s.len() + 2);
        self.out.push(b'"');
        for &c in s {
            match c {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                0x08 => self.out.extend_from_slice(b"\\b"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                0x0c => self.out.extend_from_slice(b"\\f"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                0..=0x1f | 0x7f => {
                    self.out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                }
                c => self.out.push(c),
            }
        }
        self.out.push(b'"');
    }
}

// ------------------------------------------------------------- decoding ----

/// A token (`json_token_t`); strings are left in the parser's buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    /// What a parse error says was found.
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    /// The last string token, unescaped.
    tmp: Vec<u8>,
    invalid_numbers: bool,
    depth: i32,
}

impl Parser<'_> {
    /// The byte `i` ahead; the input ends with a NUL as a C string does.
    fn peek(&self, i: usize) -> u8 {
        self.data.get(self.pos + i).copied().unwrap_or(0)
    }

    /// The next token and where it starts (`json_next_token`).
    fn next(&mut self) -> (Tok, usize) {
        while matches!(self.peek(0), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let at = self.pos;
        let single = |p: &mut Self, t| {
            p.pos += 1;
            (t, at)
        };
        match self.peek(0) {
            b'{' => single(self, Tok::ObjBegin),
            b'}' => single(self, Tok::ObjEnd),
            b'[' => single(self, Tok::ArrBegin),
            b']' => single(self, Tok::ArrEnd),
            b',' => single(self, Tok::Comma),
            b':' => single(self, Tok::Colon),
            0 => (Tok::End, at),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if !self.invalid_numbers && self.is_invalid_number() {
                    return (Tok::Error("invalid number"), at);
                }
                self.number()
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                let rest = &self.data[self.pos..];
                if rest.starts_with(b"true") {
                    self.pos += 4;
                    (Tok::Bool(true), at)
                } else if rest.starts_with(b"false") {
                    self.pos += 5;
                    (Tok::Bool(false), at)
                } else if rest.starts_with(b"null") {
                    self.pos += 4;
                    (Tok::Null, at)
                } else if self.invalid_numbers && self.is_invalid_number() {
                    self.number()
                } else {
                    (Tok::Error("invalid token"), at)
                }
            }
            _ => (Tok::Error("invalid token"), at),
        }
    }

    /// A number strict JSON does not allow: a leading `+` or zero, hex,
    /// inf, nan (`json_is_invalid_number`).
    fn is_invalid_number(&self) -> bool {
        let mut p = 0;
        match self.peek(0) {
            b'+' => return true,
            b'-' => p = 1,
            _ => {}
        }
        let c = self.peek(p);
        if c == b'0' {
            let c2 = self.peek(p + 1);
            return c2 | 0x20 == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let word: Vec<u8> = (0..3)
            .map(|i| self.peek(p + i).to_ascii_lowercase())
            .collect();
        word == b"inf" || word == b"nan"
    }

    fn number(&mut self) -> (Tok, usize) {
        let at = self.pos;
        match strtod(&self.data[self.pos..]) {
            Some((n, len)) if len > 0 => {
                self.pos += len;
                (Tok::Num(n), at)
            }
            _ => (Tok::Error("invalid number"), at),
        }
    }

    /// A string token (`json_next_string_token`).
    fn string(&mut self) -> (Tok, usize) {
        let at = self.pos;
        self.pos += 1;
        self.tmp.clear();
        loop {
            let c = self.peek(0);
            if c == b'"' {
                break;
            }
            if c == 0 {
                return (Tok::Error("unexpected end of string"), self.pos);
            }
            let mut ch = c;
            if c == b'\\' {
                ch = match self.peek(1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape() {
                            continue;
                        }
                        return (Tok::Error("invalid unicode escape code"), self.pos);
                    }
                    _ => return (Tok::Error("invalid escape code"), self.pos),
                };
                self.pos += 1;
            }
            self.tmp.push(ch);
            self.pos += 1;
        }
        self.pos += 1;
        (Tok::Str, at)
    }

    fn hex4(&self, from: usize) -> Option<u32> {
        let mut v = 0u32;
        for i in 0..4 {
            let d = (self.peek(from + i) as char).to_digit(16)?;
            v = (v << 4) | d;
        }
        Some(v)
    }

    /// `\uXXXX`, or a surrogate pair of them, appended as UTF-8
    /// (`json_append_unicode_escape`).
    fn unicode_escape(&mut self) -> bool {
        let Some(mut cp) = self.hex4(2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.peek(6) != b'\\' || self.peek(7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut utf8 = [0u8; 4];
        let n = if cp <= 0x7F {
            utf8[0] = cp as u8;
            1
        } else if cp <= 0x7FF {
            utf8[0] = ((cp >> 6) | 0xC0) as u8;
            utf8[1] = ((cp & 0x3F) | 0x80) as u8;
            2
        } else if cp <= 0xFFFF {
            utf8[0] = ((cp >> 12) | 0xE0) as u8;
            utf8[1] = (((cp >> 6) & 0x3F) | 0x80) as u8;
            utf8[2] = ((cp & 0x3F) | 0x80) as u8;
            3
        } else {
            utf8[0] = ((cp >> 18) | 0xF0) as u8;
            utf8[1] = (((cp >> 12) & 0x3F) | 0x80) as u8;
            utf8[2] = (((cp >> 6) & 0x3F) | 0x80) as u8;
            utf8[3] = ((cp & 0x3F) | 0x80) as u8;
            4
        };
        self.tmp.extend_from_slice(&utf8[..n]);
        self.pos += len;
        true
    }
}

/// A container being filled while decoding.
enum Open {
    Array(Table, i64),
    Object(Table, Option<mlua::String>),
}

fn parse_error(expected: &str, tok: Tok, at: usize) -> LibError {
    LibError::from(format!(
        "Expected {expected} but found {} at character {}",
        tok.name(),
        at + 1
    ))
}

/// `cjson.decode(text)`.
fn decode(lua: &Lua, args: &Args, cfg: &Config) -> LibResult<Out> {
    if args.len() != 1 {
        return Err(arg_error(lua, 1, b"expected 1 argument"));
    }
    let data = check_lstring(lua, args, 1)?;
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(LibError::from(
            "JSON parser does not support UTF-16 or UTF-32",
        ));
    }
    let mut p = Parser {
        data: &data,
        pos: 0,
        tmp: Vec::new(),
        invalid_numbers: cfg.decode_invalid_numbers != 0,
        depth: 0,
    };
    let value = parse(lua, &mut p, cfg)?;
    let (tok, at) = p.next();
    if tok != Tok::End {
        return Err(parse_error("the end", tok, at));
    }
    one(lua, value)
}

/// Parses one value with an explicit stack of open containers, keeping
/// the C's count of Lua stack slots (1 for the argument, 1 per open array,
/// 2 per open object) for its nesting check.
fn parse(lua: &Lua, p: &mut Parser<'_>, cfg: &Config) -> LibResult<Value> {
    let mut stack: Vec<Open> = Vec::new();
    let mut slots: usize = 1;
    let (mut tok, mut at) = p.next();
    loop {
        // json_process_value
        let mut value = match tok {
            Tok::Str => Value::String(lua.create_string(&p.tmp)?),
            Tok::Num(n) => Value::Number(n),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => null(),
            Tok::ObjBegin | Tok::ArrBegin => {
                let object = tok == Tok::ObjBegin;
                // json_decode_descend: 3 slots for an object, 2 for an array.
                p.depth += 1;
                let need = if object { 3 } else { 2 };
                if p.depth > cfg.decode_max_depth
                    || slots + need > MAX_C_STACK
                    || p.depth as usize > MAX_DEPTH
                {
                    return Err(LibError::from(format!(
                        "Found too many nested data structures ({}) at character {}",
                        p.depth, p.pos
                    )));
                }
                let t = lua.create_table()?;
                (tok, at) = p.next();
                let end = if object { Tok::ObjEnd } else { Tok::ArrEnd };
                if tok == end {
                    p.depth -= 1;
                    Value::Table(t)
                } else if object {
                    let key = object_key(lua, p, tok, at)?;
                    stack.push(Open::Object(t, Some(key)));
                    slots += 2;
                    (tok, at) = p.next();
                    continue;
                } else {
                    stack.push(Open::Array(t, 1));
                    slots += 1;
                    continue;
                }
            }
            other => return Err(parse_error("value", other, at)),
        };
        // Store the value in its container; close the containers it ends.
        loop {
            match stack.last_mut() {
                None => return Ok(value),
                Some(Open::Array(t, i)) => {
                    t.raw_set(*i, value)?;
                    *i += 1;
                    (tok, at) = p.next();
                    if tok == Tok::ArrEnd {
                        p.depth -= 1;
                        slots -= 1;
                        value = match stack.pop() {
                            Some(Open::Array(t, _) | Open::Object(t, _)) => Value::Table(t),
                            None => return Ok(Value::Nil),
                        };
                        continue;
                    }
                    if tok != Tok::Comma {
                        return Err(parse_error("comma or array end", tok, at));
                    }
                    (tok, at) = p.next();
                    break;
                }
                Some(Open::Object(t, key)) => {
                    if let Some(k) = key.take() {
                        t.raw_set(k, value)?;
                    }
                    (tok, at) = p.next();
                    if tok == Tok::ObjEnd {
                        p.depth -= 1;
                        slots -= 2;
                        value = match stack.pop() {
                            Some(Open::Array(t, _) | Open::Object(t, _)) => Value::Table(t),
                            None => return Ok(Value::Nil),
                        };
                        continue;
                    }
                    if tok != Tok::Comma {
                        return Err(parse_error("comma or object end", tok, at));
                    }
                    (tok, at) = p.next();
                    *key = Some(object_key(lua, p, tok, at)?);
                    (tok, at) = p.next();
                    break;
                }
            }
        }
    }
}

/// An object's key and the colon after it; leaves the parser before the
/// value.
fn object_key(lua: &Lua, p: &mut Parser<'_>, tok: Tok, at: usize) -> LibResult<mlua::String> {
    if tok != Tok::Str {
        return Err(parse_error("object key string", tok, at));
    }
    let key = lua.create_string(&p.tmp)?;
    let (tok, at) = p.next();
    if tok != Tok::Colon {
        return Err(parse_error("colon", tok, at));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_errors, error_of, eval, lua};

    /// scripting.tcl: "EVAL - JSON numeric decoding".
    #[test]
    fn json_numeric_decoding() {
        let lua = lua();
        let s: String = eval(
            &lua,
            r#"return table.concat(cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")"#,
        );
        assert_eq!(s, "0 -5000 -1 0.0003 1023.2 0");
    }

    /// scripting.tcl: "EVAL - JSON string decoding".
    #[test]
    fn json_string_decoding() {
        let lua = lua();
        let r: (String, String) = eval(
            &lua,
            r#"local decoded = cjson.decode('{"keya": "a", "keyb": "b"}')
               return decoded.keya, decoded.keyb"#,
        );
        assert_eq!(r, ("a".to_owned(), "b".to_owned()));
    }

    /// scripting.tcl: "EVAL - JSON smoke test".
    #[test]
    fn json_smoke_test() {
        let lua = lua();
        eval::<()>(
            &lua,
            r#"
            local some_map = {
                s1="Some string",
                n1=100,
                a1={"Some","String","Array"},
                nil1=nil,
                b1=true,
                b2=false}
            local encoded = cjson.encode(some_map)
            local decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))

            cjson.encode_keep_buffer(false)
            encoded = cjson.encode(some_map)
            decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))

            -- Table with numeric keys
            local table1 = {one="one", [1]="one"}
            encoded = cjson.encode(table1)
            decoded = cjson.decode(encoded)
            assert(decoded["one"] == table1["one"])
            assert(decoded["1"] == table1[1])

            -- Array
            local array1 = {[1]="one", [2]="two"}
            encoded = cjson.encode(array1)
            decoded = cjson.decode(encoded)
            assert(table.concat(array1) == table.concat(decoded))

            -- Invalid keys
            local invalid_map = {}
            invalid_map[false] = "false"
            local ok, encoded = pcall(cjson.encode, invalid_map)
            assert(ok == false)

            -- Max depth
            cjson.encode_max_depth(1)
            ok, encoded = pcall(cjson.encode, some_map)
            assert(ok == false)

            cjson.decode_max_depth(1)
            ok, decoded = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')
            assert(ok == false)

            -- Invalid numbers
            ok, encoded = pcall(cjson.encode, {num1=0/0})
            assert(ok == false)
            cjson.encode_invalid_numbers(true)
            ok, encoded = pcall(cjson.encode, {num1=0/0})
            assert(ok == true)

            -- Restore defaults
            cjson.decode_max_depth(1000)
            cjson.encode_max_depth(1000)
            cjson.encode_invalid_numbers(false)
            "#,
        );
    }

    #[test]
    fn encode_values() {
        let lua = lua();
        let cases = [
            ("1", "1"),
            ("-1.5", "-1.5"),
            ("0.1", "0.1"),
            ("1/3", "0.33333333333333"),
            ("2^53", "9.007199254741e+15"),
            ("1e-5", "1e-05"),
            ("'a/b\"c\\\\d'", r#""a\/b\"c\\d""#),
            (
                "'\\1\\8\\9\\10\\12\\13\\31\\127\\200'",
                "\"\\u0001\\b\\t\\n\\f\\r\\u001f\\u007f\u{fffd}\"",
            ),
            ("true", "true"),
            ("nil", "null"),
            ("cjson.null", "null"),
            ("{}", "{}"),
            ("{1, 2, 3}", "[1,2,3]"),
            ("{[1] = 1, [3] = 3}", "[1,null,3]"),
            ("{a = {b = {}}}", r#"{"a":{"b":{}}}"#),
            ("{[1.5] = 1}", r#"{"1.5":1}"#),
            ("{[-1] = 1}", r#"{"-1":1}"#),
        ];
        for (expr, want) in cases {
            let got: mlua::String = eval(&lua, &format!("return cjson.encode({expr})"));
            let got = String::from_utf8_lossy(&got.as_bytes()).into_owned();
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn sparse_arrays() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "cjson.encode({[11] = 1})"),
            "user_script:1: Cannot serialise table: excessively sparse array"
        );
        let s: String = eval(&lua, "return cjson.encode({[10] = 1})");
        assert_eq!(s, "[null,null,null,null,null,null,null,null,null,1]");
        let s: String = eval(
            &lua,
            "local c = cjson.new() c.encode_sparse_array(true) return c.encode({[11] = 1})",
        );
        assert_eq!(s, r#"{"11":1}"#);
        let r: (bool, f64, f64) = eval(&lua, "return cjson.new().encode_sparse_array()");
        assert_eq!(r, (false, 2.0, 10.0));
    }

    #[test]
    fn settings() {
        let lua = lua();
        let r: (f64, f64, f64) = eval(
            &lua,
            "local c = cjson.new()
             return c.encode_max_depth(), c.decode_max_depth(5), c.encode_number_precision(3)",
        );
        assert_eq!(r, (1000.0, 5.0, 3.0));
        let s: String = eval(
            &lua,
            "local c = cjson.new() c.encode_number_precision(3) return c.encode(3.14159)",
        );
        assert_eq!(s, "3.14");
        let v: String = eval(
            &lua,
            "local c = cjson.new() return c.encode_invalid_numbers('null')",
        );
        assert_eq!(v, "null");
        let s: String = eval(
            &lua,
            "local c = cjson.new() c.encode_invalid_numbers('null') return c.encode({1/0, 0/0})",
        );
        assert_eq!(s, "[null,null]");
        let s: String = eval(
            &lua,
            "local c = cjson.new() c.encode_invalid_numbers(true) return c.encode({1/0, -1/0})",
        );
        assert_eq!(s, "[inf,-inf]");
        let b: bool = eval(&lua, "return cjson.encode_keep_buffer('on')");
        assert!(b);
        let cases = [
            ("cjson.encode_max_depth(0)", "bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"),
            ("cjson.encode_number_precision(15)", "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"),
            ("cjson.encode_max_depth(1, 2)", "bad argument #2 to 'encode_max_depth' (found too many arguments)"),
            ("cjson.encode_invalid_numbers('maybe')", "bad argument #1 to 'encode_invalid_numbers' (invalid option 'maybe')"),
            ("cjson.encode_sparse_array(true, -1)", "bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)"),
            ("cjson.encode()", "bad argument #1 to 'encode' (expected 1 argument)"),
            ("cjson.decode('1', 2)", "bad argument #1 to 'decode' (expected 1 argument)"),
            ("cjson.decode({})", "bad argument #1 to 'decode' (string expected, got table)"),
        ];
        assert_errors(&lua, &cases);
        let v: String = eval(&lua, "return cjson._NAME .. ' ' .. cjson._VERSION");
        assert_eq!(v, "cjson 2.1.0");
    }

    #[test]
    fn encode_errors() {
        let lua = lua();
        let cases = [
            (
                "cjson.encode({[true] = 1})",
                "Cannot serialise boolean: table key must be a number or string",
            ),
            (
                "cjson.encode(print)",
                "Cannot serialise function: type not supported",
            ),
            (
                "cjson.encode({coroutine.create(function() end)})",
                "Cannot serialise thread: type not supported",
            ),
            (
                "cjson.encode(0/0)",
                "Cannot serialise number: must not be NaN or Inf",
            ),
            (
                "cjson.encode({[1/0] = 1})",
                "Cannot serialise number: must not be NaN or Inf",
            ),
        ];
        assert_errors(&lua, &cases);
        let e = error_of(
            &lua,
            "local t = {} for i = 1, 1001 do t = {t} end cjson.encode(t)",
        );
        assert_eq!(
            e,
            "user_script:1: Cannot serialise, excessive nesting (1001)"
        );
        // A circular table ends at the depth limit too.
        let e = error_of(&lua, "local t = {} t[1] = t cjson.encode(t)");
        assert_eq!(
            e,
            "user_script:1: Cannot serialise, excessive nesting (1001)"
        );
        // Past 2000 levels whatever the setting (mlua's references; the C
        // stops at 3999 levels of objects).
        let e = error_of(
            &lua,
            "local c = cjson.new() c.encode_max_depth(100000) \
             local t = {} for i = 1, 5000 do t = {a = t} end c.encode(t)",
        );
        assert_eq!(
            e,
            "user_script:1: Cannot serialise, excessive nesting (2001)"
        );
        let s: String = eval(
            &lua,
            "local c = cjson.new() c.encode_max_depth(100000) \
             local t = {} for i = 1, 1999 do t = {t} end return c.encode(t):sub(1, 3)",
        );
        assert_eq!(s, "[[[");
    }

    #[test]
    fn decode_values() {
        let lua = lua();
        eval::<()>(
            &lua,
            r#"
            local t = cjson.decode('{"a": [1, 2, {"b": null}], "c": "x\\u00e9\\ud83d\\ude00\\/\\n", "d": true, "e": false}')
            assert(t.a[1] == 1 and t.a[2] == 2 and t.a[3].b == cjson.null)
            assert(t.c == "x\195\169\240\159\152\128/\n")
            assert(t.d == true and t.e == false)
            assert(cjson.decode('"\\u0000"') == "\0")
            assert(cjson.decode(' 12 ') == 12)
            assert(cjson.decode('[]')[1] == nil and next(cjson.decode('{}')) == nil)
            assert(cjson.decode('0x10') == 16)
            assert(cjson.decode('-Infinity') == -1/0)
            assert(cjson.decode('+5') == 5)
            assert(cjson.decode('007') == 7)
            local n = cjson.decode('nan') assert(n ~= n)
            assert(cjson.decode('1e400') == 1/0)
            assert(cjson.decode('123456789012345678901234567890') == 1.2345678901234568e29)
            assert(cjson.decode('[1]\0garbage')[1] == 1)
            local big = cjson.decode(cjson.encode({1e300, -2^63, 0.1}))
            assert(big[1] == 1e300 and big[2] == -9.2233720368548e18 and big[3] == 0.1)
            "#,
        );
    }

    #[test]
    fn decode_errors() {
        let lua = lua();
        let cases = [
            (
                "cjson.decode('')",
                "Expected value but found T_END at character 1",
            ),
            (
                "cjson.decode('x')",
                "Expected value but found invalid token at character 1",
            ),
            (
                "cjson.decode('[1,]')",
                "Expected value but found T_ARR_END at character 4",
            ),
            (
                "cjson.decode('[1 2]')",
                "Expected comma or array end but found T_NUMBER at character 4",
            ),
            (
                "cjson.decode('{1: 2}')",
                "Expected object key string but found T_NUMBER at character 2",
            ),
            (
                "cjson.decode('{\"a\" 2}')",
                "Expected colon but found T_NUMBER at character 6",
            ),
            (
                "cjson.decode('{\"a\": 2 ]')",
                "Expected comma or object end but found T_ARR_END at character 9",
            ),
            (
                "cjson.decode('[1] 2')",
                "Expected the end but found T_NUMBER at character 5",
            ),
            (
                "cjson.decode('\"abc')",
                "Expected value but found unexpected end of string at character 5",
            ),
            (
                "cjson.decode('\"a\\\\qb\"')",
                "Expected value but found invalid escape code at character 3",
            ),
            (
                "cjson.decode('\"\\\\udc00\"')",
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                "cjson.decode('tru')",
                "Expected value but found invalid token at character 1",
            ),
            (
                "cjson.decode('-')",
                "Expected value but found invalid number at character 1",
            ),
            (
                "cjson.decode('a\\0')",
                "JSON parser does not support UTF-16 or UTF-32",
            ),
        ];
        assert_errors(&lua, &cases);
        let e = error_of(
            &lua,
            "local c = cjson.new() c.decode_invalid_numbers(false) c.decode('0x10')",
        );
        assert_eq!(
            e,
            "user_script:1: Expected value but found invalid number at character 1"
        );
        let e = error_of(&lua, "cjson.decode(string.rep('[', 1001))");
        assert_eq!(
            e,
            "user_script:1: Found too many nested data structures (1001) at character 1001"
        );
        let e = error_of(
            &lua,
            "local c = cjson.new() c.decode_max_depth(100000) c.decode(string.rep('{\"a\":', 5000))",
        );
        assert_eq!(
            e,
            "user_script:1: Found too many nested data structures (2001) at character 10001"
        );
        let n: f64 = eval(
            &lua,
            "local c = cjson.new() c.decode_max_depth(100000) \
             local t = c.decode(string.rep('[', 2000) .. '5' .. string.rep(']', 2000)) \
             for i = 1, 2000 do t = t[1] end return t",
        );
        assert_eq!(n, 5.0);
    }
}
