//! The host protocol: what crosses between the core and the server that hosts it.
//!
//! The core never calls out: it reads no storage, no clock and no random source, and asks
//! nobody mid-stanza who is a service admin. A host hands a stanza in with the
//! [`Facts`] it has gathered so far; the core either stops before changing anything and
//! asks a [`Question`] (the host finds the answer, adds it to the facts and hands the same
//! stanza in again), or it handles the stanza and returns an [`crate::Outcome`]. The
//! outcome's [`Store`]s are written by the host before anything in it is delivered; then
//! the host tells the core how that went with [`crate::MucHost::confirm`]. A failed write
//! puts the rooms back as they were, and the core hands the error reply to send instead.
//!
//! ```text
//! host -> core:  stanza + Facts { now, entropy, listening, answers so far }
//! core -> host:  Outcome { ask: Some(Question) }            nothing changed: answer, rerun
//!              | Outcome { stores, ..nothing else }         write the stores, then confirm
//!              | Outcome { deliveries, events, log }        carry it out
//! host -> core:  confirm(Ok)  -> the outcome held back: carry it out
//!                confirm(Err) -> the rooms are as before; carry out the error reply
//! ```

use crate::affiliation::Affiliation;
use crate::data::Data;
use crate::hooks::{self, Answer, Hook, Hooks};
use jid::BareJid;

/// A room's records in the host's storage (see [`crate::persist`]): its configuration, and
/// the live state (occupants) of a room put away while people were in it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRoom {
    pub config: Data,
    pub state: Option<Data>,
}

/// A room's archiving switch as the host offers it ([`Facts::archive_switch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveSwitch {
    /// A room's switch until an owner sets it (ejabberd's `default_room_options: mam`).
    pub default: bool,
    /// Whether the stanza's sender may set it (ejabberd's `access_mam`): a form that sets
    /// it from one who may not is refused (`not-acceptable`), as ejabberd's mod_muc does.
    pub sender_may_change: bool,
}

/// What the core asks its host before it changes anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Question {
    /// The stored records of a room that is not live ([`Facts::supply_room`]).
    LoadRoom(BareJid),
    /// Every stored room's records: the service's room list ([`Facts::supply_stored_rooms`]).
    StoredRooms,
    /// The hash of the avatar in the room's vCard, where rooms have vCards
    /// ([`Facts::supply_avatar_hash`]); asked once, before the room's first stanza.
    AvatarHash(BareJid),
    /// Whether these users are administrators of the service, as the host server defines
    /// them ([`Facts::supply_service_admin`]): the creator of a room where only admins may
    /// create rooms, and, where admins own every room, whoever the stanza is about.
    ServiceAdmins(Vec<BareJid>),
    /// What the host's modules say at an extension point (see [`crate::hooks`]).
    Module(hooks::Question),
}

/// What the host has told the core for the stanza at hand. Start with
/// [`Facts::new`] and add each answer as it is asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// Random bits the host drew for this call: the ids the core makes up (a new room's
    /// salt for occupant ids, ids of stanzas that came without one, unique room names)
    /// come from them, so that the core itself reads no clock and no random source.
    pub entropy: u128,
    /// The extension points at which the host's modules listen (none for a host without
    /// modules).
    pub listening: Hooks,
    /// The host's own rule on whether the stanza's sender may create rooms (ejabberd's
    /// `access_create`), which then replaces `restrict_room_creation`; `None`: the host has
    /// no such rule.
    pub sender_may_create: Option<bool>,
    /// The host's own rule on whether the sender may make a room persistent or not
    /// (ejabberd's `access_persistent`): when `Some(false)`, the configuration form it gets
    /// has no persistence field, and a form it submits with one is refused
    /// (`not-acceptable`), as ejabberd's mod_muc does; `None`: any owner may.
    pub sender_may_persist: Option<bool>,
    /// The host archives rooms that have their archiving switch on (ejabberd's mod_mam and
    /// its `mam` room option): the owner's form offers the switch, and only to a sender the
    /// host's rule lets change it; `None`: no such switch (an archive module that has its
    /// own form field, or none).
    pub archive_switch: Option<ArchiveSwitch>,
    /// The room's own stanza-id (XEP-0359) for an occupant's groupchat message, when the
    /// host's rooms stamp one and no module takes the broadcast over (ejabberd's
    /// mod_muc_room stamps one with or without an archive: its clock in microseconds);
    /// `None`: the room stamps none.
    pub room_stanza_id: Option<i64>,
    /// Public rooms live elsewhere in the service (on a cluster's other nodes), as (JID,
    /// name), listed with the stored ones in the service's room list.
    pub public_rooms_elsewhere: Vec<(String, Option<String>)>,
    rooms: Vec<(BareJid, Result<Option<StoredRoom>, String>)>,
    stored_rooms: Option<Result<Vec<(BareJid, StoredRoom)>, String>>,
    avatar_hashes: Vec<(BareJid, Option<String>)>,
    service_admins: Vec<(BareJid, bool)>,
    answers: Vec<(Hook, Answer)>,
    patched_affiliations: Vec<(BareJid, BareJid, Affiliation)>,
    patched_members_only: Vec<(BareJid, bool)>,
}

