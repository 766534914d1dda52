//! The `herald` binary: reads the configuration, starts logging, runs the server.

use std::process::ExitCode;

use herald::config::Config;

/// jemalloc, as redis-server uses: small allocations (keys, short values,
/// list nodes) carry no per-object header, and its thread caches make the
/// allocate/free pairs of every command cheaper than the C library's malloc
/// (about 10% less CPU per SET / INCR, measured with redis-benchmark -P 16).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `herald check-aof [--fix [--yes]] DIR`: inspect / repair an AOF.
    if args.first().map(String::as_str) == Some("check-aof") {
        let code = herald::persist::check::main(&args[1..]);
        return ExitCode::from(code as u8);
    }
    // `herald check-rdb FILE`: check an RDB file.
    if args.first().map(String::as_str) == Some("check-rdb") {
        let code = herald::persist::check_rdb::main(&args[1..]);
        return ExitCode::from(code as u8);
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("herald v={}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("Usage: herald [/path/to/herald.conf] [--option value ...]");
        println!("Options are redis.conf's, e.g. herald --port 7000 --bind 127.0.0.1");
        println!("       herald check-aof [--fix [--yes]] <dir>   check / repair an append-only file (--fix asks first unless --yes)");
        println!("       herald check-rdb <file>                  check an RDB file (dump.rdb)");
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // HERALD_LOG (tracing's filter syntax) wins over `loglevel`.
    let level = match config.loglevel.as_str() {
        "debug" => "debug",
        "verbose" => "debug",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // `logfile`: "" is standard output, as Redis; a path is opened for
    // appending at each line, as Redis does, so that a rotated file is
    // followed by a new one.
    match herald::config::log_path(&config) {
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .event_format(herald::logging::RedisFormat)
            .with_writer(std::io::stdout)
            .init(),
        Some(path) => {
            if let Err(e) = open_log(&path) {
                eprintln!(
                    "*** FATAL CONFIG FILE ERROR (herald {}) ***\nCan't open the log file: {}",
                    env!("CARGO_PKG_VERSION"),
                    herald::persist::aof::strerror(&e)
                );
                return ExitCode::FAILURE;
            }
            let make = move || -> Box<dyn std::io::Write> {
                match open_log(&path) {
                    Ok(f) => Box::new(f),
                    Err(_) => Box::new(std::io::sink()),
                }
            };
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .event_format(herald::logging::RedisFormat)
                .with_writer(make)
                .init()
        }
    }
    // `pidfile`: written once the configuration is good, removed at exit.
    let pidfile = config
        .value("pidfile")
        .filter(|p| !p.is_empty())
        .map(|p| config.dir.join(p));
    if let Some(p) = &pidfile {
        if let Err(e) = std::fs::write(p, format!("{}\n", std::process::id())) {
            tracing::warn!(
                "Failed to write PID file: {}",
                herald::persist::aof::strerror(&e)
            );
        }
    }
    tracing::info!("oO0OoO0OoO0Oo herald is starting oO0OoO0OoO0Oo");
    tracing::info!(
        "herald version={}, bits=64, pid={}, just started",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    tracing::info!("Configuration loaded");
    let ignored = config.ignored_options_set();
    if !ignored.is_empty() {
        tracing::info!(
            "options accepted but not used by herald: {}",
            ignored.join(", ")
        );
    }
    let logged = !config.logfile.is_empty();
    let code = match herald::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if logged {
                tracing::error!("{e}");
            }
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    };
    if let Some(p) = pidfile {
        let _ = std::fs::remove_file(p);
    }
    code
}

/// Opens the log file for appending (created if missing).
fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}
