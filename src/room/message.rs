//! Messages: groupchat broadcast, subject changes, the discussion history, and private
//! messages between occupants.

use super::settings::Subject;
use super::{Ctx, HistoryEntry, Room};
use crate::affiliation::{Affiliation, Role};
use crate::hooks::{Event, Hook, Question};
use crate::xml::{el, ElementExt, ErrorType, StanzaError, NS_CLIENT, NS_DELAY, NS_MUC, NS_MUC_USER};
use jid::{FullJid, Jid};
use minidom::Element;

const NS_HINTS: &str = "urn:xmpp:hints";
const SID: &str = "stanza-id";
pub const NS_SID: &str = "urn:xmpp:sid:0";

impl Room {
    /// A groupchat message to the room.
    pub fn handle_groupchat(&mut self, ctx: &mut Ctx, stanza: &Element, real_jid: &FullJid) {
        // Stock fires muc-occupant-groupchat before its own checks, which are handlers at
        // 50 (role) and 20 (subject): those above see every message first.
        if ctx.listens(Hook::GroupchatFirst) {
            let question = || Question::GroupchatFirst {
                room: self.jid.clone(),
                nick: self.occupant_by_real_jid(real_jid).map(|o| o.nick.clone()),
            };
            if ctx.consult(Hook::GroupchatFirst, question).is_none() {
                return; // handled by a module, or asked first
            }
        }
        // Only who the sender is, not its sessions: copying the occupant costs per message.
        let Some((nick, bare_jid, role)) =
            self.occupant_by_real_jid(real_jid).map(|o| (o.nick.clone(), o.bare_jid.clone(), o.role))
        else {
            ctx.error(stanza, StanzaError::not_in_room(), None);
            return;
        };
        match role.unwrap_or(Role::None) {
            Role::None => return ctx.error(stanza, StanzaError::not_in_room(), None),
            Role::Visitor => {
                let error = StanzaError::forbidden()
                    .with_text("You do not currently have permission to speak in this chat");
                return ctx.error(stanza, error, None);
            }
            _ => {}
        }
        let mut message = stanza.clone();
        if message.attr("id").is_none() {
            message.set("id", ctx.stanza_id());
        }
        let subject = message
            .get_child("subject", NS_CLIENT)
            .filter(|_| !message.has_child("body", NS_CLIENT) && !message.has_child("thread", NS_CLIENT));
        // Stock's subject step is a handler at 20: those above it see a subject change first.
        let subject_change = subject.is_some();
        let question = || Question::Groupchat { room: self.jid.clone(), nick: nick.clone(), subject_change };
        if ctx.consult(Hook::OccupantGroupchat, question).is_none() {
            return; // refused by a module (which answered), or asked first
        }
        if let Some(subject) = subject {
            let allowed = role == Some(Role::Moderator)
                || (role == Some(Role::Participant) && self.settings.change_subject);
            if !allowed {
                let error = StanzaError::forbidden().with_text("You are not allowed to change the subject");
                return ctx.error(stanza, error, None);
            }
            let text = subject.text();
            self.set_subject(ctx, nick.as_str(), &text);
            return;
        }
        // Delays claiming to come from the room are the room's own to add.
        let room_jid = self.jid.to_string();
        let kept: Vec<minidom::Node> = message
            .take_nodes()
            .into_iter()
            .filter(|node| match node {
                minidom::Node::Element(e) => {
                    let own_delay = (e.is("delay", NS_DELAY) || e.is("x", "jabber:x:delay"))
                        && e.attr("from") == Some(room_jid.as_str());
                    !own_delay
                }
                minidom::Node::Text(_) => true,
            })
            .collect();
        for node in kept {
            message.append_node(node);
        }
        if ctx.config.message_moderation {
            self.retract_own(ctx, &message, &bare_jid);
        }
        self.stamp_occupant_id(ctx, &mut message, &bare_jid);
        if let Some(id) = ctx.facts.room_stanza_id.filter(|_| !ctx.listens(Hook::BroadcastMessage)) {
            // (last, as ejabberd appends it)
            message.append_child(el(SID, NS_SID).with("by", self.jid.as_str()).with("id", id.to_string()));
        }
        message.set("from", nick.as_str());
        message.unset("to");
        self.broadcast_message(ctx, message);
    }

