//! Redis's geohash arithmetic (`geohash.c`, `geohash_helper.c`): how a
//! longitude / latitude pair becomes the 52-bit interleaved score a GEO
//! sorted set stores, how a score decodes back to the centre of its cell,
//! which 9 cells cover a search area, and the haversine distance.
//!
//! Everything follows the C code operation for operation (same constants,
//! same order of floating point operations, the platform's `sin` / `cos` /
//! `asin`), so that scores, decoded coordinates, distances and the set of
//! cells searched are bit for bit those of redis-server.

/// Westmost longitude that can be indexed.
pub const LONG_MIN: f64 = -180.0;
/// Eastmost longitude that can be indexed.
pub const LONG_MAX: f64 = 180.0;
/// Southmost latitude that can be indexed (EPSG:900913 limit).
pub const LAT_MIN: f64 = -85.05112878;
/// Northmost latitude that can be indexed (EPSG:900913 limit).
pub const LAT_MAX: f64 = 85.05112878;
/// Bits per coordinate of a stored score (26 + 26 = 52, exact in a double).
pub const STEP_MAX: u8 = 26;

const D_R: f64 = std::f64::consts::PI / 180.0;
/// Earth's quadratic mean radius for WGS-84, as Redis uses it.
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// A geohash cell: `step` bits per coordinate, interleaved in `bits`
/// (latitude in the even bits, longitude in the odd ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashBits {
    /// The interleaved bits.
    pub bits: u64,
    /// Bits per coordinate.
    pub step: u8,
}

impl HashBits {
    /// Redis's `HASHISZERO`: a cell excluded from a search.
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The cell's bits shifted to the 52-bit score scale
    /// (`geohashAlign52Bits`).
    pub fn align52(&self) -> u64 {
        let shift = 52u32.saturating_sub(u32::from(self.step) * 2);
        self.bits.checked_shl(shift).unwrap_or(0)
    }
}

/// A closed coordinate interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower end.
    pub min: f64,
    /// Upper end.
    pub max: f64,
}

