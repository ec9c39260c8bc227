//! What the core cannot know by itself and asks its host for.

use crate::hooks::{Answer, Hook};
use jid::BareJid;

/// The host server's side of a stanza's handling: who is a service admin, and what its
/// modules listen to. (Storage and the clock are [`crate::protocol::Facts`].)
pub trait Env {
    /// Whether `jid` is an administrator of this service (as the host server defines it).
    fn is_service_admin(&self, jid: &BareJid) -> bool;

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
}

/// An environment with a fixed admin list and no modules, for tests and simple hosts.
#[derive(Debug, Default, Clone)]
pub struct FixedEnv {
    pub admins: Vec<BareJid>,
}

impl Env for FixedEnv {
    fn is_service_admin(&self, jid: &BareJid) -> bool {
        self.admins.iter().any(|a| a == jid)
    }
}
