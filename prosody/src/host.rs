//! The host userdata: a `MucHost` plus the few Lua callbacks it calls itself (routing a
//! stanza, logging, who is a service admin, where modules listen; storage and the modules'
//! handlers run in the shim's loop instead), and the guard that keeps panics and callback
//! errors out of Prosody.

use super::carrying::Carrying;
use super::convert::{self, Keys};
use super::lua_error::summary;
use super::render;
use super::reuse::StanzaCache;
use jid::{BareJid, Jid};
use minidom::Element;
use mlua::{
    AnyUserData, Function, Lua, MultiValue, Result as LuaResult, Table, UserData, UserDataMethods,
    UserDataRefMut, Value,
};
use muc_rs::hooks::{Hook, Hooks};
use muc_rs::host::MucHost;
use muc_rs::outcome::{Delivery, Outcome};
use muc_rs::panic_guard::{self as guard, TEST_NS};
use muc_rs::protocol::{Facts, Question};
use muc_rs::xml::{error_reply, ElementExt, StanzaError, NS_CLIENT};
use std::cell::{Cell, RefCell};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct LuaHost {
    /// Borrowed mutably only for the core call, never across a Lua callback that could
    /// route a stanza back to this host (`send` may re-enter `handle` synchronously).
    pub(super) host: RefCell<MucHost>,
    pub(super) send: Function,
    is_admin: Option<Function>,
    log: Function,
    stanza_mt: Table,
    /// The `top_tag` method deliveries carry (see `build`).
    top_tag: Option<Function>,
    /// Whether the shim carries out outcomes with events itself (`events.rs`); without it
    /// only their deliveries go out.
    pub(super) carries_out: bool,
    /// `listens(name, …)`: whether any module handles one of an extension point's events.
    listens: Option<Function>,
    /// Where the modules listen, asked of `listens` once for every extension point and
    /// kept until the shim says handlers changed (`host:hooks_changed()`).
    listening: Cell<Option<Hooks>>,
    pub(super) keys: Keys,
    /// Tables of repeatable deliveries, sent again while they match.
    repeatable: RefCell<StanzaCache>,
    /// The stanza last handed in, as converted, while the shim reads storage or an avatar
    /// for it: its next call with answers does not convert it again (nothing the shim does
    /// for those questions touches the stanza; for the modules' questions, which may change
    /// it, it is converted anew). Keyed by the Lua table's address, which cannot be reused
    /// while the shim's loop holds the table.
    asked_about: RefCell<Option<(usize, Element)>>,
    test_panic: bool,
}

impl LuaHost {
    pub fn new(lua: &Lua, host: MucHost, callbacks: &Table, test_panic: bool) -> LuaResult<LuaHost> {
        let send = callbacks
            .get::<Option<Function>>("send")?
            .ok_or_else(|| mlua::Error::runtime("muc_rs.new_host: callbacks.send must be a function"))?;
        let log = callbacks
            .get::<Option<Function>>("log")?
            .ok_or_else(|| mlua::Error::runtime("muc_rs.new_host: callbacks.log must be a function"))?;
        let stanza_mt = callbacks
            .get::<Option<Table>>("stanza_mt")?
            .ok_or_else(|| mlua::Error::runtime("muc_rs.new_host: callbacks.stanza_mt must be a table"))?;
        let is_admin = callbacks.get::<Option<Function>>("is_admin")?;
        let top_tag = callbacks.get::<Option<Function>>("top_tag")?;
        let carries_out = callbacks.get::<Option<bool>>("carries_out")?.unwrap_or(false);
        let listens = callbacks.get::<Option<Function>>("listens")?;
        Ok(LuaHost {
            host: RefCell::new(host),
            send,
            is_admin,
            log,
            stanza_mt,
            top_tag,
            carries_out,
            listens,
            listening: Cell::new(None),
            keys: Keys::new(lua)?,
            repeatable: RefCell::default(),
            asked_about: RefCell::default(),
            test_panic,
        })
    }

