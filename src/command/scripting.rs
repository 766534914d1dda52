//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: running a Lua script as
//! a client command.
//!
//! A script runs on the caller's thread, holding the keyspace gate
//! exclusively (`engine::gate`): no other client command starts until it
//! ends, and past `busy-reply-threshold` they are answered `-BUSY`. Its
//! commands run on a client of its own ([`ScriptHost`], which the Lua side
//! reaches through `scripting::Host`), bound to the caller's user and
//! database, through the same checks Redis's `scriptCall` makes and then
//! the same engine path as any command: each database joins the script's
//! unit when first used, and when the script ends the unit's effects go to
//! the AOF as one `MULTI ... EXEC`, its keyspace events are out, and the
//! clients blocked on keys it wrote are served. Inside EXEC the script
//! joins the transaction's unit instead (EXEC then locks every database).

use std::cell::RefCell;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{flags, lookup, parse_i64, reply_help, Client, Spec, ERR_NOT_INTEGER};
use crate::engine::gate::Holder;
use crate::protocol::{Frame, Protocol};
use crate::scripting::{Engines, Flags, Host, RunCtx, Running};
use crate::state::Shared;

/// What `redis.call` gets once its script was stopped on a worker to run
/// again on the scripting thread (the run's reply is dropped).
const MOVED: &[u8] = b"The script moved to the scripting thread";

/// The reply to EVALSHA of an unknown script.
const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// EVAL script numkeys [key ...] [arg ...]
pub fn eval(c: &mut Client, args: &[Bytes]) {
    eval_generic(c, args, false, false);
}

/// EVALSHA sha1 numkeys [key ...] [arg ...]
pub fn evalsha(c: &mut Client, args: &[Bytes]) {
    eval_generic(c, args, true, false);
}

/// EVAL_RO: EVAL refusing writes.
pub fn eval_ro(c: &mut Client, args: &[Bytes]) {
    eval_generic(c, args, false, true);
}

/// EVALSHA_RO: EVALSHA refusing writes.
pub fn evalsha_ro(c: &mut Client, args: &[Bytes]) {
    eval_generic(c, args, true, true);
}

/// The keys and arguments after `numkeys` (at `args[at]`), or the error.
pub fn split_keys(args: &[Bytes], at: usize) -> Result<(&[Bytes], &[Bytes]), &'static str> {
    let Some(n) = parse_i64(&args[at]) else {
        return Err(ERR_NOT_INTEGER);
    };
    if n < 0 {
        return Err("ERR Number of keys can't be negative");
    }
    let rest = &args[at + 1..];
    if n as usize > rest.len() {
        return Err("ERR Number of keys can't be greater than number of args");
    }
    Ok(rest.split_at(n as usize))
}

fn eval_generic(c: &mut Client, args: &[Bytes], by_sha: bool, read_only: bool) {
    let nkeys = match split_keys(args, 2) {
        Ok((keys, _)) => keys.len(),
        Err(e) => return c.error(e),
    };
    let job = Job {
        args: std::borrow::Cow::Borrowed(args),
        nkeys,
        holder: Holder::Eval,
        flags: Flags(0),
        read_only,
    };
    run_script(
        c,
        job,
        if by_sha {
            prepare_evalsha
        } else {
            prepare_eval
        },
    );
}

/// EVAL's [`Prepare`]: the script cached (compiled) if new.
fn prepare_eval(
    shared: &Shared,
    engines: &mut Engines,
    job: &Job,
) -> Result<(Flags, Body), String> {
    let (sha, flags) = engines.load(&job.args[1])?;
    shared.scripting.note(engines);
    Ok((flags, eval_body(sha)))
}

/// EVALSHA's [`Prepare`]: the cached script, or NOSCRIPT.
fn prepare_evalsha(_: &Shared, engines: &mut Engines, job: &Job) -> Result<(Flags, Body), String> {
    match engines.script(&job.args[1]) {
        // The script is found again by the same argument: the body holds
        // nothing (a box of nothing allocates nothing).
        Some((_, s)) => Ok((
            s.flags,
            Box::new(|engines, name, keys, argv, ctx, running| {
                engines.run_eval(name, keys, argv, ctx, running)
            }),
        )),
        None => Err(NOSCRIPT.to_string()),
    }
}

