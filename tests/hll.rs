//! HyperLogLog commands over TCP with the `redis` crate against an
//! in-process herald (port 0): the stored value is Redis's string layout
//! (sparse, then dense past `hll-sparse-max-bytes`), PFCOUNT's cache, the
//! union counts, and the error replies for non-HLL and corrupted values.

mod common;

use std::time::Duration;

use redis::Commands;

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn sparse_then_dense_and_counts() {
    let s = common::herald();
    let mut con = common::connect_redis(&s, TIMEOUT);
    let added: i64 = redis::cmd("PFADD").arg("h").query(&mut con).expect("pfadd");
    assert_eq!(added, 1);
    let raw: Vec<u8> = con.get("h").expect("get");
    assert_eq!(&raw[..], b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff");
    let zero: i64 = redis::cmd("PFCOUNT")
        .arg("h")
        .query(&mut con)
        .expect("pfcount");
    assert_eq!(zero, 0);

    let els: Vec<String> = (0..1000).map(|i| format!("e{i}")).collect();
    let _: i64 = redis::cmd("PFADD")
        .arg("h")
        .arg(&els)
        .query(&mut con)
        .expect("pfadd");
    let enc: String = redis::cmd("PFDEBUG")
        .arg("ENCODING")
        .arg("h")
        .query(&mut con)
        .expect("enc");
    assert_eq!(enc, "sparse");
    let n: i64 = redis::cmd("PFCOUNT")
        .arg("h")
        .query(&mut con)
        .expect("pfcount");
    assert!((950..1050).contains(&n), "{n}");
    // The cache is valid now (top bit of byte 15 clear).
    let b: Vec<u8> = con.getrange("h", 15, 15).expect("getrange");
    assert_eq!(b, vec![0]);

    common::config_set(&mut con, "hll-sparse-max-bytes", "100");
    let _: i64 = redis::cmd("PFADD")
        .arg("h")
        .arg("more")
        .arg("x")
        .query(&mut con)
        .expect("pfadd");
    let enc: String = redis::cmd("PFDEBUG")
        .arg("ENCODING")
        .arg("h")
        .query(&mut con)
        .expect("enc");
    assert_eq!(enc, "dense");
    let len: i64 = con.strlen("h").expect("strlen");
    assert_eq!(len, 16 + 12288);

    let _: i64 = redis::cmd("PFADD")
        .arg("o")
        .arg(&els[..500])
        .query(&mut con)
        .expect("pfadd");
    let union: i64 = redis::cmd("PFCOUNT")
        .arg("h")
        .arg("o")
        .query(&mut con)
        .expect("pfcount");
    assert!((950..1050).contains(&union), "{union}");
    let _: () = redis::cmd("PFMERGE")
        .arg("m")
        .arg("h")
        .arg("o")
        .query(&mut con)
        .expect("pfmerge");
    let merged: i64 = redis::cmd("PFCOUNT")
        .arg("m")
        .query(&mut con)
        .expect("pfcount");
    assert_eq!(merged, union);
}

#[test]
fn errors_for_wrong_and_corrupted_values() {
    let s = common::herald();
    let mut con = common::connect_redis(&s, TIMEOUT);
    let _: () = con.set("s", "not an hll").expect("set");
    let e = redis::cmd("PFCOUNT")
        .arg("s")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"));
    let _: i64 = redis::cmd("PFADD")
        .arg("h")
        .arg("a")
        .arg("b")
        .query(&mut con)
        .expect("pfadd");
    let _: i64 = con.append("h", "hello").expect("append");
    let e = redis::cmd("PFCOUNT")
        .arg("h")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert_eq!(e.code(), Some("INVALIDOBJ"));
    let e = redis::cmd("PFDEBUG")
        .arg("GETREG")
        .arg("nokey")
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(
        e.to_string().contains("The specified key does not exist"),
        "{e}"
    );
}
