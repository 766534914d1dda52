//! The `herald` binary: reads the configuration, starts logging, runs the server.

use std::process::ExitCode;

use herald::config::Config;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `herald check-aof [--fix [--yes]] DIR`: inspect / repair an AOF.
    if args.first().map(String::as_str) == Some("check-aof") {
        let code = herald::persist::check::main(&args[1..]);
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let ignored = config.ignored_options_set();
    if !ignored.is_empty() {
        tracing::info!(
            "options accepted but not used by herald: {}",
            ignored.join(", ")
        );
    }
    match herald::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e}");
            ExitCode::FAILURE
        }
    }
}
