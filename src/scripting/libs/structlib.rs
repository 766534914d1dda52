//! `struct`: packing numbers and strings into binary strings and back, as
//! Redis's Lua has it. It follows the library Redis bundles, Roberto
//! Ierusalimschy's struct library (`deps/lua/src/lua_struct.c`, struct.c
//! 1.7 with Redis's fixes: the size overflow check, "offset must be 1 or
//! greater", the result count), on x86-64 sizes (`long` and `size_t` of 8
//! bytes, `int` of 4, doubles aligned to 8) and the machine's byte order as
//! the default.
//!
//! Format options: `>` big endian, `<` little endian, `![n]` alignment,
//! `x` a padding byte, `b/B` signed/unsigned char, `h/H` short, `l/L`
//! long, `T` size_t, `i/In` int of `n` bytes (at most 32), `cn` `n` chars
//! (`c0`: the whole string when packing, the previous number as the length
//! when unpacking), `s` a zero-terminated string, `f` float, `d` double,
//! space ignored. `struct.size` gives a format's size.

use mlua::{Lua, Table, Value};

use super::{
    arg_error, check_cstring, check_lstring, check_number, function, one, opt_integer, Args,
    LibError, LibResult, Out, MAX_C_STACK,
};

/// Largest size of an `i`/`I` integer.
const MAX_INT_SIZE: usize = 32;
/// `MAXALIGN` of the C: the alignment of a double on x86-64.
const MAX_ALIGN: usize = 8;
/// `sizeof(int)`, the default size of `i`.
const INT_SIZE: usize = 4;
/// `sizeof(long)` and `sizeof(size_t)`.
const LONG_SIZE: usize = 8;

/// The `struct` table.
pub(crate) fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", function(lua, pack)?)?;
    t.set("unpack", function(lua, unpack)?)?;
    t.set("size", function(lua, size)?)?;
    Ok(t)
}

/// Byte order and alignment in force while a format is read.
struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Self {
        Header {
            little: cfg!(target_endian = "little"),
            align: 1,
        }
    }
}

/// A format string being read.
struct Format {
    bytes: Vec<u8>,
    at: usize,
}

impl Format {
    fn next(&mut self) -> Option<u8> {
        let c = self.bytes.get(self.at).copied()?;
        self.at += 1;
        Some(c)
    }

    /// A number written after an option, or `default` (`getnum`).
    fn num(&mut self, default: usize) -> LibResult<usize> {
        let digit = |f: &Format| f.bytes.get(f.at).copied().filter(u8::is_ascii_digit);
        if digit(self).is_none() {
            return Ok(default);
        }
        let mut a: i32 = 0;
        while let Some(d) = digit(self) {
            let d = i32::from(d - b'0');
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(LibError::from("integral size overflow"));
            }
            a = a * 10 + d;
            self.at += 1;
        }
        Ok(a as usize)
    }
}

/// The size of option `opt` (`optsize`), reading its number if it has one.
fn optsize(opt: u8, fmt: &mut Format) -> LibResult<usize> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => LONG_SIZE,
        b'f' => 4,
        b'c' => fmt.num(1)?,
        b'i' | b'I' => {
            let size = fmt.num(INT_SIZE)?;
            if size > MAX_INT_SIZE {
                return Err(LibError::from(format!(
                    "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                )));
            }
            size
        }
        _ => 0,
    })
}

/// Padding needed to align an item of `size` at offset `len` (`gettoalign`),
/// with the C's unsigned arithmetic.
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

