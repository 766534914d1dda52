//! Round trips of every type through the codec, payloads as
//! redis-server 7.0.15 writes them, and the older encodings Redis 7.0
//! still reads.

use super::*;
use crate::store::stream::{Group, Stream, StreamId};
use proptest::prelude::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A comparable view of a value (orders Redis leaves to its hash tables
/// sorted; streams with their metadata and groups).
fn view(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("str {s:?}"),
        Value::List(l) => format!(
            "list {:?}",
            l.iter().map(Bytes::copy_from_slice).collect::<Vec<_>>()
        ),
        Value::Hash(h) => {
            let mut pairs: Vec<_> = h.iter_bytes().collect();
            pairs.sort();
            format!("hash {pairs:?}")
        }
        Value::Set(s) => {
            let mut m: Vec<Bytes> = s.members().iter().map(|m| m.to_bytes()).collect();
            m.sort();
            format!("set {m:?}")
        }
        Value::ZSet(z) => {
            let mut out = Vec::new();
            let mut cur = z.first();
            while let Some(c) = cur {
                let (m, s) = z.entry(c);
                out.push((Bytes::copy_from_slice(m), s.to_bits()));
                cur = z.next(c);
            }
            format!("zset {out:?}")
        }
        Value::Stream(s) => format!(
            "stream {:?} len {} last {} first {} maxdel {} added {} groups {:?}",
            s.range(StreamId::MIN, StreamId::MAX, 0, false),
            s.len(),
            s.last_id,
            s.first_id,
            s.max_deleted_id,
            s.entries_added,
            s.groups
                .iter()
                .map(|(n, g)| (
                    n,
                    g.last_id,
                    g.entries_read,
                    &g.pel,
                    g.consumers
                        .iter()
                        .map(|(c, k)| (c, k.seen_time, &k.pel))
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
        ),
    }
}

/// A payload around `body` (a type byte and a value).
fn payload(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn restored(p: &[u8]) -> Value {
    assert!(payload_ok(p), "footer of {p:?}");
    restore(p).expect("decodes")
}

/// DUMP payloads redis-server 7.0.15 answered, and what they hold.
#[test]
fn redis_payloads_restore_and_dump_to_the_same_bytes() {
    let cases: &[(&str, &str)] = &[
        ("00c139300a009d94ea2793fc08b9", "str b\"12345\""),
        ("00c0f90a005e26d130d7a242ab", "str b\"-7\""),
        (
            "1201022525000000080081610281620281630201010201c12c02f178ec03f4ffe776481700000009ff0a00169a1a31076d58b0",
            "list [b\"a\", b\"b\", b\"c\", b\"1\", b\"2\", b\"300\", b\"-5000\", b\"99999999999\"]",
        ),
        (
            "101e1e000000060081610201018162028568656c6c6f0681630283332e3504ff0a002ac0d54c0b886908",
            "hash [(b\"a\", b\"1\"), (b\"b\", b\"hello\"), (b\"c\", b\"3.5\")]",
        ),
        (
            "0b1c04000000050000009cffffff010000000200000003000000701101000a009f4dd5a629d01743",
            "set [b\"-100\", b\"1\", b\"2\", b\"3\", b\"70000\"]",
        ),
        (
            "0b180800000002000000010000000000000000f2052a010000000a0054f5a26ae707b5fc",
            "set [b\"1\", b\"5000000000\"]",
        ),
    ];
    for (hex, want) in cases {
        let p = unhex(hex);
        let v = restored(&p);
        assert_eq!(view(&v), *want);
        assert_eq!(dump(&v, &Encoding::default()), p, "{want}");
    }
    // SET s4 with 100 'a': LZF-compressed.
    let p = unhex("00c3094064016161e057000161610a00e8a3b507b06df271");
    let v = restored(&p);
    assert!(matches!(&v, Value::Str(s) if s.len() == 100 && s.iter().all(|&b| b == b'a')));
    assert_eq!(dump(&v, &Encoding::default()), p);
    // ZADD z1 1 a 2.5 b -3 c 1e20 d
    let p = unhex("1124240000000800816302dffd02816102010181620283322e35048164028531652b323006ff0a00fa2fa3233c43ef1d");
    let v = restored(&p);
    assert_eq!(dump(&v, &Encoding::default()), p);
    let Value::ZSet(z) = &v else { panic!() };
    assert_eq!(z.score(b"d"), Some(1e20));
    assert_eq!(z.score(b"c"), Some(-3.0));
    // A stream with two groups, a PEL and consumers (XADD x1 1-1, 1-2,
    // 2-0; XREADGROUP of two entries by alice; g2 at $ with bob).
    let p = unhex("13011000000000000000010000000000000001404b4b000000190003010001020182663103826632030001020100010001827631038276320305010201000101018276330382763403050100010101dfff020101856f746865720601010601ff0302000101000003020267310102020200000000000000010000000000000001abd07a4da20100000100000000000000010000000000000002abd07a4da2010000010105616c696365abd07a4da2010000020000000000000001000000000000000100000000000000010000000000000002026732020081ffffffffffffffff000103626f62d3d07a4da2010000000a004268af6e6f0b3312");
    let v = restored(&p);
    assert_eq!(dump(&v, &Encoding::default()), p);
    let Value::Stream(s) = &v else { panic!() };
    assert_eq!(s.len(), 3);
    let g1 = &s.groups[&b"g1"[..]];
    assert_eq!(g1.pel.len(), 2);
    assert_eq!(g1.consumers[&b"alice"[..]].pel.len(), 2);
    assert_eq!(s.groups[&b"g2"[..]].entries_read, None);
    // A plain set (its order is Redis's hash table's).
    let v = restored(&unhex("02030162016101630a0099cc80dd5982d255"));
    assert_eq!(view(&v), "set [b\"a\", b\"b\", b\"c\"]");
}

#[test]
fn footer_checks() {
    let p = dump(&Value::Str((&b"x"[..]).into()), &Encoding::default());
    assert!(payload_ok(&p));
    let mut bad = p.clone();
    bad[1] ^= 1;
    assert!(!payload_ok(&bad));
    // A CRC of zero is checked too (redis-server refuses it).
    let n = bad.len();
    bad[n - 8..].fill(0);
    assert!(!payload_ok(&bad));
    // A newer RDB version is refused.
    let mut newer = p[..p.len() - 10].to_vec();
    newer.extend_from_slice(&11u16.to_le_bytes());
    let crc = CRC64.checksum(&newer);
    newer.extend_from_slice(&crc.to_le_bytes());
    assert!(!payload_ok(&newer));
    assert!(!payload_ok(&p[..9]));
}

/// The ziplist of `items` (strings only), as Redis before 7.0 wrote it.
fn ziplist(items: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0usize;
    for it in items {
        let start = body.len();
        body.push(prev as u8);
        body.push(it.len() as u8);
        body.extend_from_slice(it);
        prev = body.len() - start;
    }
    let mut zl = Vec::new();
    zl.extend_from_slice(&((body.len() + 11) as u32).to_le_bytes());
    zl.extend_from_slice(&0u32.to_le_bytes());
    zl.extend_from_slice(&(items.len() as u16).to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    zl
}

fn blob(ty: u8, b: &[u8]) -> Vec<u8> {
    let mut out = vec![ty];
    put_string(&mut out, b, false);
    out
}

#[test]
fn older_encodings_are_read() {
    let zl = ziplist(&[b"a", b"b", b"c"]);
    let list = "list [b\"a\", b\"b\", b\"c\"]";
    assert_eq!(
        view(&restored(&payload(&blob(TYPE_LIST_ZIPLIST, &zl)))),
        list
    );
    let mut ql = vec![TYPE_LIST_QUICKLIST, 2];
    put_string(&mut ql, &ziplist(&[b"a"]), false);
    put_string(&mut ql, &ziplist(&[b"b", b"c"]), false);
    assert_eq!(view(&restored(&payload(&ql))), list);
    let mut plain = vec![TYPE_LIST, 3];
    for s in ["a", "b", "c"] {
        put_string(&mut plain, s.as_bytes(), false);
    }
    assert_eq!(view(&restored(&payload(&plain))), list);

    let pairs = ziplist(&[b"f", b"v", b"g", b"w"]);
    let hash = "hash [(b\"f\", b\"v\"), (b\"g\", b\"w\")]";
    assert_eq!(
        view(&restored(&payload(&blob(TYPE_HASH_ZIPLIST, &pairs)))),
        hash
    );
    let zm = b"\x02\x01f\x01\x00v\x01g\x01\x00w\xff";
    assert_eq!(view(&restored(&payload(&blob(TYPE_HASH_ZIPMAP, zm)))), hash);

    let zz = ziplist(&[b"a", b"1.5", b"b", b"-2"]);
    let zset = format!(
        "zset [(b\"b\", {}), (b\"a\", {})]",
        (-2f64).to_bits(),
        1.5f64.to_bits()
    );
    assert_eq!(
        view(&restored(&payload(&blob(TYPE_ZSET_ZIPLIST, &zz)))),
        zset
    );
    let mut z1 = vec![TYPE_ZSET, 2];
    put_string(&mut z1, b"a", false);
    z1.extend_from_slice(b"\x031.5");
    put_string(&mut z1, b"b", false);
    z1.extend_from_slice(b"\x02-2");
    assert_eq!(view(&restored(&payload(&z1))), zset);

    // RDB_TYPE_STREAM_LISTPACKS: no first ID, greatest deleted ID,
    // entries added nor group read counters.
    let mut st = Stream::default();
    for (ms, seq) in [(1, 1), (1, 2), (2, 0)] {
        st.append(StreamId::new(ms, seq), &[(&b"f"[..], &b"v"[..])])
            .unwrap();
    }
    let mut v1 = Vec::new();
    write_object(&mut v1, &Value::Stream(Box::new(st)), &Encoding::default());
    // The last six bytes: first ID, greatest deleted ID, entries added,
    // the group count (one byte each here).
    v1.truncate(v1.len() - 6);
    v1[0] = TYPE_STREAM_LISTPACKS;
    v1.push(0);
    let old = restored(&payload(&v1));
    let Value::Stream(o) = &old else { panic!() };
    assert_eq!(o.len(), 3);
    assert_eq!(o.entries_added, 3);
    assert_eq!(o.first_id, StreamId::new(1, 1));
}

#[test]
fn bad_data_is_refused() {
    for body in [
        &b""[..],
        b"\x63",                                             // unknown type
        b"\x00\x05ab",                                       // string shorter than announced
        b"\x00\xc4",                                         // unknown string encoding
        b"\x01\x00",                                         // empty list
        b"\x02\x02\x01a\x01a",                               // duplicate set member
        b"\x04\x02\x01a\x01b\x01a\x01c",                     // duplicate hash field
        b"\x0b\x08\x02\x00\x00\x00\x05\x00\x00\x00\x01\x00", // intset count lies
        b"\x12\x01\x03\x00",                                 // unknown quicklist container
        b"\x01\x80\xff\xff\xff\xff",                         // a count far beyond the input
    ] {
        // Read without a footer, whose bytes Redis would read on into.
        assert!(restore(body).is_none(), "{body:?}");
    }
    // NaN scores.
    let mut z = vec![TYPE_ZSET_2, 1];
    put_string(&mut z, b"m", false);
    z.extend_from_slice(&f64::NAN.to_le_bytes());
    assert!(restore(&z).is_none());
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        any::<i64>().prop_map(|v| v.to_string().into_bytes()),
        (-300i64..300).prop_map(|v| v.to_string().into_bytes()),
        (0usize..300).prop_map(|n| vec![b'x'; n]),
    ]
}

fn stream_value() -> impl Strategy<Value = Value> {
    let entry = prop::collection::vec((0usize..3, member()), 1..4);
    (
        prop::collection::vec((0u64..3, entry), 0..150),
        prop::collection::vec((0usize..3, prop::collection::vec(0usize..200, 0..6)), 0..3),
    )
        .prop_map(|(entries, groups)| {
            let mut s = Stream::default();
            let mut id = StreamId::new(1, 0);
            let fields: [&[u8]; 3] = [b"f", b"name", b"12"];
            for (step, pairs) in entries {
                id = if step == 0 {
                    StreamId::new(id.ms, id.seq + 1)
                } else {
                    StreamId::new(id.ms + step * 1000, 0)
                };
                let pairs: Vec<(&[u8], &[u8])> = pairs
                    .iter()
                    .map(|(f, v)| (fields[*f], v.as_slice()))
                    .collect();
                s.append(id, &pairs).unwrap();
            }
            let ids: Vec<StreamId> = s
                .range(StreamId::MIN, StreamId::MAX, 0, false)
                .into_iter()
                .map(|e| e.0)
                .collect();
            for (gi, (nconsumers, delivered)) in groups.into_iter().enumerate() {
                let name = format!("g{gi}");
                let mut g = Group::new(name.as_bytes(), s.last_id, Some(s.entries_added));
                for c in 0..=nconsumers {
                    g.ensure_consumer(format!("c{c}").as_bytes(), 1000 + c as u64, false);
                }
                for (k, i) in delivered.into_iter().enumerate() {
                    if let Some(&id) = ids.get(i) {
                        g.deliver(
                            id,
                            format!("c{}", k % (nconsumers + 1)).as_bytes(),
                            5000 + k as u64,
                        );
                    }
                }
                s.groups.insert(Bytes::from(name), g);
            }
            Value::Stream(Box::new(s))
        })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        member().prop_map(|m| Value::Str(m.into())),
        prop::collection::vec(member(), 1..700).prop_map(|items| {
            let mut l = List::new();
            for i in items {
                l.push(&i, false);
            }
            Value::List(Box::new(l))
        }),
        prop::collection::vec((member(), member()), 1..200).prop_map(|pairs| {
            let mut h = Hash::default();
            for (f, v) in pairs {
                h.insert(&f, Bytes::from(v));
            }
            Value::Hash(Box::new(h))
        }),
        prop::collection::vec(member(), 1..600).prop_map(|ms| {
            let mut s = Set::default();
            for m in ms {
                s.insert(&m);
            }
            Value::Set(Box::new(s))
        }),
        prop::collection::vec(
            (
                member(),
                any::<f64>().prop_filter("not nan", |f| !f.is_nan())
            ),
            1..200
        )
        .prop_map(|ms| {
            let mut z = ZSet::default();
            for (m, s) in ms {
                z.insert(&m, s);
            }
            Value::ZSet(Box::new(z))
        }),
        stream_value(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_type_round_trips(v in value(), compress in any::<bool>(), fill in -5i64..40) {
        let enc = Encoding { compress, list_fill: fill, ..Encoding::default() };
        let p = dump(&v, &enc);
        prop_assert!(payload_ok(&p));
        let back = restore(&p).expect("decodes");
        prop_assert_eq!(view(&back), view(&v));
        prop_assert_eq!(dump(&back, &enc), p);
    }

    #[test]
    fn truncated_or_flipped_payloads_never_panic(v in value(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let mut p = dump(&v, &Encoding::default());
        p.truncate(p.len() - 10);
        let n = cut.index(p.len() + 1);
        let _ = restore(&p[..n]);
        if !p.is_empty() {
            let i = flip.0.index(p.len());
            p[i] ^= flip.1;
            let _ = restore(&p);
        }
    }
}
