//! Room storage as the shim does it: stored records ([`Data`]) as plain Lua tables, which
//! Prosody's storage API keeps, and the shim's storage callbacks, for the calls modules make
//! (`host:room(...)`) and the admins' commands. (A stanza's storage steps go through the
//! shim's loop: `steps.rs`.)

use jid::BareJid;
use mlua::{Function, Lua, Result as LuaResult, Table, Value};
use muc_rs::data::{Data, Key, Table as DataTable};
use muc_rs::protocol::{ReadRooms, StoredRoom};

/// Deeper nesting than this is not a room record.
const MAX_DEPTH: usize = 64;

/// The shim's storage callbacks; without them rooms live in memory only.
pub struct Storage {
    pub load_room: Option<Function>,
    pub store_room: Option<Function>,
    pub stored_rooms: Option<Function>,
}

impl Storage {
    pub fn from_callbacks(callbacks: &Table) -> LuaResult<Storage> {
        Ok(Storage {
            load_room: callbacks.get("load_room")?,
            store_room: callbacks.get("store_room")?,
            stored_rooms: callbacks.get("stored_rooms")?,
        })
    }

    pub fn load(&self, room: &BareJid) -> Result<Option<StoredRoom>, String> {
        let Some(load) = &self.load_room else { return Ok(None) };
        let (config, state): (Value, Value) =
            load.call(room.as_str()).map_err(|e| super::lua_error::summary(&e))?;
        let config = match config {
            Value::Nil => return Ok(None),
            v => data_from_lua(&v, 0).ok_or("stored room record is not a table")?,
        };
        let state = match state {
            Value::Nil => None,
            v => data_from_lua(&v, 0),
        };
        Ok(Some(StoredRoom { config, state }))
    }

    pub fn store(&self, lua: &Lua, room: &BareJid, record: Option<&StoredRoom>) -> Result<(), String> {
        let Some(store) = &self.store_room else { return Ok(()) };
        let to_lua = |d: Option<&Data>| -> Result<Value, String> {
            d.map_or(Ok(Value::Nil), |d| data_to_lua(lua, d).map_err(|e| super::lua_error::summary(&e)))
        };
        let config = to_lua(record.map(|r| &r.config))?;
        let state = to_lua(record.and_then(|r| r.state.as_ref()))?;
        store.call::<()>((room.as_str(), config, state)).map_err(|e| super::lua_error::summary(&e))
    }

    pub fn list(&self) -> Result<Vec<BareJid>, String> {
        let Some(list) = &self.stored_rooms else { return Ok(Vec::new()) };
        let jids: Vec<String> = list.call(()).map_err(|e| super::lua_error::summary(&e))?;
        Ok(jids.iter().filter_map(|j| j.parse().ok()).collect())
    }
}

impl ReadRooms for Storage {
    fn load_room(&self, room: &BareJid) -> Result<Option<StoredRoom>, String> {
        self.load(room)
    }

    /// Every stored room's records: the list, then each room (a room gone in between is
    /// left out).
    fn stored_rooms(&self) -> Result<Vec<(BareJid, StoredRoom)>, String> {
        let mut rooms = Vec::new();
        for jid in self.list()? {
            if let Some(record) = self.load(&jid)? {
                rooms.push((jid, record));
            }
        }
        Ok(rooms)
    }
}

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
