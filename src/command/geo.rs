//! GEO commands: GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS,
//! GEORADIUSBYMEMBER and their `_RO` forms, GEOSEARCH, GEOSEARCHSTORE
//! (Redis's `geo.c`).
//!
//! A GEO key is an ordinary sorted set whose scores are 52-bit geohashes
//! (`util::geohash`), so ZRANGE WITHSCORES, DUMP and the AOF see what
//! redis-server stores. GEOADD is ZADD with computed scores, and is logged
//! as that ZADD, as Redis rewrites it. A search scans the score ranges of
//! the 9 cells covering the area, keeps the points inside the shape, and
//! sorts them with the algorithms Redis uses, so that ties come out in the
//! same order.

use bytes::{BufMut, Bytes, BytesMut};

use super::zsets::{self, read};
use super::{parse_i64, ERR_NOT_INTEGER, ERR_SYNTAX};
use crate::command::Client;
use crate::config::notify;
use crate::protocol::frame::{put_bulk, put_int_line};
use crate::protocol::Protocol;
use crate::store::zset::ScoreRange;
use crate::store::{Db, Value, ZSet, WRONGTYPE};
use crate::util::c_str;
use crate::util::geohash::{self, Kind, Shape};
use crate::util::pqsort::{msort, pqsort};

const ERR_DECODE: &str = "ERR could not decode requested zset member";

/// True if `arg`, as C's `strcasecmp` sees it, is `word`.
fn is(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// `getDoubleFromObjectOrReply`: the number, or the error to reply.
fn double(arg: &[u8], msg: Option<&str>) -> Result<f64, String> {
    c_double(arg).ok_or_else(|| {
        msg.map_or("ERR value is not a valid float".into(), |m| {
            format!("ERR {m}")
        })
    })
}

/// `getDoubleFromObject`: the whole argument is one `strtod` number, not
/// NaN, not out of range (`1e400` and `1e-400` set ERANGE and are
/// refused; a written `inf` is a number).
fn c_double(arg: &[u8]) -> Option<f64> {
    if arg.first().is_none_or(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let (v, used) = crate::util::strtod::strtod(arg)?;
    if used != arg.len() || v.is_nan() {
        return None;
    }
    let lower = arg.to_ascii_lowercase();
    let hex = lower.windows(2).any(|w| w == b"0x");
    if v.is_infinite() && !lower.windows(3).any(|w| w == b"inf") {
        return None;
    }
    if v == 0.0 {
        // Underflow: a nonzero mantissa that rounded to zero.
        let mantissa_end = lower
            .iter()
            .position(|&b| if hex { b == b'p' } else { b == b'e' })
            .unwrap_or(lower.len());
        let digits = lower.get(..mantissa_end).unwrap_or_default();
        let digits = if hex {
            digits
                .windows(2)
                .position(|w| w == b"0x")
                .and_then(|i| digits.get(i + 2..))
                .unwrap_or_default()
        } else {
            digits
        };
        let nonzero = |b: &u8| {
            if hex {
                b.is_ascii_hexdigit() && *b != b'0'
            } else {
                (b'1'..=b'9').contains(b)
            }
        };
        if digits.iter().any(nonzero) {
            return None;
        }
    }
    Some(v)
}

/// `extractLongLatOrReply`: a longitude and latitude within the limits.
fn lon_lat(args: &[Bytes]) -> Result<(f64, f64), String> {
    let (Some(a), Some(b)) = (args.first(), args.get(1)) else {
        return Err(ERR_SYNTAX.into());
    };
    let lon = double(a, None)?;
    let lat = double(b, None)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&lon)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&lat)
    {
        return Err(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        ));
    }
    Ok((lon, lat))
}

/// `extractUnitOrReply`: meters per unit.
fn unit(arg: &[u8]) -> Result<f64, String> {
    Ok(if is(arg, "m") {
        1.0
    } else if is(arg, "km") {
        1000.0
    } else if is(arg, "ft") {
        0.3048
    } else if is(arg, "mi") {
        1609.34
    } else {
        return Err("ERR unsupported unit provided. please use M, KM, FT, MI".into());
    })
}

