//! The two sorts Redis's GEO searches use, ported so that elements which
//! compare equal end up where redis-server puts them: its partial
//! quicksort (`pqsort.c`, NetBSD's Bentley–McIlroy qsort that skips
//! partitions outside a wanted index range) for the first COUNT results,
//! and glibc's `qsort` (a stable top-down merge sort) for a full sort.
//!
//! Which equal-distance points make a COUNT cut, and their order, depend
//! on the algorithm; both ports also accept a comparator that is not a
//! total order (Redis compares distances that can be NaN) without
//! panicking, which `slice::sort_by` does not promise.

use std::cmp::Ordering;

/// Sorts `v` so that positions `lrange..=rrange` hold what a full sort
/// would put there, exactly as Redis's `pqsort` leaves them.
pub fn pqsort<T>(
    v: &mut [T],
    cmp: &mut impl FnMut(&T, &T) -> Ordering,
    lrange: usize,
    rrange: usize,
) {
    let n = v.len();
    sort(v, 0, n, cmp, lrange, rrange);
}

/// glibc's `qsort` (`msort.c`): top-down merge sort, left half first,
/// ties taken from the left run.
pub fn msort<T: Clone>(v: &mut [T], cmp: &mut impl FnMut(&T, &T) -> Ordering) {
    if v.len() <= 1 {
        return;
    }
    let n1 = v.len() / 2;
    {
        let (b1, b2) = v.split_at_mut(n1);
        msort(b1, cmp);
        msort(b2, cmp);
    }
    let mut merged = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < v.len() {
        if cmp(&v[i], &v[j]) != Ordering::Greater {
            merged.push(v[i].clone());
            i += 1;
        } else {
            merged.push(v[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..]);
    v.clone_from_slice(&merged);
}

fn med3<T>(
    v: &[T],
    a: usize,
    b: usize,
    c: usize,
    cmp: &mut impl FnMut(&T, &T) -> Ordering,
) -> usize {
    if cmp(&v[a], &v[b]) == Ordering::Less {
        if cmp(&v[b], &v[c]) == Ordering::Less {
            b
        } else if cmp(&v[a], &v[c]) == Ordering::Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Ordering::Greater {
        b
    } else if cmp(&v[a], &v[c]) == Ordering::Less {
        a
    } else {
        c
    }
}

fn insertion<T>(v: &mut [T], a: usize, n: usize, cmp: &mut impl FnMut(&T, &T) -> Ordering) {
    for pm in a + 1..a + n {
        let mut pl = pm;
        while pl > a && cmp(&v[pl - 1], &v[pl]) == Ordering::Greater {
            v.swap(pl, pl - 1);
            pl -= 1;
        }
    }
}

fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// True if the elements `lo..lo + n` lie wholly outside the wanted range.
fn outside(lo: usize, n: usize, l: usize, r: usize) -> bool {
    let hi = lo + n - 1;
    (l < lo && r < lo) || (l > hi && r > hi)
}

fn sort<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &mut impl FnMut(&T, &T) -> Ordering,
    l: usize,
    r: usize,
) {
    loop {
        if n < 7 {
            insertion(v, a, n, cmp);
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        let mut swapped = false;
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c == Ordering::Greater {
                    break;
                }
                if c == Ordering::Equal {
                    swapped = true;
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c == Ordering::Less {
                    break;
                }
                if c == Ordering::Equal {
                    swapped = true;
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            swapped = true;
            pb += 1;
            pc -= 1;
        }
        if !swapped {
            insertion(v, a, n, cmp);
            return;
        }
        let pn = a + n;
        let s = (pa - a).min(pb - pa);
        vecswap(v, a, pb - s, s);
        let s = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - s, s);
        let left = pb - pa;
        if left > 1 && !outside(a, left, l, r) {
            sort(v, a, left, cmp, l, r);
        }
        let right = pd - pc;
        if right > 1 {
            a = pn - right;
            n = right;
            if !outside(a, n, l, r) {
                continue;
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn msort_is_stable(v in proptest::collection::vec((0u8..5, 0u16..1000), 0..200)) {
            let mut a = v.clone();
            msort(&mut a, &mut |x: &(u8, u16), y: &(u8, u16)| x.0.cmp(&y.0));
            let mut b = v;
            b.sort_by_key(|x| x.0);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn prefix_is_sorted(mut v in proptest::collection::vec(0u8..20, 0..200), k in 0usize..200) {
            let mut full = v.clone();
            full.sort();
            if !v.is_empty() {
                let k = k % v.len();
                pqsort(&mut v, &mut |a: &u8, b: &u8| a.cmp(b), 0, k);
                prop_assert_eq!(&v[..=k], &full[..=k]);
                let mut rest = v.clone();
                rest.sort();
                prop_assert_eq!(rest, full);
            }
        }
    }
}
