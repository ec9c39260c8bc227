//! The host protocol's steps as the shim sees them: what `host:handle` leaves to the shim's
//! loop (a question for the modules, for storage or for a room's avatar, or records to
//! store) as a table, and the answers the shim gives back read into the facts of the next
//! call (see docs/design/host-protocol.md).

use super::storage::{data_from_lua, data_to_lua};
use jid::{BareJid, FullJid};
use mlua::{Lua, Result as LuaResult, Table, Value};
use muc_rs::affiliation::{Affiliation, Role};
use muc_rs::data::Data;
use muc_rs::hooks::{AffiliationChange, Answer, Hook, Question};
use muc_rs::outcome::Outcome;
use muc_rs::protocol::{Facts, Question as Step, StoredRoom};

/// Every answer the shim gave so far, added to the facts of a call.
pub fn read_answers(answers: &Table, facts: &mut Facts) {
    read_storage_answers(answers, facts);
    read_module_answers(answers, facts);
    read_patched(answers, facts);
}

/// What modules that replace the room's `get_affiliation` or `get_members_only` answer,
/// where that differs from the room's own (the shim asks them before the stanza:
/// `answers.patched = { room = jid, affiliations = { [bare jid] = affiliation },
/// members_only = bool? }`).
fn read_patched(answers: &Table, facts: &mut Facts) {
    let Ok(Value::Table(patched)) = answers.raw_get::<Value>("patched") else { return };
    let Some(room) = patched.raw_get::<String>("room").ok().and_then(|r| r.parse::<BareJid>().ok()) else {
        return;
    };
    if let Ok(Some(affiliations)) = patched.raw_get::<Option<Table>>("affiliations") {
        for (user, affiliation) in affiliations.pairs::<String, String>().flatten() {
            if let (Ok(user), Some(affiliation)) = (user.parse::<BareJid>(), Affiliation::parse(&affiliation))
            {
                facts.supply_patched_affiliation(room.clone(), user, affiliation);
            }
        }
    }
    if let Ok(Some(members_only)) = patched.raw_get::<Option<bool>>("members_only") {
        facts.supply_patched_members_only(room, members_only);
    }
}

