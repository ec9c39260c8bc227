//! Shared by the property tests (tests/properties.rs) and the fuzz target
//! (fuzz/fuzz_targets/muc.rs): a small world of users, rooms and nicknames, actions that
//! become stanzas, a decoder from bytes to actions, and the invariants checked after
//! every stanza.
#![allow(dead_code)]

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use muc_rs::affiliation::{Affiliation, Role};
use muc_rs::{MucHost, Outcome};
use std::collections::HashSet;

pub const DOMAIN: &str = "conference.localhost";
/// The service admin (in the test host's `admins`).
pub const ADMIN: &str = "admin@localhost";
pub const USERS: [&str; 4] = ["romeo@localhost", "juliet@localhost", ADMIN, "mallory@evil.example"];
pub const RESOURCES: [&str; 3] = ["r1", "r2", "r3"];
pub const ROOMS: [&str; 3] = ["lobby", "den", "attic"];
pub const NICKS: [&str; 6] = ["Romeo", "Juliet", "Nurse", "x", "Admin", "Émile"];
/// Affiliation targets: the users, two whole servers, and someone never seen.
pub const TARGETS: [&str; 7] = [
    "romeo@localhost",
    "juliet@localhost",
    ADMIN,
    "mallory@evil.example",
    "evil.example",
    "localhost",
    "nobody@localhost",
];
pub const AFFILIATIONS: [&str; 6] = ["owner", "admin", "member", "none", "outcast", "bogus"];
pub const ROLES: [&str; 5] = ["moderator", "participant", "visitor", "none", "bogus"];
pub const PASSWORDS: [&str; 2] = ["secret", "wrong"];

/// Where garbage goes.
pub const GARBAGE_TO: [&str; 7] = [
    "lobby@conference.localhost",
    "lobby@conference.localhost/Romeo",
    "den@conference.localhost/Nurse",
    "conference.localhost",
    "conference.localhost/res",
    "lobby@elsewhere.example",
    "nosuchroom@conference.localhost",
];
pub const GARBAGE_NAMES: [&str; 4] = ["iq", "message", "presence", "foo"];
pub const GARBAGE_TYPES: [Option<&str>; 13] = [
    None,
    Some("get"),
    Some("set"),
    Some("result"),
    Some("error"),
    Some("groupchat"),
    Some("chat"),
    Some("normal"),
    Some("unavailable"),
    Some("probe"),
    Some("subscribe"),
    Some("bogus"),
    Some(""),
];
/// Payloads, valid and not: empty queries, items with odd attributes, forms of the wrong
/// type, history requests with nonsense values, MUC user payloads in the wrong places.
pub const GARBAGE_PAYLOADS: [&str; 24] = [
    "",
    "<query xmlns='http://jabber.org/protocol/muc#admin'/>",
    "<query xmlns='http://jabber.org/protocol/muc#admin'><item/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Romeo' jid='juliet@localhost' role='none' affiliation='outcast'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#admin'><item jid='@@bad@@' affiliation='member'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='juliet@localhost'/><item affiliation='outcast' jid='romeo@localhost'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#admin'><item role='moderator'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='form'><field var='muc#roomconfig_membersonly'><value>1</value></field></x></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_historylength'><value>-5</value></field><field var='muc#roomconfig_whois'><value>everyone</value></field><field var='muc#roomconfig_membersonly'><value>maybe</value></field><field var='muc#roomconfig_presencebroadcast'><value>nobody</value></field></x></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='not a jid @@'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><unknown/></query>",
    "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-1' maxchars='abc' since='yesterday' seconds='1e99'/></x>",
    "<x xmlns='http://jabber.org/protocol/muc'><password/></x>",
    "<x xmlns='http://jabber.org/protocol/muc#user'><invite to='juliet@localhost'/></x>",
    "<x xmlns='http://jabber.org/protocol/muc#user'><decline/></x>",
    "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/><status code='201'/></x>",
    "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='muc#register_roomnick'/></x></query>",
    "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>Romeo</value></field></x></query>",
    "<unknown xmlns='urn:example:unknown'/>",
    "<ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/>",
    "<body>hi</body><subject>topic</subject>",
    "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    "<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>",
];

