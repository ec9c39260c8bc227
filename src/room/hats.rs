//! Hats (XEP-0317), as Prosody 13's MUC shows them: the active hats kept in a user's
//! affiliation data (`hats = { [uri] = { active, title } }`, which modules such as the
//! community hats modules manage through the room API) are added to each presence of
//! the user's occupant; hats a client claims itself are removed.

use super::{Ctx, Room};
use crate::data::{Data, Key};
use crate::xml::{el, ElementExt};
use jid::BareJid;
use minidom::Element;

pub const NS_HATS: &str = "urn:xmpp:hats:0";
const NS_HATS_LEGACY: &str = "xmpp:prosody.im/protocol/hats:1";

impl Room {
    /// Adds `bare_jid`'s active hats to a presence of its occupant.
    pub fn add_hats(&self, ctx: &Ctx, presence: &mut Element, bare_jid: &BareJid) {
        if !ctx.config.hats {
            return;
        }
        let Some(hats) = self.affiliation_data(bare_jid).and_then(|d| d.extra.get(&Key::from("hats"))) else {
            return;
        };
        let Some(hats) = hats.table() else { return };
        // In a stable order (stock's follows Lua's table order).
        let active: Vec<(&str, Option<&str>)> = hats
            .iter()
            .filter_map(|(uri, hat)| {
                let Key::Str(uri) = uri else { return None };
                let hat = hat.table()?;
                hat.get(&Key::from("active")).is_some_and(Data::truthy).then_some(())?;
                Some((uri.as_str(), hat.get(&Key::from("title")).and_then(Data::str)))
            })
            .collect();
        if active.is_empty() {
            return;
        }
        let namespaces: &[&str] =
            if ctx.config.hats_compat { &[NS_HATS, NS_HATS_LEGACY] } else { &[NS_HATS] };
        for ns in namespaces {
            let mut list = el("hats", ns);
            for (uri, title) in &active {
                list.append_child(el("hat", ns).with("uri", *uri).with_opt("title", *title));
            }
            presence.append_child(list);
        }
    }
}

/// A client's presence without the hats it claims (only the room gives hats).
pub fn strip_claimed_hats(presence: &mut Element) {
    if presence.has_child("hats", NS_HATS) {
        let kept: Vec<minidom::Node> = presence
            .take_nodes()
            .into_iter()
            .filter(|node| !matches!(node, minidom::Node::Element(e) if e.ns() == NS_HATS))
            .collect();
        for node in kept {
            presence.append_node(node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostConfig;
    use crate::data::Table;
    use crate::outcome::Outcome;
    use crate::room::settings::RoomSettings;
    use crate::room::{AffiliationData, DataChange};

    fn hat(active: bool, title: &str) -> Data {
        let mut t = Table::new();
        t.insert(Key::from("active"), Data::Bool(active));
        t.insert(Key::from("title"), Data::Str(title.into()));
        Data::Table(t)
    }

    fn presence_with_hats(version: (u32, u32), compat: bool) -> Element {
        let mut config = HostConfig::for_version(version);
        config.hats_compat = compat;
        let mut out = Outcome::default();
        let host: BareJid = "conference.localhost".parse().unwrap();
        let juliet: BareJid = "juliet@localhost".parse().unwrap();
        let mut facts = crate::protocol::Facts::new(0, 7);
        facts.supply_service_admin(juliet.clone(), false);
        let mut ctx = Ctx::new(&config, &facts, &mut out, &host);
        let mut room = Room::new("room@conference.localhost".parse().unwrap(), RoomSettings::default());
        let mut hats = Table::new();
        hats.insert(Key::from("urn:example:nurse"), hat(true, "Nurse"));
        hats.insert(Key::from("urn:example:off"), hat(false, "Off"));
        let mut data = AffiliationData::default();
        data.extra.insert(Key::from("hats"), Data::Table(hats));
        let member = crate::affiliation::Affiliation::Member;
        room.set_affiliation(
            &mut ctx,
            crate::room::Actor::Room,
            &juliet,
            member,
            None,
            DataChange::Set(data),
        )
        .unwrap();
        let mut presence = el("presence", crate::xml::NS_CLIENT);
        room.add_hats(&ctx, &mut presence, &juliet);
        presence
    }

    #[test]
    fn active_hats_only_on_13_and_in_both_namespaces_with_compat() {
        let shown = presence_with_hats((13, 0), false);
        let hats = shown.get_child("hats", NS_HATS).expect("hats on 13");
        let uris: Vec<_> = hats.children().filter_map(|h| h.attr("uri")).collect();
        assert_eq!(uris, ["urn:example:nurse"]);
        assert!(!shown.has_child("hats", NS_HATS_LEGACY));
        assert!(presence_with_hats((13, 0), true).has_child("hats", NS_HATS_LEGACY));
        assert!(presence_with_hats((0, 12), false).children().next().is_none(), "0.12 has no hats");
    }

    #[test]
    fn claimed_hats_are_removed() {
        let mut presence: Element = "<presence xmlns='jabber:client'><show>away</show><hats xmlns='urn:xmpp:hats:0'><hat uri='x'/></hats></presence>"
            .parse()
            .unwrap();
        strip_claimed_hats(&mut presence);
        assert!(!presence.has_child("hats", NS_HATS));
        assert!(presence.has_child("show", crate::xml::NS_CLIENT));
    }
}
