//! C's `strtod` as glibc has it: Redis reads numbers with it in places
//! (cjson's decoder, SORT's weights), and what it accepts (hex, `inf`,
//! `nan(...)`, a prefix of the text) is part of their behaviour.

/// C's `strtod` (glibc's): the number at the start of `s` and how many
/// bytes it takes, or `None` when there is none. Accepts leading white
/// space, a sign, decimal numbers with an exponent, hex numbers with a
/// binary exponent, `inf`, `infinity` and `nan[(...)]` in any case.
pub fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let signed = |v: f64| if negative { -v } else { v };
    let rest = &s[i..];
    let starts_ci = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    if starts_ci(b"inf") {
        let n = if starts_ci(b"infinity") { 8 } else { 3 };
        return Some((signed(f64::INFINITY), i + n));
    }
    if starts_ci(b"nan") {
        let mut n = 3;
        if rest.get(3) == Some(&b'(') {
            let mut j = 4;
            while rest
                .get(j)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                j += 1;
            }
            if rest.get(j) == Some(&b')') {
                n = j + 1;
            }
        }
        return Some((signed(f64::NAN), i + n));
    }
    if rest.len() >= 2 && rest[0] == b'0' && rest[1] | 0x20 == b'x' {
        return Some(match hex_float(&rest[2..]) {
            Some((v, n)) => (signed(v), i + 2 + n),
            // "0x" and no digit: the number is the "0".
            None => (signed(0.0), i + 1),
        });
    }
    let digits = |from: usize| {
        let mut j = from;
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    let int_part = &s[i..int_end];
    let mut j = int_end;
    let mut frac: &[u8] = &[];
    if s.get(j) == Some(&b'.') {
        let frac_end = digits(j + 1);
        if !int_part.is_empty() || frac_end > j + 1 {
            frac = &s[j + 1..frac_end];
            j = frac_end;
        }
    }
    if int_part.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: &[u8] = b"0";
    if matches!(s.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(s.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let end = digits(k);
        if end > k {
            exp = &s[j + 1..end];
            j = end;
        }
    }
    let mut text = String::with_capacity(int_part.len() + frac.len() + exp.len() + 4);
    if negative {
        text.push('-');
    }
    let ascii = |b: &[u8]| b.iter().map(|&c| c as char).collect::<String>();
    text.push_str(if int_part.is_empty() { "0" } else { "" });
    text.push_str(&ascii(int_part));
    text.push('.');
    text.push_str(if frac.is_empty() { "0" } else { "" });
    text.push_str(&ascii(frac));
    text.push('e');
    text.push_str(&ascii(exp));
    let v = text.parse::<f64>().ok()?;
    Some((v, j))
}

/// The digits of a hex float after "0x": the value and the bytes taken.
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let hexval = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16)).map(u64::from);
    let (mut mant, mut exp, mut sticky, mut any) = (0u64, 0i64, false, false);
    let mut j = 0;
    while let Some(d) = hexval(s.get(j)) {
        any = true;
        if mant >> 56 == 0 {
            mant = (mant << 4) | d;
        } else {
            exp += 4;
            sticky |= d != 0;
        }
        j += 1;
    }
    if s.get(j) == Some(&b'.') {
        let mut k = j + 1;
        let mut frac_any = false;
        while let Some(d) = hexval(s.get(k)) {
            frac_any = true;
            if mant >> 56 == 0 {
                mant = (mant << 4) | d;
                exp -= 4;
            } else {
                sticky |= d != 0;
            }
            k += 1;
        }
        if any || frac_any {
            any = true;
            j = k;
        }
    }
    if !any {
        return None;
    }
    if matches!(s.get(j), Some(b'p' | b'P')) {
        let mut k = j + 1;
        let negative = match s.get(k) {
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
        let mut e: i64 = 0;
        while let Some(d) = s.get(k).filter(|c| c.is_ascii_digit()) {
            e = e.saturating_mul(10).saturating_add(i64::from(d - b'0'));
            k += 1;
        }
        if k > start {
            exp = exp.saturating_add(if negative { -e } else { e });
            j = k;
        }
    }
    // The sticky bit keeps rounding right when digits were dropped.
    let mut v = (mant | u64::from(sticky)) as f64;
    let mut exp = exp.clamp(-5000, 5000);
    while exp > 1000 {
        v *= 2f64.powi(1000);
        exp -= 1000;
    }
    while exp < -1000 {
        v *= 2f64.powi(-1000);
        exp += 1000;
    }
    Some((v * 2f64.powi(exp as i32), j))
}

/// True if the digits of a number before its exponent are not all zero
/// (hex digits after `0x`): then a zero or subnormal `strtod` result
/// means it underflowed, which C reports as `ERANGE`.
pub fn has_nonzero_mantissa(s: &[u8]) -> bool {
    let (digits, exponent) = match s.iter().position(|b| *b | 0x20 == b'x') {
        Some(x) => (&s[x + 1..], b'p'),
        None => (s, b'e'),
    };
    digits
        .iter()
        .take_while(|b| **b | 0x20 != exponent)
        .any(|b| b.is_ascii_hexdigit() && *b != b'0')
}

#[cfg(test)]
mod tests {
    use super::strtod;

    #[test]
    fn strtod_like_glibc() {
        let cases: &[(&str, Option<(f64, usize)>)] = &[
            ("12", Some((12.0, 2))),
            ("-1.5e3x", Some((-1500.0, 6))),
            ("1e", Some((1.0, 1))),
            ("1.e2", Some((100.0, 4))),
            ("-.5", Some((-0.5, 3))),
            (".", None),
            ("-", None),
            ("e5", None),
            ("0x1A", Some((26.0, 4))),
            ("0x1.8p1", Some((3.0, 7))),
            ("0x", Some((0.0, 1))),
            ("0xg", Some((0.0, 1))),
            ("INF", Some((f64::INFINITY, 3))),
            ("-infinity", Some((f64::NEG_INFINITY, 9))),
            ("1e99999999999999999999", Some((f64::INFINITY, 22))),
            ("1e-99999999999999999999", Some((0.0, 23))),
        ];
        for (s, want) in cases {
            assert_eq!(strtod(s.as_bytes()), *want, "{s}");
        }
        let (n, len) = strtod(b"nan(123)x").unwrap_or((0.0, 0));
        assert!(n.is_nan() && len == 8);
    }
}
