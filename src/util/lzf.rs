//! LZF compression as redis-server does it (liblzf 3.6's `lzf_compress`,
//! built with Redis's `lzfP.h`: `HLOG` 16, `VERY_FAST`, not `ULTRA_FAST`),
//! so that DUMP and FUNCTION DUMP payloads are byte for byte Redis's.
//!
//! The `lzf` crate decompresses any LZF stream, but its compressor does
//! not take a match in the last four bytes of the input, where liblzf
//! does, so its output differs from Redis's for most library code (which
//! ends with `end)` seen earlier in the code).
//!
//! Redis does not clear its hash table between calls (`INIT_HTAB` 0); a
//! stale entry only ever yields a match that is checked byte for byte, and
//! a cleared table is what the first call sees, so this one starts clean.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// The first two bytes at `p`, as `FRST`.
fn frst(data: &[u8], p: usize) -> u32 {
    ((data[p] as u32) << 8) | data[p + 1] as u32
}

/// `NEXT`: the hash value moved on by the byte at `p + 2`.
fn next(v: u32, data: &[u8], p: usize) -> u32 {
    (v << 8) | data[p + 2] as u32
}

/// `IDX` of `VERY_FAST` (in 32-bit unsigned arithmetic, as in C).
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// `lzf_compress(input, len, out, out_len)`: the compressed bytes, or
/// `None` (liblzf's 0) when they would not fit in `out_len` bytes.
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    if in_len == 0 || out_len == 0 {
        return None;
    }
    // Positions plus one; 0 is an empty slot (a match at position 0 is
    // never taken: liblzf wants `ref > in_data`).
    let mut htab = vec![0usize; HSIZE];
    // Room past `out_len` for the trailing literals liblzf writes after
    // its last check ("at most 3 bytes can be missing here").
    let mut out = vec![0u8; out_len + MAX_LIT + 4];
    let mut op = 1usize; // start run
    let mut lit = 0usize;
    let mut ip = 0usize;
    if in_len >= 2 {
        let mut hval = frst(input, ip);
        while ip + 2 < in_len {
            hval = next(hval, input, ip);
            let slot = idx(hval);
            let stored = htab[slot];
            htab[slot] = ip + 1;
            let found = stored
                .checked_sub(1)
                .filter(|&r| r > 0 && ip - r - 1 < MAX_OFF)
                .filter(|&r| input[r + 2] == input[ip + 2] && input[r..r + 2] == input[ip..ip + 2]);
            if let Some(r) = found {
                let off = ip - r - 1;
                let mut len = 2usize;
                let maxlen = (in_len - ip - len).min(MAX_REF);
                if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                    return None;
                }
                out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
                op -= usize::from(lit == 0); // undo run if length is zero
                                             // liblzf's unrolled loop: sixteen steps without the
                                             // `maxlen` bound when more than 16 bytes are left.
                let mut stopped = false;
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            stopped = true;
                            break;
                        }
                    }
                }
                if !stopped {
                    loop {
                        len += 1;
                        if !(len < maxlen && input[r + len] == input[ip + len]) {
                            break;
                        }
                    }
                }
                len -= 2; // len is now #octets - 1
                ip += 1;
                if len < 7 {
                    out[op] = ((off >> 8) + (len << 5)) as u8;
                    op += 1;
                } else {
                    out[op] = ((off >> 8) + (7 << 5)) as u8;
                    out[op + 1] = (len - 7) as u8;
                    op += 2;
                }
                out[op] = off as u8;
                op += 1;
                lit = 0;
                op += 1; // start run
                ip += len + 1;
                if ip + 2 >= in_len {
                    break;
                }
                ip -= 2;
                hval = frst(input, ip);
                hval = next(hval, input, ip);
                htab[idx(hval)] = ip + 1;
                ip += 1;
                hval = next(hval, input, ip);
                htab[idx(hval)] = ip + 1;
                ip += 1;
            } else {
                // one more literal byte we must copy
                if op >= out_len {
                    return None;
                }
                lit += 1;
                out[op] = input[ip];
                op += 1;
                ip += 1;
                if lit == MAX_LIT {
                    out[op - lit - 1] = (lit - 1) as u8; // stop run
                    lit = 0;
                    op += 1; // start run
                }
            }
        }
    }
    if op + 3 > out_len {
        return None;
    }
    while ip < in_len {
        lit += 1;
        out[op] = input[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    op -= usize::from(lit == 0);
    if op > out_len {
        return None;
    }
    out.truncate(op);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_lzf_crate() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec(),
            b"#!lua name=x\nredis.register_function('x', function() return 'x' end)\nredis.register_function('y', function() return 'y' end)\n".to_vec(),
            (0..5000u32).map(|i| (i * 7 % 251) as u8).collect(),
            (0..3000u32).map(|i| (i % 13) as u8).collect(),
        ];
        let mut x = 12345u32;
        inputs.push(
            (0..2000)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    b"abcd"[(x >> 16) as usize % 4]
                })
                .collect(),
        );
        for input in inputs {
            let c = compress(&input, input.len() - 4).expect("compressible");
            assert!(c.len() <= input.len() - 4);
            assert_eq!(::lzf::decompress(&c, input.len()).unwrap(), input);
        }
    }

    #[test]
    fn incompressible_input_is_refused() {
        let input: Vec<u8> = (0..64u8).collect();
        assert_eq!(compress(&input, input.len() - 4), None);
    }
}