fn eval_body(sha: String) -> Body {
    Box::new(move |engines, _, keys, argv, ctx, running| {
        engines.run_eval(sha.as_bytes(), keys, argv, ctx, running)
    })
}

/// The checks Redis's `scriptPrepareForRun` makes before a script starts,
/// in its order, for a script that may write (declared flags): refused
/// while the AOF cannot be written, by the `*_RO` commands (`read_only`),
/// while `min-replicas-to-write` is not met, and over `maxmemory` unless it
/// allows OOM. A script without a shebang declares nothing and is checked
/// command by command instead.
fn refuse_before_run(shared: &Shared, flags: Flags, read_only: bool) -> Option<String> {
    if flags.has(Flags::EVAL_COMPAT) || flags.has(Flags::NO_WRITES) {
        return None;
    }
    if let Some(err) = shared.engine.aof.write_error() {
        return Some(format!(
            "MISCONF Redis is configured to persist data to AOF, but it's currently unable to \
             persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only \
             scripts. AOF error: {err}"
        ));
    }
    if read_only {
        return Some("ERR Can not execute a script with write flag using *_ro command.".into());
    }
    if shared.replicas_short() {
        return Some(super::ERR_NOREPLICAS.to_string());
    }
    if !flags.has(Flags::ALLOW_OOM) && over_maxmemory(shared) {
        return Some(
            "OOM allow-oom flag is not set on the script, can not run it when used memory > \
             'maxmemory'"
                .into(),
        );
    }
    if shared.replicas_short() {
        return Some(super::ERR_NOREPLICAS.to_string());
    }
    None
}

fn over_maxmemory(shared: &Shared) -> bool {
    let engine = &shared.engine;
    engine.store.evictor.settings.maxmemory.load(Relaxed) != 0
        && !engine.evict(shared.clients_memory())
}

/// What a script needs to run, owned, so that it can move to the
/// scripting thread.
pub struct Job<'a> {
    /// The command (EVAL / FCALL ...); keys start at `args[3]`. Borrowed
    /// from the request for a run right here, copied out of the read
    /// buffer for the scripting thread.
    pub args: std::borrow::Cow<'a, [Bytes]>,
    pub nkeys: usize,
    pub holder: Holder,
    pub flags: Flags,
    /// Called as EVAL_RO, EVALSHA_RO or FCALL_RO.
    pub read_only: bool,
}

impl Job<'_> {
    /// The job with its arguments copied out of the read buffer.
    fn into_owned(self) -> Job<'static> {
        Job {
            args: std::borrow::Cow::Owned(self.args.iter().map(|a| crate::store::own(a)).collect()),
            nkeys: self.nkeys,
            holder: self.holder,
            flags: self.flags,
            read_only: self.read_only,
        }
    }

    fn keys(&self) -> &[Bytes] {
        &self.args[3..3 + self.nkeys]
    }

    fn argv(&self) -> &[Bytes] {
        &self.args[3 + self.nkeys..]
    }
}

/// Runs the Lua side of a script: `(engines, name, keys, argv, ctx,
/// running)`, `name` the script command's first argument.
pub type Body = Box<
    dyn FnOnce(&mut Engines, &[u8], &[Bytes], &[Bytes], RunCtx, &Arc<Running>) -> (Frame, RunCtx)
        + Send,
>;

/// Finds what a script command runs (the cached script, the function) in
/// the engines: its flags and its [`Body`], or the error reply (NOSCRIPT,
/// a compile error, a write script called with a `*_RO` command).
pub type Prepare = fn(&Shared, &mut Engines, &Job) -> Result<(Flags, Body), String>;

