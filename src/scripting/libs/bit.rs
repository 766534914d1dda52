//! `bit`: bit operations on 32-bit integers, as Redis's Lua has them. It
//! follows the library Redis bundles, LuaBitOp 1.0.2 (Mike Pall;
//! `deps/lua/src/lua_bit.c`), on a Lua 5.1 whose numbers are doubles.
//!
//! An argument is normalised the way LuaBitOp does it: the number (or a
//! string Lua converts to one) plus 2^52 + 2^51, and the low 32 bits of
//! that double, so fractions round to nearest even and everything wraps
//! modulo 2^32. Results are signed 32-bit numbers.

use mlua::{Lua, Table, Value};

use super::{function, one, to_number, type_error, Args, LibResult, Out};

/// The `bit` table.
pub(crate) fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", function(lua, |lua, a| ret(lua, barg(lua, a, 1)?))?)?;
    t.set("bnot", function(lua, |lua, a| ret(lua, !barg(lua, a, 1)?))?)?;
    t.set("band", function(lua, |lua, a| fold(lua, a, |x, y| x & y))?)?;
    t.set("bor", function(lua, |lua, a| fold(lua, a, |x, y| x | y))?)?;
    t.set("bxor", function(lua, |lua, a| fold(lua, a, |x, y| x ^ y))?)?;
    t.set(
        "lshift",
        function(lua, |lua, a| shift(lua, a, |b, n| b << n))?,
    )?;
    t.set(
        "rshift",
        function(lua, |lua, a| shift(lua, a, |b, n| b >> n))?,
    )?;
    t.set(
        "arshift",
        function(lua, |lua, a| shift(lua, a, |b, n| ((b as i32) >> n) as u32))?,
    )?;
    t.set(
        "rol",
        function(lua, |lua, a| shift(lua, a, u32::rotate_left))?,
    )?;
    t.set(
        "ror",
        function(lua, |lua, a| shift(lua, a, u32::rotate_right))?,
    )?;
    t.set(
        "bswap",
        function(lua, |lua, a| ret(lua, barg(lua, a, 1)?.swap_bytes()))?,
    )?;
    t.set("tohex", function(lua, tohex)?)?;
    Ok(t)
}

/// Argument `i` as 32 bits (LuaBitOp's `barg`).
fn barg(lua: &Lua, args: &Args, i: usize) -> LibResult<u32> {
    match to_number(lua, args, i) {
        // The double's low 32 bits once 2^52 + 2^51 is added.
        Some(n) => Ok((n + 6_755_399_441_055_744.0).to_bits() as u32),
        None => Err(type_error(lua, args, i, "number")),
    }
}

/// A result, as a signed 32-bit number.
fn ret(lua: &Lua, b: u32) -> LibResult<Out> {
    one(lua, Value::Number(f64::from(b as i32)))
}

/// `band`, `bor`, `bxor`: the first argument, then the others from the
/// last one down (the order LuaBitOp reads them, which decides which bad
/// argument is reported).
fn fold(lua: &Lua, args: &Args, op: fn(u32, u32) -> u32) -> LibResult<Out> {
    let mut b = barg(lua, args, 1)?;
    for i in (2..=args.len()).rev() {
        b = op(b, barg(lua, args, i)?);
    }
    ret(lua, b)
}

/// The shifts and rotations: the count is taken modulo 32.
fn shift(lua: &Lua, args: &Args, op: fn(u32, u32) -> u32) -> LibResult<Out> {
    let b = barg(lua, args, 1)?;
    let n = barg(lua, args, 2)? & 31;
    ret(lua, op(b, n))
}

