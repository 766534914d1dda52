//! FUNCTION libraries: `#!lua name=<lib>` code that registers functions
//! with `redis.register_function`, run by FCALL, as Redis 7.0's functions
//! engine.
//!
//! Libraries live in a Lua state of their own. Every library's code and
//! every function run with one environment table whose lookups go, while a
//! library loads, to the load-time API only (`redis.register_function`,
//! `redis.log`, the version; anything else is a "nonexistent global"
//! error, as in Redis) and, while a function runs, to the full sandboxed
//! globals. Registered callbacks stay in the state's registry
//! (`__functions`); Rust keeps names, flags and descriptions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, Lua, Table, Value};
use parking_lot::Mutex;

use super::libs::{self, Args, LibError, LibResult, Out};
use super::vm::{self, raise, Call, Rand48, RunCtx, Vm};
use super::{Flags, Running};
use crate::protocol::Frame;

/// How long a library's code may run while it loads (Redis's
/// `LOAD_TIMEOUT_MS`).
const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// The chunk name of library code (errors say `user_function:LINE:`).
const CHUNK: &str = "@user_function";

/// A registered function, as FUNCTION LIST shows it.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub flags: Flags,
    pub description: Option<Bytes>,
}

/// A loaded library.
#[derive(Clone, Debug)]
pub struct Lib {
    pub code: Bytes,
    pub functions: BTreeMap<String, FunctionInfo>,
}

/// The functions engine: its Lua state and the libraries loaded in it.
pub struct Library {
    vm: Vm,
    /// `switch(loading)`: points the environment at the load-time API or
    /// at the full globals.
    switch: Function,
    env: Table,
    libs: BTreeMap<String, Lib>,
    /// Function name, lowercased (FCALL finds functions whatever their
    /// case, as Redis does), to the library that has it and the name as
    /// registered.
    owners: HashMap<String, (String, String)>,
    rng: Arc<Mutex<Rand48>>,
}

/// What a library's entry costs beyond its name and code (Redis's
/// `functionLibInfo` and its dictionary entries).
const LIB_OVERHEAD: usize = 96;
/// What a function's entry costs beyond its name and description.
const FUNCTION_OVERHEAD: usize = 64;

/// What `redis.register_function` collected while a library loads.
#[derive(Default)]
struct Loading {
    functions: Vec<(String, FunctionInfo)>,
}

