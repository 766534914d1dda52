//! Redis 7.0's conversions between Lua values and replies, both ways.
//!
//! - what `redis.call` returns for a command's reply
//!   (`redisProtocolToLuaType`, done on the Lua stack by `vm`'s
//!   `push_frame`): integers become numbers, bulk strings
//!   strings, RESP2 nulls `false` (RESP3 nulls `nil`), arrays tables; a
//!   status is `{ok = text}`, an error `{err = "CODE msg"}`; the RESP3
//!   types are tables with one field (`map`, `set`, `double`,
//!   `big_number`, `verbatim_string`) or booleans.
//! - [`lua_to_reply`]: what a script's return value replies
//!   (`luaReplyToRedisReply`): strings are bulk strings, numbers integers
//!   (truncated), booleans `:1` / nil in RESP2 mode and booleans in RESP3
//!   mode, tables arrays up to the first nil, unless they have one of the
//!   fields above; anything else is nil.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::protocol::Frame;

/// How deep a returned table may nest before the reply says
/// "reached lua stack limit" (Redis stops where the Lua C stack ends).
const MAX_REPLY_DEPTH: usize = 1000;

/// Redis's error table for an error text (`luaPushErrorBuff`): a text with
/// a leading `-` has its code up to the first space; one without gets
/// `ERR`; trailing CR/LF are trimmed.
pub fn error_table(lua: &Lua, text: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set("err", lua.create_string(error_text(text))?)?;
    Ok(t)
}

/// The `err` string of [`error_table`].
pub fn error_text(text: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match memchr::memchr(b' ', rest) {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let msg = trim_crlf(msg);
    let mut out = Vec::with_capacity(code.len() + 1 + msg.len());
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(msg);
    out
}

/// `s` without leading or trailing CR and LF.
pub(super) fn trim_crlf(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    while let [b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    s
}

/// Converts a script's return value into the reply (`resp3`: the protocol
/// the script chose with `redis.setresp`, which decides how booleans go).
pub fn lua_to_reply(v: &Value, resp3: bool) -> Frame {
    to_reply(v, resp3, 0)
}

fn to_reply(v: &Value, resp3: bool, depth: usize) -> Frame {
    match v {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) => {
            if resp3 {
                Frame::Boolean(*b)
            } else if *b {
                Frame::Integer(1)
            } else {
                Frame::Null
            }
        }
        Value::Integer(i) => Frame::Integer(*i),
        Value::Number(n) => Frame::Integer(c_long_long(*n)),
        Value::Table(t) => {
            if depth >= MAX_REPLY_DEPTH {
                return Frame::error("ERR reached lua stack limit");
            }
            table_to_reply(t, resp3, depth).unwrap_or_else(|e| Frame::error(format!("ERR {e}")))
        }
        _ => Frame::Null,
    }
}

/// Redis's `(long long)` cast of a Lua number. On x86-64 a double out of
/// range (infinities included) or NaN converts to `i64::MIN` (the
/// "integer indefinite" value), where Rust's `as` would saturate.
fn c_long_long(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> mlua::Result<Frame> {
    if let Value::String(e) = t.raw_get::<Value>("err")? {
        return Ok(Frame::Error(Bytes::from(no_newlines(&e.as_bytes()))));
    }
    if let Value::String(s) = t.raw_get::<Value>("ok")? {
        return Ok(Frame::Simple(Bytes::from(no_newlines(&s.as_bytes()))));
    }
    match t.raw_get::<Value>("double")? {
        Value::Number(d) => return Ok(Frame::Double(d)),
        Value::Integer(i) => return Ok(Frame::Double(i as f64)),
        _ => {}
    }
    if let Value::String(s) = t.raw_get::<Value>("big_number")? {
        return Ok(Frame::BigNumber(Bytes::from(no_newlines(&s.as_bytes()))));
    }
    if let Value::Table(v) = t.raw_get::<Value>("verbatim_string")? {
        if let (Value::String(f), Value::String(s)) =
            (v.raw_get::<Value>("format")?, v.raw_get::<Value>("string")?)
        {
            let format = if &f.as_bytes()[..] == b"mkd" {
                "mkd"
            } else {
                "txt"
            };
            return Ok(Frame::Verbatim(
                format,
                Bytes::copy_from_slice(&s.as_bytes()),
            ));
        }
    }
    if let Value::Table(m) = t.raw_get::<Value>("map")? {
        let mut pairs = Vec::new();
        for kv in m.pairs::<Value, Value>() {
            let (k, v) = kv?;
            pairs.push((
                to_reply(&k, resp3, depth + 1),
                to_reply(&v, resp3, depth + 1),
            ));
        }
        return Ok(Frame::Map(pairs));
    }
    if let Value::Table(s) = t.raw_get::<Value>("set")? {
        let mut items = Vec::new();
        for kv in s.pairs::<Value, Value>() {
            let (k, _) = kv?;
            items.push(to_reply(&k, resp3, depth + 1));
        }
        return Ok(Frame::Set(items));
    }
    let mut items = Vec::new();
    let mut i = 1i64;
    loop {
        let v: Value = t.raw_get(i)?;
        if v.is_nil() {
            break;
        }
        let item = to_reply(&v, resp3, depth + 1);
        let stop = depth + 1 >= MAX_REPLY_DEPTH && matches!(item, Frame::Error(_));
        items.push(item);
        if stop {
            break;
        }
        i += 1;
    }
    Ok(Frame::Array(items))
}

/// Status and error texts cannot hold CR or LF: Redis turns them into spaces.
fn no_newlines(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_get_a_code() {
        assert_eq!(error_text(b"-WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"-NOCODE"), b"ERR NOCODE");
        assert_eq!(error_text(b"My bad\r\n"), b"ERR My bad");
        assert_eq!(error_text(b"-ERR syntax error"), b"ERR syntax error");
    }

    #[test]
    fn values_convert_as_redis_does() {
        let lua = Lua::new();
        let v: Value = lua
            .load("return {1, 'a', {ok='fine'}, 3.99, true, false, nil, 5}")
            .eval()
            .unwrap();
        assert_eq!(
            lua_to_reply(&v, false),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::bulk_from(b"a"),
                Frame::simple("fine"),
                Frame::Integer(3),
                Frame::Integer(1),
                Frame::Null,
            ])
        );
        assert_eq!(c_long_long(f64::INFINITY), i64::MIN);
        assert_eq!(c_long_long(f64::NEG_INFINITY), i64::MIN);
        assert_eq!(c_long_long(f64::NAN), i64::MIN);
        assert_eq!(c_long_long(1e300), i64::MIN);
        assert_eq!(c_long_long(-9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(c_long_long(-3.9), -3);
        assert_eq!(error_text(b"-ERR x\r\n"), b"ERR x");
        assert_eq!(error_text(b"-NOPE"), b"ERR NOPE");
        assert_eq!(error_text(b"plain"), b"ERR plain");
    }
}
