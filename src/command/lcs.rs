//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest
//! common subsequence of two strings, as Redis's `lcsCommand` computes it
//! (the dynamic-programming table, then a walk back from its corner that
//! reports the matching ranges from the end of the strings).
//!
//! The table is `(len1 + 1) * (len2 + 1)` 32-bit cells; as in Redis it is
//! refused when that exceeds `proto-max-bulk-len` bytes, so a client
//! cannot make the server allocate more than it could have sent.

use bytes::Bytes;

use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::protocol::Frame;
use crate::store::{Db, Value};

/// The string at `key` ("" if missing); Err if another type.
fn string_or_empty(db: &mut Db, key: &[u8]) -> Result<Bytes, ()> {
    match db.get(key) {
        None => Ok(Bytes::new()),
        Some(Value::Str(b)) => Ok(b.to_bytes()),
        Some(_) => Err(()),
    }
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN].
pub fn lcs(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (a, b) = (string_or_empty(db, &args[1]), string_or_empty(db, &args[2]));
    let (Ok(a), Ok(b)) = (a, b) else {
        return c.error("ERR The specified keys must contain string values");
    };
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: u64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let more = args.len() - 1 - j;
        if opt.eq_ignore_ascii_case(b"idx") {
            getidx = true;
        } else if opt.eq_ignore_ascii_case(b"len") {
            getlen = true;
        } else if opt.eq_ignore_ascii_case(b"withmatchlen") {
            withmatchlen = true;
        } else if opt.eq_ignore_ascii_case(b"minmatchlen") && more > 0 {
            let Some(n) = parse_i64(&args[j + 1]) else {
                return c.error(ERR_NOT_INTEGER);
            };
            minmatchlen = n.max(0) as u64;
            j += 1;
        } else {
            return c.error(ERR_SYNTAX);
        }
        j += 1;
    }
    if getlen && getidx {
        return c.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return c.error("ERR String too long for LCS");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let bytes = cells.saturating_mul(4);
    if bytes > c.shared.config.read().proto_max_bulk_len as u64 {
        return c
            .error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        return c.error("ERR Insufficient memory, failed allocating transient memory for LCS");
    }
    table.resize(cells as usize, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * w + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * w + j - 1] + 1
            } else {
                table[(i - 1) * w + j].max(table[i * w + j - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    let compute = getidx || !getlen;
    let mut result = vec![0u8; if compute { total as usize } else { 0 }];
    let mut idx = total as usize;
    let mut matches = Vec::new();
    // `arange_start == alen` means no range is open, as in Redis.
    let (mut arange_start, mut arange_end, mut brange_start, mut brange_end) = (alen, 0, 0, 0);
    let (mut i, mut j) = (alen, blen);
    while compute && i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            if let Some(slot) = idx.checked_sub(1).and_then(|k| result.get_mut(k)) {
                *slot = a[i - 1];
            }
            if arange_start == alen {
                arange_start = i - 1;
                arange_end = i - 1;
                brange_start = j - 1;
                brange_end = j - 1;
            } else if arange_start == i && brange_start == j {
                arange_start -= 1;
                brange_start -= 1;
            } else {
                emit = true;
            }
            if arange_start == 0 || brange_start == 0 {
                emit = true;
            }
            idx = idx.saturating_sub(1);
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * w + j] > table[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if arange_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = (arange_end + 1).saturating_sub(arange_start) as u64;
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen) {
                let mut m = vec![
                    Frame::Array(vec![
                        Frame::Integer(arange_start as i64),
                        Frame::Integer(arange_end as i64),
                    ]),
                    Frame::Array(vec![
                        Frame::Integer(brange_start as i64),
                        Frame::Integer(brange_end as i64),
                    ]),
                ];
                if withmatchlen {
                    m.push(Frame::Integer(match_len as i64));
                }
                matches.push(Frame::Array(m));
            }
            arange_start = alen;
        }
    }
    if getidx {
        c.reply(Frame::Map(vec![
            (Frame::bulk("matches"), Frame::Array(matches)),
            (Frame::bulk("len"), Frame::Integer(i64::from(total))),
        ]));
    } else if getlen {
        c.reply(Frame::Integer(i64::from(total)));
    } else {
        c.reply(Frame::Bulk(Bytes::from(result)));
    }
}
