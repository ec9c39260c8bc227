//! A deleted account (ejabberd's `remove_user`): as mod_muc does in its rooms (all of them
//! live there: it keeps persistent rooms running), the user loses their affiliation in
//! each room and is sent out of it, "User removed".

use super::MucHost;
use crate::affiliation::Affiliation;
use crate::outcome::{LogLevel, Outcome};
use crate::protocol::Facts;
use crate::room::{Actor, DataChange, Room};
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
        let removed = self.admin_change(room_jid, std::slice::from_ref(user), facts, |room, ctx| {
            if room.stored_affiliation(user) != Affiliation::None {
                let removed = room.set_affiliation(
                    ctx,
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
                let _ = room.set_role(ctx, Actor::Room, &nick, None, Some(REASON));
            }
            Ok(())
        });
        match removed {
            Ok(out) => out,
            Err(why) if why == super::admin_commands::NO_SUCH_ROOM => Outcome::default(),
            Err(why) => {
                let mut out = Outcome::default();
                out.log.push((LogLevel::Error, format!("{user} stays in {room_jid}: {why}")));
                out
            }
        }
    }
}
