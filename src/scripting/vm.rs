//! One Lua state prepared as Redis 7.0 prepares its scripting Lua: the
//! libraries, the `redis` table, Redis's `math.random`, the sandbox
//! (`sandbox.lua`), and the call of a script with Redis's error handler,
//! its time checks and its conversions.

use std::sync::Arc;

use bytes::Bytes;
use mlua::{
    Debug, DebugEvent, Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState,
};
use parking_lot::Mutex;

use super::convert::{error_table, error_text, lua_to_reply, reply_to_lua};
use super::libs::{self, arg_error, check_integer, Args, LibError, LibResult, Out};
use super::{Host, Running};
use crate::protocol::Frame;

/// The most memory one Lua state may use; past it allocations fail and
/// the script gets Lua's "not enough memory" error.
const LUA_MEMORY_LIMIT: usize = 1 << 30;

/// How often (in Lua instructions) a running script checks its time and
/// whether it was killed, as Redis's count hook.
const CHECK_EVERY: u32 = 100_000;
/// Redis's `LUA_GC_CYCLE_PERIOD`: runs between collection steps, and the
/// step's size (KB).
const GC_PERIOD: u32 = 50;

/// Redis's version as scripts see it (`redis.REDIS_VERSION(_NUM)`).
const REDIS_VERSION: &str = "7.0.15";
const REDIS_VERSION_NUM: u32 = 0x0007_000f;

/// What a running script's `redis.*` functions reach: the host (the
/// command layer) and the protocol the script chose.
pub struct RunCtx {
    pub host: Box<dyn Host>,
    pub resp3: bool,
    /// Set by the run: the script's reply is the error of a command it
    /// called, already counted in the error stats (Redis's
    /// `ignore_error_stats_update`).
    pub counted: bool,
}

/// A Lua state with its compiled code.
pub struct Vm {
    pub lua: Lua,
    /// The hidden globals table, where KEYS and ARGV go.
    globals: Table,
    /// Calls a function under Redis's error handler.
    runner: Function,
    /// Makes a table read-only as the globals are (`protect(t, missing)`).
    pub protect: Function,
    /// Runs since the last collection step (see [`GC_PERIOD`]).
    runs: std::cell::Cell<u32>,
}

impl Vm {
    /// A fresh state, sharing `rng` (Redis has one generator for all).
    pub fn new(rng: Arc<Mutex<Rand48>>) -> mlua::Result<Vm> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: `debug` is needed only by the error handler; the sandbox
        // keeps it in a local of that handler and removes it from the
        // globals before any script runs, so scripts cannot reach it.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
        libs::register(&lua)?;
        lua.globals().set("redis", redis_table(&lua)?)?;
        let math: Table = lua.globals().get("math")?;
        math.set("random", random(&lua, rng.clone())?)?;
        math.set("randomseed", randomseed(&lua, rng)?)?;
        let (globals, protect): (Table, Function) = lua
            .load(include_str!("sandbox.lua"))
            .set_name(SANDBOX_CHUNK)
            .call(lua.create_function(|_, v: Value| Ok(failure_text(v)))?)?;
        let runner: Function = lua.load(RUNNER).set_name(SANDBOX_CHUNK).eval()?;
        // What building the state left behind is garbage: INFO's
        // used_memory_lua starts from the live state only.
        lua.gc_collect()?;
        Ok(Vm {
            runs: std::cell::Cell::new(0),
            lua,
            globals,
            runner,
            protect,
        })
    }

    /// Compiles a script body under `chunk` (`@user_script`); the error is
    /// Lua's message.
    pub fn compile(&self, chunk: &str, body: &[u8]) -> Result<Function, String> {
        self.lua
            .load(body)
            .set_name(chunk)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                e => e.to_string(),
            })
    }

    /// Runs `f`: an EVAL script with KEYS and ARGV as globals, or a
    /// function called with them as arguments. Returns the reply and the
    /// context back.
    pub fn run(
        &self,
        f: &Function,
        call: Call<'_>,
        ctx: RunCtx,
        running: &Arc<Running>,
    ) -> (Frame, RunCtx) {
        let Call {
            eval,
            keys,
            argv,
            name,
        } = call;
        let lua = &self.lua;
        lua.set_app_data(ctx);
        let r = running.clone();
        set_stop_hook(lua, CHECK_EVERY, move || {
            r.check()
                .then_some("Script killed by user with SCRIPT KILL...")
        });
        let result = self.call(f, eval, keys, argv);
        lua.remove_hook();
        // A collection step every GC_PERIOD runs, as Redis's
        // luaCallFunction: the garbage of small scripts never piles up to a
        // full cycle's pause, at a fraction of a step per run.
        let runs = self.runs.get() + 1;
        self.runs.set(runs % GC_PERIOD);
        if runs == GC_PERIOD {
            let _ = lua.gc_step_kbytes(GC_PERIOD as i32);
        }
        let mut ctx = lua
            .remove_app_data::<RunCtx>()
            .expect("the run context was set above");
        ctx.counted = match &result {
            Ok((_, Value::Table(t))) => t
                .raw_get::<bool>("ignore_error_stats_update")
                .unwrap_or(false),
            _ => false,
        };
        let frame = match result {
            Ok((true, v)) => lua_to_reply(&v, ctx.resp3),
            Ok((false, Value::Table(err))) => error_reply(&err, name),
            Ok((false, other)) => {
                let msg = match other {
                    Value::String(s) => s.to_string_lossy(),
                    _ => "execution failure".to_string(),
                };
                run_failure(name, &msg)
            }
            Err(e) => run_failure(name, &e.to_string()),
        };
        (frame, ctx)
    }

    fn call(
        &self,
        f: &Function,
        eval: bool,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> mlua::Result<(bool, Value)> {
        let keys_t = self.array(keys)?;
        let argv_t = self.array(argv)?;
        if eval {
            self.globals.raw_set("KEYS", keys_t)?;
            self.globals.raw_set("ARGV", argv_t)?;
            self.runner.call((f, Value::Nil, Value::Nil))
        } else {
            self.runner.call((f, keys_t, argv_t))
        }
    }

    fn array(&self, items: &[Bytes]) -> mlua::Result<Table> {
        let t = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(item)?)?;
        }
        Ok(t)
    }
}

