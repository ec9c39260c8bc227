//! The live rooms, most recently used first out of eviction: as stock's room cache, an
//! idle room leaves memory (stored with its occupants) when the cache is full, and comes
//! back from storage when a stanza asks for it.

use crate::room::Room;
use jid::BareJid;
use std::collections::{BTreeMap, HashMap};

pub struct RoomCache {
    /// Boxed: a `Room` is large, and the map keeps spare slots.
    rooms: HashMap<BareJid, (Box<Room>, u64)>,
    /// Last use → room, oldest first.
    recency: BTreeMap<u64, BareJid>,
    clock: u64,
    capacity: usize,
}

/// Why a room could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// `muc_max_rooms` reached: no room is evicted for a new one.
    Limit,
    /// The least recently used room could not be put away.
    EvictionFailed,
}

impl RoomCache {
    pub fn new(capacity: usize) -> Self {
        RoomCache { rooms: HashMap::new(), recency: BTreeMap::new(), clock: 0, capacity: capacity.max(1) }
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    pub fn contains(&self, jid: &BareJid) -> bool {
        self.rooms.contains_key(jid)
    }

    pub fn get(&self, jid: &BareJid) -> Option<&Room> {
        self.rooms.get(jid).map(|(r, _)| &**r)
    }

    /// The room, marked as just used.
    pub fn get_mut(&mut self, jid: &BareJid) -> Option<&mut Room> {
        let (room, used) = self.rooms.get_mut(jid)?;
        self.recency.remove(used);
        self.clock += 1;
        *used = self.clock;
        self.recency.insert(self.clock, jid.clone());
        Some(room)
    }

    pub fn rooms(&self) -> impl Iterator<Item = (&BareJid, &Room)> {
        self.rooms.iter().map(|(j, (r, _))| (j, &**r))
    }

    /// Makes space for one more room, evicting the least recently used rooms if the cache
    /// is full (unless `limit` makes its size a hard limit on rooms). `evict` puts a room
    /// away and says whether that worked; a room it could not put away stays.
    pub fn reserve(
        &mut self,
        limit: bool,
        mut evict: impl FnMut(&BareJid, &Room) -> bool,
    ) -> Result<(), Full> {
        while self.rooms.len() >= self.capacity {
            if limit {
                return Err(Full::Limit);
            }
            let Some((_, oldest)) = self.recency.pop_first() else { break };
            let Some((victim, used)) = self.rooms.remove(&oldest) else { continue };
            if !evict(&oldest, &victim) {
                self.recency.insert(used, oldest.clone());
                self.rooms.insert(oldest, (victim, used));
                return Err(Full::EvictionFailed);
            }
        }
        Ok(())
    }

    /// Adds (or replaces) a room, as just used. Call [`RoomCache::reserve`] first.
    pub fn insert(&mut self, jid: BareJid, room: Room) {
        self.clock += 1;
        if let Some((_, old)) = self.rooms.insert(jid.clone(), (Box::new(room), self.clock)) {
            self.recency.remove(&old);
        }
        self.recency.insert(self.clock, jid);
    }

    pub fn remove(&mut self, jid: &BareJid) -> Option<Room> {
        let (room, used) = self.rooms.remove(jid)?;
        self.recency.remove(&used);
        Some(*room)
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

    #[test]
    fn the_least_recently_used_room_is_evicted() {
        let mut cache = RoomCache::new(2);
        let mut evicted = Vec::new();
        for n in 0..2 {
            let (j, r) = room(n);
            cache.reserve(false, |_, _| unreachable!()).unwrap();
            cache.insert(j, r);
        }
        cache.get_mut(&room(0).0); // r0 used: r1 is now the oldest
        cache
            .reserve(false, |j, _| {
                evicted.push(j.to_string());
                true
            })
            .unwrap();
        let (j, r) = room(2);
        cache.insert(j, r);
        assert_eq!(evicted, vec!["r1@muc.x"]);
        assert!(cache.contains(&room(0).0) && cache.contains(&room(2).0));
    }

    #[test]
    fn a_failed_eviction_or_a_hard_limit_refuses_the_new_room() {
        let mut cache = RoomCache::new(1);
        let (j, r) = room(0);
        cache.insert(j, r);
        assert_eq!(cache.reserve(false, |_, _| false), Err(Full::EvictionFailed));
        assert_eq!(cache.reserve(true, |_, _| true), Err(Full::Limit));
        assert!(cache.contains(&room(0).0));
        assert_eq!(cache.len(), 1);
    }
}