/// Runs a script for `c` (the caller) with the keyspace to itself.
///
/// A script known to be quick (every run so far took less than
/// `scripting::quick_limit_ms`, a quarter of `busy-reply-threshold`) runs
/// right here on the worker when nothing else holds the keyspace gate or
/// the engines: no thread hop, which costs more than a small script. The
/// worker then does nothing else meanwhile, as Redis's event loop does
/// not while its script runs short of the threshold (so this is only done
/// while the threshold is not tiny). It runs with a budget: past
/// `scripting::INLINE_BUDGET_MS` without effects, it is stopped and goes
/// to the scripting thread (see `Running::start`).
///
/// Otherwise it runs on the scripting thread, which does it all: finds
/// the script ([`Prepare`]), makes Redis's checks before a run, takes the
/// gate (waiting there, not on a worker, for the batches in progress and
/// for no one else: scripts queue on that thread, so a script arriving
/// while another runs neither waits on a worker nor is postponed to be
/// woken with every other client when it ends), runs it, and hands the
/// reply back. The caller waits for it a few microseconds, then, if it is
/// not there yet, suspends until it is (the worker goes on with other
/// clients, which the gate postpones or answers `-BUSY`). Nothing here
/// waits for the engines on a worker: a running script holds them. Inside
/// EXEC (whose unit holds every database) and for the server's own
/// client, it runs right here.
pub fn run_script(c: &mut Client, mut job: Job, prepare: Prepare) {
    let nested = c.tx.in_exec || c.handle.id == super::INTERNAL_ID;
    if !nested {
        // The batch's shared hold goes first, or the script would wait for
        // its own caller.
        c.gate = None;
        if let Some(done) = run_inline(c, &mut job, prepare) {
            c.clock_at_end = done.ended;
            return done.deliver(c);
        }
    }
    let shared = c.shared.clone();
    if nested {
        let prepared = prepare(&shared, &mut shared.scripting.engines(), &job);
        let body = match checked(&shared, job.read_only, prepared) {
            Ok((flags, body)) => {
                job.flags = flags;
                body
            }
            Err(e) => return c.error(e),
        };
        let mut locks = std::mem::take(&mut c.tx.locks);
        let tracking = super::tracking::for_script(c);
        let (done, _, _) = execute(
            &shared,
            &mut shared.scripting.engines(),
            Run {
                user: c.user.clone(),
                db: c.db,
                locks: Some(&mut locks),
                budget_ms: 0,
                caller: c.handle.id,
                started: Run::started_by(c),
            },
            &job,
            body,
            tracking,
        );
        c.tx.locks = locks;
        if c.tx.in_exec {
            // EXEC times each of its commands as they end.
            c.clock_at_end = done.ended;
        }
        return done.deliver(c);
    }
    let mut job = job.into_owned();
    let done = Arc::new(Outcome::default());
    let (user, db) = (c.user.clone(), c.db);
    let tracking = super::tracking::for_script(c);
    let (task_shared, task_done) = (shared.clone(), done.clone());
    shared.scripting.submit(Box::new(move || {
        let shared = task_shared;
        let prepared = prepare(&shared, &mut shared.scripting.engines(), &job);
        let done = match checked(&shared, job.read_only, prepared) {
            Ok((flags, body)) => {
                job.flags = flags;
                let exclusive = shared.engine.gate.exclusive_wait();
                let run = Run {
                    user,
                    db,
                    locks: None,
                    budget_ms: 0,
                    caller: 0,
                    started: (Instant::now(), crate::util::now_ms()),
                };
                let mut engines = shared.scripting.engines();
                let (done, _, _) = execute(&shared, &mut engines, run, &job, body, tracking);
                drop(engines);
                drop(exclusive);
                done
            }
            Err(e) => ScriptReply {
                frame: Frame::Error(e.into()),
                durable_at: 0,
                counted: false,
                tracked: Vec::new(),
                ended: None,
            },
        };
        task_done.set(done);
        shared.scripting.wake(task_done.notify.clone());
    }));
    // Alone in the queue, the script starts at once and most end within
    // the wait; behind others, the worker has better to do.
    let waited = match shared.scripting.queued() {
        1 => done.wait_briefly(),
        _ => None,
    };
    match waited {
        Some(done) => done.deliver(c),
        None => c.script = Some(done),
    }
}

