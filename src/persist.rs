//! Rooms as stored: stock mod_muc's record format, so rooms move between `muc` and
//! `muc_rs` in both directions through the same stores (`config`, `state`, `persistent`).
//!
//! A record is a [`Data`] tree (`crate::data`), the shape of what Prosody's storage API
//! keeps; the host converts it to and from its own values. A room's record is its `config` entry (settings,
//! affiliations and their data); its `state` entry (occupants, their presences, the last
//! message) is written only when a live room is put away (eviction, shutdown).

use crate::affiliation::{Affiliation, Role};
use crate::data::{Data, Key, Table};
use crate::occupant::Occupant;
use crate::room::settings::{RoomSettings, Subject, Tombstone, Whois};
use crate::room::{AffiliationData, HistoryEntry, Room};
use crate::xml::NS_CLIENT;
use jid::{BareJid, FullJid};
use minidom::{Element, Node};
use std::collections::BTreeMap;

fn get<'a>(t: &'a Table, key: &str) -> Option<&'a Data> {
    t.get(&Key::Str(key.to_owned()))
}

fn put(t: &mut Table, key: &str, value: Data) {
    t.insert(Key::Str(key.to_owned()), value);
}

fn put_opt(t: &mut Table, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        put(t, key, Data::Str(v.to_owned()));
    }
}

fn put_flag(t: &mut Table, key: &str, value: bool) {
    if value {
        put(t, key, Data::Bool(true));
    }
}

/// The `_data` keys muc_rs understands; any other key is kept as it was found.
const SETTINGS_KEYS: &[&str] = &[
    "name",
    "description",
    "language",
    "persistent",
    "hidden",
    "password",
    "members_only",
    "allow_member_invites",
    "moderated",
    "whois",
    "changesubject",
    "history_length",
    "default_history_messages",
    "presence_broadcast",
    "allow_pm",
    "allow_modpm",
    "locked",
    "subject",
    "subject_from",
    "subject_time",
    "occupant_id_salt",
    "destroyed",
    "reason",
    "newjid",
    "allow_subscription",
    "mucsub_subscribers",
];

fn settings_to_data(s: &RoomSettings) -> Table {
    let mut t = s.extra.clone();
    put_opt(&mut t, "name", s.name.as_deref());
    put_opt(&mut t, "description", s.description.as_deref());
    put_opt(&mut t, "language", s.language.as_deref());
    put_flag(&mut t, "persistent", s.persistent);
    put_flag(&mut t, "hidden", s.hidden);
    put_opt(&mut t, "password", s.password.as_deref());
    put_flag(&mut t, "members_only", s.members_only);
    put_flag(&mut t, "allow_member_invites", s.allow_member_invites);
    put_flag(&mut t, "moderated", s.moderated);
    if s.whois == Whois::Anyone {
        put(&mut t, "whois", Data::Str("anyone".into()));
    }
    put_flag(&mut t, "changesubject", s.change_subject);
    if let Some(n) = s.history_length {
        put(&mut t, "history_length", Data::Int(n.into()));
    }
    if let Some(n) = s.default_history_messages {
        put(&mut t, "default_history_messages", Data::Int(n.into()));
    }
    if let Some(roles) = &s.presence_broadcast {
        let roles = roles.iter().map(|r| (Key::from(r.as_str()), Data::Bool(true))).collect();
        put(&mut t, "presence_broadcast", Data::Table(roles));
    }
    if &*s.allow_pm != "visitor" {
        put(&mut t, "allow_pm", Data::Str(s.allow_pm.to_string()));
    }
    put_flag(&mut t, "allow_modpm", s.allow_modpm);
    if let Some(until) = s.locked_until {
        put(&mut t, "locked", Data::Int(until));
    }
    if let Some(subject) = &s.subject {
        put_opt(&mut t, "subject", subject.text.as_deref());
        put_opt(&mut t, "subject_from", subject.from.as_deref());
        if let Some(time) = subject.time {
            put(&mut t, "subject_time", Data::Int(time));
        }
    }
    put_opt(&mut t, "occupant_id_salt", Some(&*s.occupant_id_salt).filter(|salt| !salt.is_empty()));
    if let Some(tomb) = &s.tombstone {
        put(&mut t, "destroyed", Data::Bool(true));
        put_opt(&mut t, "reason", tomb.reason.as_deref());
        put_opt(&mut t, "newjid", tomb.new_jid.as_deref());
    }
    if let Some(mucsub) = &s.mucsub {
        mucsub_to_data(&mut t, mucsub);
    }
    t
}

