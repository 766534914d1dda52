//! Lua scripting: the Lua side of EVAL, EVALSHA, SCRIPT and (in
//! [`functions`]) FUNCTION / FCALL, on an embedded Lua 5.1 (mlua, with Lua
//! built from source).
//!
//! - [`vm`]: a Lua state prepared as Redis 7.0 prepares its own: the
//!   libraries ([`libs`]), the `redis` table, the sandbox, and the call of
//!   a script with Redis's error handler and time checks;
//! - [`convert`]: replies to Lua values and back, by Redis's rules;
//! - this module: the EVAL script cache and the state of the running
//!   script ([`Running`]: since when, killed, busy).
//!
//! Commands a script calls are not run here: `redis.call` hands them to a
//! [`Host`], which the command layer implements on a client of its own,
//! so that they go through the same checks and the same engine path as a
//! client's. The command layer also holds the keyspace gate for the whole
//! script (`engine::gate`), which makes a script atomic.

pub mod convert;
pub mod functions;
pub mod libs;
pub mod vm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use crate::engine::gate::{Gate, Holder};
use crate::protocol::Frame;
pub use vm::RunCtx;
use vm::{Rand48, Vm};

/// What a script reaches outside Lua: the command layer runs its commands.
pub trait Host: Send {
    /// Runs a command for the script: its reply (an error reply is a
    /// reply), or the text of Redis's refusal to run it from a script
    /// (unknown command, wrong arity, ACL, a write in a read-only script),
    /// `-CODE msg` or just `msg` (code ERR).
    fn call(&mut self, args: &[Bytes]) -> Result<Frame, Vec<u8>>;
    /// `redis.acl_check_cmd`: whether the caller's user may run `args`,
    /// `None` for an unknown command.
    fn acl_check(&mut self, args: &[Bytes]) -> Option<bool>;
    /// `redis.setresp`: the protocol replies come back in.
    fn set_resp(&mut self, resp3: bool);
    /// `redis.set_repl`: where effects propagate (REPL_* bits).
    fn set_repl(&mut self, flags: u8);
    /// The host back as itself once the script is over.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// The SHA1 of `data` in lower-case hex (script names, `redis.sha1hex`).
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(data);
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Script flags, from an EVAL script's shebang line or a function's
/// registration (Redis's `SCRIPT_FLAG_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    pub const NO_WRITES: u8 = 1;
    pub const ALLOW_OOM: u8 = 1 << 1;
    pub const ALLOW_STALE: u8 = 1 << 2;
    pub const NO_CLUSTER: u8 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u8 = 1 << 4;
    /// An EVAL script without a shebang: Redis's compatibility mode.
    pub const EVAL_COMPAT: u8 = 1 << 5;

    /// The flag names and their bits, in Redis's order.
    pub const NAMES: &'static [(&'static str, u8)] = &[
        ("no-writes", Self::NO_WRITES),
        ("allow-oom", Self::ALLOW_OOM),
        ("allow-stale", Self::ALLOW_STALE),
        ("no-cluster", Self::NO_CLUSTER),
        ("allow-cross-slot-keys", Self::ALLOW_CROSS_SLOT),
    ];

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Parses one flag name.
    pub fn bit(name: &[u8]) -> Option<u8> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, b)| *b)
    }
}

/// Parses an EVAL script's shebang (`#!lua flags=no-writes,allow-oom`), as
/// Redis's `evalExtractShebangFlags`: the line split as `sdssplitargs`
/// splits (quotes count), the flags list as `sdssplitlen` splits it (an
/// empty name between commas is an unknown flag). No shebang:
/// compatibility mode.
pub fn shebang_flags(body: &[u8]) -> Result<Flags, String> {
    if !body.starts_with(b"#!") {
        return Ok(Flags(Flags::EVAL_COMPAT));
    }
    let Some(end) = memchr::memchr(b'\n', body) else {
        return Err("ERR Invalid script shebang".into());
    };
    let parts = match crate::protocol::parse::split_args(&body[..end]) {
        Some(parts) if !parts.is_empty() => parts,
        _ => return Err("ERR Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        ));
    }
    let mut flags = Flags(0);
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        if list.is_empty() {
            continue;
        }
        for name in list.split(|&b| b == b',') {
            match Flags::bit(name) {
                Some(bit) => flags.0 |= bit,
                None => {
                    return Err(format!(
                        "ERR Unexpected flag in script shebang: {}",
                        String::from_utf8_lossy(name)
                    ))
                }
            }
        }
    }
    Ok(flags)
}

