//! A deleted account (ejabberd's `remove_user`): as mod_muc does in its rooms (all of them
//! live there: it keeps persistent rooms running), the user loses their affiliation in
//! each room and is sent out of it, "User removed".

use super::{report_departures, room_record, MucHost};
use crate::affiliation::Affiliation;
use crate::outcome::{LogLevel, Outcome};
use crate::protocol::{Facts, Store, StoreReason};
use crate::room::{service_admins, Actor, Ctx, DataChange, Room};
use jid::BareJid;

const REASON: &str = "User removed";

impl MucHost {
    /// The rooms where `user` has an affiliation or an occupant: the live ones, and those
    /// only in storage (every stored room is read: an account is deleted rarely). `None`
    /// until the facts hold the stored rooms ([`crate::protocol::Question::StoredRooms`]).
    pub fn rooms_of_user(&self, user: &BareJid, facts: &Facts) -> Option<Vec<BareJid>> {
        let concerns = |room: &Room| {
            room.stored_affiliation(user) != Affiliation::None
                || room.occupants().any(|o| o.bare_jid == *user)
        };
        let mut rooms: Vec<BareJid> =
            self.rooms().filter(|room| concerns(room)).map(|room| room.jid.clone()).collect();
        let stored = match facts.stored_rooms() {
            None => return None,
            Some(Ok(stored)) => stored,
            // The live rooms are still done; the host has logged why it could not read.
            Some(Err(_)) => &[],
        };
        for (jid, record) in stored {
            let affiliated = || Room::restore(&record.config, None).is_ok_and(|room| concerns(&room));
            if !self.rooms.contains(jid) && affiliated() {
                rooms.push(jid.clone());
            }
        }
        Some(rooms)
    }

    /// Takes the deleted `user`'s affiliation in the room `room_jid` and sends their
    /// occupant out, each announced as the room announces such changes. The outcome may ask
    /// for the room's records or who is an admin first, or hold the room's store.
    pub fn remove_user(&mut self, room_jid: &BareJid, user: &BareJid, facts: &Facts) -> Outcome {
        self.settle_unconfirmed();
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        let was_live = self.rooms.contains(room_jid);
        match Self::bring_back_into(&mut self.rooms, &mut ctx, room_jid) {
            Ok(true) if ctx.out.ask.is_none() => {}
            Ok(_) => return out, // asked for its records, or it has none
            Err(why) => {
                ctx.log(LogLevel::Error, format!("{user} stays in {room_jid}: {why}"));
                return out;
            }
        }
        let Some(room) = self.rooms.get_mut(room_jid) else { return out };
        if let Some(question) = service_admins::unknown_for_change(&ctx, room, std::slice::from_ref(user)) {
            ctx.out.ask(question);
            let undo = std::mem::take(&mut ctx.undo);
            return self.hold(out, undo, (!was_live).then(|| room_jid.clone()), None);
        }
        room.learn_service_admins(ctx.facts);
        let affiliated = room.stored_affiliation(user) != Affiliation::None;
        if affiliated {
            let removed = room.set_affiliation(
                &mut ctx,
                Actor::Room,
                user,
                Affiliation::None,
                Some(REASON),
                DataChange::Clear,
            );
            if let Err(refused) = removed {
                ctx.log(
                    LogLevel::Warn,
                    format!("{user}'s affiliation in {room_jid} stays: {}", refused.condition),
                );
            }
        }
        let nicks: Vec<String> =
            room.occupants().filter(|o| o.bare_jid == *user).map(|o| o.nick_str().to_owned()).collect();
        for nick in nicks {
            // Sent out already if the affiliation change did it (a members-only room).
            let _ = room.set_role(&mut ctx, Actor::Room, &nick, None, Some(REASON));
        }
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
        self.hold(out, undo, None, None)
    }
}
