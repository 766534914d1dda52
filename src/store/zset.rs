//! The sorted set type: a member → score hash map plus a skiplist ordered
//! by (score, member), as in Redis.
//!
//! # Why a skiplist with spans
//!
//! The scheduler pattern needs, at 1M members, O(log n) ZADD / ZREM /
//! ZRANK and O(log n + k) range reads by rank, by score and by lex. A
//! `BTreeSet<(score, member)>` gives ordered ranges but no rank: ZRANK,
//! ZRANGE by index and ZCOUNT would be O(n). An order-statistics tree needs
//! subtree counts maintained through rebalancing, which std's B-tree does not
//! expose. Redis's skiplist stores on each forward link the number of nodes
//! it skips (its *span*), so a descent from the top level sums spans to get
//! a rank, or follows spans to reach a rank, in O(log n) expected, and any
//! range is a descent plus a walk along level 0. Insert and delete are a
//! descent plus O(level) link updates, with no rebalancing.
//!
//! Nodes live in an arena (`Vec<Node>`, links are `u32` indices, freed slots
//! are reused), which keeps the structure in safe Rust with no per-link
//! pointers. Node 0 is the head. Each member is stored once, in its node
//! (inline when short, see `store::Key`): the member → score map is a hash
//! table of node indices, compared through the arena, so a member costs
//! one arena node and four bytes of table, and no allocation of its own
//! when short.

use std::cmp::Ordering;

use bytes::Bytes;
use hashbrown::HashTable;
use smallvec::SmallVec;

use super::Key;

/// Highest level a node can have (enough for 2^64 elements at p = 1/4).
const MAX_LEVEL: usize = 32;
/// The "no node" link.
const NIL: u32 = u32::MAX;
/// Estimated bytes per member besides its contents: map entry, arena node
/// with its inline levels.
pub const MEMBER_OVERHEAD: usize = 112;

#[derive(Debug, Clone, Copy)]
struct Level {
    next: u32,
    span: u32,
}

/// One cache line, aligned to one: a descent loads each node it passes
/// (its score, then its links), and a node straddling two lines would
/// cost two misses instead of one.
#[derive(Debug, Clone)]
#[repr(align(64))]
struct Node {
    member: Key,
    score: f64,
    prev: u32,
    levels: SmallVec<[Level; 2]>,
}

/// Orders (score, member) pairs: score first, then member bytes.
fn cmp(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2)
        .unwrap_or(Ordering::Equal)
        .then_with(|| m1.cmp(m2))
}

/// A score range bound: value and exclusivity (`(` prefix).
#[derive(Debug, Clone, Copy)]
pub struct ScoreRange {
    /// Lower bound.
    pub min: f64,
    /// True if the lower bound is exclusive (`(min`).
    pub minex: bool,
    /// Upper bound.
    pub max: f64,
    /// True if the upper bound is exclusive (`(max`).
    pub maxex: bool,
}

impl ScoreRange {
    fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }
    fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
    /// True if the range can hold no score.
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// A lex bound: `-`, `+`, `[x` or `(x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below everything.
    Min,
    /// `+`: above everything.
    Max,
    /// `[x` (true) or `(x` (false).
    Value(Bytes, bool),
}

/// A lex range.
#[derive(Debug, Clone)]
pub struct LexRange {
    /// Lower bound.
    pub min: LexBound,
    /// Upper bound.
    pub max: LexBound,
}

impl LexRange {
    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Value(v, incl) => {
                if *incl {
                    m >= &v[..]
                } else {
                    m > &v[..]
                }
            }
        }
    }
    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Value(v, incl) => {
                if *incl {
                    m <= &v[..]
                } else {
                    m < &v[..]
                }
            }
        }
    }
    /// True if the range can hold no member.
    pub fn is_empty(&self) -> bool {
        match (&self.min, &self.max) {
            (LexBound::Max, _) | (_, LexBound::Min) => true,
            (LexBound::Value(a, ai), LexBound::Value(b, bi)) => a > b || (a == b && !(*ai && *bi)),
            _ => false,
        }
    }
}

/// The ordered half of a sorted set.
#[derive(Debug, Clone)]
struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    level: usize,
    len: usize,
    tail: u32,
}