/// A script in the EVAL cache.
pub struct Script {
    pub body: Bytes,
    pub flags: Flags,
    /// The compiled function, in the EVAL state's registry (an integer
    /// key: no string to make and hash to find it at each run).
    f: mlua::RegistryKey,
}

/// The flags scripts and functions declared, by EVAL script SHA1 and by
/// lowercased function name: kept beside the engines so that a command
/// can be judged by them (CLIENT PAUSE WRITE) while a script holds the
/// engines.
#[derive(Default)]
pub struct Declared {
    scripts: HashMap<String, Flags>,
    functions: HashMap<String, Flags>,
}

/// The Lua states and what they hold; one script runs at a time.
pub struct Engines {
    /// Shared with [`Scripting`]: updated as scripts are cached and flushed.
    declared: Arc<Mutex<Declared>>,
    eval: Vm,
    /// The EVAL scripts by SHA1.
    scripts: HashMap<String, Script, ahash::RandomState>,
    scripts_memory: usize,
    /// The function libraries and their Lua state.
    pub functions: functions::Library,
    rng: Arc<Mutex<Rand48>>,
    /// Whether each script (by the EVAL/EVALSHA argument, or a function by
    /// name) ran within [`quick_limit_ms`] every time so far, and was never
    /// moved off a worker: only those run on a worker (see
    /// [`Running::start`]); an unknown one runs on the scripting thread
    /// first.
    /// (`[0]` scripts, `[1]` functions: looked up by the argument's bytes,
    /// with no copy or reference count.)
    quick: [HashMap<Bytes, bool, ahash::RandomState>; 2],
}

/// How long a run may take and leave its script fit to run on a worker: a
/// quarter of `busy-reply-threshold` (1 s when it is 0). A worker runs
/// such a script as Redis's event loop does, with nothing else meanwhile;
/// what matters is that it ends long before it would be busy, not that it
/// is short. (Wall clock: a loaded machine may preempt a script for tens
/// of milliseconds, which must not bar it from the worker for good.)
pub fn quick_limit_ms(threshold_ms: u64) -> u64 {
    match threshold_ms {
        0 => 1000,
        t => t / 4,
    }
}
/// Scripts run on a worker only while `busy-reply-threshold` is at least
/// this (or 0): a quick script then ends long before it would be busy.
pub const INLINE_THRESHOLD_MS: u64 = 200;
/// A script running on a worker, still without effects past this many ms,
/// is stopped and runs again on the scripting thread.
pub const INLINE_BUDGET_MS: u64 = 2;
/// The most scripts [`Engines`] remembers the speed of (forgotten all at
/// once past it: they then run on the scripting thread once more).
const QUICK_ENTRIES: usize = 4096;

/// What INFO memory reports of scripting, as last noted.
#[derive(Default)]
pub struct Figures {
    pub libraries: AtomicUsize,
    pub functions: AtomicUsize,
    pub cached_scripts: AtomicUsize,
    /// The EVAL state's heap (`used_memory_vm_eval`).
    pub eval_vm: AtomicUsize,
    /// The cached scripts' bodies and entries (`used_memory_scripts_eval`).
    pub scripts_eval: AtomicUsize,
    /// The functions state's heap (`used_memory_vm_functions`).
    pub functions_vm: AtomicUsize,
    /// The libraries' code and entries (`used_memory_functions`).
    pub functions_memory: AtomicUsize,
}

