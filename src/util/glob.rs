//! Redis's glob matching (`stringmatchlen`), used by PSUBSCRIBE, PUBSUB
//! CHANNELS, KEYS, SCAN MATCH and CONFIG GET.
//!
//! Redis matches recursively; a hostile pattern such as `a*a*a*...` would
//! then cost deep recursion. Here a pattern is first cut into tokens (the
//! token boundaries never depend on the subject string, also not in Redis)
//! and matched iteratively with a single back-track point for the last
//! `*`, which gives the same answers because every other token consumes
//! exactly one byte. Redis's quirks are kept on purpose:
//! - an empty subject matches only an empty pattern (`*` does not match ``);
//! - an unterminated `[` class runs to the end of the pattern;
//! - inside a class, `a-z` ranges may be reversed, `\` escapes one byte,
//!   and `[]` is an empty class;
//! - range bounds and the subject byte are compared as C `char`s, which are
//!   signed: `[a-\xff]` is the range -1..=97, so it matches `\x00`..`a` and
//!   `\xff`, not `b`..`\xfe`;
//! - a trailing lone `\` matches a backslash;
//! - Redis's recursion stops at 1000 nested `*`s: a pattern whose 1001st
//!   `*` (after folding runs of `*`) is followed by anything matches
//!   nothing, while `a*` repeated 1001 times still matches `aaa...`.

/// One step of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of bytes (consecutive stars are folded into one).
    Star,
    /// `?`: any one byte.
    Any,
    /// A byte that must match exactly (plain, or escaped with `\`).
    Literal(u8),
    /// `[...]`: one byte in (or, negated, not in) the set.
    Class { negated: bool, set: Box<[u64; 4]> },
}

/// A pattern cut into tokens once, to be matched against many subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
    /// Case-insensitive (ASCII) matching, as Redis's `nocase` mode.
    nocase: bool,
    /// True when the pattern is empty (it then matches only the empty subject).
    empty: bool,
    /// True when Redis's nesting limit makes the pattern match nothing.
    hopeless: bool,
}

/// Redis's `stringmatchlen` recurses one level per `*` it passes and gives
/// up beyond this depth: its 1001st `*` fails unless it ends the pattern.
const MAX_NESTING: usize = 1000;

impl Pattern {
    /// Compiles `pattern` with Redis's rules (case-sensitive).
    pub fn new(pattern: &[u8]) -> Pattern {
        Self::compile(pattern, false)
    }

    /// Compiles `pattern` for Redis's `nocase` mode (COMMAND LIST FILTERBY
    /// PATTERN): letters match either case, except escaped ones inside a
    /// class, as in Redis.
    pub fn new_nocase(pattern: &[u8]) -> Pattern {
        Self::compile(pattern, true)
    }

    fn compile(pattern: &[u8], nocase: bool) -> Pattern {
        let p = pattern;
        let n = p.len();
        let at = |i: usize| -> u8 { p.get(i).copied().unwrap_or(0) };
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            match p[i] {
                b'*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                b'?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                b'[' => {
                    i += 1;
                    let negated = at(i) == b'^' && i < n;
                    if negated {
                        i += 1;
                    }
                    let mut set = Box::new([0u64; 4]);
                    let mut add = |c: u8| set[(c >> 6) as usize] |= 1u64 << (c & 63);
                    loop {
                        let left = n.saturating_sub(i);
                        if at(i) == b'\\' && left >= 2 {
                            i += 1;
                            add(p[i]);
                        } else if left > 0 && p[i] == b']' {
                            break;
                        } else if left == 0 {
                            // Unterminated class: it has taken the rest of the pattern.
                            break;
                        } else if left >= 3 && p[i + 1] == b'-' {
                            let (mut a, mut b) = (signed(p[i]), signed(p[i + 2]));
                            if a > b {
                                std::mem::swap(&mut a, &mut b);
                            }
                            if nocase {
                                (a, b) = (lower(a), lower(b));
                            }
                            for c in 0..=255u8 {
                                let sc = if nocase { lower(signed(c)) } else { signed(c) };
                                if (a..=b).contains(&sc) {
                                    add(c);
                                }
                            }
                            i += 2;
                        } else {
                            add(p[i]);
                            if nocase {
                                add(p[i].to_ascii_lowercase());
                                add(p[i].to_ascii_uppercase());
                            }
                        }
                        i += 1;
                    }
                    // Step over the closing `]` (no-op when unterminated).
                    i += 1;
                    tokens.push(Token::Class { negated, set });
                }
                b'\\' if n - i >= 2 => {
                    tokens.push(Token::Literal(p[i + 1]));
                    i += 2;
                }
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        // Redis gives up (no match) when its recursion reaches the 1001st
        // `*` with more pattern after it; every match would have to pass
        // through that `*`, so such a pattern matches nothing.
        let hopeless = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == Token::Star)
            .nth(MAX_NESTING)
            .is_some_and(|(i, _)| i + 1 < tokens.len());
        Pattern {
            tokens,
            nocase,
            empty: n == 0,
            hopeless,
        }
    }

