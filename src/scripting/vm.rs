//! One Lua state prepared as Redis 7.0 prepares its scripting Lua: the
//! libraries, the `redis` table, Redis's `math.random`, the sandbox
//! (`sandbox.lua`), and the call of a script with Redis's error handler,
//! its time checks and its conversions.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{
    ffi, Debug, DebugEvent, Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState,
};
use parking_lot::Mutex;

use super::convert::{error_table, error_text, lua_to_reply};
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
/// How far the heap may grow past what the last finished collection left
/// before the steps of [`GC_PERIOD`] resume. On stock Lua 5.1 a step taken
/// while the collector rests starts the next cycle at once, so Redis's
/// steps keep it marking and sweeping the whole live state without pause:
/// with a small script, about 8% of the server's CPU. With this
/// slack the heap stays within some tens of KB of its live size (Lua's
/// own pause would let it double), for most of that work saved. A larger
/// heap (many cached scripts) gets a quarter of its size as slack, so that
/// the cycles, which cost as much as the heap is large, stay as rare for it.
const GC_SLACK: usize = 16 * 1024;

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
    /// Redis's error handler (`__redis__err__handler`), under which a
    /// script runs.
    handler: Function,
    /// Makes a table read-only as the globals are (`protect(t, missing)`).
    pub protect: Function,
    /// Runs since the last collection step (see [`GC_PERIOD`]).
    runs: std::cell::Cell<u32>,
    /// The heap size (bytes) under which no collection step is taken: what
    /// the last finished cycle left, plus its slack (see [`GC_SLACK`]).
    gc_floor: std::cell::Cell<usize>,
    /// Where the running script's `redis.*` functions find its context.
    ctx: Arc<CtxSlot>,
    /// The [`Running`] whose count hook is installed (its address; 0 for
    /// none): it stays between runs, as it only fires while Lua code runs.
    hooked: std::cell::Cell<usize>,
}

/// The running script's [`RunCtx`] (none between scripts), lent by
/// [`Vm::run`] for the length of the script's Lua call: `redis.call`
/// reaches it through a pointer in its upvalue, the other `redis.*`
/// functions through the state's app data. A pointer, not a lock: a lock
/// cost two atomic operations per `redis.call` and four more per run, a
/// noticeable share of a small script.
pub(super) struct CtxSlot(AtomicPtr<RunCtx>);

/// A context lent to a [`CtxSlot`]: taken back when dropped, also when a
/// panic unwinds through [`Vm::run`]. It borrows the context, so the
/// lender cannot touch it meanwhile.
struct Lent<'a> {
    slot: &'a CtxSlot,
    _ctx: std::marker::PhantomData<&'a mut RunCtx>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.slot.0.store(std::ptr::null_mut(), Ordering::Release);
    }
}

impl CtxSlot {
    fn lend<'a>(&'a self, ctx: &'a mut RunCtx) -> Lent<'a> {
        self.0.store(ctx, Ordering::Release);
        Lent {
            slot: self,
            _ctx: std::marker::PhantomData,
        }
    }

    /// Runs `f` on the lent context; `None` when none is lent.
    ///
    /// # Safety
    ///
    /// Called only from this slot's Lua state's `redis.*` functions, on the
    /// thread that runs the state (the one that lent the context: a Lua
    /// state runs on one thread at a time, under the engines' lock, and its
    /// callbacks on the thread that called into it), and not again from
    /// within `f` (no `f` runs Lua code: a script's command that would is
    /// refused before it runs). The context then lives on [`Vm::run`]'s
    /// frame, which does not touch it until the lend ends, and the
    /// reference made here is the only one while `f` runs.
    unsafe fn with<R>(&self, f: impl FnOnce(&mut RunCtx) -> R) -> Option<R> {
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: see above.
        unsafe { p.as_mut() }.map(f)
    }
}

