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
    CoreHost::new(version, &options(script), &[ADMIN]).err()
}

/// The MUC component's options: Prosody reads an option in the global section when the
/// component's own section has none. Another virtual host is left out: it only makes
/// more clients' domains, which sessions here have anyway.
fn options(script: &Script) -> Vec<String> {
    let global = script.config_lines().into_iter().filter(|l| !l.starts_with("VirtualHost "));
    global.chain(script.component_config_lines()).collect()
}

/// Runs `script` against a fresh core configured as `version` of Prosody would configure
/// stock mod_muc (see [`not_in_tier`] for the scripts it cannot run).
pub fn run(script: &Script, version: Version, opts: &RunOptions) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::passed();
    let host = match CoreHost::new(version, &options(script), &[ADMIN]) {
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
                let client = online(&mut self.clients, name)?;
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
                for stanza in self.expand_all(elements)? {
                    self.traffic.push(format!("{name} >> {}", xml::to_string(&stanza)));
                    let client = online(&mut self.clients, name)?;
                    match from_client(client, stanza) {
                        Accepted::Route(stanzas) => {
                            for stanza in stanzas {
                                self.route(stanza)?;
                            }
                        }
                        Accepted::Refused(error) => hand_over(&mut self.traffic, name, client, error),
                    }
                }
                Ok(())
            }
            ActionKind::Receive(elements) => {
                for expected in self.expand_all(elements)? {
                    let kept = &mut online(&mut self.clients, name)?.kept;
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
                let kept = &online(&mut self.clients, name)?.kept;
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
        // By the domain only: a nick the core refuses (see `prep_jid`) is still the MUC's.
        let to = stanza.attr("to").unwrap_or_default();
        let domain = to.split('/').next().and_then(|bare| bare.rsplit('@').next()).unwrap_or_default();
        if domain == MUC_DOMAIN {
            return Ok(self.host.stanza(stanza).into_iter().map(|(_, delivered)| delivered).collect());
        }
        let to = match to.parse::<Jid>() {
            Ok(to) if to.node().is_some() => to,
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
            hand_over(&mut self.traffic, name, client, stanza);
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
                let available: Vec<(&String, &mut Client)> = self
                    .clients
                    .iter_mut()
                    .filter(|(_, c)| c.available && c.full_jid.as_ref().is_some_and(|j| j.to_bare() == bare))
                    .collect();
                if available.is_empty() {
                    // No session takes it and no offline store (mod_offline is not loaded).
                    return vec![service_unavailable(&stanza)];
                }
                for (name, client) in available {
                    hand_over(&mut self.traffic, name, client, stanza.clone());
                }
                Vec::new()
            }
            "message" if kind == "groupchat" => vec![service_unavailable(&stanza)],
            // Headlines and presences for no session are dropped, errors and results too.
            _ => Vec::new(),
        }
    }
}

/// The client `name`, if it is connected.
fn online<'c>(clients: &'c mut HashMap<String, Client>, name: &str) -> Result<&'c mut Client, Failure> {
    clients
        .get_mut(name)
        .filter(|c| c.online)
        .ok_or_else(|| Failure::error(format!("{name} is not connected\n")))
}

/// Gives a client a stanza, noting it in the traffic.
fn hand_over(traffic: &mut Vec<String>, name: &str, client: &mut Client, stanza: Element) {
    traffic.push(format!("{name} << {}", xml::to_string(&stanza)));
    client.kept.push_back(stanza);
}

/// What the server makes of a stanza a client sent.
enum Accepted {
    /// Stanzas to route (none if it is dropped).
    Route(Vec<Element>),
    /// The server's own error, straight back to the client.
    Refused(Element),
}

