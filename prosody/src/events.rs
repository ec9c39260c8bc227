//! Carrying out an [`Outcome`]: its deliveries in order, and at their places the steps the
//! core left to Prosody's modules ([`Event`]), handed to the shim's `event` callback.
//!
//! The callback is `event(kind, room_jid, ...)`; it fires the `muc-*` events and answers:
//!
//! | kind | arguments after the room | answer |
//! |---|---|---|
//! | `broadcast_message` | stanza, historic | the stanza to deliver, or nil if a handler did |
//! | `disco_info` | reply (form last), the form's fields `{ {name, type}, … }` | the reply to send |
//! | `config_form` | actor, reply (form last), the form's fields | the reply to send |
//! | `config_submitted` | actor, the submitted form | — |
//! | `config_notice` | `{ code, … }` | — |
//! | `get_history` | to, maxchars, maxstanzas, since, `{ stanza, … }` | the stanzas to send |
//! | `occupant_joined`, `occupant_session_new` | nick, real JID | — |
//! | `occupant_left` | nick, bare JID | — |
//! | `affiliation_changed` | actor, JID, affiliation, previous, reason, in room | — |
//! | `invite` | the invitation | the invitation to send, or nil if a handler sent it |
//! | `decline` | the declined invitation | the same, or nil if a handler sent it |
//! | `occupant_presence` | stanza, x, occupant's nick, bare JID, role, nick, actor, reason, broadcast, `{ session presence, … }` | nick, actor, reason |
//! | `build_presence` | stanza, occupant's nick, bare JID, is an occupant | — |
//! | `registration_form` | user, reply (form last), the form's fields, form type | the reply to send |
//! | `room_created`, `room_destroyed`, `room_evicted` | — | — |

use super::convert;
use super::host::{summary, LuaHost};
use jid::{BareJid, FullJid};
use minidom::Element;
use mlua::{Lua, Result as LuaResult, Table, Value};
use muc_rs::affiliation::Role;
use muc_rs::dataform::Form;
use muc_rs::hooks::{Answer, Event, Hook, Question};
use muc_rs::outcome::Outcome;
use muc_rs::presence_plan::{OccupantPresence, OwnPresences};
use muc_rs::protocol::Facts;

impl LuaHost {
    /// Logs the log lines of `outcome`, then sends its deliveries and runs its events, in
    /// their order.
    pub(super) fn carry_out(&self, lua: &Lua, outcome: &Outcome) -> LuaResult<()> {
        for (level, message) in &outcome.log {
            self.log(level.as_str(), message);
        }
        let mut sent = 0;
        for (at, event) in &outcome.events {
            for delivery in &outcome.deliveries[sent..*at] {
                self.deliver(lua, delivery)?;
            }
            sent = *at;
            if let Err(e) = self.run_event(lua, event) {
                self.log("error", &format!("a module's handler failed: {}", summary(&e)));
            }
        }
        for delivery in &outcome.deliveries[sent..] {
            self.deliver(lua, delivery)?;
        }
        Ok(())
    }

