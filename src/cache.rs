//! The live rooms, most recently used first out of eviction: as stock's room cache, an
//! idle room leaves memory (stored with its occupants) when the cache is full, and comes
//! back from storage when a stanza asks for it.

use crate::room::Room;
use hashbrown::HashTable;
use jid::BareJid;
use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;

pub struct RoomCache {
    /// Found by the hash of the room's JID, which only the room itself keeps (a copy in a
    /// map key and another in the recency list were a tenth of a small room's memory).
    rooms: HashTable<Cached>,
    hasher: RandomState,
    /// Last use → hash of the room's JID, oldest first.
    recency: BTreeMap<u64, u64>,
    clock: u64,
    capacity: usize,
}

struct Cached {
    /// Boxed: a `Room` is large, and the table keeps spare slots.
    room: Box<Room>,
    used: u64,
}

/// Why a room could not be added: `muc_max_rooms` reached (no room is evicted for a new
/// one).
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Limit,
}

impl RoomCache {
    pub fn new(capacity: usize) -> Self {
        RoomCache {
            rooms: HashTable::new(),
            hasher: RandomState::new(),
            recency: BTreeMap::new(),
            clock: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// A new size: rooms above it are put away as new ones come (see [`RoomCache::reserve`]).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    fn hash(&self, jid: &BareJid) -> u64 {
        self.hasher.hash_one(jid)
    }

    pub fn contains(&self, jid: &BareJid) -> bool {
        self.get(jid).is_some()
    }

    pub fn get(&self, jid: &BareJid) -> Option<&Room> {
        self.rooms.find(self.hash(jid), |c| c.room.jid == *jid).map(|c| &*c.room)
    }

    /// The room, marked as just used.
    pub fn get_mut(&mut self, jid: &BareJid) -> Option<&mut Room> {
        let hash = self.hash(jid);
        let cached = self.rooms.find_mut(hash, |c| c.room.jid == *jid)?;
        self.recency.remove(&cached.used);
        self.clock += 1;
        cached.used = self.clock;
        self.recency.insert(self.clock, hash);
        Some(&mut cached.room)
    }

    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.iter().map(|c| &*c.room)
    }

    /// Every room, mutably, not marked as used.
    pub fn rooms_mut(&mut self) -> impl Iterator<Item = &mut Room> {
        self.rooms.iter_mut().map(|c| &mut *c.room)
    }

    /// Makes space for one more room, evicting the least recently used rooms if the cache
    /// is full (unless `limit` makes its size a hard limit on rooms). Returns the rooms
    /// evicted, to be put away.
    pub fn reserve(&mut self, limit: bool) -> Result<Vec<Room>, Full> {
        let mut evicted = Vec::new();
        while self.rooms.len() >= self.capacity {
            if limit {
                return Err(Full::Limit);
            }
            let Some((used, hash)) = self.recency.pop_first() else { break };
            let Ok(entry) = self.rooms.find_entry(hash, |c| c.used == used) else { continue };
            let (victim, _) = entry.remove();
            evicted.push(*victim.room);
        }
        Ok(evicted)
    }

    /// Adds (or replaces) a room, as just used. Call [`RoomCache::reserve`] first.
    pub fn insert(&mut self, room: Room) {
        let hash = self.hash(&room.jid);
        self.remove_hashed(hash, &room.jid);
        self.clock += 1;
        let cached = Cached { room: Box::new(room), used: self.clock };
        self.rooms.insert_unique(hash, cached, |c| self.hasher.hash_one(&c.room.jid));
        self.recency.insert(self.clock, hash);
    }

    pub fn remove(&mut self, jid: &BareJid) -> Option<Room> {
        let hash = self.hash(jid);
        self.remove_hashed(hash, jid)
    }

    fn remove_hashed(&mut self, hash: u64, jid: &BareJid) -> Option<Room> {
        let (cached, _) = self.rooms.find_entry(hash, |c| c.room.jid == *jid).ok()?.remove();
        self.recency.remove(&cached.used);
        Some(*cached.room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::settings::RoomSettings;

    fn room(n: u32) -> (BareJid, Room) {
        let jid: BareJid = format!("r{n}@muc.x").parse().unwrap();
        (jid.clone(), Room::new(jid, RoomSettings::default()))
    }

    fn insert(cache: &mut RoomCache, n: u32) {
        cache.insert(room(n).1);
    }

    #[test]
    fn the_least_recently_used_room_is_evicted() {
        let mut cache = RoomCache::new(2);
        for n in 0..2 {
            assert!(cache.reserve(false).unwrap().is_empty());
            insert(&mut cache, n);
        }
        cache.get_mut(&room(0).0); // r0 used: r1 is now the oldest
        let evicted = cache.reserve(false).unwrap();
        insert(&mut cache, 2);
        assert_eq!(evicted.iter().map(|r| r.jid.to_string()).collect::<Vec<_>>(), vec!["r1@muc.x"]);
        assert!(cache.contains(&room(0).0) && cache.contains(&room(2).0));
    }

    #[test]
    fn a_hard_limit_refuses_the_new_room() {
        let mut cache = RoomCache::new(1);
        insert(&mut cache, 0);
        assert_eq!(cache.reserve(true).map(|e| e.len()), Err(Full::Limit));
        assert!(cache.contains(&room(0).0));
        assert_eq!(cache.len(), 1);
    }
}