    /// Broadcasts a message from the room to everyone, keeping it in history if it is one
    /// worth keeping.
    pub fn broadcast_message(&mut self, ctx: &mut Ctx, message: Element) {
        let historic = is_historic(&message);
        self.broadcast_kept(ctx, message, historic);
    }

    /// Broadcasts a message from the room to everyone, keeping it in history if `historic`.
    pub fn broadcast_kept(&mut self, ctx: &mut Ctx, message: Element, historic: bool) {
        if self.settings.mucsub.is_some() {
            self.send_to_subscribers(ctx, &message);
        }
        if ctx.listens(Hook::BroadcastMessage) {
            // The host's modules may change it, archive it, or deliver it themselves.
            let to = self.recipients(Role::None);
            let room = self.jid.clone();
            return ctx.out.fire(Event::BroadcastMessage { room, stanza: message, to, historic });
        }
        if historic {
            let keep_sender = ctx.config.message_moderation;
            self.add_history_with(ctx.config.max_history_messages, ctx.now(), &message, keep_sender);
        }
        self.broadcast(ctx, message, Role::None);
    }

    /// Keeps a copy of `message` in the room's history, stamped with `now`.
    pub fn add_history(&mut self, max_history_messages: Option<u32>, now: i64, message: &Element) {
        self.add_history_with(max_history_messages, now, message, false);
    }

    /// [`Room::add_history`], keeping who sent it (the occupant of its nick: it has just
    /// been broadcast) if `keep_sender`.
    pub fn add_history_with(
        &mut self,
        max_history_messages: Option<u32>,
        now: i64,
        message: &Element,
        keep_sender: bool,
    ) {
        let length = self.settings.history_length(max_history_messages) as usize;
        if length == 0 {
            self.history.clear();
            return;
        }
        let mut stanza = message.clone();
        stanza
            .append_child(el("delay", NS_DELAY).with("from", self.jid.as_str()).with("stamp", datetime(now)));
        let sender = keep_sender
            .then(|| message.attr("from").and_then(|f| f.parse::<FullJid>().ok()))
            .flatten()
            .and_then(|nick| self.occupant_by_nick(nick.resource().as_str()))
            .map(|o| Box::new(o.bare_jid.clone()));
        self.history.push_back(HistoryEntry { stanza, timestamp: now, chars: None, sender });
        while self.history.len() > length {
            self.history.pop_front();
        }
    }

    /// Sends the history a join asks for (or the room's default amount).
    pub fn send_history(&mut self, ctx: &mut Ctx, join: &Element, to: &FullJid) {
        let request = join.get_child("x", NS_MUC).and_then(|x| x.get_child("history", NS_MUC));
        let attr_num =
            |name: &str| request.and_then(|h| h.attr(name)).and_then(|v| v.trim().parse::<f64>().ok());
        let maxchars = attr_num("maxchars");
        let mut maxstanzas = attr_num("maxstanzas");
        let mut since = request.and_then(|h| h.attr("since")).and_then(parse_datetime);
        if let Some(seconds) = attr_num("seconds") {
            let from_seconds = ctx.now() - seconds as i64;
            since = Some(since.map_or(from_seconds, |s| s.max(from_seconds)));
        }
        if maxchars.is_none() && maxstanzas.is_none() && since.is_none() {
            maxstanzas = Some(self.settings.default_history_messages() as f64);
        }
        let requested = (maxchars, maxstanzas, since);
        let start = self.history_start(to.as_str().len(), maxchars, maxstanzas, since);
        if ctx.listens(Hook::GetHistory) {
            // An archive may serve more than the room keeps.
            let default = self.history.iter().skip(start).map(|e| e.stanza.clone()).collect();
            let (maxchars, maxstanzas, since) = requested;
            let (room, to) = (self.jid.clone(), to.clone());
            return ctx.out.fire(Event::GetHistory { room, to, maxchars, maxstanzas, since, default });
        }
        for entry in self.history.iter().skip(start) {
            ctx.send(entry.stanza.clone(), to.clone().into());
        }
    }