/// Runs `f` on the running script's context; `None` outside a script.
/// Only for the `redis.*` functions (see [`CtxSlot::with`]), whose `f`
/// never calls into Lua.
fn with_ctx<R>(lua: &Lua, f: impl FnOnce(&mut RunCtx) -> R) -> Option<R> {
    let slot = lua.app_data_ref::<Arc<CtxSlot>>()?;
    // SAFETY: called from a `redis.*` function of `lua` (as documented
    // above), and `f` does not call into Lua.
    unsafe { slot.with(f) }
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
        let ctx = Arc::new(CtxSlot(AtomicPtr::new(std::ptr::null_mut())));
        lua.set_app_data(ctx.clone());
        lua.globals().set("redis", redis_table(&lua, &ctx)?)?;
        let math: Table = lua.globals().get("math")?;
        math.set("random", random(&lua, rng.clone())?)?;
        math.set("randomseed", randomseed(&lua, rng)?)?;
        let (globals, protect): (Table, Function) = lua
            .load(include_str!("sandbox.lua"))
            .set_name(SANDBOX_CHUNK)
            .call(lua.create_function(|_, v: Value| Ok(failure_text(v)))?)?;
        let handler: Function = globals.get("__redis__err__handler")?;
        // What building the state left behind is garbage: INFO's
        // used_memory_lua starts from the live state only.
        lua.gc_collect()?;
        Ok(Vm {
            runs: std::cell::Cell::new(0),
            gc_floor: std::cell::Cell::new(0),
            hooked: std::cell::Cell::new(0),
            ctx,
            lua,
            globals,
            handler,
            protect,
        })
    }

    /// Removes the hook (another one is about to be set: FUNCTION LOAD's,
    /// or a fresh count hook).
    pub fn unhook(&self) {
        self.lua.remove_hook();
        self.hooked.set(0);
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
        f: Callee<'_>,
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
        let mut ctx = ctx;
        let lent = self.ctx.lend(&mut ctx);
        let watched = Arc::as_ptr(running) as usize;
        if self.hooked.get() != watched {
            let r = running.clone();
            set_stop_hook(lua, CHECK_EVERY, move || r.check());
            self.hooked.set(watched);
        }
        let result = self.call(f, eval, keys, argv);
        drop(lent);
        if running.stopped() {
            // The hook turned into a line hook to stop the script: the
            // next run gets a fresh count hook.
            self.unhook();
        }
        // A collection step every GC_PERIOD runs, as Redis's
        // luaCallFunction: the garbage of small scripts never piles up to a
        // full cycle's pause, at a fraction of a step per run. Unlike
        // Redis, no step is taken while the heap is within GC_SLACK of what
        // the last finished cycle left (see `gc_floor`).
        let runs = self.runs.get() + 1;
        self.runs.set(runs % GC_PERIOD);
        if runs == GC_PERIOD && lua.used_memory() > self.gc_floor.get() {
            if let Ok(true) = lua.gc_step_kbytes(GC_PERIOD as i32) {
                let live = lua.used_memory();
                self.gc_floor.set(live + GC_SLACK.max(live / 4));
            }
        }
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

    /// Builds KEYS and ARGV and calls the script under Redis's error
    /// handler in one protected call on the raw stack: through mlua, each
    /// table, string and field set is a protected call of its own (a C
    /// closure made each time, garbage for the collector), which cost more
    /// than a small script itself. The script is called as Redis calls it,
    /// by `lua_pcall` with the handler: `(true, first result)`, or `(false,
    /// what the handler made of the error)`.
    fn call(
        &self,
        f: Callee<'_>,
        eval: bool,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> mlua::Result<(bool, Value)> {
        let in_registry = match f {
            Callee::Registered(key) => Some(key.id()),
            Callee::Function(_) => None,
        };
        // SAFETY: `exec_raw` pushes its arguments (the handler, the
        // globals, and a function handle: stack 1 to 3) and runs the
        // closure protected, so a Lua error in it outside the inner
        // `lua_pcall` (out of memory) comes back as an `Err`. A registered
        // script is pushed here instead, by the id of a key made by this
        // state's `create_registry_value` (the script cache keeps the key,
        // so the slot holds the function), which puts it at 3 as well. The
        // closure holds only borrowed slices and integers, nothing to
        // drop, so such an error skips no destructor. Each C function call
        // has LUA_MINSTACK (20) free slots; at most 7 are used at once here
        // (`push_array` uses 2 over its table). The inner `lua_pcall`
        // leaves exactly one value (the result or the handled error); the
        // status goes under it, and the three values below are removed.
        let body = move |state: *mut ffi::lua_State| unsafe {
            if let Some(id) = in_registry {
                ffi::lua_rawgeti_(state, ffi::LUA_REGISTRYINDEX, id);
            }
            let nargs = if eval {
                ffi::lua_pushstring_(state, c"KEYS".as_ptr());
                push_array(state, keys);
                ffi::lua_rawset(state, 2);
                ffi::lua_pushstring_(state, c"ARGV".as_ptr());
                push_array(state, argv);
                ffi::lua_rawset(state, 2);
                ffi::lua_pushvalue(state, 3);
                0
            } else {
                ffi::lua_pushvalue(state, 3);
                push_array(state, keys);
                push_array(state, argv);
                2
            };
            let status = ffi::lua_pcall(state, nargs, 1, 1);
            ffi::lua_pushboolean(state, (status == 0) as i32);
            ffi::lua_insert(state, -2);
            ffi::lua_remove(state, 1);
            ffi::lua_remove(state, 1);
            ffi::lua_remove(state, 1);
        };
        let lua = &self.lua;
        // SAFETY: as above.
        unsafe {
            match f {
                Callee::Registered(_) => {
                    lua.exec_raw::<(bool, Value)>((&self.handler, &self.globals), body)
                }
                Callee::Function(f) => {
                    lua.exec_raw::<(bool, Value)>((&self.handler, &self.globals, f), body)
                }
            }
        }
    }
}

/// The function a run calls: a cached script, by its key in the state's
/// registry (pushed straight from there: no handle made and dropped per
/// run), or a library's function.
#[derive(Clone, Copy)]
pub enum Callee<'a> {
    Registered(&'a mlua::RegistryKey),
    Function(&'a Function),
}

/// Pushes a new array of `items` (Lua strings) onto the stack.
///
/// # Safety
///
/// `state` must have two free stack slots, and any Lua error raised here
/// (out of memory) must be caught by a protected call that has no
/// destructor to run between it and here.
unsafe fn push_array(state: *mut ffi::lua_State, items: &[Bytes]) {
    // A request has far fewer than 2^31 arguments.
    let n = items.len().min(i32::MAX as usize - 1);
    ffi::lua_createtable(state, n as i32, 0);
    for (i, item) in items[..n].iter().enumerate() {
        ffi::lua_pushlstring_(state, item.as_ptr().cast(), item.len());
        ffi::lua_rawseti_(state, -2, i as i32 + 1);
    }
}

/// The chunk name of this module's Lua code (the sandbox).
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
fn redis_table(lua: &Lua, ctx: &Arc<CtxSlot>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("call", redis_call_function(lua, ctx, true)?)?;
    t.set("pcall", redis_call_function(lua, ctx, false)?)?;
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

/// `redis.call` (`raise`) or `redis.pcall`: a C closure over the context
/// slot (a light userdata: `ctx` lives as long as the state, in its app
/// data), `raise`, and the protected reply pusher. It works on the Lua
/// stack directly, as Redis's `luaRedisGenericCommand` does: through mlua,
/// the arguments, the results and every conversion would each be a table
/// or a protected call of their own, more than a small command costs.
fn redis_call_function(lua: &Lua, ctx: &Arc<CtxSlot>, raise: bool) -> mlua::Result<Function> {
    let slot = Arc::as_ptr(ctx).cast_mut().cast::<std::ffi::c_void>();
    // SAFETY: `exec_raw` runs the closure protected with three free stack
    // slots at least; it pushes three values and replaces them with the
    // closure, the one value returned. Nothing in it needs dropping.
    unsafe {
        lua.exec_raw::<Function>((), |state| {
            ffi::lua_pushlightuserdata(state, slot);
            ffi::lua_pushboolean(state, raise as i32);
            ffi::lua_pushcfunction(state, push_reply);
            ffi::lua_pushcclosure(state, redis_call, 3);
        })
    }
}

/// What [`redis_call`] returns to the script (or raises): made by
/// [`push_reply`] inside a protected call.
enum Push {
    /// The command's reply, converted as `redisProtocolToLuaType` does.
    Frame(Frame, bool),
    /// Redis's error table `{err = text}`; `counted`: with
    /// `ignore_error_stats_update = true` (the error was counted already).
    Error(Vec<u8>, bool),
}

/// The C side of `redis.call` / `redis.pcall` (see
/// [`redis_call_function`]). Raising a Lua error jumps over every frame up
/// to the protected call that catches it, so everything with a destructor
/// lives in [`call_and_push`], which has returned by then.
unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> std::os::raw::c_int {
    if call_and_push(state) {
        ffi::lua_error(state)
    } else {
        1
    }
}

/// Runs the command of a `redis.call` and leaves what it returns (or the
/// error it raises) on top of the stack; true to raise it.
///
/// # Safety
///
/// Called only as [`redis_call`], a C function with the upvalues made by
/// [`redis_call_function`]: upvalue 1 points to a [`CtxSlot`] the state's
/// app data keeps alive.
unsafe fn call_and_push(state: *mut ffi::lua_State) -> bool {
    let raise = ffi::lua_toboolean(state, ffi::lua_upvalueindex(2)) != 0;
    let mut force_raise = false;
    let push = match stack_args(state) {
        Err(msg) => Push::Error(error_text(msg.as_bytes()), false),
        Ok(argv) => {
            let slot = ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const CtxSlot;
            // SAFETY: see above for the pointer; `redis.call` is one of the
            // `redis.*` functions `CtxSlot::with` may be called from, and
            // the command it runs does not call into Lua (a script's
            // command that would is refused before it runs).
            let called = (*slot).with(|ctx| {
                let resp3 = ctx.resp3;
                // A panic must not unwind into Lua's C frames.
                let call = std::panic::AssertUnwindSafe(|| ctx.host.call(&argv));
                let reply = std::panic::catch_unwind(call)
                    .unwrap_or_else(|_| Err(b"-ERR the command failed unexpectedly".to_vec()));
                (reply, resp3)
            });
            match called {
                None => {
                    force_raise = true;
                    let msg = "redis.call/pcall can only be called inside a script invocation";
                    Push::Error(error_text(msg.as_bytes()), false)
                }
                Some((reply, resp3)) => match reply {
                    Err(text) => Push::Error(error_text(&text), true),
                    Ok(Frame::Error(e)) if raise => {
                        let mut text = Vec::with_capacity(e.len() + 1);
                        text.push(b'-');
                        text.extend_from_slice(&e);
                        Push::Error(error_text(&text), true)
                    }
                    Ok(frame) => Push::Frame(frame, resp3),
                },
            }
        }
    };
    let raise_it = force_raise || (raise && matches!(push, Push::Error(..)));
    // A C function has LUA_MINSTACK (20) free slots over its arguments.
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(3));
    ffi::lua_pushlightuserdata(state, (&push as *const Push).cast_mut().cast());
    // Out of memory while converting: that error is raised instead.
    let failed = ffi::lua_pcall(state, 1, 1, 0) != 0;
    drop(push);
    failed || raise_it
}

/// The arguments of `redis.call` & co. on the stack as a command
/// (`luaArgsToRedisArgv`): strings as they are, numbers as `%.17g`,
/// anything else refused.
///
/// # Safety
///
/// `state` is a C function's stack; nothing here raises a Lua error.
unsafe fn stack_args(state: *mut ffi::lua_State) -> Result<Argv, &'static str> {
    let n = ffi::lua_gettop(state);
    if n == 0 {
        return Err("Please specify at least one argument for this redis lib call");
    }
    // The strings' sizes and room for the numbers.
    let mut size = 0;
    for i in 1..=n {
        size += match ffi::lua_type(state, i) {
            ffi::LUA_TSTRING => ffi::lua_objlen(state, i),
            _ => 24,
        };
    }
    ARGS_ARENA.with_borrow_mut(|buf| {
        if buf.capacity() - buf.len() < size {
            buf.reserve(size.max(ARGS_ARENA_CHUNK));
        }
        let mut ends = smallvec::SmallVec::<[usize; 16]>::with_capacity(n as usize);
        for i in 1..=n {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    // SAFETY: a string value's bytes, valid while it is on
                    // the stack, which it is until this function returns.
                    buf.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), len));
                }
                ffi::LUA_TNUMBER => {
                    let num = ffi::lua_tonumber(state, i);
                    // `%.17g` of a whole number below 10^15 is its digits
                    // (but -0 stays "-0").
                    if num.fract() == 0.0
                        && num.abs() < 1e15
                        && (num != 0.0 || num.is_sign_positive())
                    {
                        use std::fmt::Write;
                        let _ = write!(buf, "{}", num as i64);
                    } else {
                        buf.extend_from_slice(libs::format_g(num, 17).as_bytes());
                    }
                }
                _ => {
                    buf.clear();
                    return Err("Lua redis lib command arguments must be strings or integers");
                }
            }
            ends.push(buf.len());
        }
        let all = buf.split().freeze();
        let mut start = 0;
        Ok(ends
            .into_iter()
            .map(|end| {
                let arg = all.slice(start..end);
                start = end;
                arg
            })
            .collect())
    })
}

