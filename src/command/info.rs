//! INFO's clients, memory, stats and CPU sections: Redis 7.0's fields, in
//! its order, with herald's real figures where it has them (what
//! `redis-cli --stat` and exporters such as redis_exporter read) and
//! Redis's idle values for mechanisms herald does not have (replication,
//! scripting, active defragmentation, client tracking).
//!
//! Counters live where they are cheapest to keep (see `observe`): per
//! database under its lock (hits, misses, expired keys), relaxed atomics
//! (commands, network bytes, evictions), or sampled ten times a second
//! (instantaneous rates, client buffers).

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use crate::command::Client;
use crate::observe;
use crate::store::Db;

/// Writes `name:value` lines.
fn lines(s: &mut String, header: &str, fields: &[(&str, String)]) {
    s.push_str(header);
    s.push_str("\r\n");
    for (k, v) in fields {
        let _ = write!(s, "{k}:{v}\r\n");
    }
}

/// Redis's `bytesToHuman`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    const K: f64 = 1024.0;
    if b < K {
        format!("{bytes}B")
    } else if b < K * K {
        format!("{:.2}K", b / K)
    } else if b < K * K * K {
        format!("{:.2}M", b / K / K)
    } else if b < K * K * K * K {
        format!("{:.2}G", b / K / K / K)
    } else if b < K * K * K * K * K {
        format!("{:.2}T", b / K / K / K / K)
    } else {
        format!("{:.2}P", b / K / K / K / K / K)
    }
}

/// Sums `f` over the databases (using the guards EXEC holds, if any).
pub(super) fn db_sum(c: &Client, f: impl Fn(&Db) -> u64) -> u64 {
    (0..c.shared.engine.store.len())
        .map(|i| match c.tx.locks.get(i) {
            Some(g) => f(g),
            None => f(&c.shared.engine.store.lock(i)),
        })
        .sum()
}

/// Clients holding a command back (blocked in BLPOP & co., or paused).
fn blocked_clients(c: &Client) -> usize {
    c.shared.engine.blocked_clients()
        + super::observe::paused_clients(c)
        + c.shared
            .engine
            .repl
            .waiting_clients
            .load(std::sync::atomic::Ordering::Relaxed)
}

/// `# Clients`.
pub fn clients(c: &Client, s: &mut String) {
    let sh = &c.shared;
    let mem = sh.observe.sum_clients_memory(&sh.clients);
    let maxclients = sh.config.read().maxclients;
    lines(
        s,
        "# Clients",
        &[
            // Replicas are not counted (Redis: clients minus slaves).
            (
                "connected_clients",
                sh.clients
                    .len()
                    .saturating_sub(sh.engine.repl.replicas().len())
                    .to_string(),
            ),
            ("cluster_connections", "0".into()),
            ("maxclients", maxclients.to_string()),
            ("client_recent_max_input_buffer", mem.max_input.to_string()),
            (
                "client_recent_max_output_buffer",
                mem.max_output.to_string(),
            ),
            ("blocked_clients", blocked_clients(c).to_string()),
            ("tracking_clients", sh.engine.tracking.stats().0.to_string()),
            ("clients_in_timeout_table", "0".into()),
        ],
    );
}