impl Facts {
    /// No answers yet, at time `now`, with fresh random bits, no module listening.
    pub fn new(now: i64, entropy: u128) -> Facts {
        Facts { now, entropy, ..Facts::default() }
    }

    /// Answers [`Question::LoadRoom`]: the room's records, `None` if it has none, or why
    /// storage could not be read.
    pub fn supply_room(&mut self, room: BareJid, record: Result<Option<StoredRoom>, String>) {
        self.rooms.retain(|(jid, _)| *jid != room);
        self.rooms.push((room, record));
    }

    /// Answers [`Question::StoredRooms`] (and every [`Question::LoadRoom`] with it).
    pub fn supply_stored_rooms(&mut self, rooms: Result<Vec<(BareJid, StoredRoom)>, String>) {
        self.stored_rooms = Some(rooms);
    }

    /// Answers [`Question::AvatarHash`]: the hash, or `None` if the room has no avatar.
    pub fn supply_avatar_hash(&mut self, room: BareJid, hash: Option<String>) {
        self.avatar_hashes.retain(|(jid, _)| *jid != room);
        self.avatar_hashes.push((room, hash));
    }

    /// Answers [`Question::ServiceAdmins`] for one user. A host may also say it of the
    /// stanza's sender before it is asked, when it knows it anyway.
    pub fn supply_service_admin(&mut self, user: BareJid, is_admin: bool) {
        self.service_admins.retain(|(jid, _)| *jid != user);
        self.service_admins.push((user, is_admin));
    }

    /// Answers [`Question::Module`]: what the modules said at `hook`.
    pub fn supply_answer(&mut self, hook: Hook, answer: Answer) {
        // One answer per hook, but one per user for affiliation changes (a muc#admin set
        // changes several).
        let user = |a: &Answer| match a {
            Answer::Affiliation { jid, .. } => Some(jid.clone()),
            _ => None,
        };
        let replaced = user(&answer);
        self.answers.retain(|(h, a)| *h != hook || user(a) != replaced);
        self.answers.push((hook, answer));
    }

    /// A user's affiliation in `room` as the host's modules decide it, where they replace
    /// the room's own answer (Prosody's `room_mt.get_affiliation` patched by a module: on
    /// stock every decision asks that method). The core uses it in place of the room's for
    /// this call: a join's role, who may kick, configure, or enter a members-only room.
    pub fn supply_patched_affiliation(&mut self, room: BareJid, user: BareJid, affiliation: Affiliation) {
        self.patched_affiliations.retain(|(r, u, _)| *r != room || *u != user);
        self.patched_affiliations.push((room, user, affiliation));
    }

    /// Whether `room` is members-only as the host's modules decide it, where they replace
    /// the room's own answer (Prosody's `room_mt.get_members_only`), for this call.
    pub fn supply_patched_members_only(&mut self, room: BareJid, members_only: bool) {
        self.patched_members_only.retain(|(r, _)| *r != room);
        self.patched_members_only.push((room, members_only));
    }

    /// Answers `question` with what `storage` reads, for a host that can read its storage
    /// synchronously between two calls into the core. Returns false for a question that is
    /// not about storage.
    pub fn answer_from(&mut self, question: &Question, storage: &dyn ReadRooms) -> bool {
        match question {
            Question::LoadRoom(room) => self.supply_room(room.clone(), storage.load_room(room)),
            Question::StoredRooms => self.supply_stored_rooms(storage.stored_rooms()),
            Question::AvatarHash(_) | Question::ServiceAdmins(_) | Question::Module(_) => return false,
        }
        true
    }

