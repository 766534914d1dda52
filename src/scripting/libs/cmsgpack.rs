//! `cmsgpack`: MessagePack encoding and decoding of Lua values, as Redis's
//! Lua has it. It follows the library Redis bundles, lua-cmsgpack 0.4.0
//! (Salvatore Sanfilippo; `deps/lua/src/lua_cmsgpack.c`) on Lua 5.1:
//!
//! - a number that is an integer within the int64 range is packed as the
//!   smallest integer type, any other number as a float when converting it
//!   to a float and back keeps it, as a double otherwise;
//! - a table whose keys are exactly 1..n is an array, any other a map (an
//!   empty table is an empty array); tables nested 16 deep are packed as
//!   nil, so that circular references end;
//! - nil, functions, userdata and threads are packed as nil;
//! - unpacking gives integers and floats alike as Lua numbers (a uint64
//!   above 2^63 wraps to a negative, as the C pushes it with
//!   `lua_pushinteger`); bin and ext types are a bad data format.
//!
//! Decoding keeps its own stack instead of recursing, and keeps the C's
//! account of Lua stack slots (one per value returned, two per open array,
//! one or two per open map), so that nesting and result counts fail where
//! the C's `luaL_checkstack` fails, with its message.

use mlua::{Function, Lua, Table, Value};

use super::{
    arg_error, check_integer, check_lstring, function, get_exact, one, opt_integer, Args, Entries,
    LibError, LibResult, Out, MAX_C_STACK, MAX_DEPTH,
};

/// Tables nested deeper than this are packed as nil.
const MAX_NESTING: usize = 16;

