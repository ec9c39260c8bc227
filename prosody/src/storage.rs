//! Room storage as the shim does it: stored records ([`Data`]) as plain Lua tables, which
//! Prosody's storage API keeps; the storage steps of a stanza's handling handed to the shim
//! and its answers read back ([`step_table`], [`read_answers`]); and the shim's storage
//! callbacks, for the calls modules make (`host:room(...)`) and the admins' commands.

use jid::BareJid;
use mlua::{Function, Lua, Result as LuaResult, Table, Value};
use muc_rs::data::{Data, Key, Table as DataTable};
use muc_rs::outcome::Outcome;
use muc_rs::protocol::{Facts, Question, ReadRooms, StoredRoom};

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
            load.call(room.as_str()).map_err(|e| super::host::summary(&e))?;
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
            d.map_or(Ok(Value::Nil), |d| data_to_lua(lua, d).map_err(|e| super::host::summary(&e)))
        };
        let config = to_lua(record.map(|r| &r.config))?;
        let state = to_lua(record.and_then(|r| r.state.as_ref()))?;
        store.call::<()>((room.as_str(), config, state)).map_err(|e| super::host::summary(&e))
    }

    pub fn list(&self) -> Result<Vec<BareJid>, String> {
        let Some(list) = &self.stored_rooms else { return Ok(Vec::new()) };
        let jids: Vec<String> = list.call(()).map_err(|e| super::host::summary(&e))?;
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

/// What `host:handle` leaves to the shim, as a table: a question for the modules
/// (`hook`, see `events::question_table`), for storage (`load_room = jid`: answer
/// `answers.rooms[jid] = { config, state }`, `false` if it has none, or `{ error = why }`;
/// `stored_rooms = true`: answer `answers.stored_rooms = { [jid] = { config, state } }` or
/// `{ error = why }`), for a room's avatar (`avatar_hash = jid`: answer
/// `answers.avatar_hashes[jid]` with the hash or false), or `stores = { { jid, config,
/// state }, … }` to write before `host:confirm(err)` (config nil: delete the room's records).
pub fn step_table(lua: &Lua, outcome: &Outcome) -> LuaResult<Table> {
    let step = match &outcome.ask {
        Some(Question::Module(question)) => return super::events::question_table(lua, question),
        Some(Question::LoadRoom(room)) => lua.create_table_from([("load_room", room.as_str())])?,
        Some(Question::StoredRooms) => lua.create_table_from([("stored_rooms", true)])?,
        Some(Question::AvatarHash(room)) => lua.create_table_from([("avatar_hash", room.as_str())])?,
        None => {
            let stores = lua.create_table_with_capacity(outcome.stores.len(), 0)?;
            for store in &outcome.stores {
                let record = store.record.as_ref();
                let to_lua = |d: Option<&Data>| d.map_or(Ok(Value::Nil), |d| data_to_lua(lua, d));
                let entry = lua.create_table()?;
                entry.raw_set(1, store.room.as_str())?;
                entry.raw_set(2, to_lua(record.map(|r| &r.config))?)?;
                entry.raw_set(3, to_lua(record.and_then(|r| r.state.as_ref()))?)?;
                stores.raw_push(entry)?;
            }
            let step = lua.create_table()?;
            step.raw_set("stores", stores)?;
            step
        }
    };
    Ok(step)
}

/// Adds what the shim read from storage (`answers.rooms`, `answers.stored_rooms`) to the
/// facts of a call.
pub fn read_answers(answers: &Table, facts: &mut Facts) {
    if let Ok(Value::Table(rooms)) = answers.raw_get::<Value>("rooms") {
        for (jid, answer) in rooms.pairs::<String, Value>().flatten() {
            if let Ok(jid) = jid.parse::<BareJid>() {
                facts.supply_room(jid, record_answer(&answer));
            }
        }
    }
    if let Ok(Value::Table(stored)) = answers.raw_get::<Value>("stored_rooms") {
        let rooms = match stored.raw_get::<Option<String>>("error") {
            Ok(Some(why)) => Err(why),
            _ => Ok(stored
                .pairs::<String, Value>()
                .flatten()
                .filter_map(|(jid, answer)| Some((jid.parse().ok()?, record_answer(&answer).ok()??)))
                .collect()),
        };
        facts.supply_stored_rooms(rooms);
    }
}

/// One room's answer: `false` (no records), `{ config, state }`, or `{ error = why }`.
fn record_answer(answer: &Value) -> Result<Option<StoredRoom>, String> {
    let Value::Table(t) = answer else { return Ok(None) };
    if let Ok(Some(why)) = t.raw_get::<Option<String>>("error") {
        return Err(why);
    }
    let config = match t.raw_get::<Value>(1) {
        Ok(Value::Nil) | Err(_) => return Ok(None),
        Ok(v) => data_from_lua(&v, 0).ok_or("stored room record is not a table")?,
    };
    let state = t.raw_get::<Value>(2).ok().and_then(|v| data_from_lua(&v, 0));
    Ok(Some(StoredRoom { config, state }))
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