    /// The answer for `room`: `None` if not asked yet.
    pub(crate) fn room(&self, room: &BareJid) -> Option<Result<Option<&StoredRoom>, &str>> {
        if let Some((_, record)) = self.rooms.iter().find(|(jid, _)| jid == room) {
            return Some(record.as_ref().map(Option::as_ref).map_err(String::as_str));
        }
        match self.stored_rooms.as_ref()? {
            Ok(all) => Some(Ok(all.iter().find(|(jid, _)| jid == room).map(|(_, record)| record))),
            Err(e) => Some(Err(e)),
        }
    }

    /// The avatar hash of `room`: `None` if not asked yet.
    pub(crate) fn avatar_hash(&self, room: &BareJid) -> Option<Option<&str>> {
        self.avatar_hashes.iter().find(|(jid, _)| jid == room).map(|(_, hash)| hash.as_deref())
    }

    /// Whether `user` is a service admin: `None` if not asked yet.
    pub(crate) fn service_admin(&self, user: &BareJid) -> Option<bool> {
        self.service_admins.iter().find(|(jid, _)| jid == user).map(|(_, is_admin)| *is_admin)
    }

    /// What the modules said at `hook`: `None` if not asked yet.
    /// The modules' answer on changing `jid`'s affiliation.
    pub(crate) fn affiliation_answer(&self, jid: &BareJid) -> Option<&Answer> {
        self.answers.iter().find_map(|(_, a)| match a {
            Answer::Affiliation { jid: j, .. } if j == jid => Some(a),
            _ => None,
        })
    }

    pub(crate) fn answer(&self, hook: Hook) -> Option<&Answer> {
        self.answers.iter().find(|(h, _)| *h == hook).map(|(_, answer)| answer)
    }

    /// `user`'s affiliation in `room` as the modules replace it: `None` where they do not.
    pub(crate) fn patched_affiliation(&self, room: &BareJid, user: &BareJid) -> Option<Affiliation> {
        if self.patched_affiliations.is_empty() {
            return None;
        }
        self.patched_affiliations.iter().find(|(r, u, _)| r == room && u == user).map(|(_, _, a)| *a)
    }

    /// Whether `room` is members-only as the modules replace it: `None` where they do not.
    pub(crate) fn patched_members_only(&self, room: &BareJid) -> Option<bool> {
        self.patched_members_only.iter().find(|(r, _)| r == room).map(|(_, m)| *m)
    }

    /// Every stored room: `None` if not asked yet.
    pub(crate) fn stored_rooms(&self) -> Option<Result<&[(BareJid, StoredRoom)], &str>> {
        self.stored_rooms.as_ref().map(|all| all.as_deref().map_err(String::as_str))
    }
}

/// Room storage a host reads synchronously (tests, and hosts whose storage is in memory or
/// on a local disk), to answer the core's storage questions with [`Facts::answer_from`].
pub trait ReadRooms {
    fn load_room(&self, room: &BareJid) -> Result<Option<StoredRoom>, String>;
    fn stored_rooms(&self) -> Result<Vec<(BareJid, StoredRoom)>, String>;
}

/// A write the host performs before delivering anything of the outcome that holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    pub room: BareJid,
    /// The room's new records; `None` deletes them.
    pub record: Option<StoredRoom>,
    pub why: StoreReason,
}

/// Why the core writes a room's records, which says what a failed write undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreReason {
    /// The room changed (configuration, affiliations, subject): if the write fails, the
    /// change is undone and the sender gets an error instead of the outcome.
    Change,
    /// The room was put away to make space for another: if the write fails, it stays live
    /// and the stanza that needed the space is refused.
    Evict,
    /// A room brought back with its occupants: its saved state is cleared (a failure is
    /// logged; the state is read again only if the room is evicted and brought back first).
    ClearState,
    /// A destroyed room's records are deleted or replaced by its tombstone, or a tombstone
    /// has expired (a failure is logged: the room is gone from memory either way).
    Remove,
    /// Every live room with its occupants, when the server stops (a failure is logged).
    Shutdown,
}
