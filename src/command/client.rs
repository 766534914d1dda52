//! A client as the command layer sees it: the state only its own
//! connection task touches (protocol, database, subscriptions, reply mode,
//! transaction, blocking), handed to every command handler, and the
//! [`Session`] the connection loop drives.
//!
//! The connection loop (`net::connection`) owns the socket; this owns what
//! requests mean. A [`Client`] without a connection ([`Client::internal`])
//! runs commands for the server itself (replaying the append-only file)
//! through exactly the same path.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use indexmap::IndexSet;

use crate::net::handle::ClientHandle;
use crate::net::limits::ClientClass;
use crate::net::{Pressure, Session};
use crate::protocol::{Frame, Protocol};
use crate::pubsub::SubscriptionKind as Kind;
use crate::state::Shared;
use crate::util::key::Key;

/// CLIENT REPLY mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Replies are sent (default).
    On,
    /// No replies until CLIENT REPLY ON.
    Off,
    /// The next command's reply is dropped.
    Skip,
    /// Set by CLIENT REPLY SKIP: skip the command after this one.
    SkipNext,
}

/// A client's subscriptions of each kind, in subscription order (the
/// order UNSUBSCRIBE with no argument leaves them in).
#[derive(Default)]
pub struct Subscriptions {
    /// Classic channels (compact keys: a subscriber of many channels
    /// pays no allocation per short name).
    pub channels: IndexSet<Key, ahash::RandomState>,
    /// Patterns.
    pub patterns: IndexSet<Key, ahash::RandomState>,
    /// Shard channels.
    pub shard_channels: IndexSet<Key, ahash::RandomState>,
}

impl Subscriptions {
    /// The set of subscriptions of `kind`.
    pub fn of(&mut self, kind: Kind) -> &mut IndexSet<Key, ahash::RandomState> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// The count a (un)subscribe confirmation of `kind` shows, as
    /// redis-server 7.0: classic channels and patterns count together;
    /// shard channels count alone.
    pub fn confirmed_count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard_channels.len(),
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
        }
    }
}

