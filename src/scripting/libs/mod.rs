//! The four C libraries Redis 7.0 bundles into its Lua (`cjson`, `cmsgpack`,
//! `bit`, `struct`), reimplemented in Rust on mlua, with the behaviour and
//! error texts of Redis's `deps/lua/src/lua_cjson.c`, `lua_cmsgpack.c`,
//! `lua_bit.c` and `lua_struct.c`.
//!
//! Every library function is a C function as far as Lua can tell: a small
//! trampoline (`call`) calls the Rust implementation with the arguments in
//! a table, which answers `true, n, results` or `false, message`; the
//! trampoline returns the results, or raises the message as a plain Lua
//! string error with the caller's position in front (what `luaL_error`
//! does). So `pcall(cjson.decode, s)` yields the same
//! string as in Redis, not an mlua error object, and `return cjson.decode(s)`
//! still reports the script's line (a Lua wrapper would lose it to the tail
//! call).
//!
//! Numbers: mlua turns a Lua number into `Value::Integer` whenever it is
//! within `f64::EPSILON` of an integer, which makes `-0` and numbers closer
//! to zero than 2.2e-16 a plain `0`. Numbers are therefore always read
//! again as `f64` (which mlua converts exactly): arguments and array items
//! with `get_exact`, table entries through `Entries`.
//!
//! References: mlua keeps every live `Value` that refers to a Lua object
//! in a stack of about 8000 slots and panics when it is full. Arguments and
//! results therefore stay in Lua tables (`Args`, `Out`), and nesting is
//! capped at `MAX_DEPTH`.
//!
//! `testdata/redis-7.0.15.txt` holds redis-server 7.0.15's answers to a
//! few hundred expressions, which the tests check against.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;

use std::os::raw::c_int;

use mlua::{ffi, Function, Lua, MaybeSend, Table, Value};

/// Installs the globals `bit`, `struct`, `cjson` and `cmsgpack` into `lua`,
/// as Redis 7.0 does for its scripting Lua. Making them read-only is the
/// scripting engine's job (Redis does it for the whole global table).
// The scripting engine (in progress) will call this; until then only the
// tests do.
#[allow(dead_code)]
pub fn register(lua: &Lua) -> mlua::Result<()> {
    let entries = Entries::factory(lua)?;
    let globals = lua.globals();
    globals.set("bit", bit::open(lua)?)?;
    globals.set("struct", structlib::open(lua)?)?;
    globals.set("cjson", cjson::open(lua, &entries)?)?;
    globals.set("cmsgpack", cmsgpack::open(lua, &entries)?)?;
    Ok(())
}

/// The deepest nesting of tables the libraries follow, whatever their
/// settings: each open table holds one or two mlua references, and mlua
/// panics past about 8000 of them. The C goes deeper only for msgpack data
/// nested more than 2000 deep (it stops at about 4000) or when a script
/// raises cjson's depth limits past 2000 (it stops at 4000 to 8000).
pub(crate) const MAX_DEPTH: usize = 2000;

/// The most values a C function may have on its stack (`LUAI_MAXCSTACK` of
/// Lua 5.1): the limit behind the "stack overflow" and nesting errors the C
/// libraries raise.
pub(crate) const MAX_C_STACK: usize = 8000;

/// An error a library function raises.
#[derive(Debug)]
pub(crate) struct LibError {
    pub(crate) msg: Vec<u8>,
    pub(crate) how: Raise,
}

/// How the trampoline raises a [`LibError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raise {
    /// A string with the caller's position in front (`luaL_error`).
    Positioned,
    /// The string as it is, like the errors the Lua core raises inside a C
    /// function ("table index is nil").
    Plain,
    /// Redis's error table `{err = msg}` (`luaPushError` + `lua_error`);
    /// with `ignore_error_stats_update = true` when the error reply was
    /// already counted (a command's own error, raised by `redis.call`).
    Table { counted: bool },
}

impl LibError {
    /// An error with the caller's position in front.
    pub(crate) fn new(msg: Vec<u8>) -> Self {
        LibError {
            msg,
            how: Raise::Positioned,
        }
    }