/// The environment shared by library code and functions (see the header).
const ENV: &str = "
local G, protect, load_redis = ...
local function missing(_, name)
  error(\"Script attempted to access nonexistent global variable '\" .. tostring(name) .. \"'\", 2)
end
local load_api = {redis = load_redis}
protect(load_redis, missing)
protect(load_api, missing)
local mt = {__index = G, __newindex = function() error('Attempt to modify a readonly table', 2) end}
local env = setmetatable({}, mt)
return env, function(loading) if loading then mt.__index = load_api else mt.__index = G end end";

/// Runs library code, giving back Redis's error text on failure (a string
/// error, or the `err` of an error table). It calls through `xpcall`, as
/// the sandbox's `pcall` already reduces error tables to their text; an
/// error raised from Rust (the load timeout) goes on up to the caller.
const LOADER: &str = "
local xpcall, type, error = xpcall, type, error
local function keep(e) return e end
return function(f)
  local ok, e = xpcall(f, keep)
  if ok then return nil end
  if type(e) == 'userdata' then error(e, 0) end
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' then return m end
    return 'ERR unknown error'
  end
  return 'ERR ' .. tostring(e)
end";

impl Library {
    /// A fresh engine with no library.
    pub fn new(rng: Arc<Mutex<Rand48>>) -> Library {
        Self::build(rng).unwrap_or_else(|e| panic!("creating the functions Lua state: {e}"))
    }

    fn build(rng: Arc<Mutex<Rand48>>) -> mlua::Result<Library> {
        let vm = Vm::new(rng.clone())?;
        let lua = &vm.lua;
        let load_redis = lua.create_table()?;
        load_redis.set("register_function", libs::function(lua, register_function)?)?;
        vm::log_and_version(lua, &load_redis)?;
        let (env, switch): (Table, Function) = lua.load(ENV).set_name(vm::SANDBOX_CHUNK).call((
            lua.globals(),
            vm.protect.clone(),
            load_redis,
        ))?;
        lua.set_named_registry_value("__functions", lua.create_table()?)?;
        let loader: Function = lua.load(LOADER).set_name(vm::SANDBOX_CHUNK).eval()?;
        lua.set_named_registry_value("__loader", loader)?;
        Ok(Library {
            vm,
            switch,
            env,
            libs: BTreeMap::new(),
            owners: HashMap::new(),
            rng,
        })
    }

    /// An empty engine of its own (FUNCTION RESTORE loads a payload into
    /// one first, as Redis loads it into a new library context).
    pub fn scratch(&self) -> Result<Library, String> {
        Self::build(self.rng.clone()).map_err(|e| format!("ERR {e}"))
    }

    /// The libraries by name.
    pub fn libs(&self) -> &BTreeMap<String, Lib> {
        &self.libs
    }

    /// The registered function `name`: its library and details.
    pub fn function(&self, name: &[u8]) -> Option<(&str, &FunctionInfo)> {
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        let (lib, registered) = self.owners.get(&name)?;
        Some((lib.as_str(), self.libs.get(lib)?.functions.get(registered)?))
    }

    /// How many functions are registered.
    pub fn function_count(&self) -> usize {
        self.owners.len()
    }

    /// The functions state's heap (INFO `used_memory_vm_functions`).
    pub fn memory(&self) -> usize {
        self.vm.lua.used_memory()
    }

    /// The libraries' code and entries (INFO `used_memory_functions`),
    /// counted as Redis counts its dictionaries' entries.
    pub fn code_memory(&self) -> usize {
        self.libs
            .iter()
            .map(|(name, lib)| {
                name.len()
                    + lib.code.len()
                    + LIB_OVERHEAD
                    + lib
                        .functions
                        .iter()
                        .map(|(f, info)| {
                            f.len()
                                + info.description.as_ref().map_or(0, |d| d.len())
                                + FUNCTION_OVERHEAD
                        })
                        .sum::<usize>()
            })
            .sum()
    }

    /// FUNCTION LOAD: loads `code` (replacing a library of the same name
    /// if `replace`); the library's name, or Redis's error text.
    pub fn load(&mut self, code: &Bytes, replace: bool) -> Result<String, String> {
        let (name, body_at) = parse_metadata(code)?;
        if self.libs.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let functions = self.run_library(&code[body_at..])?;
        for (f, _) in &functions {
            if let Some((owner, _)) = self.owners.get(&f.to_ascii_lowercase()) {
                if *owner != name {
                    return Err(format!("ERR Function {f} already exists"));
                }
            }
        }
        self.commit(&name, code.clone(), functions)
            .map_err(|e| format!("ERR {e}"))?;
        Ok(name)
    }

    /// Compiles and runs a library's code with the load-time API; what it
    /// registered (kept in the registry's `__pending` until committed).
    fn run_library(&mut self, body: &[u8]) -> Result<Vec<(String, FunctionInfo)>, String> {
        let lua = &self.vm.lua;
        let f = lua
            .load(body)
            .set_name(CHUNK)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    e => e.to_string(),
                };
                format!("ERR Error compiling function: {msg}")
            })?;
        let pending = lua.create_table().map_err(|e| format!("ERR {e}"))?;
        lua.set_named_registry_value("__pending", &pending)
            .map_err(|e| format!("ERR {e}"))?;
        lua.set_app_data(Loading::default());
        let started = Instant::now();
        vm::set_stop_hook(lua, 100_000, move || {
            (started.elapsed() > LOAD_TIMEOUT).then_some("FUNCTION LOAD timeout")
        });
        let _ = self.switch.call::<()>(true);
        let outcome: mlua::Result<Option<String>> = lua
            .named_registry_value::<Function>("__loader")
            .and_then(|loader| loader.call(f));
        let _ = self.switch.call::<()>(false);
        self.vm.unhook();
        let loading = lua.remove_app_data::<Loading>().unwrap_or_default();
        match outcome {
            Ok(None) => {}
            Ok(Some(err)) => return Err(format!("ERR Error registering functions: {err}")),
            Err(e) => {
                return Err(format!(
                    "ERR Error registering functions: ERR {}",
                    vm::error_message(&e)
                ))
            }
        }
        if loading.functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        Ok(loading.functions)
    }

    /// Makes a loaded library current: its callbacks move from
    /// `__pending` to `__functions`, replacing the library's old ones.
    fn commit(
        &mut self,
        name: &str,
        code: Bytes,
        functions: Vec<(String, FunctionInfo)>,
    ) -> mlua::Result<()> {
        self.remove(name)?;
        let lua = &self.vm.lua;
        let registry: Table = lua.named_registry_value("__functions")?;
        let pending: Table = lua.named_registry_value("__pending")?;
        let mut map = BTreeMap::new();
        for (f, info) in functions {
            let key = f.to_ascii_lowercase();
            registry.raw_set(key.as_str(), pending.raw_get::<Value>(f.as_str())?)?;
            self.owners.insert(key, (name.to_string(), f.clone()));
            map.insert(f, info);
        }
        lua.set_named_registry_value("__pending", Value::Nil)?;
        self.libs.insert(
            name.to_string(),
            Lib {
                code,
                functions: map,
            },
        );
        Ok(())
    }

    /// Drops library `name` and its functions; false if there is none.
    pub fn remove(&mut self, name: &str) -> mlua::Result<bool> {
        let Some(lib) = self.libs.remove(name) else {
            return Ok(false);
        };
        let registry: Table = self.vm.lua.named_registry_value("__functions")?;
        for f in lib.functions.keys() {
            let key = f.to_ascii_lowercase();
            registry.raw_set(key.as_str(), Value::Nil)?;
            self.owners.remove(&key);
        }
        Ok(true)
    }

    /// The libraries' code, to go back to with
    /// [`restore_snapshot`](Self::restore_snapshot).
    pub fn snapshot(&self) -> Vec<Bytes> {
        self.libs.values().map(|l| l.code.clone()).collect()
    }

    /// Back to the libraries of a [`snapshot`](Self::snapshot) (a
    /// FUNCTION RESTORE that failed half-way).
    pub fn restore_snapshot(&mut self, codes: Vec<Bytes>) {
        self.flush();
        for code in codes {
            let _ = self.load(&code, true);
        }
    }

    /// FUNCTION FLUSH: a fresh state, no library.
    pub fn flush(&mut self) {
        if let Ok(fresh) = Self::build(self.rng.clone()) {
            *self = fresh;
        }
    }

    /// FCALL: runs function `name` with KEYS and ARGV.
    pub fn run(
        &mut self,
        name: &str,
        keys: &[Bytes],
        argv: &[Bytes],
        ctx: RunCtx,
        running: &Arc<Running>,
    ) -> (Frame, RunCtx) {
        let f = self
            .vm
            .lua
            .named_registry_value::<Table>("__functions")
            .and_then(|t| t.raw_get::<Function>(name.to_ascii_lowercase()));
        match f {
            Ok(f) => {
                let call = Call {
                    eval: false,
                    keys,
                    argv,
                    name,
                };
                self.vm
                    .run(super::vm::Callee::Function(&f), call, ctx, running)
            }
            Err(e) => (Frame::error(format!("ERR {e}")), ctx),
        }
    }
}

