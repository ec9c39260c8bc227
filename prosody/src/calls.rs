//! `host:call(method, ...)`: what modules do with rooms that may read or write storage or
//! fire events, and the admins' commands, driven by the shim's loop the same way as a
//! stanza (`lua/muc_rs_events.lib.lua` `run`), so that storage and the modules' handlers
//! run in Lua, outside any Rust frame, where they may wait (`util.async`).
//!
//! | method | arguments | values (stock mod_muc's) |
//! |---|---|---|
//! | `find` | room | true if the room is live or was brought back from storage |
//! | `create` | room, `_data`? | true, or nil and a condition (`room-exists`, …) |
//! | `destroy` | room, new venue?, reason?, password? | true, or nil and why |
//! | `set_affiliation`, `set_role`, `set_option`, `set_subject` | room, stock's arguments (see `room_api::change`) | true (or whether a setting changed), or nil, error type, condition |
//! | `save` | room | true, or nil and why |
//! | `broadcast_message` | room, stanza | — (the room's broadcast steps, events included) |
//! | `avatar_updated` | room, the hash of its new avatar or nil | — (the room announces it) |
//! | `admin_destroy` | room | true, or nil and why |
//! | `admin_set_affiliation` | room, JID, affiliation, reason? | true, or nil and why |
//! | `save_occupant` | room, occupant | whether it stays in the room (stock's copy is made by the shim) |
//! | `publicise` | room, occupant, x, nick?, actor?, reason?, prev_role?, force_unavailable?, recipient's nick? | — (stock's `publicise_occupant_status`) |
//! | `occupant_left` | room | — (a module fired `muc-occupant-left`: an empty temporary room goes) |
//! | `pre_invite` | room, the invitation a module got | whether the room's `muc-pre-invite` steps refused it (the inviter is answered) |
//! | `invite` | room, the invitation a module sends, `"whois"`? | it after the room's `muc-invite` steps (at 50 with `"whois"`, else at 0), or nil and why |
//! | `room_jids` | — | every room's JID, live or stored |
//! | `save_all` | — | — (every live room stored with its occupants) |
//!
//! `host:call` answers with the call's values when nothing is left to the shim, or with a
//! step table first (the shape of `steps::step_table`), which carries `call` (a [`Call`]):
//! - a question (`load_room`, `stored_rooms`, `avatar_hash`, `hook`): the shim answers in
//!   `answers` and calls `host:resume(call, answers)`;
//! - `stores`: the shim writes them and calls `host:confirm(err, call)`;
//! - `wait_turn = true`: another outcome's stores are being written (the core holds one
//!   outcome at a time); the shim waits until they are confirmed, then calls
//!   `host:resume(call, answers)`, or, where it cannot wait, returns `result`, the refusal.
//!
//! `resume` and `confirm` answer with the next step, or, once the core acted, with
//! `{ result = { n = …, … } }`, the call's values, with `carry_out` if its outcome has
//! events: the shim carries that out first (`events.rs`), then returns the values.

use super::convert;
use super::host::LuaHost;
use super::room_api::change;
use super::storage::data_from_lua;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use mlua::{AnyUserData, IntoLuaMulti, Lua, MultiValue, Result as LuaResult, Table, UserData, Value};
use muc_rs::affiliation::Role;
use muc_rs::data::Data;
use muc_rs::host::{MucHost, Publicise};
use muc_rs::occupant::Occupant;
use muc_rs::outcome::Outcome;
use muc_rs::protocol::{Facts, Question};
use muc_rs::room::settings::Tombstone;
use muc_rs::room::PresenceX;

/// A call driven by the shim's loop: what to run again with the shim's answers, and the
/// value the core gave while its stores are written.
pub struct Call {
    op: Op,
    /// The users a module's change names (its actor, the JID it changes): the core is told
    /// whether they are service admins before it runs.
    named: Vec<BareJid>,
    /// The value the core gave, until the write of its stores is confirmed.
    held: Option<CallValue>,
}