impl SkipList {
    fn new() -> SkipList {
        let head = Node {
            member: Key::from(&b""[..]),
            score: 0.0,
            prev: NIL,
            levels: SmallVec::from_elem(Level { next: NIL, span: 0 }, MAX_LEVEL),
        };
        SkipList {
            nodes: vec![head],
            free: Vec::new(),
            level: 1,
            len: 0,
            tail: NIL,
        }
    }

    fn random_level() -> usize {
        let mut lvl = 1;
        while lvl < MAX_LEVEL && rand::random::<u32>() & 0xFFFF < 0xFFFF / 4 {
            lvl += 1;
        }
        lvl
    }

    fn next(&self, x: u32, i: usize) -> u32 {
        self.nodes[x as usize].levels[i].next
    }

    /// True if node `n` sorts before (score, member).
    fn before(&self, n: u32, score: f64, member: &[u8]) -> bool {
        let node = &self.nodes[n as usize];
        cmp(node.score, &node.member, score, member) == Ordering::Less
    }

    // Index loops mirror Redis's zslInsert / zslDelete line for line.
    #[allow(clippy::needless_range_loop)]
    /// Links a new node and returns its slot in the arena.
    fn insert(&mut self, score: f64, member: Key) -> u32 {
        let mut update = [0u32; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            rank[i] = if i == self.level - 1 { 0 } else { rank[i + 1] };
            loop {
                let nx = self.next(x, i);
                if nx != NIL && self.before(nx, score, &member) {
                    rank[i] += self.nodes[x as usize].levels[i].span;
                    x = nx;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let lvl = Self::random_level();
        if lvl > self.level {
            for i in self.level..lvl {
                rank[i] = 0;
                update[i] = 0;
                self.nodes[0].levels[i].span = self.len as u32;
            }
            self.level = lvl;
        }
        let node = Node {
            member,
            score,
            prev: if update[0] == 0 { NIL } else { update[0] },
            levels: SmallVec::from_elem(Level { next: NIL, span: 0 }, lvl),
        };
        let xi = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..lvl {
            let u = update[i] as usize;
            let ul = self.nodes[u].levels[i];
            self.nodes[xi as usize].levels[i] = Level {
                next: ul.next,
                span: ul.span - (rank[0] - rank[i]),
            };
            self.nodes[u].levels[i] = Level {
                next: xi,
                span: (rank[0] - rank[i]) + 1,
            };
        }
        for i in lvl..self.level {
            self.nodes[update[i] as usize].levels[i].span += 1;
        }
        let n0 = self.next(xi, 0);
        if n0 != NIL {
            self.nodes[n0 as usize].prev = xi;
        } else {
            self.tail = xi;
        }
        self.len += 1;
        xi
    }

    #[allow(clippy::needless_range_loop)]
    /// Unlinks (score, member): its former slot and the member, moved out.
    fn delete(&mut self, score: f64, member: &[u8]) -> Option<(u32, Key)> {
        let mut update = [0u32; MAX_LEVEL];
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != NIL && self.before(nx, score, member) {
                    x = nx;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let x = self.next(x, 0);
        if x == NIL {
            return None;
        }
        let n = &self.nodes[x as usize];
        if n.score != score || n.member.as_bytes() != member {
            return None;
        }
        Some((x, self.unlink(x, &update)))
    }

    #[allow(clippy::needless_range_loop)]
    /// Unlinks node `x`, whose predecessor on level `i` is `update[i]`,
    /// and frees its slot: its member, moved out.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) -> Key {
        for i in 0..self.level {
            let u = update[i] as usize;
            if self.nodes[u].levels[i].next == x {
                let xl = self.nodes[x as usize].levels[i];
                let ul = &mut self.nodes[u].levels[i];
                ul.span = ul.span + xl.span - 1;
                ul.next = xl.next;
            } else {
                self.nodes[u].levels[i].span -= 1;
            }
        }
        let n0 = self.next(x, 0);
        let prev = self.nodes[x as usize].prev;
        if n0 != NIL {
            self.nodes[n0 as usize].prev = prev;
        } else {
            self.tail = prev;
        }
        while self.level > 1 && self.nodes[0].levels[self.level - 1].next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        let node = &mut self.nodes[x as usize];
        let member = std::mem::replace(&mut node.member, Key::from(&b""[..]));
        node.levels = SmallVec::new();
        self.free.push(x);
        member
    }

    /// 1-based rank of (score, member), 0 if absent.
    fn rank(&self, score: f64, member: &[u8]) -> usize {
        let mut x = 0u32;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx == NIL {
                    break;
                }
                let n = &self.nodes[nx as usize];
                if cmp(n.score, &n.member, score, member) != Ordering::Greater {
                    rank += self.nodes[x as usize].levels[i].span as usize;
                    x = nx;
                } else {
                    break;
                }
            }
            if x != 0 && self.nodes[x as usize].member.as_bytes() == member {
                return rank;
            }
        }
        0
    }

    /// The node at 1-based `rank`.
    fn by_rank(&self, rank: usize) -> u32 {
        let mut x = 0u32;
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                let span = self.nodes[x as usize].levels[i].span as usize;
                if nx != NIL && traversed + span <= rank {
                    traversed += span;
                    x = nx;
                } else {
                    break;
                }
            }
            if traversed == rank {
                return x;
            }
        }
        NIL
    }

    /// First node whose score is in range.
    fn first_in_score(&self, r: &ScoreRange) -> u32 {
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != NIL && !r.gte_min(self.nodes[nx as usize].score) {
                    x = nx;
                } else {
                    break;
                }
            }
        }
        let x = self.next(x, 0);
        if x != NIL && r.lte_max(self.nodes[x as usize].score) {
            x
        } else {
            NIL
        }
    }

    /// Last node whose score is in range.
    fn last_in_score(&self, r: &ScoreRange) -> u32 {
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != NIL && r.lte_max(self.nodes[nx as usize].score) {
                    x = nx;
                } else {
                    break;
                }
            }
        }
        if x != 0 && r.gte_min(self.nodes[x as usize].score) {
            x
        } else {
            NIL
        }
    }

    fn first_in_lex(&self, r: &LexRange) -> u32 {
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != NIL && !r.gte_min(&self.nodes[nx as usize].member) {
                    x = nx;
                } else {
                    break;
                }
            }
        }
        let x = self.next(x, 0);
        if x != NIL && r.lte_max(&self.nodes[x as usize].member) {
            x
        } else {
            NIL
        }
    }

    fn last_in_lex(&self, r: &LexRange) -> u32 {
        let mut x = 0u32;
        for i in (0..self.level).rev() {
            loop {
                let nx = self.next(x, i);
                if nx != NIL && r.lte_max(&self.nodes[nx as usize].member) {
                    x = nx;
                } else {
                    break;
                }
            }
        }
        if x != 0 && r.gte_min(&self.nodes[x as usize].member) {
            x
        } else {
            NIL
        }
    }
}