    /// Answers [`Question::ServiceAdmins`] with the shim's `is_admin` (Prosody's own,
    /// synchronous): asked here, between two calls into the core, never from inside it.
    pub(super) fn supply_admins<'u>(&self, facts: &mut Facts, users: impl IntoIterator<Item = &'u BareJid>) {
        for user in users {
            let is_admin = match &self.is_admin {
                None => false,
                Some(is_admin) => match is_admin.call::<Value>(user.as_str()) {
                    Ok(v) => !matches!(v, Value::Nil | Value::Boolean(false)),
                    Err(e) => {
                        self.log("error", &format!("is_admin callback failed for {user}: {}", summary(&e)));
                        false
                    }
                },
            };
            facts.supply_service_admin(user.clone(), is_admin);
        }
    }

    /// The facts of a new call: the time now, where the modules listen, nothing read yet.
    pub(super) fn facts(&self) -> Facts {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let mut facts = Facts::new(now, muc_rs::id::fresh_entropy());
        facts.listening = self.listening();
        facts
    }

    /// Where the modules listen (see `listening`).
    fn listening(&self) -> Hooks {
        if let Some(known) = self.listening.get() {
            return known;
        }
        let Some(listens) = &self.listens else { return Hooks::NONE };
        let listening = Hook::ALL
            .into_iter()
            .filter(|hook| {
                // One call for all of the point's events.
                let names = mlua::Variadic::from_iter(hook.event_names().iter().copied());
                match listens.call::<Value>(names) {
                    Ok(v) => !matches!(v, Value::Nil | Value::Boolean(false)),
                    Err(e) => {
                        self.log("error", &format!("listens callback failed for {hook:?}: {}", summary(&e)));
                        false
                    }
                }
            })
            .collect();
        self.listening.set(Some(listening));
        listening
    }

    /// Calls the `log` callback; if that fails too, stderr is all that is left.
    pub fn log(&self, level: &str, message: &str) {
        if let Err(e) = self.log.call::<()>((level, message)) {
            eprintln!("muc_rs: log callback failed ({}); message was: {message}", summary(&e));
        }
    }

    /// `host:handle(stanza, answers)`: true for a stanza table once it has been dealt with
    /// (even if only by logging), false for anything else; or a step left to the shim (see
    /// `steps::step_table`): a question for the modules or for storage, after which the
    /// shim calls again with the same stanza and the answer in `answers`, or records to
    /// store, after which the shim calls `host:confirm(err)`.
    fn handle(&self, lua: &Lua, stanza: Value, answers: Option<Table>) -> Value {
        let Value::Table(table) = stanza else {
            self.log("warn", &format!("handle() expects a stanza table, got a {}", stanza.type_name()));
            return Value::Boolean(false);
        };
        let head = Head::read(&self.keys, &table);
        match guard::run(|| self.process(lua, &table, &head, answers)) {
            Ok(Ok(Some(question))) => return Value::Table(question),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                self.log("error", &format!("failed to handle {}: {}", head.describe(), summary(&e)))
            }
            Err(panic) => {
                self.log("error", &format!("panic while handling {}: {panic}", head.describe()));
                if let Some(reply) = head.error_reply(&StanzaError::internal_server_error()) {
                    if let Err(e) = guard::run(|| self.deliver(lua, &reply)).unwrap_or(Ok(())) {
                        self.log("error", &format!("could not send the error reply: {}", summary(&e)));
                    }
                }
            }
        }
        Value::Boolean(true)
    }

    fn process(
        &self,
        lua: &Lua,
        table: &Table,
        head: &Head,
        answers: Option<Table>,
    ) -> LuaResult<Option<Table>> {
        if head.from.is_none() {
            self.log("debug", &format!("dropping {} without a from address", head.describe()));
            return Ok(None);
        }
        let address = table.to_pointer() as usize;
        let kept = self.asked_about.take().filter(|(at, _)| answers.is_some() && *at == address);
        let converted = match kept {
            Some((_, element)) => Ok(element),
            None => convert::element_from_table(&self.keys, table),
        };
        let element = match converted {
            Ok(element) => element,
            Err(why) => {
                self.log("warn", &format!("rejecting malformed {}: {why}", head.describe()));
                if let Some(reply) = head.error_reply(&StanzaError::modify_bad_request()) {
                    self.deliver(lua, &reply)?;
                }
                return Ok(None);
            }
        };
        let mut facts = self.facts_from(answers.as_ref());
        if self.test_panic && element.has_child("panic", TEST_NS) {
            panic!("forced panic (test hook)");
        }
        let outcome = loop {
            let outcome = self.host_mut()?.handle(&element, &facts);
            // Prosody answers who is an admin at once: asked here, with the stanza as
            // converted, rather than in the shim's loop.
            match &outcome.ask {
                Some(Question::ServiceAdmins(users)) => self.supply_admins(&mut facts, users),
                _ => break outcome,
            }
        };
        if matches!(
            outcome.ask,
            Some(Question::LoadRoom(_) | Question::StoredRooms | Question::AvatarHash(_))
        ) {
            *self.asked_about.borrow_mut() = Some((address, element));
        }
        if outcome.ask.is_some() || !outcome.stores.is_empty() {
            // Left to the shim, where storage and modules' handlers may wait (util.async):
            // it answers and calls again, or writes and confirms.
            for (level, message) in &outcome.log {
                self.log(level.as_str(), message);
            }
            let room_vcards = self.host.try_borrow().is_ok_and(|host| host.config().room_vcards);
            return super::steps::step_table(lua, &outcome, room_vcards).map(Some);
        }
        self.finish(lua, outcome)
    }

    /// `host:confirm(err)`: the shim wrote the stores `handle` handed it (`err` nil), or
    /// failed to (`err` says why); what was held back, or the error reply, goes out now,
    /// or is handed to the shim to carry out if it has events (as by `handle`).
    fn confirm(&self, lua: &Lua, err: Option<String>) -> LuaResult<Option<Table>> {
        let confirmed = self.host_mut()?.confirm(err.map_or(Ok(()), Err));
        self.finish(lua, confirmed.outcome)
    }

    /// Carries out an outcome of a stanza's handling (its repeatable deliveries kept), or,
    /// if it has events, hands it to the shim to carry out (`events::Carrying`).
    fn finish(&self, lua: &Lua, outcome: Outcome) -> LuaResult<Option<Table>> {
        let repeatable = outcome.deliveries.iter().filter(|d| d.repeatable).count();
        if repeatable > 0 {
            self.repeatable.borrow_mut().expect(repeatable);
        }
        self.hand_over(lua, outcome)
    }

    /// The facts of a call of `handle`: the time now, and the answers the shim gave so far
    /// (see `steps::step_table`): from storage, of the modules, the rooms' avatars.
    fn facts_from(&self, answers: Option<&Table>) -> Facts {
        let mut facts = self.facts();
        if let Some(answers) = answers {
            super::steps::read_answers(answers, &mut facts);
        }
        facts
    }

    /// The core, for a call that may change it (never held across a Lua callback).
    pub(super) fn host_mut(&self) -> LuaResult<std::cell::RefMut<'_, MucHost>> {
        self.host.try_borrow_mut().map_err(|_| mlua::Error::runtime("muc_rs host busy"))
    }

    /// Builds the stanza table once and sends it to each recipient in turn, setting
    /// `attr.to` in place (as stock mod_muc does). A failing `send` is logged, and the
    /// remaining recipients still get theirs.
    ///
    /// The table carries its XML rendered once (see `render`), which Prosody's serializing
    /// and the debug line it writes for every delivery use. A repeatable delivery's table
    /// is kept and sent again the next time (see `reuse`).
    pub(super) fn deliver(&self, lua: &Lua, delivery: &Delivery) -> LuaResult<()> {
        let key = delivery.repeatable.then(|| self.repeatable.borrow().key(&delivery.stanza));
        let kept = key.and_then(|key| self.repeatable.borrow_mut().get(key));
        let stanza = match kept {
            Some(table) => table,
            None => {
                let table = self.build(lua, &delivery.stanza)?;
                if let Some(key) = key {
                    self.repeatable.borrow_mut().keep(key, &delivery.stanza, &table);
                }
                table
            }
        };
        self.send_table(&stanza, delivery.to.iter().map(|j| j.as_str()))
    }

    /// The stanza table for `element`, with its rendering and the `top_tag` that uses it
    /// (shadowing the metatable's: Prosody's clones the root to render it).
    pub(super) fn build(&self, lua: &Lua, element: &Element) -> LuaResult<Table> {
        let stanza = self.build_plain(lua, element)?;
        self.attach_render(lua, &stanza, element)?;
        Ok(stanza)
    }

    /// The stanza table for `element`, without its rendering: for tables handed to
    /// modules, which may change them anywhere (the rendering only notices changes at the
    /// root).
    pub(super) fn build_plain(&self, lua: &Lua, element: &Element) -> LuaResult<Table> {
        convert::table_from_element(lua, &self.keys, &self.stanza_mt, element)
    }

    /// Gives `stanza` (the table of `element`) its rendering and the `top_tag` that uses it.
    pub(super) fn attach_render(&self, lua: &Lua, stanza: &Table, element: &Element) -> LuaResult<()> {
        if let Some(top_tag) = &self.top_tag {
            if render::attach(lua, &self.keys, stanza, element)? {
                stanza.raw_set(&self.keys.top_tag, top_tag)?;
            }
        }
        Ok(())
    }
}