/// Reads bytes as small choices; past the end every read is 0.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn pick(&mut self, n: usize) -> u8 {
        (self.u8() as usize % n) as u8
    }
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    pub fn opt(&mut self, n: usize) -> Option<u8> {
        let b = self.u8();
        (b & 1 == 1).then_some(((b >> 1) as usize % n) as u8)
    }
    pub fn opt_bool(&mut self) -> Option<bool> {
        match self.u8() % 3 {
            0 => None,
            1 => Some(false),
            _ => Some(true),
        }
    }
    /// Up to `max` raw bytes.
    pub fn chunk(&mut self, max: usize) -> &'a [u8] {
        let len = (self.u8() as usize).min(max);
        let start = self.pos.min(self.data.len());
        let end = (start + len).min(self.data.len());
        self.pos = start + len;
        &self.data[start..end]
    }
}

/// A muc#owner configuration submission.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigForm {
    pub members_only: Option<bool>,
    pub moderated: Option<bool>,
    pub password: Option<u8>,
    pub persistent: Option<bool>,
    pub public: Option<bool>,
    /// 0 moderators, 1 anyone, 2 bogus
    pub whois: Option<u8>,
    /// 0: a proper submit; 1: no FORM_TYPE; 2: wrong FORM_TYPE; 3: type='form';
    /// 4: cancel; 5: unknown fields and values of the wrong type
    pub shape: u8,
}

impl ConfigForm {
    /// The submission a client sends to unlock a new room: the defaults.
    pub fn unlock() -> Self {
        ConfigForm {
            members_only: None,
            moderated: None,
            password: None,
            persistent: None,
            public: None,
            whois: None,
            shape: 0,
        }
    }

    fn decode(b: &mut Bytes) -> Self {
        ConfigForm {
            members_only: b.opt_bool(),
            moderated: b.opt_bool(),
            password: b.opt(PASSWORDS.len() + 1),
            persistent: b.opt_bool(),
            public: b.opt_bool(),
            whois: b.opt(3),
            shape: match b.u8() % 16 {
                n @ 0..=5 => n,
                _ => 0,
            },
        }
    }

    fn xml(&self) -> String {
        if self.shape == 4 {
            return "<x xmlns='jabber:x:data' type='cancel'/>".into();
        }
        let kind = if self.shape == 3 { "form" } else { "submit" };
        let mut s = format!("<x xmlns='jabber:x:data' type='{kind}'>");
        match self.shape {
            1 => {}
            4 => s += "<field var='FORM_TYPE'><value>urn:example:other</value></field>",
            _ => {
                s += "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"
            }
        }
        let boolean = |v: bool| {
            if self.shape == 5 {
                if v {
                    "yes"
                } else {
                    ""
                }
            } else if v {
                "1"
            } else {
                "0"
            }
        };
        let mut field = |var: &str, value: &str| {
            s += &format!("<field var='{var}'><value>{}</value></field>", escape(value));
        };
        if let Some(v) = self.members_only {
            field("muc#roomconfig_membersonly", boolean(v));
        }
        if let Some(v) = self.moderated {
            field("muc#roomconfig_moderatedroom", boolean(v));
        }
        if let Some(p) = self.password {
            field("muc#roomconfig_roomsecret", PASSWORDS.get(p as usize).copied().unwrap_or(""));
        }
        if let Some(v) = self.persistent {
            field("muc#roomconfig_persistentroom", boolean(v));
        }
        if let Some(v) = self.public {
            field("muc#roomconfig_publicroom", boolean(v));
        }
        if let Some(w) = self.whois {
            field("muc#roomconfig_whois", ["moderators", "anyone", "bogus"][w as usize % 3]);
        }
        if self.shape == 5 {
            field("muc#roomconfig_unknown", "x");
            field("muc#roomconfig_historylength", "lots");
            s += "<field var='muc#roomconfig_maxusers'><value>1</value><value>2</value></field><field/>";
        }
        s += "</x>";
        s
    }
}

