//! Which option values herald refuses: those whose effect herald lacks and
//! whose absence matters for safety or operations (a server that should
//! fork, notify a supervisor, restrict TLS ciphers, ...).
//! Such a value stops start-up (with the config line that set it) and
//! CONFIG SET refuses it; the option's default and every value without an
//! effect are accepted. docs/configuration.md lists every option's status.

/// Every option [`refusal`] may refuse a value of (for tests that replay
/// redis-server's answers, where these differ on purpose).
#[cfg(test)]
pub(super) const REFUSABLE: &[&str] = &[
    "daemonize",
    "supervised",
    "cluster-enabled",
    "syslog-enabled",
    "maxmemory-clients",
    "oom-score-adj",
    "socket-mark-id",
    "aof-timestamp-enabled",
    "aof-disable-auto-gc",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-ca-cert-dir",
    "tls-key-file-pass",
    "tls-dh-params-file",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
];

/// Why herald refuses `name` set to `value` (as CONFIG GET shows it), or
/// `None` if herald honours it or it has no effect worth refusing.
pub(super) fn refusal(name: &str, value: &str) -> Option<&'static str> {
    let set = !value.is_empty();
    Some(match name {
        "daemonize" if value == "yes" => {
            "herald does not fork into the background: run it in the foreground (daemonize no) under a supervisor"
        }
        "supervised" if value == "systemd" || value == "upstart" => {
            "herald does not notify a supervisor that it is ready: use supervised no (systemd: Type=simple)"
        }
        "supervised" if value == "auto" && supervisor_detected() => {
            "a supervisor was detected (NOTIFY_SOCKET or UPSTART_JOB) and herald cannot notify it: use supervised no (systemd: Type=simple)"
        }
        "cluster-enabled" if value == "yes" => "herald has no cluster mode",
        "syslog-enabled" if value == "yes" => {
            "herald does not log to syslog: use logfile (a path, or \"\" for standard output)"
        }
        "maxmemory-clients" if value != "0" => "herald does not evict clients by memory",
        "oom-score-adj" if value != "no" => "herald does not set its OOM score",
        "socket-mark-id" if value != "0" => "herald does not mark its sockets",
        "aof-timestamp-enabled" if value == "yes" => {
            "herald writes no timestamp annotations in the AOF"
        }
        "aof-disable-auto-gc" if value == "yes" => {
            "herald always deletes the history AOF files after a rewrite"
        }
        "tls-protocols" | "tls-ciphers" | "tls-ciphersuites" | "tls-ca-cert-dir"
        | "tls-key-file-pass" | "tls-dh-params-file" | "tls-client-cert-file"
        | "tls-client-key-file" | "tls-client-key-file-pass"
            if set =>
        {
            "herald's TLS does not support this option"
        }
        _ => return None,
    })
}

/// `supervised auto`: Redis detects systemd or upstart from the
/// environment.
fn supervisor_detected() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some() || std::env::var_os("UPSTART_JOB").is_some()
}

/// The text of a refusal: the option and value, then the reason.
pub(super) fn refused_text(name: &str, value: &str, why: &str) -> String {
    format!("'{name} {value}' is not supported: {why}")
}
