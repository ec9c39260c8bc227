//! muc#admin: changing and listing affiliations and roles.

use super::{Actor, AffiliationData, Ctx, DataChange, Room};
use crate::affiliation::{Affiliation, Role};
use crate::xml::{el, reply, ElementExt, StanzaError, NS_MUC_ADMIN};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;

impl Room {
    /// `<iq type='set'><query xmlns='…muc#admin'><item …/>…</query></iq>`. Stock acts on
    /// the first item only; muc_rs applies every item, all or nothing (issue 4): if one
    /// fails, the room is as it was and nobody was told of the others.
    pub fn handle_admin_set(&mut self, ctx: &mut Ctx, stanza: &Element, query: &Element, actor: &FullJid) {
        let items: Vec<&Element> = query.children().collect();
        if items.is_empty() {
            return ctx.error(stanza, StanzaError::bad_request(), None);
        }
        // An item may kick an occupant before it changes an affiliation: keep all of it.
        self.keep_undo(ctx);
        let undo = (items.len() > 1).then(|| (self.clone(), ctx.out.mark()));
        let mut result = Ok(());
        for item in items {
            result = self.apply_admin_item(ctx, item, actor);
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => ctx.send(reply(stanza), actor.clone().into()),
            Err(e) => {
                if let Some((snapshot, mark)) = undo {
                    *self = snapshot;
                    ctx.out.truncate(mark);
                }
                ctx.error(stanza, e, None)
            }
        }
    }

    /// One muc#admin item: an affiliation change (by JID, or by an occupant's nick) or a
    /// role change (by nick).
    fn apply_admin_item(
        &mut self,
        ctx: &mut Ctx,
        item: &Element,
        actor: &FullJid,
    ) -> Result<(), StanzaError> {
        let mut jid: Option<BareJid> = None;
        if let Some(raw) = item.attr("jid") {
            match raw.parse::<Jid>() {
                Err(_) => return Err(StanzaError::jid_malformed()),
                Ok(j) if j.resource().is_some() => {
                    return Err(StanzaError::jid_malformed().with_text("Bare JID expected, got full JID"));
                }
                Ok(j) => jid = Some(j.to_bare()),
            }
        }
        let mut nick: Option<String> = None;
        if let Some(raw) = item.attr("nick") {
            match self.nick_jid(raw) {
                Some(n) => nick = Some(n.resource().as_str().to_owned()),
                None => return Err(StanzaError::jid_malformed().with_text("invalid nickname")),
            }
        }
        if jid.is_none() {
            // Some clients name the occupant instead of the JID when changing affiliations.
            if let Some(o) = nick.as_deref().and_then(|n| self.occupant_by_nick(n)) {
                jid = Some(o.bare_jid.clone());
            }
        }
        let reason = item.get_child("reason", NS_MUC_ADMIN).map(Element::text);
        let affiliation = item.attr("affiliation");
        let role = item.attr("role");
        let actor_jid = Jid::from(actor.clone());
        match (affiliation, &jid, role, &nick) {
            (Some(affiliation), Some(jid), None, _) => {
                let mut data = self.affiliation_data(jid).cloned().unwrap_or_default();
                if reason.is_some() {
                    data.reason = reason.clone();
                }
                if let Some(nick) = &nick {
                    let holder = self.occupant_by_nick(nick).map(|o| o.bare_jid.clone());
                    if holder.is_some_and(|h| &h != jid) {
                        // The nickname is being reserved for someone else.
                        let _ =
                            self.set_role(ctx, Actor::Room, nick, None, Some("This nickname is reserved"));
                    }
                    data.reserved_nickname = Some(nick.clone());
                }
                match Affiliation::parse(affiliation) {
                    None => Err(StanzaError::not_acceptable()),
                    Some(a) => self.set_affiliation(
                        ctx,
                        Actor::User(&actor_jid),
                        jid,
                        a,
                        reason.as_deref(),
                        DataChange::Set(data),
                    ),
                }
            }
            (None, _, Some(role), Some(nick)) => match parse_role(role) {
                None => Err(StanzaError::not_acceptable()),
                Some(r) => self.set_role(ctx, Actor::User(&actor_jid), nick, r, reason.as_deref()),
            },
            _ => Err(StanzaError::bad_request()),
        }
    }

    /// `<iq type='get'>`: the list of one affiliation, or of the occupants with one role.
    pub fn handle_admin_get(&mut self, ctx: &mut Ctx, stanza: &Element, query: &Element, actor: &FullJid) {
        let actor_affiliation = self.affiliation(ctx, &actor.to_bare());
        let Some(item) = query.children().next() else {
            return ctx.error(stanza, StanzaError::bad_request(), None);
        };
        let wanted_affiliation = item.attr("affiliation").and_then(Affiliation::parse);
        let wanted_role = item.attr("role").and_then(Role::parse);
        let mut list = el("query", NS_MUC_ADMIN);
        match (wanted_affiliation, item.attr("role"), wanted_role, item.attr("affiliation")) {
            (Some(wanted), None, _, _) => {
                let may = (actor_affiliation >= Affiliation::Admin && actor_affiliation >= wanted)
                    // Stock asks the room's method here (a module may replace it); its
                    // members-only admission and invitations read the setting itself.
                    || (ctx.facts.patched_members_only(&self.jid).unwrap_or(self.settings.members_only)
                        && self.settings.whois == super::settings::Whois::Anyone
                        && actor_affiliation >= Affiliation::Member);
                if !may {
                    return ctx.error(stanza, StanzaError::forbidden(), None);
                }
                for (jid, _) in self.affiliations().filter(|(_, a)| *a == wanted) {
                    let data: Option<&AffiliationData> = self.affiliation_data(jid);
                    let mut item = el("item", NS_MUC_ADMIN)
                        .with("affiliation", wanted.as_str())
                        .with("jid", jid.as_str())
                        .with_opt("nick", self.registered_nick(jid));
                    if let Some(reason) = data.and_then(|d| d.reason.as_deref()) {
                        item.append_child(el("reason", NS_MUC_ADMIN).text(reason));
                    }
                    list.append_child(item);
                }
            }
            (None, Some(_), Some(wanted), None) => {
                let role = self
                    .occupant_by_real_jid(actor)
                    .and_then(|o| o.role)
                    .or_else(|| self.default_role(actor_affiliation));
                if role != Some(Role::Moderator) {
                    return ctx.error(stanza, StanzaError::forbidden(), None);
                }
                for occupant in self.occupants().filter(|o| o.role == Some(wanted)) {
                    let affiliation = self.occupant_affiliation(ctx, occupant);
                    for session in occupant.session_jids() {
                        list.append_child(
                            el("item", NS_MUC_ADMIN)
                                .with("affiliation", affiliation.as_str())
                                .with("role", wanted.as_str())
                                .with("jid", session.as_str())
                                .with("nick", occupant.nick_str()),
                        );
                    }
                }
            }
            _ => return ctx.error(stanza, StanzaError::bad_request(), None),
        }
        ctx.send(reply(stanza).child(list), actor.clone().into());
    }
}

/// A role as muc#admin names it; `none` means "no role" (a kick).
fn parse_role(role: &str) -> Option<Option<Role>> {
    Role::parse(role).map(|r| (r != Role::None).then_some(r))
}
