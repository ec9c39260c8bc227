//! Runs one parsed script in process against muc_rs's core ([`CoreHost`]), with no server:
//! milliseconds per script. Scripts are read and judged exactly as on a real server
//! ([`crate::script`], [`crate::matcher`]); this file plays the server's part around the
//! MUC, as Prosody does it for these scripts:
//! - client sessions (`user@domain/resource`, for any domain but the MUC's), `from`
//!   stamped on what a client sends;
//! - stanzas to the MUC domain go to the core, and what it delivers to the clients' queues;
//! - a session's end sends unavailable presence to every JID it sent directed presence
//!   to (its rooms), as Prosody's mod_presence does;
//! - stanzas to users who have no such session get Prosody's answers (service-unavailable
//!   for iqs and for messages nobody can take, silence for presences).
//!
//! Time stands still but for `receives: nothing`, which on a server waits about a second:
//! here it moves the core's clock on by as much.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use jid::{FullJid, Jid};
use minidom::Element;

use crate::core_host::CoreHost;
use crate::prosody::{indent, Version, ADMIN, MUC_DOMAIN};
use crate::runner::{self, Failure, Outcome, RunOptions, Verdict};
use crate::script::{Action, ActionKind, Script};
use crate::{matcher, xml};

const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Why `script` is not run in process on `version`, if it is not: it says it needs a
/// server, or it asks for Prosody config or modules the core cannot stand in for.
pub fn not_in_tier(script: &Script, version: Version) -> Option<String> {
    if let Some(why) = script.needs_server() {
        return Some(why);
    }
    // Another virtual host is only more clients' domains, which sessions here have anyway.
    if let Some(line) = script.config_lines().iter().find(|l| !l.starts_with("VirtualHost ")) {
        return Some(format!("needs Prosody config: {line}"));
    }
    CoreHost::new(version, &script.component_config_lines(), &[ADMIN]).err()
}

/// Runs `script` against a fresh core configured as `version` of Prosody would configure
/// stock mod_muc (see [`not_in_tier`] for the scripts it cannot run).
pub fn run(script: &Script, version: Version, opts: &RunOptions) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::passed();
    let host = match CoreHost::new(version, &script.component_config_lines(), &[ADMIN]) {
        Ok(host) => host,
        Err(why) => {
            outcome.verdict = Verdict::Error;
            outcome.report = format!("not in this tier: {why}");
            return outcome;
        }
    };
    let mut server = Server {
        script,
        host,
        clock_step: opts.nothing_wait.as_secs_f64().ceil() as i64,
        clients: HashMap::new(),
        captured: HashMap::new(),
        traffic: Vec::new(),
        resources: 0,
    };
    let result =
        script.actions.iter().try_for_each(|action| server.run_action(action).map_err(|f| f.at(action)));
    if let Err(f) = result {
        outcome.verdict = f.verdict;
        outcome.report = f.report;
    }
    let errors = server.host.errors();
    if !errors.is_empty() {
        if outcome.verdict == Verdict::Pass {
            outcome.verdict = Verdict::Fail;
        }
        outcome.report.push_str(&format!("the core logged errors:\n{}\n", indent(&errors.join("\n"))));
    }
    outcome.traffic = server.traffic.join("\n");
    if outcome.verdict != Verdict::Pass && opts.verbose {
        outcome.report.push_str(&format!("Traffic:\n{}\n", indent(&outcome.traffic)));
    }
    outcome.duration = started.elapsed();
    outcome
}

/// A script's client, as the server sees it.
#[derive(Default)]
struct Client {
    /// Bound at connect, kept after a disconnect so that variables still resolve.
    full_jid: Option<FullJid>,
    online: bool,
    /// Sent an undirected available presence: messages to the bare JID reach it.
    available: bool,
    /// Received stanzas not yet read by a `receives:`.
    kept: VecDeque<Element>,
    /// Where it sent directed presence (its occupant JIDs), in order.
    directed: Vec<String>,
}