/// The longitude range Redis indexes.
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
/// The latitude range Redis indexes.
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The rectangle a cell covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    /// Longitudes covered.
    pub longitude: Range,
    /// Latitudes covered.
    pub latitude: Range,
}

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = u64::from(xlo);
    let mut y = u64::from(ylo);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode`: the cell of `step` bits per coordinate holding the
/// point, within the given ranges; None outside the indexable limits.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<HashBits> {
    if step > 32 || step == 0 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return Some(HashBits { bits: 0, step });
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    let scale = (1u64 << step) as f64;
    lat_offset *= scale;
    long_offset *= scale;
    Some(HashBits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// [`encode`] in Redis's indexing ranges (`geohashEncodeWGS84`).
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<HashBits> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, step)
}

/// `geohashDecode`: the rectangle `hash` covers; None for a zero hash.
pub fn decode(long_range: Range, lat_range: Range, hash: HashBits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = 1u64.checked_shl(u32::from(hash.step)).unwrap_or(0) as f64;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (f64::from(ilato) * 1.0 / div) * lat_scale,
            max: lat_range.min + (f64::from(ilato.wrapping_add(1)) * 1.0 / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (f64::from(ilono) * 1.0 / div) * long_scale,
            max: long_range.min + (f64::from(ilono.wrapping_add(1)) * 1.0 / div) * long_scale,
        },
    })
}

/// The (longitude, latitude) a stored score stands for: the centre of its
/// 52-bit cell, clamped to the indexable limits (Redis's `decodeGeohash`).
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    let hash = HashBits {
        bits: c_u64(score),
        step: STEP_MAX,
    };
    let area = decode(LONG_RANGE, LAT_RANGE, hash)?;
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

/// C's `(uint64_t)x` as gcc compiles it on x86-64 (`cvttsd2si`, with
/// 2^63 subtracted first for large values), out-of-range values included:
/// a sorted set written by ZADD can hold any score, and GEOPOS decodes
/// them as redis-server does (a negative score wraps to high bits, a
/// score past 2^64 becomes 0).
pub fn c_u64(x: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    fn cvttsd2si(y: f64) -> i64 {
        if y.is_nan() || !(-TWO_63..TWO_63).contains(&y) {
            i64::MIN
        } else {
            y as i64
        }
    }
    if x < TWO_63 {
        cvttsd2si(x) as u64
    } else {
        (cvttsd2si(x - TWO_63) as u64) ^ (1u64 << 63)
    }
}

/// The score GEOADD stores for a valid point.
pub fn score_of(longitude: f64, latitude: f64) -> Option<u64> {
    encode_wgs84(longitude, latitude, STEP_MAX).map(|h| h.align52())
}

fn move_x(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let shift = 64u32.saturating_sub(u32::from(hash.step) * 2);
    let zz = 0x5555555555555555u64.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x |= zz;
        x = x.wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaaaaaaaaaaaaaau64.checked_shr(shift).unwrap_or(0);
    hash.bits = x | y;
}

fn move_y(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let shift = 64u32.saturating_sub(u32::from(hash.step) * 2);
    let zz = 0xaaaaaaaaaaaaaaaau64.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y |= zz;
        y = y.wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555555555555555u64.checked_shr(shift).unwrap_or(0);
    hash.bits = x | y;
}

fn moved(hash: HashBits, dx: i8, dy: i8) -> HashBits {
    let mut h = hash;
    move_x(&mut h, dx);
    move_y(&mut h, dy);
    h
}

/// What a search covers: a circle of `radius` or an axis-aligned box of
/// `width` × `height`, in the unit `conversion` turns into meters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// BYRADIUS (and GEORADIUS*).
    Circle {
        /// Radius, in the request's unit.
        radius: f64,
    },
    /// BYBOX.
    Rect {
        /// Width, in the request's unit.
        width: f64,
        /// Height, in the request's unit.
        height: f64,
    },
}

/// Redis's `GeoShape`: the centre, the area, and the unit factor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Centre longitude.
    pub lon: f64,
    /// Centre latitude.
    pub lat: f64,
    /// Meters per unit of the request (m 1, km 1000, ft 0.3048, mi 1609.34).
    pub conversion: f64,
    /// Circle or box.
    pub kind: Kind,
}

impl Shape {
    /// `geohashBoundingBox`: [min lon, min lat, max lon, max lat].
    fn bounding_box(&self) -> [f64; 4] {
        let (height, width) = match self.kind {
            Kind::Circle { radius } => (self.conversion * radius, self.conversion * radius),
            Kind::Rect { width, height } => (
                self.conversion * (height / 2.0),
                self.conversion * (width / 2.0),
            ),
        };
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(self.lat + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(self.lat - lat_delta).cos());
        let southern = self.lat < 0.0;
        [
            if southern {
                self.lon - long_delta_bottom
            } else {
                self.lon - long_delta_top
            },
            self.lat - lat_delta,
            if southern {
                self.lon + long_delta_bottom
            } else {
                self.lon + long_delta_top
            },
            self.lat + lat_delta,
        ]
    }

    /// `geoAppendIfWithinShape`'s test: the distance in meters from the
    /// centre to (lon, lat) if that point is inside the shape.
    pub fn distance_if_within(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.kind {
            Kind::Circle { radius } => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= radius * self.conversion).then_some(d)
            }
            Kind::Rect { width, height } => {
                let (width_m, height_m) = (width * self.conversion, height * self.conversion);
                let lon_distance = distance(lon, lat, self.lon, lat);
                let lat_distance = distance(lon, lat, lon, self.lat);
                if lon_distance > width_m / 2.0 || lat_distance > height_m / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }
}

/// `geohashEstimateStepsByRadius`: bits per coordinate of the 9 cells of a
/// search of this radius at this latitude.
fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// `geohashCalculateAreasByShapeWGS84`: the cells a search must scan, in
/// Redis's order (centre, N, S, E, W, NE, NW, SE, SW); excluded neighbours
/// are zero hashes.
pub fn areas_by_shape(shape: &Shape) -> [HashBits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = shape.bounding_box();
    let radius_meters = match shape.kind {
        Kind::Circle { radius } => radius,
        Kind::Rect { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, shape.lat);
    let cell = |steps: u8| {
        let hash = encode_wgs84(shape.lon, shape.lat, steps).unwrap_or_default();
        let area = decode(LONG_RANGE, LAT_RANGE, hash);
        (hash, area)
    };
    let (mut hash, mut area) = cell(steps);

    // A neighbour too close to the search area's edge needs a coarser step.
    let edge = |h: HashBits, dx: i8, dy: i8| decode(LONG_RANGE, LAT_RANGE, moved(h, dx, dy));
    let mut decrease = false;
    if let Some(north) = edge(hash, 0, 1) {
        decrease |= north.latitude.max < max_lat;
    }
    if let Some(south) = edge(hash, 0, -1) {
        decrease |= south.latitude.min > min_lat;
    }
    if let Some(east) = edge(hash, 1, 0) {
        decrease |= east.longitude.max < max_lon;
    }
    if let Some(west) = edge(hash, -1, 0) {
        decrease |= west.longitude.min > min_lon;
    }
    if steps > 1 && decrease {
        steps -= 1;
        (hash, area) = cell(steps);
    }

    let mut n = [
        hash,
        moved(hash, 0, 1),
        moved(hash, 0, -1),
        moved(hash, 1, 0),
        moved(hash, -1, 0),
        moved(hash, 1, 1),
        moved(hash, -1, 1),
        moved(hash, 1, -1),
        moved(hash, -1, -1),
    ];
    const NORTH: usize = 1;
    const SOUTH: usize = 2;
    const EAST: usize = 3;
    const WEST: usize = 4;
    const NE: usize = 5;
    const NW: usize = 6;
    const SE: usize = 7;
    const SW: usize = 8;
    if steps >= 2 {
        let area = area.unwrap_or(Area {
            longitude: Range { min: 0.0, max: 0.0 },
            latitude: Range { min: 0.0, max: 0.0 },
        });
        let zero = HashBits::default();
        if area.latitude.min < min_lat {
            for i in [SOUTH, SW, SE] {
                n[i] = zero;
            }
        }
        if area.latitude.max > max_lat {
            for i in [NORTH, NE, NW] {
                n[i] = zero;
            }
        }
        if area.longitude.min < min_lon {
            for i in [WEST, SW, NW] {
                n[i] = zero;
            }
        }
        if area.longitude.max > max_lon {
            for i in [EAST, SE, NE] {
                n[i] = zero;
            }
        }
    }
    n
}

/// The score range [min, max) of the members inside cell `hash`
/// (`scoresOfGeoHashBox`).
pub fn score_range(hash: HashBits) -> (u64, u64) {
    let min = hash.align52();
    let next = HashBits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    };
    (min, next.align52())
}

/// Haversine great circle distance in meters (`geohashGetDistance`).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lat1r = deg_rad(lat1d);
    let lon1r = deg_rad(lon1d);
    let lat2r = deg_rad(lat2d);
    let lon2r = deg_rad(lon2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let v = ((lon2r - lon1r) / 2.0).sin();
    2.0 * EARTH_RADIUS_IN_METERS * (u * u + lat1r.cos() * lat2r.cos() * v * v).sqrt().asin()
}

/// The 11-character standard geohash of a stored score (GEOHASH): the
/// point re-encoded with the usual ±90° latitude range; the eleventh
/// character is always `0` since only 52 bits exist.
pub fn standard_hash(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score)?;
    let hash = encode(
        Range {
            min: -180.0,
            max: 180.0,
        },
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        26,
    )?;
    let mut buf = [b'0'; 11];
    for (i, b) in buf.iter_mut().enumerate().take(10) {
        let idx = (hash.bits >> (52 - (i + 1) * 5)) & 0x1f;
        *b = ALPHABET[idx as usize];
    }
    Some(buf)
}

/// A distance as GEO replies print it: `%.4f`.
pub fn format_distance(d: f64) -> String {
    format!("{d:.4}")
}

/// A coordinate as Redis's `addReplyHumanLongDouble` prints it: `%.17Lf`
/// with trailing zeros (and a trailing dot) removed, `-0` as `0`.
pub fn format_coord(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        let keep = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(keep);
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_redis() {
        // From Redis's unit/geo "Check geoset values".
        assert_eq!(score_of(-74.0131604, 40.7126674), Some(1791873972053020));
        assert_eq!(score_of(-73.7858139, 40.6428986), Some(1791895905559723));
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
    }

    #[test]
    fn decode_and_format() {
        let (lon, lat) = decode_score(3479099956230698.0).unwrap_or_default();
        assert_eq!(format_coord(lon), "13.36138933897018433");
        assert_eq!(format_coord(lat), "38.11555639549629859");
        assert_eq!(format_distance(166274.15156960033), "166274.1516");
    }

    #[test]
    fn c_conversion() {
        assert_eq!(c_u64(1e300), 0);
        assert_eq!(c_u64(-5.0), u64::MAX - 4);
        assert_eq!(c_u64(3.9), 3);
        assert_eq!(c_u64(1.8e19), 18_000_000_000_000_000_000);
    }

    #[test]
    fn standard_geohash() {
        let h = standard_hash(3479099956230698.0).unwrap_or_default();
        assert_eq!(&h, b"sqc8b49rny0");
    }
}
