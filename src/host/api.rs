//! What the host's modules may do with rooms outside a stanza's handling, as stock
//! mod_muc's room objects let them: find a room, broadcast through it, keep a message in
//! its history, store it.

use super::{report_departures, MucHost};
use crate::env::{Env, StoredRoom};
use crate::hooks::{Event, Hook};
use crate::outcome::Outcome;
use crate::room::occupant_presence::OccupantPresence;
use crate::room::settings::RoomSettings;
use crate::room::{Ctx, Room};
use jid::BareJid;
use minidom::Element;

impl MucHost {
    /// The live room `jid`, brought back from storage if it has records there (stock's
    /// `get_room_from_jid`). `Err` means storage failed; the outcome has the log lines and
    /// the rooms put away to make space.
    pub fn find_room(&mut self, jid: &BareJid, env: &dyn Env) -> (Result<bool, ()>, Outcome) {
        let mut out = Outcome::default();
        if self.room(jid).is_some() {
            return (Ok(true), out);
        }
        let mut ctx = Ctx { config: &self.config, env, out: &mut out, host: &self.domain };
        let found = match Self::load_room(&mut ctx, jid) {
            Ok(Some(room)) => {
                if Self::make_room_for_one(&mut self.rooms, &mut ctx).is_err() {
                    return (Err(()), out);
                }
                self.rooms.insert(room);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(()) => Err(()),
        };
        (found, out)
    }

    /// A module's `create_room(jid, config)`: a room made without a join, with `config` as
    /// its data, or the service's defaults. `Err` if it exists (live or stored)
    /// or is not a room of this service.
    pub fn create_room(
        &mut self,
        jid: &BareJid,
        config: Option<&crate::persist::Table>,
        env: &dyn Env,
    ) -> (Result<(), &'static str>, Outcome) {
        let (found, mut out) = self.find_room(jid, env);
        match found {
            Ok(true) => return (Err("room-exists"), out),
            Err(()) => return (Err("internal-server-error"), out),
            Ok(false) if jid.node().is_none() || jid.domain() != self.domain.domain() => {
                return (Err("jid-malformed"), out)
            }
            Ok(false) => {}
        }
        let mut ctx = Ctx { config: &self.config, env, out: &mut out, host: &self.domain };
        if Self::make_room_for_one(&mut self.rooms, &mut ctx).is_err() {
            return (Err("resource-constraint"), out);
        }
        // A config given is the room's data as it stands; without one, the defaults.
        let settings = match config {
            Some(data) => RoomSettings::from_data(data),
            None => RoomSettings::with_defaults(&ctx.config.defaults, None),
        };
        self.rooms.insert(Room::new(jid.clone(), settings));
        if ctx.env.listens(Hook::RoomLifecycle) {
            ctx.out.fire(Event::RoomCreated { room: jid.clone() });
        }
        (Ok(()), out)
    }

    /// Live rooms' JIDs, in no particular order.
    pub fn live_room_jids(&self) -> Vec<BareJid> {
        self.rooms.rooms().map(|r| r.jid.clone()).collect()
    }

    /// Runs `f` on a live room with a context for its output (log lines, deliveries,
    /// events); `None` if the room is not live.
    pub fn with_room<T>(
        &mut self,
        jid: &BareJid,
        env: &dyn Env,
        f: impl FnOnce(&mut Room, &mut Ctx) -> T,
    ) -> Option<(T, Outcome)> {
        let mut out = Outcome::default();
        let (config, domain) = (&self.config, &self.domain);
        let room = match self.rooms.get_mut(jid) {
            Some(room) => room,
            None => self.pending.as_deref_mut().filter(|p| p.jid == *jid)?,
        };
        let mut ctx = Ctx { config, env, out: &mut out, host: domain };
        let result = f(room, &mut ctx);
        report_departures(room, &mut ctx);
        Some((result, out))
    }

    /// A change a module makes to a live room (an affiliation, a role, a setting): stored
    /// before anyone hears of it, and undone if storing fails.
    pub fn change_room<T>(
        &mut self,
        jid: &BareJid,
        env: &dyn Env,
        f: impl FnOnce(&mut Room, &mut Ctx) -> Result<T, String>,
    ) -> Result<(T, Outcome), String> {
        let snapshot = self.room(jid).ok_or("No such room")?.clone();
        let (result, out) = self.with_room(jid, env, f).ok_or("No such room")?;
        let value = match result {
            Ok(value) => value,
            Err(why) => {
                *self.room_mut(jid).expect("still there") = snapshot;
                return Err(why);
            }
        };
        // A room being made (not live yet) is stored, if need be, once it is made.
        if let Some(room) = self.rooms.get_mut(jid).filter(|r| r.needs_save) {
            room.needs_save = false;
            let record = room.settings.persistent.then(|| StoredRoom { config: room.freeze(), state: None });
            if let Err(e) = env.store_room(jid, record.as_ref()) {
                *room = snapshot;
                return Err(format!("could not store {jid}, change undone: {e}"));
            }
        }
        Ok((value, out))
    }

    /// A module's `room:broadcast_message(stanza)`: the same steps as the room's own.
    pub fn broadcast_message(&mut self, jid: &BareJid, stanza: Element, env: &dyn Env) -> Option<Outcome> {
        self.with_room(jid, env, |room, ctx| room.broadcast_message(ctx, stanza)).map(|((), out)| out)
    }

    /// The configuration-change notice, with the status codes the modules added.
    pub fn config_notice(&mut self, jid: &BareJid, codes: &[u16], env: &dyn Env) -> Option<Outcome> {
        self.with_room(jid, env, |room, ctx| room.config_notice(ctx, codes)).map(|((), out)| out)
    }

    /// The host stored a new vCard for the room: it announces its avatar.
    pub fn avatar_updated(&mut self, jid: &BareJid, env: &dyn Env) -> Option<Outcome> {
        self.with_room(jid, env, |room, ctx| room.announce_avatar(ctx)).map(|((), out)| out)
    }

    /// An occupant's presence as the modules left it (`muc-build-occupant-presence`,
    /// `muc-broadcast-presence`): its deliveries. An actor they named instead is shown by
    /// its nick in the room.
    pub fn occupant_presence(
        &self,
        jid: &BareJid,
        mut presence: OccupantPresence,
        actor_changed: bool,
    ) -> Outcome {
        if actor_changed {
            presence.actor_nick = self.room(jid).and_then(|room| room.actor_nick(presence.actor.as_ref()));
        }
        let mut out = Outcome::default();
        presence.send(&mut out);
        out
    }

    /// The room's own `muc-add-history` step: keeps `stanza` as its handlers left it.
    pub fn add_history(&mut self, jid: &BareJid, stanza: &Element, env: &dyn Env) -> bool {
        let max = self.config.max_history_messages;
        let Some(room) = self.room_mut(jid) else { return false };
        room.add_history(max, env.now(), stanza);
        true
    }

    /// Writes a live room's record now (a module changed it; stock's `room:save(true)`).
    /// A temporary room has none to write.
    pub fn save_room(&mut self, jid: &BareJid, env: &dyn Env) -> Result<(), String> {
        let room = self.rooms.get_mut(jid).ok_or("No such room")?;
        room.needs_save = false;
        let record = room.settings.persistent.then(|| StoredRoom { config: room.freeze(), state: None });
        env.store_room(jid, record.as_ref()).map_err(|e| format!("could not store {jid}: {e}"))
    }
}