    /// Where the history a request asks for starts: stock's count from the newest entry
    /// back, within `maxchars` (each entry counted as sent to a JID of `to_len`), `since`
    /// and `maxstanzas` (all of it if none).
    fn history_start(
        &mut self,
        to_len: usize,
        maxchars: Option<f64>,
        maxstanzas: Option<f64>,
        since: Option<i64>,
    ) -> usize {
        let maxstanzas = maxstanzas.unwrap_or(self.history.len() as f64);
        let mut n = 0usize;
        let mut charcount = 0usize;
        for entry in self.history.iter_mut().rev() {
            if let Some(maxchars) = maxchars {
                let chars = *entry.chars.get_or_insert_with(|| serialized_len(&entry.stanza));
                charcount += chars + to_len;
                if charcount as f64 > maxchars {
                    break;
                }
            }
            if since.is_some_and(|s| s > entry.timestamp) {
                break;
            }
            if (n + 1) as f64 > maxstanzas {
                break;
            }
            n += 1;
        }
        self.history.len() - n
    }

    /// The room's own `muc-get-history` step for a module that fires the event itself
    /// (stock's handler in history.lib.lua): the entries the request selects, oldest first,
    /// addressed to `to`.
    pub fn history_for(
        &mut self,
        to: &str,
        maxchars: Option<f64>,
        maxstanzas: Option<f64>,
        since: Option<i64>,
    ) -> Vec<Element> {
        let start = self.history_start(to.len(), maxchars, maxstanzas, since);
        self.history
            .iter()
            .skip(start)
            .map(|entry| match to {
                "" => entry.stanza.clone(),
                to => entry.stanza.clone().with("to", to),
            })
            .collect()
    }

    /// The history as a module left it (stock's `room._history`, edited in place): its
    /// entries, each a stanza and when it was kept; as on stock, the next message trims it.
    /// (Only Prosody's modules edit it, where occupants' retractions are a module's, so no
    /// sender is kept.)
    pub fn replace_history(&mut self, entries: Vec<(Element, i64)>) {
        self.history = entries
            .into_iter()
            .map(|(stanza, timestamp)| HistoryEntry { stanza, timestamp, chars: None, sender: None })
            .collect();
    }

    /// Sends the current subject (empty if none) to one session.
    pub fn send_subject(&self, ctx: &mut Ctx, to: &FullJid) {
        let subject = self.settings.subject.as_deref();
        let from = subject.and_then(|s| s.from.clone()).unwrap_or_else(|| self.jid.to_string());
        let mut msg = subject_message(&from, subject.and_then(|s| s.text.as_deref()));
        if let Some(time) = subject.and_then(|s| s.time) {
            msg.append_child(
                el("delay", NS_DELAY).with("from", self.jid.as_str()).with("stamp", datetime(time)),
            );
        }
        ctx.send(msg, to.clone().into());
    }

    /// Sets the subject and tells the occupants (stock's `room:set_subject`).
    pub fn set_subject(&mut self, ctx: &mut Ctx, from: &str, subject: &str) {
        let text = Some(subject.to_owned()).filter(|s| !s.is_empty());
        let old = self.settings.subject.as_deref();
        let old_from = old.and_then(|s| s.from.as_deref()).unwrap_or(self.jid.as_str());
        if old.and_then(|s| s.text.as_ref()) == text.as_ref() && old_from == from {
            return;
        }
        let msg = subject_message(from, text.as_deref());
        self.will_change_record(ctx);
        self.settings.subject =
            Some(Box::new(Subject { text, from: Some(from.to_owned()), time: Some(ctx.now()) }));
        self.broadcast_message(ctx, msg);
    }

