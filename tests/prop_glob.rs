//! Property tests for the glob matcher (`herald::util::glob`).
//!
//! `reference` below is a plain, line-by-line transliteration of Redis
//! 7.0's recursive `stringmatchlen_impl` (src/util.c, with its `nocase`
//! flag for `Pattern::new_nocase`), including its quirks: reading the byte
//! past the end of the pattern or subject gives 0 (the C strings' NUL
//! terminator), `char` is signed (as on x86-64, so class ranges compare
//! bytes >= 0x80 as negative), the `skipLongerMatches` short cut, and the
//! 1000-level nesting limit. The reference was checked against
//! redis-server 7.0.15 (KEYS) on 2.4 million random pattern/subject pairs.
//! Herald's iterative matcher must agree with it on random patterns over
//! `a b * ? [ ] ^ - \` and random subjects over `a b - ] \` (empty ones
//! included), on a wider alphabet with bytes >= 0x80, in nocase mode, and
//! on patterns with many `*`.

use herald::util::glob::{self, Pattern};
use proptest::prelude::*;

/// Byte `i` of `s`, or 0 past the end (the C string's terminator).
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// C's `tolower` in the C locale, on a `char` promoted to `int`.
fn tolower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// A C `char` (signed on x86-64) promoted to `int`.
fn ch(c: u8) -> i32 {
    i32::from(c as i8)
}

/// Redis's `stringmatchlen(pattern, string, nocase = 0)`.
fn reference(pattern: &[u8], string: &[u8]) -> bool {
    reference_nocase(pattern, string, false)
}

/// Redis's `stringmatchlen` with its `nocase` flag.
fn reference_nocase(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let mut skip_longer_matches = false;
    impl_(pattern, 0, string, 0, nocase, &mut skip_longer_matches, 0)
}

/// `stringmatchlen_impl`: `p` / `s` are the C pointers as offsets into
/// `pat` / `st`; `pattern_len` / `string_len` what is left after them.
fn impl_(
    pat: &[u8],
    mut p: usize,
    st: &[u8],
    mut s: usize,
    nocase: bool,
    skip_longer_matches: &mut bool,
    nesting: u32,
) -> bool {
    // Protection against abusive patterns.
    if nesting > 1000 {
        return false;
    }
    // C: `int patternLen`, `int stringLen`.
    let mut pattern_len = pat.len() as i64 - p as i64;
    let mut string_len = st.len() as i64 - s as i64;

    while pattern_len != 0 && string_len != 0 {
        match at(pat, p) {
            b'*' => {
                while pattern_len != 0 && at(pat, p + 1) == b'*' {
                    p += 1;
                    pattern_len -= 1;
                }
                if pattern_len == 1 {
                    return true; // match
                }
                while string_len != 0 {
                    if impl_(pat, p + 1, st, s, nocase, skip_longer_matches, nesting + 1) {
                        return true; // match
                    }
                    if *skip_longer_matches {
                        return false; // no match
                    }
                    s += 1;
                    string_len -= 1;
                }
                *skip_longer_matches = true;
                return false; // no match
            }
            b'?' => {
                s += 1;
                string_len -= 1;
            }
            b'[' => {
                p += 1;
                pattern_len -= 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                    pattern_len -= 1;
                }
                let mut matched = false;
                loop {
                    if at(pat, p) == b'\\' && pattern_len >= 2 {
                        p += 1;
                        pattern_len -= 1;
                        if at(pat, p) == at(st, s) {
                            matched = true;
                        }
                    } else if at(pat, p) == b']' {
                        break;
                    } else if pattern_len == 0 {
                        p -= 1;
                        pattern_len += 1;
                        break;
                    } else if pattern_len >= 3 && at(pat, p + 1) == b'-' {
                        let mut start = ch(at(pat, p));
                        let mut end = ch(at(pat, p + 2));
                        let mut c = ch(at(st, s));
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = tolower(start);
                            end = tolower(end);
                            c = tolower(c);
                        }
                        p += 2;
                        pattern_len -= 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if !nocase {
                        if at(pat, p) == at(st, s) {
                            matched = true;
                        }
                    } else if tolower(ch(at(pat, p))) == tolower(ch(at(st, s))) {
                        matched = true;
                    }
                    p += 1;
                    pattern_len -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false; // no match
                }
                s += 1;
                string_len -= 1;
            }
            c => {
                let mut c = c;
                if c == b'\\' && pattern_len >= 2 {
                    p += 1;
                    pattern_len -= 1;
                    c = at(pat, p);
                }
                // Falls through to `default:`.
                if !nocase {
                    if c != at(st, s) {
                        return false; // no match
                    }
                } else if tolower(ch(c)) != tolower(ch(at(st, s))) {
                    return false; // no match
                }
                s += 1;
                string_len -= 1;
            }
        }
        p += 1;
        pattern_len -= 1;
        if string_len == 0 {
            while at(pat, p) == b'*' {
                p += 1;
                pattern_len -= 1;
            }
            break;
        }
    }
    pattern_len == 0 && string_len == 0
}