    fn run_event(&self, lua: &Lua, event: &Event) -> LuaResult<()> {
        let Some(callback) = &self.event else { return Ok(()) };
        match event {
            Event::BroadcastMessage { room, stanza, to, historic } => {
                let table = self.build_plain(lua, stanza)?;
                let answer: Value = callback.call(("broadcast_message", room.as_str(), &table, *historic))?;
                if let Value::Table(stanza) = answer {
                    // Rendered once now, as the handlers left it, for all its recipients.
                    if to.len() > 1 {
                        if let Ok(element) = super::convert::element_from_table(&self.keys, &stanza) {
                            self.attach_render(lua, &stanza, &element)?;
                        }
                    }
                    self.send_table(&stanza, to.iter().map(|j| j.as_str()))?;
                }
            }
            Event::DiscoInfo { room, reply, form, to } => {
                let reply = self.form_reply(lua, reply, muc_rs::xml::NS_DISCO_INFO, form, "result")?;
                let answer: Value =
                    callback.call(("disco_info", room.as_str(), reply, form_fields(lua, form)?))?;
                if let Value::Table(reply) = answer {
                    self.send_table(&reply, [to.as_str()])?;
                }
            }
            Event::ConfigForm { room, actor, reply, form, to } => {
                let reply = self.form_reply(lua, reply, muc_rs::xml::NS_MUC_OWNER, form, "form")?;
                let fields = form_fields(lua, form)?;
                let answer: Value =
                    callback.call(("config_form", room.as_str(), actor.as_str(), reply, fields))?;
                if let Value::Table(reply) = answer {
                    self.send_table(&reply, [to.as_str()])?;
                }
            }
            Event::ConfigSubmitted { room, actor, form } => {
                let form = self.build_plain(lua, form)?;
                callback.call::<()>(("config_submitted", room.as_str(), actor.as_str(), form))?
            }
            Event::ConfigNotice { room, codes } => {
                callback.call::<()>(("config_notice", room.as_str(), codes.clone()))?
            }
            Event::GetHistory { room, to, maxchars, maxstanzas, since, default } => {
                let stanzas = lua.create_table_with_capacity(default.len(), 0)?;
                for stanza in default {
                    stanzas.raw_push(self.build_plain(lua, stanza)?)?;
                }
                let (room, to_str) = (room.as_str(), to.as_str());
                let args = ("get_history", room, to_str, *maxchars, *maxstanzas, *since, stanzas);
                let answer: Option<Table> = callback.call(args)?;
                if let Some(answer) = answer {
                    for stanza in answer.sequence_values::<Table>() {
                        self.send_table(&stanza?, [to.as_str()])?;
                    }
                }
            }
            Event::OccupantJoined { room, nick, jid } => {
                callback.call::<()>(("occupant_joined", room.as_str(), nick.as_str(), jid.as_str()))?
            }
            Event::OccupantSessionNew { room, nick, jid } => {
                callback.call::<()>(("occupant_session_new", room.as_str(), nick.as_str(), jid.as_str()))?
            }
            Event::OccupantLeft { room, nick, jid } => {
                callback.call::<()>(("occupant_left", room.as_str(), nick.as_str(), jid.as_str()))?
            }
            Event::AffiliationChanged { room, actor, jid, affiliation, previous, reason, in_room } => {
                let name = |a: &muc_rs::affiliation::Affiliation| {
                    (*a != muc_rs::affiliation::Affiliation::None).then(|| a.as_str())
                };
                let args =
                    (room.as_str(), actor.as_ref().map(|a| a.as_str()), jid.as_str(), name(affiliation));
                let more = (name(previous), reason.as_deref(), *in_room);
                callback.call::<()>((
                    "affiliation_changed",
                    args.0,
                    args.1,
                    args.2,
                    args.3,
                    more.0,
                    more.1,
                    more.2,
                ))?
            }
            Event::Invite { room, stanza, to } => {
                let table = self.build_plain(lua, stanza)?;
                let answer: Value = callback.call(("invite", room.as_str(), &table))?;
                if let Value::Table(stanza) = answer {
                    self.send_table(&stanza, [to.as_str()])?;
                }
            }
            Event::Decline { room, stanza, to } => {
                let table = self.build_plain(lua, stanza)?;
                let answer: Value = callback.call(("decline", room.as_str(), &table))?;
                if let Value::Table(stanza) = answer {
                    self.send_table(&stanza, to.iter().map(|j| j.as_str()))?;
                }
            }
            Event::OccupantPresence { room, presence } => {
                self.occupant_presence(lua, callback, room, presence)?
            }
            Event::BuildPresence { room, nick, bare_jid, is_occupant, stanza, to } => {
                let table = self.build_plain(lua, stanza)?;
                let args = (room.as_str(), &table, nick.as_str(), bare_jid.as_str(), *is_occupant);
                callback.call::<()>(("build_presence", args.0, args.1, args.2, args.3, args.4))?;
                self.send_table(&table, [to.as_str()])?;
            }
            Event::RegistrationForm { room, user, reply, form, form_type, to } => {
                let reply = self.form_reply(lua, reply, muc_rs::xml::NS_REGISTER, form, form_type)?;
                let fields = form_fields(lua, form)?;
                let args = (room.as_str(), user.as_str(), reply, fields, *form_type);
                let answer: Value =
                    callback.call(("registration_form", args.0, args.1, args.2, args.3, args.4))?;
                if let Value::Table(reply) = answer {
                    self.send_table(&reply, [to.as_str()])?;
                }
            }
            Event::RoomCreated { room } => callback.call::<()>(("room_created", room.as_str()))?,
            Event::RoomDestroyed { room } => callback.call::<()>(("room_destroyed", room.as_str()))?,
            Event::RoomEvicted { room } => callback.call::<()>(("room_evicted", room.as_str()))?,
        }
        Ok(())
    }

