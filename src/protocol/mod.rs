//! The Redis wire protocol: reply values and their RESP2/RESP3 encoding
//! ([`frame`]), the incremental request parser ([`parse`]), and a reply
//! reader ([`reply`]) for replies the server gives itself (scripts).

pub mod frame;
pub mod parse;
pub mod reply;

pub use frame::{Frame, Protocol};
pub use parse::{ProtocolError, RequestParser};
