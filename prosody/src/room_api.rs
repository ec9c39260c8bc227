//! `host:room(method, room_jid, ...)`: what the shim's room objects ask of a live room,
//! answered in stock mod_muc's terms (strings for affiliations and roles, nil for none,
//! `room._data`'s keys and values). What may read or write storage or fire events is
//! `host:call` instead (`calls.rs`), driven by the shim's loop.
//!
//! | method | arguments | answer |
//! |---|---|---|
//! | `get_affiliation` | JID | affiliation or nil |
//! | `get_affiliation_data` | JID, key? | the data table, or one value |
//! | `affiliations` | — | `{ {jid, affiliation, data}, … }` in the order granted |
//! | `get_role` | occupant JID | role or nil |
//! | `get_default_role` | affiliation | role and its rank, or nil |
//! | `get_registered_nick`, `get_registered_jid` | JID, nick | the other, or nil |
//! | `get_occupant_jid` | real JID | occupant JID or nil |
//! | `occupant_by_real_jid`, `occupant_by_nick` | JID | occupant fields or nil |
//! | `occupants` | — | `{ occupant fields, … }` in join order |
//! | `occupants_version` | — | a number that changes with every change of an occupant |
//! | `sessions` | occupant JID | real JID → presence |
//! | `get_occupant_id` | bare JID | the XEP-0421 id |
//! | `setting` | stock getter name (`members_only`, `whois`, …) | its value |
//! | `data` | key | a `_data` value |
//! | `set_data` | key, value | whether the key is one the room reads itself (subject, …) |
//! | `data_table` | — | all of `_data` |
//! | `history_length` | — | messages in the room's own history |
//! | `history_times` | — | when each entry of the history was kept, oldest first |
//! | `history_stanza` | index (from 1) | that entry's stanza |
//! | `set_history` | `{ {stanza =, timestamp =}, … }` | — (the room's history becomes these) |
//! | `history_for` | to, maxchars?, maxstanzas?, since? | the stanzas stock's `muc-get-history` step gives |
//! | `add_history` | stanza | — |
//! | `may_set_vcard` | JID | whether it may replace the room's vCard |
//! | `build_item_list` | occupant, anonymous?, nick?, actor's nick?, actor's JID?, reason? | the items describing the occupant |

