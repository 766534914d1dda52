//! herald-bench: a pub/sub load generator for any Redis-protocol server.
//!
//! Modelled on `nats bench` and Redis's pubsub-sub-bench: N publishers send
//! pipelined PUBLISH / SPUBLISH to C channels while M subscribers listen
//! with SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE. Every payload carries its send
//! time, so each delivery's end-to-end latency is measured. A second mode
//! only opens connections and subscriptions and holds them, so a script can
//! read the server's memory use. A third, `herald-bench soak`, is a bounded
//! soak test (`soak/`). This file holds the command line; see `run.rs` for
//! the load run itself.

/// Builds a [`conn::BenchError`] from a format string.
macro_rules! bench_err {
    ($($arg:tt)*) => { $crate::conn::BenchError(format!($($arg)*)) };
}

mod conn;
mod publisher;
mod report;
mod resp;
mod run;
mod soak;
mod subscriber;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use conn::Mode;

/// Pub/sub load generator for Redis-protocol servers (herald, redis-server).
///
/// Examples:
///   herald-bench --port 6379 --subscribers 50                 # 1 -> 50 on 1 channel
///   herald-bench --subscribers 0 --pipeline 64                # publish-only
///   herald-bench --subscribers 50 --slow-subscribers 5        # + 5 that stop reading
///   herald-bench --mode pattern --subscribers 50 --extra-patterns 1000
///   herald-bench --hold 10 --subscribers 10000 --channels-per-sub 0   # memory
///   herald-bench soak --quick --port 6379 --pid $(pidof herald)       # soak test
#[derive(Parser, Debug)]
#[command(
    name = "herald-bench",
    version,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A mode other than the load run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The load run's arguments.
    #[command(flatten)]
    pub args: Args,
}

/// The subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Soak test: thousands of connections doing subscription churn,
    /// mid-command disconnects, garbage, slow reads and a flood at once,
    /// then a check that the server is back to its baseline (exit 1 if not).
    Soak(soak::SoakArgs),
}