/// Runs `job` on this worker if it is a quick script and the gate and the
/// engines are free (see [`run_script`]): its reply, or `None` to run it
/// on the scripting thread (not quick, something else holds the gate or
/// the engines, or it ran past its budget and was stopped).
fn run_inline(c: &mut Client, job: &mut Job, prepare: Prepare) -> Option<ScriptReply> {
    // Borrowed, not cloned: a quick script's run is short enough for the
    // atomic operations of an `Arc` clone to show.
    let shared = &c.shared;
    let running = &shared.scripting.running;
    if !running.inline_allowed.load(Relaxed) {
        return None;
    }
    let threshold = running.threshold_ms.load(Relaxed);
    if threshold != 0 && threshold < crate::scripting::INLINE_THRESHOLD_MS {
        return None;
    }
    let exclusive = shared.engine.gate.try_exclusive()?;
    let mut engines = shared.scripting.try_engines()?;
    if !engines.is_quick(job.holder == Holder::Function, &job.args[1]) {
        return None;
    }
    let prepared = prepare(shared, &mut engines, job);
    let body = match checked(shared, job.read_only, prepared) {
        Ok((flags, body)) => {
            job.flags = flags;
            body
        }
        Err(e) => {
            return Some(ScriptReply {
                frame: Frame::Error(e.into()),
                durable_at: 0,
                counted: false,
                tracked: Vec::new(),
                ended: None,
            })
        }
    };
    let tracking = super::tracking::for_script(c);
    let started = Run::started_by(c);
    // Lent to the script's client and given back.
    let user = c.user.take();
    let run = Run {
        user,
        db: c.db,
        locks: None,
        budget_ms: crate::scripting::INLINE_BUDGET_MS,
        caller: c.handle.id,
        started,
    };
    let (done, moved, user) = execute(&c.shared, &mut engines, run, job, body, tracking);
    drop(engines);
    drop(exclusive);
    c.user = user;
    c.pressure.heavy = c.pressure.heavy.saturating_add(1);
    (!moved).then_some(done)
}

/// A prepared script, or the error Redis's checks before a run give.
/// A script without a shebang may still run under a `*_RO` command: it is
/// flagged `no-writes` after the checks, and its write commands are
/// refused as they come.
fn checked(
    shared: &Shared,
    read_only: bool,
    prepared: Result<(Flags, Body), String>,
) -> Result<(Flags, Body), String> {
    let (mut flags, body) = prepared?;
    if let Some(e) = refuse_before_run(shared, flags, read_only) {
        return Err(e);
    }
    if read_only {
        flags.0 |= Flags::NO_WRITES;
    }
    Ok((flags, body))
}

/// A script's reply to its caller.
pub struct ScriptReply {
    frame: Frame,
    /// The AOF offset the reply waits for.
    durable_at: u64,
    /// The reply is the error of a command the script called, counted in
    /// the error stats when that command failed.
    counted: bool,
    /// The keys the caller may now cache (the script read something; see
    /// `command::tracking`).
    tracked: Vec<Bytes>,
    /// When the run ended (none if it did not run).
    ended: Option<Instant>,
}

impl ScriptReply {
    /// Queues the reply to the caller.
    pub fn deliver(self, c: &mut Client) {
        c.durable_at = c.durable_at.max(self.durable_at);
        if !self.tracked.is_empty() {
            super::tracking::remember_keys(c, self.tracked.iter().map(|k| &k[..]));
        }
        if self.counted {
            c.reply_counted(self.frame);
        } else {
            c.reply(self.frame);
        }
    }
}

/// Where a script runs: the caller's user and database, the caller's
/// unit (EXEC) if any, and the budget of a run on a worker (0 on the
/// scripting thread; see `Running::start`).
struct Run<'a> {
    user: Option<Arc<crate::acl::User>>,
    db: usize,
    locks: Option<&'a mut crate::engine::Locks>,
    budget_ms: u64,
    /// The calling client's id when the script runs on a worker (its
    /// requests are its own task's to read, even while the script is
    /// busy), 0 on the scripting thread.
    caller: u64,
    /// When the command started, on the monotonic clock and as Unix ms:
    /// on a worker, the batch's readings (see `Client::command_time_ms`),
    /// so that a quick script costs no clock reading to start.
    started: (Instant, u64),
}

