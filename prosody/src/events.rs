//! Carrying out an [`Outcome`]: its deliveries in order, and at their places the steps the
//! core left to Prosody's modules ([`Event`]), fired by the shim's `fire[kind]`. Every
//! outcome with events, of a stanza's handling or of a call a module or an admin command
//! makes (`calls.rs`), is carried out step by step under the shim's loop, so that the
//! handlers run in Lua, outside any Rust frame, and may wait ([`Carrying`]): each event is
//! given its arguments (`event_args`) and finished with what its handlers left
//! (`finish_event`).
//!
//! `fire[kind](room_jid, ...)` fires the `muc-*` events and answers:
//!
//! | kind | arguments after the room | answer |
//! |---|---|---|
//! | `broadcast_message` | stanza, historic | the stanza to deliver, or nil if a handler did |
//! | `disco_info` | reply (form last), the form's fields `{ {name, type}, … }` | the reply to send |
//! | `config_form` | actor, reply (form last), the form's fields | the reply to send |
//! | `get_history` | to, maxchars, maxstanzas, since, `{ stanza, … }` | the stanzas to send |
//! | `occupant_joined`, `occupant_session_new` | nick, real JID | — |
//! | `occupant_left` | nick, bare JID, the primary session's real JID | — |
//! | `affiliation_changed` | actor, JID, affiliation, previous, reason, in room | — |
//! | `invite` | the invitation | the invitation to send, or nil if a handler sent it |
//! | `decline` | the declined invitation | the same, or nil if a handler sent it |
//! | `occupant_presence` | stanza, x, occupant's nick, bare JID, role, nick, actor, reason, broadcast, `{ session presence, … }` | nick, actor, reason |
//! | `build_presence` | stanza, occupant's nick, bare JID, is an occupant | — |
//! | `registration_form` | user, reply (form last), the form's fields, form type | the reply to send |
//! | `room_created`, `room_destroyed`, `room_evicted` | — | — |

use super::carrying::{Carrying, Kept, Progress};
use super::convert;
use super::host::LuaHost;
use super::lua_error::summary;
use jid::BareJid;
use minidom::Element;
use mlua::{IntoLuaMulti, Lua, MultiValue, Result as LuaResult, Table, Value};
use muc_rs::dataform::Form;
use muc_rs::hooks::{AffiliationChange, Event};
use muc_rs::outcome::Outcome;
use muc_rs::presence_plan::{OccupantPresence, OwnPresences};

impl LuaHost {
    /// Logs the log lines of `outcome` and sends its deliveries: an outcome without events,
    /// or one of a host whose shim does not fire them (then they are left out).
    pub(super) fn carry_out(&self, lua: &Lua, outcome: &Outcome) -> LuaResult<()> {
        for (level, message) in &outcome.log {
            self.log(level.as_str(), message);
        }
        for delivery in &outcome.deliveries {
            self.deliver(lua, delivery)?;
        }
        Ok(())
    }

    /// Hands `outcome` to the shim to carry out (see [`Carrying`]), with its log lines
    /// logged now; None if it has no events (or the shim fires none): then it is carried
    /// out here, with no round trip through Lua.
    pub(super) fn hand_over(&self, lua: &Lua, outcome: Outcome) -> LuaResult<Option<Table>> {
        if outcome.events.is_empty() || !self.carries_out {
            self.carry_out(lua, &outcome)?;
            return Ok(None);
        }
        let carrying = Carrying { stack: vec![self.progress(outcome)], firing: None };
        let step = lua.create_table_with_capacity(0, 1)?;
        step.raw_set("carry_out", carrying)?;
        Ok(Some(step))
    }

    /// An outcome about to be carried out step by step, its log lines logged.
    fn progress(&self, outcome: Outcome) -> Progress {
        for (level, message) in &outcome.log {
            self.log(level.as_str(), message);
        }
        Progress { deliveries: outcome.deliveries, sent: 0, events: outcome.events.into() }
    }

