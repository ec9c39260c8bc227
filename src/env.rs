//! What the core cannot know by itself and asks its host for.

use jid::BareJid;

/// What the core still asks its host synchronously: who is a service admin. Everything else
/// is [`crate::protocol::Facts`] (see docs/design/host-protocol.md for the plan).
pub trait Env {
    /// Whether `jid` is an administrator of this service (as the host server defines it).
    fn is_service_admin(&self, jid: &BareJid) -> bool;
}

/// An environment with a fixed admin list, for tests and simple hosts.
#[derive(Debug, Default, Clone)]
pub struct FixedEnv {
    pub admins: Vec<BareJid>,
}

impl Env for FixedEnv {
    fn is_service_admin(&self, jid: &BareJid) -> bool {
        self.admins.iter().any(|a| a == jid)
    }
}
