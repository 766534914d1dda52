//! Property tests for the GEO encoders and sorts (`herald::util::geohash`,
//! `herald::util::pqsort`): a valid point encodes to a 52-bit score whose
//! decoded cell centre lies within one cell of it and re-encodes to the
//! same score; coordinates print with 17 decimals, trailing zeros trimmed;
//! standard geohashes use the base-32 alphabet; C's float-to-u64
//! conversion agrees with Rust's where C defines it; both sorts order
//! like the standard library's sort on a total order, and `pqsort` puts
//! the wanted range where a full sort would.

use herald::util::geohash::{self, LAT_MAX, LAT_MIN};
use herald::util::pqsort::{msort, pqsort};
use proptest::prelude::*;

/// One 52-bit cell is 360/2^26 degrees wide and (2*LAT_MAX)/2^26 high.
const CELL_LON: f64 = 360.0 / 67_108_864.0;
const CELL_LAT: f64 = (LAT_MAX - LAT_MIN) / 67_108_864.0;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn score_round_trip(lon in -180.0f64..=180.0, lat in LAT_MIN..=LAT_MAX) {
        let score = geohash::score_of(lon, lat);
        prop_assert!(score.is_some());
        let score = score.unwrap_or_default();
        prop_assert!(score < 1u64 << 52);
        if score != 0 {
            let decoded = geohash::decode_score(score as f64);
            prop_assert!(decoded.is_some());
            let (dlon, dlat) = decoded.unwrap_or_default();
            prop_assert!((dlon - lon).abs() <= CELL_LON, "{} vs {}", dlon, lon);
            prop_assert!((dlat - lat).abs() <= CELL_LAT, "{} vs {}", dlat, lat);
            prop_assert_eq!(geohash::score_of(dlon, dlat), Some(score));
        }
    }

    #[test]
    fn out_of_range_refused(lon in 180.0001f64..1e6, lat in 85.06f64..1e6) {
        prop_assert_eq!(geohash::score_of(lon, 0.0), None);
        prop_assert_eq!(geohash::score_of(-lon, 0.0), None);
        prop_assert_eq!(geohash::score_of(0.0, lat), None);
        prop_assert_eq!(geohash::score_of(0.0, -lat), None);
    }

    #[test]
    fn coordinates_read_back(d in -180.0f64..=180.0) {
        let s = geohash::format_coord(d);
        let back: f64 = s.parse().unwrap_or(f64::NAN);
        // 17 decimals: exact at or above 1, within 1e-17 below.
        prop_assert!((back - d).abs() <= 1e-17, "{} -> {}", d, s);
        prop_assert!(!s.ends_with('.') && (!s.contains('.') || !s.ends_with('0')));
    }

    #[test]
    fn distances_have_four_decimals(d in 0.0f64..4e7) {
        let s = geohash::format_distance(d);
        let dot = s.find('.');
        prop_assert_eq!(dot.map(|i| s.len() - i), Some(5));
    }

    #[test]
    fn standard_hash_alphabet(score in 1u64..(1u64 << 52)) {
        if let Some(h) = geohash::standard_hash(score as f64) {
            prop_assert!(h.iter().all(|b| b"0123456789bcdefghjkmnpqrstuvwxyz".contains(b)));
            prop_assert_eq!(h[10], b'0');
        }
    }

    #[test]
    fn c_conversion_in_range(x in 0.0f64..1.8e19) {
        prop_assert_eq!(geohash::c_u64(x), x as u64);
    }

    #[test]
    fn sorts_agree(v in proptest::collection::vec(0u8..20, 0..200), a in 0usize..200, b in 0usize..200) {
        let mut want = v.clone();
        want.sort();
        let mut m = v.clone();
        msort(&mut m, &mut |x: &u8, y: &u8| x.cmp(y));
        prop_assert_eq!(&m, &want);
        if !v.is_empty() {
            let (lo, hi) = (a.min(b) % v.len(), a.max(b) % v.len());
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let mut p = v.clone();
            pqsort(&mut p, &mut |x: &u8, y: &u8| x.cmp(y), lo, hi);
            prop_assert_eq!(&p[lo..=hi], &want[lo..=hi]);
            let mut sorted_p = p.clone();
            sorted_p.sort();
            prop_assert_eq!(sorted_p, want);
        }
    }

    #[test]
    fn sorts_survive_nan(v in proptest::collection::vec(prop_oneof![Just(f64::NAN), -10.0f64..10.0], 0..100)) {
        let mut cmp = |x: &f64, y: &f64| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal);
        let mut m = v.clone();
        msort(&mut m, &mut cmp);
        prop_assert_eq!(m.len(), v.len());
        let mut p = v.clone();
        let n = p.len();
        pqsort(&mut p, &mut cmp, 0, n.saturating_sub(1));
        prop_assert_eq!(p.len(), v.len());
    }
}