    /// The literal bytes every match must start with (used to index patterns).
    pub fn literal_prefix(&self) -> Vec<u8> {
        self.tokens
            .iter()
            .map_while(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// Does `s` match this pattern?
    pub fn matches(&self, s: &[u8]) -> bool {
        if s.is_empty() {
            return self.empty;
        }
        if self.hopeless {
            return false;
        }
        let t = &self.tokens;
        let (mut ti, mut si) = (0usize, 0usize);
        // Where to resume after the last `*`: (token after it, subject position).
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            let step = match t.get(ti) {
                Some(Token::Star) => {
                    star = Some((ti + 1, si));
                    ti += 1;
                    continue;
                }
                Some(Token::Any) => true,
                Some(Token::Literal(c)) => {
                    *c == s[si] || (self.nocase && c.eq_ignore_ascii_case(&s[si]))
                }
                Some(Token::Class { negated, set }) => {
                    let c = s[si];
                    let hit = set[(c >> 6) as usize] & (1u64 << (c & 63)) != 0;
                    hit != *negated
                }
                None => false,
            };
            if step {
                ti += 1;
                si += 1;
            } else if let Some((resume, from)) = star {
                ti = resume;
                si = from + 1;
                star = Some((resume, from + 1));
            } else {
                return false;
            }
        }
        t[ti..].iter().all(|tok| *tok == Token::Star)
    }
}

/// A byte as a C `char` on x86 (signed), as Redis's range test sees it.
fn signed(c: u8) -> i32 {
    i32::from(c as i8)
}

/// C's `tolower` on such a value (ASCII letters only).
fn lower(c: i32) -> i32 {
    if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// One-shot match of `s` against `pattern` (Redis's `stringmatchlen`, case-sensitive).
pub fn matches(pattern: &[u8], s: &[u8]) -> bool {
    Pattern::new(pattern).matches(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_rules() {
        assert!(matches(b"*", b"abc"));
        assert!(!matches(b"*", b""));
        assert!(matches(b"", b""));
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(matches(b"h[b-a]llo", b"hbllo"));
        assert!(matches(b"news.\\*", b"news.*"));
        assert!(!matches(b"news.\\*", b"news.x"));
        assert!(matches(b"a[bc", b"ac"));
        assert!(!matches(b"a[]b", b"ab"));
        assert!(matches(b"a\\", b"a\\"));
        assert!(matches(b"logs:*:error", b"logs:app:error"));
        assert!(!matches(b"logs:*:error", b"logs:app:warn"));
        assert!(matches(b"a*b*c", b"aXbYbZc"));
        assert!(matches(b"[a-]", b"]"));
        assert!(matches(b"a[\\]]b", b"a]b"));
        // Signed ranges: [a-\xff] is -1..=97.
        assert!(matches(b"[a-\xff]", b"\xff"));
        assert!(matches(b"[a-\xff]", b"a"));
        assert!(!matches(b"[a-\xff]", b"b"));
        assert!(!matches(b"[a-\xff]", b"\xfe"));
        assert!(Pattern::new_nocase(b"GET*").matches(b"getrange"));
        assert!(Pattern::new_nocase(b"[A-C]x").matches(b"bX"));
        assert!(!Pattern::new(b"GET*").matches(b"getrange"));
    }

    #[test]
    fn hostile_pattern_is_cheap() {
        let p = b"a*".repeat(900);
        let s = vec![b'a'; 100_000];
        assert!(matches(&p, &s));
        let mut s2 = s.clone();
        s2.push(b'b');
        assert!(!Pattern::new(&[p.as_slice(), b"c"].concat()).matches(&s2));
    }

    #[test]
    fn nesting_limit_as_redis() {
        // Checked with KEYS against redis-server 7.0.15.
        let s = vec![b'a'; 2000];
        let with = |stars: usize, tail: &[u8]| [b"a*".repeat(stars).as_slice(), tail].concat();
        assert!(matches(&with(1000, b"a"), &s));
        assert!(matches(&with(1000, b"**?"), &s));
        assert!(matches(&with(1001, b""), &s));
        assert!(matches(&with(1001, b"**"), &s));
        assert!(!matches(&with(1001, b"a"), &s));
        assert!(!matches(&with(1100, b""), &s));
        assert!(!matches(&b"a*".repeat(50_000), &vec![b'a'; 100_000]));
        // Escaped stars and stars in a class do not count.
        assert!(matches(
            &[b"\\*".repeat(1001).as_slice(), b"x"].concat(),
            &[b"*".repeat(1001).as_slice(), b"x"].concat()
        ));
        assert!(!matches(b"", &s));
    }

    #[test]
    fn prefix() {
        assert_eq!(Pattern::new(b"news.\\*x*").literal_prefix(), b"news.*x");
    }
}