/// A sorted set value.
#[derive(Debug, Clone)]
pub struct ZSet {
    /// Member → its node's slot in `list`, hashed by the member's bytes.
    dict: HashTable<u32>,
    hasher: ahash::RandomState,
    list: SkipList,
    bytes: usize,
    /// Redis's representation (listpack / skiplist), see `encoding`.
    pub(super) enc: super::encoding::Track,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet {
            dict: HashTable::new(),
            hasher: ahash::RandomState::new(),
            list: SkipList::new(),
            bytes: 0,
            enc: Default::default(),
        }
    }
}

/// A position in a sorted set for walking ranges (opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(u32);

impl ZSet {
    /// ZSCAN's cursor: visits the members in up to `count` arena slots from
    /// slot `cursor` upward, and returns the slot to resume from (0 once
    /// the arena is done). A node never changes slot while it lives, so a
    /// member present for a whole scan is visited; freed slots are skipped
    /// without counting.
    pub fn scan_slots(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        let nodes = &self.list.nodes;
        // Slot 0 is the head.
        let mut i = usize::try_from(cursor).unwrap_or(usize::MAX).max(1);
        let mut visited = 0;
        while visited < count.max(1) {
            let Some(n) = nodes.get(i) else {
                return 0;
            };
            if !n.levels.is_empty() {
                f(&n.member, n.score);
                visited += 1;
            }
            i += 1;
        }
        if i >= nodes.len() {
            0
        } else {
            i as u64
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    /// True with no member.
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    /// Estimated heap bytes.
    pub fn mem(&self) -> usize {
        self.bytes
    }

    /// The arena slot of member `m`, with the hash `dict` files it under.
    fn find(&self, m: &[u8]) -> (u64, Option<u32>) {
        let h = self.hasher.hash_one(m);
        let nodes = &self.list.nodes;
        let slot = self
            .dict
            .find(h, |&i| nodes[i as usize].member.as_bytes() == m)
            .copied();
        (h, slot)
    }

    /// The score of `m`.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        let (_, slot) = self.find(m);
        slot.map(|i| self.list.nodes[i as usize].score)
    }

    /// Sets the score of `m` (stored in its node, see the module header);
    /// true if the member is new.
    pub fn insert(&mut self, m: &[u8], score: f64) -> bool {
        self.enc.saw(m.len());
        match self.find(m) {
            (h, Some(i)) => {
                let prev = self.list.nodes[i as usize].score;
                if prev != score {
                    if let Some((old, member)) = self.list.delete(prev, m) {
                        let new = self.list.insert(score, member);
                        if new != old {
                            if let Some(slot) = self.dict.find_mut(h, |&j| j == old) {
                                *slot = new;
                            }
                        }
                    }
                }
                false
            }
            (h, None) => {
                let i = self.list.insert(score, Key::from(m));
                let (nodes, hasher) = (&self.list.nodes, &self.hasher);
                self.dict.insert_unique(h, i, |&j| {
                    hasher.hash_one(nodes[j as usize].member.as_bytes())
                });
                self.bytes += m.len() + MEMBER_OVERHEAD;
                true
            }
        }
    }

    /// Removes `m`; true if it was a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        let h = self.hasher.hash_one(m);
        let nodes = &self.list.nodes;
        let Ok(entry) = self
            .dict
            .find_entry(h, |&i| nodes[i as usize].member.as_bytes() == m)
        else {
            return false;
        };
        let (i, _) = entry.remove();
        let score = self.list.nodes[i as usize].score;
        self.list.delete(score, m);
        self.bytes -= m.len() + MEMBER_OVERHEAD;
        true
    }