/// Prosody's c2s path, up to routing: the stream's language (xmppstream), the checks and
/// `from` stamping of `core_process_stanza`, then mod_presence's outbound handling, which
/// keeps the session's presence state.
fn from_client(client: &mut Client, mut stanza: Element) -> Accepted {
    if xml::attr_xml_lang(&stanza).is_none() {
        xml::set_xml_lang(&mut stanza, "en");
    }
    let kind = stanza.attr("type").map(str::to_owned);
    let kind = kind.as_deref();
    if kind == Some("error") && stanza.children().next().is_none() {
        return Accepted::Route(Vec::new());
    }
    if stanza.name() == "iq" {
        let children = stanza.children().count();
        let refusal = match kind {
            Some("get" | "set" | "result" | "error") if stanza.attr("id").is_none() => {
                Some("Missing required 'id' attribute")
            }
            Some("get" | "set") if children != 1 => Some("Incorrect number of children for IQ stanza"),
            Some("get" | "set" | "result" | "error") => None,
            _ => Some("Invalid IQ type"),
        };
        if let Some(text) = refusal {
            return Accepted::Refused(error_reply(&stanza, "modify", "bad-request", Some(text)));
        }
    }
    let full_jid = client.full_jid.as_ref().map(|j| j.to_string()).unwrap_or_default();
    xml::set_attr(&mut stanza, "from", full_jid.as_str());
    let Some(to) = stanza.attr("to").map(str::to_owned) else {
        return undirected(client, stanza);
    };
    match prep_jid(&to) {
        Some(prepped) => xml::set_attr(&mut stanza, "to", prepped),
        None if matches!(kind, Some("error" | "result")) => return Accepted::Route(Vec::new()),
        None => {
            let text = format!("The destination address is invalid: {to}");
            return Accepted::Refused(error_reply(&stanza, "modify", "jid-malformed", Some(&text)));
        }
    }
    if stanza.name() != "presence" {
        return Accepted::Route(vec![stanza]);
    }
    let to = stanza.attr("to").unwrap_or_default().to_owned();
    let bare = |jid: &str| jid.split('/').next().unwrap_or_default().to_owned();
    match kind {
        None => {
            if !client.directed.contains(&to) {
                client.directed.push(to);
            }
        }
        Some("unavailable" | "error") => client.directed.retain(|d| *d != to),
        Some("probe") => {}
        // Subscriptions go from the bare JID to the bare JID; those that answer one need a
        // roster item, which no one here has.
        Some("subscribe" | "unsubscribe") => {
            xml::set_attr(&mut stanza, "from", bare(&full_jid));
            xml::set_attr(&mut stanza, "to", bare(&to));
        }
        Some("subscribed" | "unsubscribed") => return Accepted::Route(Vec::new()),
        Some(_) => {
            xml::set_attr(&mut stanza, "from", bare(&full_jid));
            xml::set_attr(&mut stanza, "to", bare(&to));
            return Accepted::Refused(error_reply(
                &stanza,
                "modify",
                "bad-request",
                Some("Invalid presence type"),
            ));
        }
    }
    Accepted::Route(vec![stanza])
}

/// A stanza without `to`: for the server itself. An undirected presence sets the session's
/// availability, and an unavailable one also goes to where directed presence went.
fn undirected(client: &mut Client, stanza: Element) -> Accepted {
    if stanza.name() != "presence" {
        // Roster, disco, ping of the server...: not what this tier is for.
        return Accepted::Route(vec![stanza]);
    }
    match stanza.attr("type") {
        None => client.available = true,
        Some("unavailable") => {
            client.available = false;
            let unavailable = std::mem::take(&mut client.directed).into_iter().map(|to| {
                let mut copy = stanza.clone();
                xml::set_attr(&mut copy, "to", to);
                copy
            });
            return Accepted::Route(unavailable.collect());
        }
        _ => {}
    }
    Accepted::Route(Vec::new())
}

/// A JID as Prosody's router preps it (`jid_prepped_split`), or `None` if it refuses it.
/// Prosody's stringprep is lenient about code points unassigned in Unicode 3.2 (the core is
/// strict about them in nicks), so such a JID passes unchanged.
fn prep_jid(jid: &str) -> Option<String> {
    if let Ok(prepped) = jid.parse::<Jid>() {
        return Some(prepped.to_string());
    }
    let assigned: String =
        jid.chars().map(|c| if stringprep::tables::unassigned_code_point(c) { 'x' } else { c }).collect();
    (assigned != jid && assigned.parse::<Jid>().is_ok()).then(|| jid.to_owned())
}

/// The server's `service-unavailable` answer to `stanza`.
fn service_unavailable(stanza: &Element) -> Element {
    error_reply(stanza, "cancel", "service-unavailable", None)
}