    /// A message to `room/nick`: a private message relayed to that occupant's sessions.
    pub fn handle_message_to_occupant(
        &mut self,
        ctx: &mut Ctx,
        stanza: &Element,
        real_jid: &FullJid,
        to: &FullJid,
    ) {
        let kind = stanza.attr("type");
        let Some(sender) = self.occupant_by_real_jid(real_jid).cloned() else {
            if kind != Some("error") {
                ctx.error(stanza, StanzaError::not_in_room(), Some(self.jid_str()));
            }
            return;
        };
        if kind == Some("groupchat") {
            return ctx.error(stanza, StanzaError::modify_bad_request(), Some(self.jid_str()));
        }
        if kind == Some("error") {
            if is_kickable_error(stanza) {
                self.handle_kickable(ctx, stanza, real_jid);
            }
            return;
        }
        let Some(recipient) = self.occupant_by_nick(to.resource().as_str()).cloned() else {
            let error = StanzaError::item_not_found().with_text("Recipient not in room");
            return ctx.error(stanza, error, Some(self.jid_str()));
        };
        let mut pm = crate::occupant::filter_muc_payloads(stanza);
        pm.append_child(el("x", NS_MUC_USER));
        pm.set("from", sender.nick.as_str());
        pm.unset("to");
        if ctx.config.server_version.0 >= 13 {
            if let Some(refusal) = self.pm_refusal(ctx, &sender, &recipient) {
                let error = StanzaError::new(ErrorType::Cancel, "policy-violation").with_text(refusal);
                let mut bounce = crate::xml::error_reply(
                    &pm.clone().with("to", to.as_str()),
                    &error,
                    Some(self.jid_str()),
                );
                bounce.unset("to");
                let sessions = sender.session_jids().cloned().map(Jid::from).collect();
                ctx.out.send_many(bounce, sessions);
                return;
            }
        }
        let question = || Question::PrivateMessage {
            room: self.jid.clone(),
            from: sender.nick.clone(),
            to: recipient.nick.clone(),
        };
        if ctx.consult(Hook::PrivateMessage, question).is_none() {
            return; // blocked by a module (which answered), or asked first
        }
        self.stamp_occupant_id(ctx, &mut pm, &sender.bare_jid);
        let sessions = recipient.session_jids().cloned().map(Jid::from).collect();
        ctx.out.send_many(pm, sessions);
    }

    /// Prosody 13's private-message policy: why `from` may not write to `to`, if so.
    fn pm_refusal(&self, ctx: &Ctx, from: &super::Occupant, to: &super::Occupant) -> Option<String> {
        if from.bare_jid == to.bare_jid {
            return None;
        }
        if self.settings.allow_modpm
            && (to.role == Some(Role::Moderator) || from.role == Some(Role::Moderator))
        {
            return None;
        }
        let policy = &*self.settings.allow_pm;
        let allowed = match policy {
            "none" => false,
            "affiliated" => self.affiliation(ctx, &from.bare_jid) > Affiliation::None,
            role => Role::parse(role).is_some_and(|min| from.role_or_none() >= min),
        };
        if allowed {
            return None;
        }
        let who = match policy {
            "none" => "in this group",
            "participant" => "from guests",
            "moderator" => "from non-moderators",
            _ => "from non-members",
        };
        Some(format!("Private messages are restricted {who}"))
    }
}

/// Errors that mean the session is gone (stock's `is_kickable_error`).
pub fn is_kickable_error(stanza: &Element) -> bool {
    match crate::xml::error_condition(stanza) {
        None => true,
        Some(c) => matches!(
            c,
            "gone"
                | "internal-server-error"
                | "item-not-found"
                | "jid-malformed"
                | "recipient-unavailable"
                | "redirect"
                | "remote-server-not-found"
                | "remote-server-timeout"
                | "service-unavailable"
        ),
    }
}

