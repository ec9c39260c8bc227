//! What the core cannot know by itself and asks its host for.

use crate::hooks::Hook;
use jid::BareJid;

/// What the core still asks its host synchronously: who is a service admin, and whether its
/// modules listen at an extension point. Everything else is [`crate::protocol::Facts`].
pub trait Env {
    /// Whether `jid` is an administrator of this service (as the host server defines it).
    fn is_service_admin(&self, jid: &BareJid) -> bool;

    /// Whether the host has anyone listening at an extension point (see [`crate::hooks`]).
    fn listens(&self, _hook: Hook) -> bool {
        false
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