impl UserData for Call {}

enum Op {
    Find(BareJid),
    Create(BareJid, Option<muc_rs::data::Table>),
    Destroy(BareJid, Tombstone, Option<String>),
    /// `set_affiliation`, `set_role`, `set_option`, `set_subject` with stock's arguments.
    Change(BareJid, &'static str, Vec<Value>),
    Save(BareJid),
    Broadcast(BareJid, Element),
    AvatarUpdated(BareJid, Option<String>),
    AdminDestroy(String),
    AdminSetAffiliation {
        room: String,
        jid: String,
        affiliation: String,
        reason: Option<String>,
    },
    SaveOccupant(BareJid, Box<Occupant>),
    Publicise(BareJid, Box<Occupant>, Box<Publicise>),
    OccupantLeft(BareJid),
    /// A module fired `muc-pre-invite` on this invitation.
    PreInvite(BareJid, Element),
    /// A module fired `muc-invite` on this invitation: the steps at 50 (`true`) or at 0.
    Invite(BareJid, Element, bool),
    RoomJids,
    SaveAll,
}

/// What the core gave for a call, made into its values once its stores are confirmed.
enum CallValue {
    Found(Result<bool, String>),
    Created(Result<(), &'static str>),
    Done(Result<(), String>),
    Changed(Result<bool, String>),
    Jids(Vec<String>),
    Flag(Option<bool>),
    Stanza(Element),
    Nothing,
}

/// What a step of a call leaves to the shim.
enum Next {
    /// A question, stores, or a turn to wait for: the shim goes on with the call.
    Step(Table),
    /// The call's values, after its outcome is carried out (`carry`: by the shim).
    Done { values: MultiValue, carry: Option<Table> },
}

impl Op {
    /// The call `method` with the arguments the shim gave; None if its room is not a JID.
    fn parse(host: &LuaHost, method: &str, args: &MultiValue) -> LuaResult<Option<Op>> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
        let text = |i: usize| arg(i).as_string().and_then(|s| s.to_str().ok().map(|s| s.to_owned()));
        let room = text(0).and_then(|jid| jid.parse::<BareJid>().ok());
        let op = match method {
            "admin_destroy" => Op::AdminDestroy(text(0).unwrap_or_default()),
            "admin_set_affiliation" => Op::AdminSetAffiliation {
                room: text(0).unwrap_or_default(),
                jid: text(1).unwrap_or_default(),
                affiliation: text(2).unwrap_or_default(),
                reason: text(3),
            },
            "room_jids" => Op::RoomJids,
            "save_all" => Op::SaveAll,
            _ => {
                let Some(room) = room else { return Ok(None) };
                match method {
                    "find" => Op::Find(room),
                    "create" => {
                        let config = match data_from_lua(&arg(1), 0) {
                            Some(Data::Table(t)) => Some(t),
                            _ => None,
                        };
                        Op::Create(room, config)
                    }
                    "destroy" => Op::Destroy(room, Tombstone { new_jid: text(1), reason: text(2) }, text(3)),
                    "save" => Op::Save(room),
                    "broadcast_message" => {
                        let Value::Table(stanza) = arg(1) else { return Ok(None) };
                        let element = convert::element_from_table(&host.keys, &stanza).map_err(|why| {
                            mlua::Error::runtime(format!("broadcast_message: malformed stanza: {why}"))
                        })?;
                        Op::Broadcast(room, element)
                    }
                    "avatar_updated" => Op::AvatarUpdated(room, text(1)),
                    "save_occupant" | "publicise" => {
                        let Value::Table(occupant) = arg(1) else { return Ok(None) };
                        let occupant = Box::new(host.occupant_from_table(&occupant)?);
                        if method == "save_occupant" {
                            Op::SaveOccupant(room, occupant)
                        } else {
                            Op::Publicise(room, occupant, Box::new(publicise_args(host, args)?))
                        }
                    }
                    "occupant_left" => Op::OccupantLeft(room),
                    "pre_invite" | "invite" => {
                        let Value::Table(stanza) = arg(1) else { return Ok(None) };
                        let element = convert::element_from_table(&host.keys, &stanza).map_err(|why| {
                            mlua::Error::runtime(format!("muc-invite: malformed stanza: {why}"))
                        })?;
                        match method {
                            "pre_invite" => Op::PreInvite(room, element),
                            _ => Op::Invite(room, element, text(2).as_deref() == Some("whois")),
                        }
                    }
                    "set_affiliation" | "set_role" | "set_option" | "set_subject" => {
                        let method = match method {
                            "set_affiliation" => "set_affiliation",
                            "set_role" => "set_role",
                            "set_option" => "set_option",
                            _ => "set_subject",
                        };
                        Op::Change(room, method, args.iter().skip(1).cloned().collect())
                    }
                    other => return Err(mlua::Error::runtime(format!("muc_rs: no call {other:?}"))),
                }
            }
        };
        Ok(Some(op))
    }