/// MucSub in `_data`, under keys stock Prosody keeps but never reads: `allow_subscription`
/// and `mucsub_subscribers`, a list of `{jid=, nick=, nodes={...}}`.
fn mucsub_to_data(t: &mut Table, mucsub: &crate::room::mucsub::MucSub) {
    put_flag(t, "allow_subscription", mucsub.allow);
    if mucsub.subscribers.is_empty() {
        return;
    }
    let list = mucsub
        .subscribers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut entry = Table::new();
            put(&mut entry, "jid", Data::Str(s.jid.to_string()));
            put(&mut entry, "nick", Data::Str(s.nick.clone()));
            let nodes = s
                .nodes
                .iter()
                .enumerate()
                .map(|(j, n)| (Key::Int(j as i64 + 1), Data::Str(n.clone())))
                .collect();
            put(&mut entry, "nodes", Data::Table(nodes));
            (Key::Int(i as i64 + 1), Data::Table(entry))
        })
        .collect();
    put(t, "mucsub_subscribers", Data::Table(list));
}

fn mucsub_from_data(t: &Table) -> Option<Box<crate::room::mucsub::MucSub>> {
    use crate::room::mucsub::{MucSub, Subscriber};
    let allow = get(t, "allow_subscription").is_some_and(Data::truthy);
    let list = get(t, "mucsub_subscribers").and_then(Data::table);
    let mut subscribers = Vec::new();
    for entry in list.into_iter().flat_map(|l| l.values()).filter_map(Data::table) {
        let Some(jid) = get(entry, "jid").and_then(Data::str).and_then(|j| j.parse::<BareJid>().ok()) else {
            continue;
        };
        let nick = get(entry, "nick").and_then(Data::str).unwrap_or_default().to_owned();
        let nodes = get(entry, "nodes")
            .and_then(Data::table)
            .map(|n| n.values().filter_map(Data::str).map(str::to_owned).collect())
            .unwrap_or_default();
        subscribers.push(Subscriber { jid, nick, nodes });
    }
    (allow || !subscribers.is_empty()).then(|| Box::new(MucSub { allow, subscribers }))
}

