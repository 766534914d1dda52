//! HyperLogLog values laid out byte for byte as redis-server 7.0 stores
//! them (`hyperloglog.c`), so that GET of an HLL returns Redis's bytes and
//! a value SET from Redis's bytes works with PFCOUNT.
//!
//! An HLL is an ordinary string value: a 16-byte header (`HYLL`, the
//! encoding byte, three unused bytes, the cached cardinality as 64-bit
//! little endian whose top bit means "stale"), then the registers, either
//! *dense* (16384 six-bit registers packed LSB first, 12288 bytes) or
//! *sparse* (run-length opcodes: `00xxxxxx` ZERO, `01xxxxxx yyyyyyyy`
//! XZERO, `1vvvvvxx` VAL). New HLLs are sparse and are promoted to dense
//! when a register exceeds 32 or the value would outgrow
//! `hll-sparse-max-bytes`.
//!
//! The sparse update keeps Redis's exact opcode sequence (split, then
//! merge of adjacent equal VALs within five opcodes), including what it
//! does on corrupted input, since a later GET shows the bytes. Every
//! function here takes client-supplied bytes and never panics on them.

/// Header length: magic, encoding, 3 unused bytes, cached cardinality.
pub const HDR: usize = 16;
/// Number of registers (P = 14).
pub const REGISTERS: usize = 1 << P;
/// Total length of a dense HLL.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
/// The encoding byte of a dense HLL.
pub const DENSE: u8 = 0;
/// The encoding byte of a sparse HLL.
pub const SPARSE: u8 = 1;

const P: usize = 14;
const Q: usize = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
const P_MASK: u64 = (REGISTERS - 1) as u64;
const SEED: u64 = 0xadc8_3b19;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

const XZERO_BIT: u8 = 0x40;
const VAL_BIT: u8 = 0x80;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;

/// A sparse HLL whose opcodes do not cover exactly the 16384 registers
/// (Redis answers `-INVALIDOBJ Corrupted HLL object detected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// MurmurHash64A as Redis has it (little-endian reads, Redis's tail).
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    // C computes `seed ^ (len * m)` with an `int` length.
    let len = key.len() as i32 as i64 as u64;
    let mut h = seed ^ len.wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(c);
        let mut k = u64::from_le_bytes(buf);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Redis's `hllPatLen`: the register an element goes to and the length
/// of its `000...1` pattern (1 to Q + 1).
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmur64a(ele, SEED);
    let index = (hash & P_MASK) as usize;
    hash >>= P;
    hash |= 1u64 << Q;
    (index, hash.trailing_zeros() as u8 + 1)
}

/// A new, empty sparse HLL (one XZERO covering every register).
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    push_xzero(&mut v, REGISTERS);
    v
}

/// Redis's `isHLLObjectOrReply` on a string: magic, known encoding, and
/// the exact length for dense.
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HDR
        && &s[..4] == b"HYLL"
        && s[4] <= SPARSE
        && (s[4] != DENSE || s.len() == DENSE_SIZE)
}

/// The encoding byte (of a value [`is_valid`] accepted).
pub fn encoding(s: &[u8]) -> u8 {
    s.get(4).copied().unwrap_or(DENSE)
}

/// The cached cardinality, if it is not marked stale.
pub fn cached(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s.get(8..HDR)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

/// Stores `card` as the cached cardinality.
pub fn set_cached(s: &mut [u8], card: u64) {
    if let Some(c) = s.get_mut(8..HDR) {
        c.copy_from_slice(&card.to_le_bytes());
    }
}

/// Marks the cached cardinality stale (`HLL_INVALIDATE_CACHE`).
pub fn invalidate(s: &mut [u8]) {
    if let Some(b) = s.get_mut(15) {
        *b |= 0x80;
    }
}

/// Register `i` of dense registers (`HLL_DENSE_GET_REGISTER`; the byte
/// after the last one reads as 0, as the string's terminator does in C).
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u32) as u8
}