struct Server<'a> {
    script: &'a Script,
    host: CoreHost,
    /// How far `receives: nothing` moves the clock, in seconds.
    clock_step: i64,
    clients: HashMap<String, Client>,
    /// Values kept by `{scansion:capture:NAME}`, for `${NAME}`.
    captured: HashMap<String, String>,
    traffic: Vec<String>,
    /// Resources handed out to clients that asked for none.
    resources: usize,
}

impl Server<'_> {
    fn run_action(&mut self, action: &Action) -> Result<(), Failure> {
        let name = action.client.as_str();
        match &action.kind {
            ActionKind::Connect => self.connect(name),
            ActionKind::Disconnect => {
                let client = self.online(name)?;
                client.online = false;
                client.available = false;
                client.kept.clear();
                let directed = std::mem::take(&mut client.directed);
                let from = client.full_jid.clone().map(|j| j.to_string()).unwrap_or_default();
                for to in directed {
                    let unavailable = format!(
                        "<presence type='unavailable' from='{}' to='{}'/>",
                        xml::escape(&from),
                        xml::escape(&to)
                    );
                    self.route(parse_stanza(&unavailable))?;
                }
                Ok(())
            }
            ActionKind::Send(elements) => {
                for mut stanza in self.expand_all(elements)? {
                    let client = self.online(name)?;
                    let from = client.full_jid.as_ref().map(|j| j.to_string()).unwrap_or_default();
                    xml::set_attr(&mut stanza, "from", from);
                    track_presence(client, &stanza);
                    self.traffic.push(format!("{name} >> {}", xml::to_string(&stanza)));
                    self.route(stanza)?;
                }
                Ok(())
            }
            ActionKind::Receive(elements) => {
                for expected in self.expand_all(elements)? {
                    let kept = &mut self.online(name)?.kept;
                    let mut misses = Vec::new();
                    let captures = loop {
                        let Some(stanza) = kept.pop_front() else {
                            return Err(Failure::unmatched(&expected, &misses, "nothing else arrived"));
                        };
                        match matcher::check_capturing(&expected, &stanza) {
                            Ok(captures) => break captures,
                            Err(why) => misses.push((stanza, why)),
                        }
                    };
                    self.captured.extend(captures);
                }
                Ok(())
            }
            ActionKind::ReceiveNothing => {
                self.host.advance_clock(self.clock_step);
                let kept = &self.online(name)?.kept;
                match kept.is_empty() {
                    true => Ok(()),
                    false => Err(Failure::unexpected(kept.iter())),
                }
            }
        }
    }

    fn connect(&mut self, name: &str) -> Result<(), Failure> {
        let def = self.script.client(name).ok_or_else(|| Failure::error(format!("no client {name:?}\n")))?;
        let jid: Jid =
            def.jid.parse().map_err(|e| Failure::error(format!("bad jid {:?}: {e}\n", def.jid)))?;
        let resource = match def.resource.clone().or_else(|| jid.resource().map(|r| r.to_string())) {
            Some(resource) => resource,
            None => {
                // The server picks one.
                self.resources += 1;
                format!("scansion{}", self.resources)
            }
        };
        let full_jid = jid
            .to_bare()
            .with_resource_str(&resource)
            .map_err(|e| Failure::error(format!("bad resource {resource:?}: {e}\n")))?;
        let client = self.clients.entry(name.to_owned()).or_default();
        if client.online {
            return Err(Failure::error(format!("{name} is already connected\n")));
        }
        *client = Client { full_jid: Some(full_jid), online: true, ..Client::default() };
        Ok(())
    }

    fn online(&mut self, name: &str) -> Result<&mut Client, Failure> {
        self.clients
            .get_mut(name)
            .filter(|c| c.online)
            .ok_or_else(|| Failure::error(format!("{name} is not connected\n")))
    }

    fn expand_all(&self, elements: &[Element]) -> Result<Vec<Element>, Failure> {
        let full_jid = |name: &str| Some(self.clients.get(name)?.full_jid.as_ref()?.to_string());
        runner::expand_all(elements, &|var| runner::lookup(self.script, &self.captured, &full_jid, var))
    }

    /// Takes a stanza where the server would, and what that makes anyone send on.
    fn route(&mut self, stanza: Element) -> Result<(), Failure> {
        let mut pending = VecDeque::from([stanza]);
        while let Some(stanza) = pending.pop_front() {
            pending.extend(self.deliver(stanza)?);
        }
        Ok(())
    }

    /// Delivers one stanza; returns the stanzas that this sends on (the core's deliveries,
    /// the server's error replies).
    fn deliver(&mut self, stanza: Element) -> Result<Vec<Element>, Failure> {
        let to = match stanza.attr("to").map(str::parse::<Jid>) {
            Some(Ok(to)) if to.domain().as_str() == MUC_DOMAIN => {
                return Ok(self.host.stanza(stanza).into_iter().map(|(_, delivered)| delivered).collect())
            }
            Some(Ok(to)) if to.node().is_some() => to,
            // For the server itself, or another of its services: not the core's behaviour.
            _ => {
                return Err(Failure::error(format!(
                    "this tier has no server to take {}\n",
                    xml::to_string(&stanza)
                )))
            }
        };
        let session =
            self.clients.iter_mut().find(|(_, c)| c.online && to.try_as_full().ok() == c.full_jid.as_ref());
        if let Some((name, client)) = session {
            self.traffic.push(format!("{name} << {}", xml::to_string(&stanza)));
            client.kept.push_back(stanza);
            return Ok(Vec::new());
        }
        Ok(self.deliver_to_user(stanza, &to))
    }

    /// A stanza for a user but not for one of its sessions (its bare JID, or a resource
    /// that is gone): Prosody's mod_message, mod_presence and mod_iq rules.
    fn deliver_to_user(&mut self, stanza: Element, to: &Jid) -> Vec<Element> {
        let kind = stanza.attr("type").unwrap_or("normal");
        match stanza.name() {
            "iq" if matches!(kind, "get" | "set") => vec![service_unavailable(&stanza)],
            "message" if matches!(kind, "chat" | "normal") => {
                let bare = to.to_bare();
                let available: Vec<&mut Client> = self
                    .clients
                    .values_mut()
                    .filter(|c| c.available && c.full_jid.as_ref().is_some_and(|j| j.to_bare() == bare))
                    .collect();
                if available.is_empty() {
                    // No session takes it and no offline store (mod_offline is not loaded).
                    return vec![service_unavailable(&stanza)];
                }
                for client in available {
                    client.kept.push_back(stanza.clone());
                }
                Vec::new()
            }
            "message" if kind == "groupchat" => vec![service_unavailable(&stanza)],
            // Headlines and presences for no session are dropped, errors and results too.
            _ => Vec::new(),
        }
    }
}