    /// An error raised without a position.
    pub(crate) fn plain(msg: &str) -> Self {
        LibError {
            msg: msg.as_bytes().to_vec(),
            how: Raise::Plain,
        }
    }

    /// Redis's error table `{err = msg}`, raised as a value.
    pub(crate) fn table(msg: Vec<u8>, counted: bool) -> Self {
        LibError {
            msg,
            how: Raise::Table { counted },
        }
    }
}

impl From<&str> for LibError {
    fn from(s: &str) -> Self {
        LibError::new(s.as_bytes().to_vec())
    }
}

impl From<String> for LibError {
    fn from(s: String) -> Self {
        LibError::new(s.into_bytes())
    }
}

impl From<mlua::Error> for LibError {
    fn from(e: mlua::Error) -> Self {
        match e {
            mlua::Error::MemoryError(_) => LibError::from("not enough memory"),
            mlua::Error::RuntimeError(m) => LibError::from(m),
            e => LibError::from(e.to_string()),
        }
    }
}

/// What a library function answers.
pub(crate) type LibResult<T> = Result<T, LibError>;

/// The arguments of one call, as the C function would see them on its
/// stack. They stay in the table the trampoline made and are read one at a
/// time: mlua has room for about 8000 live references in all and panics
/// past that, and a call may have nearly that many arguments.
pub(crate) struct Args {
    n: usize,
    t: Table,
}

impl Args {
    /// How many arguments there are (`lua_gettop`).
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Argument `i` (from 1), numbers exact, or `None` for "no value".
    pub(crate) fn get(&self, i: usize) -> Option<Value> {
        if i == 0 || i > self.n {
            return None;
        }
        Some(get_exact(&self.t, i as i64).unwrap_or(Value::Nil))
    }

    /// Argument `i` if it is a number.
    pub(crate) fn number(&self, i: usize) -> Option<f64> {
        self.get(i).as_ref().and_then(value_number)
    }
}

/// A number value as `f64` (no string coercion).
pub(crate) fn value_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// `t[i]` (raw), a number read exactly (see the module documentation).
pub(crate) fn get_exact(t: &Table, i: i64) -> mlua::Result<Value> {
    Ok(match t.raw_get::<Value>(i)? {
        Value::Integer(_) | Value::Number(_) => Value::Number(t.raw_get::<f64>(i)?),
        v => v,
    })
}

/// Walks a table's entries as `lua_next` does, with exact numbers. The
/// walk is Lua's `next` kept in a closure, with the key inside it: mlua's
/// own `pairs` would hand `next` back a key it rounded (a key of 1e-20
/// becomes 0), which Lua rejects.
pub(crate) struct Entries {
    step: Function,
}

/// Makes the closure behind [`Entries`].
const ENTRIES: &str = "
local next, type = next, type
return function(t)
  local k = nil
  return function()
    local v
    k, v = next(t, k)
    return k, v, type(k) == 'number' and k or 0, type(v) == 'number' and v or 0
  end
end";

impl Entries {
    /// The function that starts walks (made once, by `register`).
    fn factory(lua: &Lua) -> mlua::Result<Function> {
        lua.load(ENTRIES).set_name("=herald.entries").eval()
    }

    /// Starts a walk over `t`.
    pub(crate) fn of(factory: &Function, t: &Table) -> mlua::Result<Self> {
        Ok(Entries {
            step: factory.call::<Function>(t.clone())?,
        })
    }

    /// The next key and value, `None` at the end.
    pub(crate) fn next(&self) -> mlua::Result<Option<(Value, Value)>> {
        let (k, v, kn, vn): (Value, Value, f64, f64) = self.step.call(())?;
        let exact = |v: Value, n: f64| match v {
            Value::Integer(_) | Value::Number(_) => Value::Number(n),
            v => v,
        };
        Ok(match k {
            Value::Nil => None,
            k => Some((exact(k, kn), exact(v, vn))),
        })
    }
}