/// `extractDistanceOrReply`: (radius, meters per unit).
fn radius(args: &[Bytes]) -> Result<(f64, f64), String> {
    let (Some(r), Some(u)) = (args.first(), args.get(1)) else {
        return Err(ERR_SYNTAX.into());
    };
    let r = double(r, Some("need numeric radius"))?;
    if r < 0.0 {
        return Err("ERR radius cannot be negative".into());
    }
    Ok((r, unit(u)?))
}

/// `extractBoxOrReply`: (width, height, meters per unit).
fn bbox(args: &[Bytes]) -> Result<(f64, f64, f64), String> {
    let (Some(w), Some(h), Some(u)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(ERR_SYNTAX.into());
    };
    let w = double(w, Some("need numeric width"))?;
    let h = double(h, Some("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err("ERR height or width cannot be negative".into());
    }
    Ok((w, h, unit(u)?))
}

/// The position a member's score stands for (`longLatFromMember`).
fn member_pos(z: &ZSet, member: &[u8]) -> Option<(f64, f64)> {
    geohash::decode_score(z.score(member)?)
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD with the
/// points' geohashes as scores, logged as that ZADD.
pub fn geoadd(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let (mut xx, mut nx) = (false, false);
    let mut longidx = 2;
    while let Some(opt) = args.get(longidx) {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if !is(opt, "ch") {
            break;
        }
        longidx += 1;
    }
    let rest = args.get(longidx..).unwrap_or_default();
    if !rest.len().is_multiple_of(3) || (xx && nx) {
        return c.error(ERR_SYNTAX);
    }
    let mut zargs = Vec::with_capacity(longidx + rest.len() / 3 * 2);
    zargs.push(Bytes::from_static(b"zadd"));
    zargs.extend(args.iter().take(longidx).skip(1).cloned());
    for p in rest.chunks(3) {
        let (lon, lat) = match lon_lat(p) {
            Ok(xy) => xy,
            Err(e) => return c.error(e),
        };
        let score = geohash::score_of(lon, lat).unwrap_or(0);
        zargs.push(Bytes::from(score.to_string()));
        if let Some(m) = p.get(2) {
            zargs.push(m.clone());
        }
    }
    let before = db.dirty;
    zsets::zadd(c, db, &zargs);
    if db.dirty != before {
        db.propagate(zargs);
    }
}

/// GEODIST key member1 member2 [M|KM|FT|MI].
pub fn geodist(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let mut to_meter = 1.0;
    if args.len() == 5 {
        match unit(&args[4]) {
            Ok(u) => to_meter = u,
            Err(e) => return c.error(e),
        }
    } else if args.len() > 5 {
        return c.error(ERR_SYNTAX);
    }
    let z = match db.get(&args[1]) {
        None => return c.reply(crate::protocol::Frame::Null),
        Some(Value::ZSet(z)) => z,
        Some(_) => return c.error(WRONGTYPE),
    };
    let (Some(a), Some(b)) = (member_pos(z, &args[2]), member_pos(z, &args[3])) else {
        return c.reply(crate::protocol::Frame::Null);
    };
    let d = geohash::distance(a.0, a.1, b.0, b.1) / to_meter;
    c.reply(crate::protocol::Frame::Bulk(Bytes::from(
        geohash::format_distance(d),
    )));
}

/// GEOHASH key [member ...]: 11-character standard geohashes.
pub fn geohash_cmd(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Ok(z) = read(c, db, &args[1]) else {
        return;
    };
    let mut out = BytesMut::new();
    put_int_line(&mut out, b'*', args.len() as i64 - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)).and_then(geohash::standard_hash) {
            Some(h) => put_bulk(&mut out, &h),
            None => put_null(&mut out, c.protocol, false),
        }
    }
    c.reply_raw(&out);
}