/// Per-connection state owned by the connection task and given to command
/// handlers.
pub struct Client {
    /// Server-wide state.
    pub shared: Arc<Shared>,
    /// This client's shared half (outbox, CLIENT LIST details).
    pub handle: Arc<ClientHandle>,
    /// RESP2 or RESP3, set by HELLO.
    pub protocol: Protocol,
    /// Selected database (SELECT).
    pub db: usize,
    /// What the client is subscribed to (the registries hold the other
    /// direction).
    pub subs: Subscriptions,
    /// CLIENT REPLY state.
    pub reply_mode: ReplyMode,
    /// Replies of the current batch, not yet queued.
    pub out: BytesMut,
    /// Set by QUIT or a protocol error: close once the replies are written.
    pub close_after_reply: bool,
    /// Name of the command being run, for CLIENT LIST `cmd=`.
    pub current_cmd: String,
    /// What this batch's publishes found in their subscribers' queues
    /// (publisher back-pressure, see `net::pressure`).
    pub pressure: Pressure,
    /// MULTI queue, WATCHed keys and the database locks EXEC holds (see
    /// `command::transactions`).
    pub tx: super::transactions::TxState,
    /// Set while the client is blocked in BLPOP & co.: the connection loop
    /// then waits for it to be served or to time out (see
    /// `command::blocking`) and runs no further command meanwhile.
    pub blocked: Option<super::blocking::Blocked>,
    /// The AOF offset the effects of this batch's writes end at (0:
    /// nothing to wait for). The replies queued in the outbox may leave
    /// only once the log is written up to it (fsynced too under
    /// `appendfsync always`; see `persist::aof`).
    pub durable_at: u64,
    /// In MONITOR mode (see `observe::monitor`).
    pub monitor: bool,
    /// A command held back by CLIENT PAUSE: the connection loop waits for
    /// the pause to end, runs it, then the rest of the pipeline.
    pub postponed: Option<Vec<Bytes>>,
    /// The command the client ran last, by the name it typed (see
    /// `command::LastCommand`).
    pub last_command: super::LastCommand,
    /// When the previous command ended, or the batch began: a command's
    /// duration is the time since (see `command::observe`).
    pub clock: std::time::Instant,
    /// A reading the running command took as it ended (a script's end):
    /// `command::observe` uses it instead of reading the clock again.
    pub clock_at_end: Option<std::time::Instant>,
    /// While a read batch runs: the wall clock (Unix ms) read at its start,
    /// with the instant it was read. The time a command of the batch sees
    /// (expiry, new TTLs) is derived from [`clock`](Self::clock), so that a
    /// command costs one clock reading (its end), not two.
    pub batch_time: Option<(std::time::Instant, u64)>,
    /// The running command replied with an error (INFO commandstats'
    /// `failed_calls`; cleared after each command is counted).
    pub failed: bool,
    /// The ACL user this connection runs as; `None` for the server's own
    /// client (AOF replay), which may run anything (see `acl`).
    pub user: Option<Arc<crate::acl::User>>,
    /// Authenticated (AUTH / HELLO AUTH, or the default user is `nopass`
    /// and `on`): until then only `no-auth` commands run when a password
    /// is required.
    pub authenticated: bool,
    /// The batch's hold on the keyspace gate, taken by its first command
    /// and let go when the batch ends (see `engine::gate`).
    pub gate: Option<crate::engine::gate::Entry>,
    /// This is a script's client (see `command::scripting`).
    pub in_script: bool,
    /// A script of this client's runs on the scripting thread: the
    /// connection waits for its reply and runs no further command.
    pub script: Option<Arc<super::scripting::Outcome>>,
    /// The script command whose reply `script` waits for: it is counted
    /// (and judged slow or not) when the reply comes.
    pub script_call: Option<super::observe::ScriptCall>,
    /// Client-side caching: CLIENT TRACKING's mode, CLIENT CACHING (see
    /// `command::tracking`).
    pub tracking: super::tracking::Local,
    /// The read buffer's length and capacity when the running batch
    /// began: what CLIENT LIST / INFO show as this client's own `qbuf`
    /// and `qbuf-free`.
    pub batch_qbuf: (usize, usize),
    /// The running command's argument bytes (CLIENT LIST's `argv-mem`
    /// for this client, Redis's `argv_len_sum`).
    pub argv_mem: usize,
    /// `REPLCONF listening-port` / `ip-address` / `capa psync2`, kept for
    /// the PSYNC that follows.
    pub repl_port: u16,
    pub repl_ip: Option<String>,
    pub repl_psync2: bool,
    /// `REPLCONF capa eof`: this replica reads a diskless RDB.
    pub repl_capa_eof: bool,
    /// This connection is a replica of the server (after SYNC / PSYNC):
    /// its outbox carries the replication stream.
    pub replica: Option<Arc<crate::repl::Replica>>,
    /// A WAIT in progress (see `command::replication`).
    pub waiting: Option<super::replication::Waiting>,
    /// This client applies the primary's stream on a replica: its writes
    /// pass `replica-read-only`.
    pub is_master: bool,
}

impl Client {
    /// A client with no connection, for the server's own use (replaying
    /// the append-only file at start-up): commands run through the normal
    /// path and its replies are discarded by the caller.
    pub fn internal(shared: Arc<Shared>) -> Client {
        let any = crate::net::ClientAddr::Tcp(([0, 0, 0, 0], 0).into());
        let limits = shared.limits.clone();
        let handle = Arc::new(ClientHandle::new(u64::MAX, any.clone(), any, -1, limits));
        let mut c = Client::new(shared, handle);
        c.user = None;
        c.authenticated = true;
        c
    }

    /// A fresh client: RESP2, database 0, no subscriptions, replies on.
    pub fn new(shared: Arc<Shared>, handle: Arc<ClientHandle>) -> Client {
        let mut c = Client {
            shared,
            handle,
            protocol: Protocol::Resp2,
            db: 0,
            subs: Subscriptions::default(),
            reply_mode: ReplyMode::On,
            out: BytesMut::new(),
            close_after_reply: false,
            current_cmd: String::new(),
            pressure: Pressure::default(),
            tx: Default::default(),
            blocked: None,
            durable_at: 0,
            monitor: false,
            postponed: None,
            last_command: Default::default(),
            clock: std::time::Instant::now(),
            clock_at_end: None,
            batch_time: None,
            failed: false,
            user: None,
            authenticated: true,
            gate: None,
            in_script: false,
            script: None,
            script_call: None,
            tracking: Default::default(),
            batch_qbuf: (0, 0),
            argv_mem: 0,
            repl_port: 0,
            repl_ip: None,
            repl_psync2: false,
            repl_capa_eof: false,
            replica: None,
            waiting: None,
            is_master: false,
        };
        crate::command::auth::set_default_auth(&mut c);
        c
    }