/// Sets register `i` of dense registers to `val` (`HLL_DENSE_SET_REGISTER`).
pub fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = val as u32;
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((REGISTER_MAX as u32) << fb) as u8;
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REGISTER_MAX as u32) >> (8 - fb)) as u8;
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// `hllDenseSet`: raises register `i` to `count`; true if it changed.
pub fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == XZERO_BIT
}
fn is_val(b: u8) -> bool {
    b & VAL_BIT != 0
}
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
fn xzero_len(b: u8, b1: u8) -> usize {
    ((((b & 0x3f) as usize) << 8) | b1 as usize) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
fn val_op(val: u8, len: usize) -> u8 {
    ((val.wrapping_sub(1)) << 2 | (len.wrapping_sub(1) as u8 & 3)) | VAL_BIT
}
fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push((l >> 8) as u8 | XZERO_BIT);
    v.push((l & 0xff) as u8);
}
fn push_zeros(v: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(v, len);
    } else {
        v.push((len - 1) as u8);
    }
}

/// One decoded sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `len` registers at zero (ZERO or XZERO).
    Zeros {
        /// Registers covered.
        len: usize,
        /// Whether it is the two-byte XZERO form.
        long: bool,
    },
    /// `len` registers (1 to 4) at `value` (1 to 32).
    Val {
        /// The registers' value.
        value: u8,
        /// Registers covered.
        len: usize,
    },
}

/// The opcodes of a sparse HLL's register bytes (after the header); an
/// XZERO cut short reads its second byte as 0, as C reads the terminator.
pub fn ops(regs: &[u8]) -> impl Iterator<Item = Op> + '_ {
    let mut p = 0;
    std::iter::from_fn(move || {
        let b = *regs.get(p)?;
        if is_zero(b) {
            p += 1;
            Some(Op::Zeros {
                len: zero_len(b),
                long: false,
            })
        } else if is_xzero(b) {
            let b1 = regs.get(p + 1).copied().unwrap_or(0);
            p += 2;
            Some(Op::Zeros {
                len: xzero_len(b, b1),
                long: true,
            })
        } else {
            p += 1;
            Some(Op::Val {
                value: val_value(b),
                len: val_len(b),
            })
        }
    })
}

/// Encodes opcodes as sparse register bytes (no header).
#[cfg(test)]
pub fn encode_ops(ops: &[Op]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ops.len() * 2);
    for op in ops {
        match *op {
            Op::Zeros { len, long: true } => push_xzero(&mut v, len),
            Op::Zeros { len, long: false } => v.push((len - 1) as u8),
            Op::Val { value, len } => v.push(val_op(value, len)),
        }
    }
    v
}