/// GEOPOS key [member ...]: each member's [longitude, latitude].
pub fn geopos(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    let Ok(z) = read(c, db, &args[1]) else {
        return;
    };
    let proto = c.protocol;
    let mut out = BytesMut::new();
    put_int_line(&mut out, b'*', args.len() as i64 - 2);
    for m in &args[2..] {
        match z.and_then(|z| member_pos(z, m)) {
            Some((lon, lat)) => {
                put_int_line(&mut out, b'*', 2);
                put_coord(&mut out, proto, lon);
                put_coord(&mut out, proto, lat);
            }
            None => put_null(&mut out, proto, true),
        }
    }
    c.reply_raw(&out);
}

/// The nil reply (`$-1`, or `*-1` for a missing array) or RESP3's `_`.
fn put_null(out: &mut BytesMut, proto: Protocol, array: bool) {
    out.extend_from_slice(match (proto, array) {
        (Protocol::Resp3, _) => b"_\r\n",
        (Protocol::Resp2, false) => b"$-1\r\n",
        (Protocol::Resp2, true) => b"*-1\r\n",
    });
}

/// A coordinate as `addReplyHumanLongDouble` sends it: a bulk string in
/// RESP2, a double (`,`) with the same digits in RESP3.
fn put_coord(out: &mut BytesMut, proto: Protocol, d: f64) {
    let text = geohash::format_coord(d);
    match proto {
        Protocol::Resp2 => put_bulk(out, text.as_bytes()),
        Protocol::Resp3 => {
            out.put_u8(b',');
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Search around given coordinates (GEORADIUS*).
const COORDS: u8 = 1;
/// Search around a member (GEORADIUSBYMEMBER*).
const MEMBER: u8 = 1 << 1;
/// No STORE / STOREDIST (the `_RO` forms).
const NOSTORE: u8 = 1 << 2;
/// GEOSEARCH's argument syntax.
const SEARCH: u8 = 1 << 3;
/// GEOSEARCHSTORE: the destination is the first key, only STOREDIST.
const SEARCHSTORE: u8 = 1 << 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A parsed search request.
struct Query {
    shape: Shape,
    store: Option<Bytes>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    count: usize,
}

/// A point found by a search (`geoPoint`).
#[derive(Clone)]
struct Point {
    member: Bytes,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// GEORADIUS key longitude latitude radius unit [options].
pub fn georadius(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    search_generic(c, db, args, 1, COORDS)
}

/// GEORADIUS_RO: GEORADIUS without STORE.
pub fn georadius_ro(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    search_generic(c, db, args, 1, COORDS | NOSTORE)
}

/// GEORADIUSBYMEMBER key member radius unit [options].
pub fn georadiusbymember(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    search_generic(c, db, args, 1, MEMBER)
}

/// GEORADIUSBYMEMBER_RO: GEORADIUSBYMEMBER without STORE.
pub fn georadiusbymember_ro(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    search_generic(c, db, args, 1, MEMBER | NOSTORE)
}

/// GEOSEARCH key FROMMEMBER m|FROMLONLAT lon lat BYRADIUS r u|BYBOX w h u
/// [options].
pub fn geosearch(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    search_generic(c, db, args, 1, SEARCH)
}

/// GEOSEARCHSTORE dst src ... [STOREDIST].
pub fn geosearchstore(c: &mut Client, db: &mut Db, args: &[Bytes]) {
    search_generic(c, db, args, 2, SEARCH | SEARCHSTORE)
}

/// Parses a search's arguments in `georadiusGeneric`'s order, so that the
/// first error Redis would report is the one reported. `z` is the source
/// set (None if missing: a member cannot be located, but the arguments are
/// still checked).
fn parse(z: Option<&ZSet>, args: &[Bytes], flags: u8) -> Result<Query, String> {
    let mut shape = Shape {
        lon: 0.0,
        lat: 0.0,
        conversion: 0.0,
        kind: Kind::Circle { radius: 0.0 },
    };
    let mut store = None;
    let base_args;
    if flags & COORDS != 0 {
        base_args = 6;
        (shape.lon, shape.lat) = lon_lat(&args[2..])?;
        let (r, conv) = radius(&args[4..])?;
        shape.kind = Kind::Circle { radius: r };
        shape.conversion = conv;
    } else if flags & MEMBER != 0 {
        base_args = 5;
        if let Some(z) = z {
            (shape.lon, shape.lat) = member_pos(z, &args[2]).ok_or(ERR_DECODE)?;
            let (r, conv) = radius(&args[3..])?;
            shape.kind = Kind::Circle { radius: r };
            shape.conversion = conv;
        }
    } else {
        base_args = if flags & SEARCHSTORE != 0 {
            store = Some(args[1].clone());
            3
        } else {
            2
        };
    }

    let search = flags & SEARCH != 0;
    let (mut withdist, mut withhash, mut withcoord, mut any, mut storedist) =
        (false, false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut count: i64 = 0;
    let opts = args.get(base_args..).unwrap_or_default();
    let remaining = opts.len();
    let mut i = 0;
    while i < remaining {
        let arg = &opts[i];
        if is(arg, "withdist") {
            withdist = true;
        } else if is(arg, "withhash") {
            withhash = true;
        } else if is(arg, "withcoord") {
            withcoord = true;
        } else if is(arg, "any") {
            any = true;
        } else if is(arg, "asc") {
            sort = Sort::Asc;
        } else if is(arg, "desc") {
            sort = Sort::Desc;
        } else if is(arg, "count") && i + 1 < remaining {
            count = parse_i64(&opts[i + 1]).ok_or(ERR_NOT_INTEGER)?;
            if count <= 0 {
                return Err("ERR COUNT must be > 0".into());
            }
            i += 1;
        } else if (is(arg, "store") || is(arg, "storedist"))
            && i + 1 < remaining
            && flags & (NOSTORE | SEARCH) == 0
        {
            store = Some(opts[i + 1].clone());
            storedist = is(arg, "storedist");
            i += 1;
        } else if is(arg, "storedist") && search && flags & SEARCHSTORE != 0 {
            storedist = true;
        } else if is(arg, "frommember") && i + 1 < remaining && search && !fromloc {
            if let Some(z) = z {
                (shape.lon, shape.lat) = member_pos(z, &opts[i + 1]).ok_or(ERR_DECODE)?;
            }
            frommember = true;
            i += 1;
        } else if is(arg, "fromlonlat") && i + 2 < remaining && search && !frommember {
            (shape.lon, shape.lat) = lon_lat(&opts[i + 1..])?;
            fromloc = true;
            i += 2;
        } else if is(arg, "byradius") && i + 2 < remaining && search && !bybox {
            let (r, conv) = radius(&opts[i + 1..])?;
            shape.kind = Kind::Circle { radius: r };
            shape.conversion = conv;
            byradius = true;
            i += 2;
        } else if is(arg, "bybox") && i + 3 < remaining && search && !byradius {
            let (w, h, conv) = bbox(&opts[i + 1..])?;
            shape.kind = Kind::Rect {
                width: w,
                height: h,
            };
            shape.conversion = conv;
            bybox = true;
            i += 3;
        } else {
            return Err(ERR_SYNTAX.into());
        }
        i += 1;
    }

    if store.is_some() && (withdist || withhash || withcoord) {
        return Err(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if flags & SEARCHSTORE != 0 {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    let name = || String::from_utf8_lossy(c_str(&args[0])).into_owned();
    if search && !(frommember || fromloc) {
        return Err(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            name()
        ));
    }
    if search && !(byradius || bybox) {
        return Err(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            name()
        ));
    }
    if any && count == 0 {
        return Err("ERR the ANY argument requires COUNT argument".into());
    }
    // COUNT alone asks for the nearest ones: sort them (not with ANY).
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    Ok(Query {
        shape,
        store,
        storedist,
        withdist,
        withhash,
        withcoord,
        sort,
        any,
        count: usize::try_from(count).unwrap_or(usize::MAX),
    })
}

/// `membersOfAllNeighbors`: the points inside the shape, cell by cell in
/// Redis's order, stopping at `limit` points (COUNT ANY; 0: no limit).
fn find_points(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let cells = geohash::areas_by_shape(shape);
    let mut out = Vec::new();
    let mut last_processed = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        // Huge radii make adjacent cells coincide; scan such a cell once.
        if last_processed != 0 && *cell == cells[last_processed] {
            continue;
        }
        if !out.is_empty() && limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::score_range(*cell);
        let range = ScoreRange {
            min: min as f64,
            minex: false,
            max: max as f64,
            maxex: true,
        };
        let mut cur = z.first_in_score(&range);
        while let Some(at) = cur {
            let (member, score) = z.entry(at);
            if !ZSet::score_in(&range, score) {
                break;
            }
            if let Some((lon, lat)) = geohash::decode_score(score) {
                if let Some(dist) = shape.distance_if_within(lon, lat) {
                    out.push(Point {
                        member: Bytes::copy_from_slice(member),
                        score,
                        lon,
                        lat,
                        dist,
                    });
                }
            }
            if !out.is_empty() && limit != 0 && out.len() >= limit {
                break;
            }
            cur = z.next(at);
        }
        last_processed = i;
    }
    out
}

/// `sort_gp_asc`: C's three-way comparison of distances (NaN sorts first).
fn cmp_asc(a: &Point, b: &Point) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.dist > b.dist {
        Ordering::Greater
    } else if a.dist == b.dist {
        Ordering::Equal
    } else {
        Ordering::Less
    }
}

fn search_generic(c: &mut Client, db: &mut Db, args: &[Bytes], src_idx: usize, flags: u8) {
    let Ok(z) = read(c, db, &args[src_idx]) else {
        return;
    };
    let q = match parse(z, args, flags) {
        Ok(q) => q,
        Err(e) => return c.error(e),
    };
    let Some(z) = z else {
        match &q.store {
            Some(dst) => {
                db.delete(dst);
                c.reply(crate::protocol::Frame::Integer(0));
            }
            None => c.reply_raw(b"*0\r\n"),
        }
        return;
    };
    let mut points = find_points(z, &q.shape, if q.any { q.count } else { 0 });
    if points.is_empty() && q.store.is_none() {
        return c.reply_raw(b"*0\r\n");
    }
    let returned = if q.count == 0 {
        points.len()
    } else {
        points.len().min(q.count)
    };
    if q.sort != Sort::None {
        let desc = q.sort == Sort::Desc;
        let mut cmp = |a: &Point, b: &Point| {
            let o = cmp_asc(a, b);
            if desc {
                o.reverse()
            } else {
                o
            }
        };
        if returned == points.len() {
            msort(&mut points, &mut cmp);
        } else if returned > 0 {
            pqsort(&mut points, &mut cmp, 0, returned - 1);
        }
    }
    points.truncate(returned);
    let conversion = q.shape.conversion;

    let Some(dst) = q.store else {
        let proto = c.protocol;
        let options = usize::from(q.withdist) + usize::from(q.withcoord) + usize::from(q.withhash);
        let mut out = BytesMut::new();
        put_int_line(&mut out, b'*', returned as i64);
        for p in &points {
            if options > 0 {
                put_int_line(&mut out, b'*', options as i64 + 1);
            }
            put_bulk(&mut out, &p.member);
            if q.withdist {
                put_bulk(
                    &mut out,
                    geohash::format_distance(p.dist / conversion).as_bytes(),
                );
            }
            if q.withhash {
                put_int_line(&mut out, b':', p.score as i64);
            }
            if q.withcoord {
                put_int_line(&mut out, b'*', 2);
                put_coord(&mut out, proto, p.lon);
                put_coord(&mut out, proto, p.lat);
            }
        }
        return c.reply_raw(&out);
    };

    if returned == 0 {
        db.delete(&dst);
        return c.reply(crate::protocol::Frame::Integer(0));
    }
    let mut nz = ZSet::default();
    for p in &points {
        let score = if q.storedist {
            p.dist / conversion
        } else {
            p.score
        };
        nz.insert(&p.member, score);
    }
    db.set(&dst, Value::ZSet(Box::new(nz)), false);
    db.modified(&dst);
    db.notify(
        notify::ZSET,
        if flags & SEARCH != 0 {
            "geosearchstore"
        } else {
            "georadiusstore"
        },
        &dst,
    );
    c.reply(crate::protocol::Frame::Integer(returned as i64));
}
