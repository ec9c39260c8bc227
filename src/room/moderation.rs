//! Message moderation (XEP-0425) as ejabberd 24.12's MUC does it (`mod_muc_room`'s
//! `process_iq_moderate`), where the host has it (`HostConfig::message_moderation`: ejabberd;
//! on Prosody moderation is the community module mod_muc_moderation's). A moderator names a
//! message by the room's stanza-id (the archive's id): it leaves the archive if the room
//! archives (the host's [`Event::RemoveArchived`]) and the history, and every occupant gets the tombstone, in
//! the fastening form (moderate:0) and the moderate:1 form alike, as stock sends both. An
//! occupant's own retraction (XEP-0424) takes its message out of the history and the
//! archive likewise ([`Room::retract_own`]).

use super::message::NS_SID;
use super::{Ctx, Room};
use crate::affiliation::{Affiliation, Role};
use crate::hooks::Event;
use crate::xml::{el, reply, ElementExt, StanzaError, NS_CLIENT};
use jid::{BareJid, FullJid};
use minidom::Element;

pub const NS_MODERATE_0: &str = "urn:xmpp:message-moderate:0";
pub const NS_MODERATE_1: &str = "urn:xmpp:message-moderate:1";
pub const NS_RETRACT_0: &str = "urn:xmpp:message-retract:0";
pub const NS_RETRACT_1: &str = "urn:xmpp:message-retract:1";
pub const NS_FASTEN: &str = "urn:xmpp:fasten:0";

/// The room's disco#info features for them, as stock lists them (with or without mod_mam).
pub const FEATURES: [&str; 3] = [NS_MODERATE_0, NS_MODERATE_1, NS_RETRACT_1];

/// What a moderation iq asks: the stanza-id and the reason, if its payload is one (a
/// moderate:1 `<moderate id=…>`, or a moderate:0 `<moderate/>` in an `<apply-to id=…>`).
pub fn request(payload: &Element) -> Option<(&str, Option<String>)> {
    let (id, moderate) = if payload.is("moderate", NS_MODERATE_1) {
        (payload.attr("id")?, payload)
    } else if payload.is("apply-to", NS_FASTEN) {
        (payload.attr("id")?, payload.get_child("moderate", NS_MODERATE_0)?)
    } else {
        return None;
    };
    let reason = moderate.children().find(|c| c.name() == "reason").map(|r| r.text());
    Some((id, reason))
}

impl Room {
    /// A moderation iq from `from`: `id` and `reason` as [`request`] read them.
    pub fn handle_moderate(
        &mut self,
        ctx: &mut Ctx,
        stanza: &Element,
        from: &FullJid,
        id: &str,
        reason: Option<String>,
    ) {
        if stanza.attr("type") != Some("set") {
            return ctx.error(stanza, StanzaError::modify_bad_request(), None);
        }
        // Stock lets owners and admins moderate from outside the room too.
        let occupant = self.occupant_by_real_jid(from);
        let is_moderator = occupant.is_some_and(|o| o.role == Some(Role::Moderator))
            || matches!(self.affiliation(ctx, &from.to_bare()), Affiliation::Owner | Affiliation::Admin);
        if !is_moderator {
            let error = StanzaError::forbidden().with_text("Only moderators are allowed to retract messages");
            return ctx.error(stanza, error, None);
        }
        // Stock's ids are mod_mam's integers.
        let Ok(number) = id.parse::<i64>() else {
            return ctx.error(
                stanza,
                StanzaError::modify_bad_request().with_text("Stanza id is not valid"),
                None,
            );
        };
        // (not an occupant: stock's `by` is the room itself)
        let by = match occupant {
            Some(o) => o.nick.to_string(),
            None => self.jid.to_string(),
        };
        ctx.out.fire(Event::RemoveArchived { room: self.jid.clone(), stanza_id: number });
        let tombstone = tombstone(self.jid.as_str(), id, &by, reason.as_deref());
        // Kept in the history, though it has no body, as stock keeps it.
        self.broadcast_kept(ctx, tombstone, true);
        let room = self.jid.as_str();
        self.history.retain(|entry| room_stanza_id(&entry.stanza, room) != Some(number));
        ctx.send(reply(stanza), from.clone().into());
    }

    /// An occupant's groupchat `message` retracting one of `sender`'s own (XEP-0424 in a
    /// fastening, `<apply-to id=origin-id><retract/></apply-to>`, which is what stock's
    /// `check_message_for_retractions` takes): the first message in the history from
    /// `sender` with that origin-id leaves it, and the archive. The message itself goes on
    /// as any other.
    pub fn retract_own(&mut self, ctx: &mut Ctx, message: &Element, sender: &BareJid) {
        let Some(id) = message
            .get_child("apply-to", NS_FASTEN)
            .filter(|a| a.has_child("retract", NS_RETRACT_1))
            .and_then(|a| a.attr("id"))
        else {
            return;
        };
        let retracted = self.history.iter().position(|entry| {
            entry.sender.as_deref() == Some(sender)
                && entry.stanza.get_child("origin-id", NS_SID).and_then(|o| o.attr("id")) == Some(id)
        });
        let Some(entry) = retracted.and_then(|at| self.history.remove(at)) else { return };
        if let Some(number) = room_stanza_id(&entry.stanza, self.jid.as_str()) {
            ctx.out.fire(Event::RemoveArchived { room: self.jid.clone(), stanza_id: number });
        }
    }
}

/// The room's stanza-id on a message it broadcast, as the number it is on ejabberd.
fn room_stanza_id(message: &Element, room: &str) -> Option<i64> {
    let id = message.children().find(|c| c.is("stanza-id", NS_SID) && c.attr("by") == Some(room))?;
    id.attr("id")?.parse().ok()
}

/// The message every occupant gets for a moderated one, as stock builds it.
fn tombstone(room: &str, id: &str, by: &str, reason: Option<&str>) -> Element {
    let reason_in = |ns: &str| reason.map(|r| el("reason", ns).text(r));
    let mut moderated_0 = el("moderated", NS_MODERATE_0).with("by", by).child(el("retract", NS_RETRACT_0));
    if let Some(r) = reason_in(NS_MODERATE_0) {
        moderated_0.append_child(r);
    }
    let mut retract = el("retract", NS_RETRACT_1).with("id", id);
    if let Some(r) = reason_in(NS_MODERATE_1) {
        retract.append_child(r);
    }
    retract.append_child(el("moderated", NS_MODERATE_1).with("by", by));
    el("message", NS_CLIENT)
        .with("type", "groupchat")
        .with("from", room)
        .child(el("apply-to", NS_FASTEN).with("id", id).child(moderated_0))
        .child(retract)
}