/// The options that set byte order and alignment, or the invalid option
/// error (`controloptions`).
fn controloptions(lua: &Lua, opt: u8, fmt: &mut Format, h: &mut Header) -> LibResult<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = fmt.num(MAX_ALIGN)?;
            if !a.is_power_of_two() {
                return Err(LibError::from(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        _ => {
            let mut msg = b"invalid format option '".to_vec();
            msg.push(opt);
            msg.push(b'\'');
            return Err(arg_error(lua, 1, &msg));
        }
    }
    Ok(())
}

/// `struct.pack(fmt, ...)`.
fn pack(lua: &Lua, args: &Args) -> LibResult<Out> {
    let mut fmt = Format {
        bytes: check_cstring(lua, args, 1)?,
        at: 0,
    };
    let mut h = Header::new();
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        let toalign = gettoalign(out.len(), &h, opt, size);
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = pack_number(lua, args, arg)?;
                arg += 1;
                put_integer(&mut out, n, h.little, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = pack_number(lua, args, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                });
            }
            b'd' => {
                let d = pack_number(lua, args, arg)?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                });
            }
            b'c' | b's' => {
                if arg > args.len() {
                    return Err(missing(lua, arg, "string"));
                }
                let s = check_lstring(lua, args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The C reports the argument after the string.
                    return Err(arg_error(lua, arg, b"string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => controloptions(lua, opt, &mut fmt, &mut h)?,
        }
    }
    one(lua, Value::String(lua.create_string(&out)?))
}

/// `luaL_checknumber` for `pack`.
fn pack_number(lua: &Lua, args: &Args, arg: usize) -> LibResult<f64> {
    if arg > args.len() {
        return Err(missing(lua, arg, "number"));
    }
    check_number(lua, args, arg)
}

/// A missing argument of `pack`: the C pushes a nil above its arguments
/// before it reads them, so the first one missing is a nil.
fn missing(lua: &Lua, arg: usize, expected: &str) -> LibError {
    arg_error(lua, arg, format!("{expected} expected, got nil").as_bytes())
}

/// C's conversion of a double to a 64-bit integer on x86-64
/// (`cvttsd2si`): out of range and NaN give -2^63.
fn c_to_i64(n: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_63..TWO_63).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// C's conversion of a double to an unsigned long as gcc compiles it for
/// x86-64: 2^63 and above through `cvttsd2si` of n - 2^63, the rest
/// (NaN included) as a signed conversion.
fn c_to_u64(n: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n >= TWO_63 {
        (c_to_i64(n - TWO_63) as u64) ^ (1 << 63)
    } else {
        c_to_i64(n) as u64
    }
}

/// Writes `n` as an integer of `size` bytes (`putinteger`): negative
/// numbers in two's complement on 64 bits, bytes beyond the eighth zero.
fn put_integer(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let mut value: u64 = if n < 0.0 {
        c_to_i64(n) as u64
    } else {
        c_to_u64(n)
    };
    let mut buf = [0u8; MAX_INT_SIZE];
    let buf = &mut buf[..size.min(MAX_INT_SIZE)];
    if little {
        for b in buf.iter_mut() {
            *b = (value & 0xff) as u8;
            value >>= 8;
        }
    } else {
        for b in buf.iter_mut().rev() {
            *b = (value & 0xff) as u8;
            value >>= 8;
        }
    }
    out.extend_from_slice(buf);
}

/// Reads an integer of `size` bytes (`getinteger`): only the last eight
/// bytes read count; a signed one is extended from its top bit.
fn get_integer(buf: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    if little {
        for &b in buf.iter().rev() {
            l = (l << 8) | u64::from(b);
        }
    } else {
        for &b in buf {
            l = (l << 8) | u64::from(b);
        }
    }
    if !signed {
        return l as f64;
    }
    // The C shifts by size*8-1, which x86-64 takes modulo 64.
    let shift = ((buf.len() as i64) * 8 - 1) & 63;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position after
/// them.
fn unpack(lua: &Lua, args: &Args) -> LibResult<Out> {
    let mut fmt = Format {
        bytes: check_cstring(lua, args, 1)?,
        at: 0,
    };
    let data = check_lstring(lua, args, 2)?;
    let ld = data.len();
    // The C keeps the position in a size_t: a negative one wraps around.
    let pos = opt_integer(lua, args, 3, 1)? as u64;
    if pos == 0 {
        return Err(arg_error(lua, 3, b"offset must be 1 or greater"));
    }
    let mut pos = (pos - 1) as usize;
    let mut h = Header::new();
    let mut out = Out::new(lua)?;
    let data_too_short = || arg_error(lua, 2, b"data string too short");
    while let Some(opt) = fmt.next() {
        let mut size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if size > ld || pos > ld - size {
            return Err(data_too_short());
        }
        // luaL_checkstack(L, 2) over the arguments and the results so far.
        if args.len() + out.len() + 2 > MAX_C_STACK {
            return Err(LibError::from("stack overflow (too many results)"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = get_integer(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                out.push(Value::Number(n))?;
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f64::from(f)))?;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(d))?;
            }
            b'c' => {
                if size == 0 {
                    let previous = match out.last()? {
                        Some(Value::Number(n)) => Some(n),
                        Some(v @ Value::String(_)) => lua.coerce_number(v).ok().flatten(),
                        _ => None,
                    };
                    let Some(n) = previous else {
                        return Err(LibError::from("format 'c0' needs a previous size"));
                    };
                    out.pop()?;
                    // (size_t) of a double, as x86-64 converts it.
                    size = if n < 0.0 {
                        n as i64 as usize
                    } else {
                        n as usize
                    };
                    if size > ld || pos > ld - size {
                        return Err(data_too_short());
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?))?;
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(LibError::from("unfinished string in data"));
                };
                size = len + 1;
                out.push(Value::String(lua.create_string(&data[pos..pos + len])?))?;
            }
            _ => controloptions(lua, opt, &mut fmt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64))?;
    Ok(out)
}

/// `struct.size(fmt)`: the bytes a format packs into.
fn size(lua: &Lua, args: &Args) -> LibResult<Out> {
    let mut fmt = Format {
        bytes: check_cstring(lua, args, 1)?,
        at: 0,
    };
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next() {
        let size = optsize(opt, &mut fmt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(arg_error(lua, 1, b"option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, b"option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(lua, opt, &mut fmt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    one(lua, Value::Number(pos as i64 as f64))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_errors, error_of, eval, lua};

    fn hex(lua: &mlua::Lua, expr: &str) -> String {
        eval(
            lua,
            &format!(
                "local s = {expr} local h = '' \
                 for i = 1, #s do h = h .. string.format('%02x', s:byte(i)) end return h"
            ),
        )
    }

    #[test]
    fn pack_integers_and_byte_order() {
        let lua = lua();
        assert_eq!(hex(&lua, "struct.pack('>i', 1)"), "00000001");
        assert_eq!(hex(&lua, "struct.pack('<i', 1)"), "01000000");
        assert_eq!(hex(&lua, "struct.pack('>h', -2)"), "fffe");
        assert_eq!(hex(&lua, "struct.pack('>I2', 65535)"), "ffff");
        assert_eq!(hex(&lua, "struct.pack('>bB', -1, 255)"), "ffff");
        assert_eq!(hex(&lua, "struct.pack('>l', -1)"), "ffffffffffffffff");
        assert_eq!(hex(&lua, "struct.pack('>i3', 0x123456)"), "123456");
        assert_eq!(hex(&lua, "struct.pack('<i10', -1)"), "ffffffffffffffff0000");
        assert_eq!(hex(&lua, "struct.pack('>T', 258)"), "0000000000000102");
        assert_eq!(hex(&lua, "struct.pack('>d', 1.5)"), "3ff8000000000000");
        assert_eq!(hex(&lua, "struct.pack('>f', 0.5)"), "3f000000");
        // Out of range as x86-64 converts (what Redis gives).
        assert_eq!(hex(&lua, "struct.pack('>L', 2^64)"), "0000000000000000");
        assert_eq!(hex(&lua, "struct.pack('>L', 2^63)"), "8000000000000000");
        assert_eq!(hex(&lua, "struct.pack('>L', 0/0)"), "8000000000000000");
        assert_eq!(hex(&lua, "struct.pack('>l', -1e300)"), "8000000000000000");
    }

    #[test]
    fn pack_strings_padding_alignment() {
        let lua = lua();
        assert_eq!(hex(&lua, "struct.pack('c3', 'abcdef')"), "616263");
        assert_eq!(hex(&lua, "struct.pack('c0', 'abc')"), "616263");
        assert_eq!(hex(&lua, "struct.pack('s', 'ab')"), "616200");
        assert_eq!(hex(&lua, "struct.pack('>bxh', 1, 2)"), "01000002");
        assert_eq!(hex(&lua, "struct.pack('!>bh', 1, 2)"), "01000002");
        assert_eq!(hex(&lua, "struct.pack('!>bi', 1, 2)"), "0100000000000002");
        assert_eq!(hex(&lua, "struct.pack('!2>bi', 1, 2)"), "010000000002");
        assert_eq!(
            hex(&lua, "struct.pack('!>bd', 1, 0)"),
            "01000000000000000000000000000000"
        );
    }

    #[test]
    fn unpack_values_and_next_position() {
        let lua = lua();
        let r: (f64, f64, f64) = eval(&lua, "return struct.unpack('>hb', '\\255\\254\\003')");
        assert_eq!(r, (-2.0, 3.0, 4.0));
        let r: (String, f64) = eval(&lua, "return struct.unpack('s', 'ab\\0cd')");
        assert_eq!(r, ("ab".to_owned(), 4.0));
        let r: (String, f64) = eval(&lua, "return struct.unpack('bc0', '\\3abcd')");
        assert_eq!(r, ("abc".to_owned(), 5.0));
        let r: (f64, f64) = eval(&lua, "return struct.unpack('>I2', 'xx\\1\\2', 3)");
        assert_eq!(r, (258.0, 5.0));
        let r: (f64, f64) = eval(
            &lua,
            "return struct.unpack('<d', struct.pack('<d', 1e-300))",
        );
        assert_eq!(r, (1e-300, 9.0));
        let r: (f64, f64, f64) = eval(
            &lua,
            "return struct.unpack('!>bi', struct.pack('!>bi', -5, 70000))",
        );
        assert_eq!(r, (-5.0, 70000.0, 9.0));
        let r: (f64, f64) = eval(
            &lua,
            "return struct.unpack('>i16', string.rep('\\255', 16))",
        );
        assert_eq!(r, (-1.0, 17.0));
    }

    #[test]
    fn size_of_formats() {
        let lua = lua();
        let n: f64 = eval(&lua, "return struct.size('!bd')");
        assert_eq!(n, 16.0);
        let n: f64 = eval(&lua, "return struct.size('>ihc5x')");
        assert_eq!(n, 12.0);
        let n: f64 = eval(&lua, "return struct.size('bzq')");
        assert_eq!(n, 1.0);
    }

    #[test]
    fn errors_as_the_c_raises_them() {
        let lua = lua();
        let cases = [
            (
                "struct.pack('i', 'x')",
                "bad argument #2 to 'pack' (number expected, got string)",
            ),
            (
                "struct.pack('c5', 'abc')",
                "bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack('z', 1)",
                "bad argument #1 to 'pack' (invalid format option 'z')",
            ),
            ("struct.pack('!3i', 1)", "alignment 3 is not a power of 2"),
            (
                "struct.pack('i33', 1)",
                "integral size 33 is larger than limit of 32",
            ),
            ("struct.pack('i99999999999', 1)", "integral size overflow"),
            (
                "struct.pack(nil)",
                "bad argument #1 to 'pack' (string expected, got nil)",
            ),
            (
                "struct.unpack('i', 'abc')",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('b', 'a', 0)",
                "bad argument #3 to 'unpack' (offset must be 1 or greater)",
            ),
            (
                "struct.unpack('b', 'a', -1)",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            ("struct.unpack('s', 'abc')", "unfinished string in data"),
            (
                "struct.unpack('c0', 'abc')",
                "format 'c0' needs a previous size",
            ),
            (
                "struct.unpack('bc0', '\\9abc')",
                "bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.size('s')",
                "bad argument #1 to 'size' (option 's' has no fixed size)",
            ),
            (
                "struct.size('c0')",
                "bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ),
            (
                "struct.size('b&')",
                "bad argument #1 to 'size' (invalid format option '&')",
            ),
        ];
        assert_errors(&lua, &cases);
    }

    #[test]
    fn too_many_results_is_an_error_not_a_crash() {
        let lua = lua();
        let e = error_of(
            &lua,
            "struct.unpack(string.rep('b', 9000), string.rep('a', 9000))",
        );
        assert_eq!(e, "user_script:1: stack overflow (too many results)");
        let n: f64 = eval(
            &lua,
            "return select('#', struct.unpack(string.rep('b', 7000), string.rep('a', 7000)))",
        );
        assert_eq!(n, 7001.0);
    }
}