/// One thing a user does. Indices wrap around the tables above.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Join {
        user: u8,
        res: u8,
        room: u8,
        nick: u8,
        password: Option<u8>,
        history: bool,
    },
    NickChange {
        user: u8,
        res: u8,
        room: u8,
        nick: u8,
    },
    Leave {
        user: u8,
        res: u8,
        room: u8,
        nick: u8,
    },
    /// A presence update (away, with status) to the room's bare JID or to a nick.
    PresenceUpdate {
        user: u8,
        res: u8,
        room: u8,
        nick: Option<u8>,
    },
    Groupchat {
        user: u8,
        res: u8,
        room: u8,
        subject: bool,
    },
    Private {
        user: u8,
        res: u8,
        room: u8,
        nick: u8,
        kind: u8,
    },
    SetAffiliation {
        user: u8,
        res: u8,
        room: u8,
        target: u8,
        affiliation: u8,
        reason: bool,
    },
    SetRole {
        user: u8,
        res: u8,
        room: u8,
        nick: u8,
        role: u8,
    },
    AdminGet {
        user: u8,
        res: u8,
        room: u8,
        which: u8,
    },
    OwnerConfig {
        user: u8,
        res: u8,
        room: u8,
        form: ConfigForm,
    },
    OwnerGet {
        user: u8,
        res: u8,
        room: u8,
    },
    Register {
        user: u8,
        res: u8,
        room: u8,
        nick: u8,
        get: bool,
    },
    Unregister {
        user: u8,
        res: u8,
        room: u8,
    },
    Destroy {
        user: u8,
        res: u8,
        room: u8,
        alternate: bool,
    },
    Disco {
        user: u8,
        res: u8,
        room: u8,
        items: bool,
        nick: Option<u8>,
    },
    IqToOccupant {
        user: u8,
        res: u8,
        room: u8,
        nick: u8,
        ping: bool,
    },
    /// An error bounced back to the room by a client (message, presence or iq).
    Bounce {
        user: u8,
        res: u8,
        room: u8,
        nick: Option<u8>,
        name: u8,
    },
    Garbage {
        user: u8,
        res: u8,
        name: u8,
        kind: u8,
        to: u8,
        payload: u8,
        bare_from: bool,
    },
}

impl Action {
    /// Decodes one action; every byte string decodes to something.
    pub fn decode(b: &mut Bytes) -> Action {
        let tag = b.pick(21);
        let (user, res, room) = (b.pick(USERS.len()), b.pick(RESOURCES.len()), b.pick(ROOMS.len()));
        let nick = b.pick(NICKS.len());
        match tag {
            0..=3 => {
                // Rarer passwords: a join with one to a new room sets the room's password.
                let password = if b.u8().is_multiple_of(4) { Some(b.pick(PASSWORDS.len())) } else { None };
                Action::Join { user, res, room, nick, password, history: b.bool() }
            }
            4 => Action::NickChange { user, res, room, nick },
            5 => Action::Leave { user, res, room, nick },
            6 => Action::PresenceUpdate { user, res, room, nick: b.bool().then_some(nick) },
            7 => Action::Groupchat { user, res, room, subject: b.bool() },
            8 => Action::Private { user, res, room, nick, kind: b.pick(4) },
            9 => Action::SetAffiliation {
                user,
                res,
                room,
                target: b.pick(TARGETS.len()),
                affiliation: b.pick(AFFILIATIONS.len()),
                reason: b.bool(),
            },
            10 => Action::SetRole { user, res, room, nick, role: b.pick(ROLES.len()) },
            11 => Action::AdminGet { user, res, room, which: b.pick(AFFILIATIONS.len() + ROLES.len()) },
            12 => Action::OwnerConfig { user, res, room, form: ConfigForm::decode(b) },
            13 => Action::OwnerGet { user, res, room },
            14 => Action::Register { user, res, room, nick, get: b.bool() },
            15 => Action::Unregister { user, res, room },
            16 => Action::Destroy { user, res, room, alternate: b.bool() },
            17 => Action::Disco { user, res, room, items: b.bool(), nick: b.bool().then_some(nick) },
            18 => Action::IqToOccupant { user, res, room, nick, ping: b.bool() },
            19 => Action::OwnerConfig { user, res, room, form: ConfigForm::unlock() },
            _ => match b.pick(3) {
                0 => Action::Bounce { user, res, room, nick: b.bool().then_some(nick), name: b.pick(3) },
                _ => Action::Garbage {
                    user,
                    res,
                    name: b.pick(GARBAGE_NAMES.len()),
                    kind: b.pick(GARBAGE_TYPES.len()),
                    to: b.pick(GARBAGE_TO.len()),
                    payload: b.pick(GARBAGE_PAYLOADS.len()),
                    bare_from: b.u8().is_multiple_of(8),
                },
            },
        }
    }