    /// Removes the lowest-ranked member (ZPOPMIN): its member and score.
    pub fn pop_first(&mut self) -> Option<(Key, f64)> {
        let x = self.list.next(0, 0);
        if x == NIL {
            return None;
        }
        let node = &self.list.nodes[x as usize];
        let (score, h) = (node.score, self.hasher.hash_one(node.member.as_bytes()));
        if let Ok(e) = self.dict.find_entry(h, |&i| i == x) {
            e.remove();
        }
        // The first node's predecessor on every level is the head: no
        // descent is needed to unlink it.
        let member = self.list.unlink(x, &[0; MAX_LEVEL]);
        self.bytes -= member.len() + MEMBER_OVERHEAD;
        Some((member, score))
    }

    /// 0-based rank of `m` in ascending order.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        let s = self.score(m)?;
        let r = self.list.rank(s, m);
        (r > 0).then(|| r - 1)
    }

    /// The position of 0-based ascending rank `i`.
    pub fn at_rank(&self, i: usize) -> Option<Cursor> {
        if i >= self.len() {
            return None;
        }
        let x = self.list.by_rank(i + 1);
        (x != NIL).then_some(Cursor(x))
    }

    /// The member and score at a position.
    pub fn entry(&self, c: Cursor) -> (&[u8], f64) {
        let n = &self.list.nodes[c.0 as usize];
        (&n.member, n.score)
    }

    /// The next position (ascending), if any.
    pub fn next(&self, c: Cursor) -> Option<Cursor> {
        let x = self.list.next(c.0, 0);
        (x != NIL).then_some(Cursor(x))
    }

    /// The previous position (descending), if any.
    pub fn prev(&self, c: Cursor) -> Option<Cursor> {
        let x = self.list.nodes[c.0 as usize].prev;
        (x != NIL).then_some(Cursor(x))
    }

    /// First and last positions.
    pub fn first(&self) -> Option<Cursor> {
        self.next(Cursor(0))
    }

    /// The last position.
    pub fn last(&self) -> Option<Cursor> {
        (self.list.tail != NIL).then_some(Cursor(self.list.tail))
    }

    /// First position with a score in `r`.
    pub fn first_in_score(&self, r: &ScoreRange) -> Option<Cursor> {
        let x = self.list.first_in_score(r);
        (x != NIL).then_some(Cursor(x))
    }

    /// Last position with a score in `r`.
    pub fn last_in_score(&self, r: &ScoreRange) -> Option<Cursor> {
        let x = self.list.last_in_score(r);
        (x != NIL).then_some(Cursor(x))
    }

    /// First position with a member in `r`.
    pub fn first_in_lex(&self, r: &LexRange) -> Option<Cursor> {
        let x = self.list.first_in_lex(r);
        (x != NIL).then_some(Cursor(x))
    }

    /// Last position with a member in `r`.
    pub fn last_in_lex(&self, r: &LexRange) -> Option<Cursor> {
        let x = self.list.last_in_lex(r);
        (x != NIL).then_some(Cursor(x))
    }

    /// 0-based rank of a position.
    pub fn rank_of(&self, c: Cursor) -> usize {
        let n = &self.list.nodes[c.0 as usize];
        self.list.rank(n.score, &n.member).saturating_sub(1)
    }

    /// True if the score is within range (for walking).
    pub fn score_in(r: &ScoreRange, s: f64) -> bool {
        r.gte_min(s) && r.lte_max(s)
    }

    /// True if the member is within range (for walking).
    pub fn lex_in(r: &LexRange, m: &[u8]) -> bool {
        r.gte_min(m) && r.lte_max(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(z: &ZSet) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let mut c = z.first();
        while let Some(p) = c {
            let (m, s) = z.entry(p);
            out.push((String::from_utf8_lossy(m).into_owned(), s));
            c = z.next(p);
        }
        out
    }

    #[test]
    fn order_rank_and_ranges() {
        let mut z = ZSet::default();
        for (i, m) in ["e", "d", "c", "b", "a"].iter().enumerate() {
            z.insert(m.as_bytes(), i as f64);
        }
        z.insert(b"x", 2.0);
        assert_eq!(members(&z)[2..4], [("c".into(), 2.0), ("x".into(), 2.0)]);
        assert_eq!(z.rank(b"a"), Some(5));
        assert_eq!(z.rank(b"x"), Some(3));
        z.insert(b"e", 10.0);
        assert_eq!(z.rank(b"e"), Some(5));
        assert!(z.remove(b"c"));
        assert_eq!(z.len(), 5);
        let r = ScoreRange {
            min: 1.0,
            minex: true,
            max: 3.0,
            maxex: false,
        };
        let f = z.first_in_score(&r).map(|c| z.entry(c).0);
        let l = z.last_in_score(&r).map(|c| z.entry(c).0);
        assert_eq!(f, Some(&b"x"[..]));
        assert_eq!(l, Some(&b"b"[..]));
        let c = z.at_rank(4).map(|c| z.entry(c).0);
        assert_eq!(c, Some(&b"e"[..]));
    }

    #[test]
    fn random_operations_match_a_sorted_vec() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut z = ZSet::default();
        let mut model: std::collections::BTreeMap<String, f64> = Default::default();
        for _ in 0..5000 {
            let m = format!("m{}", rng.gen_range(0..300));
            match rng.gen_range(0..10) {
                0..7 => {
                    let s = rng.gen_range(0..50) as f64;
                    z.insert(m.as_bytes(), s);
                    model.insert(m, s);
                }
                7..9 => assert_eq!(z.remove(m.as_bytes()), model.remove(&m).is_some()),
                _ => {
                    let lowest = model
                        .iter()
                        .min_by(|a, b| cmp(*a.1, a.0.as_bytes(), *b.1, b.0.as_bytes()))
                        .map(|(m, s)| (m.clone(), *s));
                    let popped = z.pop_first().map(|(m, s)| (m.as_bytes().to_vec(), s));
                    assert_eq!(
                        popped,
                        lowest.as_ref().map(|(m, s)| (m.clone().into_bytes(), *s))
                    );
                    if let Some((m, _)) = lowest {
                        model.remove(&m);
                    }
                }
            }
            assert_eq!(z.len(), model.len());
        }
        let mut sorted: Vec<(String, f64)> = model.into_iter().collect();
        sorted.sort_by(|a, b| cmp(a.1, a.0.as_bytes(), b.1, b.0.as_bytes()));
        assert_eq!(members(&z), sorted);
        for (i, (m, _)) in sorted.iter().enumerate() {
            assert_eq!(z.rank(m.as_bytes()), Some(i));
            let at = z.at_rank(i).map(|c| z.entry(c).0);
            assert_eq!(at, Some(m.as_bytes()));
            assert_eq!(z.score(m.as_bytes()), Some(sorted[i].1));
        }
    }
}
