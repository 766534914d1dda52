//! FUNCTION libraries (`#!lua name=<lib>` code registering functions with
//! `redis.register_function`) and their Lua state.

use std::sync::Arc;

use parking_lot::Mutex;

use super::vm::Rand48;

/// The loaded libraries.
pub struct Library {
    _rng: Arc<Mutex<Rand48>>,
}

impl Library {
    pub fn new(rng: Arc<Mutex<Rand48>>) -> Library {
        Library { _rng: rng }
    }
}