/// Scripting's state in the server (`Shared::scripting`).
pub struct Scripting {
    engines: Mutex<Engines>,
    /// The scripting thread's queue (started with the first script).
    thread: Mutex<Option<std::sync::mpsc::Sender<Task>>>,
    pub running: Arc<Running>,
    /// Counts and sizes, readable while a script runs (INFO and FUNCTION
    /// STATS may run then, while the engines are busy).
    figures: Figures,
    /// The libraries' code as of the last change, for an AOF rewrite: it
    /// takes them while holding every database, which a running script
    /// may be waiting for while it holds the engines.
    libraries: Mutex<Vec<Bytes>>,
    /// See [`queued`](Self::queued).
    queued: Arc<AtomicUsize>,
    /// Callers whose script ended, to wake ([`wake`](Self::wake)).
    ended: Arc<Mutex<Vec<Arc<Notify>>>>,
    /// Wakes [`wake_callers`](Self::wake_callers) on the runtime.
    ended_ready: Arc<Notify>,
    /// See [`Declared`].
    declared: Arc<Mutex<Declared>>,
}

impl Scripting {
    /// Fresh Lua states; `gate` is the keyspace gate the running script
    /// holds (made busy past `busy-reply-threshold`).
    pub fn new(gate: Arc<Gate>) -> Scripting {
        let rng = Arc::new(Mutex::new(Rand48::default()));
        let eval = Vm::new(rng.clone()).unwrap_or_else(|e| panic!("creating the Lua state: {e}"));
        let functions = functions::Library::new(rng.clone());
        let declared = Arc::new(Mutex::new(Declared::default()));
        let scripting = Scripting {
            engines: Mutex::new(Engines {
                declared: declared.clone(),
                eval,
                scripts: HashMap::default(),
                scripts_memory: 0,
                functions,
                rng,
                quick: Default::default(),
            }),
            running: Arc::new(Running::new(gate)),
            figures: Figures::default(),
            libraries: Mutex::new(Vec::new()),
            queued: Arc::new(AtomicUsize::new(0)),
            ended: Arc::new(Mutex::new(Vec::new())),
            ended_ready: Arc::new(Notify::new()),
            thread: Mutex::new(None),
            declared,
        };
        scripting.note(&scripting.engines.lock());
        scripting
    }

    /// Wakes the caller of a script that ended (its connection waits on
    /// `caller`). Waking a task from this thread costs the worker a
    /// system call (its event loop's wake-up) each time; the callers go
    /// to [`wake_callers`](Self::wake_callers) instead, on the runtime,
    /// which is woken once for all the scripts that end meanwhile.
    pub fn wake(&self, caller: Arc<Notify>) {
        let mut ended = self.ended.lock();
        let first = ended.is_empty();
        ended.push(caller);
        drop(ended);
        if first {
            self.ended_ready.notify_one();
        }
    }

    /// Runs on the runtime for the server's life (the server spawns it):
    /// wakes the callers [`wake`](Self::wake) collects.
    pub fn wake_callers(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (ended, ready) = (self.ended.clone(), self.ended_ready.clone());
        async move {
            loop {
                ready.notified().await;
                let callers = std::mem::take(&mut *ended.lock());
                for caller in callers {
                    caller.notify_one();
                }
            }
        }
    }

    /// Tasks submitted and not finished (the one running included): a
    /// caller that is not alone in the queue does not wait for its reply
    /// on the worker.
    pub fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// Runs `task` on the scripting thread: a script not known to be
    /// quick, or that ran past its budget on a worker, runs there, so that
    /// the workers stay free to answer `-BUSY`, SCRIPT KILL and SHUTDOWN
    /// NOSAVE without help.
    pub fn submit(&self, task: Task) {
        self.queued.fetch_add(1, Relaxed);
        let mut thread = self.thread.lock();
        let task = match thread.as_ref() {
            Some(tx) => match tx.send(task) {
                Ok(()) => return,
                Err(e) => e.0,
            },
            None => task,
        };
        let (tx, rx) = std::sync::mpsc::channel::<Task>();
        let queued = self.queued.clone();
        let spawned = std::thread::Builder::new()
            .name("herald-script".into())
            .spawn(move || {
                let mut next = rx.recv().ok();
                while let Some(task) = next {
                    task();
                    queued.fetch_sub(1, Relaxed);
                    next = recv_soon(&rx).or_else(|| rx.recv().ok());
                }
            });
        match spawned {
            Ok(_) => {
                let _ = tx.send(task);
                *thread = Some(tx);
            }
            // No thread: the script runs here rather than not at all.
            Err(e) => {
                tracing::warn!("could not start the scripting thread: {e}");
                drop(thread);
                task();
                self.queued.fetch_sub(1, Relaxed);
            }
        }
    }

