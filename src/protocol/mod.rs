//! The Redis wire protocol: reply values and their RESP2/RESP3 encoding
//! ([`frame`]), and the incremental request parser ([`parse`]).

pub mod frame;
pub mod parse;

pub use frame::{Frame, Protocol};
pub use parse::{ProtocolError, RequestParser};