/// Prosody's `st.error_reply`: the addresses swapped, the id kept, no payload.
fn error_reply(stanza: &Element, kind: &str, condition: &str, text: Option<&str>) -> Element {
    let text =
        text.map(|t| format!("<text xmlns='{NS_STANZAS}'>{}</text>", xml::escape(t))).unwrap_or_default();
    let mut reply = parse_stanza(&format!(
        "<{name} type='error'><error type='{kind}'><{condition} xmlns='{NS_STANZAS}'/>{text}</error></{name}>",
        name = stanza.name()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn run_text(text: &str) -> Outcome {
        let script = Script::parse(Path::new("t.scs"), text).unwrap();
        run(&script, Version::V13, &RunOptions::default())
    }

    const JOIN_THEN_LEAVE: &str = "# t
[Client] Romeo
\tjid: romeo@localhost
[Client] Juliet
\tjid: juliet@localhost
\tresource: balcony
-----
Romeo connects
Romeo sends:
\t<presence to='room@conference.localhost/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>
Romeo sends:
\t<iq id='cfg' to='room@conference.localhost' type='set'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>
Juliet connects
Juliet sends:
\t<presence to='room@conference.localhost/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>
Romeo receives:
\t<presence from='room@conference.localhost/Juliet'/>
Juliet disconnects
Romeo receives:
\t<presence from='room@conference.localhost/Juliet' type='unavailable'/>
Romeo receives: nothing
";

    #[test]
    fn a_disconnect_leaves_the_rooms_the_session_joined() {
        let outcome = run_text(JOIN_THEN_LEAVE);
        assert_eq!(outcome.verdict, Verdict::Pass, "{}", outcome.report);
        assert!(outcome.traffic.contains("Juliet >> <presence"), "{}", outcome.traffic);
    }

    #[test]
    fn a_wrong_expectation_fails_with_what_came_instead() {
        let wrong = JOIN_THEN_LEAVE.replace("type='unavailable'/>", "type='unavailable' id='x'/>");
        let outcome = run_text(&wrong);
        assert_eq!(outcome.verdict, Verdict::Fail);
        assert!(outcome.report.starts_with("line 19: Romeo receives:"), "{}", outcome.report);
        assert!(outcome.report.contains("missing attribute id='x'"), "{}", outcome.report);
    }

    #[test]
    fn the_server_refuses_what_prosody_refuses_before_the_muc() {
        let mut client =
            Client { full_jid: Some("a@localhost/r".parse().unwrap()), online: true, ..Client::default() };
        let stanza = |xml: &str| parse_stanza(xml);
        let refusal = |accepted| match accepted {
            Accepted::Refused(error) => xml::to_string(&error),
            Accepted::Route(routed) => panic!("routed {routed:?}"),
        };
        let bogus_iq =
            refusal(from_client(&mut client, stanza("<iq id='1' to='r@conference.localhost' type='x'/>")));
        assert!(bogus_iq.contains("Invalid IQ type"), "{bogus_iq}");
        let bogus =
            refusal(from_client(&mut client, stanza("<presence to='r@conference.localhost/n' type='x'/>")));
        assert!(bogus.contains("from='r@conference.localhost'") && bogus.contains("Invalid presence type"));
        let tab = refusal(from_client(&mut client, stanza("<presence to='r@conference.localhost/a&#9;b'/>")));
        assert!(tab.contains("jid-malformed"), "{tab}");
        assert!(client.directed.is_empty());

        let Accepted::Route(routed) =
            from_client(&mut client, stanza("<presence to='r@conference.localhost/a&#x200B;b'/>"))
        else {
            panic!("refused")
        };
        assert_eq!(routed[0].attr("to"), Some("r@conference.localhost/ab"));
        assert_eq!(routed[0].attr("from"), Some("a@localhost/r"));
        assert_eq!(xml::attr_xml_lang(&routed[0]), Some("en"));
        assert_eq!(client.directed, vec!["r@conference.localhost/ab".to_owned()]);
    }

    #[test]
    fn prosodys_jid_prep_lets_unassigned_code_points_through() {
        assert_eq!(
            prep_jid("r@conference.localhost/\u{1F600}").as_deref(),
            Some("r@conference.localhost/\u{1F600}")
        );
        assert_eq!(prep_jid("r@conference.localhost/\u{202E}evil"), None);
        assert_eq!(prep_jid("r@conference.localhost/"), None);
    }
}