    /// Records the engines' counts and sizes, after anything that may
    /// change them (a load, a flush, a script run).
    pub fn note(&self, engines: &Engines) {
        let f = &self.figures;
        f.libraries.store(engines.functions.libs().len(), Relaxed);
        f.functions
            .store(engines.functions.function_count(), Relaxed);
        f.cached_scripts.store(engines.cached_scripts(), Relaxed);
        f.eval_vm.store(engines.eval_memory(), Relaxed);
        f.scripts_eval.store(engines.scripts_memory(), Relaxed);
        f.functions_vm.store(engines.functions.memory(), Relaxed);
        f.functions_memory
            .store(engines.functions.code_memory(), Relaxed);
    }

    /// [`note`](Self::note) after a run: only the heap of the state that
    /// ran can have changed (a script cannot load scripts or libraries).
    pub fn note_run(&self, engines: &Engines, function: bool) {
        let f = &self.figures;
        if function {
            f.functions_vm.store(engines.functions.memory(), Relaxed);
        } else {
            f.eval_vm.store(engines.eval_memory(), Relaxed);
        }
    }

    /// [`note`](Self::note) after a change to the libraries, which also
    /// keeps their code for [`libraries`](Self::libraries).
    pub fn libraries_changed(&self, engines: &Engines) {
        self.note(engines);
        *self.libraries.lock() = engines.functions.snapshot();
        let functions = engines
            .functions
            .libs()
            .values()
            .flat_map(|lib| lib.functions.iter())
            .map(|(name, f)| (name.to_ascii_lowercase(), f.flags))
            .collect();
        self.declared.lock().functions = functions;
    }

    /// The flags the cached EVAL script `sha` declared (lower or upper
    /// case), if it is cached.
    pub fn declared_script_flags(&self, sha: &[u8]) -> Option<Flags> {
        if sha.len() != 40 {
            return None;
        }
        let key = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.declared.lock().scripts.get(&key).copied()
    }

    /// The flags the function `name` (any case) registered with, if loaded.
    pub fn declared_function_flags(&self, name: &[u8]) -> Option<Flags> {
        let key = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.declared.lock().functions.get(&key).copied()
    }

    /// Every library's code, as of the last
    /// [`libraries_changed`](Self::libraries_changed).
    pub fn libraries(&self) -> Vec<Bytes> {
        self.libraries.lock().clone()
    }

    /// Libraries and functions loaded, as last noted.
    pub fn function_counts(&self) -> (usize, usize) {
        let f = &self.figures;
        (f.libraries.load(Relaxed), f.functions.load(Relaxed))
    }

    /// The figures as last noted.
    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    /// Takes `busy-reply-threshold`.
    pub fn configure(&self, cfg: &crate::config::Config) {
        let ms = cfg
            .value("busy-reply-threshold")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(5000);
        self.running.threshold_ms.store(ms, Relaxed);
    }

    /// The Lua states, for one script or one SCRIPT / FUNCTION command.
    pub fn engines(&self) -> MutexGuard<'_, Engines> {
        self.engines.lock()
    }

    /// The Lua states if nothing holds them, for a worker, which must
    /// never wait for a script.
    pub fn try_engines(&self) -> Option<MutexGuard<'_, Engines>> {
        self.engines.try_lock()
    }
}

