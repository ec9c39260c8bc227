//! The test host of the in-process tier: muc_rs's core (`MucHost`) with what a server gives
//! it — options, a clock, the service admins, room storage — and nothing else: no modules
//! listen at its extension points.
//!
//! Every call into the core is in this file, behind the small API of [`CoreHost`], so that a
//! change of the core's host protocol is met here alone. The protocol itself is driven by
//! the core's own simplest host, [`MemoryHost`]: storage questions answered from memory,
//! stores written there and confirmed.

use jid::Jid;
use minidom::Element;
use muc_rs::config::{OptionKind, OPTIONS};
use muc_rs::memory_host::MemoryHost;
use muc_rs::{HostConfig, LogLevel, MucHost, OptionValue};

use crate::prosody::{Version, MUC_DOMAIN};
use crate::xml;

/// Where the host's clock starts (any fixed time will do: the scripts' timestamps are
/// `{scansion:any}` or relative).
const START_TIME: i64 = 1_700_000_000;

pub struct CoreHost {
    muc: MucHost,
    /// Room records in memory (as Prosody's `storage = "memory"` keeps them), a clock that
    /// moves only when told, and the service admins; no module listens at any extension
    /// point.
    storage: MemoryHost,
    /// Error-level log lines of the core: on a real server they fail the run.
    errors: Vec<String>,
}

impl CoreHost {
    /// The MUC service on [`MUC_DOMAIN`] as `version` of Prosody configures it, with the
    /// options of `component_config` (Prosody config lines such as
    /// `muc_room_locking = false`; a later line overrides an earlier one). `Err` says why
    /// the config is not one this host can give the core: a module to load, an option that
    /// is not the core's.
    pub fn new(version: Version, component_config: &[String], admins: &[&str]) -> Result<CoreHost, String> {
        let options = component_config.iter().map(|line| parse_option(line)).collect::<Result<_, _>>()?;
        let server_version = match version {
            Version::V0_12 => (0, 12),
            Version::V13 => (13, 0),
        };
        let (config, invalid) = HostConfig::from_options(server_version, &options);
        if !invalid.is_empty() {
            return Err(format!("the core refuses the value of {}", invalid.join(", ")));
        }
        let muc = MucHost::new(MUC_DOMAIN, config)?;
        let admins = admins
            .iter()
            .map(|a| a.parse().map_err(|e| format!("admin {a:?}: {e}")))
            .collect::<Result<_, String>>()?;
        Ok(CoreHost { muc, storage: MemoryHost { admins, ..MemoryHost::at(START_TIME) }, errors: Vec::new() })
    }

    /// Hands the core one stanza addressed to the service (its `from` already stamped);
    /// returns what it delivers, one stanza per recipient, in order.
    pub fn stanza(&mut self, stanza: Element) -> Vec<(Jid, Element)> {
        let outcome = self.storage.handle(&mut self.muc, stanza);
        for (level, line) in outcome.log {
            if level == LogLevel::Error {
                self.errors.push(line);
            }
        }
        let mut out = Vec::new();
        for delivery in outcome.deliveries {
            for to in delivery.to {
                let mut stanza = delivery.stanza.clone();
                xml::set_attr(&mut stanza, "to", to.to_string());
                out.push((to, stanza));
            }
        }
        out
    }

    pub fn advance_clock(&mut self, seconds: i64) {
        self.storage.now += seconds;
    }

    /// The core's error-level log lines so far.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }
}

/// One component config line, `name = value`, as an option of the core.
fn parse_option(line: &str) -> Result<(String, OptionValue), String> {
    let Some((name, value)) = line.split_once('=') else {
        return Err(format!("component config {line:?} is not an option (a module's section?)"));
    };
    let (name, value) = (name.trim(), value.trim());
    if name == "modules_enabled" {
        return Err(format!("needs Prosody modules: {value}"));
    }
    let Some(spec) = OPTIONS.iter().find(|o| o.name == name) else {
        return Err(format!("option {name} is not the core's"));
    };
    let parsed = match (spec.kind, value) {
        (OptionKind::Boolean | OptionKind::Any, "true") => Some(OptionValue::Bool(true)),
        (OptionKind::Boolean | OptionKind::Any, "false") => Some(OptionValue::Bool(false)),
        (OptionKind::Integer | OptionKind::Period, n) => n.parse().ok().map(OptionValue::Int),
        (OptionKind::String | OptionKind::Any, s) => s
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .filter(|s| !s.contains(['"', '\\']))
            .map(|s| OptionValue::Str(s.to_owned())),
        _ => None,
    };
    parsed.map(|v| (name.to_owned(), v)).ok_or_else(|| format!("cannot read {name} = {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_the_core_knows_are_read_and_others_refused() {
        let lines = |ls: &[&str]| ls.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        let ok = lines(&[
            "muc_room_lock_timeout = 2",
            "restrict_room_creation = \"local\"",
            "muc_tombstones = false",
        ]);
        assert!(CoreHost::new(Version::V13, &ok, &[]).is_ok());
        let modules = CoreHost::new(Version::V13, &lines(&["modules_enabled = { \"muc_mam\" }"]), &[]);
        assert!(modules.err().unwrap().contains("needs Prosody modules"));
        let foreign = CoreHost::new(Version::V13, &lines(&["pastebin_threshold = 110"]), &[]);
        assert!(foreign.err().unwrap().contains("not the core's"));
        let section =
            CoreHost::new(Version::V13, &lines(&["Component \"pubsub.localhost\" \"pubsub\""]), &[]);
        assert!(section.is_err());
        let bad = CoreHost::new(Version::V13, &lines(&["muc_room_locking = \"no\""]), &[]);
        assert!(bad.err().unwrap().contains("muc_room_locking"));
    }
}
