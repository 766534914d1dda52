-- The sandbox of Redis 7.0's scripting Lua, run once on a fresh state that
-- has the base, table, string, math and debug libraries, Redis's four C
-- libraries and the `redis` table. Redis 7.0 gets the same effect from
-- read-only tables in its patched Lua; on a stock Lua 5.1 every protected
-- table is emptied and reads through a hidden copy of its contents, and
-- writes raise the error Redis raises.
local failure_text = ...
local G, dbg = _G, debug
local next, type, error, tostring = next, type, error, tostring
local rawset, rawget, setmetatable, getmetatable = rawset, rawget, setmetatable, getmetatable
local rawpcall, pairs, ipairs = pcall, pairs, ipairs

-- Redis's error handler (eval.c), with one difference: frames of this
-- sandbox are skipped, so that an error raised by one of the wrappers
-- below points at the script's line, as Redis's C builtins do. A wrapper
-- that ends in a tail call leaves a `(tail call)` frame with no line in
-- its place (pcall re-raising SCRIPT KILL): it is skipped too, as long as
-- a frame of the script's own follows.
function __redis__err__handler(err)
  local level = 2
  local i = dbg.getinfo(level, 'nSl')
  if i and i.what == 'C' then
    level = level + 1
    i = dbg.getinfo(level, 'nSl')
  end
  while i and i.source == '=herald.sandbox' do
    level = level + 1
    i = dbg.getinfo(level, 'nSl')
  end
  local found, after = i, level
  while i and (i.source == '=herald.sandbox' or i.what == 'tail') do
    after = after + 1
    i = dbg.getinfo(after, 'nSl')
  end
  if found and found.what == 'tail' and i and i.what ~= 'C' then found = i end
  i = found
  if type(err) == 'userdata' then err = failure_text(err) end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

-- Redis 7.0's pcall: an error table with an `err` string is reduced to
-- that string, as scripts written for older versions expect. An error
-- raised from Rust (a userdata: SCRIPT KILL, the load timeout) is Redis's
-- error table there, so it reads as its text with the ERR code; the hook
-- raises it again at the script's next line (vm.rs, set_stop_hook).
local function settle(ok, ...)
  if ok then return ok, ... end
  local e = ...
  if type(e) == 'userdata' then return false, 'ERR ' .. failure_text(e) end
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end
pcall = function(...) return settle(rawpcall(...)) end

local allowed = {
  string = true, cjson = true, bit = true, cmsgpack = true, math = true,
  table = true, struct = true, redis = true, __redis__err__handler = true,
  xpcall = true, tostring = true, setmetatable = true, next = true,
  assert = true, tonumber = true, rawequal = true, collectgarbage = true,
  getmetatable = true, rawset = true, pcall = true, coroutine = true,
  type = true, _G = true, select = true, unpack = true, gcinfo = true,
  pairs = true, rawget = true, loadstring = true, ipairs = true,
  _VERSION = true, load = true, error = true,
}
for name in pairs(allowed) do allowed[name] = G[name] end

local hidden = setmetatable({}, {__mode = 'k'})
local function readonly() error('Attempt to modify a readonly table', 2) end

local function protect(t, missing)
  if hidden[t] then return end
  local h = {}
  for k, v in next, t do h[k] = v end
  for k in next, h do rawset(t, k, nil) end
  hidden[t] = h
  if missing then setmetatable(h, {__index = missing}) end
  setmetatable(t, {__index = h, __newindex = readonly})
  for _, v in next, h do
    if type(v) == 'table' then protect(v) end
  end
end

-- The builtins that could write through the protection or see around it.
allowed.rawset = function(t, k, v)
  if hidden[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end
allowed.rawget = function(t, k) return rawget(hidden[t] or t, k) end
allowed.setmetatable = function(t, mt)
  if hidden[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end
allowed.getmetatable = function(t)
  local mt = getmetatable(t)
  if type(t) == 'table' and hidden[t] then
    local view = {}
    protect(view)
    setmetatable(hidden[view], {__index = mt})
    return view
  end
  return mt
end
allowed.next = function(t, k) return next(hidden[t] or t, k) end
allowed.pairs = function(t)
  if hidden[t] then return allowed.next, t, nil end
  return pairs(t)
end
-- Binary chunks are refused (Redis 7.0 patched them out of its Lua): a
-- crafted one can break out of any sandbox.
local loadstring, load, concat = loadstring, load, table.concat
local function is_binary(s) return s:byte(1) == 27 end
allowed.loadstring = function(s, name)
  if type(s) == 'string' and is_binary(s) then return nil, 'binary chunks are not allowed' end
  return loadstring(s, name)
end
allowed.load = function(f, name)
  if type(f) ~= 'function' then return load(f, name) end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  return allowed.loadstring(concat(parts), name)
end

-- The globals: only the allowed names, then protected; reading a name that
-- does not exist is an error.
local names = {}
for k in next, G do names[#names + 1] = k end
for _, k in ipairs(names) do rawset(G, k, nil) end
for k, v in next, allowed do rawset(G, k, v) end
rawset(G, '_G', G)
protect(G, function(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end)
-- The table scripts' KEYS and ARGV go into (the hidden globals), and the
-- protection, for the tables of the functions engine.
return hidden[G], protect