    /// Whether the call may hold stores, and so must wait while another outcome's stores
    /// are written. `save_all` does not: it runs when the server stops or the module
    /// unloads, where nothing can wait, and a write still waiting then is dropped.
    fn needs_turn(&self, host: &MucHost) -> bool {
        match self {
            Op::Find(room) => host.room(room).is_none(),
            Op::Create(..)
            | Op::Destroy(..)
            | Op::Change(..)
            | Op::Save(_)
            | Op::AdminDestroy(_)
            | Op::AdminSetAffiliation { .. }
            | Op::OccupantLeft(_) => true,
            Op::Invite(_, _, whois) => !whois,
            Op::Broadcast(..)
            | Op::AvatarUpdated(..)
            | Op::SaveOccupant(..)
            | Op::Publicise(..)
            | Op::PreInvite(..)
            | Op::RoomJids
            | Op::SaveAll => false,
        }
    }

    /// The call's answer where it cannot wait its turn.
    fn refused(&self) -> CallValue {
        let busy = || "another write is in progress".to_owned();
        match self {
            Op::Find(_) => CallValue::Found(Err(busy())),
            Op::Create(..) => CallValue::Created(Err("resource-constraint")),
            Op::Change(..) => CallValue::Changed(Err("wait\u{1}resource-constraint".into())),
            _ => CallValue::Done(Err(busy())),
        }
    }

