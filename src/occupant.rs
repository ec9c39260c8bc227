//! An occupant: one nickname in a room, with one or more client sessions behind it.

use crate::affiliation::Role;
use crate::compact::CompactPresence;
use crate::xml::{el, ElementExt, NS_MUC, NS_MUC_USER, NS_OCCUPANT_ID};
use jid::{BareJid, FullJid};
use minidom::{Element, Node};

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub jid: FullJid,
    /// The session's last presence, without MUC payloads, `from` and `to` (known anyway:
    /// the occupant's in-room JID and `jid`).
    presence: CompactPresence,
    /// The presence ended in the occupant's `<occupant-id/>`, which the occupant keeps
    /// once for all its sessions (a quarter of a small room's memory otherwise).
    occupant_id: bool,
}

impl Session {
    pub fn is_available(&self) -> bool {
        self.presence.attr("type").is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Occupant {
    /// The in-room JID, room@service/nick.
    pub nick: FullJid,
    pub bare_jid: BareJid,
    /// `None` once the occupant has left (or been removed).
    pub role: Option<Role>,
    /// In join order; the primary session is the one whose presence others see.
    sessions: Vec<Session>,
    /// Position of the primary session in `sessions`.
    primary: Option<usize>,
    /// The XEP-0421 id the sessions' presences carry, as bytes.
    occupant_id: Option<[u8; 32]>,
    /// Whether the user is a service admin, as the host said when they joined (`None`:
    /// not asked, as for occupants of a room brought back from storage).
    pub service_admin: Option<bool>,
}

impl Occupant {
    pub fn new(bare_jid: BareJid, nick: FullJid, role: Option<Role>) -> Self {
        Occupant {
            nick,
            bare_jid,
            role,
            sessions: Vec::new(),
            primary: None,
            occupant_id: None,
            service_admin: None,
        }
    }

    pub fn nick_str(&self) -> &str {
        self.nick.resource().as_str()
    }

    pub fn role_or_none(&self) -> Role {
        self.role.unwrap_or(Role::None)
    }

    /// In join order.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    pub fn session(&self, jid: &FullJid) -> Option<&Session> {
        self.sessions.iter().find(|s| &s.jid == jid)
    }

    /// The real JID of the session whose presence others see.
    pub fn primary(&self) -> Option<&FullJid> {
        self.primary.map(|at| &self.sessions[at].jid)
    }

    /// Makes `jid`'s session the primary one, if the occupant has it.
    pub fn set_primary(&mut self, jid: &FullJid) {
        if let Some(at) = self.sessions.iter().position(|s| &s.jid == jid) {
            self.primary = Some(at);
        }
    }

    /// The presence of `jid`'s session, or of the primary session.
    pub fn presence(&self, jid: Option<&FullJid>) -> Option<Element> {
        let session = match jid {
            Some(jid) => self.session(jid)?,
            None => &self.sessions[self.primary?],
        };
        Some(self.session_presence(session))
    }

    /// A session's last presence, from the occupant's in-room JID to the session.
    pub fn session_presence(&self, session: &Session) -> Element {
        let mut presence = session.presence.to_element();
        presence.set("from", self.nick.as_str());
        presence.set("to", session.jid.as_str());
        if let Some(id) = self.occupant_id.filter(|_| session.occupant_id) {
            presence.append_child(
                el("occupant-id", NS_OCCUPANT_ID).with("id", crate::id::encode_occupant_id(&id)),
            );
        }
        presence
    }

    pub fn session_jids(&self) -> impl Iterator<Item = &FullJid> {
        self.sessions.iter().map(|s| &s.jid)
    }

    /// Records a session's presence (stripped of MUC payloads) and picks the primary.
    pub fn set_session(&mut self, real_jid: &FullJid, presence: Element) {
        let mut pr = strip_muc_payloads(presence);
        pr.unset("from");
        pr.unset("to");
        let unavailable = pr.attr("type") == Some("unavailable");
        let occupant_id = self.take_occupant_id(&mut pr);
        let pr = CompactPresence::new(&pr);
        let at = match self.sessions.iter().position(|s| &s.jid == real_jid) {
            Some(at) => {
                self.sessions[at].presence = pr;
                self.sessions[at].occupant_id = occupant_id;
                at
            }
            None => {
                // Most occupants have one session: no spare slots.
                crate::ordered_map::push_sparingly(
                    &mut self.sessions,
                    Session { jid: real_jid.clone(), presence: pr, occupant_id },
                );
                self.sessions.len() - 1
            }
        };
        if self.primary.is_none() || (unavailable && self.primary == Some(at)) {
            // An unavailable session stays primary only when no other is left.
            self.primary = Some(self.choose_new_primary().unwrap_or(at));
        }
    }

    /// Takes a trailing `<occupant-id/>` off `presence` when it is the occupant's (the
    /// first one seen becomes the occupant's): says whether it did.
    fn take_occupant_id(&mut self, presence: &mut Element) -> bool {
        let Some(Node::Element(last)) = presence.nodes().last() else { return false };
        if !last.is("occupant-id", NS_OCCUPANT_ID)
            || last.attrs().iter().count() != 1
            || last.nodes().next().is_some()
            || presence.children().filter(|c| c.is("occupant-id", NS_OCCUPANT_ID)).count() != 1
        {
            return false;
        }
        let Some(id) = last.attr("id").and_then(crate::id::decode_occupant_id) else { return false };
        if *self.occupant_id.get_or_insert(id) != id {
            return false;
        }
        presence.remove_child("occupant-id", NS_OCCUPANT_ID);
        true
    }

    pub fn remove_session(&mut self, real_jid: &FullJid) {
        let Some(at) = self.sessions.iter().position(|s| &s.jid == real_jid) else { return };
        self.sessions.remove(at);
        self.primary = match self.primary {
            Some(p) if p == at => self.choose_new_primary(),
            Some(p) if p > at => Some(p - 1),
            p => p,
        };
    }

    fn choose_new_primary(&self) -> Option<usize> {
        self.sessions.iter().position(Session::is_available)
    }

    /// Drops departed sessions (keeping the primary's last word), as a saved copy should.
    pub fn prune_departed(&mut self) {
        let primary = self.primary;
        let (mut at, mut kept) = (0, 0);
        self.primary = None;
        self.sessions.retain(|s| {
            let is_primary = primary == Some(at);
            at += 1;
            let keep = s.is_available() || is_primary;
            if keep {
                if is_primary {
                    self.primary = Some(kept);
                }
                kept += 1;
            }
            keep
        });
    }

    /// What is told of an occupant that left: its nick, its user and the real JID others
    /// last saw (taken, not copied: a leave costs no allocation more).
    pub fn into_departure(mut self) -> (FullJid, BareJid, Option<FullJid>) {
        let primary = self.primary.map(|at| self.sessions.swap_remove(at).jid);
        (self.nick, self.bare_jid, primary)
    }

    pub fn has_live_session(&self) -> bool {
        self.sessions.iter().any(Session::is_available)
    }
}

/// A copy of `stanza` without `<x/>` payloads of the MUC namespaces, which the room
/// itself adds to what it sends.
pub fn filter_muc_payloads(stanza: &Element) -> Element {
    strip_muc_payloads(stanza.clone())
}

/// `stanza` without its MUC `<x/>` payloads.
pub fn strip_muc_payloads(mut copy: Element) -> Element {
    let keep: Vec<minidom::Node> = copy
        .take_nodes()
        .into_iter()
        .filter(|node| match node {
            minidom::Node::Element(e) => e.ns() != NS_MUC && e.ns() != NS_MUC_USER,
            minidom::Node::Text(_) => true,
        })
        .collect();
    for node in keep {
        copy.append_node(node);
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::NS_CLIENT;

    fn presence(ids: &[&str]) -> Element {
        let mut p = el("presence", NS_CLIENT).child(el("show", NS_CLIENT).text("away"));
        for id in ids {
            p.append_child(el("occupant-id", NS_OCCUPANT_ID).with("id", *id));
        }
        p
    }

    /// Each session's presence comes back as it was stored, whether or not its
    /// occupant-id could be kept once on the occupant.
    #[test]
    fn presences_keep_their_occupant_ids() {
        let nick: FullJid = "room@muc.example.org/nick".parse().unwrap();
        let mut o = Occupant::new("u@example.org".parse().unwrap(), nick.clone(), Some(Role::Participant));
        let id = crate::id::occupant_id("u@example.org", "salt");
        let other = crate::id::occupant_id("v@example.org", "salt");
        let cases: [(&str, Vec<&str>); 5] = [
            ("u@example.org/a", vec![&id]),
            ("u@example.org/b", vec![&other]),
            ("u@example.org/c", vec![&id, &id]),
            ("u@example.org/d", vec!["not-an-id"]),
            ("u@example.org/e", vec![]),
        ];
        for (jid, ids) in &cases {
            o.set_session(&jid.parse().unwrap(), presence(ids));
        }
        assert!(o.sessions[0].occupant_id && !o.sessions[1].occupant_id && !o.sessions[2].occupant_id);
        for (jid, ids) in &cases {
            let jid: FullJid = jid.parse().unwrap();
            let expected = presence(ids).with("from", nick.as_str()).with("to", jid.as_str());
            assert_eq!(o.presence(Some(&jid)).unwrap(), expected, "{jid}");
        }
    }

    #[test]
    fn primary_follows_removals() {
        let mut o = Occupant::new(
            "u@example.org".parse().unwrap(),
            "room@muc.example.org/nick".parse().unwrap(),
            Some(Role::Participant),
        );
        let [a, b, c]: [FullJid; 3] =
            ["u@example.org/a", "u@example.org/b", "u@example.org/c"].map(|j| j.parse().unwrap());
        for j in [&a, &b, &c] {
            o.set_session(j, el("presence", NS_CLIENT));
        }
        o.set_primary(&c);
        o.remove_session(&a);
        assert_eq!(o.primary(), Some(&c));
        o.set_session(&c, el("presence", NS_CLIENT).with("type", "unavailable"));
        assert_eq!(o.primary(), Some(&b));
        o.set_primary(&c);
        o.prune_departed();
        assert_eq!(o.primary(), Some(&c), "the primary's last word stays");
        assert_eq!(o.sessions.len(), 2);
        o.remove_session(&c);
        assert_eq!(o.primary(), Some(&b));
        let (nick, user, real_jid) = o.into_departure();
        assert_eq!((nick.as_str(), user.as_str()), ("room@muc.example.org/nick", "u@example.org"));
        assert_eq!(real_jid, Some(b), "the session others last saw");
    }
}
