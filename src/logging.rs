//! Log lines in redis-server's format, so that what operators and tools
//! already read from Redis's logs (grep patterns, log shippers, Redis's own
//! test suite, which waits for lines such as "Ready to accept connections")
//! reads herald's unchanged:
//!
//! ```text
//! 12345:M 07 Dec 2026 06:43:03.650 * Ready to accept connections
//! ```
//!
//! The process id, the role (`M` primary, `S` replica), the time (UTC, to
//! the millisecond), the level (`.` debug, `-` verbose, `*` notice, `#`
//! warning) and the message. Redis prints local time; herald prints UTC,
//! which is what servers run in and needs no time-zone database.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether this process is a replica, for the role letter. A process-wide
/// flag: several servers in one process (tests) only share a log anyway.
static REPLICA: AtomicBool = AtomicBool::new(false);

/// Records the server's role for the log lines that follow.
pub fn set_replica(replica: bool) {
    REPLICA.store(replica, Relaxed);
}

/// The event formatter that writes Redis's log line.
pub struct RedisFormat;

impl<S, N> FormatEvent<S, N> for RedisFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let role = if REPLICA.load(Relaxed) { 'S' } else { 'M' };
        let level = match *event.metadata().level() {
            Level::TRACE | Level::DEBUG => '.',
            Level::INFO => '*',
            Level::WARN | Level::ERROR => '#',
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        write!(
            writer,
            "{}:{role} {} {level} ",
            std::process::id(),
            Timestamp(now.as_millis() as i64)
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Milliseconds since the epoch, printed as `07 Dec 2026 06:43:03.650`.
struct Timestamp(i64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{day:02} {} {year} {:02}:{:02}:{:02}.{ms:03}",
            MONTHS[(month - 1) as usize],
            day_secs / 3600,
            day_secs / 60 % 60,
            day_secs % 60
        )
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`): year, month 1..=12, day 1..=31.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_redis_prints_them() {
        assert_eq!(Timestamp(0).to_string(), "01 Jan 1970 00:00:00.000");
        // 2026-12-07 06:43:03.650 UTC
        assert_eq!(
            Timestamp(1_796_625_783_650).to_string(),
            "07 Dec 2026 06:43:03.650"
        );
        // A leap day.
        assert_eq!(
            Timestamp(951_782_400_000).to_string(),
            "29 Feb 2000 00:00:00.000"
        );
    }
}
