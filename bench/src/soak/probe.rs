//! What the soak checks on the server: a snapshot of its pub/sub state
//! (PUBSUB NUMSUB over every channel the soak may use, NUMPAT, CHANNELS),
//! its clients (INFO `connected_clients`, and the output-buffer-limit
//! disconnections where INFO has them) and its process's resident memory
//! (`/proc/PID/status`), taken over a probe connection of its own with
//! bounded waits; and the comparison of a snapshot with the baseline.

use std::time::Duration;

use crate::conn::{Conn, Result};
use crate::resp::Frame;

/// Channels given to one PUBSUB NUMSUB.
const NUMSUB_CHUNK: usize = 1000;

/// The server state the soak must leave as it found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Sum of PUBSUB NUMSUB over every channel name the soak may use.
    pub numsub: u64,
    /// PUBSUB NUMPAT.
    pub numpat: i64,
    /// Length of PUBSUB CHANNELS (all active channels).
    pub channels: usize,
    /// Length of PUBSUB CHANNELS `<soak prefix>*`.
    pub soak_channels: usize,
    /// INFO clients `connected_clients` (the probe connection included).
    pub connected_clients: i64,
    /// INFO stats `client_output_buffer_limit_disconnections`, if reported.
    pub obl_disconnections: Option<u64>,
    /// VmRSS of the server process, KiB (when its pid is known).
    pub rss_kb: Option<u64>,
}

/// Asks the server and reads `/proc` for a [`Snapshot`]. `channels` are
/// the names to sum NUMSUB over, `prefix` the soak's channel prefix.
pub async fn snapshot(
    c: &mut Conn,
    pid: Option<u32>,
    channels: &[String],
    prefix: &str,
) -> Result<Snapshot> {
    let mut numsub = 0u64;
    for chunk in channels.chunks(NUMSUB_CHUNK) {
        let mut args: Vec<&[u8]> = vec![&b"PUBSUB"[..], &b"NUMSUB"[..]];
        args.extend(chunk.iter().map(|s| s.as_bytes()));
        let Frame::Array(items) = c.command(&args).await? else {
            return Err(bench_err!("PUBSUB NUMSUB: not an array"));
        };
        // name, count, name, count, ...
        for pair in items.chunks(2) {
            if let [_, Frame::Integer(n)] = pair {
                numsub += u64::try_from(*n).unwrap_or(0);
            }
        }
    }
    let numpat = match c.command(&[b"PUBSUB", b"NUMPAT"]).await? {
        Frame::Integer(n) => n,
        other => return Err(bench_err!("PUBSUB NUMPAT: unexpected reply {other}")),
    };
    let count = |f: Frame| match f {
        Frame::Array(items) => Ok(items.len()),
        other => Err(bench_err!("PUBSUB CHANNELS: unexpected reply {other}")),
    };
    let all = count(c.command(&[b"PUBSUB", b"CHANNELS"]).await?)?;
    let pattern = format!("{prefix}*");
    let soak = count(
        c.command(&[b"PUBSUB", b"CHANNELS", pattern.as_bytes()])
            .await?,
    )?;
    let clients = info_field(c, "clients", "connected_clients")
        .await?
        .ok_or_else(|| bench_err!("INFO clients has no connected_clients"))?;
    let obl = info_field(c, "stats", "client_output_buffer_limit_disconnections").await?;
    Ok(Snapshot {
        numsub,
        numpat,
        channels: all,
        soak_channels: soak,
        connected_clients: i64::try_from(clients).unwrap_or(i64::MAX),
        obl_disconnections: obl,
        rss_kb: pid.and_then(rss_kb),
    })
}

/// A numeric field of an INFO section, `None` if the server does not have it.
pub async fn info_field(c: &mut Conn, section: &str, field: &str) -> Result<Option<u64>> {
    let text = match c.command(&[b"INFO", section.as_bytes()]).await? {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => return Err(bench_err!("INFO {section}: unexpected reply {other}")),
    };
    Ok(text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k == field).then(|| v.trim().parse().ok()).flatten()
    }))
}

/// A CONFIG GET value (the first one matched), if the server has it.
pub async fn config_get(c: &mut Conn, name: &str) -> Result<Option<String>> {
    match c.command(&[b"CONFIG", b"GET", name.as_bytes()]).await? {
        Frame::Array(items) => Ok(match items.get(1) {
            Some(Frame::Bulk(v)) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        }),
        other => Err(bench_err!("CONFIG GET {name}: unexpected reply {other}")),
    }
}

/// VmRSS of process `pid` in KiB, or `None` if it is gone.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// True while process `pid` exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// How far RSS may stay above the baseline: the larger of `pct` percent of
/// the baseline and `mib` MiB.
pub fn rss_allowance_kb(baseline_kb: u64, pct: f64, mib: f64) -> u64 {
    let by_pct = baseline_kb as f64 * pct / 100.0;
    let by_mib = mib * 1024.0;
    by_pct.max(by_mib) as u64
}

/// What differs between `after` and `baseline`, one line per difference
/// (empty: back to baseline). RSS may exceed the baseline by `allowance_kb`.
pub fn differences(baseline: &Snapshot, after: &Snapshot, allowance_kb: u64) -> Vec<String> {
    let mut out = Vec::new();
    if after.numsub != baseline.numsub {
        out.push(format!(
            "PUBSUB NUMSUB over the soak's channels: {} (baseline {})",
            after.numsub, baseline.numsub
        ));
    }
    if after.numpat != baseline.numpat {
        out.push(format!(
            "PUBSUB NUMPAT: {} (baseline {})",
            after.numpat, baseline.numpat
        ));
    }
    if after.channels != baseline.channels {
        out.push(format!(
            "PUBSUB CHANNELS: {} channels (baseline {})",
            after.channels, baseline.channels
        ));
    }
    if after.soak_channels != 0 {
        out.push(format!(
            "PUBSUB CHANNELS of the soak: {} still active",
            after.soak_channels
        ));
    }
    if after.connected_clients != baseline.connected_clients {
        out.push(format!(
            "connected_clients: {} (baseline {})",
            after.connected_clients, baseline.connected_clients
        ));
    }
    if let (Some(b), Some(a)) = (baseline.rss_kb, after.rss_kb) {
        if a > b.saturating_add(allowance_kb) {
            out.push(format!(
                "RSS {a} KiB: {} KiB above the baseline {b} KiB (allowed {allowance_kb})",
                a - b
            ));
        }
    }
    out
}

/// Opens the probe connection.
pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn> {
    let mut c = Conn::connect(addr, timeout, 64 * 1024).await?;
    c.command(&[b"CLIENT", b"SETNAME", b"herald-soak-probe"])
        .await?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_is_the_larger_bound() {
        assert_eq!(rss_allowance_kb(10_240, 10.0, 8.0), 8192);
        assert_eq!(rss_allowance_kb(1_024_000, 10.0, 8.0), 102_400);
    }

    #[test]
    fn differences_name_each_field() {
        let base = Snapshot {
            connected_clients: 1,
            rss_kb: Some(10_000),
            ..Snapshot::default()
        };
        assert!(differences(&base, &base, 0).is_empty());
        let after = Snapshot {
            numpat: 2,
            soak_channels: 1,
            connected_clients: 3,
            rss_kb: Some(20_000),
            ..base.clone()
        };
        let d = differences(&base, &after, 8192);
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(differences(&base, &after, 10_000).len() == 3);
    }

    #[test]
    fn reads_our_own_rss() {
        assert!(rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
        assert!(alive(std::process::id()));
    }
}
