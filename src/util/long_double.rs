//! C's `long double` on x86-64 (the x87 80-bit extended format: a 64-bit
//! mantissa, exponents down to 2^-16445 with subnormals) for the few
//! numbers Redis computes in it: INCRBYFLOAT reads both operands with
//! `strtold`, adds them in `long double` and prints the sum with
//! `%.17Lf`. Doing the same in `f64` gives other digits (`1e400` is out of
//! its range; `0.1 + 0.2` would print `0.30000000000000004`), so the
//! values are kept exactly as the x87 would hold them and every rounding
//! is done as the hardware and glibc do it (to nearest, ties to even),
//! on big integers.

use num_bigint::BigUint;

/// Exponent of the unit of the smallest subnormal (2^-16445).
const MIN_EXP: i64 = -16445;
/// Largest exponent a 64-bit mantissa may carry (below 2^16384).
const MAX_EXP: i64 = 16320;
/// Redis's `MAX_LONG_DOUBLE_CHARS`: longer texts are not numbers to it.
const MAX_CHARS: usize = 5 * 1024;

/// A `long double` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongDouble {
    /// `mant * 2^exp`, negative if `neg` (a zero mantissa is a signed zero).
    Finite { neg: bool, mant: u64, exp: i64 },
    /// Positive or negative infinity (true: negative).
    Inf(bool),
    /// Not a number.
    Nan,
}