/// The next task if one comes within a few microseconds: scripts sent
/// back to back (a pipeline of EVALSHA) then cost no sleep and wake-up of
/// the scripting thread each. Yields the core while it waits, which the
/// caller's worker may need to send that task.
fn recv_soon(rx: &std::sync::mpsc::Receiver<Task>) -> Option<Task> {
    const SOON: std::time::Duration = std::time::Duration::from_micros(50);
    let start = std::time::Instant::now();
    for i in 0u32.. {
        match rx.try_recv() {
            Ok(task) => return Some(task),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        if i % 16 == 15 && start.elapsed() > SOON {
            return None;
        }
        std::thread::yield_now();
    }
    None
}

/// Work for the scripting thread.
pub type Task = Box<dyn FnOnce() + Send>;

/// The chunk name of EVAL scripts (errors say `user_script:LINE:`).
const EVAL_CHUNK: &str = "@user_script";

impl Engines {
    /// Caches `body` (compiling it) unless it is there; its SHA1 and flags.
    /// The error is the reply (a compile error or a bad shebang).
    pub fn load(&mut self, body: &Bytes) -> Result<(String, Flags), String> {
        let sha = sha1_hex(body);
        if let Some(s) = self.scripts.get(&sha) {
            return Ok((sha, s.flags));
        }
        let flags = shebang_flags(body)?;
        // The shebang line stays out of the code Lua sees, but counts as
        // a line, as in Redis.
        let code: &[u8] = if body.starts_with(b"#!") {
            let end = memchr::memchr(b'\n', body).unwrap_or(body.len());
            &body[end..]
        } else {
            body
        };
        let f = self
            .eval
            .compile(EVAL_CHUNK, code)
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
        let f = self
            .eval
            .lua
            .create_registry_value(f)
            .map_err(|e| format!("ERR {e}"))?;
        self.scripts_memory += body.len() + sha.len() + SCRIPT_OVERHEAD;
        self.declared.lock().scripts.insert(sha.clone(), flags);
        self.scripts.insert(
            sha.clone(),
            Script {
                body: body.clone(),
                flags,
                f,
            },
        );
        Ok((sha, flags))
    }

    /// The cached script `sha` (lower or upper case).
    pub fn script(&self, sha: &[u8]) -> Option<(&str, &Script)> {
        if sha.len() != 40 {
            return None;
        }
        let found = match std::str::from_utf8(sha) {
            Ok(key) if !key.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.scripts.get_key_value(key)
            }
            _ => {
                let key = String::from_utf8_lossy(sha).to_ascii_lowercase();
                self.scripts.get_key_value(&key)
            }
        };
        found.map(|(k, v)| (k.as_str(), v))
    }

    /// Runs the cached script `sha` for `ctx`.
    pub fn run_eval(
        &mut self,
        sha: &[u8],
        keys: &[Bytes],
        argv: &[Bytes],
        ctx: RunCtx,
        running: &Arc<Running>,
    ) -> (Frame, RunCtx) {
        let Some((sha, s)) = self.script(sha) else {
            return (Frame::error("ERR the script is not cached"), ctx);
        };
        let call = vm::Call {
            eval: true,
            keys,
            argv,
            name: sha,
        };
        self.eval
            .run(vm::Callee::Registered(&s.f), call, ctx, running)
    }

    /// Whether the script `name` (the EVAL or EVALSHA argument, or the
    /// function's name) has only ever run quickly: a worker may run it.
    pub fn is_quick(&self, function: bool, name: &[u8]) -> bool {
        self.quick[function as usize]
            .get(name)
            .copied()
            .unwrap_or(false)
    }

    /// Notes how long a run of `name` took, and whether it was moved off a
    /// worker (see [`is_quick`](Self::is_quick)); `threshold_ms` is
    /// `busy-reply-threshold`; `known_quick`: the run's caller found it
    /// quick (a quick run then changes nothing, and costs no lookup).
    pub fn note_run(
        &mut self,
        function: bool,
        name: &[u8],
        took_ms: u64,
        moved: bool,
        threshold_ms: u64,
        known_quick: bool,
    ) {
        let quick = took_ms < quick_limit_ms(threshold_ms) && !moved;
        if quick && known_quick {
            return;
        }
        let known = &mut self.quick[function as usize];
        match known.get_mut(name) {
            Some(q) => *q &= quick,
            None => {
                if known.len() >= QUICK_ENTRIES {
                    known.clear();
                }
                // A copy: `name` may be a slice of a connection's read
                // buffer, which the entry would otherwise keep alive.
                known.insert(Bytes::copy_from_slice(name), quick);
            }
        }
    }

    /// SCRIPT FLUSH: a fresh EVAL state and an empty cache.
    pub fn flush_scripts(&mut self) {
        self.quick = Default::default();
        if let Ok(vm) = Vm::new(self.rng.clone()) {
            self.eval = vm;
        }
        self.scripts.clear();
        self.declared.lock().scripts.clear();
        self.scripts_memory = 0;
    }

    /// INFO `number_of_cached_scripts`.
    pub fn cached_scripts(&self) -> usize {
        self.scripts.len()
    }

    /// INFO `used_memory_lua` (the EVAL state's heap).
    pub fn eval_memory(&self) -> usize {
        self.eval.lua.used_memory()
    }

    /// INFO `used_memory_scripts_eval`.
    pub fn scripts_memory(&self) -> usize {
        self.scripts_memory
    }
}

