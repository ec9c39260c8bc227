//! What the host's modules may do with rooms outside a stanza's handling, as stock
//! mod_muc's room objects let them: find a room, broadcast through it, keep a message in
//! its history, store it.

use super::{report_departures, room_record, MucHost};
use crate::hooks::{Event, Hook};
use crate::outcome::Outcome;
use crate::presence_plan::OccupantPresence;
use crate::protocol::{Facts, Store, StoreReason};
use crate::room::settings::RoomSettings;
use crate::room::{Ctx, Room, Undo};
use jid::{BareJid, Jid};
use minidom::Element;

impl MucHost {
    /// The live room `jid`, brought back from storage if it has records there (stock's
    /// `get_room_from_jid`). `Err` means storage failed. The outcome may ask the host for
    /// the room's records, or hold the stores of rooms put away to make space.
    pub fn find_room(&mut self, jid: &BareJid, facts: &Facts) -> (Result<bool, String>, Outcome) {
        if self.room(jid).is_some() {
            return (Ok(true), Outcome::default());
        }
        self.settle_unconfirmed();
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        let found = Self::bring_back_into(&mut self.rooms, &mut ctx, jid);
        let undo = std::mem::take(&mut ctx.undo);
        let added = matches!(found, Ok(true)).then(|| jid.clone());
        (found, self.hold(out, undo, added, None))
    }

    /// A module's `create_room(jid, config)`: a room made without a join, with `config` as
    /// its data, or the service's defaults. `Err` if it exists (live or stored)
    /// or is not a room of this service.
    pub fn create_room(
        &mut self,
        jid: &BareJid,
        config: Option<&crate::data::Table>,
        facts: &Facts,
    ) -> (Result<(), &'static str>, Outcome) {
        let defaults = |ctx: &Ctx| RoomSettings::with_defaults(&ctx.config.defaults, None);
        // A config given is the room's data as it stands; without one, the defaults.
        let settings = |ctx: &Ctx| config.map_or_else(|| defaults(ctx), RoomSettings::from_data);
        self.create_with(jid, facts, |ctx| Room::new(jid.clone(), settings(ctx)), false)
    }

    /// A room made without a join, by `make`; stored at once if `store` and it is
    /// persistent. `Err` if it exists (live or stored) or is not a room of this service.
    pub(super) fn create_with(
        &mut self,
        jid: &BareJid,
        facts: &Facts,
        make: impl FnOnce(&Ctx) -> Room,
        store: bool,
    ) -> (Result<(), &'static str>, Outcome) {
        if jid.node().is_none() || jid.domain() != self.domain.domain() {
            return (Err("jid-malformed"), Outcome::default());
        }
        if self.room(jid).is_some() {
            return (Err("room-exists"), Outcome::default());
        }
        self.settle_unconfirmed();
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        match Self::load_room(&mut ctx, jid) {
            super::Loaded::Asked => return (Ok(()), out),
            super::Loaded::Room(_) => return (Err("room-exists"), Outcome::default()),
            super::Loaded::Failed => return (Err("internal-server-error"), out),
            super::Loaded::Absent => {}
        }
        if Self::make_room_for_one(&mut self.rooms, &mut ctx).is_err() {
            return (Err("resource-constraint"), out);
        }
        let mut room = make(&ctx);
        room.ensure_salt(&mut ctx);
        if let Some(record) = room_record(&room).filter(|_| store) {
            ctx.out.stores.push(Store { room: jid.clone(), record: Some(record), why: StoreReason::Change });
        }
        self.rooms.insert(room);
        if ctx.listens(Hook::RoomLifecycle) {
            ctx.out.fire(Event::RoomCreated { room: jid.clone() });
        }
        let undo = std::mem::take(&mut ctx.undo);
        (Ok(()), self.hold(out, undo, Some(jid.clone()), None))
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
        facts: &Facts,
        f: impl FnOnce(&mut Room, &mut Ctx) -> T,
    ) -> Option<(T, Outcome)> {
        let mut out = Outcome::default();
        let (config, domain) = (&self.config, &self.domain);
        let room = match self.rooms.get_mut(jid) {
            Some(room) => room,
            None => self.pending.as_deref_mut().filter(|p| p.jid == *jid)?,
        };
        let mut ctx = Ctx::new(config, facts, &mut out, domain);
        let result = f(room, &mut ctx);
        report_departures(room, &mut ctx);
        Some((result, out))
    }