/// Keeps a session's presence state as Prosody's mod_presence does: directed presence is
/// remembered until an unavailable or error presence to the same JID; an undirected one
/// makes the session available.
fn track_presence(client: &mut Client, stanza: &Element) {
    if stanza.name() != "presence" {
        return;
    }
    let kind = stanza.attr("type");
    match stanza.attr("to") {
        None => client.available = kind.is_none(),
        Some(to) => match kind {
            None if !client.directed.iter().any(|d| d == to) => client.directed.push(to.to_owned()),
            Some("unavailable" | "error") => client.directed.retain(|d| d != to),
            _ => {}
        },
    }
}

/// The server's `service-unavailable` answer to `stanza` (Prosody's `st.error_reply`: the
/// addresses swapped, the id kept, no payload).
fn service_unavailable(stanza: &Element) -> Element {
    let mut reply = parse_stanza(&format!(
        "<{} type='error'><error type='cancel'><service-unavailable xmlns='{NS_STANZAS}'/></error></{0}>",
        stanza.name()
    ));
    for (name, value) in [("id", stanza.attr("id")), ("from", stanza.attr("to")), ("to", stanza.attr("from"))]
    {
        if let Some(value) = value {
            xml::set_attr(&mut reply, name, value);
        }
    }
    reply
}

/// A stanza the server makes, written as XML.
fn parse_stanza(text: &str) -> Element {
    xml::parse_fragment(text)
        .ok()
        .and_then(|mut els| els.pop())
        .expect("the server's stanzas are well-formed")
}
