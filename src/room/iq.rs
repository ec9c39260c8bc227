//! IQs between occupants: queries relayed to the addressed occupant under the sender's
//! room JID, replies routed back by the id the room gave the query, and self-pings.

use super::{Ctx, Room};
use crate::id::{parse_relayed_iq_id, relayed_iq_id, relayed_iq_tag_matches};
use crate::xml::{reply, ElementExt, StanzaError, NS_PING};
use jid::{FullJid, Jid};
use minidom::Element;

/// Queries in these namespaces are about the user, not the client: they go to the bare JID.
const BARE_JID_NAMESPACES: [&str; 3] =
    ["vcard-temp", "http://jabber.org/protocol/pubsub", "urn:ietf:params:xml:ns:vcard-4.0"];

impl Room {
    pub fn relay_iq_query(&mut self, ctx: &mut Ctx, stanza: &Element, from: &FullJid, to: &FullJid) {
        let Some(current_nick) = self.nick_of(from).and_then(|n| self.nick_jid(n)) else {
            return ctx.error(stanza, StanzaError::not_in_room(), Some(self.jid_str()));
        };
        let Some(target) = self.occupant_by_nick(to.resource().as_str()) else {
            let error = StanzaError::item_not_found().with_text("Recipient not in room");
            return ctx.error(stanza, error, Some(self.jid_str()));
        };
        // XEP-0410: a ping to one's own nick tells the client it is still joined.
        let payload = stanza.children().next();
        if &current_nick == to
            && stanza.attr("type") == Some("get")
            && payload.is_some_and(|p| p.is("ping", NS_PING))
        {
            return ctx.send(reply(stanza), from.clone().into());
        }
        let Some(session) = target.primary().cloned() else { return };
        let original_id = stanza.attr("id").unwrap_or("");
        let id = relayed_iq_id(session.as_str(), original_id, from.as_str(), &self.settings.occupant_id_salt);
        let mut relayed = stanza.clone().with("id", id).with("from", current_nick.as_str());
        relayed.unset("to");
        let dest: Jid = match payload {
            Some(p) if BARE_JID_NAMESPACES.contains(&p.ns().as_str()) => session.to_bare().into(),
            _ => session.into(),
        };
        ctx.send(relayed, dest);
    }

    /// A reply from an occupant's client to a relayed query: back to the asking session,
    /// with its own id. Anything that does not decode is dropped, as stock drops it.
    /// `from` may be a bare JID: replies to queries relayed to a user's bare JID (vCards)
    /// come from the user's server.
    pub fn relay_iq_reply(&mut self, ctx: &mut Ctx, stanza: &Element, from: &Jid, to: &FullJid) {
        let Some(asker) = self.occupant_by_nick(to.resource().as_str()) else { return };
        let Some((target, original_id, tag)) = stanza.attr("id").and_then(parse_relayed_iq_id) else {
            return;
        };
        // From the session it was relayed to, or (bare-JID queries) from that user's server.
        let target_bare = target.split('/').next().unwrap_or(&target);
        if from.as_str() != target && from.as_str() != target_bare {
            return;
        }
        let Some(replier_nick) =
            target.parse::<FullJid>().ok().and_then(|t| self.nick_of(&t).map(str::to_owned))
        else {
            return;
        };
        let salt = &self.settings.occupant_id_salt;
        let Some(session) =
            asker.session_jids().find(|s| relayed_iq_tag_matches(&tag, s.as_str(), salt)).cloned()
        else {
            return;
        };
        let Some(replier) = self.nick_jid(&replier_nick) else { return };
        let mut relayed = stanza.clone().with("from", replier.as_str()).with("id", original_id);
        relayed.unset("to");
        ctx.send(relayed, session.into());
    }
}