    /// `host:next_event(carrying)`: sends the deliveries up to the next event and returns
    /// the event's kind and arguments (those of `fire[kind]`), or nothing once the
    /// outcome is carried out. An event not finished with `event_done` is dropped.
    pub(super) fn next_event(&self, lua: &Lua, carrying: &mut Carrying) -> LuaResult<MultiValue> {
        carrying.firing = None;
        while let Some(progress) = carrying.stack.last_mut() {
            let Some((at, event)) = progress.events.pop_front() else {
                for delivery in &progress.deliveries[progress.sent..] {
                    self.deliver(lua, delivery)?;
                }
                carrying.stack.pop();
                continue;
            };
            for delivery in &progress.deliveries[progress.sent..at] {
                self.deliver(lua, delivery)?;
            }
            progress.sent = at;
            match self.event_args(lua, &event) {
                Ok((args, kept)) => {
                    carrying.firing = Some((event, kept));
                    return Ok(args);
                }
                Err(e) => self.log("error", &format!("a module's handler failed: {}", summary(&e))),
            }
        }
        Ok(MultiValue::new())
    }

    /// `host:event_done(carrying, ok, ...)`: the shim fired the event `next_event` handed
    /// it; `ok` and what follows are what `pcall` returned: the handlers' answer, or the
    /// error of one that failed (logged; the event's own step is skipped, the rest of the
    /// outcome still goes out).
    pub(super) fn event_done(&self, lua: &Lua, carrying: &mut Carrying, result: MultiValue) -> LuaResult<()> {
        let Some((event, kept)) = carrying.firing.take() else { return Ok(()) };
        let mut result = result.into_iter();
        if !matches!(result.next(), Some(Value::Boolean(true))) {
            let why = match result.next() {
                Some(Value::String(s)) => s.to_string_lossy(),
                Some(other) => format!("{other:?}"),
                None => "no result".to_owned(),
            };
            let why = why.lines().next().unwrap_or("").to_owned();
            self.log("error", &format!("a module's handler failed: {why}"));
            return Ok(());
        }
        match self.finish_event(lua, &event, kept, result.collect()) {
            Ok(Some(more)) => {
                let progress = self.progress(more);
                carrying.stack.push(progress);
            }
            Ok(None) => {}
            Err(e) => self.log("error", &format!("a module's handler failed: {}", summary(&e))),
        }
        Ok(())
    }