    /// The stanza, with id `s<step>`.
    pub fn to_stanza(&self, step: usize) -> Element {
        let id = format!("s{step}");
        let from = |user: &u8, res: &u8| {
            format!("{}/{}", USERS[*user as usize % USERS.len()], RESOURCES[*res as usize % RESOURCES.len()])
        };
        let room = |room: &u8| format!("{}@{DOMAIN}", ROOMS[*room as usize % ROOMS.len()]);
        let occ = |r: &u8, nick: &u8| format!("{}/{}", room(r), NICKS[*nick as usize % NICKS.len()]);
        let iq = |f: String, to: String, kind: &str, payload: String| {
            stanza("iq", &f, &to, Some(kind), &id, &payload)
        };
        use Action::*;
        match self {
            Join { user, res, room: r, nick, password, history } => {
                let mut x = String::from("<x xmlns='http://jabber.org/protocol/muc'>");
                if let Some(p) = password {
                    x += &format!("<password>{}</password>", PASSWORDS[*p as usize % PASSWORDS.len()]);
                }
                if *history {
                    x += "<history maxstanzas='2'/>";
                }
                x += "</x>";
                stanza("presence", &from(user, res), &occ(r, nick), None, &id, &x)
            }
            NickChange { user, res, room: r, nick } => {
                stanza("presence", &from(user, res), &occ(r, nick), None, &id, "")
            }
            Leave { user, res, room: r, nick } => {
                stanza("presence", &from(user, res), &occ(r, nick), Some("unavailable"), &id, "")
            }
            PresenceUpdate { user, res, room: r, nick } => {
                let to = match nick {
                    Some(n) => occ(r, n),
                    None => room(r),
                };
                let payload = "<show>away</show><status>brb</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>";
                stanza("presence", &from(user, res), &to, None, &id, payload)
            }
            Groupchat { user, res, room: r, subject } => {
                let payload =
                    if *subject { "<subject>topic</subject>" } else { "<body>hello &amp; all</body>" };
                stanza("message", &from(user, res), &room(r), Some("groupchat"), &id, payload)
            }
            Private { user, res, room: r, nick, kind } => {
                let kind = [Some("chat"), Some("normal"), None, Some("groupchat")][*kind as usize % 4];
                let payload = "<body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/>";
                stanza("message", &from(user, res), &occ(r, nick), kind, &id, payload)
            }
            SetAffiliation { user, res, room: r, target, affiliation, reason } => {
                let reason = if *reason { "<reason>because</reason>" } else { "" };
                let payload = format!(
                    "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='{}' jid='{}'>{reason}</item></query>",
                    AFFILIATIONS[*affiliation as usize % AFFILIATIONS.len()],
                    TARGETS[*target as usize % TARGETS.len()],
                );
                iq(from(user, res), room(r), "set", payload)
            }
            SetRole { user, res, room: r, nick, role } => {
                let payload = format!(
                    "<query xmlns='http://jabber.org/protocol/muc#admin'><item role='{}' nick='{}'/></query>",
                    ROLES[*role as usize % ROLES.len()],
                    NICKS[*nick as usize % NICKS.len()],
                );
                iq(from(user, res), room(r), "set", payload)
            }
            AdminGet { user, res, room: r, which } => {
                let w = *which as usize;
                let item = if w < AFFILIATIONS.len() {
                    format!("affiliation='{}'", AFFILIATIONS[w])
                } else {
                    format!("role='{}'", ROLES[(w - AFFILIATIONS.len()) % ROLES.len()])
                };
                let payload =
                    format!("<query xmlns='http://jabber.org/protocol/muc#admin'><item {item}/></query>");
                iq(from(user, res), room(r), "get", payload)
            }
            OwnerConfig { user, res, room: r, form } => {
                let payload =
                    format!("<query xmlns='http://jabber.org/protocol/muc#owner'>{}</query>", form.xml());
                iq(from(user, res), room(r), "set", payload)
            }
            OwnerGet { user, res, room: r } => iq(
                from(user, res),
                room(r),
                "get",
                "<query xmlns='http://jabber.org/protocol/muc#owner'/>".into(),
            ),
            Register { user, res, room: r, nick, get } => {
                let payload = if *get {
                    "<query xmlns='jabber:iq:register'/>".to_owned()
                } else {
                    format!(
                        "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>\
                         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
                         <field var='muc#register_roomnick'><value>{}</value></field></x></query>",
                        escape(NICKS[*nick as usize % NICKS.len()])
                    )
                };
                iq(from(user, res), room(r), if *get { "get" } else { "set" }, payload)
            }
            Unregister { user, res, room: r } => iq(
                from(user, res),
                room(r),
                "set",
                "<query xmlns='jabber:iq:register'><remove/></query>".into(),
            ),
            Destroy { user, res, room: r, alternate } => {
                let alt = if *alternate { format!(" jid='{}'", room(&(r + 1))) } else { String::new() };
                let payload = format!(
                    "<query xmlns='http://jabber.org/protocol/muc#owner'><destroy{alt}><reason>bye</reason></destroy></query>"
                );
                iq(from(user, res), room(r), "set", payload)
            }
            Disco { user, res, room: r, items, nick } => {
                let ns = if *items { "items" } else { "info" };
                let to = match nick {
                    Some(n) => occ(r, n),
                    None => room(r),
                };
                iq(
                    from(user, res),
                    to,
                    "get",
                    format!("<query xmlns='http://jabber.org/protocol/disco#{ns}'/>"),
                )
            }
            IqToOccupant { user, res, room: r, nick, ping } => {
                let payload =
                    if *ping { "<ping xmlns='urn:xmpp:ping'/>" } else { "<vCard xmlns='vcard-temp'/>" };
                iq(from(user, res), occ(r, nick), "get", payload.into())
            }
            Bounce { user, res, room: r, nick, name } => {
                let to = match nick {
                    Some(n) => occ(r, n),
                    None => room(r),
                };
                let name = ["message", "presence", "iq"][*name as usize % 3];
                let payload = "<error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>";
                stanza(name, &from(user, res), &to, Some("error"), &id, payload)
            }
            Garbage { user, res, name, kind, to, payload, bare_from } => {
                let f =
                    if *bare_from { USERS[*user as usize % USERS.len()].to_owned() } else { from(user, res) };
                stanza(
                    GARBAGE_NAMES[*name as usize % GARBAGE_NAMES.len()],
                    &f,
                    GARBAGE_TO[*to as usize % GARBAGE_TO.len()],
                    GARBAGE_TYPES[*kind as usize % GARBAGE_TYPES.len()],
                    &id,
                    GARBAGE_PAYLOADS[*payload as usize % GARBAGE_PAYLOADS.len()],
                )
            }
        }
    }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// A stanza in jabber:client from its parts (`payload` is trusted XML).
pub fn stanza(name: &str, from: &str, to: &str, kind: Option<&str>, id: &str, payload: &str) -> Element {
    let kind = kind.map(|k| format!(" type='{}'", escape(k))).unwrap_or_default();
    let xml = format!(
        "<{name} xmlns='jabber:client' from='{}' to='{}' id='{}'{kind}>{payload}</{name}>",
        escape(from),
        escape(to),
        escape(id)
    );
    xml.parse().unwrap_or_else(|e| panic!("generated stanza does not parse ({e}): {xml}"))
}

/// Every (recipient, stanza) pair of an outcome.
pub fn deliveries(out: &Outcome) -> Vec<(&Jid, &Element)> {
    out.deliveries.iter().flat_map(|d| d.to.iter().map(move |to| (to, &d.stanza))).collect()
}

/// What must hold of one stanza's outcome:
/// - an iq get/set (with a valid sender and recipient) gets exactly one reply, a result or
///   an error with its id, addressed to its sender, and no other iq result or error goes out;
/// - an error stanza gets no error in return;
/// - errors go back to the sender only.
pub fn check_step(stanza: &Element, out: &Outcome) -> Result<(), String> {
    let kind = stanza.attr("type");
    let from = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok());
    let to_valid = stanza.attr("to").and_then(|t| t.parse::<Jid>().ok()).is_some();
    let all = deliveries(out);
    for (to, d) in &all {
        if to.as_str().is_empty() {
            return Err(format!("delivery without recipient: {}", String::from(*d)));
        }
    }
    let errors: Vec<_> = all.iter().filter(|(_, d)| d.attr("type") == Some("error")).collect();
    if kind == Some("error") && !errors.is_empty() {
        return Err(format!("an error stanza got an error back: {}", String::from(errors[0].1)));
    }
    for (to, d) in &errors {
        if Some(*to) != from.as_ref() {
            return Err(format!("error sent to {to}, not to the sender: {}", String::from(*d)));
        }
    }
    if stanza.name() == "iq" && matches!(kind, Some("get" | "set")) && from.is_some() && to_valid {
        let replies: Vec<_> = all
            .iter()
            .filter(|(_, d)| d.name() == "iq" && matches!(d.attr("type"), Some("result" | "error")))
            .collect();
        // A query to an occupant may instead be relayed to the occupant's client, whose
        // answer is relayed back later.
        let relayed: Vec<_> = all
            .iter()
            .filter(|(_, d)| d.name() == "iq" && matches!(d.attr("type"), Some("get" | "set")))
            .collect();
        if relayed.len() > 1 || replies.len() + relayed.len() != 1 {
            let shown: Vec<String> =
                all.iter().map(|(to, d)| format!("to {to}: {}", String::from(*d))).collect();
            return Err(format!(
                "iq {:?} got {} replies and {} relayed queries: {shown:?}",
                kind,
                replies.len(),
                relayed.len()
            ));
        }
        if let Some((to, q)) = relayed.first() {
            if Some(*to) == from.as_ref() && q.attr("id") == stanza.attr("id") {
                return Err(format!("a query was relayed back unchanged: {}", String::from(*q)));
            }
            return Ok(());
        }
        let (to, reply) = replies[0];
        if Some(*to) != from.as_ref() || reply.attr("id") != stanza.attr("id") {
            return Err(format!("iq reply to {to} with id {:?}: {}", reply.attr("id"), String::from(*reply)));
        }
    }
    Ok(())
}

