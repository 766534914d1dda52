//! Lua scripting: EVAL, EVALSHA, SCRIPT and FUNCTION on an embedded Lua 5.1
//! (in progress). For now it holds the libraries Redis bundles into its Lua
//! (`libs`).

pub mod libs;