/// Walks the runs of sparse register bytes: `f(first register, value,
/// length)` for each opcode (value 0 for ZERO / XZERO). Corrupt if a run
/// goes past the last register or the runs do not cover all of them (as
/// the patched Redis 7.0.15 checks, CVE-2025-32023); runs before the
/// fault have been visited.
pub fn for_each_run(regs: &[u8], mut f: impl FnMut(usize, u8, usize)) -> Result<(), Corrupt> {
    let mut idx = 0usize;
    for op in ops(regs) {
        let (value, len) = match op {
            Op::Zeros { len, .. } => (0, len),
            Op::Val { value, len } => (value, len),
        };
        if idx + len > REGISTERS {
            return Err(Corrupt);
        }
        f(idx, value, len);
        idx += len;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// `hllSparseToDense`: the dense form of a sparse HLL (header copied,
/// cached cardinality included); a dense input is returned as is.
pub fn to_dense(s: &[u8]) -> Result<Vec<u8>, Corrupt> {
    if encoding(s) == DENSE {
        return Ok(s.to_vec());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(s.get(..HDR).ok_or(Corrupt)?);
    dense[4] = DENSE;
    for_each_run(&s[HDR..], |idx, value, len| {
        if value != 0 {
            for i in idx..idx + len {
                dense_put(&mut dense[HDR..], i, value);
            }
        }
    })?;
    Ok(dense)
}

/// `hllSparseSet`: raises register `index` to `count` in a sparse HLL,
/// promoting it to dense when the value does not fit the sparse form or
/// the string would exceed `max_bytes`. Ok(true) if a register changed.
pub fn sparse_set(
    hll: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(hll, index, count);
    }
    // Work as C does on an sds: a terminating zero byte after `len`.
    let mut len = hll.len();
    let end0 = len;
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    let byte = |h: &Vec<u8>, i: usize| h.get(i).copied().unwrap_or(0);
    while p < end0 {
        let b = byte(hll, p);
        let oplen;
        if is_zero(b) {
            span = zero_len(b);
            oplen = 1;
        } else if is_val(b) {
            span = val_len(b);
            oplen = 1;
        } else {
            span = xzero_len(b, byte(hll, p + 1));
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end0 {
        return Err(Corrupt);
    }
    let b = byte(hll, p);
    let next = if is_xzero(b) { p + 2 } else { p + 1 };
    let next = (next < end0).then_some(next);
    let (zero, xzero, runlen) = if is_zero(b) {
        (true, false, zero_len(b))
    } else if is_xzero(b) {
        (false, true, xzero_len(b, byte(hll, p + 1)))
    } else {
        (false, false, val_len(b))
    };
    let mut end = end0;
    let mut updated = false;
    if !zero && !xzero {
        if val_value(b) >= count {
            return Ok(false);
        }
        if runlen == 1 {
            hll[p] = val_op(count, 1);
            updated = true;
        }
    }
    if !updated && zero && runlen == 1 {
        hll[p] = val_op(count, 1);
        updated = true;
    }
    if !updated {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if zero || xzero {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen: usize = if xzero { 2 } else { 1 };
        let delta = seq.len() as isize - oldlen as isize;
        if delta > 0 && len + delta as usize > max_bytes {
            return promote(hll, index, count);
        }
        // The sds buffer: the bytes, its terminator, room for the split.
        let newlen = (len as isize + delta) as usize;
        let room = (len + 1).max(p + seq.len()).max(newlen + 1) + 3;
        hll.resize(room, 0);
        if delta != 0 {
            if let Some(next) = next {
                let to = (next as isize + delta) as usize;
                hll.copy_within(next..end, to);
            }
        }
        len = newlen;
        hll[p..p + seq.len()].copy_from_slice(&seq);
        end = (end as isize + delta) as usize;
        hll.truncate(len);
    }
    // Merge adjacent VALs of the same value, up to five opcodes from prev.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < end && scan > 0 {
        scan -= 1;
        let b = hll[p];
        if is_xzero(b) {
            p += 2;
            continue;
        } else if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < end && is_val(hll[p + 1]) {
            let v1 = val_value(b);
            let v2 = val_value(hll[p + 1]);
            if v1 == v2 {
                let l = val_len(b) + val_len(hll[p + 1]);
                if l <= VAL_MAX_LEN {
                    hll[p + 1] = val_op(v1, l);
                    hll.copy_within(p + 1..end, p);
                    end -= 1;
                    hll.truncate(end);
                    continue;
                }
            }
        }
        p += 1;
    }
    invalidate(hll);
    Ok(true)
}

fn promote(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    let mut dense = to_dense(hll)?;
    dense_set(&mut dense[HDR..], index, count);
    *hll = dense;
    Ok(true)
}

/// `hllAdd`: adds one element; Ok(true) if a register changed.
pub fn add(hll: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set(hll, index, count, max_bytes)
}

/// Raises register `index` to `count` in either encoding.
pub fn set(hll: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    match encoding(hll) {
        DENSE => Ok(dense_set(hll.get_mut(HDR..).ok_or(Corrupt)?, index, count)),
        SPARSE => sparse_set(hll, index, count, max_bytes),
        _ => Err(Corrupt),
    }
}

/// `hllMerge`: max-merges the HLL's registers into `max` (one byte per
/// register).
pub fn merge(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    let regs = s.get(HDR..).ok_or(Corrupt)?;
    if encoding(s) == DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    for_each_run(regs, |i, value, len| {
        for m in &mut max[i..i + len] {
            *m = (*m).max(value);
        }
    })
}

/// `hllCount` of a stored HLL (dense or sparse), without the cache.
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    let regs = s.get(HDR..).ok_or(Corrupt)?;
    let mut histo = [0i64; 64];
    if encoding(s) == DENSE {
        for i in 0..REGISTERS {
            histo[dense_get(regs, i) as usize] += 1;
        }
    } else {
        for_each_run(regs, |_, value, len| histo[value as usize] += len as i64)?;
    }
    Ok(estimate(&histo))
}

/// `hllCount` of raw registers (one byte each), as multi-key PFCOUNT uses.
pub fn count_raw(max: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0i64; 64];
    for &r in max.iter() {
        histo[(r & 63) as usize] += 1;
    }
    estimate(&histo)
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved estimator from the register histogram, as Redis 7.
fn estimate(histo: &[i64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// PFDEBUG DECODE's text for sparse register bytes (`z:N`, `Z:N`, `v:V,N`).
pub fn decode(regs: &[u8]) -> String {
    let mut out = String::new();
    for op in ops(regs) {
        if !out.is_empty() {
            out.push(' ');
        }
        match op {
            Op::Zeros { len, long: false } => out.push_str(&format!("z:{len}")),
            Op::Zeros { len, long: true } => out.push_str(&format!("Z:{len}")),
            Op::Val { value, len } => out.push_str(&format!("v:{value},{len}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn registers_of(s: &[u8]) -> Vec<u8> {
        let d = to_dense(s).unwrap();
        (0..REGISTERS).map(|i| dense_get(&d[HDR..], i)).collect()
    }

    #[test]
    fn empty_sparse_is_redis_bytes() {
        let s = new_sparse();
        assert_eq!(&s[..], b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert!(is_valid(&s));
        assert_eq!(count(&s), Ok(0));
        assert_eq!(cached(&s), Some(0));
    }

    #[test]
    fn murmur_matches_reference_values() {
        // Lengths 0..=9 exercise every tail case and a full block.
        assert_eq!(murmur64a(b"", 0), 0);
        let a = murmur64a(b"hello", SEED);
        assert_ne!(a, murmur64a(b"hellp", SEED));
        assert_eq!(a, murmur64a(b"hello", SEED));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
    }

    #[test]
    fn promotion_past_max_bytes() {
        let mut s = new_sparse();
        for i in 0..5000 {
            add(&mut s, format!("e{i}").as_bytes(), 3000).unwrap();
        }
        assert_eq!(encoding(&s), DENSE);
        assert_eq!(s.len(), DENSE_SIZE);
    }

    #[test]
    fn corrupted_tail_is_detected() {
        let mut s = new_sparse();
        add(&mut s, b"a", 3000).unwrap();
        s.extend_from_slice(b"hello");
        assert_eq!(count(&s), Err(Corrupt));
    }

    proptest! {
        #[test]
        fn sparse_matches_dense(elems in proptest::collection::vec(any::<Vec<u8>>(), 0..300)) {
            let mut sparse = new_sparse();
            let mut dense = to_dense(&sparse).unwrap();
            for e in &elems {
                let a = add(&mut sparse, e, 3000).unwrap();
                let b = add(&mut dense, e, 3000).unwrap();
                prop_assert_eq!(a, b);
            }
            prop_assert_eq!(encoding(&sparse), SPARSE);
            prop_assert_eq!(registers_of(&sparse), registers_of(&dense));
            prop_assert_eq!(count(&sparse), count(&dense));
            // Decoding the opcodes and encoding them again gives the bytes.
            let decoded: Vec<Op> = ops(&sparse[HDR..]).collect();
            prop_assert_eq!(encode_ops(&decoded), sparse[HDR..].to_vec());
        }

        #[test]
        fn any_bytes_never_panic(mut s in proptest::collection::vec(any::<u8>(), 0..200), e in any::<Vec<u8>>()) {
            if s.len() >= 5 {
                s[..4].copy_from_slice(b"HYLL");
                s[4] = SPARSE;
            }
            let _ = count(&s);
            let mut m = [0u8; REGISTERS];
            let _ = merge(&mut m, &s);
            let _ = to_dense(&s);
            let _ = decode(s.get(HDR..).unwrap_or(&[]));
            if is_valid(&s) {
                let _ = add(&mut s, &e, 3000);
            }
        }

        #[test]
        fn set_register_any_value(ix in 0usize..REGISTERS, v in 1u8..=51) {
            let mut s = new_sparse();
            set(&mut s, ix, v, 3000).unwrap();
            let regs = registers_of(&s);
            prop_assert_eq!(regs[ix], v);
            prop_assert_eq!(regs.iter().filter(|&&r| r != 0).count(), 1);
        }
    }
}