/// What Redis counts per cached script beyond its body (dictionary entry,
/// the SHA key, the Lua function object).
const SCRIPT_OVERHEAD: usize = 64;

/// See [`Running::serve_while_busy`].
pub type WhileBusy = Box<dyn Fn(u64) + Send + Sync>;

/// The script running now, if any: watched by the Lua hook (busy, killed)
/// and by SCRIPT KILL / FUNCTION KILL from other clients.
pub struct Running {
    gate: Arc<Gate>,
    /// When the script started (ms since the epoch), 0 when none runs.
    since: AtomicU64,
    /// `busy-reply-threshold` in ms (0: never busy).
    pub threshold_ms: AtomicU64,
    /// Whether quick scripts may run on a worker. A script that wrote
    /// early and then loops runs to its end wherever it is (Redis cannot
    /// kill it either): with more than one worker the others answer
    /// `-BUSY` and SHUTDOWN NOSAVE meanwhile; on the only worker,
    /// [`while_busy`](Self::while_busy) does.
    pub inline_allowed: AtomicBool,
    /// With one worker: serves the other clients from the hook of a
    /// script that runs past the threshold on that worker (as Redis's
    /// `processEventsWhileBlocked`), given the caller's client id.
    while_busy: std::sync::OnceLock<WhileBusy>,
    /// The client whose script runs on a worker; 0 on the scripting
    /// thread.
    caller: AtomicU64,
    killed: AtomicBool,
    wrote: AtomicBool,
    /// The script called a command with effects others may see (a write,
    /// PUBLISH): it can no longer be run again from the start.
    effects: AtomicBool,
    /// The script runs on a worker: past this many ms without effects it
    /// is stopped ([`moved`](Self::moved)), 0 on the scripting thread.
    budget_ms: AtomicU64,
    moved: AtomicBool,
    /// 0: an EVAL script, 1: a function.
    holder: AtomicU8,
    /// The running function's name and its FCALL (FUNCTION STATS).
    pub current: Mutex<Option<(String, Vec<Bytes>)>>,
}

impl Running {
    fn new(gate: Arc<Gate>) -> Running {
        Running {
            gate,
            since: AtomicU64::new(0),
            threshold_ms: AtomicU64::new(5000),
            inline_allowed: AtomicBool::new(false),
            while_busy: std::sync::OnceLock::new(),
            caller: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            effects: AtomicBool::new(false),
            budget_ms: AtomicU64::new(0),
            moved: AtomicBool::new(false),
            holder: AtomicU8::new(0),
            current: Mutex::new(None),
        }
    }

    /// A script starts (the caller holds the gate exclusively) at
    /// `since_ms` (Unix ms, the command's start); `budget_ms`
    /// nonzero on a worker, which must not be held long: a script that
    /// runs that long without effects is stopped, and [`moved`](Self::moved)
    /// then tells the caller to run it again on the scripting thread. (One
    /// with effects runs to its end there: a quick script seldom turns
    /// slow, and it could not be run again.)
    pub fn start(&self, holder: Holder, budget_ms: u64, caller: u64, since_ms: u64) {
        self.caller.store(caller, Relaxed);
        self.killed.store(false, Relaxed);
        self.wrote.store(false, Relaxed);
        self.effects.store(false, Relaxed);
        self.moved.store(false, Relaxed);
        self.budget_ms.store(budget_ms, Relaxed);
        self.holder
            .store(matches!(holder, Holder::Function) as u8, Relaxed);
        self.since.store(since_ms.max(1), Relaxed);
    }

    /// Lets quick scripts run on the only worker, `serve` answering the
    /// other clients when one runs long (see [`while_busy`](Self::while_busy)).
    pub fn serve_while_busy(&self, serve: WhileBusy) {
        if self.while_busy.set(serve).is_ok() {
            self.inline_allowed.store(true, Relaxed);
        }
    }

