//! Fuzz target for whole RDB files (`herald::persist::rdb::file::load`):
//! `dump.rdb` at start-up, an AOF base with an RDB preamble, a
//! replication payload.
//!
//! Input: the bytes of a file (a `REDIS0010` header is put in front when
//! the input lacks one, so that the fuzzer spends its time past it).
//! Checked:
//! - no panic, no unbounded allocation, whatever the bytes;
//! - a file that loads re-encodes (checksum on) into a file that loads to
//!   the same keys and libraries.

#![no_main]

use bytes::Bytes;
use herald::persist::rdb::file::{load, write, Aux, LoadOptions, Sink};
use herald::persist::rdb::Encoding;
use herald::persist::snapshot::{Item, Snapshot};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Keep(Snapshot);

impl Sink for Keep {
    fn library(&mut self, code: Bytes) -> Result<(), String> {
        self.0.libraries.push(code);
        Ok(())
    }

    fn key(&mut self, db: usize, item: Item) -> Result<(), String> {
        if db >= 16 {
            return Err("db out of range".into());
        }
        if self.0.dbs.len() <= db {
            self.0.dbs.resize_with(db + 1, Vec::new);
        }
        self.0.dbs[db].push(item);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Vec::with_capacity(data.len() + 9);
    if !data.starts_with(b"REDIS") {
        input.extend_from_slice(b"REDIS0010");
    }
    input.extend_from_slice(data);
    let opts = LoadOptions {
        now_ms: 0,
        skip_expired: false,
        verify_checksum: false,
    };
    let mut first = Keep::default();
    if load(&input, opts, &mut first).is_err() {
        return;
    }
    let mut out = Vec::new();
    write(&mut out, &first.0, &Encoding::default(), &Aux::default()).expect("write to a Vec");
    let mut second = Keep::default();
    let checked = LoadOptions {
        verify_checksum: true,
        ..opts
    };
    load(&out, checked, &mut second).expect("our own file loads");
    let keys = |s: &Snapshot| -> Vec<(usize, Bytes, Option<u64>)> {
        s.dbs
            .iter()
            .enumerate()
            .flat_map(|(i, d)| d.iter().map(move |it| (i, it.key.clone(), it.expire_at)))
            .collect()
    };
    assert_eq!(keys(&first.0), keys(&second.0));
    assert_eq!(first.0.libraries, second.0.libraries);
});
