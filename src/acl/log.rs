//! ACL LOG: the most recent authentication failures and ACL denials, as
//! redis-server 7.0 keeps them.
//!
//! Newest first; an event like one of the 10 newest (same reason, context,
//! object and user, within 60 seconds) bumps that entry's count and moves it
//! to the front instead of adding one. At most `acllog-max-len` entries.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::protocol::Frame;
use crate::util::now_ms;

/// Why an entry was logged (Redis's `ACL_DENIED_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A command or subcommand not allowed.
    Command,
    /// A key not allowed.
    Key,
    /// A channel not allowed.
    Channel,
    /// Bad credentials.
    Auth,
}

impl Reason {
    fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A command run on its own.
    Toplevel,
    /// Inside MULTI / EXEC.
    Multi,
    /// Called by a Lua script.
    Lua,
}

impl Context {
    fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// Redis groups equal events closer than this (ms).
const GROUPING_MAX_DELTA_MS: u64 = 60_000;

/// One log entry.
#[derive(Debug, Clone)]
pub struct Entry {
    count: u64,
    reason: Reason,
    context: Context,
    /// The command's full name, the key, the channel, or for AUTH the
    /// command name as typed.
    object: Bytes,
    username: Bytes,
    /// When last updated (ms since the epoch).
    ctime: u64,
    /// CLIENT LIST line of the last client that caused it.
    cinfo: String,
}

impl Entry {
    /// A new event, happening now.
    pub fn new(
        reason: Reason,
        context: Context,
        object: Bytes,
        username: Bytes,
        cinfo: String,
    ) -> Entry {
        Entry {
            count: 1,
            reason,
            context,
            object,
            username,
            ctime: now_ms(),
            cinfo,
        }
    }

    fn same_event(&self, other: &Entry) -> bool {
        self.reason == other.reason
            && self.context == other.context
            && self.ctime.abs_diff(other.ctime) <= GROUPING_MAX_DELTA_MS
            && self.object == other.object
            && self.username == other.username
    }

    fn frame(&self, now: u64) -> Frame {
        let b = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        Frame::Map(vec![
            (b("count"), Frame::Integer(self.count as i64)),
            (b("reason"), b(self.reason.name())),
            (b("context"), b(self.context.name())),
            (b("object"), Frame::Bulk(self.object.clone())),
            (b("username"), Frame::Bulk(self.username.clone())),
            (
                b("age-seconds"),
                Frame::Double(now.saturating_sub(self.ctime) as f64 / 1000.0),
            ),
            (b("client-info"), b(&self.cinfo)),
        ])
    }
}

/// The log, newest first.
#[derive(Debug, Default)]
pub struct Log {
    entries: VecDeque<Entry>,
}

impl Log {
    /// Records an event (Redis's `addACLLogEntry`).
    pub fn add(&mut self, e: Entry, max_len: usize) {
        let found = self
            .entries
            .iter()
            .take(10)
            .position(|cur| cur.same_event(&e));
        match found {
            Some(i) => {
                if let Some(mut cur) = self.entries.remove(i) {
                    cur.cinfo = e.cinfo;
                    cur.ctime = e.ctime;
                    cur.count += 1;
                    self.entries.push_front(cur);
                }
            }
            None => {
                self.entries.push_front(e);
                self.entries.truncate(max_len);
            }
        }
    }

    /// ACL LOG RESET.
    pub fn reset(&mut self) {
        self.entries = VecDeque::new();
    }

    /// ACL LOG with a count: the newest `count` entries.
    pub fn reply(&self, count: usize) -> Frame {
        let now = now_ms();
        Frame::Array(
            self.entries
                .iter()
                .take(count)
                .map(|e| e.frame(now))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(obj: &'static str) -> Entry {
        Entry::new(
            Reason::Command,
            Context::Toplevel,
            Bytes::from_static(obj.as_bytes()),
            Bytes::from_static(b"u"),
            String::new(),
        )
    }

    #[test]
    fn groups_and_trims() {
        let mut log = Log::default();
        log.add(entry("get"), 2);
        log.add(entry("set"), 2);
        log.add(entry("get"), 2);
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.entries[0].count, 2);
        assert_eq!(&log.entries[0].object[..], b"get");
        log.add(entry("del"), 2);
        assert_eq!(log.entries.len(), 2);
        assert_eq!(&log.entries[1].object[..], b"get");
    }
}
