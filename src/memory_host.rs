//! A host that keeps rooms in memory and reads its storage at once: the simplest driver of
//! the protocol ([`crate::protocol`]), for tests, the fuzz target and in-process runs.

use crate::hooks::Hooks;
use crate::outcome::Outcome;
use crate::protocol::{Facts, Question, ReadRooms, StoredRoom};
use crate::MucHost;
use jid::BareJid;
use minidom::Element;
use std::collections::BTreeMap;

/// Storage in memory, a clock, a list of service admins, and a record of what the core
/// asked.
#[derive(Debug, Default, Clone)]
pub struct MemoryHost {
    pub rooms: BTreeMap<BareJid, StoredRoom>,
    pub now: i64,
    /// The service's administrators.
    pub admins: Vec<BareJid>,
    /// The extension points its modules listen at (none: it has no modules).
    pub listening: Hooks,
    /// Makes every write fail (as a full disk would).
    pub fail_writes: bool,
    /// Calls handed in so far (each draws its own entropy).
    pub calls: u64,
    /// The questions it answered (storage, avatars, admins), oldest first.
    pub asked: Vec<Question>,
}

impl ReadRooms for MemoryHost {
    fn load_room(&self, room: &BareJid) -> Result<Option<StoredRoom>, String> {
        Ok(self.rooms.get(room).cloned())
    }
    fn stored_rooms(&self) -> Result<Vec<(BareJid, StoredRoom)>, String> {
        Ok(self.rooms.iter().map(|(jid, record)| (jid.clone(), record.clone())).collect())
    }
}

impl MemoryHost {
    pub fn at(now: i64) -> MemoryHost {
        MemoryHost { now, ..MemoryHost::default() }
    }

    /// Hands `stanza` to `host` until it asks nothing but the modules, then writes its
    /// stores and confirms: the outcome to carry out (which may still ask the modules).
    pub fn handle(&mut self, host: &mut MucHost, stanza: Element) -> Outcome {
        let facts = self.facts();
        self.handle_with(host, stanza, facts)
    }

    /// [`MemoryHost::handle`], starting from `facts` (module answers given, say).
    pub fn handle_with(&mut self, host: &mut MucHost, stanza: Element, facts: Facts) -> Outcome {
        self.drive(host, facts, |host, facts| host.handle(&stanza, facts))
    }

    /// The facts of a new call: its time, its entropy, where its modules listen.
    pub fn facts(&mut self) -> Facts {
        self.calls += 1;
        // Deterministic: a test sees the same ids run after run.
        let mut facts = Facts::new(self.now, crate::id::draw(self.now as u128, self.calls));
        facts.listening = self.listening;
        facts
    }

    /// Makes `call` into the core until it asks nothing but the modules, answering what it
    /// asks, then writes its stores and confirms: the outcome to carry out.
    pub fn drive(
        &mut self,
        host: &mut MucHost,
        mut facts: Facts,
        mut call: impl FnMut(&mut MucHost, &Facts) -> Outcome,
    ) -> Outcome {
        loop {
            let out = call(host, &facts);
            match &out.ask {
                Some(question) if facts.answer_from(question, &*self) => {}
                // It keeps no vCards: no room has an avatar.
                Some(Question::AvatarHash(room)) => facts.supply_avatar_hash(room.clone(), None),
                Some(Question::ServiceAdmins(users)) => {
                    for user in users {
                        facts.supply_service_admin(user.clone(), self.admins.contains(user));
                    }
                }
                _ => return self.write(host, out),
            }
            self.asked.push(out.ask.expect("asked"));
        }
    }

    /// Writes an outcome's stores and confirms them: the outcome to carry out.
    pub fn write(&mut self, host: &mut MucHost, out: Outcome) -> Outcome {
        if out.stores.is_empty() {
            return out;
        }
        let written = if self.fail_writes {
            Err("disk full".to_owned())
        } else {
            for store in out.stores {
                match store.record {
                    Some(record) => self.rooms.insert(store.room, record),
                    None => self.rooms.remove(&store.room),
                };
            }
            Ok(())
        };
        host.confirm(written).outcome
    }
}