/// A command's arguments, on the stack for most commands.
type Argv = smallvec::SmallVec<[Bytes; 8]>;

/// How much the arguments' buffer grows at a time.
const ARGS_ARENA_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Where `redis.call` copies its arguments: one allocation for many
    /// calls, as the connection's read buffer is for requests (and, as for
    /// those, a command copies what it keeps).
    static ARGS_ARENA: std::cell::RefCell<bytes::BytesMut> =
        std::cell::RefCell::new(bytes::BytesMut::new());
}

/// Pushes a [`Push`] (its address, a light userdata, is argument 1).
/// Called protected by [`call_and_push`], which owns the value: an error
/// here (out of memory) jumps back there over this frame, which owns
/// nothing.
unsafe extern "C-unwind" fn push_reply(state: *mut ffi::lua_State) -> std::os::raw::c_int {
    // SAFETY: argument 1 is the address of a live `Push` (see above).
    let push = &*(ffi::lua_touserdata(state, 1) as *const Push);
    match push {
        Push::Frame(f, resp3) => push_frame(state, f, *resp3),
        Push::Error(text, counted) => {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, text);
            ffi::lua_setfield(state, -2, c"err".as_ptr());
            if *counted {
                ffi::lua_pushboolean(state, 1);
                ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
            }
        }
    }
    1
}