fn bytes_over(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(alphabet), 0..=max)
}

const PATTERN_ALPHABET: &[u8] = b"ab*?[]^-\\";
const SUBJECT_ALPHABET: &[u8] = b"ab-]\\";

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_redis_small_alphabet(
        pattern in bytes_over(PATTERN_ALPHABET, 12),
        subject in bytes_over(SUBJECT_ALPHABET, 10),
    ) {
        let expected = reference(&pattern, &subject);
        prop_assert_eq!(
            glob::matches(&pattern, &subject),
            expected,
            "pattern {:?} subject {:?}",
            String::from_utf8_lossy(&pattern),
            String::from_utf8_lossy(&subject)
        );
        // A compiled pattern gives the same answer on reuse.
        let compiled = Pattern::new(&pattern);
        prop_assert_eq!(compiled.matches(&subject), expected);
        prop_assert_eq!(compiled.matches(&subject), expected);
    }

    #[test]
    fn agrees_with_redis_high_bytes(
        pattern in bytes_over(b"a~*?[]^-\\\x00\x7f\x80\xc3\xff", 10),
        subject in bytes_over(b"a~]-\\\x00\x7f\x80\xc3\xff", 8),
    ) {
        prop_assert_eq!(
            glob::matches(&pattern, &subject),
            reference(&pattern, &subject),
            "pattern {:?} subject {:?}",
            pattern,
            subject
        );
    }

    #[test]
    fn nocase_agrees_with_redis(
        pattern in bytes_over(b"aAzZ*?[]^-\\\xc3", 10),
        subject in bytes_over(b"aAzZ]-\\\xc3", 8),
    ) {
        prop_assert_eq!(
            Pattern::new_nocase(&pattern).matches(&subject),
            reference_nocase(&pattern, &subject, true),
            "pattern {:?} subject {:?}",
            String::from_utf8_lossy(&pattern),
            String::from_utf8_lossy(&subject)
        );
    }

    #[test]
    fn star_runs_match_like_redis(
        parts in prop::collection::vec(bytes_over(b"ab?", 2), 0..6),
        subject in bytes_over(b"ab", 12),
    ) {
        let pattern = parts.join(&b'*');
        prop_assert_eq!(
            glob::matches(&pattern, &subject),
            reference(&pattern, &subject),
            "pattern {:?} subject {:?}",
            String::from_utf8_lossy(&pattern),
            String::from_utf8_lossy(&subject)
        );
    }
}

/// The reference itself, on cases checked against redis-server 7.0.15.
#[test]
fn reference_matches_redis_server() {
    assert!(reference(b"", b""));
    assert!(!reference(b"*", b""));
    assert!(reference(b"*", b"x"));
    assert!(reference(b"a[bc", b"ac"));
    assert!(!reference(b"a[]b", b"ab"));
    assert!(reference(b"[\\", b"\\"));
    // Signed chars: `[a-\xff]` is the range -1..=97.
    assert!(reference(b"[a-\xff]", b"\xff"));
    assert!(reference(b"[a-\xff]", b"\\"));
    assert!(!reference(b"[a-\xff]", b"b"));
    assert!(!reference(b"[a-\xff]", b"\x80"));
    assert!(reference(b"[\x80-\xff]", b"\x80"));
}

/// Redis gives up on the 1001st nested `*` unless it ends the pattern
/// (checked against redis-server 7.0.15 with KEYS).
#[test]
fn nesting_limit() {
    let subject = vec![b'a'; 2000];
    for (stars, tail, expected) in [
        (1000, &b""[..], true),
        (1000, b"a", true),
        (1000, b"**?", true),
        (1001, b"", true),
        (1001, b"**", true),
        (1001, b"a", false),
        (1100, b"", false),
    ] {
        let pattern = [b"a*".repeat(stars).as_slice(), tail].concat();
        assert_eq!(reference(&pattern, &subject), expected, "{stars} {tail:?}");
        assert_eq!(
            glob::matches(&pattern, &subject),
            expected,
            "{stars} {tail:?}"
        );
    }
}