/// Parses the `#!lua name=<lib>` first line: the library name and where
/// the code Lua sees starts (the line's end, so that line numbers count
/// the shebang, as in Redis).
pub fn parse_metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = memchr::memchr(b'\n', code) else {
        return Err("ERR Invalid library metadata".into());
    };
    // 7.0 splits the line as redis.conf lines are split, quotes included.
    let parts = match crate::protocol::parse::split_args(&code[..end]) {
        Some(parts) if !parts.is_empty() => parts,
        _ => return Err("ERR Invalid library metadata".into()),
    };
    let engine = parts[0].get(2..).unwrap_or_default();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() < 5 || !part[..5].eq_ignore_ascii_case(b"name=") {
            return Err(format!(
                "ERR Invalid metadata value given: {}",
                String::from_utf8_lossy(part)
            ));
        }
        if name.is_some() {
            return Err(
                "ERR Invalid metadata value, name argument was given multiple times".into(),
            );
        }
        name = Some(&part[5..]);
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "ERR Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    if !valid_name(name) {
        return Err(format!("ERR {BAD_NAME}"));
    }
    Ok((String::from_utf8_lossy(name).into_owned(), end))
}

/// Redis's text for a bad library (and, in 7.0, function) name.
const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// `redis.register_function(name, callback)` or
/// `redis.register_function{function_name=..., callback=..., flags=...,
/// description=...}`, while a library loads.
fn register_function(lua: &Lua, args: &Args) -> LibResult<Out> {
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.get(1) else {
                return Err(raise("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."));
            };
            named_arguments(&t)?
        }
        2 => {
            let Some(name) = args.get(1).as_ref().and_then(lua_string) else {
                return Err(raise(
                    "first argument to redis.register_function must be a string",
                ));
            };
            let Some(Value::Function(f)) = args.get(2) else {
                return Err(raise(
                    "second argument to redis.register_function must be a function",
                ));
            };
            (name, f, Flags(0), None)
        }
        _ => {
            return Err(raise(
                "wrong number of arguments to redis.register_function",
            ))
        }
    };
    if !valid_name(&name) {
        return Err(raise(BAD_NAME));
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let Some(mut loading) = lua.app_data_mut::<Loading>() else {
        return Err(raise(
            "redis.register_function can only be called on FUNCTION LOAD command",
        ));
    };
    if loading.functions.iter().any(|(n, _)| *n == name) {
        return Err(raise("Function already exists in the library"));
    }
    loading
        .functions
        .push((name.clone(), FunctionInfo { flags, description }));
    drop(loading);
    let pending: Table = lua.named_registry_value("__pending")?;
    pending.raw_set(name, callback)?;
    Out::new(lua).map_err(LibError::from)
}