    /// The wall-clock time (Unix ms) at which the running command started,
    /// derived from the batch's one reading (see
    /// [`batch_time`](Self::batch_time)); None outside a read batch (the
    /// AOF loader, a script's client), where the caller reads the clock.
    #[inline]
    pub fn command_time_ms(&self) -> Option<u64> {
        self.batch_time.map(|(at, ms)| {
            ms + u64::try_from(self.clock.saturating_duration_since(at).as_millis()).unwrap_or(0)
        })
    }

    /// Total subscriptions, the count shown in (un)subscribe confirmations.
    pub fn subscription_count(&self) -> usize {
        self.subs.channels.len() + self.subs.patterns.len() + self.subs.shard_channels.len()
    }

    /// True in the RESP2 subscribed context, where only pub/sub commands run.
    pub fn in_resp2_pubsub(&self) -> bool {
        self.protocol == Protocol::Resp2 && self.subscription_count() > 0
    }

    /// Queues a reply, honouring CLIENT REPLY OFF / SKIP.
    pub fn reply(&mut self, frame: Frame) {
        if let Frame::Error(msg) = &frame {
            self.shared.stats.count_error(msg);
            if self.is_master || self.replica.is_some() {
                self.error_on_replication_link(msg);
            }
        }
        self.reply_counted(frame);
    }

    /// Redis's `afterErrorReply` on a replication link: an error for the
    /// primary's stream (or for a replica) means the data sets diverged.
    /// Logged and counted (`unexpected_error_replies`); on a read-only
    /// replica with `propagation-error-behavior panic` or
    /// `panic-on-replicas`, fatal, as the user asked.
    fn error_on_replication_link(&self, msg: &[u8]) {
        let msg = String::from_utf8_lossy(msg);
        let (from, to) = if self.is_master {
            ("replica", "master")
        } else {
            ("master", "replica")
        };
        let cmd = if self.current_cmd.is_empty() {
            "<unknown>"
        } else {
            self.current_cmd.as_str()
        };
        tracing::warn!(
            "== CRITICAL == This {from} is sending an error to its {to}: '{msg}' after processing the command '{cmd}'"
        );
        self.shared
            .stats
            .unexpected_error_replies
            .fetch_add(1, Relaxed);
        if !self.is_master {
            return;
        }
        let cfg = self.shared.config.read();
        let read_only = cfg.value("replica-read-only").as_deref() != Some("no");
        let behavior = cfg.value("propagation-error-behavior").unwrap_or_default();
        if read_only && (behavior == "panic" || behavior == "panic-on-replicas") {
            tracing::error!(
                "This {from} panicked sending an error to its {to} after processing the command '{cmd}'"
            );
            std::process::abort();
        }
    }

    /// [`reply`](Self::reply) of a reply whose error, if it is one, was
    /// counted already (a script returning the error of a command it
    /// called, as Redis's `ignore_error_stats_update`).
    pub fn reply_counted(&mut self, frame: Frame) {
        if matches!(frame, Frame::Error(_)) {
            self.failed = true;
        }
        if self.reply_mode == ReplyMode::On && !self.handle.overflowed() {
            frame.encode(self.protocol, &mut self.out);
            self.within_output_limit();
        }
    }

    /// The hard `client-output-buffer-limit` of the client's class, None
    /// when there is none: no limit set, or a script's or the server's own
    /// client, whose replies never reach a socket (Redis spares its fake
    /// clients too).
    fn hard_output_limit(&self) -> Option<u64> {
        if self.in_script || self.handle.id == super::INTERNAL_ID {
            return None;
        }
        let hard = self.handle.limits().hard(self.handle.class());
        (hard != 0).then_some(hard)
    }

    /// The client's output as the limit counts it: queued bytes plus this
    /// batch's replies.
    fn output_bytes(&self) -> u64 {
        (self.handle.pending_bytes() + self.out.len()) as u64
    }

    /// Bytes this batch's replies may still grow by before the client's
    /// output passes its hard limit (usize::MAX when unlimited): a command
    /// that builds a reply of unknown length apart stops at it.
    pub fn reply_room(&self) -> usize {
        match self.hard_output_limit() {
            None => usize::MAX,
            Some(hard) => {
                usize::try_from(hard.saturating_sub(self.output_bytes())).unwrap_or(usize::MAX)
            }
        }
    }

