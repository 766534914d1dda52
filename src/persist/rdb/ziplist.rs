//! The compact encodings older RDB payloads carry and Redis 7.0 still
//! reads: the ziplist (`src/ziplist.c`, lists, hashes and sorted sets
//! before 7.0), the zipmap (`src/zipmap.c`, hashes before 2.6), and the
//! intset (`src/intset.c`, small integer sets, still written by 7.0).

use super::listpack::canonical_i64;

/// Every element of a ziplist blob (integers as decimal text), checked
/// as `ziplistValidateIntegrity` does: header, each entry inside the blob,
/// previous-length fields matching, the terminator last, the count when
/// known. None if anything is wrong.
pub fn decode_ziplist(zl: &[u8]) -> Option<Vec<Vec<u8>>> {
    let header = zl.get(..10)?;
    let total = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let count = u16::from_le_bytes([header[8], header[9]]) as usize;
    if total != zl.len() || total < 11 {
        return None;
    }
    let end = zl.len() - 1;
    if zl[end] != 0xFF {
        return None;
    }
    let mut out = Vec::with_capacity(count.min((end - 10) / 2));
    let mut p = 10;
    let mut prev_len = 0usize;
    while p < end {
        let start = p;
        // The previous entry's length.
        let first = *zl.get(p)?;
        let prev = if first < 254 {
            p += 1;
            first as usize
        } else if first == 254 {
            let h = zl.get(p + 1..p + 5)?;
            p += 5;
            u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize
        } else {
            return None;
        };
        if prev != prev_len {
            return None;
        }
        let enc = *zl.get(p)?;
        let item = match enc >> 6 {
            0 => {
                let n = (enc & 0x3F) as usize;
                let s = zl.get(p + 1..p + 1 + n)?.to_vec();
                p += 1 + n;
                s
            }
            1 => {
                let n = (((enc & 0x3F) as usize) << 8) | *zl.get(p + 1)? as usize;
                let s = zl.get(p + 2..p + 2 + n)?.to_vec();
                p += 2 + n;
                s
            }
            2 => {
                if enc != 0x80 {
                    return None;
                }
                let h = zl.get(p + 1..p + 5)?;
                let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                p += 5;
                let s = zl.get(p..p.checked_add(n)?)?.to_vec();
                p += n;
                s
            }
            _ => {
                let (v, n) = match enc {
                    0xC0 => {
                        let h = zl.get(p + 1..p + 3)?;
                        (i16::from_le_bytes([h[0], h[1]]) as i64, 2)
                    }
                    0xD0 => {
                        let h = zl.get(p + 1..p + 5)?;
                        (i32::from_le_bytes([h[0], h[1], h[2], h[3]]) as i64, 4)
                    }
                    0xE0 => {
                        let h = zl.get(p + 1..p + 9)?;
                        (i64::from_le_bytes(h.try_into().ok()?), 8)
                    }
                    0xF0 => {
                        let h = zl.get(p + 1..p + 4)?;
                        ((i32::from_le_bytes([0, h[0], h[1], h[2]]) >> 8) as i64, 3)
                    }
                    0xFE => (*zl.get(p + 1)? as i8 as i64, 1),
                    0xF1..=0xFD => ((enc & 0x0F) as i64 - 1, 0),
                    _ => return None,
                };
                p += 1 + n;
                itoa::Buffer::new().format(v).as_bytes().to_vec()
            }
        };
        prev_len = p - start;
        out.push(item);
    }
    if p != end || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

/// The field/value pairs of a zipmap blob, or None if it is malformed.
pub fn decode_zipmap(zm: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut p = 1;
    let len = |p: &mut usize| -> Option<usize> {
        let b = *zm.get(*p)?;
        if b < 254 {
            *p += 1;
            Some(b as usize)
        } else if b == 254 {
            let h = zm.get(*p + 1..*p + 5)?;
            *p += 5;
            Some(u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize)
        } else {
            None
        }
    };
    let mut out = Vec::new();
    loop {
        if *zm.get(p)? == 255 {
            return (p + 1 == zm.len()).then_some(out);
        }
        let klen = len(&mut p)?;
        let key = zm.get(p..p.checked_add(klen)?)?.to_vec();
        p += klen;
        let vlen = len(&mut p)?;
        let free = *zm.get(p)? as usize;
        p += 1;
        let value = zm.get(p..p.checked_add(vlen)?)?.to_vec();
        p += vlen + free;
        out.push((key, value));
    }
}

/// The members of an intset blob in order, or None if it is malformed
/// (bad width, size not matching the count, members not strictly
/// increasing).
pub fn decode_intset(is: &[u8]) -> Option<Vec<i64>> {
    let h = is.get(..8)?;
    let width = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let count = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width)?.checked_add(8)? != is.len() {
        return None;
    }
    let out: Vec<i64> = is[8..]
        .chunks_exact(width)
        .map(|c| match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
        .collect();
    out.windows(2).all(|w| w[0] < w[1]).then_some(out)
}

/// An intset of `members` (canonical integers), in the narrowest width
/// that holds them all, as Redis's `intsetAdd` grows it.
pub fn encode_intset(members: &[&[u8]]) -> Option<Vec<u8>> {
    let mut v: Vec<i64> = members
        .iter()
        .map(|m| canonical_i64(m))
        .collect::<Option<_>>()?;
    v.sort_unstable();
    let width = v.iter().fold(2usize, |w, &x| {
        if i16::try_from(x).is_ok() {
            w
        } else if i32::try_from(x).is_ok() {
            w.max(4)
        } else {
            8
        }
    });
    let mut out = Vec::with_capacity(8 + v.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes()[..width]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ziplist_of_redis_6() {
        // RPUSH l a 1 300 -20000 70000 (a ziplist as Redis 6 writes it).
        let zl: &[u8] = b"\x1d\x00\x00\x00\x17\x00\x00\x00\x05\x00\x00\x01a\x03\xf2\x02\xc0,\x01\x04\xc0\xe0\xb1\x04\xf0p\x11\x01\xff";
        assert_eq!(
            decode_ziplist(zl).unwrap(),
            vec![
                b"a".to_vec(),
                b"1".to_vec(),
                b"300".to_vec(),
                b"-20000".to_vec(),
                b"70000".to_vec()
            ]
        );
        for cut in 0..zl.len() {
            assert!(decode_ziplist(&zl[..cut]).is_none());
        }
    }

    #[test]
    fn intset_round_trips_in_the_narrowest_width() {
        let is = encode_intset(&[b"3", b"-1", b"2"]).unwrap();
        assert_eq!(
            is,
            b"\x02\x00\x00\x00\x03\x00\x00\x00\xff\xff\x02\x00\x03\x00"
        );
        assert_eq!(decode_intset(&is).unwrap(), vec![-1, 2, 3]);
        let is = encode_intset(&[b"70000", b"1"]).unwrap();
        assert_eq!(&is[..4], b"\x04\x00\x00\x00");
        assert_eq!(decode_intset(&is).unwrap(), vec![1, 70000]);
        assert!(encode_intset(&[b"x"]).is_none());
        assert!(decode_intset(b"\x02\x00\x00\x00\x02\x00\x01\x00\x01\x00").is_none());
    }

    #[test]
    fn zipmap_pairs() {
        let zm: &[u8] = b"\x02\x01a\x01\x00b\x02cd\x01\x02xyz\xff";
        assert_eq!(
            decode_zipmap(zm).unwrap(),
            vec![
                (b"a".to_vec(), b"b".to_vec()),
                (b"cd".to_vec(), b"x".to_vec())
            ]
        );
    }
}