impl Run<'_> {
    /// The start of the command `c` runs, from its batch's clock readings.
    fn started_by(c: &Client) -> (Instant, u64) {
        match c.command_time_ms() {
            Some(ms) => (c.clock, ms),
            None => (Instant::now(), crate::util::now_ms()),
        }
    }
}

/// Runs `job` on a script client bound to the caller's user and database:
/// in the caller's unit (`locks`, EXEC) or in an open unit of its own,
/// ended here. Returns the reply (with the AOF offset it waits for),
/// whether the script was stopped on a worker to run again on the
/// scripting thread (its reply is then to be dropped), and the user given
/// in `run`.
fn execute(
    shared: &Arc<Shared>,
    engines: &mut Engines,
    run: Run<'_>,
    job: &Job,
    body: Body,
    tracking: super::tracking::Local,
) -> (ScriptReply, bool, Option<Arc<crate::acl::User>>) {
    let Run {
        user,
        db,
        locks,
        budget_ms,
        caller,
        started: (started, started_ms),
    } = run;
    let mut host = script_host(shared);
    host.flags = job.flags;
    host.repl = 3;
    let client = &mut host.client;
    client.tracking = tracking;
    client.user = user;
    client.db = db;
    client.protocol = Protocol::Resp2;
    // The script's commands all see the time it started (expiry, new
    // TTLs), as Redis freezes the time for a script: what a script does is
    // the same on a replica or when the AOF is loaded.
    client.clock = started;
    client.batch_time = Some((started, started_ms));
    let in_unit = locks.is_some();
    match &locks {
        Some(_) => {}
        None => shared.engine.begin_open_unit(&mut client.tx.locks),
    }
    let mut locks = locks;
    if let Some(l) = locks.as_deref_mut() {
        std::mem::swap(&mut client.tx.locks, l);
    }
    let ctx = RunCtx {
        host,
        resp3: false,
        counted: false,
    };
    let running = &shared.scripting.running;
    running.start(job.holder, budget_ms, caller, started_ms);
    let (frame, ctx) = body(engines, &job.args[1], job.keys(), job.argv(), ctx, running);
    let ended = Instant::now();
    let moved = running.moved();
    engines.note_run(
        job.holder == Holder::Function,
        &job.args[1],
        u64::try_from(ended.saturating_duration_since(started).as_millis()).unwrap_or(u64::MAX),
        moved,
        running.threshold_ms.load(Relaxed),
        // Only a script known to be quick runs with a budget (on a worker).
        budget_ms != 0,
    );
    shared
        .scripting
        .note_run(engines, job.holder == Holder::Function);
    running.finish();
    let ctx_counted = ctx.counted;
    let mut host = ctx
        .host
        .into_any()
        .downcast::<ScriptHost>()
        .unwrap_or_else(|_| unreachable!("the host is the ScriptHost made above"));
    let client = &mut host.client;
    let mut off = 0;
    if let Some(l) = locks {
        std::mem::swap(&mut client.tx.locks, l);
    } else if !in_unit {
        off = shared.engine.end_unit(&mut client.tx.locks);
    }
    client.durable_at = 0;
    client.out.clear();
    let user = client.user.take();
    client.batch_time = None;
    let tracked = match std::mem::take(&mut client.tracking) {
        t if t.script_read && !moved => job.keys().to_vec(),
        _ => Vec::new(),
    };
    return_script_host(host);
    let reply = ScriptReply {
        frame,
        durable_at: off,
        counted: ctx_counted,
        tracked,
        ended: Some(ended),
    };
    (reply, moved, user)
}

/// A script's reply, handed from the scripting thread to its caller.
#[derive(Default)]
pub struct Outcome {
    reply: parking_lot::Mutex<Option<ScriptReply>>,
    ready: std::sync::atomic::AtomicBool,
    /// Wakes the caller's connection when it suspended.
    pub notify: Arc<tokio::sync::Notify>,
}