impl LongDouble {
    /// True for a finite value (INCRBYFLOAT refuses to store any other).
    pub fn is_finite(&self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// The exact integer as a `long double` (rounded if it needs more
    /// than 64 bits, which an `i64` never does).
    pub fn from_i64(n: i64) -> LongDouble {
        round(
            n < 0,
            BigUint::from(n.unsigned_abs()),
            &BigUint::from(1u8),
            0,
        )
    }
}

/// `num / den * 2^e2`, rounded to the nearest `long double` (ties to
/// even), with subnormals and overflow to infinity.
fn round(neg: bool, num: BigUint, den: &BigUint, e2: i64) -> LongDouble {
    if num.bits() == 0 {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    // Scale so that the quotient has 66 or 67 bits: enough for the 64
    // kept, the rounding bit, and more.
    let s = 66 - (num.bits() as i64 - den.bits() as i64);
    let (q, sticky) = if s >= 0 {
        let n = num << (s as u64);
        let q = &n / den;
        let exact = &q * den == n;
        (q, !exact)
    } else {
        let d = den << ((-s) as u64);
        let q = &num / &d;
        let exact = &q * &d == num;
        (q, !exact)
    };
    let exp = e2 - s;
    let mut k = q.bits() as i64 - 64;
    if exp + k < MIN_EXP {
        k = MIN_EXP - exp;
    }
    let k = k.max(0) as u64;
    let kept = &q >> k;
    let mut mant: u128 = kept.iter_u64_digits().next().map_or(0, u128::from);
    if k > 0 {
        let dropped = &q - (&kept << k);
        let half = BigUint::from(1u8) << (k - 1);
        let up = match dropped.cmp(&half) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => sticky || mant & 1 == 1,
            std::cmp::Ordering::Less => false,
        };
        if up {
            mant += 1;
        }
    }
    let mut e = exp + k as i64;
    if mant == 1u128 << 64 {
        mant >>= 1;
        e += 1;
    }
    if mant == 0 {
        return LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    if e > MAX_EXP {
        return LongDouble::Inf(neg);
    }
    LongDouble::Finite {
        neg,
        mant: mant as u64,
        exp: e,
    }
}

fn pow(base: u32, n: u64) -> BigUint {
    BigUint::from(base).pow(n as u32)
}

/// Redis's `string2ld`: the whole text must be a number as `strtold`
/// reads it (decimal or hex, `inf` / `infinity`), with no leading
/// white space, and neither NaN nor out of range (an overflow, or an
/// underflow to zero); None otherwise.
pub fn parse(s: &[u8]) -> Option<LongDouble> {
    if s.is_empty() || s.len() >= MAX_CHARS {
        return None;
    }
    let mut i = 0;
    let neg = match s[0] {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let rest = &s[i..];
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Some(LongDouble::Inf(neg));
    }
    let hex = rest.len() > 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x';
    let (digits_start, radix, exp_char) = if hex { (2, 16, b'p') } else { (0, 10, b'e') };
    let body = &rest[digits_start..];
    let mut j = 0;
    let mut int_digits = Vec::new();
    let mut frac_digits = 0i64;
    let mut seen_dot = false;
    while j < body.len() {
        let ch = body[j];
        if ch == b'.' && !seen_dot {
            seen_dot = true;
        } else if (ch as char).is_digit(radix) {
            int_digits.push(ch);
            if seen_dot {
                frac_digits += 1;
            }
        } else {
            break;
        }
        j += 1;
    }
    if int_digits.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if j < body.len() && (body[j] | 0x20) == exp_char {
        let mut k = j + 1;
        let eneg = match body.get(k) {
            Some(b'-') => {
                k += 1;
                true
            }
            Some(b'+') => {
                k += 1;
                false
            }
            _ => false,
        };
        let start = k;
        while k < body.len() && body[k].is_ascii_digit() {
            exp = (exp * 10 + i64::from(body[k] - b'0')).min(1 << 40);
            k += 1;
        }
        if k == start {
            return None;
        }
        if eneg {
            exp = -exp;
        }
        j = k;
    }
    if j != body.len() {
        return None;
    }
    let first = int_digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(int_digits.len());
    let sig = &int_digits[first..];
    if sig.is_empty() {
        return Some(LongDouble::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    let d = BigUint::parse_bytes(sig, radix)?;
    let one = BigUint::from(1u8);
    let v = if hex {
        let e2 = exp - 4 * frac_digits;
        let magnitude = d.bits() as i64 + e2;
        if magnitude > 16400 {
            return None;
        }
        if magnitude < -16500 {
            return None;
        }
        round(neg, d, &one, e2)
    } else {
        let e10 = exp - frac_digits;
        let magnitude = sig.len() as i64 + e10;
        if magnitude > 4935 {
            return None;
        }
        if magnitude < -4965 {
            return None;
        }
        if e10 >= 0 {
            round(neg, d * pow(10, e10 as u64), &one, 0)
        } else {
            round(neg, d, &pow(10, (-e10) as u64), 0)
        }
    };
    match v {
        LongDouble::Finite { mant: 0, .. } | LongDouble::Inf(_) => None,
        v => Some(v),
    }
}

/// `a + b` in `long double`.
pub fn add(a: LongDouble, b: LongDouble) -> LongDouble {
    use LongDouble::*;
    match (a, b) {
        (Nan, _) | (_, Nan) => Nan,
        (Inf(x), Inf(y)) => {
            if x == y {
                Inf(x)
            } else {
                Nan
            }
        }
        (Inf(x), _) | (_, Inf(x)) => Inf(x),
        (
            Finite {
                neg: na,
                mant: ma,
                exp: ea,
            },
            Finite {
                neg: nb,
                mant: mb,
                exp: eb,
            },
        ) => {
            if ma == 0 && mb == 0 {
                return Finite {
                    neg: na && nb,
                    mant: 0,
                    exp: 0,
                };
            }
            if ma == 0 {
                return b;
            }
            if mb == 0 {
                return a;
            }
            let e = ea.min(eb);
            let x = BigUint::from(ma) << ((ea - e) as u64);
            let y = BigUint::from(mb) << ((eb - e) as u64);
            let one = BigUint::from(1u8);
            if na == nb {
                round(na, x + y, &one, e)
            } else {
                match x.cmp(&y) {
                    std::cmp::Ordering::Greater => round(na, x - y, &one, e),
                    std::cmp::Ordering::Less => round(nb, y - x, &one, e),
                    std::cmp::Ordering::Equal => Finite {
                        neg: false,
                        mant: 0,
                        exp: 0,
                    },
                }
            }
        }
    }
}

/// Redis's `ld2string(..., LD_STR_HUMAN)`: `%.17Lf` (glibc: exact
/// digits, the last rounded to nearest, ties to even), trailing zeros
/// and a trailing point removed, and `-0` written `0`. Infinity and NaN,
/// which INCRBYFLOAT never stores, are written `inf`, `-inf`, `nan`.
pub fn format_human(v: LongDouble) -> String {
    let (neg, mant, exp) = match v {
        LongDouble::Finite { neg, mant, exp } => (neg, mant, exp),
        LongDouble::Inf(true) => return "-inf".into(),
        LongDouble::Inf(false) => return "inf".into(),
        LongDouble::Nan => return "nan".into(),
    };
    let scaled = BigUint::from(mant) * pow(10, 17);
    let units = if exp >= 0 {
        scaled << (exp as u64)
    } else {
        let sh = (-exp) as u64;
        let q = &scaled >> sh;
        let rem = &scaled - (&q << sh);
        let half = BigUint::from(1u8) << (sh - 1);
        let up = match rem.cmp(&half) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => q.bit(0),
            std::cmp::Ordering::Less => false,
        };
        if up {
            q + 1u8
        } else {
            q
        }
    };
    let mut digits = units.to_str_radix(10);
    if digits.len() < 18 {
        digits = format!("{}{}", "0".repeat(18 - digits.len()), digits);
    }
    let (int, frac) = digits.split_at(digits.len() - 17);
    let frac = frac.trim_end_matches('0');
    let mut out = String::with_capacity(digits.len() + 2);
    if neg {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if out == "-0" {
        out = "0".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let (Some(x), Some(y)) = (parse(a.as_bytes()), parse(b.as_bytes())) else {
            return "invalid".into();
        };
        let s = add(x, y);
        if !s.is_finite() {
            return "nan-or-inf".into();
        }
        format_human(s)
    }

    #[test]
    fn as_redis_prints_them() {
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("1", "-1.1"), "-0.1");
        assert_eq!(sum("10.5", "0.1"), "10.6");
        assert_eq!(sum("5.0e3", "200"), "5200");
        assert_eq!(sum("0.02439024390243902", "-0.024390243902439025"), "0");
        assert_eq!(sum("1", "1e4933"), "invalid");
        assert_eq!(sum("1", "1e-5000"), "invalid");
        assert_eq!(sum("inf", "1"), "nan-or-inf");
        assert_eq!(sum("1", "nan"), "invalid");
        assert_eq!(sum(" 1", "1"), "invalid");
        assert_eq!(sum("1e", "1"), "invalid");
        assert_eq!(sum("0x10", "1"), "17");
        assert_eq!(sum("0", "-0"), "0");
        assert!(sum("0", "1e400").starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"));
    }
}