    /// One call into the core.
    fn run(&self, host: &mut MucHost, facts: &Facts) -> (CallValue, Outcome) {
        let done = |result: Result<Outcome, String>| match result {
            Ok(outcome) => (CallValue::Done(Ok(())), outcome),
            Err(why) => (CallValue::Done(Err(why)), Outcome::default()),
        };
        match self {
            Op::Find(room) => {
                let (found, outcome) = host.find_room(room, facts);
                (CallValue::Found(found), outcome)
            }
            Op::Create(room, config) => {
                let (created, outcome) = host.create_room(room, config.as_ref(), facts);
                (CallValue::Created(created), outcome)
            }
            Op::Destroy(room, why, password) => {
                done(host.destroy_room(room.as_str(), why.clone(), password.as_deref(), facts))
            }
            Op::Change(room, method, args) => {
                let changed = host.change_room(room, facts, |room, ctx| {
                    change(room, ctx, method, args)
                        .map_err(|(kind, condition)| format!("{kind}\u{1}{condition}"))
                });
                match changed {
                    Ok((value, outcome)) => (CallValue::Changed(Ok(value.unwrap_or_default())), outcome),
                    Err(why) => (CallValue::Changed(Err(why)), Outcome::default()),
                }
            }
            Op::Save(room) => done(host.save_room(room)),
            Op::Broadcast(room, stanza) => {
                let outcome = host.broadcast_message(room, stanza.clone(), facts);
                (CallValue::Nothing, outcome.unwrap_or_default())
            }
            Op::AvatarUpdated(room, _) => {
                (CallValue::Nothing, host.avatar_updated(room, facts).unwrap_or_default())
            }
            Op::SaveOccupant(room, occupant) => {
                (CallValue::Flag(host.save_module_occupant(room, (**occupant).clone())), Outcome::default())
            }
            Op::Publicise(room, occupant, how) => {
                let outcome = host.publicise_module_occupant(room, occupant, how, facts);
                (CallValue::Nothing, outcome.unwrap_or_default())
            }
            Op::OccupantLeft(room) => match host.module_occupant_left(room, facts) {
                Some(result) => done(result),
                None => (CallValue::Nothing, Outcome::default()),
            },
            Op::PreInvite(room, stanza) => match host.module_pre_invite(room, stanza, facts) {
                Some((refused, outcome)) => (CallValue::Flag(Some(refused)), outcome),
                None => (CallValue::Flag(None), Outcome::default()),
            },
            Op::Invite(room, invite, whois) => {
                match host.module_invite(room, invite.clone(), *whois, facts) {
                    Ok((Some(invite), outcome)) => (CallValue::Stanza(invite), outcome),
                    Ok((None, outcome)) => (CallValue::Nothing, outcome), // asked first
                    Err(why) => (CallValue::Done(Err(why)), Outcome::default()),
                }
            }
            Op::AdminDestroy(room) => done(host.admin_destroy(room, facts)),
            Op::AdminSetAffiliation { room, jid, affiliation, reason } => {
                done(host.admin_set_affiliation(room, jid, affiliation, reason.as_deref(), facts))
            }
            Op::RoomJids => match host.all_room_jids(facts) {
                Some(jids) => (CallValue::Jids(jids), Outcome::default()),
                None => {
                    let mut outcome = Outcome::default();
                    outcome.ask(Question::StoredRooms);
                    (CallValue::Nothing, outcome)
                }
            },
            Op::SaveAll => (CallValue::Nothing, host.save_all()),
        }
    }