/// The chunk name of this module's Lua code (the sandbox, the runner).
pub(super) const SANDBOX_CHUNK: &str = "=herald.sandbox";

/// Watches a running script as Redis's `luaMaskCountHook` does: every
/// `every` instructions `stop` says whether it must end (and with what
/// error). Once it must, the error is raised, and from then on at every
/// new line the script reaches: a `pcall` may catch it, but the script
/// goes no further than its next line. Lines of the sandbox's own wrappers
/// (`pcall`'s) do not count, as Redis's C builtins have no lines; a script
/// whose last act is the `pcall` that caught the error ends with its
/// result, as in Redis.
pub(super) fn set_stop_hook<F>(lua: &Lua, every: u32, stop: F)
where
    F: Fn() -> Option<&'static str> + Clone + Send + 'static,
{
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(every),
        move |lua, debug| stop_hook(lua, &debug, &stop),
    );
}

fn stop_hook<F>(lua: &Lua, debug: &Debug, stop: &F) -> mlua::Result<VmState>
where
    F: Fn() -> Option<&'static str> + Clone + Send + 'static,
{
    let Some(msg) = stop() else {
        return Ok(VmState::Continue);
    };
    if debug.event() == DebugEvent::Line {
        if debug.source().source.as_deref() == Some(SANDBOX_CHUNK) {
            return Ok(VmState::Continue);
        }
    } else {
        // mlua keeps the running hook alive while it runs: replacing it
        // from inside is safe.
        let again = stop.clone();
        lua.set_hook(HookTriggers::new().every_line(), move |lua, debug| {
            stop_hook(lua, &debug, &again)
        });
    }
    Err(mlua::Error::runtime(msg))
}

/// One invocation: an EVAL script (KEYS and ARGV as globals) or a
/// function (called with them), and the name errors give it.
pub struct Call<'a> {
    pub eval: bool,
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    pub name: &'a str,
}

/// Calls a function under Redis's error handler; with arguments (a
/// function's KEYS and ARGV) through a closure, since Lua 5.1's `xpcall`
/// passes none.
const RUNNER: &str = "
local xpcall, handler = xpcall, __redis__err__handler
return function(f, keys, argv)
  if keys == nil then return xpcall(f, handler) end
  return xpcall(function() return f(keys, argv) end, handler)
end";

