//! Encoding of published messages, once per protocol version.
//!
//! A PUBLISH builds one [`Message`]; the first RESP2 subscriber makes it
//! encode the RESP2 frame, the first RESP3 subscriber the RESP3 push frame,
//! and every subscriber after that receives a clone of the same [`Bytes`]
//! (a reference-count increment). Pattern deliveries (`pmessage`) carry the
//! pattern too, so they are encoded once per matching pattern and protocol.

use std::cell::OnceCell;

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::frame::{put_bulk, put_int_line};
use crate::protocol::Protocol;

/// The kind of push frame, by the first element clients switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `message`: delivery to a channel subscriber.
    Message,
    /// `smessage`: delivery to a shard-channel subscriber.
    SMessage,
}

/// A message being delivered, with its encodings made on first use.
pub struct Message<'a> {
    kind: Kind,
    channel: &'a [u8],
    payload: &'a [u8],
    resp2: OnceCell<Bytes>,
    resp3: OnceCell<Bytes>,
}

impl<'a> Message<'a> {
    /// A message on `channel` (nothing is encoded yet).
    pub fn new(kind: Kind, channel: &'a [u8], payload: &'a [u8]) -> Self {
        Message {
            kind,
            channel,
            payload,
            resp2: OnceCell::new(),
            resp3: OnceCell::new(),
        }
    }

    /// The channel the message was published to.
    pub fn channel(&self) -> &'a [u8] {
        self.channel
    }

    /// The payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The frame for a `proto` subscriber, shared by all of them.
    #[inline]
    pub fn frame(&self, proto: Protocol) -> Bytes {
        let cell = match proto {
            Protocol::Resp2 => &self.resp2,
            Protocol::Resp3 => &self.resp3,
        };
        cell.get_or_init(|| {
            let kind: &[u8] = match self.kind {
                Kind::Message => b"message",
                Kind::SMessage => b"smessage",
            };
            encode_push(proto, &[kind, self.channel, self.payload])
        })
        .clone()
    }
}

/// Encodes a push of bulk strings: `*N` in RESP2, `>N` in RESP3.
pub fn encode_push(proto: Protocol, parts: &[&[u8]]) -> Bytes {
    let len: usize = parts.iter().map(|p| p.len() + 16).sum::<usize>() + 8;
    let mut out = BytesMut::with_capacity(len);
    let prefix = match proto {
        Protocol::Resp2 => b'*',
        Protocol::Resp3 => b'>',
    };
    put_int_line(&mut out, prefix, parts.len() as i64);
    for p in parts {
        put_bulk(&mut out, p);
    }
    out.freeze()
}

/// Encodes a subscription confirmation such as `subscribe <channel> <count>`
/// (`channel` is `None` for the `[kind, nil, 0]` reply to a bare
/// UNSUBSCRIBE with no subscriptions).
pub fn encode_confirmation(
    proto: Protocol,
    kind: &[u8],
    channel: Option<&[u8]>,
    count: usize,
) -> Bytes {
    let mut out = BytesMut::with_capacity(32 + channel.map_or(0, |c| c.len()));
    let prefix = match proto {
        Protocol::Resp2 => b'*',
        Protocol::Resp3 => b'>',
    };
    put_int_line(&mut out, prefix, 3);
    put_bulk(&mut out, kind);
    match channel {
        Some(c) => put_bulk(&mut out, c),
        None => match proto {
            Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
            Protocol::Resp3 => out.put_slice(b"_\r\n"),
        },
    }
    put_int_line(&mut out, b':', count as i64);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_once_per_protocol() {
        let m = Message::new(Kind::Message, b"ch", b"hi");
        let a = m.frame(Protocol::Resp2);
        let b = m.frame(Protocol::Resp2);
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(&a[..], b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        assert_eq!(&m.frame(Protocol::Resp3)[..1], b">");
    }
}
