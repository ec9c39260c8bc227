//! `host:room(method, room_jid, ...)`: what the shim's room objects ask of a live room,
//! answered in stock mod_muc's terms (strings for affiliations and roles, nil for none,
//! `room._data`'s keys and values).
//!
//! | method | arguments | answer |
//! |---|---|---|
//! | `find` | — | true if the room is live or was brought back from storage |
//! | `create` | — | true, or nil and a condition (`room-exists`, …) |
//! | `destroy` | new venue?, reason?, password? | true, or nil and why |
//! | `get_affiliation` | JID | affiliation or nil |
//! | `get_affiliation_data` | JID, key? | the data table, or one value |
//! | `affiliations` | — | `{ {jid, affiliation, data}, … }` in the order granted |
//! | `get_role` | occupant JID | role or nil |
//! | `get_default_role` | affiliation | role or nil |
//! | `get_occupant_jid` | real JID | occupant JID or nil |
//! | `occupant_by_real_jid`, `occupant_by_nick` | JID | occupant fields or nil |
//! | `occupants` | — | `{ occupant fields, … }` in join order |
//! | `occupants_version` | — | a number that changes with every change of an occupant |
//! | `sessions` | occupant JID | real JID → presence |
//! | `get_occupant_id` | bare JID | the XEP-0421 id |
//! | `setting` | stock getter name (`members_only`, `whois`, …) | its value |
//! | `data`, `set_data` | key (, value) | a `_data` value |
//! | `data_table` | — | all of `_data` |
//! | `history_length` | — | messages in the room's own history |
//! | `broadcast_message` | stanza | — (the room's broadcast steps, events included) |
//! | `add_history` | stanza | — |
//! | `config_notice` | `{ code, … }` | — (the room's notice, events included) |
//! | `save` | — | true, or nil and why |

use super::convert;
use super::host::LuaHost;
use super::storage::{data_from_lua, data_to_lua};
use crate::affiliation::Affiliation;
use crate::occupant::Occupant;
use crate::room::settings::{Tombstone, Whois};
use crate::room::{Ctx, Room};
use jid::{BareJid, FullJid, Jid};
use mlua::{IntoLua, IntoLuaMulti, Lua, MultiValue, Result as LuaResult, Value};