/// The reply for an error a script raised (Redis's
/// `luaExtractErrorInformation`): the `err` text, then where it happened.
fn error_reply(err: &Table, name: &str) -> Frame {
    let text = |k: &str| -> Option<String> {
        match err.get::<Value>(k).ok()? {
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Number(n) => Some(libs::format_g(n, 14)),
            _ => None,
        }
    };
    let mut msg = text("err").unwrap_or_default();
    if let (Some(source), Some(line)) = (text("source"), text("line")) {
        msg.push_str(&format!(" script: {name}, on {source}:{line}."));
    }
    Frame::Error(Bytes::from(no_newlines(msg)))
}

/// Redis's reply when a script failed without an error table.
fn run_failure(name: &str, msg: &str) -> Frame {
    let msg: String = msg.chars().take(100).collect();
    Frame::Error(Bytes::from(no_newlines(format!(
        "ERR Error running script {name}, {msg}"
    ))))
}

fn no_newlines(s: String) -> String {
    s.replace(['\r', '\n'], " ")
}

/// The `redis` table of the EVAL state.
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "call",
        libs::function(lua, |lua, a| redis_call(lua, a, true))?,
    )?;
    t.set(
        "pcall",
        libs::function(lua, |lua, a| redis_call(lua, a, false))?,
    )?;
    log_and_version(lua, &t)?;
    t.set("setresp", libs::function(lua, setresp)?)?;
    t.set("sha1hex", libs::function(lua, sha1hex)?)?;
    t.set("error_reply", libs::function(lua, error_reply_fn)?)?;
    t.set("status_reply", libs::function(lua, status_reply_fn)?)?;
    t.set("set_repl", libs::function(lua, set_repl)?)?;
    for (name, flags) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        t.set(name, flags)?;
    }
    t.set(
        "replicate_commands",
        libs::function(lua, |lua, _| libs::one(lua, Value::Boolean(true)))?,
    )?;
    t.set(
        "breakpoint",
        libs::function(lua, |lua, _| libs::one(lua, Value::Boolean(false)))?,
    )?;
    t.set(
        "debug",
        libs::function(lua, |lua, _| Out::new(lua).map_err(LibError::from))?,
    )?;
    t.set("acl_check_cmd", libs::function(lua, acl_check_cmd)?)?;
    Ok(t)
}

/// `redis.log`, its levels and `redis.REDIS_VERSION(_NUM)`: in both
/// `redis` tables (scripts', and libraries' while they load).
pub(super) fn log_and_version(lua: &Lua, t: &Table) -> mlua::Result<()> {
    t.set("log", libs::function(lua, log)?)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        t.set(name, level)?;
    }
    t.set("REDIS_VERSION", REDIS_VERSION)?;
    t.set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)
}

/// The message of an error raised from Rust outside the libraries'
/// trampoline (the kill hook): the root cause's text, without mlua's
/// "runtime error: " prefix and traceback.
fn failure_text(v: Value) -> String {
    match v {
        Value::Error(e) => error_message(&e),
        _ => "execution failure".into(),
    }
}

/// The text of an error raised from Rust: the root cause's message, without
/// the callback layers mlua wraps it in.
pub(super) fn error_message(e: &mlua::Error) -> String {
    let mut e = e;
    while let mlua::Error::CallbackError { cause, .. } = e {
        e = cause;
    }
    match e {
        mlua::Error::RuntimeError(msg) => msg.clone(),
        other => other.to_string(),
    }
}

/// Redis's error table, raised.
pub(super) fn raise(msg: &str) -> LibError {
    LibError::table(error_text(msg.as_bytes()), false)
}

/// The arguments of `redis.call` & co. as a command (`luaArgsToRedisArgv`):
/// strings as they are, numbers as `%.17g`, anything else refused.
fn command_args(args: &Args) -> Result<Vec<Bytes>, &'static str> {
    if args.len() == 0 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(args.len());
    for i in 1..=args.len() {
        match args.get(i) {
            Some(Value::String(s)) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Some(Value::Integer(n)) => argv.push(Bytes::from(n.to_string())),
            Some(Value::Number(n)) => argv.push(Bytes::from(libs::format_g(n, 17))),
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        }
    }
    Ok(argv)
}