/// A string argument as Redis reads one (`lua_isstring` / `lua_tolstring`):
/// a string, or a number in Lua's `%.14g`.
fn lua_string(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(libs::format_g(*i as f64, 14).into_bytes()),
        Value::Number(n) => Some(libs::format_g(*n, 14).into_bytes()),
        _ => None,
    }
}

type Registration = (Vec<u8>, Function, Flags, Option<Bytes>);

/// The named-arguments form of `redis.register_function`.
fn named_arguments(t: &Table) -> LibResult<Registration> {
    let (mut name, mut callback, mut flags, mut description) = (None, None, Flags(0), None);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Some(k) = lua_string(&k) else {
            return Err(raise(
                "named argument key given to redis.register_function is not a string",
            ));
        };
        match k.to_ascii_lowercase().as_slice() {
            b"function_name" => {
                match lua_string(&v) {
                    Some(s) => name = Some(s),
                    None => return Err(raise(
                        "function_name argument given to redis.register_function must be a string",
                    )),
                }
            }
            b"description" => {
                match lua_string(&v) {
                    Some(s) => description = Some(Bytes::from(s)),
                    None => return Err(raise(
                        "description argument given to redis.register_function must be a string",
                    )),
                }
            }
            b"callback" => match v {
                Value::Function(f) => callback = Some(f),
                _ => {
                    return Err(raise(
                        "callback argument given to redis.register_function must be a function",
                    ))
                }
            },
            b"flags" => {
                let Value::Table(list) = v else {
                    return Err(raise("flags argument to redis.register_function must be a table representing function flags"));
                };
                // Redis reads flags[1], flags[2], ... up to the first nil.
                for item in list.sequence_values::<Value>() {
                    let bit = lua_string(&item?).and_then(|s| Flags::bit(&s));
                    match bit {
                        Some(b) => flags.0 |= b,
                        None => return Err(raise("unknown flag given")),
                    }
                }
            }
            _ => return Err(raise("unknown argument given to redis.register_function")),
        }
    }
    let Some(name) = name else {
        return Err(raise(
            "redis.register_function must get a function name argument",
        ));
    };
    let Some(callback) = callback else {
        return Err(raise(
            "redis.register_function must get a callback argument",
        ));
    };
    Ok((name, callback, flags, description))
}

