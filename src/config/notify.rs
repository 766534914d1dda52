//! Keyspace notification classes: `notify-keyspace-events` parsing and
//! printing with Redis's flag letters.
//!
//! Writes queue events on their database with `Db::notify`;
//! `Engine::unlock` publishes them as `__keyspace@<db>__:<key>` (payload:
//! the event) and `__keyevent@<db>__:<event>` (payload: the key), in that
//! order, as Redis's `notifyKeyspaceEvent` does.

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expired events.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: evicted events.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses (not part of `A`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events.
pub const MODULE: u32 = 1 << 12;
/// `n`: new keys (not part of `A`).
pub const NEW: u32 = 1 << 13;
/// `A`: alias for `g$lshzxetd`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses the configuration text as Redis's `keyspaceEventsStringToFlags`;
/// None for an unknown letter.
pub fn parse(s: &str) -> Option<u32> {
    let mut f = 0;
    for ch in s.chars() {
        f |= match ch {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The normalised text CONFIG GET shows (Redis's
/// `keyspaceEventsFlagsToString`).
pub fn to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, ch) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(ch);
            }
        }
    }
    for (bit, ch) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(ch);
        }
    }
    s
}

/// True if an event of `class` is published under `flags`: its class must
/// be enabled and at least one of K / E.
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        assert_eq!(parse("KEA"), Some(KEYSPACE | KEYEVENT | ALL));
        assert_eq!(to_string(parse("AKE").unwrap_or(0)), "AKE");
        assert_eq!(to_string(parse("Elg$").unwrap_or(0)), "g$lE");
        assert_eq!(parse("Kq"), None);
        assert_eq!(to_string(parse("AnKEm").unwrap_or(0)), "AKEm");
        assert_eq!(to_string(parse("nEg").unwrap_or(0)), "gnE");
        assert!(wanted(parse("Kx").unwrap_or(0), EXPIRED));
        assert!(!wanted(parse("x").unwrap_or(0), EXPIRED));
    }
}