    /// Fires the presence events on a planned occupant presence, and sends what the core
    /// builds from what the handlers left (a table a handler broke is logged, and the
    /// presence goes out as planned).
    fn occupant_presence(
        &self,
        lua: &Lua,
        callback: &mlua::Function,
        room: &BareJid,
        plan: &OccupantPresence<'static>,
    ) -> LuaResult<()> {
        let stanza = self.build_plain(lua, &plan.stanza)?;
        let x = self.build_plain(lua, &plan.x)?;
        let sessions = lua.create_table()?;
        if let OwnPresences::Sessions(list) = &plan.own {
            for (_, presence) in list {
                sessions.raw_push(self.build_plain(lua, presence)?)?;
            }
        }
        let occupant = &plan.occupant;
        let role = occupant.role.map(|r| r.as_str());
        let (nick, actor, reason) =
            (plan.nick.as_deref(), plan.actor.as_ref().map(|a| a.as_str()), plan.reason.as_deref());
        let args = (room.as_str(), &stanza, &x, occupant.nick.as_str(), occupant.bare_jid.as_str(), role);
        let more = (nick, actor, reason, plan.broadcast, &sessions);
        let (nick, actor, reason): (Option<String>, Option<String>, Option<String>) = callback.call((
            "occupant_presence",
            args.0,
            args.1,
            args.2,
            args.3,
            args.4,
            args.5,
            more.0,
            more.1,
            more.2,
            more.3,
            more.4,
        ))?;
        let mut plan = plan.clone();
        let read = |table: &Table, element: &mut Element| match convert::element_from_table(&self.keys, table)
        {
            Ok(changed) => *element = changed,
            Err(why) => self.log("error", &format!("a module broke an occupant's presence: {why}")),
        };
        read(&stanza, &mut plan.stanza);
        read(&x, &mut plan.x);
        if let OwnPresences::Sessions(list) = &mut plan.own {
            for (i, (_, presence)) in list.iter_mut().enumerate() {
                read(&sessions.raw_get::<Table>(i + 1)?, presence);
            }
        }
        let actor_changed = actor.as_deref() != plan.actor.as_ref().map(|a| a.as_str());
        plan.nick = nick;
        plan.actor = actor.and_then(|a| a.parse().ok());
        plan.reason = reason;
        let outcome = self.host_mut()?.occupant_presence(room, plan, actor_changed);
        for delivery in &outcome.deliveries {
            self.deliver(lua, delivery)?;
        }
        Ok(())
    }

    /// The table of `reply` with `form` rendered as the last child of its query.
    fn form_reply(
        &self,
        lua: &Lua,
        reply: &Element,
        query_ns: &str,
        form: &Form,
        form_type: &str,
    ) -> LuaResult<Table> {
        let mut reply = reply.clone();
        if let Some(query) = reply.get_child_mut("query", query_ns) {
            query.append_child(form.render(form_type));
        }
        self.build_plain(lua, &reply)
    }

    /// Sends a stanza table to each recipient in turn, setting `attr.to` in place.
    pub(super) fn send_table<'a>(
        &self,
        stanza: &Table,
        to: impl IntoIterator<Item = &'a str>,
    ) -> LuaResult<()> {
        let attr: Table = stanza.raw_get(&self.keys.attr)?;
        for to in to {
            attr.raw_set(&self.keys.to, to)?;
            if let Err(e) = self.send.call::<()>(stanza) {
                self.log("error", &format!("send callback failed for {to}: {}", summary(&e)));
            }
        }
        Ok(())
    }
}

/// The form's fields as a layout stub `{ {name, type}, … }`, for modules that look for
/// fields by name before adding theirs.
fn form_fields(lua: &Lua, form: &Form) -> LuaResult<Table> {
    let fields = lua.create_table_with_capacity(form.fields.len(), 0)?;
    for field in form.fields.iter().filter(|f| f.var.is_some()) {
        let entry = lua.create_table_with_capacity(0, 2)?;
        entry.raw_set("name", field.var)?;
        entry.raw_set("type", field.kind.as_str())?;
        fields.raw_push(entry)?;
    }
    Ok(fields)
}

/// The key of a question, and of its answer, in the shim's tables.
pub fn hook_key(hook: Hook) -> &'static str {
    match hook {
        Hook::RoomPreCreate => "pre_create",
        Hook::OccupantPreJoin => "pre_join",
        Hook::OccupantPreChange => "pre_change",
        Hook::OccupantPreLeave => "pre_leave",
        Hook::OccupantGroupchat => "groupchat",
        Hook::PrivateMessage => "private_message",
        Hook::Invite => "pre_invite",
        Hook::Decline => "pre_decline",
        Hook::Registration => "registration_submitted",
        _ => "",
    }
}

/// A question as the shim reads it: `{ hook, room, … }` with the question's fields
/// (`nick`, `bare_jid`, `role`, `orig_nick`, `to`, `invitee`, `is_first_session`,
/// `is_last_session`).
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
        Question::Groupchat { nick, .. } => t.raw_set("nick", nick.as_str())?,
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
    }
    Ok(t)
}

/// An answer from the shim: false for refused; a table to go on: `{ nick = resource?,
/// role = role?, role_changed = bool }`, or for a registration the affiliation data to keep.
/// The modules' answers the shim gave so far (`answers[hook]`, see `question_table`), and
/// the rooms' avatar hashes (`answers.avatar_hashes[jid]`, a string or false).
pub fn read_answers(answers: &Table, facts: &mut Facts) {
    for hook in MODULE_QUESTIONS {
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

/// The extension points the core asks the modules about (see `hook_key`).
const MODULE_QUESTIONS: [Hook; 9] = [
    Hook::RoomPreCreate,
    Hook::OccupantPreJoin,
    Hook::OccupantPreChange,
    Hook::OccupantPreLeave,
    Hook::OccupantGroupchat,
    Hook::PrivateMessage,
    Hook::Invite,
    Hook::Decline,
    Hook::Registration,
];

pub fn answer_from_lua(hook: Hook, value: &Value) -> Option<Answer> {
    match value {
        Value::Boolean(false) => Some(Answer::Refused),
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
