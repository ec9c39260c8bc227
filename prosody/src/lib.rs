//! muc_rs for Prosody: the Lua module `muc_rs` (loaded by `lua/mod_muc_rs.lua`), the core
//! (the `muc_rs` crate) behind a userdata host.
//!
//! ```lua
//! local muc_rs = require "muc_rs"
//! muc_rs.version                      --> "0.1.0"
//! muc_rs.options()                    --> { { name = "name", kind = "string" }, ... }
//! local host = muc_rs.new_host("conference.localhost", opts, {
//!     send = function(stanza) end,    -- route one stanza (attr.to set)
//!     is_admin = function(bare_jid) return false end,
//!     log = function(level, message) end,
//!     stanza_mt = getmetatable(st.stanza("x")),
//!     top_tag = render.top_tag,       -- optional: deliveries then carry their rendered
//!                                     -- XML (`muc_rs_rendered`, see lua/muc_rs_render.lib.lua)
//!     carries_out = true,             -- optional: the shim carries out outcomes with
//!     listens = function(...) end,    -- events; where modules listen (events.rs)
//! })
//! host:handle(stanza, answers)        --> true once handled, or a step left to the shim
//! host:call(method, ...)              --> a call's values, or a step first (calls.rs)
//! host:resume(call, answers)          --> a call's next step
//! host:confirm(err[, call])           --  after the shim wrote the stores of a step
//! host:next_event(carrying)           --  an outcome's next event (events.rs),
//! host:event_done(carrying, ok, ...)  --  and what its handlers left
//! ```
//! `opts` holds the options found set (name → boolean, number or string) and
//! `server_version` (Prosody's version string). Values of the wrong type are logged (warn)
//! and ignored. `_test_panic = true` arms the panic test hook (see [`muc_rs::panic_guard::TEST_NS`]).

mod calls;
mod carrying;
mod convert;
mod events;
mod host;
mod lua_error;
mod render;
mod reuse;
mod room_api;
mod steps;
mod storage;

use host::LuaHost;
use mlua::{Lua, Result as LuaResult, Table, Value};
use muc_rs::config::{HostConfig, OptionKind, OptionValue, OPTIONS};
use muc_rs::host::MucHost;
use muc_rs::panic_guard as guard;
use std::collections::HashMap;

#[mlua::lua_module(skip_memory_check)]
fn muc_rs(lua: &Lua) -> LuaResult<Table> {
    guard::install_hook();
    let exports = lua.create_table()?;
    exports.set("version", env!("CARGO_PKG_VERSION"))?;
    exports.set("options", lua.create_function(|lua, ()| options(lua))?)?;
    exports.set(
        "new_host",
        lua.create_function(|lua, (domain, opts, callbacks): (String, Option<Table>, Table)| {
            new_host(lua, &domain, opts, &callbacks)
        })?,
    )?;
    exports.set(
        "_roundtrip",
        lua.create_function(|lua, (stanza, stanza_mt): (Table, Table)| roundtrip(lua, &stanza, &stanza_mt))?,
    )?;
    exports.set("_test_ns", muc_rs::panic_guard::TEST_NS)?;
    Ok(exports)
}

fn kind_name(kind: OptionKind) -> &'static str {
    match kind {
        OptionKind::Boolean => "boolean",
        OptionKind::Integer => "integer",
        OptionKind::Period => "period",
        OptionKind::String => "string",
        OptionKind::Any => "any",
    }
}

fn options(lua: &Lua) -> LuaResult<Table> {
    let list = lua.create_table_with_capacity(OPTIONS.len(), 0)?;
    for spec in OPTIONS {
        let entry = lua.create_table_with_capacity(0, 2)?;
        entry.raw_set("name", spec.name)?;
        entry.raw_set("kind", kind_name(spec.kind))?;
        list.raw_push(entry)?;
    }
    Ok(list)
}

fn new_host(lua: &Lua, domain: &str, opts: Option<Table>, callbacks: &Table) -> LuaResult<LuaHost> {
    let mut values = HashMap::new();
    let mut invalid = Vec::new();
    let mut version = None;
    let mut test_panic = false;
    if let Some(opts) = opts {
        for pair in opts.pairs::<Value, Value>() {
            let (key, value) = pair?;
            let Some(name) = key.as_string().and_then(|s| s.to_str().ok().map(|s| s.to_owned())) else {
                invalid.push(format!("{key:?}"));
                continue;
            };
            match (name.as_str(), &value) {
                ("server_version", Value::String(s)) => version = Some(s.to_string_lossy()),
                ("_test_panic", Value::Boolean(b)) => test_panic = *b,
                _ => match option_value(&value) {
                    Some(v) => {
                        values.insert(name, v);
                    }
                    None => invalid.push(name),
                },
            }
        }
    }
    let server_version = version.as_deref().and_then(parse_version);
    let (config, rejected) = HostConfig::from_options(server_version.unwrap_or((13, 0)), &values);
    invalid.extend(rejected);
    invalid.sort();

    let core = guard::run(|| MucHost::new(domain, config))
        .map_err(|panic| mlua::Error::runtime(format!("muc_rs.new_host: panic: {panic}")))?
        .map_err(mlua::Error::runtime)?;
    let host = LuaHost::new(lua, core, callbacks, test_panic)?;
    if server_version.is_none() {
        host.log("warn", &format!("cannot tell the server version from {version:?}; using 13.0 defaults"));
    }
    if !invalid.is_empty() {
        host.log(
            "warn",
            &format!("ignoring option(s) with an invalid value (using the default): {}", invalid.join(", ")),
        );
    }
    Ok(host)
}

/// A config value as the core takes it. Numbers must be whole; `math.huge` (what Prosody
/// 13's `get_option_period` returns for "never") becomes the largest integer.
fn option_value(value: &Value) -> Option<OptionValue> {
    match value {
        Value::Boolean(b) => Some(OptionValue::Bool(*b)),
        Value::Integer(n) => Some(OptionValue::Int(*n)),
        Value::Number(f) if *f == f64::INFINITY => Some(OptionValue::Int(i64::MAX)),
        Value::Number(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(OptionValue::Int(*f as i64)),
        Value::String(s) => s.to_str().ok().map(|s| OptionValue::Str(s.to_owned())),
        _ => None,
    }
}

/// "0.12.3" → (0, 12); "13.0.1" → (13, 0).
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '+', '-', ' ']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// `muc_rs._roundtrip(stanza, stanza_mt)`: table → Element → table, for specs and
/// benchmarks. Returns the new stanza, or nil and the reason it is malformed.
fn roundtrip(lua: &Lua, stanza: &Table, stanza_mt: &Table) -> LuaResult<(Option<Table>, Option<String>)> {
    let keys = convert::Keys::new(lua)?;
    match guard::run(|| convert::element_from_table(&keys, stanza)) {
        Ok(Ok(element)) => Ok((Some(convert::table_from_element(lua, &keys, stanza_mt, &element)?), None)),
        Ok(Err(why)) => Ok((None, Some(why))),
        Err(panic) => Ok((None, Some(format!("panic: {panic}")))),
    }
}