/// What a library function returns: its results, kept in a Lua table as
/// they come (see [`Args`] for why not in a `Vec`).
pub(crate) struct Out {
    t: Table,
    n: usize,
}

impl Out {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(Out {
            t: lua.create_table()?,
            n: 0,
        })
    }

    /// How many results there are.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    pub(crate) fn push(&mut self, v: Value) -> mlua::Result<()> {
        self.n += 1;
        self.t.raw_set(self.n, v)
    }

    /// Replaces result `i` (from 1).
    pub(crate) fn set(&mut self, i: usize, v: Value) -> mlua::Result<()> {
        self.t.raw_set(i, v)
    }

    /// Removes the last result.
    pub(crate) fn pop(&mut self) -> mlua::Result<Option<Value>> {
        if self.n == 0 {
            return Ok(None);
        }
        let v = get_exact(&self.t, self.n as i64)?;
        self.t.raw_set(self.n, Value::Nil)?;
        self.n -= 1;
        Ok(Some(v))
    }

    /// The last result.
    pub(crate) fn last(&self) -> mlua::Result<Option<Value>> {
        if self.n == 0 {
            return Ok(None);
        }
        get_exact(&self.t, self.n as i64).map(Some)
    }
}

/// One result.
pub(crate) fn one(lua: &Lua, v: Value) -> LibResult<Out> {
    let mut out = Out::new(lua)?;
    out.push(v)?;
    Ok(out)
}

/// Lua's name for the type of `v` (`luaL_typename`); `None` is "no value".
pub(crate) fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        Some(_) => "userdata",
    }
}

/// `luaL_argerror`: "bad argument #N to 'name' (msg)", the name being the
/// one the caller used for the function, as Lua's debug information gives it.
pub(crate) fn arg_error(lua: &Lua, narg: usize, msg: &[u8]) -> LibError {
    // Level 0 is the Rust implementation, level 1 the trampoline Lua called.
    let (name, method) = match lua.inspect_stack(1) {
        Some(frame) => {
            let names = frame.names();
            (
                names.name.map(|n| n.into_owned()),
                names.name_what == Some("method"),
            )
        }
        None => (None, false),
    };
    let name = name.unwrap_or_else(|| "?".to_owned());
    let mut narg = narg;
    if method {
        narg = narg.saturating_sub(1);
        if narg == 0 {
            let mut m = format!("calling '{name}' on bad self (").into_bytes();
            m.extend_from_slice(msg);
            m.push(b')');
            return LibError::new(m);
        }
    }
    let mut m = format!("bad argument #{narg} to '{name}' (").into_bytes();
    m.extend_from_slice(msg);
    m.push(b')');
    LibError::new(m)
}

/// `luaL_typerror`: "bad argument #N to 'f' (number expected, got nil)".
pub(crate) fn type_error(lua: &Lua, args: &Args, narg: usize, expected: &str) -> LibError {
    let msg = format!(
        "{expected} expected, got {}",
        type_name(args.get(narg).as_ref())
    );
    arg_error(lua, narg, msg.as_bytes())
}

/// `lua_tonumber`: a number, or a string Lua converts to one.
pub(crate) fn to_number(lua: &Lua, args: &Args, i: usize) -> Option<f64> {
    match args.get(i)? {
        Value::String(s) => lua.coerce_number(Value::String(s.clone())).ok().flatten(),
        _ => args.number(i),
    }
}

/// `luaL_checknumber`.
pub(crate) fn check_number(lua: &Lua, args: &Args, i: usize) -> LibResult<f64> {
    to_number(lua, args, i).ok_or_else(|| type_error(lua, args, i, "number"))
}

/// `luaL_checkinteger`: the number truncated (`lua_tointeger` on a 64-bit
/// Lua 5.1).
pub(crate) fn check_integer(lua: &Lua, args: &Args, i: usize) -> LibResult<i64> {
    check_number(lua, args, i).map(|n| n as i64)
}

/// `luaL_optinteger`.
pub(crate) fn opt_integer(lua: &Lua, args: &Args, i: usize, default: i64) -> LibResult<i64> {
    match args.get(i) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, i),
    }
}