    /// The call's values, as stock's API returns them; `undone`: its write failed and the
    /// core put the room back.
    fn values(&self, host: &LuaHost, lua: &Lua, value: CallValue, undone: bool) -> LuaResult<MultiValue> {
        match value {
            CallValue::Stanza(_) if undone => (Value::Nil, "could not store the change").into_lua_multi(lua),
            CallValue::Stanza(stanza) => host.build_plain(lua, &stanza)?.into_lua_multi(lua),
            CallValue::Found(found) => (!undone && found == Ok(true)).into_lua_multi(lua),
            CallValue::Created(Ok(())) if undone => (Value::Nil, "resource-constraint").into_lua_multi(lua),
            CallValue::Created(Ok(())) => true.into_lua_multi(lua),
            CallValue::Created(Err(condition)) => (Value::Nil, condition).into_lua_multi(lua),
            CallValue::Done(Ok(())) if undone => {
                let why = match self {
                    Op::Save(room) => format!("could not store {room}"),
                    _ => "could not store the change".to_owned(),
                };
                (Value::Nil, why).into_lua_multi(lua)
            }
            CallValue::Done(Ok(())) => true.into_lua_multi(lua),
            CallValue::Done(Err(why)) => (Value::Nil, why).into_lua_multi(lua),
            // The write failed: the change is undone.
            CallValue::Changed(Ok(_)) if undone => {
                (Value::Nil, "wait", "internal-server-error").into_lua_multi(lua)
            }
            CallValue::Changed(Ok(changed)) => changed.into_lua_multi(lua),
            // Stock's convention: nil, error type, condition.
            CallValue::Changed(Err(why)) => match why.split_once('\u{1}') {
                Some((kind, condition)) => (Value::Nil, kind, condition).into_lua_multi(lua),
                None => (Value::Nil, "cancel", why).into_lua_multi(lua),
            },
            CallValue::Jids(jids) => jids.into_lua_multi(lua),
            CallValue::Flag(flag) => flag.into_lua_multi(lua),
            CallValue::Nothing => Ok(MultiValue::new()),
        }
    }
}

impl LuaHost {
    /// `host:call(method, ...)`: the call's values, or a step table first (see the top).
    pub(super) fn call(&self, lua: &Lua, method: &str, args: MultiValue) -> LuaResult<MultiValue> {
        let Some(op) = Op::parse(self, method, &args)? else { return Ok(MultiValue::new()) };
        let named = match &op {
            Op::Change(..) => self.named_users(args.iter().skip(1)),
            // The inviter and the invitee (the invitation's sender and addressee).
            Op::PreInvite(_, stanza) | Op::Invite(_, stanza, _) => {
                let invite = stanza
                    .get_child("x", muc_rs::xml::NS_MUC_USER)
                    .and_then(|x| x.get_child("invite", muc_rs::xml::NS_MUC_USER));
                let jids = [
                    stanza.attr("from"),
                    stanza.attr("to"),
                    invite.and_then(|i| i.attr("from")),
                    invite.and_then(|i| i.attr("to")),
                ];
                self.named_jids(jids.into_iter().flatten())
            }
            _ => Vec::new(),
        };
        let mut call = Call { op, named, held: None };
        match self.advance(lua, &mut call, None)? {
            // Nothing left to the shim: the values at once (but a stanza, which the shim
            // would take for a step: in `result`).
            Next::Done { values, carry: None } if !matches!(call.op, Op::Invite(..)) => Ok(values),
            next => {
                let call = lua.create_userdata(call)?;
                self.next_table(lua, next, &call)?.into_lua_multi(lua)
            }
        }
    }

    /// `host:resume(call, answers)`: the call again, with the shim's answers (or after
    /// its turn came).
    pub(super) fn resume(&self, lua: &Lua, call: &AnyUserData, answers: Option<Table>) -> LuaResult<Table> {
        let next = self.advance(lua, &mut *call.borrow_mut::<Call>()?, answers.as_ref())?;
        self.next_table(lua, next, call)
    }

    /// `host:confirm(err, call)`: the shim wrote the call's stores, or failed to (`err`).
    pub(super) fn confirm_call(
        &self,
        lua: &Lua,
        call: &AnyUserData,
        err: Option<String>,
    ) -> LuaResult<Table> {
        let next = {
            let mut call = call.borrow_mut::<Call>()?;
            let confirmed = self.host_mut()?.confirm(err.map_or(Ok(()), Err));
            let value = call.held.take().unwrap_or(CallValue::Nothing);
            self.call_done(lua, &call.op, value, confirmed.undone, confirmed.outcome)?
        };
        self.next_table(lua, next, call)
    }

    /// Calls into the core (service admins answered here, as for a stanza) until it acts,
    /// or leaves a step to the shim.
    fn advance(&self, lua: &Lua, call: &mut Call, answers: Option<&Table>) -> LuaResult<Next> {
        let mut facts = self.facts();
        if let Some(answers) = answers {
            super::steps::read_answers(answers, &mut facts);
        }
        if let Op::AvatarUpdated(room, hash) = &call.op {
            facts.supply_avatar_hash(room.clone(), hash.clone());
        }
        if !call.named.is_empty() {
            self.supply_admins(&mut facts, &call.named);
        }
        let waits = {
            let host = self.host.try_borrow().map_err(|_| mlua::Error::runtime("muc_rs host busy"))?;
            host.awaiting_confirm() && call.op.needs_turn(&host)
        };
        if waits {
            let step = lua.create_table()?;
            step.raw_set("wait_turn", true)?;
            step.raw_set("result", packed(lua, call.op.values(self, lua, call.op.refused(), false)?)?)?;
            return Ok(Next::Step(step));
        }
        let (value, outcome) = loop {
            let (value, outcome) = call.op.run(&mut *self.host_mut()?, &facts);
            match &outcome.ask {
                Some(Question::ServiceAdmins(users)) => self.supply_admins(&mut facts, users),
                _ => break (value, outcome),
            }
        };
        if outcome.ask.is_none() && outcome.stores.is_empty() {
            return self.call_done(lua, &call.op, value, false, outcome);
        }
        for (level, message) in &outcome.log {
            self.log(level.as_str(), message);
        }
        if outcome.ask.is_none() {
            call.held = Some(value);
        }
        let room_vcards = self.host.try_borrow().is_ok_and(|host| host.config().room_vcards);
        Ok(Next::Step(super::steps::step_table(lua, &outcome, room_vcards)?))
    }