/// `tohex(x [, n])`: the low `n` hex digits (8 by default, at most 8),
/// upper case when `n` is negative.
fn tohex(lua: &Lua, args: &Args) -> LibResult<Out> {
    let mut b = barg(lua, args, 1)?;
    let mut n = if args.len() < 2 {
        8
    } else {
        barg(lua, args, 2)? as i32
    };
    let digits: &[u8; 16] = if n < 0 {
        // -(-2^31) does not exist: Redis (later releases) treats it as
        // -(2^31 - 1), that is 8 upper-case digits.
        n = n.checked_neg().unwrap_or(i32::MAX);
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let n = n.min(8) as usize;
    let mut buf = [0u8; 8];
    for slot in buf[..n].iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    one(lua, Value::String(lua.create_string(&buf[..n])?))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error_of, eval, lua};

    /// scripting.tcl: "EVAL - Verify minimal bitop functionality".
    #[test]
    fn minimal_bitop_functionality() {
        let lua = lua();
        eval::<()>(
            &lua,
            "assert(bit.tobit(1) == 1);
             assert(bit.band(1) == 1);
             assert(bit.bxor(1,2) == 3);
             assert(bit.bor(1,2,4,8,16,32,64,128) == 255)",
        );
    }

    /// scripting.tcl: "EVAL - Numerical sanity check from bitop".
    #[test]
    fn numerical_sanity_check() {
        let lua = lua();
        eval::<()>(
            &lua,
            r#"assert(0x7fffffff == 2147483647, "broken hex literals");
               assert(0xffffffff == -1 or 0xffffffff == 2^32-1,
                   "broken hex literals");
               assert(tostring(-1) == "-1", "broken tostring()");
               assert(tostring(0xffffffff) == "-1" or
                   tostring(0xffffffff) == "4294967295",
                   "broken tostring()")"#,
        );
    }

    /// functions.tcl uses bit.band and bit.rshift to split a version number.
    #[test]
    fn version_split_as_in_functions_tcl() {
        let lua = lua();
        let s: String = eval(
            &lua,
            "local version = 0x070010
             return string.format('%d.%d.%d',
                 bit.band(bit.rshift(version, 16), 0x000000ff),
                 bit.band(bit.rshift(version, 8), 0x000000ff),
                 bit.band(version, 0x000000ff))",
        );
        assert_eq!(s, "7.0.16");
    }

    /// LuaBitOp's own test values (bittest.lua).
    #[test]
    fn luabitop_semantics() {
        let lua = lua();
        eval::<()>(
            &lua,
            r#"
            assert(bit.tobit(0xffffffff) == -1)
            assert(bit.tobit(0xffffffff + 1) == 0)
            assert(bit.tobit(2^40 + 1234) == 1234)
            assert(bit.tobit(1.5) == 2 and bit.tobit(2.5) == 2 and bit.tobit(-1.5) == -2)
            assert(bit.tobit("12") == 12)
            assert(bit.bnot(0) == -1)
            assert(bit.bnot(0x12345678) == -0x12345679)
            assert(bit.band(0x12345678, 0xff) == 0x78)
            assert(bit.bor(0x12345678, 0xff) == 0x123456ff)
            assert(bit.bxor(0x12345678, 0xff00ff00) == -0x12cb5688)
            assert(bit.lshift(1, 0) == 1 and bit.lshift(1, 8) == 256)
            assert(bit.lshift(1, 31) == -2147483648 and bit.lshift(1, 32) == 1)
            assert(bit.lshift(1, 40) == 256)
            assert(bit.rshift(256, 8) == 1 and bit.rshift(-256, 8) == 16777215)
            assert(bit.arshift(256, 8) == 1 and bit.arshift(-256, 8) == -1)
            assert(bit.rol(0x12345678, 12) == 0x45678123)
            assert(bit.ror(0x12345678, 12) == 0x67812345)
            assert(bit.rol(0x12345678, 0) == 0x12345678)
            assert(bit.bswap(0x12345678) == 0x78563412)
            assert(bit.bswap(0x78563412) == 0x12345678)
            assert(bit.tohex(1) == "00000001")
            assert(bit.tohex(-1) == "ffffffff")
            assert(bit.tohex(0xffffffff) == "ffffffff")
            assert(bit.tohex(-1, -8) == "FFFFFFFF")
            assert(bit.tohex(0x21, 4) == "0021")
            assert(bit.tohex(0x87654321, 4) == "4321")
            assert(bit.tohex(0x87654321, 20) == "87654321")
            assert(bit.tohex(0x87654321, 0) == "")
            assert(bit.tohex(0x87654321, -2147483648) == "87654321")
            "#,
        );
    }

    #[test]
    fn bad_arguments() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "bit.band(1, 2, {})"),
            "user_script:1: bad argument #3 to 'band' (number expected, got table)"
        );
        // The last arguments are read first.
        assert_eq!(
            error_of(&lua, "bit.bor(1, 'x', nil)"),
            "user_script:1: bad argument #3 to 'bor' (number expected, got nil)"
        );
        assert_eq!(
            error_of(&lua, "bit.lshift(1)"),
            "user_script:1: bad argument #2 to 'lshift' (number expected, got no value)"
        );
        assert_eq!(
            error_of(&lua, "bit.tohex(1, nil)"),
            "user_script:1: bad argument #2 to 'tohex' (number expected, got nil)"
        );
    }
}