impl LuaHost {
    pub(super) fn room_call(
        &self,
        lua: &Lua,
        method: &str,
        jid: &str,
        args: MultiValue,
    ) -> LuaResult<MultiValue> {
        let Ok(jid) = jid.parse::<BareJid>() else { return nil() };
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let text = |i: usize| arg(i).as_string().and_then(|s| s.to_str().ok().map(|s| s.to_owned()));
        let env = self.env(lua);
        match method {
            "find" => {
                let (found, outcome) = self.host_mut()?.find_room(&jid, &env);
                self.carry_out(lua, &outcome)?;
                return (found.ok() == Some(true)).into_lua_multi(lua);
            }
            "broadcast_message" | "add_history" => {
                let Value::Table(stanza) = arg(0) else { return nil() };
                let element = match convert::element_from_table(&self.keys, &stanza) {
                    Ok(element) => element,
                    Err(why) => {
                        return Err(mlua::Error::runtime(format!("{method}: malformed stanza: {why}")))
                    }
                };
                if method == "add_history" {
                    return self.host_mut()?.add_history(&jid, &element, &env).into_lua_multi(lua);
                }
                let outcome = self.host_mut()?.broadcast_message(&jid, element, &env);
                if let Some(outcome) = outcome {
                    self.carry_out(lua, &outcome)?;
                }
                return nil();
            }
            "config_notice" => {
                let codes: Vec<u16> = match arg(0) {
                    Value::Table(t) => t.sequence_values::<u16>().collect::<LuaResult<_>>()?,
                    _ => Vec::new(),
                };
                let outcome = self.host_mut()?.config_notice(&jid, &codes, &env);
                if let Some(outcome) = outcome {
                    self.carry_out(lua, &outcome)?;
                }
                return nil();
            }
            "create" => {
                let (created, outcome) = self.host_mut()?.create_room(&jid, &env);
                self.carry_out(lua, &outcome)?;
                return match created {
                    Ok(()) => true.into_lua_multi(lua),
                    Err(condition) => (Value::Nil, condition).into_lua_multi(lua),
                };
            }
            "destroy" => {
                let why = Tombstone { new_jid: text(0), reason: text(1) };
                let destroyed = self.host_mut()?.destroy_room(jid.as_str(), why, text(2).as_deref(), &env);
                return match destroyed {
                    Ok(outcome) => {
                        self.carry_out(lua, &outcome)?;
                        true.into_lua_multi(lua)
                    }
                    Err(why) => (Value::Nil, why).into_lua_multi(lua),
                };
            }
            "save" => {
                return match self.host_mut()?.save_room(&jid, &env) {
                    Ok(()) => true.into_lua_multi(lua),
                    Err(why) => (Value::Nil, why).into_lua_multi(lua),
                };
            }
            "set_data" => {
                let key =
                    text(0).ok_or_else(|| mlua::Error::runtime("set_data: the key must be a string"))?;
                let value = data_from_lua(&arg(1), 0);
                let mut host = self.host_mut()?;
                let Some(((), _)) = host.with_room(&jid, &env, |room, _| room.settings.set_data(&key, value))
                else {
                    return nil();
                };
                return nil();
            }
            _ => {}
        }
        let host = self.host.try_borrow().map_err(|_| mlua::Error::runtime("muc_rs host busy"))?;
        let Some(room) = host.room(&jid) else { return nil() };
        let mut scratch = crate::outcome::Outcome::default();
        let ctx = Ctx { config: host.config(), env: &env, out: &mut scratch, host: host.domain() };
        let value: Value = match method {
            "get_affiliation" => match text(0).and_then(|j| j.parse::<Jid>().ok()) {
                Some(user) => affiliation_value(lua, room.affiliation(&ctx, &user.to_bare()))?,
                None => Value::Nil,
            },
            "get_affiliation_data" => {
                let data = text(0)
                    .and_then(|j| j.parse::<Jid>().ok())
                    .and_then(|user| room.affiliation_data(&user.to_bare()))
                    .map(|d| d.to_data());
                match (data, text(1)) {
                    (Some(data), Some(key)) => match data.get(&crate::persist::Key::from(key.as_str())) {
                        Some(value) => data_to_lua(lua, value)?,
                        None => Value::Nil,
                    },
                    (Some(data), None) => data_to_lua(lua, &crate::persist::Data::Table(data))?,
                    (None, _) => Value::Nil,
                }
            }
            "affiliations" => {
                let list = lua.create_table()?;
                for (user, affiliation) in room.affiliations() {
                    let entry = lua.create_table_with_capacity(3, 0)?;
                    entry.raw_set(1, user.as_str())?;
                    entry.raw_set(2, affiliation.as_str())?;
                    if let Some(data) = room.affiliation_data(user) {
                        entry.raw_set(3, data_to_lua(lua, &crate::persist::Data::Table(data.to_data()))?)?;
                    }
                    list.raw_push(entry)?;
                }
                Value::Table(list)
            }
            "get_role" => {
                let nick = text(0).and_then(|n| n.parse::<FullJid>().ok());
                match nick.and_then(|n| room.occupant_by_nick(n.resource().as_str())).and_then(|o| o.role) {
                    Some(role) => role.as_str().into_lua(lua)?,
                    None => Value::Nil,
                }
            }
            "get_default_role" => {
                let affiliation = text(0).and_then(|a| Affiliation::parse(&a)).unwrap_or(Affiliation::None);
                match room.default_role(affiliation) {
                    Some(role) => role.as_str().into_lua(lua)?,
                    None => Value::Nil,
                }
            }
            "get_occupant_jid" => match text(0).and_then(|j| j.parse::<FullJid>().ok()) {
                Some(real) => match room.occupant_by_real_jid(&real) {
                    Some(occupant) => occupant.nick.as_str().into_lua(lua)?,
                    None => Value::Nil,
                },
                None => Value::Nil,
            },
            "occupant_by_real_jid" => {
                let occupant = text(0).and_then(|j| j.parse::<FullJid>().ok());
                match occupant.as_ref().and_then(|real| room.occupant_by_real_jid(real)) {
                    Some(occupant) => self.occupant_table(lua, occupant)?,
                    None => Value::Nil,
                }
            }
            "occupant_by_nick" => {
                let nick = text(0).and_then(|j| j.parse::<FullJid>().ok());
                match nick.and_then(|n| room.occupant_by_nick(n.resource().as_str())) {
                    Some(occupant) => self.occupant_table(lua, occupant)?,
                    None => Value::Nil,
                }
            }
            "occupants" => {
                let list = lua.create_table()?;
                for occupant in room.occupants() {
                    list.raw_push(self.occupant_table(lua, occupant)?)?;
                }
                Value::Table(list)
            }
            "get_occupant_id" => match text(0).and_then(|j| j.parse::<Jid>().ok()) {
                Some(user) => {
                    crate::id::occupant_id(user.to_bare().as_str(), &room.settings.occupant_id_salt)
                        .into_lua(lua)?
                }
                None => Value::Nil,
            },
            "setting" => setting(lua, room, text(0).as_deref().unwrap_or(""))?,
            "data" => match text(0).and_then(|key| room.settings.data(&key)) {
                Some(value) => data_to_lua(lua, &value)?,
                None => Value::Nil,
            },
            "data_table" => data_to_lua(lua, &crate::persist::Data::Table(room.settings.to_data()))?,
            "history_length" => Value::Integer(room.history.len() as i64),
            "occupants_version" => Value::Integer(room.occupants_version as i64),
            "sessions" => {
                let nick = text(0).and_then(|j| j.parse::<FullJid>().ok());
                match nick.and_then(|n| room.occupant_by_nick(n.resource().as_str())) {
                    Some(occupant) => self.sessions_table(lua, occupant)?,
                    None => Value::Nil,
                }
            }
            other => return Err(mlua::Error::runtime(format!("muc_rs: no room method {other:?}"))),
        };
        value.into_lua_multi(lua)
    }