impl UserData for LuaHost {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("handle", |lua, this, (stanza, answers): (Value, Option<Table>)| {
            Ok(this.handle(lua, stanza, answers))
        });
        // The shim tells when modules hooked or unhooked events (or added items): where they
        // listen is asked again at the next stanza.
        methods.add_method("hooks_changed", |_, this, ()| {
            this.listening.set(None);
            Ok(())
        });
        // After the shim wrote the stores of a stanza's step, or of a call's (`calls.rs`).
        methods.add_method("confirm", |lua, this, (err, call): (Option<String>, Option<AnyUserData>)| {
            let confirmed = match &call {
                None => guard::run(|| this.confirm(lua, err)),
                Some(call) => guard::run(|| this.confirm_call(lua, call, err).map(Some)),
            };
            match confirmed {
                Ok(Ok(step)) => return Ok(step),
                Ok(Err(e)) => this.log("error", &format!("could not confirm stored rooms: {}", summary(&e))),
                Err(panic) => this.log("error", &format!("panic while confirming stored rooms: {panic}")),
            }
            Ok(None)
        });
        // The steps of an outcome the shim carries out (see `events::Carrying`); a failure
        // is logged and the rest of that outcome dropped.
        methods.add_method("next_event", |lua, this, mut carrying: UserDataRefMut<Carrying>| {
            match guard::run(|| this.next_event(lua, &mut carrying)) {
                Ok(Ok(event)) => return Ok(event),
                Ok(Err(e)) => this.log("error", &format!("could not send: {}", summary(&e))),
                Err(panic) => this.log("error", &format!("panic while carrying out: {panic}")),
            }
            *carrying = Carrying::default();
            Ok(MultiValue::new())
        });
        methods.add_method(
            "event_done",
            |lua, this, (mut carrying, result): (UserDataRefMut<Carrying>, MultiValue)| {
                match guard::run(|| this.event_done(lua, &mut carrying, result)) {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => this.log("error", &format!("could not send: {}", summary(&e))),
                    Err(panic) => this.log("error", &format!("panic while carrying out: {panic}")),
                }
                *carrying = Carrying::default();
                Ok(())
            },
        );
        // The room objects' methods (see `room_api`); a panic is an error to the caller.
        methods.add_method("room", |lua, this, (method, jid, args): (String, String, MultiValue)| {
            guard::run(|| this.room_call(lua, &method, &jid, args)).unwrap_or_else(|panic| {
                Err(mlua::Error::runtime(format!("muc_rs: {method} panicked: {panic}")))
            })
        });
        // What modules and the admins' commands do that the shim's loop drives (see
        // `calls`): the call's values, or a step first; a panic is an error to the caller.
        methods.add_method("call", |lua, this, (method, args): (String, MultiValue)| {
            guard::run(|| this.call(lua, &method, args)).unwrap_or_else(|panic| {
                Err(mlua::Error::runtime(format!("muc_rs: {method} panicked: {panic}")))
            })
        });
        methods.add_method("resume", |lua, this, (call, answers): (AnyUserData, Option<Table>)| {
            guard::run(|| this.resume(lua, &call, answers))
                .unwrap_or_else(|panic| Err(mlua::Error::runtime(format!("muc_rs: call panicked: {panic}"))))
        });
        methods.add_method("live_rooms", |_, this, ()| {
            Ok(this
                .host
                .try_borrow()
                .map(|h| h.live_room_jids())
                .unwrap_or_default()
                .iter()
                .map(|j| j.to_string())
                .collect::<Vec<_>>())
        });
        // Prosody's admins may have changed (config reloaded, roles changed).
        methods.add_method("forget_service_admins", |_, this, ()| {
            this.host_mut()?.forget_service_admins();
            Ok(())
        });
        // Whether rooms have vCards (Prosody 13, unless `muc_vcard = false`).
        methods.add_method("room_vcards", |_, this, ()| Ok(this.host.borrow().config().room_vcards));
        // The service's name for its disco identity (the `name` option or stock's default).
        methods.add_method("service_name", |_, this, ()| Ok(this.host.borrow().config().name.clone()));
        methods.add_method("service_features", |_, this, ()| Ok(this.host.borrow().service_features()));
        // The events of the room's own configuration fields, where the room takes them.
        methods.add_function("config_field_events", |_, _: Value| {
            let events = muc_rs::hooks::Hook::Config.event_names();
            Ok(events.iter().filter(|e| e.starts_with("muc-config-submitted/")).copied().collect::<Vec<_>>())
        });
        // For specs and benchmarks: deliver `stanza` to each JID in `to` through the same
        // conversion and fan-out as the core's deliveries. Returns true, or nil and why not.
        methods.add_method("_deliver", |lua, this, (stanza, to): (Table, Vec<String>)| {
            let stanza = match convert::element_from_table(&this.keys, &stanza) {
                Ok(stanza) => stanza,
                Err(why) => return Ok((None, Some(why))),
            };
            let to = match to.iter().map(|j| Jid::new(j)).collect::<Result<Vec<_>, _>>() {
                Ok(to) => to,
                Err(e) => return Ok((None, Some(e.to_string()))),
            };
            match guard::run(|| this.deliver(lua, &Delivery::new(stanza, to))) {
                Ok(Ok(())) => Ok((Some(true), None)),
                Ok(Err(e)) => Ok((None, Some(summary(&e)))),
                Err(panic) => Ok((None, Some(format!("panic: {panic}")))),
            }
        });
    }
}