use super::convert;
use super::host::LuaHost;
use super::storage::{data_from_lua, data_to_lua};
use jid::{BareJid, FullJid, Jid};
use mlua::{IntoLua, IntoLuaMulti, Lua, MultiValue, Result as LuaResult, Table, Value};
use muc_rs::affiliation::{Affiliation, Role};
use muc_rs::data::Data;
use muc_rs::dataform::Value as FormValue;
use muc_rs::occupant::Occupant;
use muc_rs::room::settings::Whois;
use muc_rs::room::{Actor, AffiliationData, Ctx, DataChange, Room};

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
        let mut facts = self.facts();
        // Only these read a user's affiliation, which being a service admin may change: the
        // other reads ask Prosody nothing.
        if matches!(method, "get_affiliation" | "may_set_vcard") {
            let named = self.named_users(args.iter().take(1));
            self.supply_admins(&mut facts, &named);
        }
        match method {
            "add_history" => {
                let Value::Table(stanza) = arg(0) else { return nil() };
                let element = convert::element_from_table(&self.keys, &stanza)
                    .map_err(|why| mlua::Error::runtime(format!("add_history: malformed stanza: {why}")))?;
                return self.host_mut()?.add_history(&jid, &element, facts.now).into_lua_multi(lua);
            }
            "set_data" => {
                let key =
                    text(0).ok_or_else(|| mlua::Error::runtime("set_data: the key must be a string"))?;
                let value = data_from_lua(&arg(1), 0);
                let mut host = self.host_mut()?;
                let Some((own, _)) = host.with_room(&jid, &facts, |room, _| {
                    room.settings.set_data(&key, value);
                    muc_rs::persist::is_settings_key(&key)
                }) else {
                    return nil();
                };
                return own.into_lua_multi(lua);
            }
            "set_history" => {
                let Value::Table(list) = arg(0) else { return nil() };
                let mut entries = Vec::new();
                for entry in list.sequence_values::<Value>() {
                    let Value::Table(entry) = entry? else { continue };
                    // Entries a module left without a stanza are not history.
                    let Ok(Value::Table(stanza)) = entry.raw_get::<Value>("stanza") else { continue };
                    let element = convert::element_from_table(&self.keys, &stanza).map_err(|why| {
                        mlua::Error::runtime(format!("set_history: malformed stanza: {why}"))
                    })?;
                    let timestamp = match entry.raw_get::<Value>("timestamp")? {
                        Value::Integer(n) => n,
                        Value::Number(f) => f as i64,
                        _ => facts.now,
                    };
                    entries.push((element, timestamp));
                }
                let mut host = self.host_mut()?;
                host.with_room(&jid, &facts, |room, _| room.replace_history(entries));
                return nil();
            }
            "history_for" => {
                let to = text(0).unwrap_or_default();
                let number = |v: Value| match v {
                    Value::Integer(n) => Some(n as f64),
                    Value::Number(f) => Some(f),
                    _ => None,
                };
                let (maxchars, maxstanzas) = (number(arg(1)), number(arg(2)));
                let since = number(arg(3)).map(|s| s as i64);
                let mut host = self.host_mut()?;
                let Some((stanzas, _)) = host
                    .with_room(&jid, &facts, |room, _| room.history_for(&to, maxchars, maxstanzas, since))
                else {
                    return nil();
                };
                drop(host);
                let list = lua.create_table_with_capacity(stanzas.len(), 0)?;
                for stanza in &stanzas {
                    list.raw_push(self.build_plain(lua, stanza)?)?;
                }
                return list.into_lua_multi(lua);
            }
            _ => {}
        }
        let host = self.host.try_borrow().map_err(|_| mlua::Error::runtime("muc_rs host busy"))?;
        let Some(room) = host.room(&jid) else { return nil() };
        let mut scratch = muc_rs::outcome::Outcome::default();
        let ctx = Ctx::new(host.config(), &facts, &mut scratch, host.domain());
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
                    (Some(data), Some(key)) => match data.get(&muc_rs::data::Key::from(key.as_str())) {
                        Some(value) => data_to_lua(lua, value)?,
                        None => Value::Nil,
                    },
                    (Some(data), None) => data_to_lua(lua, &muc_rs::data::Data::Table(data))?,
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
                        entry.raw_set(3, data_to_lua(lua, &muc_rs::data::Data::Table(data.to_data()))?)?;
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
                // The role and its rank, as stock answers.
                let affiliation = text(0).and_then(|a| Affiliation::parse(&a)).unwrap_or(Affiliation::None);
                return match room.default_role(affiliation) {
                    Some(role) => (role.as_str(), role as i64).into_lua_multi(lua),
                    None => nil(),
                };
            }
            "get_registered_nick" => match text(0).and_then(|j| j.parse::<Jid>().ok()) {
                Some(user) => room.registered_nick(&user.to_bare()).into_lua(lua)?,
                None => Value::Nil,
            },
            "get_registered_jid" => match text(0) {
                Some(nick) => room.registered_jid(&nick).map(|j| j.as_str()).into_lua(lua)?,
                None => Value::Nil,
            },
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
                    muc_rs::id::occupant_id(user.to_bare().as_str(), &room.settings.occupant_id_salt)
                        .into_lua(lua)?
                }
                None => Value::Nil,
            },
            "setting" => setting(lua, room, text(0).as_deref().unwrap_or(""))?,
            "data" => match text(0).and_then(|key| room.settings.data(&key)) {
                Some(value) => data_to_lua(lua, &value)?,
                None => Value::Nil,
            },
            "data_table" => data_to_lua(lua, &muc_rs::data::Data::Table(room.settings.to_data()))?,
            "history_length" => Value::Integer(room.history.len() as i64),
            "history_times" => {
                let list = lua.create_table_with_capacity(room.history.len(), 0)?;
                for entry in &room.history {
                    list.raw_push(entry.timestamp)?;
                }
                Value::Table(list)
            }
            "history_stanza" => {
                let index = match arg(0) {
                    Value::Integer(i) if i >= 1 => i as usize - 1,
                    _ => return nil(),
                };
                match room.history.get(index) {
                    Some(entry) => Value::Table(self.build_plain(lua, &entry.stanza)?),
                    None => Value::Nil,
                }
            }
            "may_set_vcard" => match text(0).and_then(|j| j.parse::<Jid>().ok()) {
                Some(user) => Value::Boolean(room.may_set_vcard(&ctx, &user.to_bare())),
                None => Value::Boolean(false),
            },
            "occupants_version" => Value::Integer(room.occupants_version as i64),
            "build_item_list" => {
                let Value::Table(occupant) = arg(0) else { return nil() };
                let occupant = self.occupant_from_table(&occupant)?;
                let anonymous = arg(1).as_boolean().unwrap_or(false);
                let (nick, actor_nick, actor_jid, reason) = (text(2), text(3), text(4), text(5));
                let items = room.item_list(
                    &ctx,
                    &occupant,
                    anonymous,
                    nick.as_deref(),
                    actor_nick.as_deref(),
                    actor_jid.as_deref(),
                    reason.as_deref(),
                );
                let list = lua.create_table_with_capacity(items.len(), 0)?;
                for item in &items {
                    list.raw_push(self.build_plain(lua, item)?)?;
                }
                Value::Table(list)
            }
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

    /// The users a call names (an actor, a JID it reads or changes), where their being
    /// service admins may change their affiliation: the core is told before it runs.
    pub(super) fn named_users<'a>(&self, args: impl IntoIterator<Item = &'a Value>) -> Vec<BareJid> {
        if !self.host.try_borrow().is_ok_and(|host| host.config().admins_as_room_owners) {
            return Vec::new();
        }
        args.into_iter()
            .filter_map(|arg| arg.as_string()?.to_str().ok()?.parse::<Jid>().ok())
            .filter(|user| user.node().is_some())
            .map(|user| user.to_bare())
            .collect()
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

    /// An occupant a module hands back (a stock occupant object, or a copy of one): its
    /// nick, user, role, primary session and sessions with their presences.
    pub(super) fn occupant_from_table(&self, t: &Table) -> LuaResult<Occupant> {
        let bad = |what: &str| mlua::Error::runtime(format!("muc_rs: an occupant with {what}"));
        let text = |key: &str| -> LuaResult<Option<String>> {
            Ok(t.get::<Option<mlua::LuaString>>(key)?.map(|s| s.to_string_lossy()))
        };
        let nick: FullJid = text("nick")?.and_then(|n| n.parse().ok()).ok_or_else(|| bad("no nick"))?;
        let bare_jid: BareJid =
            text("bare_jid")?.and_then(|j| j.parse().ok()).ok_or_else(|| bad("no bare_jid"))?;
        let role = match text("role")? {
            Some(role) => Some(Role::parse(&role).ok_or_else(|| bad("an unknown role"))?),
            None => None,
        }
        .filter(|role| *role != Role::None);
        let mut occupant = Occupant::new(bare_jid, nick, role);
        // Read through the object's metatable: a room's occupant fetches them when read.
        if let Some(sessions) = t.get::<Option<Table>>("sessions")? {
            for pair in sessions.pairs::<mlua::LuaString, Table>() {
                let (jid, presence) = pair?;
                let jid: FullJid =
                    jid.to_str()?.parse().map_err(|_| bad("a session that is not a full JID"))?;
                let presence = convert::element_from_table(&self.keys, &presence)
                    .map_err(|why| bad(&format!("a malformed presence: {why}")))?;
                occupant.set_session(&jid, presence);
            }
        }
        if let Some(primary) = text("jid")?.and_then(|j| j.parse::<FullJid>().ok()) {
            occupant.set_primary(&primary);
        }
        Ok(occupant)
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

fn switch(on: bool) -> Value {
    if on {
        Value::Boolean(true)
    } else {
        Value::Nil
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
        // Stock keeps these switches as true or nothing, and its getters answer so.
        "hidden" => Ok(switch(s.hidden)),
        "public" => Ok(Value::Boolean(!s.hidden)),
        "members_only" => Ok(switch(s.members_only)),
        "allow_member_invites" => Ok(switch(s.allow_member_invites)),
        "moderated" => Ok(switch(s.moderated)),
        "persistent" => Ok(switch(s.persistent)),
        "changesubject" => Ok(switch(s.change_subject)),
        "whois" => (if s.whois == Whois::Anyone { "anyone" } else { "moderators" }).into_lua(lua),
        "historylength" => {
            room.settings.data("history_length").map_or(Ok(Value::Integer(20)), |d| data_to_lua(lua, &d))
        }
        "defaulthistorymessages" => {
            Ok(s.default_history_messages.map_or(Value::Nil, |n| Value::Integer(n.into())))
        }
        "presence_broadcast" => {
            let roles = lua.create_table()?;
            for role in s.broadcast_roles() {
                roles.raw_set(role.as_str(), true)?;
            }
            Ok(Value::Table(roles))
        }
        "allow_pm" => s.allow_pm.as_ref().into_lua(lua),
        "allow_modpm" => Ok(Value::Boolean(s.allow_modpm)),
        "salt" => s.occupant_id_salt.as_ref().into_lua(lua),
        other => Err(mlua::Error::runtime(format!("muc_rs: no room setting {other:?}"))),
    }
}

/// A change a module asks of a room, with stock's arguments: `set_affiliation(actor, jid,
/// affiliation, reason, data)`, `set_role(actor, nick, role, reason)` (`actor` is `true`
/// for the room itself, or a JID), `set_option(name, value)` for stock's setters,
/// `set_subject(from, text)`. Fails with an error type and condition.
pub(super) fn change(
    room: &mut Room,
    ctx: &mut Ctx,
    method: &str,
    args: &[Value],
) -> Result<bool, (String, String)> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
    let text = |i: usize| arg(i).as_string().and_then(|s| s.to_str().ok().map(|s| s.to_owned()));
    let not_acceptable = || ("modify".to_owned(), "not-acceptable".to_owned());
    let error = |e: muc_rs::xml::StanzaError| (e.kind.as_str().to_owned(), e.condition.to_string());
    let actor_jid = text(0).and_then(|j| j.parse::<Jid>().ok());
    let actor = || match (arg(0), &actor_jid) {
        (Value::Boolean(true), _) => Ok(Actor::Room),
        (_, Some(jid)) => Ok(Actor::User(jid)),
        _ => Err(not_acceptable()),
    };
    match method {
        "set_affiliation" => {
            let user = text(1).and_then(|j| j.parse::<Jid>().ok()).ok_or_else(not_acceptable)?.to_bare();
            let affiliation = match text(2) {
                None => Affiliation::None,
                Some(a) => Affiliation::parse(&a).ok_or_else(not_acceptable)?,
            };
            let data = match arg(4) {
                Value::Nil => DataChange::Keep,
                Value::Boolean(false) => DataChange::Clear,
                value => match data_from_lua(&value, 0) {
                    Some(Data::Table(t)) if t.is_empty() => DataChange::Clear,
                    Some(Data::Table(t)) => DataChange::Set(AffiliationData::from_data(&t)),
                    _ => return Err(not_acceptable()),
                },
            };
            let reason = text(3);
            room.set_affiliation(ctx, actor()?, &user, affiliation, reason.as_deref(), data)
                .map_err(error)?;
            Ok(true)
        }
        "set_role" => {
            let nick = text(1).and_then(|j| j.parse::<FullJid>().ok()).ok_or_else(not_acceptable)?;
            let role = match text(2) {
                None => None,
                Some(r) => Some(Role::parse(&r).ok_or_else(not_acceptable)?).filter(|r| *r != Role::None),
            };
            let reason = text(3);
            room.set_role(ctx, actor()?, nick.resource().as_str(), role, reason.as_deref()).map_err(error)?;
            Ok(true)
        }
        "set_subject" => {
            let from = text(0).unwrap_or_else(|| room.jid.to_string());
            room.set_subject(ctx, &from, &text(1).unwrap_or_default());
            Ok(true)
        }
        _ => {
            let (var, value) =
                option_field(&text(0).unwrap_or_default(), &arg(1)).ok_or_else(not_acceptable)?;
            Ok(room.set_option(ctx, var, value))
        }
    }
}

/// Stock's setter `set_<name>(value)` as the configuration field it stands for.
fn option_field(name: &str, value: &Value) -> Option<(&'static str, Option<FormValue>)> {
    let truthy = !matches!(value, Value::Nil | Value::Boolean(false));
    let flag = Some(FormValue::Bool(truthy));
    let text = match value {
        Value::String(s) => {
            s.to_str().ok().map(|s| s.to_owned()).filter(|s| !s.is_empty()).map(FormValue::Text)
        }
        _ => None,
    };
    let number = match value {
        Value::Integer(n) => Some(FormValue::Int(*n)),
        Value::Number(f) => Some(FormValue::Int(*f as i64)),
        _ => None,
    };
    Some(match name {
        "name" => ("muc#roomconfig_roomname", text),
        "description" => ("muc#roomconfig_roomdesc", text),
        "language" => ("muc#roomconfig_lang", text),
        "password" => ("muc#roomconfig_roomsecret", text),
        "persistent" => ("muc#roomconfig_persistentroom", flag),
        "public" => ("muc#roomconfig_publicroom", flag),
        "hidden" => ("muc#roomconfig_publicroom", Some(FormValue::Bool(!truthy))),
        "members_only" => ("muc#roomconfig_membersonly", flag),
        "allow_member_invites" => ("{http://prosody.im/protocol/muc}roomconfig_allowmemberinvites", flag),
        "changesubject" => ("muc#roomconfig_changesubject", flag),
        "moderated" => ("muc#roomconfig_moderatedroom", flag),
        "whois" => ("muc#roomconfig_whois", text),
        "historylength" => ("muc#roomconfig_historylength", number),
        "defaulthistorymessages" => ("muc#roomconfig_defaulthistorymessages", number),
        "allow_pm" => ("muc#roomconfig_allowpm", text),
        "allow_modpm" => ("{xmpp:prosody.im}muc#allow_modpm", flag),
        "presence_broadcast" => {
            // Stock takes a set of roles: { moderator = true, … }.
            let Value::Table(t) = value else { return None };
            let roles = t
                .pairs::<String, Value>()
                .flatten()
                .filter(|(_, v)| !matches!(v, Value::Nil | Value::Boolean(false)));
            ("muc#roomconfig_presencebroadcast", Some(FormValue::List(roles.map(|(k, _)| k).collect())))
        }
        _ => return None,
    })
}