impl Outcome {
    /// Stores the reply; the caller is woken through
    /// [`Scripting::wake`](crate::scripting::Scripting::wake).
    fn set(&self, done: ScriptReply) {
        *self.reply.lock() = Some(done);
        self.ready.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The reply and the AOF offset it waits for, once the script ended.
    pub fn take(&self) -> Option<ScriptReply> {
        if !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        self.reply.lock().take()
    }

    /// Most scripts take microseconds: waiting that long here keeps a
    /// pipeline of them in one batch; longer ones suspend the caller.
    fn wait_briefly(&self) -> Option<ScriptReply> {
        const SPIN: std::time::Duration = std::time::Duration::from_micros(50);
        let start = std::time::Instant::now();
        for i in 0u32.. {
            if let Some(r) = self.take() {
                return Some(r);
            }
            // The clock is read now and then: it costs more than a check.
            if i % 64 == 63 && start.elapsed() > SPIN {
                return None;
            }
            std::hint::spin_loop();
        }
        None
    }
}

thread_local! {
    /// Each worker thread keeps one script client, reused by every script
    /// it runs (one runs at a time), boxed: a `Client` is large, and the
    /// script's context holds its host as a box.
    static SCRIPT_HOST: RefCell<Option<Box<ScriptHost>>> = const { RefCell::new(None) };
}

fn script_host(shared: &Arc<Shared>) -> Box<ScriptHost> {
    let reuse = SCRIPT_HOST.with(|s| s.borrow_mut().take());
    match reuse {
        Some(h) if Arc::ptr_eq(&h.client.shared, shared) => h,
        _ => {
            let mut client = Client::internal(shared.clone());
            client.in_script = true;
            client.tx.in_exec = true;
            Box::new(ScriptHost {
                client,
                flags: Flags(0),
                repl: 3,
            })
        }
    }
}

fn return_script_host(h: Box<ScriptHost>) {
    SCRIPT_HOST.with(|s| *s.borrow_mut() = Some(h));
}

/// The client a script's commands run on (see the module header).
pub struct ScriptHost {
    client: Client,
    flags: Flags,
    /// `redis.set_repl` bits: 1 AOF, 2 replicas.
    repl: u8,
}

impl ScriptHost {
    /// Redis's `scriptCall`: the checks a script's command passes (the
    /// refusal's text, `-CODE ...` or a bare message), then the command.
    fn checked_call(&mut self, args: &[Bytes]) -> Result<Frame, Vec<u8>> {
        let c = &mut self.client;
        if c.shared.scripting.running.moved() {
            return Err(MOVED.to_vec());
        }
        let Some((spec, parent)) = lookup_parent(c, args) else {
            return Err(b"Unknown Redis command called from script".to_vec());
        };
        let refused = |c: &Client, text: &[u8]| {
            super::observe::count_rejected(c, spec);
            Err(text.to_vec())
        };
        // The name goes to `current_cmd` in the end: made in its buffer.
        let mut fullname = std::mem::take(&mut c.current_cmd);
        fullname.clear();
        if let Some(parent) = parent {
            fullname.push_str(parent.name);
            fullname.push('|');
        }
        fullname.push_str(spec.name);
        let argc = args.len() as i32;
        if (spec.arity > 0 && spec.arity != argc) || argc < -spec.arity {
            return refused(c, b"Wrong number of args calling Redis command from script");
        }
        let bits = flags::of(spec);
        if bits & flags::NOSCRIPT != 0 {
            return refused(c, b"This Redis command is not allowed from script");
        }
        if let Some(err) = super::auth::check_command(c, &fullname, args) {
            return refused(c, acl_error(&err).as_bytes());
        }
        // As Redis's scriptVerifyWriteCommandAllow: a read-only script may
        // not even publish; the checks that guard data are for writes.
        if bits & (flags::WRITE | flags::MAY_REPLICATE) != 0 && self.flags.has(Flags::NO_WRITES) {
            return refused(c, b"Write commands are not allowed from read-only scripts.");
        }
        if bits & flags::WRITE != 0 {
            if let Some(err) = c.shared.engine.aof.write_error() {
                return refused(
                    c,
                    format!("-MISCONF Errors writing to the AOF file: {err}").as_bytes(),
                );
            }
            if c.shared.replicas_short() {
                return refused(c, format!("-{}", super::ERR_NOREPLICAS).as_bytes());
            }
            c.shared.scripting.running.note_write();
        }
        if bits & flags::WRITE != 0 {
            c.shared.scripting.running.note_effect();
        }
        if bits & flags::DENYOOM != 0
            && !self.flags.has(Flags::ALLOW_OOM)
            && over_maxmemory(&c.shared)
        {
            return refused(c, format!("-{}", super::ERR_OOM).as_bytes());
        }
        c.shared
            .stats
            .total_commands_processed
            .fetch_add(1, Relaxed);
        c.current_cmd = fullname;
        let effects = c.tx.locks.effects_len();
        c.failed = false;
        if c.shared.observe.monitors.active() && bits & flags::NO_MONITOR == 0 {
            super::observe::feed_monitors(c, spec, args, &"lua");
        }
        let start = std::time::Instant::now();
        super::run_spec(c, spec, args);
        super::observe::count_call(c, spec, start.elapsed());
        if self.repl & 1 == 0 {
            c.tx.locks.truncate_effects(effects);
        }
        let frame = match quick_reply(&c.out) {
            Some(frame) => frame,
            // Copied out (one allocation of its size) rather than split
            // off: the buffer keeps its room for the next command's reply.
            None => crate::protocol::reply::parse(&Bytes::copy_from_slice(&c.out))
                .unwrap_or_else(|| Frame::error("ERR the command's reply could not be read")),
        };
        c.out.clear();
        Ok(frame)
    }
}

/// The commonest replies read without a copy of the reply buffer: an
/// integer, `+OK`, a null.
fn quick_reply(out: &[u8]) -> Option<Frame> {
    match out {
        b"+OK\r\n" => Some(Frame::Simple(Bytes::from_static(b"OK"))),
        b"$-1\r\n" => Some(Frame::Null),
        [b':', rest @ .., b'\r', b'\n'] => parse_i64(rest).map(Frame::Integer),
        _ => None,
    }
}

impl Host for ScriptHost {
    fn call(&mut self, args: &[Bytes]) -> Result<Frame, Vec<u8>> {
        let called = self.checked_call(args);
        let moved = self.client.shared.scripting.running.moved();
        if let (Err(text), false) = (&called, moved) {
            // Refused before it ran: counted as Redis's scriptCall does.
            self.client.shared.stats.count_error_text(text);
        }
        called
    }