/// FUNCTION DUMP's payload: each library as Redis's RDB function opcode
/// and its code, then the RDB version and a CRC64, as DUMP payloads are.
/// With `compress` (`rdbcompression`), code longer than 20 bytes is
/// LZF-compressed when that saves more than four bytes, as Redis's
/// `rdbSaveRawString` does.
pub fn dump(libs: &BTreeMap<String, Lib>, compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for lib in libs.values() {
        out.push(RDB_OPCODE_FUNCTION2);
        put_rdb_string(&mut out, &lib.code, compress);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// `rdbSaveRawString` for a string that is not an integer.
fn put_rdb_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if compress && s.len() > 20 {
        if let Some(packed) = crate::util::lzf::compress(s, s.len() - 4) {
            out.push(0xC0 | RDB_ENC_LZF);
            put_rdb_len(out, packed.len() as u64);
            put_rdb_len(out, s.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    put_rdb_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The library codes in a FUNCTION DUMP payload (Redis's or ours), or
/// Redis's error text (`functionRestoreCommand`, `rdbFunctionLoad`).
pub fn undump(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    const BAD: &str = "ERR payload version or checksum are wrong";
    if payload.len() < 10 {
        return Err(BAD.into());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    let with_version = &payload[..payload.len() - 8];
    if version > RDB_VERSION || CRC64.checksum(with_version) != u64::from_le_bytes(crc) {
        return Err(BAD.into());
    }
    let fail = |what: &str| format!("ERR Failed loading {what}");
    let mut codes = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let op = body[pos];
        pos += 1;
        let code = match op {
            RDB_OPCODE_FUNCTION2 => {
                read_rdb_string(body, &mut pos).ok_or_else(|| fail("library payload"))?
            }
            // 7.0's release candidates wrote the name, the engine and an
            // optional description beside the code; Redis still reads
            // them, giving the code its metadata line.
            RDB_OPCODE_FUNCTION_PRE_GA => {
                let name = read_rdb_string(body, &mut pos).ok_or_else(|| fail("library name"))?;
                let engine = read_rdb_string(body, &mut pos).ok_or_else(|| fail("engine name"))?;
                let has_description = read_rdb_len(body, &mut pos)
                    .ok_or_else(|| fail("library description indicator"))?;
                if has_description != 0 {
                    read_rdb_string(body, &mut pos).ok_or_else(|| fail("library description"))?;
                }
                let blob = read_rdb_string(body, &mut pos).ok_or_else(|| fail("library blob"))?;
                let mut code = Vec::with_capacity(blob.len() + name.len() + engine.len() + 10);
                code.extend_from_slice(b"#!");
                code.extend_from_slice(&engine);
                code.extend_from_slice(b" name=");
                code.extend_from_slice(&name);
                code.push(b'\n');
                code.extend_from_slice(&blob);
                code
            }
            _ => return Err("ERR given type is not a function".into()),
        };
        codes.push(Bytes::from(code));
    }
    Ok(codes)
}

/// Redis's `RDB_OPCODE_FUNCTION2`.
const RDB_OPCODE_FUNCTION2: u8 = 245;
/// Redis's `RDB_OPCODE_FUNCTION_PRE_GA` (7.0-rc1 and rc2).
const RDB_OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// Redis's `RDB_ENC_LZF`, under the `RDB_ENCVAL` bits (0xC0).
const RDB_ENC_LZF: u8 = 3;
/// Redis 7.0's RDB version.
const RDB_VERSION: u16 = 10;
/// Redis's CRC64 (Jones polynomial, reflected).
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// An RDB length (`rdbSaveLen`).
fn put_rdb_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// An RDB length (`rdbLoadLen` without `isencoded`: an encoding byte
/// reads as its low six bits, as in Redis).
fn read_rdb_len(buf: &[u8], pos: &mut usize) -> Option<u64> {
    match read_len_or_encoding(buf, pos)? {
        Len::Plain(n) => Some(n),
        Len::Encoded(n) => Some(n as u64),
    }
}

enum Len {
    Plain(u64),
    /// `RDB_ENCVAL`: the low six bits say how the value is encoded.
    Encoded(u8),
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let s = buf.get(*pos..pos.checked_add(n)?)?;
    *pos += n;
    Some(s)
}

fn read_len_or_encoding(buf: &[u8], pos: &mut usize) -> Option<Len> {
    let first = *take(buf, pos, 1)?.first()?;
    Some(match first >> 6 {
        0 => Len::Plain((first & 0x3f) as u64),
        1 => Len::Plain(((first as u64 & 0x3f) << 8) | *take(buf, pos, 1)?.first()? as u64),
        3 => Len::Encoded(first & 0x3f),
        _ if first == 0x80 => {
            Len::Plain(u32::from_be_bytes(take(buf, pos, 4)?.try_into().ok()?) as u64)
        }
        _ if first == 0x81 => Len::Plain(u64::from_be_bytes(take(buf, pos, 8)?.try_into().ok()?)),
        _ => return None,
    })
}

/// An RDB string (`rdbGenericLoadStringObject`): plain, an integer
/// encoding, or LZF-compressed as redis-server writes strings longer than
/// 20 bytes.
fn read_rdb_string(buf: &[u8], pos: &mut usize) -> Option<Vec<u8>> {
    let n = match read_len_or_encoding(buf, pos)? {
        Len::Plain(n) => n,
        Len::Encoded(0) => return Some((take(buf, pos, 1)?[0] as i8).to_string().into_bytes()),
        Len::Encoded(1) => {
            let b = take(buf, pos, 2)?;
            return Some(i16::from_le_bytes([b[0], b[1]]).to_string().into_bytes());
        }
        Len::Encoded(2) => {
            let b = take(buf, pos, 4)?;
            return Some(
                i32::from_le_bytes(b.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            );
        }
        Len::Encoded(RDB_ENC_LZF) => {
            let clen = usize::try_from(read_rdb_len(buf, pos)?).ok()?;
            let ulen = usize::try_from(read_rdb_len(buf, pos)?).ok()?;
            let compressed = take(buf, pos, clen)?;
            // LZF expands at most about 90 times: a larger claim is a
            // lie that would only reserve memory.
            if ulen > clen.saturating_mul(100) + 64 {
                return None;
            }
            if ulen == 0 {
                // liblzf decompresses nothing into no room, and Redis
                // takes the 0 it returns as the announced length.
                return Some(Vec::new());
            }
            // Redis wants exactly the length announced.
            return lzf::decompress(compressed, ulen)
                .ok()
                .filter(|out| out.len() == ulen);
        }
        Len::Encoded(_) => return None,
    };
    take(buf, pos, usize::try_from(n).ok()?).map(|s| s.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_errors_are_redis_texts() {
        assert_eq!(
            parse_metadata(b"#!lua name=mylib\nx").unwrap(),
            ("mylib".into(), 16)
        );
        for (code, err) in [
            (&b"return 1"[..], "ERR Missing library metadata"),
            (b"#!lua", "ERR Invalid library metadata"),
            (b"#!js name=x\n", "ERR Engine 'js' not found"),
            (b"#! name=x\n", "ERR Engine '' not found"),
            (
                b"#!lua foo=bar\n",
                "ERR Invalid metadata value given: foo=bar",
            ),
            (
                b"#!lua name=a name=b\n",
                "ERR Invalid metadata value, name argument was given multiple times",
            ),
            (b"#!lua\n", "ERR Library name was not given"),
        ] {
            assert_eq!(parse_metadata(code).unwrap_err(), err);
        }
    }

    #[test]
    fn dump_is_redis_bytes() {
        // What redis-server 7.0.15 answers to FUNCTION DUMP with this one
        // library: the code LZF-compressed.
        let code = Bytes::from_static(
            b"#!lua name=small\nredis.register_function('small_fn', function() return 'small' end)",
        );
        let mut libs = BTreeMap::new();
        libs.insert(
            "small".to_string(),
            Lib {
                code: code.clone(),
                functions: BTreeMap::new(),
            },
        );
        let redis: &[u8] = b"\xf5\xc3@K@S\x1f#!lua name=small\nredis.register_\tfunction('`\x1e\x05_fn', \xe0\x00\x14\x08) return \x80\x1d\x05' end)\n\x00\xe2\xb1\xdc\xc7\x05n\xb6\x12";
        assert_eq!(dump(&libs, true), redis);
        assert_eq!(undump(redis).unwrap(), vec![code.clone()]);
        // Without rdbcompression the code goes as it is.
        let plain = dump(&libs, false);
        assert_eq!(&plain[..3], b"\xf5@S");
        assert_eq!(undump(&plain).unwrap(), vec![code]);
    }

    #[test]
    fn pre_ga_payloads_get_their_metadata_line() {
        let mut body = vec![RDB_OPCODE_FUNCTION_PRE_GA];
        put_rdb_string(&mut body, b"lib", false);
        put_rdb_string(&mut body, b"LUA", false);
        put_rdb_len(&mut body, 1);
        put_rdb_string(&mut body, b"a description", false);
        put_rdb_string(&mut body, b"return 1", false);
        body.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = CRC64.checksum(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            undump(&body).unwrap(),
            vec![Bytes::from_static(b"#!LUA name=lib\nreturn 1")]
        );
    }

    #[test]
    fn dump_round_trips_and_checks_its_crc() {
        let mut libs = BTreeMap::new();
        let code = Bytes::from(format!("#!lua name=l\n{}", "x".repeat(100)));
        libs.insert(
            "l".to_string(),
            Lib {
                code: code.clone(),
                functions: BTreeMap::new(),
            },
        );
        let mut payload = dump(&libs, true);
        assert_eq!(undump(&payload).unwrap(), vec![code]);
        let last = payload.len() - 1;
        payload[last] ^= 1;
        assert!(undump(&payload).is_err());
    }
}