    /// Checks the replies built so far against the hard output limit, as
    /// Redis does on every reply it adds: over it, the client is closed
    /// ASAP ([`overflow`](Self::overflow)). False once the client is
    /// closing: a command producing a long reply stops producing it.
    #[inline]
    pub fn within_output_limit(&mut self) -> bool {
        if self.handle.overflowed() {
            return false;
        }
        match self.hard_output_limit() {
            Some(hard) if self.output_bytes() > hard => {
                self.overflow();
                false
            }
            _ => true,
        }
    }

    /// Closes the client for going over its output limit: the replies
    /// built so far are freed and later ones dropped; the command running
    /// goes on (a transaction runs to its end, as in Redis) but the
    /// connection runs no further request and closes.
    pub fn overflow(&mut self) {
        self.out = BytesMut::new();
        self.handle.overflow();
    }

    /// Opens an array reply of exactly `n` items that the caller encodes
    /// one by one with [`reply_item`](Self::reply_item), so that a reply
    /// of many items (HRANDFIELD with a large negative count) is never
    /// held but as encoded bytes, and is cut at the output limit as Redis
    /// cuts it.
    pub fn reply_array_header(&mut self, n: usize) {
        if self.reply_mode == ReplyMode::On && !self.handle.overflowed() {
            crate::protocol::frame::put_int_line(&mut self.out, b'*', n as i64);
        }
    }

    /// Encodes the next item of an array opened with
    /// [`reply_array_header`](Self::reply_array_header). False once the
    /// client went over its output limit: the caller stops producing.
    #[inline]
    pub fn reply_item(&mut self, frame: &Frame) -> bool {
        if self.reply_mode != ReplyMode::On {
            return true;
        }
        if self.handle.overflowed() {
            return false;
        }
        frame.encode(self.protocol, &mut self.out);
        self.within_output_limit()
    }

    /// Replies with `n` random picks with repetition (HRANDFIELD,
    /// SRANDMEMBER, ZRANDMEMBER with a negative count): `pick` gives a
    /// member and its value, the value sent only `with_values` (after the
    /// member in RESP2, as a [member, value] pair in RESP3). The count is
    /// the client's, so the reply may be huge: it is encoded pick by pick
    /// and stops once the client passes its output limit, as Redis's loops
    /// stop on CLOSE_ASAP.
    pub fn reply_picks(
        &mut self,
        n: u64,
        with_values: bool,
        mut pick: impl FnMut() -> (Frame, Frame),
    ) {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let resp3 = self.protocol == Protocol::Resp3;
        let flat = with_values && !resp3;
        self.reply_array_header(if flat { n.saturating_mul(2) } else { n });
        for _ in 0..n {
            let (member, value) = pick();
            if with_values && resp3 {
                self.reply_array_header(2);
            }
            if !self.reply_item(&member) || (with_values && !self.reply_item(&value)) {
                return;
            }
        }
    }

    /// Replies with a bulk string encoded straight from `data` (a value
    /// read in place: no copy of it into a frame first), honouring CLIENT
    /// REPLY and the output limit as [`reply`](Self::reply) does.
    #[inline]
    pub fn reply_bulk(&mut self, data: &[u8]) {
        if self.reply_mode == ReplyMode::On && !self.handle.overflowed() {
            crate::protocol::frame::put_bulk(&mut self.out, data);
            self.within_output_limit();
        }
    }

