//! Fuzz target for the RDB value decoder behind RESTORE
//! (`herald::persist::rdb`).
//!
//! Input: a type byte and a value, read as RESTORE reads a payload whose
//! footer checked out. Checked:
//! - no panic, no unbounded allocation, whatever the bytes;
//! - what decodes re-encodes (with and without compression) into a payload
//!   that passes the footer check and decodes to a value that encodes to
//!   the same bytes again (the encoder is deterministic on its own output).

#![no_main]

use herald::persist::rdb::{self, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(value) = rdb::restore(data) else {
        return;
    };
    for compress in [true, false] {
        let enc = Encoding {
            compress,
            ..Encoding::default()
        };
        let payload = rdb::dump(&value, &enc);
        assert!(rdb::payload_ok(&payload));
        let again = rdb::restore(&payload).expect("our own payload decodes");
        assert_eq!(rdb::dump(&again, &enc), payload, "stable re-encoding");
    }
});