fn redis_call(lua: &Lua, args: &Args, raise_errors: bool) -> LibResult<Out> {
    let argv = match command_args(args) {
        Ok(a) => a,
        Err(msg) if raise_errors => return Err(raise(msg)),
        Err(msg) => return libs::one(lua, Value::Table(error_table(lua, msg.as_bytes())?)),
    };
    let Some(mut ctx) = lua.app_data_mut::<RunCtx>() else {
        return Err(raise(
            "redis.call/pcall can only be called inside a script invocation",
        ));
    };
    let resp3 = ctx.resp3;
    let reply = ctx.host.call(argv);
    drop(ctx);
    let (frame, refused) = match reply {
        Ok(frame) => (frame, None),
        Err(text) => (Frame::Null, Some(text)),
    };
    if let Some(text) = refused {
        let err = error_text(&text);
        if raise_errors {
            return Err(LibError::table(err, true));
        }
        let t = lua.create_table()?;
        t.raw_set("err", lua.create_string(&err)?)?;
        t.raw_set("ignore_error_stats_update", true)?;
        return libs::one(lua, Value::Table(t));
    }
    if raise_errors {
        if let Frame::Error(e) = &frame {
            let mut text = Vec::with_capacity(e.len() + 1);
            text.push(b'-');
            text.extend_from_slice(e);
            return Err(LibError::table(error_text(&text), true));
        }
    }
    libs::one(lua, reply_to_lua(lua, &frame, resp3)?)
}

fn log(lua: &Lua, args: &Args) -> LibResult<Out> {
    if args.len() < 2 {
        return Err(raise("redis.log() requires two arguments or more."));
    }
    let Some(level) = libs::to_number(lua, args, 1) else {
        return Err(raise("First argument must be a number (log level)."));
    };
    let level = level as i64;
    if !(0..=3).contains(&level) {
        return Err(raise("Invalid debug level."));
    }
    let mut parts = Vec::new();
    for i in 2..=args.len() {
        match args.get(i) {
            Some(Value::String(s)) => parts.push(s.to_string_lossy()),
            Some(v @ (Value::Integer(_) | Value::Number(_))) => {
                parts.push(libs::format_g(libs::value_number(&v).unwrap_or(0.0), 14))
            }
            _ => {}
        }
    }
    let text = parts.join(" ");
    match level {
        0 | 1 => tracing::debug!(target: "herald::script", "{text}"),
        2 => tracing::info!(target: "herald::script", "{text}"),
        _ => tracing::warn!(target: "herald::script", "{text}"),
    }
    Out::new(lua).map_err(LibError::from)
}

fn setresp(lua: &Lua, args: &Args) -> LibResult<Out> {
    if args.len() != 1 {
        return Err(raise("redis.setresp() requires one argument."));
    }
    let v = libs::to_number(lua, args, 1).unwrap_or(0.0) as i64;
    if v != 2 && v != 3 {
        return Err(raise("RESP version must be 2 or 3."));
    }
    let Some(mut ctx) = lua.app_data_mut::<RunCtx>() else {
        return Err(raise(
            "redis.setresp can only be called inside a script invocation",
        ));
    };
    ctx.resp3 = v == 3;
    ctx.host.set_resp(v == 3);
    Out::new(lua).map_err(LibError::from)
}

fn set_repl(lua: &Lua, args: &Args) -> LibResult<Out> {
    let Some(mut ctx) = lua.app_data_mut::<RunCtx>() else {
        return Err(raise(
            "redis.set_repl can only be called inside a script invocation",
        ));
    };
    if args.len() != 1 {
        return Err(raise("redis.set_repl() requires two arguments."));
    }
    let flags = libs::to_number(lua, args, 1).unwrap_or(0.0) as i64;
    if flags & !3 != 0 {
        return Err(raise(
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        ));
    }
    ctx.host.set_repl(flags as u8);
    Out::new(lua).map_err(LibError::from)
}

fn sha1hex(lua: &Lua, args: &Args) -> LibResult<Out> {
    if args.len() != 1 {
        return Err(raise("wrong number of arguments"));
    }
    let data = match args.get(1) {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            libs::format_g(libs::value_number(&v).unwrap_or(0.0), 14).into_bytes()
        }
        _ => Vec::new(),
    };
    libs::one(
        lua,
        Value::String(lua.create_string(super::sha1_hex(&data))?),
    )
}

