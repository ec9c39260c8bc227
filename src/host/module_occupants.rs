//! What a module does with a room's occupants itself, as stock's room objects let it:
//! `save_occupant` (an occupant stored, or gone without a word), and
//! `publicise_occupant_status` (an occupant's presence announced, also after it left).
//! Jitsi Meet's join and leave rate limit uses both to hold leaves back and announce them
//! later, firing `muc-occupant-left` itself.

use super::MucHost;
use crate::affiliation::Role;
use crate::occupant::Occupant;
use crate::outcome::Outcome;
use crate::protocol::Facts;
use crate::room::settings::Tombstone;
use crate::room::PresenceX;
use jid::{BareJid, Jid};

/// What stock's `publicise_occupant_status` takes besides the occupant.
#[derive(Debug, Clone, Default)]
pub struct Publicise {
    pub x: Option<PresenceX>,
    /// The new nick the items name (a nick change).
    pub nick: Option<String>,
    pub actor: Option<Jid>,
    pub reason: Option<String>,
    pub prev_role: Option<Role>,
    pub force_unavailable: bool,
    /// The one occupant (by nick) to send it to, instead of the room.
    pub recipient: Option<String>,
}

impl MucHost {
    /// A module's `room:save_occupant(occupant)`, on stock's copy: the occupant is stored
    /// in place of the one with its nick, or, with no role or no live session, is gone
    /// from the room without anyone being told, as on stock (the module announces it
    /// later). Returns whether it stays; `None` if the room is not live.
    pub fn save_module_occupant(&mut self, jid: &BareJid, mut occupant: Occupant) -> Option<bool> {
        let room = self.room_mut(jid)?;
        if let Some(current) = room.occupant_by_nick(occupant.nick_str()) {
            if current.bare_jid == occupant.bare_jid {
                occupant.service_admin = current.service_admin;
            }
        }
        // Not a departure the room reports: the module fires muc-occupant-left itself.
        let departed = room.departed.len();
        let stays = room.save_occupant(occupant).is_some();
        room.departed.truncate(departed);
        Some(stays)
    }

    /// A module's `room:publicise_occupant_status(...)`: `occupant`'s presence, as the
    /// room sends it, to the room (or to `recipient` only); the occupant need not be in the
    /// room any more. `None` if the room is not live.
    pub fn publicise_module_occupant(
        &mut self,
        jid: &BareJid,
        occupant: &Occupant,
        how: &Publicise,
        facts: &Facts,
    ) -> Option<Outcome> {
        let ((), out) = self.with_room(jid, facts, |room, ctx| match &how.recipient {
            Some(nick) => {
                if let Some(recipient) = room.occupant_by_nick(nick).cloned() {
                    room.publicise_to(ctx, occupant, &recipient);
                }
            }
            None => {
                let x = how.x.clone().unwrap_or_else(|| PresenceX::codes(&[]));
                room.publicise(
                    ctx,
                    occupant,
                    &x,
                    how.nick.as_deref(),
                    how.actor.as_ref(),
                    how.reason.as_deref(),
                    how.prev_role,
                    how.force_unavailable,
                );
            }
        })?;
        Some(out)
    }

    /// A module fired `muc-occupant-left` itself (after a leave it held back): an empty
    /// temporary room is destroyed then, as stock's mod_muc does in its handler of that
    /// event. `None` if nothing is to be done.
    pub fn module_occupant_left(&mut self, jid: &BareJid, facts: &Facts) -> Option<Result<Outcome, String>> {
        let room = self.rooms.get(jid)?;
        if room.has_occupants() || room.settings.persistent {
            return None;
        }
        Some(self.destroy_room(jid.as_str(), Tombstone::default(), None, facts))
    }
}