/// `luaL_checklstring`: a string's bytes, or a number as Lua prints it.
pub(crate) fn check_lstring(lua: &Lua, args: &Args, i: usize) -> LibResult<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            let n = value_number(&v).unwrap_or(0.0);
            Ok(format_g(n, 14).into_bytes())
        }
        _ => Err(type_error(lua, args, i, "string")),
    }
}

/// `luaL_checkstring` as the C libraries use it: as a C string, so the
/// bytes up to the first NUL.
pub(crate) fn check_cstring(lua: &Lua, args: &Args, i: usize) -> LibResult<Vec<u8>> {
    let mut s = check_lstring(lua, args, i)?;
    if let Some(nul) = s.iter().position(|&b| b == 0) {
        s.truncate(nul);
    }
    Ok(s)
}

/// C's `printf("%.<precision>g", n)` (glibc's output, which Lua 5.1 uses to
/// print numbers with precision 14).
pub(crate) fn format_g(n: f64, precision: usize) -> String {
    let sign = if n.is_sign_negative() { "-" } else { "" };
    if n.is_nan() {
        return format!("{sign}nan");
    }
    if n.is_infinite() {
        return format!("{sign}inf");
    }
    let p = precision.max(1);
    let a = n.abs();
    // The exponent after rounding to p significant digits decides the style.
    let sci = format!("{:.*e}", p - 1, a);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_owned(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    let p = p as i32;
    if exp < p && exp >= -4 {
        let decimals = (p - 1 - exp).max(0) as usize;
        let fixed = format!("{a:.decimals$}");
        format!("{sign}{}", strip_zeros(&fixed))
    } else {
        let m = strip_zeros(&mantissa);
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

/// Drops the trailing zeros of a fraction, and the point if nothing is left
/// after it (`%g` without `#`).
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A library function: the Rust implementation `f` behind a C closure
/// (`call`), so that Lua sees a C function that raises string errors.
pub(crate) fn function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, &Args) -> LibResult<Out> + MaybeSend + 'static,
{
    let imp = lua.create_function(move |lua, (n, t): (usize, Table)| {
        let args = Args { n, t };
        answer(lua, f(lua, &args))
    })?;
    // SAFETY: `exec_raw` pushes `imp` and runs the closure protected; it
    // pops the upvalue and pushes the C closure, the one value returned.
    unsafe {
        lua.exec_raw::<Function>(imp, |state| {
            ffi::lua_pushcclosure(state, call, 1);
        })
    }
}

/// `true, n, results` or `false, message, how` for the trampoline (`how`:
/// 0 positioned, 1 plain, 2 error table, 3 error table already counted).
fn answer(lua: &Lua, r: LibResult<Out>) -> mlua::Result<(Value, Value, Value)> {
    Ok(match r {
        Ok(out) => (
            Value::Boolean(true),
            Value::Number(out.n as f64),
            Value::Table(out.t),
        ),
        Err(e) => (
            Value::Boolean(false),
            Value::String(lua.create_string(&e.msg)?),
            Value::Integer(match e.how {
                Raise::Positioned => 0,
                Raise::Plain => 1,
                Raise::Table { counted: false } => 2,
                Raise::Table { counted: true } => 3,
            }),
        ),
    })
}

/// The C side of every library function: calls the implementation
/// (upvalue 1) with the argument count and a table of the arguments, then
/// returns its results or raises its error. No Rust value with a destructor
/// lives in this frame, so `lua_error` may jump out of it.
unsafe extern "C-unwind" fn call(state: *mut ffi::lua_State) -> c_int {
    let nargs = ffi::lua_gettop(state);
    // A C function always has LUA_MINSTACK (20) free slots: 4 are used here.
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_pushnumber(state, nargs as ffi::lua_Number);
    ffi::lua_createtable(state, nargs, 0);
    for i in 1..=nargs {
        ffi::lua_pushvalue(state, i);
        ffi::lua_rawseti_(state, -2, i);
    }
    ffi::lua_call(state, 2, 3);
    if ffi::lua_toboolean(state, nargs + 1) != 0 {
        // Keep only the results table (at 1), then push its n values.
        let n = ffi::lua_tointeger(state, nargs + 2) as c_int;
        ffi::lua_pushvalue(state, nargs + 3);
        ffi::lua_replace(state, 1);
        ffi::lua_settop(state, 1);
        if n > 0 && ffi::lua_checkstack(state, n) == 0 {
            ffi::lua_pushstring(state, c"stack overflow (too many results)".as_ptr());
            ffi::lua_error(state);
        }
        for i in 1..=n {
            ffi::lua_rawgeti_(state, 1, i);
        }
        return n.max(0);
    }
    match ffi::lua_tointeger(state, nargs + 3) {
        0 => {
            // luaL_error: the position of whoever called this function.
            ffi::luaL_where(state, 1);
            ffi::lua_pushvalue(state, nargs + 2);
            ffi::lua_concat(state, 2);
        }
        1 => ffi::lua_pushvalue(state, nargs + 2),
        how => {
            ffi::lua_createtable(state, 0, 2);
            ffi::lua_pushvalue(state, nargs + 2);
            ffi::lua_setfield(state, -2, c"err".as_ptr());
            if how == 3 {
                ffi::lua_pushboolean(state, 1);
                ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
            }
        }
    }
    ffi::lua_error(state)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A Lua state with the libraries, for the libraries' tests.

    use mlua::{FromLuaMulti, Lua};

    /// A fresh Lua with the standard libraries and Redis's four.
    pub(crate) fn lua() -> Lua {
        let lua = Lua::new();
        super::register(&lua).expect("register");
        lua
    }

    /// Runs `code` (a chunk named like Redis's scripts) and converts what
    /// it returns.
    pub(crate) fn eval<R: FromLuaMulti>(lua: &Lua, code: &str) -> R {
        lua.load(code)
            .set_name("=user_script")
            .eval::<R>()
            .unwrap_or_else(|e| panic!("{code}: {e}"))
    }

    /// The message `code` raises, through `pcall` inside Lua.
    pub(crate) fn error_of(lua: &Lua, code: &str) -> String {
        let wrapped = format!(
            "local ok, e = pcall(function() {code} end) \
             assert(not ok, 'no error') return e"
        );
        eval::<String>(lua, &wrapped)
    }

    /// Checks that each `(code, message)` raises `message` at the script's
    /// first line, as Redis's copy of the library reports it.
    pub(crate) fn assert_errors(lua: &Lua, cases: &[(&str, &str)]) {
        for (code, want) in cases {
            assert_eq!(
                error_of(lua, code),
                format!("user_script:1: {want}"),
                "{code}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{error_of, eval, lua};
    use super::*;

    #[test]
    fn format_g_matches_printf() {
        let cases: &[(f64, usize, &str)] = &[
            (0.0, 14, "0"),
            (-0.0, 14, "-0"),
            (1.0, 14, "1"),
            (100.0, 14, "100"),
            (0.1, 14, "0.1"),
            (1023.2, 14, "1023.2"),
            (0.0003, 14, "0.0003"),
            (0.00003, 14, "3e-05"),
            (1e15, 14, "1e+15"),
            (123456789012345.0, 14, "1.2345678901234e+14"),
            (12345678901234.0, 14, "12345678901234"),
            (2f64.powi(40), 14, "1099511627776"),
            (1.5, 1, "2"),
            (2.5, 1, "2"),
            (0.125, 2, "0.12"),
            (1.23456, 3, "1.23"),
            (1e-20, 14, "1e-20"),
            (1.0 / 3.0, 14, "0.33333333333333"),
            (f64::INFINITY, 14, "inf"),
            (f64::NEG_INFINITY, 14, "-inf"),
            (-1e300, 14, "-1e+300"),
        ];
        for &(n, p, want) in cases {
            assert_eq!(format_g(n, p), want, "{n} with precision {p}");
        }
    }

    #[test]
    fn errors_are_strings_with_the_callers_position() {
        let lua = lua();
        // Called directly from a line of the script: luaL_where's position.
        let e = error_of(&lua, "bit.tobit()");
        assert_eq!(
            e,
            "user_script:1: bad argument #1 to 'tobit' (number expected, got no value)"
        );
        // A tail call still has the script's position (C functions are not
        // really tail-called in Lua 5.1).
        let e = error_of(&lua, "return bit.band({})");
        assert_eq!(
            e,
            "user_script:1: bad argument #1 to 'band' (number expected, got table)"
        );
        // Through pcall: no position, no name.
        let e: String = eval(&lua, "local ok, e = pcall(bit.tobit) return e");
        assert_eq!(e, "bad argument #1 to '?' (number expected, got no value)");
    }

    /// `testdata/redis-7.0.15.txt`: one expression a line, then a tab and
    /// what redis-server 7.0.15 answered to `SHOW` (below) with the
    /// expression as `CASE` (a fresh Lua state for each). Every line must
    /// give the same here.
    #[test]
    fn same_results_as_redis_7_0_15() {
        const SHOW: &str = "local function show(...) local n = select('#', ...) local parts = {} for i = 1, n do local v = select(i, ...) local t = type(v) if t == 'string' then if v:find('[^%w%p ]') then local h = {} for j = 1, #v do h[#h+1] = string.format('%02x', v:byte(j)) end parts[i] = 'hex:' .. table.concat(h) else parts[i] = 's:' .. v end elseif t == 'number' then parts[i] = 'n:' .. string.format('%.17g', v) else parts[i] = t .. ':' .. tostring(v) end end return table.concat(parts, ' | ') end local function pk(...) return {n = select('#', ...), ...} end local r = pk(pcall(function() return CASE end)) if not r[1] then return 'ERR:' .. tostring(r[2]) end return show(unpack(r, 2, r.n))";
        let data = include_str!("testdata/redis-7.0.15.txt");
        let mut failures = Vec::new();
        let mut checked = 0;
        for line in data.lines() {
            let Some((case, want)) = line.split_once("\t=> ") else {
                continue;
            };
            checked += 1;
            let lua = lua();
            let got: String = eval(&lua, &SHOW.replace("CASE", case));
            if got != want {
                failures.push(format!("{case}\n  redis: {want}\n  here:  {got}"));
            }
        }
        assert!(checked >= 300, "only {checked} cases");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn tiny_number_keys_are_walked_exactly() {
        let lua = lua();
        let s: String = eval(&lua, "return cjson.encode({[1e-20] = 1})");
        assert_eq!(s, r#"{"1e-20":1}"#);
        let s: String = eval(
            &lua,
            "local h = '' for c in cmsgpack.pack({[1e-20] = 1}):gmatch('.') do \
             h = h .. string.format('%02x', c:byte()) end return h",
        );
        assert_eq!(s, "81cb3bc79ca10c92422301");
    }

    #[test]
    fn thousands_of_string_arguments_and_results() {
        // mlua panics past about 8000 live references: arguments and
        // results are never all held at once.
        let lua = lua();
        let n: f64 = eval(
            &lua,
            "local t = {} for i = 1, 7900 do t[i] = tostring(i % 7) end \
             return bit.bor(unpack(t))",
        );
        assert_eq!(n, 7.0);
        let n: f64 = eval(
            &lua,
            "local t = {} for i = 1, 7900 do t[i] = 'ab' .. i end \
             return select('#', cmsgpack.unpack(cmsgpack.pack(unpack(t))))",
        );
        assert_eq!(n, 7900.0);
        let n: f64 = eval(
            &lua,
            "return select('#', struct.unpack(string.rep('c1', 7990), string.rep('x', 7990)))",
        );
        assert_eq!(n, 7991.0);
    }

    #[test]
    fn exact_arguments_keep_tiny_numbers_and_negative_zero() {
        let lua = lua();
        let s: String = eval(&lua, "local z = 0 return cjson.encode({1e-20, -z, 0})");
        assert_eq!(s, "[1e-20,-0,0]");
    }
}
