//! What the core cannot know by itself and asks its host for.

use crate::hooks::{Answer, Hook};
use crate::persist::Data;
use jid::BareJid;

/// A room's records in the host's storage (see [`crate::persist`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRoom {
    pub config: Data,
    pub state: Option<Data>,
}

/// What a stanza's handling reads from storage, for a host that cannot read it during the
/// call (ejabberd's NIF): it supplies these records first ([`crate::MucHost::storage_needed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageNeed {
    /// The records of a room that is not live.
    Room(BareJid),
    /// Every stored room's records (the service's room list).
    AllRooms,
}

/// The host server's side of a stanza's handling: time and who is a service admin.
pub trait Env {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// Whether `jid` is an administrator of this service (as the host server defines it).
    fn is_service_admin(&self, jid: &BareJid) -> bool;

    /// The stored records of a room, if it has any. An error means storage failed.
    fn load_room(&self, _room: &BareJid) -> Result<Option<StoredRoom>, String> {
        Ok(None)
    }
    /// Writes a room's records, or deletes them (`None`), before any reply goes out.
    fn store_room(&self, _room: &BareJid, _record: Option<&StoredRoom>) -> Result<(), String> {
        Ok(())
    }
    /// Whether the host has anyone listening at an extension point (see [`crate::hooks`]).
    fn listens(&self, _hook: Hook) -> bool {
        false
    }
    /// The host's answer to a question the core asked about the stanza being handled.
    fn answer(&self, _hook: Hook) -> Option<Answer> {
        None
    }
    /// The hash of a room's avatar (the PHOTO of the vCard the host keeps for it).
    fn avatar_hash(&self, _room: &BareJid) -> Option<String> {
        None
    }
    /// The host's own rule on who may create rooms (ejabberd's `access_create`), which
    /// then replaces `restrict_room_creation`; `None`: the host has no such rule.
    fn may_create_room(&self, _creator: &BareJid) -> Option<bool> {
        None
    }
    /// Public rooms live elsewhere in the service (on a cluster's other nodes), as
    /// (JID, name), for the service's room list.
    fn public_rooms_elsewhere(&self) -> Vec<(String, Option<String>)> {
        Vec::new()
    }
    /// Every room with stored records.
    fn stored_rooms(&self) -> Result<Vec<BareJid>, String> {
        Ok(Vec::new())
    }
}

/// An environment with a fixed clock and a fixed admin list, for tests and simple hosts.
#[derive(Debug, Default, Clone)]
pub struct FixedEnv {
    pub now: i64,
    pub admins: Vec<BareJid>,
}

impl Env for FixedEnv {
    fn now(&self) -> i64 {
        self.now
    }
    fn is_service_admin(&self, jid: &BareJid) -> bool {
        self.admins.iter().any(|a| a == jid)
    }
}
