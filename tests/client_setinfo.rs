//! CLIENT SETINFO, which herald implements as Redis 7.2 does (redis-server
//! 7.0, the differential suite's reference, does not have it). Clients such
//! as redis-py 5 and node-redis send it on every connect.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

fn roundtrip(s: &mut TcpStream, req: &[u8], expect: &[u8]) {
    s.write_all(req).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while got.len() < expect.len() {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expect)
    );
}

#[test]
fn setinfo_accepts_lib_name_and_version() {
    let server = common::herald();
    let mut s = common::connect_raw(server.addr());
    roundtrip(&mut s, b"CLIENT SETINFO LIB-NAME redis-py\r\n", b"+OK\r\n");
    roundtrip(&mut s, b"CLIENT SETINFO lib-ver 5.0.1\r\n", b"+OK\r\n");
    roundtrip(
        &mut s,
        b"CLIENT SETINFO lib-name \"a b\"\r\n",
        b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n",
    );
    roundtrip(
        &mut s,
        b"CLIENT SETINFO color red\r\n",
        b"-ERR Unrecognized option 'color'\r\n",
    );
    let meta = {
        let clients = server.shared().clients.all();
        let h = clients.first().unwrap();
        let m = h.meta.lock().clone();
        m
    };
    assert_eq!(meta.lib_name.as_deref(), Some(&b"redis-py"[..]));
    assert_eq!(meta.lib_ver.as_deref(), Some(&b"5.0.1"[..]));
}
