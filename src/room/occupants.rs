//! A room's occupants in join order, found by nickname or by the real JID of a live
//! session. Most rooms are small, and there a vector searched in order costs less memory
//! than hash maps (a room's maps were a quarter of its memory); rooms from
//! `INDEXED_FROM` occupants on also keep hash indexes, so lookups stay O(1) in big rooms
//! (the policy of `ordered_map`).

use crate::occupant::Occupant;
use crate::ordered_map::{keeps_index, push_sparingly, INDEXED_FROM};
use jid::FullJid;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Occupants {
    list: Vec<Occupant>,
    index: Option<Box<Index>>,
}

/// Positions in `list`.
#[derive(Debug, Clone, Default)]
struct Index {
    by_nick: HashMap<String, usize>,
    by_session: HashMap<FullJid, usize>,
}

impl Index {
    fn add(&mut self, at: usize, occupant: &Occupant) {
        self.by_nick.insert(occupant.nick_str().to_owned(), at);
        for s in occupant.sessions().iter().filter(|s| s.is_available()) {
            self.by_session.insert(s.jid.clone(), at);
        }
    }

    fn forget_sessions(&mut self, occupant: &Occupant) {
        for jid in occupant.session_jids() {
            self.by_session.remove(jid);
        }
    }
}

impl Occupants {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// In join order.
    pub fn iter(&self) -> impl Iterator<Item = &Occupant> {
        self.list.iter()
    }

    fn position(&self, nick: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.by_nick.get(nick).copied(),
            None => self.list.iter().position(|o| o.nick_str() == nick),
        }
    }

    pub fn get(&self, nick: &str) -> Option<&Occupant> {
        self.position(nick).map(|at| &self.list[at])
    }

    /// The occupant one of whose live (available) sessions is `real_jid`.
    pub fn by_session(&self, real_jid: &FullJid) -> Option<&Occupant> {
        match &self.index {
            Some(index) => index.by_session.get(real_jid).map(|&at| &self.list[at]),
            None => {
                self.list.iter().find(|o| o.sessions().iter().any(|s| &s.jid == real_jid && s.is_available()))
            }
        }
    }

    /// Every live session with the occupant it belongs to.
    pub fn live_sessions(&self) -> impl Iterator<Item = (&FullJid, &Occupant)> {
        self.list
            .iter()
            .flat_map(|o| o.sessions().iter().filter(|s| s.is_available()).map(move |s| (&s.jid, o)))
    }

    /// Stores `occupant` under its nickname: in place of the one there, or last.
    pub fn put(&mut self, occupant: Occupant) {
        match self.position(occupant.nick_str()) {
            Some(at) => {
                if let Some(index) = &mut self.index {
                    index.forget_sessions(&self.list[at]);
                    index.add(at, &occupant);
                }
                self.list[at] = occupant;
            }
            None => {
                push_sparingly(&mut self.list, occupant);
                let at = self.list.len() - 1;
                match &mut self.index {
                    Some(index) => index.add(at, &self.list[at]),
                    None if self.list.len() >= INDEXED_FROM => self.reindex(),
                    None => {}
                }
            }
        }
    }

    /// Sets each occupant's admin status where it is not known yet (nothing indexed
    /// changes).
    pub fn learn_admin_status(&mut self, status: impl Fn(&jid::BareJid) -> Option<bool>) {
        for occupant in self.list.iter_mut().filter(|o| o.service_admin.is_none()) {
            occupant.service_admin = status(&occupant.bare_jid);
        }
    }

    pub fn forget_admin_status(&mut self) {
        self.list.iter_mut().for_each(|occupant| occupant.service_admin = None);
    }

    /// Removes the occupant with this nickname (the others keep their order).
    pub fn remove(&mut self, nick: &str) -> Option<Occupant> {
        let at = self.position(nick)?;
        let occupant = self.list.remove(at);
        if self.index.is_some() {
            self.reindex();
        }
        Some(occupant)
    }

    fn reindex(&mut self) {
        if !keeps_index(self.list.len()) {
            self.index = None;
            return;
        }
        let mut index = Box::<Index>::default();
        for (at, occupant) in self.list.iter().enumerate() {
            index.add(at, occupant);
        }
        self.index = Some(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::affiliation::Role;
    use crate::xml::ElementExt;
    use minidom::Element;

    fn occupant(nick: &str, sessions: &[&str]) -> Occupant {
        let bare = format!("{nick}@example.org").parse().unwrap();
        let mut o = Occupant::new(
            bare,
            format!("room@muc.example.org/{nick}").parse().unwrap(),
            Some(Role::Participant),
        );
        for s in sessions {
            let jid: FullJid = s.parse().unwrap();
            o.set_session(&jid, Element::bare("presence", crate::xml::NS_CLIENT));
        }
        o
    }

    /// The same answers below and above the size where the indexes start.
    #[test]
    fn finds_by_nick_and_session_in_join_order_small_and_big() {
        for n in [3usize, 40] {
            let mut occupants = Occupants::default();
            for i in 0..n {
                occupants.put(occupant(&format!("n{i}"), &[&format!("u{i}@example.org/a")]));
            }
            assert_eq!(occupants.len(), n);
            assert_eq!(occupants.get("n1").unwrap().nick_str(), "n1");
            let jid: FullJid = "u2@example.org/a".parse().unwrap();
            assert_eq!(occupants.by_session(&jid).unwrap().nick_str(), "n2");

            // Replacing keeps the place; the replaced sessions are forgotten.
            occupants.put(occupant("n1", &["v1@example.org/b"]));
            assert_eq!(occupants.iter().nth(1).unwrap().nick_str(), "n1");
            assert!(occupants.by_session(&"u1@example.org/a".parse().unwrap()).is_none());
            assert_eq!(occupants.by_session(&"v1@example.org/b".parse().unwrap()).unwrap().nick_str(), "n1");

            // Removing keeps the others' order and finds them still.
            assert!(occupants.remove("n0").is_some());
            assert!(occupants.remove("n0").is_none());
            assert_eq!(occupants.iter().next().unwrap().nick_str(), "n1");
            assert_eq!(occupants.by_session(&jid).unwrap().nick_str(), "n2");
            assert_eq!(occupants.live_sessions().count(), n - 1);
        }
    }

    #[test]
    fn unavailable_sessions_are_not_found() {
        let mut occupants = Occupants::default();
        let mut o = occupant("n", &["u@example.org/a", "u@example.org/b"]);
        let gone: FullJid = "u@example.org/b".parse().unwrap();
        o.set_session(&gone, Element::bare("presence", crate::xml::NS_CLIENT).with("type", "unavailable"));
        occupants.put(o);
        assert!(occupants.by_session(&gone).is_none());
        assert!(occupants.by_session(&"u@example.org/a".parse().unwrap()).is_some());
    }
}
