//! Service admins in rooms: who the host server calls an administrator of the service is
//! an owner of every room where the host says so (`component_admins_as_room_owners`,
//! ejabberd's `access_admin`), and may create rooms where only admins may.
//!
//! The core never asks mid-stanza: before a stanza changes anything, the users it may be
//! about and whose status is not known are asked of the host at once
//! ([`Question::ServiceAdmins`]). An occupant's status is learnt when they join (or, for a
//! room brought back with its occupants, on its first stanza) and kept while they stay:
//! a broadcast reads it for every occupant without asking anyone.

use super::{Ctx, Room};
use crate::config::RoomCreation;
use crate::occupant::Occupant;
use crate::protocol::{Facts, Question};
use crate::xml::{NS_MUC_ADMIN, NS_MUC_USER};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;

impl Room {
    /// Whether `user` is a service admin, from this stanza's facts or what the room learnt
    /// when they joined. Everyone the stanza may be about was asked before it was handled.
    pub(crate) fn is_service_admin(&self, ctx: &Ctx, user: &BareJid) -> bool {
        if let Some(known) = ctx.known_admin(user) {
            return known;
        }
        let present = self.admins_present.as_ref().is_some_and(|admins| admins.contains(user));
        debug_assert!(
            present || self.occupants().any(|o| o.bare_jid == *user && o.service_admin.is_some()),
            "service admin status of {user} was not asked before the stanza was handled"
        );
        present
    }

    /// The occupant's own status where it is known, else as for any user.
    pub(crate) fn is_admin_occupant(&self, ctx: &Ctx, occupant: &Occupant) -> bool {
        match (ctx.known_admin(&occupant.bare_jid), occupant.service_admin) {
            (Some(known), _) | (None, Some(known)) => known,
            (None, None) => self.is_service_admin(ctx, &occupant.bare_jid),
        }
    }

    /// Keeps the answers about occupants whose status the room did not know yet (a room
    /// brought back with its occupants).
    pub(crate) fn learn_service_admins(&mut self, facts: &Facts) {
        if self.admins_known {
            return;
        }
        self.occupants.learn_admin_status(|user| facts.service_admin(user));
        let mut admins: Vec<BareJid> = Vec::new();
        for occupant in self.occupants().filter(|o| o.service_admin == Some(true)) {
            if !admins.contains(&occupant.bare_jid) {
                admins.push(occupant.bare_jid.clone());
            }
        }
        self.admins_present = (!admins.is_empty()).then(|| Box::new(admins));
        self.admins_known = true;
    }

    /// Forgets what the room learnt of its occupants: asked again before its next stanza.
    pub(crate) fn forget_service_admins(&mut self) {
        self.occupants.forget_admin_status();
        self.admins_present = None;
        self.admins_known = false;
    }

