//! What the core cannot know by itself and asks its host for.

use jid::BareJid;

/// The host server's side of a stanza's handling: time and who is a service admin.
pub trait Env {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// Whether `jid` is an administrator of this service (as the host server defines it).
    fn is_service_admin(&self, jid: &BareJid) -> bool;
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