    fn acl_check(&mut self, args: &[Bytes]) -> Option<bool> {
        let c = &self.client;
        let spec = lookup(c, args)?;
        let fullname = super::full_name(c, spec, args);
        Some(match &c.user {
            None => true,
            Some(u) => crate::acl::check::verdict(u, &fullname, args).is_none(),
        })
    }

    fn set_resp(&mut self, resp3: bool) {
        self.client.protocol = if resp3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
    }

    fn set_repl(&mut self, flags: u8) {
        self.repl = flags;
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// The command `args` call, and its parent if it is a subcommand (as
/// `command::lookup` finds it).
fn lookup_parent(c: &Client, args: &[Bytes]) -> Option<(&'static Spec, Option<&'static Spec>)> {
    let top = super::find_top(c, args.first()?)?;
    if !top.subcommands.is_empty() && args.len() >= 2 {
        return Some((super::find(top.subcommands, &args[1])?, Some(top)));
    }
    Some((top, None))
}

/// Redis's texts for a denial inside a script (`scriptVerifyACL`).
fn acl_error(noperm: &str) -> &'static str {
    if noperm.contains("keys") {
        "The user executing the script can't access at least one of the keys mentioned in the command arguments"
    } else if noperm.contains("channels") {
        "The user executing the script can't publish to the channel mentioned in the command"
    } else {
        "The user executing the script can't run this command or subcommand"
    }
}

/// SCRIPT LOAD script
pub fn script_load(c: &mut Client, args: &[Bytes]) {
    let shared = c.shared.clone();
    let mut engines = shared.scripting.engines();
    let loaded = engines.load(&args[2]);
    shared.scripting.note(&engines);
    drop(engines);
    match loaded {
        Ok((sha, _)) => c.reply(Frame::bulk(sha)),
        Err(e) => c.error(e),
    }
}

/// SCRIPT EXISTS sha1 [sha1 ...]
pub fn script_exists(c: &mut Client, args: &[Bytes]) {
    let shared = c.shared.clone();
    let engines = shared.scripting.engines();
    let found = args[2..]
        .iter()
        .map(|sha| Frame::Integer(engines.script(sha).is_some() as i64))
        .collect();
    drop(engines);
    c.reply(Frame::Array(found));
}

/// SCRIPT FLUSH [ASYNC|SYNC]
pub fn script_flush(c: &mut Client, args: &[Bytes]) {
    if args.len() > 3
        || (args.len() == 3
            && !args[2].eq_ignore_ascii_case(b"sync")
            && !args[2].eq_ignore_ascii_case(b"async"))
    {
        return c.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    let mut engines = c.shared.scripting.engines();
    engines.flush_scripts();
    c.shared.scripting.note(&engines);
    drop(engines);
    c.reply(Frame::ok());
}

/// SCRIPT KILL
pub fn script_kill(c: &mut Client, _args: &[Bytes]) {
    match c.shared.scripting.running.kill(true) {
        Ok(()) => c.reply(Frame::ok()),
        Err(e) => c.error(e),
    }
}

/// SCRIPT DEBUG YES|SYNC|NO: the Lua debugger is not available; NO is
/// accepted, as it changes nothing.
pub fn script_debug(c: &mut Client, args: &[Bytes]) {
    if args[2].eq_ignore_ascii_case(b"no") {
        return c.reply(Frame::ok());
    }
    if args[2].eq_ignore_ascii_case(b"yes") || args[2].eq_ignore_ascii_case(b"sync") {
        return c.error("ERR SCRIPT DEBUG is not supported by this server");
    }
    c.error("ERR Use SCRIPT DEBUG YES/SYNC/NO");
}

/// SCRIPT HELP
pub fn script_help(c: &mut Client, _args: &[Bytes]) {
    reply_help(
        c,
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
}

/// SCRIPT's subcommands.
pub static SCRIPT_SUBCOMMANDS: &[Spec] = &[
    super::cmd("debug", 3, script_debug),
    super::cmd("exists", -3, script_exists),
    super::cmd("flush", -2, script_flush),
    super::cmd("help", 2, script_help),
    super::cmd("kill", 2, script_kill),
    super::cmd("load", 3, script_load),
];

/// Whether CLIENT PAUSE WRITE holds back the script command `args`
/// (EVAL, FCALL and their forms), as Redis's `evalGetCommandFlags` and
/// `fcallGetCommandFlags` decide: by the flags the script declared (its
/// shebang, the function's registration), writing unless `no-writes`;
/// with none declared (no shebang, a script or function not loaded), by
/// the command's own flags: EVAL, EVALSHA and FCALL may replicate, the
/// `_RO` forms do not. Read without the Lua engines, which a running
/// script holds.
pub fn held_by_write_pause(c: &Client, name: &str, args: &[Bytes]) -> bool {
    let may_replicate = matches!(name, "eval" | "evalsha" | "fcall");
    let Some(script) = args.get(1) else {
        return may_replicate;
    };
    let scripting = &c.shared.scripting;
    let declared = match name {
        "eval" | "eval_ro" => crate::scripting::shebang_flags(script).ok(),
        "evalsha" | "evalsha_ro" => scripting.declared_script_flags(script),
        _ => scripting.declared_function_flags(script),
    };
    match declared {
        Some(f) if !f.has(Flags::EVAL_COMPAT) => !f.has(Flags::NO_WRITES),
        _ => may_replicate,
    }
}