    /// An occupant as stock's occupant objects hold it (a copy). Its `sessions` (with
    /// their presences) are fetched when a module first reads them (`sessions`).
    fn occupant_table(&self, lua: &Lua, occupant: &Occupant) -> LuaResult<Value> {
        let t = lua.create_table_with_capacity(0, 4)?;
        t.raw_set("nick", occupant.nick.as_str())?;
        t.raw_set("bare_jid", occupant.bare_jid.as_str())?;
        t.raw_set("jid", occupant.primary().map(|j| j.as_str()))?;
        t.raw_set("role", occupant.role.map(|r| r.as_str()))?;
        Ok(Value::Table(t))
    }

    /// An occupant's sessions: real JID → its last presence.
    fn sessions_table(&self, lua: &Lua, occupant: &Occupant) -> LuaResult<Value> {
        let sessions = lua.create_table()?;
        for session in occupant.sessions() {
            let presence = self.build_plain(lua, &occupant.session_presence(session))?;
            sessions.raw_set(session.jid.as_str(), presence)?;
        }
        Ok(Value::Table(sessions))
    }
}

fn nil() -> LuaResult<MultiValue> {
    Ok(MultiValue::new())
}

fn affiliation_value(lua: &Lua, affiliation: Affiliation) -> LuaResult<Value> {
    match affiliation {
        Affiliation::None => Ok(Value::Nil),
        other => other.as_str().into_lua(lua),
    }
}

/// What stock's `room:get_<name>()` answers.
fn setting(lua: &Lua, room: &Room, name: &str) -> LuaResult<Value> {
    let s = &room.settings;
    let text = |v: &Option<Box<str>>| match v {
        Some(v) => v.as_ref().into_lua(lua),
        None => Ok(Value::Nil),
    };
    match name {
        "name" => text(&s.name),
        "description" => text(&s.description),
        "language" => text(&s.language),
        "password" => text(&s.password),
        "hidden" => Ok(Value::Boolean(s.hidden)),
        "public" => Ok(Value::Boolean(!s.hidden)),
        "members_only" => Ok(Value::Boolean(s.members_only)),
        "allow_member_invites" => Ok(Value::Boolean(s.allow_member_invites)),
        "moderated" => Ok(Value::Boolean(s.moderated)),
        "persistent" => Ok(Value::Boolean(s.persistent)),
        "changesubject" => Ok(Value::Boolean(s.change_subject)),
        "whois" => (if s.whois == Whois::Anyone { "anyone" } else { "moderators" }).into_lua(lua),
        "historylength" => {
            room.settings.data("history_length").map_or(Ok(Value::Integer(20)), |d| data_to_lua(lua, &d))
        }
        "allow_pm" => s.allow_pm.as_ref().into_lua(lua),
        "allow_modpm" => Ok(Value::Boolean(s.allow_modpm)),
        "salt" => s.occupant_id_salt.as_ref().into_lua(lua),
        other => Err(mlua::Error::runtime(format!("muc_rs: no room setting {other:?}"))),
    }
}
