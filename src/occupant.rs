//! An occupant: one nickname in a room, with one or more client sessions behind it.

use crate::affiliation::Role;
use crate::compact::CompactElement;
use crate::xml::{ElementExt, NS_MUC, NS_MUC_USER};
use jid::{BareJid, FullJid};
use minidom::Element;

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub jid: FullJid,
    /// The session's last presence, without MUC payloads, `from` and `to` (known anyway:
    /// the occupant's in-room JID and `jid`).
    presence: CompactElement,
}

impl Session {
    pub fn is_available(&self) -> bool {
        self.presence.attr("type").is_none()
    }

    /// The session's last presence, from `nick` (its in-room JID) to the session.
    pub fn presence(&self, nick: &FullJid) -> Element {
        let mut presence = self.presence.to_element();
        presence.set("from", nick.as_str());
        presence.set("to", self.jid.as_str());
        presence
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
    pub sessions: Vec<Session>,
    pub primary: Option<FullJid>,
}

impl Occupant {
    pub fn new(bare_jid: BareJid, nick: FullJid, role: Option<Role>) -> Self {
        Occupant { nick, bare_jid, role, sessions: Vec::new(), primary: None }
    }

    pub fn nick_str(&self) -> &str {
        self.nick.resource().as_str()
    }

    pub fn role_or_none(&self) -> Role {
        self.role.unwrap_or(Role::None)
    }

    pub fn session(&self, jid: &FullJid) -> Option<&Session> {
        self.sessions.iter().find(|s| &s.jid == jid)
    }

    /// The presence of `jid`'s session, or of the primary session.
    pub fn presence(&self, jid: Option<&FullJid>) -> Option<Element> {
        let jid = jid.or(self.primary.as_ref())?;
        self.session(jid).map(|s| s.presence(&self.nick))
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
        let pr = CompactElement::new(&pr);
        match self.sessions.iter_mut().find(|s| &s.jid == real_jid) {
            Some(s) => s.presence = pr,
            None => self.sessions.push(Session { jid: real_jid.clone(), presence: pr }),
        }
        if self.primary.is_none() || (unavailable && self.primary.as_ref() == Some(real_jid)) {
            // An unavailable session stays primary only when no other is left.
            self.primary = Some(self.choose_new_primary().unwrap_or_else(|| real_jid.clone()));
        }
    }

    pub fn remove_session(&mut self, real_jid: &FullJid) {
        self.sessions.retain(|s| &s.jid != real_jid);
        if self.primary.as_ref() == Some(real_jid) {
            self.primary = self.choose_new_primary();
        }
    }

    fn choose_new_primary(&self) -> Option<FullJid> {
        self.sessions.iter().find(|s| s.is_available()).map(|s| s.jid.clone())
    }

    /// Drops departed sessions (keeping the primary's last word), as a saved copy should.
    pub fn prune_departed(&mut self) {
        let primary = self.primary.clone();
        self.sessions.retain(|s| s.is_available() || Some(&s.jid) == primary.as_ref());
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