/// The `cmsgpack` table.
pub(crate) fn open(lua: &Lua, entries: &Function) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let entries = entries.clone();
    t.set("pack", function(lua, move |lua, a| pack(lua, a, &entries))?)?;
    // mp_unpack leaves all its arguments on the stack, the others only the
    // string.
    t.set(
        "unpack",
        function(lua, |lua, a| unpack_full(lua, a, 0, 0, a.len()))?,
    )?;
    t.set(
        "unpack_one",
        function(lua, |lua, a| {
            let offset = opt_integer(lua, a, 2, 0)?;
            unpack_full(lua, a, 1, offset, 1)
        })?,
    )?;
    t.set(
        "unpack_limit",
        function(lua, |lua, a| {
            let limit = check_integer(lua, a, 2)?;
            let offset = opt_integer(lua, a, 3, 0)?;
            unpack_full(lua, a, limit, offset, 1)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// `cmsgpack.pack(...)`: the arguments packed one after the other.
fn pack(lua: &Lua, args: &Args, entries: &Function) -> LibResult<Out> {
    if args.len() == 0 {
        return Err(arg_error(lua, 0, b"MessagePack pack needs input."));
    }
    let mut buf = Vec::new();
    for i in 1..=args.len() {
        encode(&mut buf, args.get(i).unwrap_or(Value::Nil), 0, entries)?;
    }
    one(lua, Value::String(lua.create_string(&buf)?))
}

/// Packs one value at nesting `level` (at most 16, so recursion is fine).
fn encode(buf: &mut Vec<u8>, v: Value, level: usize, entries: &Function) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(buf, &s.as_bytes()),
        Value::Boolean(b) => buf.push(if b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(buf, i as f64),
        Value::Number(n) => encode_number(buf, n),
        Value::Table(t) if level < MAX_NESTING => encode_table(buf, &t, level, entries)?,
        _ => buf.push(0xc0),
    }
    Ok(())
}

fn encode_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= 0xff {
        buf.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
    buf.extend_from_slice(s);
}

/// An integer when the number is one within the int64 range, else a float
/// or a double.
fn encode_number(buf: &mut Vec<u8>, n: f64) {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_finite() && (-TWO_63..TWO_63).contains(&n) && n.trunc() == n {
        encode_int(buf, n as i64);
    } else {
        let f = n as f32;
        if f64::from(f) == n {
            buf.push(0xca);
            buf.extend_from_slice(&f.to_be_bytes());
        } else {
            buf.push(0xcb);
            buf.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn encode_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

/// An array header (`fix array`, `array 16`, `array 32`), or with `map` a
/// map header.
fn encode_header(buf: &mut Vec<u8>, n: usize, map: bool) {
    let (fix, b16, b32) = if map {
        (0x80, 0xde, 0xdf)
    } else {
        (0x90, 0xdc, 0xdd)
    };
    if n <= 15 {
        buf.push(fix | n as u8);
    } else if n <= 0xffff {
        buf.push(b16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(b32);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_table(
    buf: &mut Vec<u8>,
    t: &Table,
    level: usize,
    entries: &Function,
) -> mlua::Result<()> {
    if is_array(t, entries)? {
        let len = t.raw_len();
        encode_header(buf, len, false);
        for j in 1..=len {
            encode(buf, get_exact(t, j as i64)?, level + 1, entries)?;
        }
    } else {
        // Count the entries first, as the C does, then write them.
        let walk = Entries::of(entries, t)?;
        let mut len = 0;
        while walk.next()?.is_some() {
            len += 1;
        }
        encode_header(buf, len, true);
        let walk = Entries::of(entries, t)?;
        while let Some((k, v)) = walk.next()? {
            encode(buf, k, level + 1, entries)?;
            encode(buf, v, level + 1, entries)?;
        }
    }
    Ok(())
}

/// Whether the keys are exactly 1..n (`table_is_an_array`): all positive
/// numbers that fit an `int`, as many as the largest.
fn is_array(t: &Table, entries: &Function) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i64);
    let walk = Entries::of(entries, t)?;
    while let Some((k, _)) = walk.next()? {
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(false),
        };
        if n <= 0.0 || n > f64::from(i32::MAX) || n.trunc() != n {
            return Ok(false);
        }
        max = max.max(n as i64);
        count += 1;
    }
    Ok(max == count)
}

/// Why decoding stopped.
enum Stop {
    /// The input ends inside a value.
    Eof,
    /// A byte that starts no value this library knows.
    BadFormat,
    Error(LibError),
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Self {
        Stop::Error(e.into())
    }
}

/// A container being filled.
enum Frame {
    Array {
        t: Table,
        left: u64,
        index: i64,
    },
    Map {
        t: Table,
        left: u64,
        key: Option<Value>,
    },
}

/// The decoder: the input, the position, and the C's count of Lua stack
/// slots in use.
struct Decoder<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    /// Slots below the values being decoded: the arguments, the values
    /// already returned, and a margin for mlua's own.
    base: usize,
    /// Slots the open containers hold.
    nested: usize,
}

/// What one header starts.
enum Start {
    Value(Value),
    Open(Frame),
}

impl Decoder<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn need(&self, n: usize) -> Result<(), Stop> {
        if self.left() < n {
            Err(Stop::Eof)
        } else {
            Ok(())
        }
    }

    fn byte(&self, i: usize) -> u8 {
        self.data.get(self.pos + i).copied().unwrap_or(0)
    }

    fn bytes<const N: usize>(&self, from: usize) -> [u8; N] {
        let mut b = [0u8; N];
        for (i, slot) in b.iter_mut().enumerate() {
            *slot = self.byte(from + i);
        }
        b
    }

    /// A string of `len` bytes after a header of `hdr` bytes.
    fn string(&mut self, hdr: usize, len: usize) -> Result<Value, Stop> {
        self.need(hdr)?;
        self.pos += hdr;
        self.need(len)?;
        let s = self
            .lua
            .create_string(&self.data[self.pos..self.pos + len])?;
        self.pos += len;
        Ok(Value::String(s))
    }

    fn number(&mut self, size: usize, n: f64) -> Result<Value, Stop> {
        self.pos += size;
        Ok(Value::Number(n))
    }

    /// Reads one header (`mp_decode_to_lua_type` up to the recursion).
    fn start(&mut self, depth: usize) -> Result<Start, Stop> {
        self.need(1)?;
        if self.base + self.nested + 1 > MAX_C_STACK || depth >= MAX_DEPTH {
            return Err(Stop::Error(LibError::from(
                "stack overflow (too many return values at once; \
                 use unpack_one or unpack_limit instead.)",
            )));
        }
        let c = self.byte(0);
        let v = match c {
            0xcc => {
                self.need(2)?;
                self.number(2, f64::from(self.byte(1)))?
            }
            0xd0 => {
                self.need(2)?;
                self.number(2, f64::from(self.byte(1) as i8))?
            }
            0xcd => {
                self.need(3)?;
                self.number(3, f64::from(u16::from_be_bytes(self.bytes(1))))?
            }
            0xd1 => {
                self.need(3)?;
                self.number(3, f64::from(i16::from_be_bytes(self.bytes(1))))?
            }
            0xce => {
                self.need(5)?;
                self.number(5, f64::from(u32::from_be_bytes(self.bytes(1))))?
            }
            0xd2 => {
                self.need(5)?;
                self.number(5, f64::from(i32::from_be_bytes(self.bytes(1))))?
            }
            0xcf => {
                self.need(9)?;
                // Pushed with lua_pushinteger: above 2^63 it wraps.
                self.number(9, u64::from_be_bytes(self.bytes(1)) as i64 as f64)?
            }
            0xd3 => {
                self.need(9)?;
                self.number(9, i64::from_be_bytes(self.bytes(1)) as f64)?
            }
            0xc0 => {
                self.pos += 1;
                Value::Nil
            }
            0xc3 | 0xc2 => {
                self.pos += 1;
                Value::Boolean(c == 0xc3)
            }
            0xca => {
                self.need(5)?;
                self.number(5, f64::from(f32::from_be_bytes(self.bytes(1))))?
            }
            0xcb => {
                self.need(9)?;
                self.number(9, f64::from_be_bytes(self.bytes(1)))?
            }
            0xd9 => {
                self.need(2)?;
                let len = usize::from(self.byte(1));
                self.string(2, len)?
            }
            0xda => {
                self.need(3)?;
                let len = usize::from(u16::from_be_bytes(self.bytes(1)));
                self.string(3, len)?
            }
            0xdb => {
                self.need(5)?;
                let len = u32::from_be_bytes(self.bytes(1)) as usize;
                self.string(5, len)?
            }
            0xdc | 0xde => {
                self.need(3)?;
                let len = u64::from(u16::from_be_bytes(self.bytes(1)));
                self.pos += 3;
                return self.open(len, c == 0xde);
            }
            0xdd | 0xdf => {
                self.need(5)?;
                let len = u64::from(u32::from_be_bytes(self.bytes(1)));
                self.pos += 5;
                return self.open(len, c == 0xdf);
            }
            _ if c & 0x80 == 0 => {
                self.pos += 1;
                Value::Number(f64::from(c))
            }
            _ if c & 0xe0 == 0xe0 => {
                self.pos += 1;
                Value::Number(f64::from(c as i8))
            }
            _ if c & 0xe0 == 0xa0 => self.string(1, usize::from(c & 0x1f))?,
            _ if c & 0xf0 == 0x90 || c & 0xf0 == 0x80 => {
                self.pos += 1;
                return self.open(u64::from(c & 0xf), c & 0xf0 == 0x80);
            }
            _ => return Err(Stop::BadFormat),
        };
        Ok(Start::Value(v))
    }

    /// A new table for an array or map of `len` entries.
    fn open(&mut self, len: u64, map: bool) -> Result<Start, Stop> {
        // No preallocation: `len` comes from the input.
        let t = self.lua.create_table()?;
        if map {
            return Ok(Start::Open(Frame::Map {
                t,
                left: len,
                key: None,
            }));
        }
        if self.base + self.nested + 2 > MAX_C_STACK {
            return Err(Stop::Error(LibError::from(
                "stack overflow (in function mp_decode_to_lua_array)",
            )));
        }
        Ok(Start::Open(Frame::Array {
            t,
            left: len,
            index: 1,
        }))
    }

    /// Decodes one whole value.
    fn value(&mut self) -> Result<Value, Stop> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let mut v = match self.start(stack.len())? {
                Start::Value(v) => v,
                Start::Open(Frame::Array { t, left: 0, .. } | Frame::Map { t, left: 0, .. }) => {
                    Value::Table(t)
                }
                Start::Open(frame) => {
                    self.nested += match frame {
                        Frame::Array { .. } => 2,
                        Frame::Map { .. } => 1,
                    };
                    stack.push(frame);
                    continue;
                }
            };
            // Put the value where it belongs, closing the containers it
            // completes.
            loop {
                let done = match stack.last_mut() {
                    None => return Ok(v),
                    Some(Frame::Array { t, left, index }) => {
                        t.raw_set(*index, v)?;
                        *index += 1;
                        *left -= 1;
                        *left == 0
                    }
                    Some(Frame::Map { t, left, key }) => match key.take() {
                        None => {
                            *key = Some(v);
                            self.nested += 1;
                            false
                        }
                        Some(k) => {
                            self.nested -= 1;
                            set(t, k, v)?;
                            *left -= 1;
                            *left == 0
                        }
                    },
                };
                if !done {
                    break;
                }
                v = match stack.pop() {
                    Some(Frame::Array { t, .. }) => {
                        self.nested -= 2;
                        Value::Table(t)
                    }
                    Some(Frame::Map { t, .. }) => {
                        self.nested -= 1;
                        Value::Table(t)
                    }
                    None => return Ok(Value::Nil),
                };
            }
        }
    }
}

/// `t[k] = v` as `lua_settable` does it, nil and NaN keys being errors.
fn set(t: &Table, k: Value, v: Value) -> Result<(), Stop> {
    match k {
        Value::Nil => Err(Stop::Error(LibError::plain("table index is nil"))),
        Value::Number(n) if n.is_nan() => Err(Stop::Error(LibError::plain("table index is NaN"))),
        k => Ok(t.raw_set(k, v)?),
    }
}

/// `mp_unpack_full`: up to `limit` values from `offset` on (all of them
/// when both are 0), with the next offset first unless all were asked for
/// (-1 once the input is used up). `base` is how many arguments the C
/// leaves on its stack.
fn unpack_full(lua: &Lua, args: &Args, limit: i64, offset: i64, base: usize) -> LibResult<Out> {
    let data = check_lstring(lua, args, 1)?;
    let len = data.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // The C prints the length where it means the limit.
        return Err(LibError::from(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    } else if offset as u64 > len as u64 {
        return Err(LibError::from(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut out = Out::new(lua)?;
    if !decode_all {
        // The next offset goes first; its place is kept.
        out.push(Value::Nil)?;
    }
    let mut d = Decoder {
        lua,
        data: &data,
        pos: offset as usize,
        base,
        nested: 0,
    };
    let mut count: i64 = 0;
    while d.left() > 0 && count < limit {
        d.base = base + count as usize;
        match d.value() {
            Ok(v) => out.push(v)?,
            Err(Stop::Eof) => return Err(LibError::from("Missing bytes in input.")),
            Err(Stop::BadFormat) => return Err(LibError::from("Bad data format in input.")),
            Err(Stop::Error(e)) => return Err(e),
        }
        count += 1;
    }
    if !decode_all {
        if base + count as usize + 1 > MAX_C_STACK {
            return Err(LibError::from(
                "stack overflow (in function mp_unpack_full)",
            ));
        }
        let next = if d.left() == 0 {
            -1.0
        } else {
            (len - d.left()) as f64
        };
        out.set(1, Value::Number(next))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_errors, error_of, eval, lua};

    const HEX: &str = "local function hex(s) local h = '' \
        for i = 1, #s do h = h .. string.format('%02x', string.byte(s, i)) end \
        return h end ";

    fn hex_of(lua: &mlua::Lua, expr: &str) -> String {
        eval(lua, &format!("{HEX} return hex({expr})"))
    }

    /// scripting.tcl: "EVAL - cmsgpack can pack double?".
    #[test]
    fn can_pack_double() {
        let lua = lua();
        assert_eq!(hex_of(&lua, "cmsgpack.pack(0.1)"), "cb3fb999999999999a");
    }

    /// scripting.tcl: "EVAL - cmsgpack can pack negative int64?".
    #[test]
    fn can_pack_negative_int64() {
        let lua = lua();
        assert_eq!(
            hex_of(&lua, "cmsgpack.pack(-1099511627776)"),
            "d3ffffff0000000000"
        );
    }

    /// scripting.tcl: "EVAL - cmsgpack pack/unpack smoke test".
    #[test]
    fn pack_unpack_smoke_test() {
        let lua = lua();
        eval::<()>(
            &lua,
            r#"
                local str_lt_32 = string.rep("x", 30)
                local str_lt_255 = string.rep("x", 250)
                local str_lt_65535 = string.rep("x", 65530)
                local str_long = string.rep("x", 100000)
                local array_lt_15 = {1, 2, 3, 4, 5}
                local array_lt_65535 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}
                local array_big = {}
                for i=1, 100000 do
                    array_big[i] = i
                end
                local map_lt_15 = {a=1, b=2}
                local map_big = {}
                for i=1, 100000 do
                    map_big[tostring(i)] = i
                end
                local some_map = {
                    s1=str_lt_32,
                    s2=str_lt_255,
                    s3=str_lt_65535,
                    s4=str_long,
                    d1=0.1,
                    i1=1,
                    i2=250,
                    i3=65530,
                    i4=100000,
                    i5=2^40,
                    i6=-1,
                    i7=-120,
                    i8=-32000,
                    i9=-100000,
                    i10=-3147483648,
                    a1=array_lt_15,
                    a2=array_lt_65535,
                    a3=array_big,
                    m1=map_lt_15,
                    m2=map_big,
                    b1=false,
                    b2=true,
                    n=nil
                }
                local encoded = cmsgpack.pack(some_map)
                local decoded = cmsgpack.unpack(encoded)
                assert(table.concat(some_map) == table.concat(decoded))
                local offset, decoded_one = cmsgpack.unpack_one(encoded, 0)
                assert(table.concat(some_map) == table.concat(decoded_one))
                assert(offset == -1)

                local encoded_multiple = cmsgpack.pack(str_lt_32, str_lt_255, str_lt_65535, str_long)
                local offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, 0)
                assert(obj == str_lt_32)
                offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
                assert(obj == str_lt_255)
                offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
                assert(obj == str_lt_65535)
                offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
                assert(obj == str_long)
                assert(offset == -1)

                -- and the values themselves came back
                for k, v in pairs(some_map) do
                    if type(v) ~= "table" then assert(decoded[k] == v, k) end
                end
                assert(#decoded.a3 == 100000 and decoded.a3[99999] == 99999)
                assert(decoded.m2["77777"] == 77777)
            "#,
        );
    }

    /// scripting.tcl: "EVAL - cmsgpack can pack and unpack circular
    /// references?".
    #[test]
    fn circular_references() {
        let lua = lua();
        let (h, deep, y): (String, bool, bool) = eval(
            &lua,
            &format!(
                "{HEX}
                local a = {{x=nil,y=5}}
                local b = {{x=a}}
                a['x'] = b
                local encoded = cmsgpack.pack(a)
                local h = hex(encoded)
                local re = cmsgpack.unpack(encoded)
                assert(re)
                assert(re.x)
                assert(re.x.x.y == re.y)
                assert(re.x.x.x.x.y == re.y)
                assert(re.x.x.x.x.x.x.y == re.y)
                assert(re.x.x.x.x.x.x.x.x.x.x.y == re.y)
                -- maximum working depth:
                assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.y == re.y)
                -- now the last x would be b above and has no y
                assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x)
                -- so, the final x.x is at the depth limit and was assigned nil
                assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x == nil)
                return h, re.x.x.x.x.x.x.x.x.y == re.y, re.y == 5"
            ),
        );
        assert_eq!(
            h,
            "82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0"
        );
        assert!(deep && y);
    }

    #[test]
    fn integer_float_double_choice() {
        let lua = lua();
        let cases = [
            ("0", "00"),
            ("127", "7f"),
            ("128", "cc80"),
            ("256", "cd0100"),
            ("65536", "ce00010000"),
            ("2^32", "cf0000000100000000"),
            ("-1", "ff"),
            ("-32", "e0"),
            ("-33", "d0df"),
            ("-129", "d1ff7f"),
            ("-32769", "d2ffff7fff"),
            ("0.5", "ca3f000000"),
            ("1.5", "ca3fc00000"),
            ("2^63", "ca5f000000"),
            ("-2^63", "d38000000000000000"),
            ("1/0", "ca7f800000"),
            ("1e-20", "cb3bc79ca10c924223"),
            ("true", "c3"),
            ("false", "c2"),
            ("nil", "c0"),
            ("print", "c0"),
            ("'abc'", "a3616263"),
            ("string.rep('a', 32):sub(1, 0) .. 'x'", "a178"),
            ("{}", "90"),
            ("{1, 2}", "920102"),
            ("{[2] = 1}", "810201"),
            ("{[1.5] = 1}", "81ca3fc0000001"),
            ("1, 2", "0102"),
        ];
        for (expr, want) in cases {
            assert_eq!(
                hex_of(&lua, &format!("cmsgpack.pack({expr})")),
                want,
                "{expr}"
            );
        }
        assert_eq!(
            hex_of(&lua, "cmsgpack.pack(string.rep('a', 40))").len(),
            4 + 80
        );
        assert!(hex_of(&lua, "cmsgpack.pack(string.rep('a', 40))").starts_with("d928"));
        assert!(hex_of(&lua, "cmsgpack.pack(string.rep('a', 300))").starts_with("da012c"));
    }

    #[test]
    fn unpack_kinds() {
        let lua = lua();
        eval::<()>(
            &lua,
            r#"
            local function u(h)
                return cmsgpack.unpack((h:gsub('..', function(x) return string.char(tonumber(x, 16)) end)))
            end
            assert(u('cc80') == 128 and u('d0df') == -33 and u('d1ff7f') == -129)
            assert(u('ce00010000') == 65536 and u('d2ffff7fff') == -32769)
            assert(u('cfffffffffffffffff') == -1)
            assert(u('d3ffffff0000000000') == -1099511627776)
            assert(u('ca3f000000') == 0.5 and u('cb3fb999999999999a') == 0.1)
            assert(u('c0') == nil and u('c3') == true and u('c2') == false)
            assert(u('a3616263') == 'abc' and u('d903616263') == 'abc' and u('da0003616263') == 'abc')
            assert(u('db00000003616263') == 'abc')
            local t = u('93010203') assert(#t == 3 and t[3] == 3)
            t = u('dc0002c0ff') assert(t[1] == nil and t[2] == -1)
            t = u('dd0000000100') assert(t[1] == 0)
            t = u('82a16101a162920102')
            assert(t.a == 1 and t.b[2] == 2)
            t = u('de0001a16101') assert(t.a == 1)
            t = u('df00000001a16101') assert(t.a == 1)
            local a, b, c = u('010203') assert(a == 1 and b == 2 and c == 3)
            assert(select('#', u('')) == 0)
            local off, v = cmsgpack.unpack_one(string.char(1, 2), 1)
            assert(off == -1 and v == 2)
            off, v = cmsgpack.unpack_limit(string.char(1, 2, 3), 0, 1)
            assert(off == 1 and v == nil)
            -- limit 0 and offset 0: everything, without an offset
            local x, y = cmsgpack.unpack_limit(string.char(1, 2), 0, 0)
            assert(x == 1 and y == 2)
            local n = select('#', cmsgpack.unpack_one(string.char(1), 1))
            assert(n == 1)
            "#,
        );
    }

    #[test]
    fn unpack_errors() {
        let lua = lua();
        let cases = [
            (
                "cmsgpack.unpack(string.char(0xcd, 1))",
                "Missing bytes in input.",
            ),
            (
                "cmsgpack.unpack(string.char(0x92, 1))",
                "Missing bytes in input.",
            ),
            (
                "cmsgpack.unpack(string.char(0xa5, 65))",
                "Missing bytes in input.",
            ),
            (
                "cmsgpack.unpack(string.char(0xdd, 255, 255, 255, 255))",
                "Missing bytes in input.",
            ),
            (
                "cmsgpack.unpack(string.char(0xc1))",
                "Bad data format in input.",
            ),
            (
                "cmsgpack.unpack(string.char(0x91, 0xc4, 0))",
                "Bad data format in input.",
            ),
            (
                "cmsgpack.unpack_one('abc', -1)",
                "Invalid request to unpack with offset of -1 and limit of 3.",
            ),
            (
                "cmsgpack.unpack_limit('abc', -2)",
                "Invalid request to unpack with offset of 0 and limit of 3.",
            ),
            (
                "cmsgpack.unpack_one('abc', 4)",
                "Start offset 4 greater than input length 3.",
            ),
            (
                "cmsgpack.unpack(nil)",
                "bad argument #1 to 'unpack' (string expected, got nil)",
            ),
            (
                "cmsgpack.unpack_limit('a')",
                "bad argument #2 to 'unpack_limit' (number expected, got no value)",
            ),
            (
                "cmsgpack.pack()",
                "bad argument #0 to 'pack' (MessagePack pack needs input.)",
            ),
        ];
        assert_errors(&lua, &cases);
        // lua_settable's own error, without a position.
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack(string.char(0x81, 0xc0, 1))"),
            "table index is nil"
        );
    }

    #[test]
    fn deep_nesting_and_many_results_fail_cleanly() {
        let lua = lua();
        // 5000 nested arrays: 2 slots each, more than a C function's stack.
        let e = error_of(
            &lua,
            "cmsgpack.unpack(string.rep(string.char(0x91), 5000) .. string.char(1))",
        );
        assert!(e.starts_with("user_script:1: stack overflow ("), "{e}");
        // 1500 nested arrays are fine.
        let n: f64 = eval(
            &lua,
            "local t = cmsgpack.unpack(string.rep(string.char(0x91), 1500) .. string.char(7))
             for i = 1, 1500 do t = t[1] end return t",
        );
        assert_eq!(n, 7.0);
        let e = error_of(&lua, "cmsgpack.unpack(string.rep(string.char(1), 9000))");
        assert_eq!(
            e,
            "user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
        );
        let n: f64 = eval(
            &lua,
            "return select('#', cmsgpack.unpack(string.rep(string.char(1), 7000)))",
        );
        assert_eq!(n, 7000.0);
    }
}