fn subject_message(from: &str, subject: Option<&str>) -> Element {
    el("message", NS_CLIENT)
        .with("from", from)
        .with("type", "groupchat")
        .child(el("subject", NS_CLIENT).text(subject.unwrap_or("")))
}

/// Whether a message belongs in the history (stock's `muc-message-is-historic`).
fn is_historic(message: &Element) -> bool {
    if message.has_child("no-store", NS_HINTS) || message.has_child("no-permanent-store", NS_HINTS) {
        return false;
    }
    message.has_child("store", NS_HINTS)
        || message.has_child("body", NS_CLIENT)
        || message.has_child("encryption", "urn:xmpp:eme:0")
        || message.children().any(|c| c.ns() == "urn:xmpp:chat-markers:0")
}

fn serialized_len(stanza: &Element) -> usize {
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail; an empty length only makes maxchars generous.
    let _ = stanza.write_to(&mut buf);
    buf.len()
}

/// XEP-0082 date-time in UTC, as Prosody's `util.datetime.datetime`.
pub fn datetime(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Parses an XEP-0082 date-time into Unix seconds.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once('T')?;
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    let (time, offset) = match rest.find(['Z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut t = time.split(':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: f64 = t.next()?.parse().ok()?;
    let offset_secs = match offset {
        "" | "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss as i64 - offset_secs)
}

// Howard Hinnant's civil-calendar conversions.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip() {
        assert_eq!(datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(datetime(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_datetime("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_datetime("2023-11-14T23:13:20.5+01:00"), Some(1_700_000_000));
        assert_eq!(parse_datetime("garbage"), None);
    }

    #[test]
    fn history_keeps_bodies_and_store_hints_only() {
        let body = el("message", NS_CLIENT).child(el("body", NS_CLIENT).text("hi"));
        assert!(is_historic(&body));
        assert!(!is_historic(&body.clone().child(el("no-store", NS_HINTS))));
        assert!(!is_historic(
            &el("message", NS_CLIENT).child(el("active", "http://jabber.org/protocol/chatstates"))
        ));
    }

    fn said(text: &str) -> Element {
        el("message", NS_CLIENT).with("type", "groupchat").child(el("body", NS_CLIENT).text(text))
    }

    fn bodies(stanzas: &[Element]) -> Vec<String> {
        stanzas.iter().map(|s| s.get_child("body", NS_CLIENT).map(|b| b.text()).unwrap_or_default()).collect()
    }

    #[test]
    fn history_asked_for_by_a_module_is_selected_as_for_a_join() {
        let mut room = Room::new("room@muc.localhost".parse().unwrap(), Default::default());
        for (at, text) in [(100, "one"), (200, "two"), (300, "three")] {
            room.add_history(None, at, &said(text));
        }
        let to = "juliet@localhost/balcony";
        let last_two = room.history_for(to, None, Some(2.0), None);
        assert_eq!(bodies(&last_two), ["two", "three"]);
        assert!(last_two.iter().all(|s| s.attr("to") == Some(to)));
        assert_eq!(bodies(&room.history_for(to, None, None, Some(200))), ["two", "three"]);
        assert_eq!(bodies(&room.history_for(to, None, None, None)), ["one", "two", "three"]);
        assert!(room.history_for(to, Some(10.0), None, None).is_empty());
        assert!(room.history_for("", None, Some(1.0), None)[0].attr("to").is_none());
    }

    #[test]
    fn history_a_module_left_is_kept_until_the_next_message_trims_it() {
        let mut room = Room::new("room@muc.localhost".parse().unwrap(), Default::default());
        let many: Vec<_> = (0..25).map(|i| (said(&i.to_string()), i)).collect();
        room.replace_history(many);
        assert_eq!(room.history.len(), 25, "as on stock, a module's entries stay as it left them");
        room.add_history(None, 100, &said("last"));
        assert_eq!(room.history.len(), 20);
        assert_eq!(room.history.back().map(|e| e.timestamp), Some(100));
    }
}