/// The top-level facts of a stanza, read before anything can go wrong, so an error reply
/// can still be built after a malformed child or a panic.
struct Head {
    name: Option<String>,
    from: Option<String>,
    to: Option<String>,
    id: Option<String>,
    kind: Option<String>,
}

impl Head {
    fn read(keys: &Keys, table: &Table) -> Head {
        let string = |t: &Table, key: &str| match t.raw_get::<Value>(key) {
            Ok(Value::String(s)) => s.to_str().ok().map(|s| s.to_owned()),
            _ => None,
        };
        let name = match table.raw_get::<Value>(&keys.name) {
            Ok(Value::String(s)) => s.to_str().ok().map(|s| s.to_owned()),
            _ => None,
        };
        match table.raw_get::<Value>(&keys.attr) {
            Ok(Value::Table(attr)) => Head {
                name,
                from: string(&attr, "from"),
                to: string(&attr, "to"),
                id: string(&attr, "id"),
                kind: string(&attr, "type"),
            },
            _ => Head { name, from: None, to: None, id: None, kind: None },
        }
    }

    fn describe(&self) -> String {
        format!("<{}> from {}", self.name.as_deref().unwrap_or("?"), self.from.as_deref().unwrap_or("(none)"))
    }

    /// An error reply to the sender, unless the stanza is itself an error or a result, is
    /// not one of the three stanza kinds, or has no usable sender.
    fn error_reply(&self, error: &StanzaError) -> Option<Delivery> {
        let name = self.name.as_deref().filter(|n| matches!(*n, "iq" | "message" | "presence"))?;
        if matches!(self.kind.as_deref(), Some("error" | "result")) {
            return None;
        }
        let from = self.from.as_deref()?;
        let to = Jid::new(from).ok()?;
        let orig = Element::bare(name, NS_CLIENT)
            .with("from", from)
            .with_opt("to", self.to.as_deref())
            .with_opt("id", self.id.as_deref())
            .with_opt("type", self.kind.as_deref());
        let mut reply = error_reply(&orig, error, None);
        reply.unset("to");
        Some(Delivery::new(reply, vec![to]))
    }
}