/// `redis.error_reply` / `redis.status_reply`: one string argument.
fn single_string(args: &Args) -> Option<Vec<u8>> {
    match (args.len(), args.get(1)) {
        (1, Some(Value::String(s))) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn error_reply_fn(lua: &Lua, args: &Args) -> LibResult<Out> {
    let Some(s) = single_string(args) else {
        return libs::one(
            lua,
            Value::Table(error_table(lua, b"wrong number or type of arguments")?),
        );
    };
    let mut text = s;
    if text.first() != Some(&b'-') {
        text.insert(0, b'-');
    }
    libs::one(lua, Value::Table(error_table(lua, &text)?))
}

fn status_reply_fn(lua: &Lua, args: &Args) -> LibResult<Out> {
    let Some(s) = single_string(args) else {
        return libs::one(
            lua,
            Value::Table(error_table(lua, b"wrong number or type of arguments")?),
        );
    };
    let t = lua.create_table()?;
    t.raw_set("ok", lua.create_string(&s)?)?;
    libs::one(lua, Value::Table(t))
}

fn acl_check_cmd(lua: &Lua, args: &Args) -> LibResult<Out> {
    let argv = command_args(args).map_err(raise)?;
    let Some(mut ctx) = lua.app_data_mut::<RunCtx>() else {
        return Err(raise(
            "redis.acl_check_cmd can only be called inside a script invocation",
        ));
    };
    match ctx.host.acl_check(&argv) {
        Some(ok) => {
            drop(ctx);
            libs::one(lua, Value::Boolean(ok))
        }
        None => Err(raise("Invalid command passed to redis.acl_check_cmd()")),
    }
}

/// Redis's `redisLrand48`: the 48-bit linear congruential generator of
/// `lrand48`, with its own state so that every architecture gives the same
/// sequence for a seed.
pub struct Rand48 {
    x: u64,
}

impl Default for Rand48 {
    fn default() -> Self {
        Rand48 {
            x: 0x1234_ABCD_330E,
        }
    }
}

impl Rand48 {
    const MASK: u64 = (1 << 48) - 1;

    /// `redisSrand48`.
    pub fn seed(&mut self, seed: i32) {
        self.x = ((seed as u32 as u64) << 16) | 0x330E;
    }

    /// `redisLrand48`: the next 31-bit value.
    pub fn next(&mut self) -> i32 {
        self.x = (self.x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & Self::MASK;
        (self.x >> 17) as i32
    }
}

/// Redis's `math.random` (Lua's own, on [`Rand48`]).
fn random(lua: &Lua, rng: Arc<Mutex<Rand48>>) -> mlua::Result<Function> {
    libs::function(lua, move |lua, args| {
        const MAX: i32 = i32::MAX;
        let r = (rng.lock().next() % MAX) as f64 / MAX as f64;
        let v = match args.len() {
            0 => r,
            1 => {
                let u = check_integer(lua, args, 1)? as i32;
                if u < 1 {
                    return Err(arg_error(lua, 1, b"interval is empty"));
                }
                (r * u as f64).floor() + 1.0
            }
            2 => {
                let l = check_integer(lua, args, 1)? as i32;
                let u = check_integer(lua, args, 2)? as i32;
                if l > u {
                    return Err(arg_error(lua, 2, b"interval is empty"));
                }
                (r * (u as f64 - l as f64 + 1.0)).floor() + l as f64
            }
            _ => return Err(LibError::from("wrong number of arguments")),
        };
        libs::one(lua, Value::Number(v))
    })
}

/// Redis's `math.randomseed`.
fn randomseed(lua: &Lua, rng: Arc<Mutex<Rand48>>) -> mlua::Result<Function> {
    libs::function(lua, move |lua, args| {
        let seed = check_integer(lua, args, 1)? as i32;
        rng.lock().seed(seed);
        Out::new(lua).map_err(LibError::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rand48_is_redis_lrand48() {
        // What redis-server 7.0.15 answers to math.random(100) twice
        // right after it starts.
        let mut r = Rand48::default();
        let first = (r.next() % i32::MAX) as f64 / i32::MAX as f64;
        let second = (r.next() % i32::MAX) as f64 / i32::MAX as f64;
        assert_eq!(((first * 100.0).floor() + 1.0) as i64, 40);
        assert_eq!(((second * 100.0).floor() + 1.0) as i64, 85);
    }
}