/// A user's affiliation as the room applies it (service admins own rooms where the
/// host's configuration says so).
fn effective_affiliation(
    host: &MucHost,
    admins: &[BareJid],
    room: &muc_rs::room::Room,
    jid: &BareJid,
) -> Affiliation {
    if host.config().admins_as_room_owners && admins.contains(jid) {
        return Affiliation::Owner;
    }
    room.stored_affiliation(jid)
}

/// What must hold of every room at any time:
/// - every occupant has a role (not `none`), a nickname in this room, at least one live
///   session, and its primary session among its sessions; every session is its own user's;
/// - no two occupants share a nickname;
/// - each live session belongs to exactly one occupant, and the room's session index agrees;
/// - no occupant is an outcast, and a members-only room has no unaffiliated occupant.
pub fn check_invariants(host: &MucHost, admins: &[BareJid]) -> Result<(), String> {
    for room in host.rooms() {
        let r = room.jid.as_str();
        let mut nicks = HashSet::new();
        let mut live: HashSet<&FullJid> = HashSet::new();
        for o in room.occupants() {
            let nick = o.nick_str();
            if !nicks.insert(nick.to_owned()) {
                return Err(format!("{r}: two occupants with nick {nick:?}"));
            }
            if o.nick.to_bare() != room.jid {
                return Err(format!("{r}: occupant {} is in another room", o.nick));
            }
            match o.role {
                None | Some(Role::None) => return Err(format!("{r}: occupant {nick:?} has no role")),
                Some(_) => {}
            }
            if o.sessions().is_empty() || !o.has_live_session() {
                return Err(format!("{r}: occupant {nick:?} has no live session: {:?}", o.sessions()));
            }
            match o.primary() {
                Some(p) if o.session(p).is_some() => {}
                p => return Err(format!("{r}: occupant {nick:?} has primary {p:?} not among its sessions")),
            }
            for s in o.sessions() {
                if s.jid.to_bare() != o.bare_jid {
                    return Err(format!("{r}: occupant {nick:?} ({}) has session {}", o.bare_jid, s.jid));
                }
                if !s.is_available() {
                    continue;
                }
                if !live.insert(&s.jid) {
                    return Err(format!("{r}: session {} is in two occupants", s.jid));
                }
                if room.nick_of(&s.jid) != Some(nick) {
                    return Err(format!(
                        "{r}: session {} of {nick:?} maps to {:?}",
                        s.jid,
                        room.nick_of(&s.jid)
                    ));
                }
            }
            let affiliation = effective_affiliation(host, admins, room, &o.bare_jid);
            if affiliation == Affiliation::Outcast {
                return Err(format!("{r}: outcast {} is occupant {nick:?}", o.bare_jid));
            }
            if room.settings.members_only && affiliation == Affiliation::None {
                return Err(format!(
                    "{r}: members-only room has unaffiliated occupant {nick:?} ({})",
                    o.bare_jid
                ));
            }
        }
        for (jid, nick) in room.live_sessions() {
            if !room.occupant_by_nick(nick).is_some_and(|o| o.session(jid).is_some_and(|s| s.is_available()))
            {
                return Err(format!(
                    "{r}: session index has {jid} -> {nick:?}, which has no such live session"
                ));
            }
        }
    }
    Ok(())
}