    /// The call's values, and its outcome carried out, or handed to the shim.
    fn call_done(
        &self,
        lua: &Lua,
        op: &Op,
        value: CallValue,
        undone: bool,
        outcome: Outcome,
    ) -> LuaResult<Next> {
        let values = op.values(self, lua, value, undone)?;
        let carry = self.hand_over(lua, outcome)?;
        Ok(Next::Done { values, carry })
    }

    /// The step table the shim goes on with.
    fn next_table(&self, lua: &Lua, next: Next, call: &AnyUserData) -> LuaResult<Table> {
        match next {
            Next::Step(step) => {
                step.raw_set("call", call)?;
                Ok(step)
            }
            Next::Done { values, carry } => {
                let step = match carry {
                    Some(step) => step,
                    None => lua.create_table()?,
                };
                step.raw_set("result", packed(lua, values)?)?;
                Ok(step)
            }
        }
    }
}

/// `publicise`'s arguments after the occupant, as stock's `publicise_occupant_status`
/// takes them: the `<x/>` (a stanza, or stock's `{ base = …, self = … }`), the nick the
/// items name, the actor's real JID, the reason, the previous role, whether to announce
/// it as unavailable, and the one recipient's in-room JID.
fn publicise_args(host: &LuaHost, args: &MultiValue) -> LuaResult<Publicise> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
    let text = |i: usize| arg(i).as_string().map(|s| s.to_string_lossy());
    let element = |t: &Table| {
        convert::element_from_table(&host.keys, t)
            .map_err(|why| mlua::Error::runtime(format!("publicise_occupant_status: malformed <x/>: {why}")))
    };
    let x = match arg(2) {
        Value::Table(x) if x.raw_get::<Value>("name")?.is_nil() => {
            let base = x.raw_get::<Option<Table>>("base")?.map(|t| element(&t)).transpose()?;
            let own = x.raw_get::<Option<Table>>("self")?.map(|t| element(&t)).transpose()?;
            base.map(|base| PresenceX { base, own })
        }
        Value::Table(x) => Some(PresenceX { base: element(&x)?, own: None }),
        _ => None,
    };
    Ok(Publicise {
        x,
        nick: text(3),
        actor: text(4).and_then(|j| j.parse::<Jid>().ok()),
        reason: text(5),
        prev_role: text(6).and_then(|r| Role::parse(&r)).filter(|r| *r != Role::None),
        force_unavailable: arg(7).as_boolean().unwrap_or(false),
        recipient: text(8).and_then(|j| j.parse::<FullJid>().ok()).map(|j| j.resource().to_string()),
    })
}

/// Values as `table.pack` makes them.
fn packed(lua: &Lua, values: MultiValue) -> LuaResult<Table> {
    let t = lua.create_table_with_capacity(values.len(), 1)?;
    t.raw_set("n", values.len())?;
    for (i, value) in values.into_iter().enumerate() {
        t.raw_set(i + 1, value)?;
    }
    Ok(t)
}
