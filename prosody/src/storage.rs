//! Stored records ([`Data`]) as plain Lua tables, which Prosody's storage API keeps: the
//! shim reads and writes them (`lua/muc_rs_storage.lib.lua`) for the core's questions and
//! stores (`steps.rs`), and modules read and write `room._data` with them.

use mlua::{Lua, Result as LuaResult, Value};
use muc_rs::data::{Data, Key, Table as DataTable};

/// Deeper nesting than this is not a room record.
const MAX_DEPTH: usize = 64;

pub fn data_to_lua(lua: &Lua, data: &Data) -> LuaResult<Value> {
    Ok(match data {
        Data::Bool(b) => Value::Boolean(*b),
        Data::Int(n) => Value::Integer(*n),
        Data::Num(f) => Value::Number(*f),
        Data::Str(s) => Value::String(lua.create_string(s)?),
        Data::Table(t) => {
            let table = lua.create_table()?;
            for (k, v) in t {
                let v = data_to_lua(lua, v)?;
                match k {
                    Key::Int(i) => table.raw_set(*i, v)?,
                    Key::Str(s) => table.raw_set(s.as_str(), v)?,
                }
            }
            Value::Table(table)
        }
    })
}

/// A Lua value as stored data; functions, userdata and over-deep tables are left out.
pub fn data_from_lua(value: &Value, depth: usize) -> Option<Data> {
    Some(match value {
        Value::Boolean(b) => Data::Bool(*b),
        Value::Integer(n) => Data::Int(*n),
        Value::Number(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Data::Int(*f as i64),
        Value::Number(f) => Data::Num(*f),
        Value::String(s) => Data::Str(s.to_str().ok()?.to_owned()),
        Value::Table(t) if depth < MAX_DEPTH => {
            let mut out = DataTable::new();
            for (k, v) in t.clone().pairs::<Value, Value>().flatten() {
                let key = match &k {
                    Value::Integer(i) => Key::Int(*i),
                    Value::Number(f) if f.fract() == 0.0 => Key::Int(*f as i64),
                    Value::String(s) => match s.to_str() {
                        Ok(s) => Key::Str(s.to_owned()),
                        Err(_) => continue,
                    },
                    _ => continue,
                };
                if let Some(v) = data_from_lua(&v, depth + 1) {
                    out.insert(key, v);
                }
            }
            Data::Table(out)
        }
        _ => return None,
    })
}