    /// What the shim's `fire[kind]` is given for `event`: its kind and arguments (see the
    /// table at the top), and the tables its finishing reads back.
    fn event_args(&self, lua: &Lua, event: &Event) -> LuaResult<(MultiValue, Kept)> {
        let nothing = |args: MultiValue| Ok((args, Kept::Nothing));
        match event {
            Event::BroadcastMessage { room, stanza, historic, .. } => {
                let table = self.build_plain(lua, stanza)?;
                nothing(("broadcast_message", room.as_str(), table, *historic).into_lua_multi(lua)?)
            }
            Event::DiscoInfo { room, reply, form, .. } => {
                let reply = self.form_reply(lua, reply, muc_rs::xml::NS_DISCO_INFO, form, "result")?;
                nothing(("disco_info", room.as_str(), reply, form_fields(lua, form)?).into_lua_multi(lua)?)
            }
            Event::ConfigForm { room, actor, reply, form, .. } => {
                let reply = self.form_reply(lua, reply, muc_rs::xml::NS_MUC_OWNER, form, "form")?;
                let fields = form_fields(lua, form)?;
                nothing(("config_form", room.as_str(), actor.as_str(), reply, fields).into_lua_multi(lua)?)
            }
            Event::GetHistory { room, to, maxchars, maxstanzas, since, default } => {
                let stanzas = lua.create_table_with_capacity(default.len(), 0)?;
                for stanza in default {
                    stanzas.raw_push(self.build_plain(lua, stanza)?)?;
                }
                let args =
                    ("get_history", room.as_str(), to.as_str(), *maxchars, *maxstanzas, *since, stanzas);
                nothing(args.into_lua_multi(lua)?)
            }
            Event::OccupantJoined { room, nick, jid } => {
                nothing(("occupant_joined", room.as_str(), nick.as_str(), jid.as_str()).into_lua_multi(lua)?)
            }
            Event::OccupantSessionNew { room, nick, jid } => nothing(
                ("occupant_session_new", room.as_str(), nick.as_str(), jid.as_str()).into_lua_multi(lua)?,
            ),
            Event::OccupantLeft { room, nick, jid, real_jid } => {
                let real_jid = real_jid.as_ref().map(|j| j.as_str());
                nothing(
                    ("occupant_left", room.as_str(), nick.as_str(), jid.as_str(), real_jid)
                        .into_lua_multi(lua)?,
                )
            }
            Event::AffiliationChanged { change, in_room } => {
                let AffiliationChange { room, actor, jid, affiliation, previous, reason } = change;
                // As stock's: "none" for no affiliation, no actor for the room's own.
                let actor = actor.as_ref().map(|a| a.as_str());
                let (affiliation, previous) = (affiliation.as_str(), previous.as_str());
                let args = ("affiliation_changed", room.as_str(), actor, jid.as_str(), affiliation, previous);
                let mut args = args.into_lua_multi(lua)?;
                args.extend((reason.as_deref(), *in_room).into_lua_multi(lua)?);
                nothing(args)
            }
            Event::Invite { room, stanza, .. } => {
                nothing(("invite", room.as_str(), self.build_plain(lua, stanza)?).into_lua_multi(lua)?)
            }
            Event::Decline { room, stanza, .. } => {
                nothing(("decline", room.as_str(), self.build_plain(lua, stanza)?).into_lua_multi(lua)?)
            }
            Event::OccupantPresence { room, presence } => self.occupant_presence_args(lua, room, presence),
            Event::BuildPresence { room, nick, bare_jid, is_occupant, stanza, .. } => {
                let table = self.build_plain(lua, stanza)?;
                let args =
                    ("build_presence", room.as_str(), &table, nick.as_str(), bare_jid.as_str(), *is_occupant);
                Ok((args.into_lua_multi(lua)?, Kept::Stanza(table)))
            }
            Event::RegistrationForm { room, user, reply, form, form_type, .. } => {
                let reply = self.form_reply(lua, reply, muc_rs::xml::NS_REGISTER, form, form_type)?;
                let fields = form_fields(lua, form)?;
                let args = ("registration_form", room.as_str(), user.as_str(), reply, fields, *form_type);
                nothing(args.into_lua_multi(lua)?)
            }
            Event::RoomCreated { room } => nothing(("room_created", room.as_str()).into_lua_multi(lua)?),
            Event::RoomDestroyed { room } => nothing(("room_destroyed", room.as_str()).into_lua_multi(lua)?),
            Event::RoomEvicted { room } => nothing(("room_evicted", room.as_str()).into_lua_multi(lua)?),
            // Moderation is off on Prosody (mod_muc_moderation's, with mod_muc_mam's archive):
            // logged and skipped, should it ever come.
            Event::RemoveArchived { .. } => {
                Err(mlua::Error::RuntimeError("no archive to remove a moderated message from".into()))
            }
        }
    }

