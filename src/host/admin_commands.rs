//! The room commands of ejabberd's mod_muc_admin (`ejabberdctl`, the HTTP API), as the
//! host runs them: what they read of a live room, and the changes they make with the
//! room's own authority, stored before anyone hears of them (the outcome holds the store
//! until [`MucHost::confirm`]; a failed write puts the room back).

use super::{report_departures, room_record, MucHost};
use crate::data::Data;
use crate::outcome::Outcome;
use crate::protocol::{Facts, Store, StoreReason};
use crate::room::service_admins;
use crate::room::settings::RoomSettings;
use crate::room::{Ctx, Room};
use jid::BareJid;

/// Why a change outside a stanza found no room.
pub const NO_SUCH_ROOM: &str = "No such room";

/// A live room as the commands read it: its record (`config`, as it would be stored), its
/// occupants' sessions, `(real JID, nick, role)`, and its history, `(time, message)`.
pub struct RoomSnapshot {
    pub config: Data,
    pub sessions: Vec<(String, String, &'static str)>,
    pub history: Vec<(i64, String)>,
}

impl MucHost {
    /// The live room `jid` as the commands read it; `None` if it is not live.
    pub fn room_snapshot(&self, jid: &BareJid) -> Option<RoomSnapshot> {
        let room = self.room(jid)?;
        let sessions = room
            .occupants()
            .flat_map(|occupant| {
                let role = occupant.role_or_none().as_str();
                occupant
                    .session_jids()
                    .map(move |jid| (jid.to_string(), occupant.nick_str().to_owned(), role))
            })
            .collect();
        let history =
            room.history.iter().map(|entry| (entry.timestamp, String::from(&entry.stanza))).collect();
        Some(RoomSnapshot { config: room.freeze(), sessions, history })
    }

    /// The live rooms where `user` has an occupant.
    pub fn rooms_with_occupant(&self, user: &BareJid) -> Vec<String> {
        self.rooms()
            .filter(|room| room.occupants().any(|o| o.bare_jid == *user))
            .map(|room| room.jid.to_string())
            .collect()
    }

    /// The live rooms (not destroyed ones' remains) as the room lists show them: `(JID,
    /// public, sessions, the time of the last message in their history)`.
    pub fn live_rooms_summary(&self) -> Vec<(String, bool, usize, Option<i64>)> {
        self.rooms()
            .filter(|room| room.settings.tombstone.is_none())
            .map(|room| {
                let sessions = room.occupants().map(|o| o.session_jids().count()).sum();
                let last_message = room.history.back().map(|entry| entry.timestamp);
                (room.jid.to_string(), !room.settings.hidden, sessions, last_message)
            })
            .collect()
    }

    /// An admin command's room made from its record (`config`, as stored: settings and
    /// affiliations), stored at once if it is persistent. `Err` as [`MucHost::create_room`].
    pub fn admin_create_room(
        &mut self,
        jid: &BareJid,
        record: &Data,
        facts: &Facts,
    ) -> (Result<(), &'static str>, Outcome) {
        let Ok(mut room) = Room::restore(record, None) else {
            return (Err("bad-request"), Outcome::default());
        };
        room.jid = jid.clone();
        self.create_with(jid, facts, |_| room, true)
    }

    /// An admin command's change of a room's settings (`data`, the record's `_data`), as
    /// if an owner had submitted them: the occupants are told, and the room is stored.
    pub fn admin_configure(
        &mut self,
        room_jid: &BareJid,
        data: &Data,
        facts: &Facts,
    ) -> Result<Outcome, String> {
        let settings = RoomSettings::from_data(data.table().ok_or("the settings are not a table")?);
        self.admin_change(room_jid, &[], facts, |room, ctx| {
            room.apply_settings(ctx, &settings);
            Ok(())
        })
    }

    /// A change made to the room `room_jid` (live or stored) outside a stanza (an admin
    /// command, a deleted account), with the room's own authority; `named`: the users it
    /// concerns, whose admin status the room must know first. The room is stored if `f`
    /// changed it. `Err`: [`NO_SUCH_ROOM`], why it could not be read, or `f`'s refusal
    /// (nothing changed). The outcome may ask for the room's records or who is an admin
    /// instead.
    pub(super) fn admin_change(
        &mut self,
        room_jid: &BareJid,
        named: &[BareJid],
        facts: &Facts,
        f: impl FnOnce(&mut Room, &mut Ctx) -> Result<(), String>,
    ) -> Result<Outcome, String> {
        self.settle_unconfirmed();
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        let was_live = self.rooms.contains(room_jid);
        let found = Self::bring_back_into(&mut self.rooms, &mut ctx, room_jid)?;
        if ctx.out.ask.is_some() {
            return Ok(out);
        }
        if !found {
            return Err(NO_SUCH_ROOM.into());
        }
        let room = self.rooms.get_mut(room_jid).ok_or(NO_SUCH_ROOM)?;
        if let Some(question) = service_admins::unknown_for_change(&ctx, room, named) {
            ctx.out.ask(question);
            let undo = std::mem::take(&mut ctx.undo);
            return Ok(self.hold(out, undo, (!was_live).then(|| room_jid.clone()), None));
        }
        room.learn_service_admins(ctx.facts);
        // A refusal changes nothing; a change keeps its own undo copy (will_change_record).
        let done = f(room, &mut ctx);
        if ctx.out.ask.is_some() {
            // The host's modules first (muc-pre-set-affiliation): as it was until then.
            let undo = std::mem::take(&mut ctx.undo);
            return Ok(self.hold(out, undo, (!was_live).then(|| room_jid.clone()), None));
        }
        done?;
        let room = self.rooms.get_mut(room_jid).ok_or(NO_SUCH_ROOM)?;
        report_departures(room, &mut ctx);
        if room.needs_save {
            room.needs_save = false;
            ctx.out.stores.push(Store {
                room: room_jid.clone(),
                record: room_record(room),
                why: StoreReason::Change,
            });
        }
        let undo = std::mem::take(&mut ctx.undo);
        Ok(self.hold(out, undo, None, None))
    }
}