    /// Queues an array of `n` bulk strings, the `items`, encoded straight
    /// into the output buffer (no frame per element; LRANGE's replies).
    pub fn reply_bulks<'a>(&mut self, n: usize, items: impl Iterator<Item = &'a [u8]>) {
        if self.reply_mode == ReplyMode::On && !self.handle.overflowed() {
            crate::protocol::frame::put_int_line(&mut self.out, b'*', n as i64);
            for item in items.take(n) {
                crate::protocol::frame::put_bulk(&mut self.out, item);
            }
            self.within_output_limit();
        }
    }

    /// Queues an error reply (`msg` includes its code, e.g. `ERR ...`).
    pub fn error(&mut self, msg: impl Into<String>) {
        self.reply(Frame::error(msg));
    }

    /// Queues pre-encoded reply bytes, honouring CLIENT REPLY.
    pub fn reply_raw(&mut self, bytes: &[u8]) {
        if self.reply_mode == ReplyMode::On && !self.handle.overflowed() {
            self.out.extend_from_slice(bytes);
            self.within_output_limit();
        }
    }

    /// Moves the batch's replies to the outbox, so that what comes next
    /// (a subscription confirmation, a message to this very client) is
    /// ordered after them.
    pub fn queue_replies(&mut self) {
        if !self.out.is_empty() {
            let bytes = self.out.split().freeze();
            self.handle.push(bytes);
        }
    }

    /// Updates what CLIENT LIST shows about this client.
    fn publish_meta(&self, qbuf: usize, qbuf_cap: usize) {
        let mut m = self.handle.meta.lock();
        m.db = self.db;
        m.sub = self.subs.channels.len();
        m.psub = self.subs.patterns.len();
        m.ssub = self.subs.shard_channels.len();
        m.qbuf = qbuf;
        m.qbuf_cap = qbuf_cap;
        self.handle.set_query_buffer_size(qbuf_cap);
        if !self.current_cmd.is_empty() && m.last_cmd != self.current_cmd {
            m.last_cmd.clone_from(&self.current_cmd);
        }
    }

    /// Puts the client in the output-limit class its subscriptions call for
    /// (after any (un)subscription).
    pub fn sync_class(&self) {
        let class = if self
            .replica
            .as_ref()
            .is_some_and(|r| r.online.load(Relaxed))
        {
            ClientClass::Replica
        } else if self.subscription_count() > 0 {
            ClientClass::PubSub
        } else {
            ClientClass::Normal
        };
        self.handle.set_class(class);
    }

    /// Drops every subscription (disconnect, RESET); no confirmations.
    pub fn drop_subscriptions(&mut self) {
        let ps = &self.shared.engine.pubsub;
        let subs = std::mem::take(&mut self.subs);
        for (kind, set) in [
            (Kind::Channel, subs.channels),
            (Kind::Pattern, subs.patterns),
            (Kind::Shard, subs.shard_channels),
        ] {
            for name in set {
                ps.unsubscribe(kind, &name, &self.handle, None);
            }
        }
        self.sync_class();
    }
}

impl Client {
    /// Lets go of everything the client holds in the server, as a
    /// disconnected client does: its transaction and WATCHes, a block,
    /// MONITOR, a postponed command, its subscriptions, its place in the
    /// client list.
    pub fn release(&mut self) {
        super::transactions::client_gone(self);
        super::replication::client_gone(self);
        if self.monitor {
            self.shared.observe.monitors.remove(self.handle.id);
        }
        if self.postponed.take().is_some() {
            self.shared.observe.pause.waiting.fetch_sub(1, Relaxed);
        }
        self.drop_subscriptions();
        super::tracking::disable(self);
        self.shared.clients.remove(self.handle.id);
    }
}

impl Session for Client {
    fn execute(&mut self, args: Vec<Bytes>) {
        super::execute(self, args);
    }

    fn start_batch(&mut self, buffered: usize, capacity: usize) {
        // Commands are timed from here (one clock reading per batch, one
        // per command).
        let now = std::time::Instant::now();
        self.clock = now;
        self.batch_time = Some((now, crate::util::now_ms()));
        self.batch_qbuf = (buffered, capacity);
        if let Some(args) = self.postponed.take() {
            self.shared.observe.pause.waiting.fetch_sub(1, Relaxed);
            super::execute(self, args);
        }
    }

    fn end_batch(&mut self, query_buffer: usize, capacity: usize) {
        self.gate = None;
        self.batch_time = None;
        // The connection writes (or defers) these once the batch is over:
        // waking its own task would only make it go round once more.
        if !self.out.is_empty() {
            self.handle.push_own(self.out.split().freeze());
        }
        self.publish_meta(query_buffer, capacity);
    }

    fn accepts_requests(&self) -> bool {
        !self.close_after_reply
            && !self.handle.is_killed()
            && self.blocked.is_none()
            && self.postponed.is_none()
            && self.script.is_none()
            && self.waiting.is_none()
    }

    fn is_suspended(&self) -> bool {
        self.blocked.is_some()
            || self.postponed.is_some()
            || self.script.is_some()
            || self.waiting.is_some()
    }