    /// A change a module makes to a live room (an affiliation, a role, a setting): stored
    /// before anyone hears of it, and undone if storing fails (the outcome holds the store
    /// until [`MucHost::confirm`]). No value if the core stopped to ask the host's
    /// modules first (the outcome's question): the room is as it was.
    pub fn change_room<T>(
        &mut self,
        jid: &BareJid,
        facts: &Facts,
        f: impl FnOnce(&mut Room, &mut Ctx) -> Result<T, String>,
    ) -> Result<(Option<T>, Outcome), String> {
        self.settle_unconfirmed();
        let before = self.room(jid).ok_or("No such room")?.clone();
        let (result, mut out) = self.with_room(jid, facts, f).ok_or("No such room")?;
        if out.ask.is_some() {
            let undo = Undo { changed: Some(Box::new(before)), evicted: Vec::new() };
            return Ok((None, self.hold(out, undo, None, None)));
        }
        let value = match result {
            Ok(value) => value,
            Err(why) => {
                *self.room_mut(jid).expect("still there") = before;
                return Err(why);
            }
        };
        // A room being made (not live yet) is stored, if need be, once it is made.
        if let Some(room) = self.rooms.get_mut(jid).filter(|r| r.needs_save) {
            room.needs_save = false;
            out.stores.push(Store { room: jid.clone(), record: room_record(room), why: StoreReason::Change });
        }
        let undo = Undo { changed: Some(Box::new(before)), evicted: Vec::new() };
        Ok((Some(value), self.hold(out, undo, None, None)))
    }

    /// A module's `room:broadcast_message(stanza)`: the same steps as the room's own.
    pub fn broadcast_message(&mut self, jid: &BareJid, stanza: Element, facts: &Facts) -> Option<Outcome> {
        self.with_room(jid, facts, |room, ctx| room.broadcast_message(ctx, stanza)).map(|((), out)| out)
    }

    /// A module fired `muc-pre-invite` itself (Jitsi Meet's lobby handles invitations
    /// on its own): the room's own steps of that event on the invitation `stanza` it
    /// got. Whether they refused it (the inviter's error is in the outcome); `None` if the
    /// room is not live.
    pub fn module_pre_invite(
        &mut self,
        jid: &BareJid,
        stanza: &Element,
        facts: &Facts,
    ) -> Option<(bool, Outcome)> {
        self.with_room(jid, facts, |room, ctx| {
            let from = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok());
            let Some((error, by)) = from.and_then(|from| room.invite_refusal(ctx, &from)) else {
                return false;
            };
            ctx.error(stanza, error, by);
            true
        })
    }

    /// A module fired `muc-invite` itself: the room's own steps of that event on the
    /// invitation `invite` (to the invitee): at priority 50 (`whois`) the inviter named by
    /// its nick where the room hides real JIDs, else the rest, membership granted included
    /// (stored before anyone hears of it). The invitation as the steps leave it.
    pub fn module_invite(
        &mut self,
        jid: &BareJid,
        mut invite: Element,
        whois: bool,
        facts: &Facts,
    ) -> Result<(Option<Element>, Outcome), String> {
        if whois {
            let (invite, out) = self
                .with_room(jid, facts, |room, ctx| {
                    room.name_inviter(ctx, &mut invite);
                    invite
                })
                .ok_or("No such room")?;
            return Ok((Some(invite), out));
        }
        self.change_room(jid, facts, |room, ctx| {
            room.complete_invite(ctx, &mut invite);
            Ok(invite)
        })
    }

    /// The host stored a new vCard for the room: it announces its avatar.
    pub fn avatar_updated(&mut self, jid: &BareJid, facts: &Facts) -> Option<Outcome> {
        self.with_room(jid, facts, |room, ctx| room.announce_avatar(ctx)).map(|((), out)| out)
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
    pub fn add_history(&mut self, jid: &BareJid, stanza: &Element, now: i64) -> bool {
        let (max, keep_sender) = (self.config.max_history_messages, self.config.message_moderation);
        let Some(room) = self.room_mut(jid) else { return false };
        room.add_history_with(max, now, stanza, keep_sender);
        true
    }

    /// Writes a live room's record now (a module changed it; stock's `room:save(true)`).
    /// A temporary room has none to write. The outcome holds the store (see
    /// [`MucHost::confirm`]).
    pub fn save_room(&mut self, jid: &BareJid) -> Result<Outcome, String> {
        self.settle_unconfirmed();
        let room = self.rooms.get_mut(jid).ok_or("No such room")?;
        room.needs_save = false;
        let store = Store { room: jid.clone(), record: room_record(room), why: StoreReason::Change };
        let out = Outcome { stores: vec![store], ..Outcome::default() };
        Ok(self.hold(out, Undo::default(), None, None))
    }
}