/// The load run's arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscriber connections; 0 = publish-only.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// Extra subscribers that stop reading when the measured window starts
    /// (they subscribe like the others and read through the warm-up, then
    /// let their socket buffers fill). They are counted apart: the report
    /// gives the other subscribers' rate and latency, and how many of these
    /// the server disconnected (and when).
    #[arg(long, default_value_t = 0)]
    pub slow_subscribers: usize,
    /// Channels; publishers spread their publishes over all of them (see
    /// --spread).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// How each publisher picks a publish's channel: random (uniform, a
    /// fixed seed per publisher) or round-robin (publisher i starting at
    /// channel i, the shape of runs before 2026-11-22).
    #[arg(long, value_enum, default_value_t = conn::Spread::Random)]
    pub spread: conn::Spread,
    /// Channels each subscriber listens on (K consecutive ones, starting at
    /// subscriber × K, wrapping). With --hold, 0 = idle connections.
    #[arg(long, default_value_t = 1)]
    pub channels_per_sub: usize,
    /// plain: SUBSCRIBE/PUBLISH; pattern: PSUBSCRIBE (one pattern matching
    /// each channel)/PUBLISH; sharded: SSUBSCRIBE/SPUBLISH.
    #[arg(long, value_enum, default_value_t = Mode::Plain)]
    pub mode: Mode,
    /// Extra non-matching patterns (PSUBSCRIBE) per subscriber, to load the
    /// server's pattern matcher.
    #[arg(long, default_value_t = 0)]
    pub extra_patterns: usize,
    /// Payload size in bytes (at least 16: the send timestamp).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Publishes in flight per publisher connection.
    #[arg(long, default_value_t = 16)]
    pub pipeline: usize,
    /// Target total publishes per second (shared by the publishers);
    /// 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Protocol version: 2, or 3 (HELLO 3 on every connection).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub resp: u8,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Longest wait, in seconds, for the last deliveries after publishing
    /// stops (it ends sooner once all arrived or none came for 1 s).
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Longest wait, in seconds, for any answer from the server before it is
    /// declared stalled.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Worker threads of the generator (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Connection-only mode: open --subscribers connections with
    /// --channels-per-sub subscriptions each, print READY, hold them for this
    /// many seconds, then exit.
    #[arg(long, value_name = "SECS")]
    pub hold: Option<f64>,
    /// The server's process id (same machine): its CPU use over the
    /// measured window is reported, and deliveries per second of server
    /// CPU, which still compares servers when the generator saturates.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Print one JSON line instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// `host:port`.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The stall timeout.
    pub fn timeout_duration(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    /// Checks the combinations clap cannot.
    fn validate(&self) -> Result<(), String> {
        let secs = |name: &str, v: f64, min: f64| {
            if v.is_finite() && v >= min && v < 1e6 {
                Ok(())
            } else {
                Err(format!("--{name} must be a number of seconds >= {min}"))
            }
        };
        secs("warmup", self.warmup, 0.0)?;
        secs("duration", self.duration, 0.001)?;
        secs("drain", self.drain, 0.0)?;
        secs("timeout", self.timeout, 0.001)?;
        if let Some(h) = self.hold {
            secs("hold", h, 0.0)?;
        }
        if self.payload < 16 {
            return Err("--payload must be at least 16 bytes (the send timestamp)".into());
        }
        if self.pipeline == 0 || self.pipeline > 1_000_000 {
            return Err("--pipeline must be between 1 and 1000000".into());
        }
        if self.channels == 0 {
            return Err("--channels must be at least 1".into());
        }
        if self.channels_per_sub > self.channels {
            return Err("--channels-per-sub cannot exceed --channels".into());
        }
        if self.hold.is_none() {
            if self.publishers == 0 {
                return Err("--publishers must be at least 1".into());
            }
            if self.slow_subscribers > 0 && self.subscribers == 0 {
                return Err("--slow-subscribers needs at least one --subscribers".into());
            }
            if self.subscribers > 0 && self.channels_per_sub == 0 {
                return Err("--channels-per-sub must be at least 1 (0 only with --hold)".into());
            }
        }
        if self.hold.is_some() && self.slow_subscribers > 0 {
            return Err("--slow-subscribers does not apply to --hold".into());
        }
        if self.mode == Mode::Sharded && self.extra_patterns > 0 {
            return Err("--extra-patterns does not apply to --mode sharded".into());
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err("--rate must be >= 0".into());
        }
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        Ok(())
    }
}

/// Raises the soft open-files limit to the hard one, for runs with
/// thousands of connections.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// A multi-thread runtime with `threads` workers.
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .on_thread_start(report::register_thread)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("herald-bench: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

/// `herald-bench soak`: exit 0 if it passed, 1 if a check failed, 2 if it
/// could not run.
fn soak_main(a: soak::SoakArgs) -> ExitCode {
    let settings = match a.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("herald-bench soak: {e}");
            return ExitCode::from(2);
        }
    };
    raise_fd_limit();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match runtime(threads) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let json = a.json;
    let result = runtime.block_on(soak::run(Arc::new(a), settings));
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(o) => {
            let text = if json {
                soak::json_line(&o)
            } else {
                soak::human(&o)
            };
            println!("{}", text.trim_end());
            if o.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("herald-bench soak: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Soak(a)) = cli.command {
        return soak_main(a);
    }
    let args = cli.args;
    if let Err(e) = args.validate() {
        eprintln!("herald-bench: {e}");
        return ExitCode::from(2);
    }
    raise_fd_limit();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = match runtime(threads) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let args = Arc::new(args);
    let result = runtime.block_on(async {
        match args.hold {
            Some(h) => run::hold(args.clone(), Duration::from_secs_f64(h))
                .await
                .map(|o| {
                    if args.json {
                        report::hold_json(&o)
                    } else {
                        report::hold_human(&o)
                    }
                }),
            None => run::load(args.clone(), threads).await.map(|o| {
                if args.json {
                    report::json_line(&args, &o)
                } else {
                    report::human(&args, &o)
                }
            }),
        }
    });
    // Do not wait for tasks still blocked on a dead server.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herald-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
