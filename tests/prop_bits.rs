//! Property tests for the bit-string arithmetic behind SETBIT, BITCOUNT,
//! BITPOS and BITFIELD (`herald::util::bits`) and for the `long double`
//! emulation behind INCRBYFLOAT (`herald::util::long_double`).
//!
//! The references are written the plain way: one bit at a time, and
//! overflow decided with 128-bit integers, which cannot overflow here.

use herald::util::bits::{self, Overflow};
use herald::util::long_double as ld;
use proptest::prelude::*;

/// The bit at `i` of `s`, most significant bit of the first byte first.
fn bit_at(s: &[u8], i: u64) -> bool {
    s.get((i / 8) as usize)
        .is_some_and(|b| (b >> (7 - i % 8)) & 1 == 1)
}

fn overflow_kind() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::Wrap),
        Just(Overflow::Sat),
        Just(Overflow::Fail)
    ]
}

/// What a signed field of `bits` bits should hold after `value + incr`,
/// or None when FAIL refuses it.
fn signed_reference(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let min = -(1i128 << (bits - 1));
    let max = (1i128 << (bits - 1)) - 1;
    let sum = i128::from(value) + i128::from(incr);
    if (min..=max).contains(&sum) {
        return Some(sum as i64);
    }
    match ow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if sum > max { max as i64 } else { min as i64 }),
        Overflow::Wrap => {
            let m = sum.rem_euclid(1i128 << bits);
            Some(if m > max {
                (m - (1i128 << bits)) as i64
            } else {
                m as i64
            })
        }
    }
}

proptest! {
    #[test]
    fn fields_read_back_what_was_written(
        mut s in proptest::collection::vec(any::<u8>(), 16..40),
        offset in 0u64..64,
        bits in 1u32..=64,
        value in any::<u64>(),
    ) {
        let before = s.clone();
        bits::set_unsigned(&mut s, offset, bits, value);
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        prop_assert_eq!(bits::get_unsigned(&s, offset, bits), value & mask);
        // Bits outside the field are untouched.
        for i in 0..(s.len() as u64 * 8) {
            if i < offset || i >= offset + u64::from(bits) {
                prop_assert_eq!(bit_at(&s, i), bit_at(&before, i));
            }
        }
        let signed = bits::get_signed(&s, offset, bits);
        let expect = if bits < 64 && value & (1u64 << (bits - 1)) != 0 {
            ((value & mask) | !mask) as i64
        } else {
            (value & mask) as i64
        };
        prop_assert_eq!(signed, expect);
    }

    #[test]
    fn signed_overflow_as_128_bit_arithmetic(
        bits in 1u32..=64,
        raw in any::<i64>(),
        incr in any::<i64>(),
        ow in overflow_kind(),
    ) {
        // A value the field can hold, as BITFIELD reads it.
        let value = if bits == 64 { raw } else { raw >> (64 - bits) };
        let (of, limit) = bits::check_signed(value, incr, bits, ow);
        let got = if of == 0 { Some(value.wrapping_add(incr)) } else { limit };
        prop_assert_eq!(got, signed_reference(value, incr, bits, ow));
    }

    #[test]
    fn unsigned_overflow_as_128_bit_arithmetic(
        bits in 1u32..=63,
        raw in any::<u64>(),
        incr in any::<i64>(),
        ow in overflow_kind(),
    ) {
        let value = raw >> (64 - bits);
        let max = (1i128 << bits) - 1;
        let sum = i128::from(value) + i128::from(incr);
        let expect = if (0..=max).contains(&sum) {
            Some(sum as u64)
        } else {
            match ow {
                Overflow::Fail => None,
                Overflow::Sat => Some(if sum > max { max as u64 } else { 0 }),
                Overflow::Wrap => Some(sum.rem_euclid(1i128 << bits) as u64),
            }
        };
        let (of, limit) = bits::check_unsigned(value, incr, bits, ow);
        let got = if of == 0 { Some(value.wrapping_add(incr as u64)) } else { limit };
        prop_assert_eq!(got, expect);
    }

    #[test]
    fn popcount_and_first_bit_as_bit_by_bit(
        s in proptest::collection::vec(prop_oneof![Just(0u8), Just(0xffu8), any::<u8>()], 0..80),
        bit in any::<bool>(),
    ) {
        let n = s.len() as u64 * 8;
        let count = (0..n).filter(|&i| bit_at(&s, i)).count() as u64;
        prop_assert_eq!(bits::popcount(&s), count);
        let first = (0..n).find(|&i| bit_at(&s, i) == bit).map(|i| i as i64);
        let expect = first.unwrap_or(if bit { -1 } else { n as i64 });
        prop_assert_eq!(bits::first_bit(&s, bit), expect);
    }

    #[test]
    fn long_double_integers_add_exactly(a in any::<i64>(), b in any::<i64>()) {
        let (Some(x), Some(y)) = (ld::parse(a.to_string().as_bytes()), ld::parse(b.to_string().as_bytes())) else {
            return Err(TestCaseError::fail("integer refused"));
        };
        let sum = i128::from(a) + i128::from(b);
        // 64 bits of mantissa hold every sum below 2^64 exactly.
        if sum.unsigned_abs() < (1u128 << 64) {
            prop_assert_eq!(ld::format_human(ld::add(x, y)), sum.to_string());
        }
        prop_assert_eq!(ld::add(x, y), ld::add(y, x));
    }

    #[test]
    fn long_double_short_decimals_print_back(
        int in 0u64..10,
        frac in 0u64..1_000_000_000,
        neg in any::<bool>(),
    ) {
        // %.17Lf prints 17 decimals: with one integer digit that is 18
        // significant digits, within the 19 a long double keeps, so the
        // text comes back (trailing zeros trimmed). With more integer
        // digits Redis itself prints noise (512.027626032 gives
        // 512.02762603200000002 on redis-server).
        let text = format!("{}{}.{:09}", if neg { "-" } else { "" }, int, frac);
        let v = ld::parse(text.as_bytes());
        prop_assert!(v.is_some());
        let mut expect = text.trim_end_matches('0').trim_end_matches('.').to_string();
        if expect == "-0" {
            expect = "0".into();
        }
        prop_assert_eq!(ld::format_human(v.unwrap_or(ld::LongDouble::Nan)), expect);
    }

    #[test]
    fn long_double_x_minus_x_is_zero(text in "-?[0-9]{1,20}(\\.[0-9]{1,20})?(e-?[0-9]{1,3})?") {
        if let Some(x) = ld::parse(text.as_bytes()) {
            let neg = if let Some(t) = text.strip_prefix('-') { t.to_string() } else { format!("-{text}") };
            let y = ld::parse(neg.as_bytes());
            prop_assert!(y.is_some());
            prop_assert_eq!(ld::format_human(ld::add(x, y.unwrap_or(ld::LongDouble::Nan))), "0");
        }
    }
}