    /// Finishes `event` with what its handlers left (`answer`: what `fire[kind]` returned,
    /// `kept`: the tables they changed in place): sends the stanza as they left it, or what
    /// the core builds from it. Returns what the room does next, to carry out before the
    /// rest (the configuration notice).
    fn finish_event(
        &self,
        lua: &Lua,
        event: &Event,
        kept: Kept,
        answer: MultiValue,
    ) -> LuaResult<Option<Outcome>> {
        let answer: Vec<Value> = answer.into_iter().collect();
        let table = match answer.first() {
            Some(Value::Table(table)) => Some(table),
            _ => None,
        };
        match (event, kept) {
            (Event::BroadcastMessage { to, .. }, _) => {
                if let Some(stanza) = table {
                    // Rendered once now, as the handlers left it, for all its recipients.
                    if to.len() > 1 {
                        if let Ok(element) = convert::element_from_table(&self.keys, stanza) {
                            self.attach_render(lua, stanza, &element)?;
                        }
                    }
                    self.send_table(stanza, to.iter().map(|j| j.as_str()))?;
                }
            }
            (
                Event::DiscoInfo { to, .. }
                | Event::ConfigForm { to, .. }
                | Event::RegistrationForm { to, .. }
                | Event::Invite { to, .. },
                _,
            ) => {
                if let Some(reply) = table {
                    self.send_table(reply, [to.as_str()])?;
                }
            }
            (Event::Decline { to, .. }, _) => {
                if let Some(decline) = table {
                    self.send_table(decline, to.iter().map(|j| j.as_str()))?;
                }
            }
            (Event::GetHistory { to, .. }, _) => {
                if let Some(stanzas) = table {
                    for stanza in stanzas.sequence_values::<Table>() {
                        self.send_table(&stanza?, [to.as_str()])?;
                    }
                }
            }
            (Event::OccupantPresence { room, presence }, Kept::Presence { stanza, x, sessions }) => {
                let text =
                    |i: usize| lua.unpack::<Option<String>>(answer.get(i).cloned().unwrap_or(Value::Nil));
                let left = (text(0)?, text(1)?, text(2)?);
                self.occupant_presence_done(lua, room, presence, (&stanza, &x, &sessions), left)?
            }
            (Event::BuildPresence { to, .. }, Kept::Stanza(stanza)) => {
                self.send_table(&stanza, [to.as_str()])?;
            }
            _ => {}
        }
        Ok(None)
    }

    /// The arguments of the presence events on a planned occupant presence.
    fn occupant_presence_args(
        &self,
        lua: &Lua,
        room: &BareJid,
        plan: &OccupantPresence<'static>,
    ) -> LuaResult<(MultiValue, Kept)> {
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
        let args = ("occupant_presence", room.as_str(), &stanza, &x, occupant.nick.as_str());
        let mut args = args.into_lua_multi(lua)?;
        let more = (occupant.bare_jid.as_str(), role, nick, actor, reason, plan.broadcast, &sessions);
        args.extend(more.into_lua_multi(lua)?);
        Ok((args, Kept::Presence { stanza, x, sessions }))
    }

    /// Sends what the core builds from what the presence events' handlers left: the
    /// tables they changed in place, and the nick, actor and reason the items name (a
    /// table a handler broke is logged, and the presence goes out as planned).
    fn occupant_presence_done(
        &self,
        lua: &Lua,
        room: &BareJid,
        plan: &OccupantPresence<'static>,
        (stanza, x, sessions): (&Table, &Table, &Table),
        (nick, actor, reason): (Option<String>, Option<String>, Option<String>),
    ) -> LuaResult<()> {
        let mut plan = plan.clone();
        let read = |table: &Table, element: &mut Element| match convert::element_from_table(&self.keys, table)
        {
            Ok(changed) => *element = changed,
            Err(why) => self.log("error", &format!("a module broke an occupant's presence: {why}")),
        };
        read(stanza, &mut plan.stanza);
        read(x, &mut plan.x);
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
pub(super) fn form_fields(lua: &Lua, form: &Form) -> LuaResult<Table> {
    let fields = lua.create_table_with_capacity(form.fields.len(), 0)?;
    for field in form.fields.iter().filter(|f| f.var.is_some()) {
        let entry = lua.create_table_with_capacity(0, 2)?;
        entry.raw_set("name", field.var)?;
        entry.raw_set("type", field.kind.as_str())?;
        fields.raw_push(entry)?;
    }
    Ok(fields)
}
