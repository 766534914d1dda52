//! Bit-level arithmetic on byte strings as Redis's `bitops.c` does it:
//! bit 0 is the most significant bit of the first byte. Used by SETBIT,
//! BITCOUNT, BITPOS and BITFIELD; kept apart from the commands so that
//! the arithmetic (overflow rules, signed fields, edge masks) can be
//! tested on its own.

/// How BITFIELD SET / INCRBY treat a value that does not fit its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Modular arithmetic (the default).
    Wrap,
    /// Clamp to the field's minimum or maximum.
    Sat,
    /// Refuse the write (the command replies nil for it).
    Fail,
}

/// The bit at position `offset` of `s` (0 past the end).
pub fn get_bit(s: &[u8], offset: u64) -> bool {
    let byte = offset >> 3;
    let bit = 7 - (offset & 7);
    usize::try_from(byte)
        .ok()
        .and_then(|b| s.get(b))
        .is_some_and(|v| (v >> bit) & 1 == 1)
}

/// Sets the bit at `offset`; the caller has made `s` long enough.
fn put_bit(s: &mut [u8], offset: u64, on: bool) {
    let bit = 7 - (offset & 7);
    if let Some(v) = usize::try_from(offset >> 3).ok().and_then(|b| s.get_mut(b)) {
        if on {
            *v |= 1 << bit;
        } else {
            *v &= !(1 << bit);
        }
    }
}

/// Redis's `getUnsignedBitfield`: `bits` (1..=64) bits from `offset`, the
/// first one the most significant; bits past the end read as 0.
pub fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..u64::from(bits) {
        v = (v << 1) | u64::from(get_bit(s, offset + j));
    }
    v
}

/// Redis's `getSignedBitfield`: the field read as two's complement.
pub fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits);
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Redis's `setUnsignedBitfield`: writes the low `bits` bits of `value`
/// at `offset` (the caller has made `s` long enough).
pub fn set_unsigned(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let on = value & (1u64 << (u64::from(bits) - 1 - j)) != 0;
        put_bit(s, offset + j, on);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: 0 if `value + incr` fits an
/// unsigned field of `bits` (1..=63) bits, 1 on overflow, -1 on
/// underflow, with the value to store instead under WRAP and SAT.
pub fn check_unsigned(value: u64, incr: i64, bits: u32, ow: Overflow) -> (i32, Option<u64>) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = 0u64.wrapping_sub(value) as i64;
    let wrap = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        };
        (1, limit)
    } else if incr < 0 && incr < minincr {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        };
        (-1, limit)
    } else {
        (0, None)
    }
}

/// Redis's `checkSignedBitfieldOverflow`: as [`check_unsigned`] for a
/// signed field of `bits` (1..=64) bits.
pub fn check_signed(value: i64, incr: i64, bits: u32, ow: Overflow) -> (i32, Option<i64>) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let msb = 1u64 << (bits - 1);
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        };
        (1, limit)
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        let limit = match ow {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        };
        (-1, limit)
    } else {
        (0, None)
    }
}

/// Number of set bits in `s`.
pub fn popcount(s: &[u8]) -> u64 {
    // Whole 8-byte words: BITCOUNT of a 512 MB string must not go a byte
    // at a time.
    let words = s.chunks_exact(8);
    let tail = words.remainder();
    let mut count = 0u64;
    for w in words {
        count +=
            <[u8; 8]>::try_from(w).map_or(0, |a| u64::from(u64::from_ne_bytes(a).count_ones()));
    }
    count + tail.iter().map(|b| u64::from(b.count_ones())).sum::<u64>()
}

/// Redis's `redisBitpos`: the position of the first bit equal to `bit`
/// in `s`; if there is none, -1 when looking for a 1, and `8 * len` when
/// looking for a 0 (the string is taken as padded with zeros on the
/// right).
pub fn first_bit(s: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0u8 } else { 0xff };
    match s.iter().position(|&b| b != skip) {
        Some(i) => {
            let b = s[i];
            let within = if bit {
                b.leading_zeros()
            } else {
                (!b).leading_zeros()
            };
            i as i64 * 8 + i64::from(within)
        }
        None if bit => -1,
        None => s.len() as i64 * 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut s = vec![0u8; 2];
        set_unsigned(&mut s, 7, 5, 23);
        assert_eq!(s, [0b0000_0001, 0b0111_0000]);
        assert_eq!(get_unsigned(&s, 7, 5), 23);
        assert_eq!(get_signed(&s, 7, 5), 23 - 32);
        assert_eq!(get_unsigned(&s, 100, 8), 0);
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(check_unsigned(255, 1, 8, Overflow::Wrap), (1, Some(0)));
        assert_eq!(check_unsigned(255, 1, 8, Overflow::Sat), (1, Some(255)));
        assert_eq!(check_unsigned(0, -1, 8, Overflow::Sat), (-1, Some(0)));
        assert_eq!(check_unsigned(0, -1, 8, Overflow::Wrap), (-1, Some(255)));
        assert_eq!(check_signed(127, 1, 8, Overflow::Wrap), (1, Some(-128)));
        assert_eq!(check_signed(-128, -1, 8, Overflow::Sat), (-1, Some(-128)));
        assert_eq!(
            check_signed(i64::MAX, 1, 64, Overflow::Wrap),
            (1, Some(i64::MIN))
        );
        assert_eq!(check_signed(5, 0, 64, Overflow::Fail), (0, None));
    }

    #[test]
    fn bit_positions() {
        assert_eq!(first_bit(&[0, 0x10], true), 11);
        assert_eq!(first_bit(&[0, 0], true), -1);
        assert_eq!(first_bit(&[0xff, 0xff], false), 16);
        assert_eq!(first_bit(&[0xff, 0xfe], false), 15);
        assert_eq!(popcount(b"foobar"), 26);
        assert_eq!(popcount(&[0xffu8; 37]), 296);
    }
}