/// Total memory of the machine (bytes), from /proc/meminfo.
fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `# Memory` (what counts as used memory: `observe`'s module header).
pub fn memory(c: &Client, s: &mut String) {
    let sh = &c.shared;
    let clients = sh.observe.sum_clients_memory(&sh.clients);
    let (repl_backlog, repl_total) = sh.engine.repl.buffer_memory();
    let dataset = sh.engine.store.used_memory_total() as u64;
    let used = dataset + clients.total as u64;
    let peak = sh.observe.note_used(used as usize) as u64;
    let rss = super::server::rss_bytes();
    let maxmemory = sh.engine.store.evictor.settings.maxmemory.load(Relaxed);
    let policy = sh.engine.store.evictor.settings.policy();
    let pct = |a: u64, b: u64| {
        format!(
            "{:.2}%",
            if b == 0 {
                0.0
            } else {
                a as f64 * 100.0 / b as f64
            }
        )
    };
    let ratio = |a: u64, b: u64| format!("{:.2}", if b == 0 { 0.0 } else { a as f64 / b as f64 });
    let sys = total_system_memory();
    let lua = sh.scripting.figures();
    let get = |v: &std::sync::atomic::AtomicUsize| v.load(Relaxed) as u64;
    let (vm_eval, vm_functions) = (get(&lua.eval_vm), get(&lua.functions_vm));
    let (scripts_eval, functions) = (get(&lua.scripts_eval), get(&lua.functions_memory));
    lines(
        s,
        "# Memory",
        &[
            ("used_memory", used.to_string()),
            ("used_memory_human", human(used)),
            ("used_memory_rss", rss.to_string()),
            ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", peak.to_string()),
            ("used_memory_peak_human", human(peak)),
            ("used_memory_peak_perc", pct(used, peak)),
            ("used_memory_overhead", clients.total.to_string()),
            ("used_memory_startup", "0".into()),
            ("used_memory_dataset", dataset.to_string()),
            ("used_memory_dataset_perc", pct(dataset, used)),
            ("allocator_allocated", used.to_string()),
            ("allocator_active", used.to_string()),
            ("allocator_resident", rss.to_string()),
            ("total_system_memory", sys.to_string()),
            ("total_system_memory_human", human(sys)),
            ("used_memory_lua", vm_eval.to_string()),
            ("used_memory_vm_eval", vm_eval.to_string()),
            ("used_memory_lua_human", human(vm_eval)),
            ("used_memory_scripts_eval", scripts_eval.to_string()),
            (
                "number_of_cached_scripts",
                get(&lua.cached_scripts).to_string(),
            ),
            ("number_of_functions", get(&lua.functions).to_string()),
            ("number_of_libraries", get(&lua.libraries).to_string()),
            ("used_memory_vm_functions", vm_functions.to_string()),
            ("used_memory_vm_total", (vm_eval + vm_functions).to_string()),
            ("used_memory_vm_total_human", human(vm_eval + vm_functions)),
            ("used_memory_functions", functions.to_string()),
            (
                "used_memory_scripts",
                (scripts_eval + functions).to_string(),
            ),
            ("used_memory_scripts_human", human(scripts_eval + functions)),
            ("maxmemory", maxmemory.to_string()),
            ("maxmemory_human", human(maxmemory)),
            ("maxmemory_policy", policy.as_str().into()),
            ("allocator_frag_ratio", "1.00".into()),
            ("allocator_frag_bytes", "0".into()),
            ("allocator_rss_ratio", ratio(rss, used)),
            ("allocator_rss_bytes", rss.saturating_sub(used).to_string()),
            ("rss_overhead_ratio", "1.00".into()),
            ("rss_overhead_bytes", "0".into()),
            ("mem_fragmentation_ratio", ratio(rss, used)),
            (
                "mem_fragmentation_bytes",
                (rss as i64 - used as i64).to_string(),
            ),
            ("mem_not_counted_for_evict", "0".into()),
            ("mem_replication_backlog", repl_backlog.to_string()),
            ("mem_total_replication_buffers", repl_total.to_string()),
            (
                "mem_clients_slaves",
                (repl_total - repl_backlog).to_string(),
            ),
            ("mem_clients_normal", clients.total.to_string()),
            ("mem_cluster_links", "0".into()),
            ("mem_aof_buffer", "0".into()),
            ("mem_allocator", "libc".into()),
            ("active_defrag_running", "0".into()),
            (
                "lazyfree_pending_objects",
                c.shared.engine.lazyfree.pending().to_string(),
            ),
            (
                "lazyfreed_objects",
                c.shared.engine.lazyfree.freed().to_string(),
            ),
        ],
    );
}

/// `# Stats` (Redis 7.0's fields; herald's own counters follow them).
pub fn stats(c: &Client, s: &mut String) {
    let sh = &c.shared;
    let st = &sh.stats;
    let tracking = sh.engine.tracking.stats();
    let ps = &sh.engine.pubsub;
    let rates = sh.observe.rates();
    let repl = &sh.engine.repl;
    let forks = {
        let p = sh.persist.lock();
        (p.forks, p.latest_fork_usec)
    };
    let kbps = |b: u64| format!("{:.2}", b as f64 / 1024.0);
    lines(
        s,
        "# Stats",
        &[
            (
                "total_connections_received",
                st.net.total_connections_received.load(Relaxed).to_string(),
            ),
            (
                "total_commands_processed",
                st.total_commands_processed.load(Relaxed).to_string(),
            ),
            ("instantaneous_ops_per_sec", rates.ops_per_sec.to_string()),
            (
                "total_net_input_bytes",
                st.net.total_net_input_bytes.load(Relaxed).to_string(),
            ),
            (
                "total_net_output_bytes",
                st.net.total_net_output_bytes.load(Relaxed).to_string(),
            ),
            ("total_net_repl_input_bytes", "0".into()),
            ("total_net_repl_output_bytes", "0".into()),
            ("instantaneous_input_kbps", kbps(rates.input_bytes_per_sec)),
            (
                "instantaneous_output_kbps",
                kbps(rates.output_bytes_per_sec),
            ),
            ("instantaneous_input_repl_kbps", "0.00".into()),
            ("instantaneous_output_repl_kbps", "0.00".into()),
            (
                "rejected_connections",
                st.net.rejected_connections.load(Relaxed).to_string(),
            ),
            ("sync_full", repl.sync_full.load(Relaxed).to_string()),
            (
                "sync_partial_ok",
                repl.sync_partial_ok.load(Relaxed).to_string(),
            ),
            (
                "sync_partial_err",
                repl.sync_partial_err.load(Relaxed).to_string(),
            ),
            ("expired_keys", db_sum(c, |d| d.expired_keys).to_string()),
            ("expired_stale_perc", "0.00".into()),
            ("expired_time_cap_reached_count", "0".into()),
            ("expire_cycle_cpu_milliseconds", "0".into()),
            (
                "evicted_keys",
                sh.engine
                    .store
                    .evictor
                    .evicted_keys
                    .load(Relaxed)
                    .to_string(),
            ),
            ("evicted_clients", "0".into()),
            ("total_eviction_exceeded_time", "0".into()),
            ("current_eviction_exceeded_time", "0".into()),
            ("keyspace_hits", db_sum(c, |d| d.hits).to_string()),
            ("keyspace_misses", db_sum(c, |d| d.misses).to_string()),
            ("pubsub_channels", ps.channels.count().to_string()),
            ("pubsub_patterns", ps.patterns.count().to_string()),
            (
                "pubsubshard_channels",
                ps.shard_channels.count().to_string(),
            ),
            ("latest_fork_usec", forks.1.to_string()),
            ("total_forks", forks.0.to_string()),
            ("migrate_cached_sockets", "0".into()),
            ("slave_expires_tracked_keys", "0".into()),
            ("active_defrag_hits", "0".into()),
            ("active_defrag_misses", "0".into()),
            ("active_defrag_key_hits", "0".into()),
            ("active_defrag_key_misses", "0".into()),
            ("total_active_defrag_time", "0".into()),
            ("current_active_defrag_time", "0".into()),
            ("tracking_total_keys", tracking.1.to_string()),
            ("tracking_total_items", tracking.2.to_string()),
            ("tracking_total_prefixes", tracking.3.to_string()),
            (
                "unexpected_error_replies",
                st.unexpected_error_replies.load(Relaxed).to_string(),
            ),
            (
                "total_error_replies",
                st.total_error_replies.load(Relaxed).to_string(),
            ),
            ("dump_payload_sanitizations", "0".into()),
            ("total_reads_processed", "0".into()),
            ("total_writes_processed", "0".into()),
            ("io_threaded_reads_processed", "0".into()),
            ("io_threaded_writes_processed", "0".into()),
            ("reply_buffer_shrinks", "0".into()),
            ("reply_buffer_expands", "0".into()),
            (
                "client_output_buffer_limit_disconnections",
                st.net
                    .client_output_buffer_limit_disconnections
                    .load(Relaxed)
                    .to_string(),
            ),
            (
                "client_query_buffer_limit_disconnections",
                st.net
                    .client_query_buffer_limit_disconnections
                    .load(Relaxed)
                    .to_string(),
            ),
        ],
    );
}

/// `# CPU`: from getrusage (the main thread's figures are the calling
/// worker thread's).
pub fn cpu(s: &mut String) {
    let [me, children, thread] = observe::cpu_times();
    let f = |v: f64| format!("{v:.6}");
    lines(
        s,
        "# CPU",
        &[
            ("used_cpu_sys", f(me.0)),
            ("used_cpu_user", f(me.1)),
            ("used_cpu_sys_children", f(children.0)),
            ("used_cpu_user_children", f(children.1)),
            ("used_cpu_sys_main_thread", f(thread.0)),
            ("used_cpu_user_main_thread", f(thread.1)),
        ],
    );
}

/// CONFIG RESETSTAT's part for the counters above.
pub fn reset_stats(c: &mut Client) {
    let sh = &c.shared;
    sh.engine.store.evictor.evicted_keys.store(0, Relaxed);
    sh.observe.reset_stats();
    {
        // As Redis's resetServerStats (`stat_total_forks`, `stat_fork_time`).
        let mut p = sh.persist.lock();
        p.forks = 0;
        p.latest_fork_usec = 0;
    }
    let repl = &sh.engine.repl;
    for n in [
        &repl.sync_full,
        &repl.sync_partial_ok,
        &repl.sync_partial_err,
    ] {
        n.store(0, Relaxed);
    }
    for i in 0..sh.engine.store.len() {
        let reset = |d: &mut Db| {
            d.hits = 0;
            d.misses = 0;
            d.expired_keys = 0;
        };
        match c.tx.locks.get_mut(i) {
            Some(g) => reset(g),
            None => reset(&mut sh.engine.store.lock(i)),
        }
    }
}