    async fn resumed(&mut self) {
        if let Some(w) = &self.waiting {
            let deadline = w.deadline;
            return super::replication::wait_changed(&self.shared.engine.repl, deadline).await;
        }
        if let Some(script) = &self.script {
            let ended = script.notify.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            // A permit stored by the script's end, or a wake-up to come.
            ended.await;
            return;
        }
        let gate = &self.shared.engine.gate;
        let gate_changed = gate.changed.notified();
        tokio::pin!(gate_changed);
        gate_changed.as_mut().enable();
        let _waiting = gate.waiting();
        if let Some(b) = &self.blocked {
            if b.deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                // Timed out while a script holds the keyspace: the timeout
                // is settled once it is free.
                if gate.holds_back() || gate.busy().is_some() {
                    gate_changed.await;
                }
                return;
            }
            // Served (its reply is already in the outbox) or timed out.
            tokio::select! {
                biased;
                _ = b.slot.notify.notified() => {}
                _ = super::blocking::sleep_until(b.deadline) => {}
            }
            return;
        }
        // Held back by CLIENT PAUSE or a running script: the pause ends or
        // changes (or its deadline passes), the script ends or becomes
        // busy; no polling.
        let pause = &self.shared.observe.pause;
        let changed = pause.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let script_holds = gate.holds_back();
        let left = pause.remaining_ms();
        if left == 0 && !script_holds {
            return;
        }
        let sleep = if left == 0 { u64::MAX / 4 } else { left };
        tokio::select! {
            biased;
            _ = changed => {}
            _ = gate_changed => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(sleep)) => {}
        }
    }

    fn resume(&mut self) -> bool {
        if self.waiting.is_some() {
            return super::replication::settle_wait(self);
        }
        if let Some(script) = &self.script {
            let Some(done) = script.take() else {
                return false;
            };
            self.script = None;
            done.deliver(self);
            super::observe::script_replied(self);
            self.queue_replies();
            if self.tracking.mode.on {
                super::tracking::command_ended(self, b"");
            }
            return true;
        }
        let Some(b) = &self.blocked else {
            // A postponed command runs again (and may be postponed again).
            return true;
        };
        if b.slot.served.load(std::sync::atomic::Ordering::Acquire) {
            // Its reply is already in the outbox (and leaves after this).
            if let Some(b) = self.blocked.take() {
                if let Some((spec, args, took)) = &b.call {
                    super::observe::record_if_slow(self, spec, args, *took);
                }
                if let Some(text) = b.slot.error.get() {
                    // The reply went straight to the outbox: count it here.
                    self.shared.stats.count_error(text);
                    super::observe::blocked_failed(self, b.cmd);
                }
            }
        } else if b.slot.unblock_request() != 0
            || b.deadline.is_some_and(|d| tokio::time::Instant::now() >= d)
        {
            // Leaves the queues, and replies unless served meanwhile (not
            // while a script holds the keyspace).
            let Some(entry) = self.shared.engine.gate.enter() else {
                return false;
            };
            super::blocking::block_timeout(self);
            drop(entry);
        }
        self.handle.set_blocked(self.blocked.is_some());
        self.blocked.is_none()
    }

    fn closing(&self) -> bool {
        self.close_after_reply
    }

    fn unauthenticated(&self) -> bool {
        crate::command::auth::auth_required(self)
    }

    fn busy_service(&self) -> u8 {
        use crate::net::handle::busy_service::{READY, TRUSTED};
        let ready = self.accepts_requests()
            && self.tx.multi.is_none()
            && !self.is_master
            && self.replica.is_none()
            && !self.monitor
            && !crate::command::auth::auth_required(self);
        if !ready {
            return 0;
        }
        match &self.user {
            Some(u) if self.authenticated && u.is_unrestricted() => READY | TRUSTED,
            _ => READY,
        }
    }

    fn protocol_error(&mut self, msg: &str) {
        self.reply_mode = ReplyMode::On;
        self.error(format!("ERR {msg}"));
        self.close_after_reply = true;
    }

    fn awaits_durability(&self) -> bool {
        self.durable_at > 0
    }

    async fn durable(&mut self) -> bool {
        // Replies to writes are held in the outbox until the AOF is
        // written (under appendfsync always: fsynced) past their effects,
        // which the worker does once its round of clients is served (group
        // commit: one write and fsync releases them all).
        let off = std::mem::take(&mut self.durable_at);
        self.shared.engine.aof.wait_durable(off).await
    }

    fn pressure(&mut self) -> &mut Pressure {
        &mut self.pressure
    }

    fn closed(&mut self) {
        self.release();
    }
}