/// What `host:handle` leaves to the shim, as a table: a question for the modules
/// (`hook`, see `question_table`), for storage (`load_room = jid`: answer
/// `answers.rooms[jid] = { config, state }`, `false` if it has none, or `{ error = why }`;
/// `stored_rooms = true`: answer `answers.stored_rooms = { [jid] = { config, state } }` or
/// `{ error = why }`), for a room's avatar (`avatar_hash = jid`: answer
/// `answers.avatar_hashes[jid]` with the hash or false), or `stores = { { jid, config,
/// state }, … }` to write before `host:confirm(err)` (config nil: delete the room's records).
/// Where rooms have vCards, a room's records and its avatar are asked in one step (the core
/// asks for the avatar of every room it brings back or makes, next).
pub fn step_table(lua: &Lua, outcome: &Outcome, room_vcards: bool) -> LuaResult<Table> {
    let step = match &outcome.ask {
        Some(Step::Module(question)) => return question_table(lua, question),
        Some(Step::LoadRoom(room)) if room_vcards => {
            lua.create_table_from([("load_room", room.as_str()), ("avatar_hash", room.as_str())])?
        }
        Some(Step::LoadRoom(room)) => lua.create_table_from([("load_room", room.as_str())])?,
        Some(Step::StoredRooms) => lua.create_table_from([("stored_rooms", true)])?,
        Some(Step::AvatarHash(room)) => lua.create_table_from([("avatar_hash", room.as_str())])?,
        // Asked of Prosody by the binding itself (`LuaHost::supply_admins`).
        Some(Step::ServiceAdmins(_)) => {
            return Err(mlua::Error::runtime("service admins are not the shim's to answer"))
        }
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

/// What the shim read from storage (`answers.rooms`, `answers.stored_rooms`).
fn read_storage_answers(answers: &Table, facts: &mut Facts) {
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

/// The key of a question, and of its answer, in the shim's tables.
pub fn hook_key(hook: Hook) -> &'static str {
    match hook {
        Hook::RoomPreCreate => "pre_create",
        Hook::OccupantPreJoin => "pre_join",
        Hook::OccupantPreChange => "pre_change",
        Hook::OccupantPreLeave => "pre_leave",
        Hook::OccupantGroupchat => "groupchat",
        Hook::GroupchatFirst => "groupchat_first",
        Hook::PrivateMessage => "private_message",
        Hook::Invite => "pre_invite",
        Hook::Decline => "pre_decline",
        Hook::Registration => "registration_submitted",
        Hook::Config => "config_submitted",
        Hook::PreSetAffiliation => "pre_set_affiliation",
        _ => "",
    }
}

/// A question as the shim reads it: `{ hook, room, … }` with the question's fields
/// (`nick`, `bare_jid`, `role`, `orig_nick`, `to`, `invitee`, `is_first_session`,
/// `is_last_session`; for an affiliation change stock's `actor`, `jid`, `affiliation`,
/// `previous_affiliation`, `reason`, `data`, answered in `answers.pre_set_affiliation[jid]`).
pub fn question_table(lua: &Lua, question: &Question) -> LuaResult<Table> {
    let t = lua.create_table_with_capacity(0, 8)?;
    t.raw_set("hook", hook_key(question.hook()))?;
    t.raw_set("room", question.room().as_str())?;
    let occupant = |nick: &FullJid, bare_jid: &BareJid, role: &Option<Role>| -> LuaResult<()> {
        t.raw_set("nick", nick.as_str())?;
        t.raw_set("bare_jid", bare_jid.as_str())?;
        t.raw_set("role", role.map(|r| r.as_str()))
    };
    match question {
        Question::PreCreate { .. } => {}
        Question::PreJoin { nick, bare_jid, role, is_first_session, .. } => {
            occupant(nick, bare_jid, role)?;
            t.raw_set("is_first_session", *is_first_session)?;
        }
        Question::PreChange {
            orig_nick, nick, bare_jid, role, is_first_session, is_last_session, ..
        } => {
            occupant(nick, bare_jid, role)?;
            t.raw_set("orig_nick", orig_nick.as_str())?;
            t.raw_set("is_first_session", *is_first_session)?;
            t.raw_set("is_last_session", *is_last_session)?;
        }
        Question::PreLeave { nick, bare_jid, role, is_last_session, .. } => {
            occupant(nick, bare_jid, role)?;
            t.raw_set("is_last_session", *is_last_session)?;
        }
        Question::Groupchat { nick, subject_change, .. } => {
            t.raw_set("nick", nick.as_str())?;
            t.raw_set("subject_change", *subject_change)?;
        }
        Question::GroupchatFirst { nick, .. } => t.raw_set("nick", nick.as_ref().map(|n| n.as_str()))?,
        Question::PreInvite { invitee, .. } => t.raw_set("invitee", invitee.as_str())?,
        Question::PrivateMessage { from, to, .. } => {
            t.raw_set("nick", from.as_str())?;
            t.raw_set("to", to.as_str())?;
        }
        Question::PreDecline { declinee, .. } => t.raw_set("declinee", declinee.as_str())?,
        Question::RegistrationSubmitted { user, nick, .. } => {
            t.raw_set("user", user.as_str())?;
            t.raw_set("nick", nick.as_str())?;
        }
        Question::ConfigSubmitted { actor, layout, .. } => {
            t.raw_set("actor", actor.as_str())?;
            t.raw_set("fields", super::events::form_fields(lua, layout)?)?;
        }
        Question::PreSetAffiliation { change, data } => {
            let AffiliationChange { actor, jid, affiliation, previous, reason, .. } = change;
            t.raw_set("actor", actor.as_ref().map(|a| a.as_str()))?;
            t.raw_set("jid", jid.as_str())?;
            t.raw_set("affiliation", affiliation.as_str())?;
            t.raw_set("previous_affiliation", previous.as_str())?;
            t.raw_set("reason", reason.as_deref())?;
            if let Some(data) = data {
                t.raw_set(
                    "data",
                    super::storage::data_to_lua(lua, &muc_rs::data::Data::Table(data.clone()))?,
                )?;
            }
        }
    }
    Ok(t)
}

/// An answer from the shim: false for refused; a table to go on: `{ nick = resource?,
/// role = role?, role_changed = bool }`, or for a registration the affiliation data to keep.
/// The modules' answers the shim gave so far (`answers[hook]`, see `question_table`), and
/// the rooms' avatar hashes (`answers.avatar_hashes[jid]`, a string or false).
fn read_module_answers(answers: &Table, facts: &mut Facts) {
    // The points the core asks the modules about have a key (see `hook_key`).
    // One answer per user for affiliation changes: `{ [jid] = verdict }`, each false
    // (refused), `{ refused = { type, condition } }` or `{ data = data? }`.
    if let Ok(Value::Table(users)) = answers.raw_get::<Value>(hook_key(Hook::PreSetAffiliation)) {
        for (jid, verdict) in users.pairs::<String, Value>().flatten() {
            let Ok(jid) = jid.parse::<BareJid>() else { continue };
            let field = |name: &str| match &verdict {
                Value::Table(t) => t.raw_get::<Value>(name).unwrap_or(Value::Nil),
                _ => Value::Nil,
            };
            let refused = match (&verdict, field("refused")) {
                (Value::Boolean(false), _) => Some(("cancel".to_owned(), "not-allowed".to_owned())),
                (_, Value::Table(e)) => Some((
                    e.raw_get::<Option<String>>(1).ok().flatten().unwrap_or_else(|| "cancel".into()),
                    e.raw_get::<Option<String>>(2).ok().flatten().unwrap_or_else(|| "not-allowed".into()),
                )),
                _ => None,
            };
            let data = match super::storage::data_from_lua(&field("data"), 0) {
                Some(muc_rs::data::Data::Table(data)) => Some(data),
                _ => None,
            };
            facts.supply_answer(Hook::PreSetAffiliation, Answer::Affiliation { jid, refused, data });
        }
    }
    let per_question = |hook: &Hook| !hook_key(*hook).is_empty() && *hook != Hook::PreSetAffiliation;
    for hook in Hook::ALL.into_iter().filter(per_question) {
        if let Ok(value) = answers.raw_get::<Value>(hook_key(hook)) {
            if let Some(answer) = answer_from_lua(hook, &value) {
                facts.supply_answer(hook, answer);
            }
        }
    }
    if let Ok(Value::Table(hashes)) = answers.raw_get::<Value>("avatar_hashes") {
        for (room, hash) in hashes.pairs::<String, Value>().flatten() {
            if let Ok(room) = room.parse::<BareJid>() {
                let hash = hash.as_string().and_then(|h| h.to_str().ok().map(|h| h.to_owned()));
                facts.supply_avatar_hash(room, hash);
            }
        }
    }
}

pub fn answer_from_lua(hook: Hook, value: &Value) -> Option<Answer> {
    match value {
        Value::Boolean(false) => Some(Answer::Refused),
        Value::Table(t) if hook == Hook::Config => {
            // `{ fields = { { var, { value, … } }, … }, codes = { code, … } }`
            let mut fields = Vec::new();
            if let Ok(Some(list)) = t.raw_get::<Option<Table>>("fields") {
                for entry in list.sequence_values::<Table>().flatten() {
                    let Ok(var) = entry.raw_get::<String>(1) else { continue };
                    let values = match entry.raw_get::<Option<Table>>(2) {
                        Ok(Some(values)) => values.sequence_values::<String>().flatten().collect(),
                        _ => Vec::new(),
                    };
                    fields.push((var, values));
                }
            }
            let codes = match t.raw_get::<Option<Table>>("codes") {
                Ok(Some(codes)) => codes.sequence_values::<u16>().flatten().collect(),
                _ => Vec::new(),
            };
            Some(Answer::Configured { fields, codes })
        }
        Value::Table(_) if hook == Hook::Registration => match super::storage::data_from_lua(value, 0) {
            Some(muc_rs::data::Data::Table(data)) => Some(Answer::Registered { data }),
            _ => Some(Answer::Allowed { nick: None, role: None }),
        },
        Value::Table(t) => {
            let nick = t.raw_get::<Option<String>>("nick").ok().flatten();
            let role = match t.raw_get::<bool>("role_changed").unwrap_or(false) {
                true => Some(
                    t.raw_get::<Option<String>>("role")
                        .ok()
                        .flatten()
                        .and_then(|r| Role::parse(&r))
                        .filter(|r| *r != Role::None),
                ),
                false => None,
            };
            Some(Answer::Allowed { nick, role })
        }
        _ => None,
    }
}