fn settings_from_data(t: &Table) -> RoomSettings {
    let text = |k: &str| get(t, k).and_then(Data::str).map(str::to_owned);
    let flag = |k: &str| get(t, k).is_some_and(Data::truthy);
    let count = |k: &str| get(t, k).and_then(Data::int).map(|n| n.clamp(0, u32::MAX as i64) as u32);
    // Stock accepts its older names for the PM policy values.
    let allow_pm = match text("allow_pm").as_deref() {
        None => "visitor".to_owned(),
        Some("everyone") => "visitor".to_owned(),
        Some("participants") => "participant".to_owned(),
        Some("moderators") => "moderator".to_owned(),
        Some("members") => "affiliated".to_owned(),
        Some(other) => other.to_owned(),
    };
    let presence_broadcast = get(t, "presence_broadcast").and_then(Data::table).map(|roles| {
        let mut list: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| roles.get(&Key::from(r.as_str())).is_some_and(Data::truthy))
            .collect();
        list.sort();
        list
    });
    RoomSettings {
        name: text("name").map(String::into_boxed_str),
        description: text("description").map(String::into_boxed_str),
        language: text("language").map(String::into_boxed_str),
        persistent: flag("persistent"),
        hidden: flag("hidden"),
        password: text("password").map(String::into_boxed_str),
        members_only: flag("members_only"),
        allow_member_invites: flag("allow_member_invites"),
        moderated: flag("moderated"),
        whois: if text("whois").as_deref() == Some("anyone") { Whois::Anyone } else { Whois::Moderators },
        change_subject: flag("changesubject"),
        history_length: count("history_length"),
        default_history_messages: count("default_history_messages"),
        presence_broadcast: presence_broadcast.map(Vec::into_boxed_slice),
        allow_pm: allow_pm.into(),
        allow_modpm: flag("allow_modpm"),
        locked_until: get(t, "locked").and_then(Data::int),
        subject: Some(Subject {
            text: text("subject"),
            from: text("subject_from"),
            time: get(t, "subject_time").and_then(Data::int),
        })
        .filter(|s| *s != Subject::default())
        .map(Box::new),
        occupant_id_salt: text("occupant_id_salt").unwrap_or_default().into(),
        tombstone: flag("destroyed")
            .then(|| Box::new(Tombstone { reason: text("reason"), new_jid: text("newjid") })),
        mucsub: mucsub_from_data(t),
        extra: t
            .iter()
            .filter(|(k, _)| !matches!(k, Key::Str(s) if SETTINGS_KEYS.contains(&s.as_str())))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn affiliation_data_to_data(d: &AffiliationData) -> Table {
    let mut t = d.extra.clone();
    put_opt(&mut t, "reserved_nickname", d.reserved_nickname.as_deref());
    put_opt(&mut t, "reason", d.reason.as_deref());
    t
}

fn affiliation_data_from_data(t: &Table) -> AffiliationData {
    AffiliationData {
        reserved_nickname: get(t, "reserved_nickname").and_then(Data::str).map(str::to_owned),
        reason: get(t, "reason").and_then(Data::str).map(str::to_owned),
        extra: t
            .iter()
            .filter(|(k, _)| !matches!(k, Key::Str(s) if s == "reserved_nickname" || s == "reason"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A stanza as Prosody's `st.preserialize` keeps it: `{name=, attr={}, [1]=child|text, …}`.
pub fn element_to_data(e: &Element, parent_ns: &str) -> Data {
    let mut t = Table::new();
    put(&mut t, "name", Data::Str(e.name().to_owned()));
    let mut attr = Table::new();
    let ns = e.ns();
    if ns != parent_ns {
        attr.insert(Key::from("xmlns"), Data::Str(ns.clone()));
    }
    for ((attr_ns, name), value) in e.attrs().iter() {
        attr.insert(Key::Str(crate::xml::attr_key(attr_ns, name)), Data::Str(value.clone()));
    }
    put(&mut t, "attr", Data::Table(attr));
    for (i, node) in e.nodes().enumerate() {
        let child = match node {
            Node::Element(c) => element_to_data(c, &ns),
            Node::Text(s) => Data::Str(s.clone()),
        };
        t.insert(Key::Int(i as i64 + 1), child);
    }
    Data::Table(t)
}

/// Reads a preserialized stanza back; `None` if it is not one.
pub fn element_from_data(d: &Data, parent_ns: &str) -> Option<Element> {
    let t = d.table()?;
    let name = get(t, "name")?.str()?;
    let attrs = get(t, "attr").and_then(Data::table);
    let ns =
        attrs.and_then(|a| a.get(&Key::from("xmlns"))).and_then(Data::str).unwrap_or(parent_ns).to_owned();
    minidom::rxml::NcName::try_from(name).ok()?;
    let mut e = Element::bare(name, ns.clone());
    for (k, v) in attrs.into_iter().flatten() {
        let (Key::Str(k), Some(v)) = (k, v.str()) else { continue };
        if k != "xmlns" {
            crate::xml::set_attr_key(&mut e, k, v);
        }
    }
    let mut i = 1;
    while let Some(child) = t.get(&Key::Int(i)) {
        match child {
            Data::Str(s) => e.append_text_node(s.clone()),
            other => {
                if let Some(c) = element_from_data(other, &ns) {
                    e.append_child(c);
                }
            }
        }
        i += 1;
    }
    Some(e)
}

impl Room {
    /// The room's `config` record (stock's new storage format).
    pub fn freeze(&self) -> Data {
        let mut t = Table::new();
        put(&mut t, "_jid", Data::Str(self.jid.to_string()));
        put(&mut t, "_data", Data::Table(settings_to_data(&self.settings)));
        let mut data = Table::new();
        for (jid, d) in self.all_affiliation_data() {
            data.insert(Key::Str(jid.to_string()), Data::Table(affiliation_data_to_data(d)));
        }
        put(&mut t, "_affiliation_data", Data::Table(data));
        for (jid, affiliation) in self.affiliations() {
            t.insert(Key::Str(jid.to_string()), Data::Str(affiliation.as_str().to_owned()));
        }
        Data::Table(t)
    }

    /// The room's live `state`: occupants, their sessions' presences and the last message.
    pub fn freeze_state(&self) -> Data {
        let mut t = Table::new();
        for o in self.occupants() {
            let mut entry = Table::new();
            put(&mut entry, "bare_jid", Data::Str(o.bare_jid.to_string()));
            if let Some(role) = o.role {
                put(&mut entry, "role", Data::Str(role.as_str().to_owned()));
            }
            if let Some(primary) = o.primary() {
                put(&mut entry, "jid", Data::Str(primary.to_string()));
            }
            t.insert(Key::Str(o.nick.to_string()), Data::Table(entry));
            for s in o.sessions() {
                t.insert(Key::Str(s.jid.to_string()), element_to_data(&o.session_presence(s), NS_CLIENT));
            }
        }
        if let Some(last) = self.history.back() {
            put(&mut t, "_last_message", element_to_data(&last.stanza, NS_CLIENT));
            put(&mut t, "_last_message_at", Data::Int(last.timestamp));
        }
        Data::Table(t)
    }

    /// A room from its stored records. Accepts stock's old format too (`jid`,
    /// `_affiliations`), and records written by stock mod_muc.
    pub fn restore(config: &Data, state: Option<&Data>) -> Result<Room, String> {
        let t = config.table().ok_or("room record is not a table")?;
        let jid_text =
            get(t, "_jid").or_else(|| get(t, "jid")).and_then(Data::str).ok_or("room record has no JID")?;
        let jid: BareJid = jid_text.parse().map_err(|e| format!("room JID {jid_text:?}: {e}"))?;
        let settings = get(t, "_data").and_then(Data::table).map(settings_from_data).unwrap_or_default();
        let mut room = Room::new(jid.clone(), settings);
        let affiliations: Box<dyn Iterator<Item = (&Key, &Data)>> =
            match get(t, "_affiliations").and_then(Data::table) {
                Some(old_format) => Box::new(old_format.iter()),
                None => Box::new(t.iter()),
            };
        for (key, value) in affiliations {
            let (Key::Str(k), Some(a)) = (key, value.str()) else { continue };
            if k.starts_with('_') {
                continue;
            }
            if let (Ok(j), Some(a)) = (k.parse::<BareJid>(), Affiliation::parse(a)) {
                room.restore_affiliation(j, a);
            }
        }
        for (key, value) in get(t, "_affiliation_data").and_then(Data::table).into_iter().flatten() {
            let (Key::Str(k), Some(d)) = (key, value.table()) else { continue };
            if let Ok(j) = k.parse::<BareJid>() {
                room.restore_affiliation_data(j, affiliation_data_from_data(d));
            }
        }
        if let Some(state) = state.and_then(Data::table) {
            room.restore_state(state);
        }
        Ok(room)
    }

    fn restore_state(&mut self, state: &Table) {
        if let (Some(msg), Some(at)) =
            (get(state, "_last_message"), get(state, "_last_message_at").and_then(Data::int))
        {
            if let Some(stanza) = element_from_data(msg, NS_CLIENT) {
                self.history.push_back(HistoryEntry { stanza, timestamp: at, chars: None, sender: None });
            }
        }
        let mut occupants: BTreeMap<String, Occupant> = BTreeMap::new();
        // The primary sessions, named before or after their presences.
        let mut primaries: Vec<(String, FullJid)> = Vec::new();
        for (key, value) in state {
            let Key::Str(k) = key else { continue };
            let Ok(full) = k.parse::<FullJid>() else { continue };
            let Some(entry) = value.table() else { continue };
            if full.to_bare() == self.jid {
                // room/nick: who the occupant is and its role
                let Some(bare) = get(entry, "bare_jid").and_then(Data::str).and_then(|b| b.parse().ok())
                else {
                    continue;
                };
                let role = get(entry, "role").and_then(Data::str).and_then(Role::parse);
                let occupant = occupants
                    .entry(full.to_string())
                    .or_insert_with(|| Occupant::new(bare, full.clone(), role));
                occupant.role = role;
                if let Some(primary) = get(entry, "jid").and_then(Data::str).and_then(|j| j.parse().ok()) {
                    primaries.push((full.to_string(), primary));
                }
            } else if get(entry, "name").and_then(Data::str) == Some("presence") {
                // a session's presence, from its room/nick
                let Some(presence) = element_from_data(value, NS_CLIENT) else { continue };
                let Some(nick) = presence.attr("from").and_then(|f| f.parse::<FullJid>().ok()) else {
                    continue;
                };
                let occupant = occupants
                    .entry(nick.to_string())
                    .or_insert_with(|| Occupant::new(full.to_bare(), nick.clone(), None));
                occupant.set_session(&full, presence);
            }
        }
        for (nick, primary) in primaries {
            if let Some(occupant) = occupants.get_mut(&nick) {
                occupant.set_primary(&primary);
            }
        }
        for (_, occupant) in occupants {
            self.save_occupant(occupant);
        }
    }
}

/// Whether the room reads `key` of `room._data` itself (a setting, the subject, …); other
/// keys are the modules' own, kept as they are.
pub fn is_settings_key(key: &str) -> bool {
    SETTINGS_KEYS.contains(&key)
}

/// `room._data` as modules see it: stock's keys and the ones modules added, read and
/// changed one key at a time.
impl RoomSettings {
    pub fn to_data(&self) -> Table {
        settings_to_data(self)
    }

    /// Settings from a `room._data` table as a module gives it (stock's `create_room`
    /// with a config).
    pub fn from_data(t: &Table) -> RoomSettings {
        settings_from_data(t)
    }

    pub fn data(&self, key: &str) -> Option<Data> {
        if SETTINGS_KEYS.contains(&key) {
            settings_to_data(self).remove(&Key::from(key))
        } else {
            self.extra.get(&Key::from(key)).cloned()
        }
    }

    /// Sets (or, with `None`, removes) one key. A key stock's MUC knows changes the setting
    /// it stands for, as reading the record back would.
    pub fn set_data(&mut self, key: &str, value: Option<Data>) {
        let table = if SETTINGS_KEYS.contains(&key) { None } else { Some(&mut self.extra) };
        match (table, value) {
            (Some(extra), Some(value)) => {
                extra.insert(Key::from(key), value);
            }
            (Some(extra), None) => {
                extra.remove(&Key::from(key));
            }
            (None, value) => {
                let mut t = settings_to_data(self);
                match value {
                    Some(value) => put(&mut t, key, value),
                    None => {
                        t.remove(&Key::from(key));
                    }
                }
                *self = settings_from_data(&t);
            }
        }
    }
}

impl AffiliationData {
    /// Stock's affiliation data table (`reserved_nickname`, `reason`, modules' keys).
    pub fn to_data(&self) -> Table {
        affiliation_data_to_data(self)
    }

    pub fn from_data(t: &Table) -> AffiliationData {
        affiliation_data_from_data(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_survive_preserialization() {
        let p: Element = "<presence xmlns='jabber:client' from='r@m/n' xml:lang='en'><show>away</show>\
            <x xmlns='urn:x'><y a='1'>t</y></x></presence>"
            .parse()
            .unwrap();
        let d = element_to_data(&p, NS_CLIENT);
        assert_eq!(element_from_data(&d, NS_CLIENT).unwrap(), p);
    }

    #[test]
    fn records_of_stock_format_are_read() {
        let mut data = Table::new();
        put(&mut data, "members_only", Data::Bool(true));
        put(&mut data, "name", Data::Str("Lounge".into()));
        put(&mut data, "archiving", Data::Bool(true)); // another module's key
        let mut aff_data = Table::new();
        let mut juliet = Table::new();
        put(&mut juliet, "reserved_nickname", Data::Str("Jules".into()));
        aff_data.insert(Key::from("juliet@localhost"), Data::Table(juliet));
        let mut t = Table::new();
        put(&mut t, "_jid", Data::Str("room@muc.localhost".into()));
        put(&mut t, "_data", Data::Table(data));
        put(&mut t, "_affiliation_data", Data::Table(aff_data));
        put(&mut t, "romeo@localhost", Data::Str("owner".into()));
        put(&mut t, "juliet@localhost", Data::Str("member".into()));
        let record = Data::Table(t);
        let room = Room::restore(&record, None).unwrap();
        assert!(room.settings.members_only);
        assert_eq!(room.settings.name.as_deref(), Some("Lounge"));
        assert_eq!(room.stored_affiliation(&"romeo@localhost".parse().unwrap()), Affiliation::Owner);
        assert_eq!(room.registered_nick(&"juliet@localhost".parse().unwrap()), Some("Jules"));
        // Written back, it is the same record (plus the salt muc_rs keeps, as stock does).
        let again = Room::restore(&room.freeze(), None).unwrap().freeze();
        let Data::Table(mut again) = again else { panic!() };
        let Some(Data::Table(d)) = again.get_mut(&Key::from("_data")) else { panic!() };
        assert_eq!(d.remove(&Key::from("archiving")), Some(Data::Bool(true)));
    }

    #[test]
    fn modules_nested_tables_round_trip_through_the_record() {
        // As stock stores `room._data.breakout_rooms[jid] = subject`, and as muc_rs reads it.
        let mut rooms = Table::new();
        rooms.insert(Key::from("b1@breakout.localhost"), Data::Str("Group 1".into()));
        let mut nested = Table::new();
        nested.insert(Key::from("by_jid"), Data::Table(rooms));
        nested.insert(Key::Int(1), Data::Int(7));
        let mut room = Room::new("room@muc.localhost".parse().unwrap(), RoomSettings::default());
        room.settings.set_data("breakout_rooms", Some(Data::Table(nested.clone())));
        assert!(!is_settings_key("breakout_rooms") && is_settings_key("presence_broadcast"));
        let again = Room::restore(&room.freeze(), None).unwrap();
        assert_eq!(again.settings.data("breakout_rooms"), Some(Data::Table(nested)));
    }
}