unsafe fn push_bytes(state: *mut ffi::lua_State, b: &[u8]) {
    ffi::lua_pushlstring_(state, b.as_ptr().cast(), b.len());
}

/// Pushes a reply as `redisProtocolToLuaType` converts it (see
/// `convert`). Allocates nothing on the Rust side, so a Lua
/// error may jump over it.
unsafe fn push_frame(state: *mut ffi::lua_State, f: &Frame, resp3: bool) {
    ffi::luaL_checkstack(state, 4, c"reply nested too deep".as_ptr());
    // `{field = <value on top>}`
    let wrap = |state: *mut ffi::lua_State, field: &std::ffi::CStr| {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_insert(state, -2);
        ffi::lua_setfield(state, -2, field.as_ptr());
    };
    match f {
        Frame::Integer(n) => ffi::lua_pushnumber(state, *n as f64),
        Frame::Bulk(b) => push_bytes(state, b),
        Frame::Null | Frame::NullArray => {
            if resp3 {
                ffi::lua_pushnil(state)
            } else {
                ffi::lua_pushboolean(state, 0)
            }
        }
        Frame::Simple(s) => {
            push_bytes(state, s);
            wrap(state, c"ok");
        }
        Frame::Error(e) => {
            // error_text("-" + e): the code up to the first space (ERR if
            // none), a space, the rest without leading or trailing CR/LF.
            ffi::lua_createtable(state, 0, 2);
            let (code, msg): (&[u8], &[u8]) = match memchr::memchr(b' ', e) {
                Some(sp) => (&e[..sp], &e[sp + 1..]),
                None => (b"ERR", e),
            };
            push_bytes(state, code);
            push_bytes(state, b" ");
            push_bytes(state, super::convert::trim_crlf(msg));
            ffi::lua_concat(state, 3);
            ffi::lua_setfield(state, -2, c"err".as_ptr());
            ffi::lua_pushboolean(state, 1);
            ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
        }
        Frame::Array(items) | Frame::Push(items) => {
            ffi::lua_createtable(state, items.len().min(i32::MAX as usize) as i32, 0);
            for (i, item) in items.iter().enumerate() {
                push_frame(state, item, resp3);
                ffi::lua_rawseti_(state, -2, (i + 1).min(i32::MAX as usize) as i32);
            }
        }
        Frame::Map(pairs) => {
            ffi::lua_createtable(state, 0, pairs.len().min(i32::MAX as usize) as i32);
            for (k, v) in pairs {
                push_frame(state, k, resp3);
                push_frame(state, v, resp3);
                ffi::lua_rawset(state, -3);
            }
            wrap(state, c"map");
        }
        Frame::Set(items) => {
            ffi::lua_createtable(state, 0, items.len().min(i32::MAX as usize) as i32);
            for item in items {
                push_frame(state, item, resp3);
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawset(state, -3);
            }
            wrap(state, c"set");
        }
        Frame::Double(d) => {
            ffi::lua_pushnumber(state, *d);
            wrap(state, c"double");
        }
        Frame::Boolean(b) => ffi::lua_pushboolean(state, *b as i32),
        Frame::BigNumber(n) => {
            push_bytes(state, n);
            wrap(state, c"big_number");
        }
        Frame::Verbatim(format, text) => {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, text);
            ffi::lua_setfield(state, -2, c"string".as_ptr());
            push_bytes(state, format.as_bytes());
            ffi::lua_setfield(state, -2, c"format".as_ptr());
            wrap(state, c"verbatim_string");
        }
    }
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
    let set = with_ctx(lua, |ctx| {
        ctx.resp3 = v == 3;
        ctx.host.set_resp(v == 3);
    });
    if set.is_none() {
        return Err(raise(
            "redis.setresp can only be called inside a script invocation",
        ));
    }
    Out::new(lua).map_err(LibError::from)
}

fn set_repl(lua: &Lua, args: &Args) -> LibResult<Out> {
    if with_ctx(lua, |_| ()).is_none() {
        return Err(raise(
            "redis.set_repl can only be called inside a script invocation",
        ));
    }
    if args.len() != 1 {
        return Err(raise("redis.set_repl() requires two arguments."));
    }
    let flags = libs::to_number(lua, args, 1).unwrap_or(0.0) as i64;
    if flags & !3 != 0 {
        return Err(raise(
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        ));
    }
    with_ctx(lua, |ctx| ctx.host.set_repl(flags as u8));
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
    let Some(checked) = with_ctx(lua, |ctx| ctx.host.acl_check(&argv)) else {
        return Err(raise(
            "redis.acl_check_cmd can only be called inside a script invocation",
        ));
    };
    match checked {
        Some(ok) => libs::one(lua, Value::Boolean(ok)),
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