    /// Keeps who among the room's occupants is an admin as one joins or leaves.
    pub(crate) fn note_admin_presence(&mut self, occupant: &Occupant, stays: bool) {
        if occupant.service_admin != Some(true) {
            return;
        }
        let listed =
            self.admins_present.as_ref().and_then(|a| a.iter().position(|a| *a == occupant.bare_jid));
        match (stays, listed) {
            (true, None) => self.admins_present.get_or_insert_default().push(occupant.bare_jid.clone()),
            (false, Some(at)) if !self.occupants().any(|o| o.bare_jid == occupant.bare_jid) => {
                if let Some(admins) = self.admins_present.as_mut() {
                    admins.swap_remove(at);
                    if admins.is_empty() {
                        self.admins_present = None;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The users a stanza to `room_jid` may be about whose admin status neither the facts nor
/// the room know: asked of the host before anything changes. When none is, the sender's
/// status as the room knows it is kept in `ctx` for the stanza.
pub(crate) fn ask_unknown(
    ctx: &mut Ctx,
    room: Option<&Room>,
    stanza: &Element,
    from: &FullJid,
) -> Option<Question> {
    let question = unknown(ctx, room, stanza, from);
    // Kept only where admins own rooms: elsewhere no occupant's status is ever asked.
    if question.is_none()
        && ctx.config.admins_as_room_owners
        && ctx.facts.service_admin(&from.to_bare()).is_none()
    {
        let sender = room.and_then(|r| r.occupant_by_real_jid(from));
        ctx.sender_admin = sender.and_then(|o| Some((o.bare_jid.clone(), o.service_admin?)));
    }
    question
}

fn unknown(ctx: &Ctx, room: Option<&Room>, stanza: &Element, from: &FullJid) -> Option<Question> {
    let config = ctx.config;
    let creation_asks = config.room_creation != RoomCreation::Anyone && ctx.facts.sender_may_create.is_none();
    let makes_room = room.is_none() && stanza.name() == "presence";
    let passes_tombstone =
        room.is_some_and(|r| r.settings.tombstone.is_some()) && stanza.name() == "presence";
    let mut wanted: Vec<BareJid> = Vec::new();
    let mut want = |user: BareJid| {
        if ctx.facts.service_admin(&user).is_none() && !wanted.contains(&user) {
            wanted.push(user);
        }
    };
    if config.admins_as_room_owners {
        let known_occupant =
            room.and_then(|r| r.occupant_by_real_jid(from)).is_some_and(|o| o.service_admin.is_some());
        if !known_occupant {
            want(from.to_bare());
        }
        if let Some(room) = room {
            if !room.admins_known {
                room.occupants().filter(|o| o.service_admin.is_none()).for_each(|o| want(o.bare_jid.clone()));
            }
            if let Some(owner) = probed_registrant(room, stanza) {
                want(owner);
            }
        }
        named_users(stanza).into_iter().for_each(&mut want);
    } else if (creation_asks && makes_room) || passes_tombstone {
        want(from.to_bare());
    }
    (!wanted.is_empty()).then_some(Question::ServiceAdmins(wanted))
}

/// For a change a host makes to a live room outside a stanza (an admin command): the
/// room's occupants and `named` whose admin status is not known, where admins own rooms.
pub(crate) fn unknown_for_change(ctx: &Ctx, room: &Room, named: &[BareJid]) -> Option<Question> {
    if !ctx.config.admins_as_room_owners {
        return None;
    }
    let mut wanted: Vec<BareJid> =
        named.iter().filter(|u| ctx.facts.service_admin(u).is_none()).cloned().collect();
    if !room.admins_known {
        for occupant in room.occupants().filter(|o| o.service_admin.is_none()) {
            if ctx.facts.service_admin(&occupant.bare_jid).is_none() && !wanted.contains(&occupant.bare_jid) {
                wanted.push(occupant.bare_jid.clone());
            }
        }
    }
    (!wanted.is_empty()).then_some(Question::ServiceAdmins(wanted))
}

/// The users a stanza names: the items of an affiliation change, the invitee or declinee.
fn named_users(stanza: &Element) -> Vec<BareJid> {
    let mut users = Vec::new();
    let bare = |value: Option<&str>| value.and_then(|v| v.parse::<Jid>().ok()).map(|j| j.to_bare());
    for payload in stanza.children() {
        if payload.is("query", NS_MUC_ADMIN) {
            users.extend(payload.children().filter_map(|item| bare(item.attr("jid"))));
        } else if payload.is("x", NS_MUC_USER) {
            users.extend(payload.children().filter_map(|child| bare(child.attr("to"))));
        }
    }
    users
}

/// A presence probe for a nick no one occupies is answered with its registrant's
/// affiliation.
fn probed_registrant(room: &Room, stanza: &Element) -> Option<BareJid> {
    if stanza.name() != "presence" || stanza.attr("type") != Some("probe") {
        return None;
    }
    let to = stanza.attr("to")?.parse::<FullJid>().ok()?;
    let nick = to.resource().as_str();
    room.occupant_by_nick(nick).is_none().then(|| room.registered_jid(nick).cloned())?
}