    /// The script ended.
    pub fn finish(&self) {
        self.since.store(0, Relaxed);
        *self.current.lock() = None;
    }

    /// How long the script has run, in ms (0 when none runs).
    pub fn elapsed_ms(&self) -> u64 {
        match self.since.load(Relaxed) {
            0 => 0,
            since => crate::util::now_ms().saturating_sub(since),
        }
    }

    /// The script wrote: SCRIPT KILL may no longer stop it.
    pub fn note_write(&self) {
        self.wrote.store(true, Relaxed);
    }

    /// The script is about to call a command with effects (see
    /// [`start`](Self::start)).
    pub fn note_effect(&self) {
        self.effects.store(true, Relaxed);
    }

    /// The hook stopped the script (killed, or moved off a worker).
    pub fn stopped(&self) -> bool {
        self.killed.load(Relaxed) || self.moved.load(Relaxed)
    }

    /// The script was stopped on a worker to run again on the scripting
    /// thread: its commands are refused from now on, its reply dropped.
    pub fn moved(&self) -> bool {
        self.moved.load(Relaxed)
    }

    fn holder(&self) -> Holder {
        if self.holder.load(Relaxed) == 1 {
            Holder::Function
        } else {
            Holder::Eval
        }
    }

    /// The hook's check: marks the gate busy once the script is past the
    /// threshold; the error that stops the script, if it must stop (killed,
    /// or moved off a worker: see [`start`](Self::start)).
    pub fn check(&self) -> Option<&'static str> {
        let since = self.since.load(Relaxed);
        let elapsed = match since {
            0 => 0,
            since => crate::util::now_ms().saturating_sub(since),
        };
        let budget = self.budget_ms.load(Relaxed);
        if budget != 0 && elapsed >= budget && !self.effects.load(Relaxed) {
            self.moved.store(true, Relaxed);
        }
        if self.moved.load(Relaxed) {
            return Some("Script moved to the scripting thread");
        }
        let threshold = self.threshold_ms.load(Relaxed);
        if since != 0 && threshold > 0 && elapsed >= threshold {
            self.gate.set_busy(self.holder());
            let caller = self.caller.load(Relaxed);
            if caller != 0 {
                if let Some(serve) = self.while_busy.get() {
                    serve(caller);
                }
            }
        }
        self.killed
            .load(Relaxed)
            .then_some("Script killed by user with SCRIPT KILL...")
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL, as Redis's `scriptKill`.
    pub fn kill(&self, eval: bool) -> Result<(), &'static str> {
        if self.since.load(Relaxed) == 0 {
            return Err("NOTBUSY No scripts in execution right now.");
        }
        if self.wrote.load(Relaxed) {
            return Err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
        }
        match (eval, self.holder()) {
            (true, Holder::Function) => return Err(BUSY_FUNCTION),
            (false, Holder::Eval) => return Err(BUSY_EVAL),
            _ => {}
        }
        self.killed.store(true, Relaxed);
        Ok(())
    }
}

/// `-BUSY` while an EVAL script is busy.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// `-BUSY` while a function is busy.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_scripts() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1_hex(b"Pizza & Mandolino"),
            "74822d82031af7493c20eefa13bd07ec4fada82f"
        );
    }

    #[test]
    fn shebangs() {
        assert_eq!(shebang_flags(b"return 1"), Ok(Flags(Flags::EVAL_COMPAT)));
        assert_eq!(shebang_flags(b"#!lua\nreturn 1"), Ok(Flags(0)));
        assert!(shebang_flags(b"#!lua")
            .unwrap_err()
            .contains("Invalid script shebang"));
        assert_eq!(
            shebang_flags(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok(Flags(Flags::NO_WRITES | Flags::ALLOW_OOM))
        );
        assert!(shebang_flags(b"#!js\n")
            .unwrap_err()
            .contains("Unexpected engine"));
        assert!(shebang_flags(b"#!lua x=1\n")
            .unwrap_err()
            .contains("Unknown lua shebang option"));
        assert!(shebang_flags(b"#!lua flags=bad\n")
            .unwrap_err()
            .contains("Unexpected flag"));
    }
}
