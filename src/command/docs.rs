//! STUB until the generated command metadata lands: COMMAND's replies.

use bytes::Bytes;

use crate::protocol::Frame;

/// COMMAND with no arguments.
pub fn command_reply(_implemented: &[&str]) -> Frame {
    Frame::Array(vec![])
}

/// COMMAND COUNT.
pub fn count(implemented: &[&str]) -> i64 {
    implemented.iter().filter(|n| !n.contains('|')).count() as i64
}

/// COMMAND INFO.
pub fn info(names: &[&[u8]], _implemented: &[&str]) -> Frame {
    Frame::Array(names.iter().map(|_| Frame::Null).collect())
}

/// COMMAND DOCS.
pub fn docs(_names: &[&[u8]], _implemented: &[&str]) -> Frame {
    Frame::Map(vec![])
}

/// COMMAND LIST.
pub fn list(_args: &[Bytes], implemented: &[&str]) -> Result<Frame, Frame> {
    Ok(Frame::Array(
        implemented
            .iter()
            .filter(|n| !n.contains('|'))
            .map(|n| Frame::bulk(n.to_string()))
            .collect(),
    ))
}

/// COMMAND GETKEYS.
pub fn getkeys(_args: &[Bytes]) -> Result<Frame, Frame> {
    Err(Frame::error("ERR The command has no key arguments"))
}

/// COMMAND GETKEYSANDFLAGS.
pub fn getkeysandflags(_args: &[Bytes]) -> Result<Frame, Frame> {
    Err(Frame::error("ERR The command has no key arguments"))
}

/// COMMAND HELP.
pub fn help() -> Frame {
    Frame::Array(vec![])
}
