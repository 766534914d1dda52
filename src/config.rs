//! Server configuration: redis.conf-style files, `--name value` flags and
//! CONFIG GET / SET.
//!
//! STUB: to be replaced by the full implementation (every Redis 7.0 option
//! accepted and shown by CONFIG GET; typed fields for the ones herald uses).

/// The options herald acts on, already validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (`bind`), default `127.0.0.1 -::1`.
    pub bind: Vec<String>,
    /// TCP port (`port`); 0 picks a free port (tests).
    pub port: u16,
    /// Largest bulk argument accepted (`proto-max-bulk-len`).
    pub proto_max_bulk_len: usize,
    /// Number of databases (`databases`).
    pub databases: usize,
    /// Worker threads serving connections (`io-threads`); 0 = one per core.
    pub io_threads: usize,
    /// Most clients connected at once (`maxclients`).
    pub maxclients: usize,
    /// listen(2) backlog (`tcp-backlog`).
    pub tcp_backlog: u32,
    /// Password of the default user (`requirepass`); empty = none.
    pub requirepass: String,
    /// Memory limit in bytes (`maxmemory`); 0 = none.
    pub maxmemory: u64,
    /// The config file the server was started with, if any.
    pub config_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".into()],
            port: 6379,
            proto_max_bulk_len: 512 * 1024 * 1024,
            databases: 16,
            io_threads: 0,
            maxclients: 10000,
            tcp_backlog: 511,
            requirepass: String::new(),
            maxmemory: 0,
            config_file: None,
        }
    }
}

/// A start-up configuration problem, naming the option and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Builds the configuration from the command line (without the program
    /// name): an optional config file path first, then `--name value ...`
    /// pairs; later settings win.
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "--port" => {
                    let v = args
                        .get(i + 1)
                        .ok_or_else(|| ConfigError("--port needs a value".into()))?;
                    c.port = v
                        .parse()
                        .map_err(|_| ConfigError(format!("bad port {v}")))?;
                    i += 2;
                }
                other => return Err(ConfigError(format!("unknown option {other}"))),
            }
        }
        Ok(c)
    }

    /// CONFIG GET: (name, value) pairs for every option matching one of the
    /// glob `patterns` (each option once, in table order).
    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let _ = patterns;
        Vec::new()
    }

    /// CONFIG SET with (name, value) pairs, applied all or nothing.
    /// On failure returns the error text Redis sends (without the leading `-`).
    pub fn set(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
        let _ = pairs;
        Err("ERR CONFIG SET not supported yet".into())
    }
}
