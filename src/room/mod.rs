//! One room: its occupants, affiliations and settings, and the primitives every feature
//! uses — saving occupants, announcing their presence, changing affiliations and roles.
//!
//! The features live beside it, one module each, as Prosody splits muc/*.lib.lua:
//! [`presence`] (joining, leaving, nick changes), [`message`] (groupchat, subject, history,
//! private messages), [`admin`] (muc#admin), [`owner`] (muc#owner), [`register`]
//! (jabber:iq:register) and [`disco`].

pub mod admin;
pub mod disco;
pub mod hats;
pub mod invite;
pub mod iq;
pub mod message;
pub mod moderation;
pub mod mucsub;
pub mod occupant_presence;
pub mod occupants;
pub mod owner;
pub mod presence;
pub mod register;
pub mod service_admins;
pub mod settings;
pub mod vcard;

use crate::affiliation::{Affiliation, Role};
use crate::config::HostConfig;
use crate::hooks::{AffiliationChange, Answer, Event, Hook, Question};
use crate::occupant::Occupant;
use crate::ordered_map::OrderedMap;
use crate::outcome::{LogLevel, Outcome};
use crate::protocol::Facts;
use crate::xml::{el, muc_user_x, ElementExt, StanzaError, NS_CLIENT, NS_MUC_USER, NS_OCCUPANT_ID};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use occupants::Occupants;
use settings::{RoomSettings, Tombstone, Whois};
use std::collections::VecDeque;

/// What one call into a room may use: host configuration, the facts the host supplied,
/// and where its output goes.
pub struct Ctx<'a> {
    pub config: &'a HostConfig,
    pub facts: &'a Facts,
    pub out: &'a mut Outcome,
    /// The MUC service's own JID (errors raised by the service itself come from it).
    pub host: &'a BareJid,
    /// What a failed write of this call's records undoes.
    pub(crate) undo: Undo,
    /// How many ids this call made up (see [`Ctx::uuid`]).
    minted: u64,
    /// The sender's admin status as their room learnt it, when the host was not asked.
    pub(crate) sender_admin: Option<(BareJid, bool)>,
}

/// What a failed write undoes (see [`crate::protocol`]).
#[derive(Default)]
pub(crate) struct Undo {
    /// The changed room as it was before this call changed it.
    pub changed: Option<Box<Room>>,
    /// Rooms put away to make space, which stay live if their write fails.
    pub evicted: Vec<Room>,
}

impl<'a> Ctx<'a> {
    pub fn new(config: &'a HostConfig, facts: &'a Facts, out: &'a mut Outcome, host: &'a BareJid) -> Ctx<'a> {
        Ctx { config, facts, out, host, undo: Undo::default(), minted: 0, sender_admin: None }
    }

    /// Seconds since the Unix epoch, as the host said.
    pub fn now(&self) -> i64 {
        self.facts.now
    }

    /// A new UUID, from the host's entropy for this call.
    pub fn uuid(&mut self) -> String {
        crate::id::uuid_v4(self.draw())
    }

    /// A new id for a stanza that came without one.
    pub fn stanza_id(&mut self) -> String {
        crate::id::stanza_id(self.draw())
    }

    fn draw(&mut self) -> u128 {
        self.minted += 1;
        crate::id::draw(self.facts.entropy, self.minted)
    }

    /// Whether `user` is a service admin, as the host said for this stanza or the room
    /// learnt of its sender: `None` if neither knows.
    pub(crate) fn known_admin(&self, user: &BareJid) -> Option<bool> {
        match &self.sender_admin {
            Some((sender, is_admin)) if sender == user => Some(*is_admin),
            _ => self.facts.service_admin(user),
        }
    }

    /// Whether the host's modules listen at `hook` (see [`crate::hooks`]).
    pub fn listens(&self, hook: Hook) -> bool {
        self.facts.listening.contains(hook)
    }

    pub fn send(&mut self, stanza: Element, to: Jid) {
        self.out.send(stanza, to);
    }

    /// Answers `stanza` with an error, unless it is itself an error.
    pub fn error(&mut self, stanza: &Element, error: StanzaError, by: Option<&str>) {
        self.out.error(stanza, error, by);
    }

    /// At a step modules may refuse or change: the answer to go on with, or `None` to stop
    /// here (they refused, or the host is asked first; see [`crate::hooks`]).
    pub fn consult(&mut self, hook: Hook, question: impl FnOnce() -> Question) -> Option<Answer> {
        let go_on = Answer::Allowed { nick: None, role: None };
        if !self.listens(hook) {
            return Some(go_on);
        }
        match self.facts.answer(hook) {
            Some(Answer::Refused) => None,
            Some(answer) => Some(answer.clone()),
            None => {
                self.out.ask(crate::protocol::Question::Module(question()));
                None
            }
        }
    }

    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.out.log(level, message);
    }
}

/// Data kept with an affiliation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AffiliationData {
    pub reserved_nickname: Option<String>,
    pub reason: Option<String>,
    /// Keys other modules keep (e.g. hats), preserved as found.
    pub extra: crate::data::Table,
}

impl AffiliationData {
    fn is_empty(&self) -> bool {
        self.reserved_nickname.is_none() && self.reason.is_none() && self.extra.is_empty()
    }
}

/// What to do with an affiliation's data when the affiliation is set.
#[derive(Debug, Clone, PartialEq)]
pub enum DataChange {
    Keep,
    Clear,
    Set(AffiliationData),
}

/// Who asks for a change: a user (checked against the rules) or the room itself.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Room,
    User(&'a Jid),
}

impl<'a> Actor<'a> {
    fn jid(self) -> Option<&'a Jid> {
        match self {
            Actor::Room => None,
            Actor::User(j) => Some(j),
        }
    }
}

/// The `<x/>` payloads of an occupant's presence: what everyone sees, and optionally
/// what the occupant's own sessions see instead (before status 110 is added).
#[derive(Debug, Clone)]
pub struct PresenceX {
    pub base: Element,
    pub own: Option<Element>,
}

impl PresenceX {
    pub fn codes(codes: &[u16]) -> Self {
        PresenceX { base: muc_user_x(codes), own: None }
    }
}

#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The message as broadcast, with a `<delay/>` stamped by the room, without `to`.
    pub stanza: Element,
    pub timestamp: i64,
    /// Serialized length, computed on demand for `maxchars`.
    pub chars: Option<usize>,
    /// Who sent it, where occupants may retract their messages from the history (ejabberd:
    /// stock finds one by its sender and origin-id); else `None`.
    pub sender: Option<Box<BareJid>>,
}

/// Rooms from this many occupants mark the presences of occupant lists as repeatable.
const REPEATED_PRESENCES_FROM: usize = 16;

#[derive(Debug, Clone)]
pub struct Room {
    pub jid: BareJid,
    pub settings: RoomSettings,
    occupants: Occupants,
    /// In the order they were granted.
    affiliations: OrderedMap<BareJid, Affiliation>,
    affiliation_data: OrderedMap<BareJid, AffiliationData>,
    pub history: VecDeque<HistoryEntry>,
    /// Occupants (nick, user, the real JID others last saw) who left since the host last looked: for its modules, and
    /// an empty temporary room is destroyed then, and only then (a room whose first join
    /// failed stays, as stock).
    pub departed: Vec<(FullJid, BareJid, Option<FullJid>)>,
    /// Changes with every change of an occupant, so the host may keep a copy of the list
    /// until then (modules walk `room._occupants`).
    pub occupants_version: u32,
    /// The hash of the room's avatar, asked of the host once and kept until it changes.
    avatar_hash: std::cell::OnceCell<Option<Box<str>>>,
    /// Set when the room's record changed and must be written before anyone is told (by
    /// [`Room::will_change_record`]).
    pub(crate) needs_save: bool,
    /// Reason and new venue given when an owner destroyed the room.
    pub destroyed_with: Option<Box<Tombstone>>,
    /// The occupants who are service admins (see [`service_admins`]); `None` for none, as
    /// in most rooms (a room's size counts: thousands are live at once).
    #[allow(clippy::box_collection)] // one word in every room, not three; rarely allocated
    admins_present: Option<Box<Vec<BareJid>>>,
    /// Whether every occupant's admin status is known (not yet for a room brought back
    /// with its occupants).
    admins_known: bool,
}

impl Room {
    pub fn new(jid: BareJid, settings: RoomSettings) -> Self {
        Room {
            jid,
            settings,
            occupants: Occupants::default(),
            affiliations: OrderedMap::default(),
            affiliation_data: OrderedMap::default(),
            history: VecDeque::new(),
            departed: Vec::new(),
            occupants_version: 0,
            avatar_hash: std::cell::OnceCell::new(),
            needs_save: false,
            destroyed_with: None,
            admins_present: None,
            admins_known: false,
        }
    }

    pub fn jid_str(&self) -> &str {
        self.jid.as_str()
    }

    /// A room made, or brought back from a record without one, gets the salt its occupant
    /// ids are made with (XEP-0421: they differ from room to room), kept for its life.
    pub(crate) fn ensure_salt(&mut self, ctx: &mut Ctx) {
        if self.settings.occupant_id_salt.is_empty() {
            self.settings.occupant_id_salt = ctx.uuid().into();
        }
    }

    /// Keeps the room as it is now (once per call) to put back if this call's writes fail.
    /// Called before anything changes, so the copy is exact.
    pub(crate) fn keep_undo(&self, ctx: &mut Ctx) {
        if ctx.undo.changed.is_none() {
            ctx.undo.changed = Some(Box::new(self.clone()));
        }
    }

    /// Called just before a change to what is stored about the room (configuration,
    /// affiliations, subject): the room is kept as it was, and stored once the call is done.
    /// The copy is taken here, where the change begins, and only then: a groupchat message,
    /// the hot path, never pays for one.
    pub(crate) fn will_change_record(&mut self, ctx: &mut Ctx) {
        self.keep_undo(ctx);
        self.needs_save = true;
    }

    pub fn has_occupants(&self) -> bool {
        !self.occupants.is_empty()
    }

    pub fn occupant_count(&self) -> usize {
        self.occupants.len()
    }

    pub fn occupants(&self) -> impl Iterator<Item = &Occupant> {
        self.occupants.iter()
    }

    pub fn occupant_by_nick(&self, nick: &str) -> Option<&Occupant> {
        self.occupants.get(nick)
    }

    /// The nickname a live session occupies.
    pub fn nick_of(&self, real_jid: &FullJid) -> Option<&str> {
        self.occupants.by_session(real_jid).map(Occupant::nick_str)
    }

    /// Every live session with the nickname it occupies (read-only, for tests and checks).
    pub fn live_sessions(&self) -> impl Iterator<Item = (&FullJid, &str)> {
        self.occupants.live_sessions().map(|(j, o)| (j, o.nick_str()))
    }

    pub fn occupant_by_real_jid(&self, real_jid: &FullJid) -> Option<&Occupant> {
        self.occupants.by_session(real_jid)
    }

    /// The in-room JID for a nickname.
    pub fn nick_jid(&self, nick: &str) -> Option<FullJid> {
        self.jid.with_resource_str(nick).ok()
    }

    // ----- affiliations -----

    /// The stored affiliation, or `outcast` when the user's whole server is banned.
    pub fn stored_affiliation(&self, jid: &BareJid) -> Affiliation {
        if let Some(a) = self.affiliations.get(jid) {
            return *a;
        }
        if jid.node().is_some() {
            let host = BareJid::from_parts(None, jid.domain());
            if self.affiliations.get(&host) == Some(&Affiliation::Outcast) {
                return Affiliation::Outcast;
            }
        }
        Affiliation::None
    }

    /// The effective affiliation: service admins own every room where the host says so.
    /// A module's replacement of the room's rule, where the host gives one, comes first.
    pub fn affiliation(&self, ctx: &Ctx, jid: &BareJid) -> Affiliation {
        if let Some(patched) = ctx.facts.patched_affiliation(&self.jid, jid) {
            return patched;
        }
        if ctx.config.admins_as_room_owners && self.is_service_admin(ctx, jid) {
            return Affiliation::Owner;
        }
        self.stored_affiliation(jid)
    }

    /// An occupant's effective affiliation (their admin status as learnt when they joined).
    pub fn occupant_affiliation(&self, ctx: &Ctx, occupant: &Occupant) -> Affiliation {
        if let Some(patched) = ctx.facts.patched_affiliation(&self.jid, &occupant.bare_jid) {
            return patched;
        }
        if ctx.config.admins_as_room_owners && self.is_admin_occupant(ctx, occupant) {
            return Affiliation::Owner;
        }
        self.stored_affiliation(&occupant.bare_jid)
    }

    pub fn affiliations(&self) -> impl Iterator<Item = (&BareJid, Affiliation)> {
        self.affiliations.iter().map(|(j, a)| (j, *a))
    }

    pub fn all_affiliation_data(&self) -> impl Iterator<Item = (&BareJid, &AffiliationData)> {
        self.affiliation_data.iter()
    }

    pub(crate) fn restore_affiliation(&mut self, jid: BareJid, affiliation: Affiliation) {
        if affiliation != Affiliation::None {
            self.affiliations.insert(jid, affiliation);
        }
    }

    pub(crate) fn restore_affiliation_data(&mut self, jid: BareJid, data: AffiliationData) {
        if !data.is_empty() {
            self.affiliation_data.insert(jid, data);
        }
    }

    pub fn affiliation_data(&self, jid: &BareJid) -> Option<&AffiliationData> {
        self.affiliation_data.get(jid)
    }

    pub fn registered_nick(&self, jid: &BareJid) -> Option<&str> {
        self.affiliation_data.get(jid)?.reserved_nickname.as_deref()
    }

    /// Who reserved `nick`, if anyone.
    pub fn registered_jid(&self, nick: &str) -> Option<&BareJid> {
        self.affiliation_data
            .iter()
            .find(|(_, d)| d.reserved_nickname.as_deref() == Some(nick))
            .map(|(j, _)| j)
    }

    /// The role a user of this affiliation gets on joining; `None` keeps them out.
    pub fn default_role(&self, affiliation: Affiliation) -> Option<Role> {
        match affiliation {
            Affiliation::None if self.settings.members_only => None,
            Affiliation::None if self.settings.moderated => Some(Role::Visitor),
            Affiliation::Admin | Affiliation::Owner => Some(Role::Moderator),
            Affiliation::None | Affiliation::Member => Some(Role::Participant),
            Affiliation::Outcast => None,
        }
    }

    // ----- occupants -----

    /// Replaces any `<occupant-id/>` in `stanza` with the room's id for `bare_jid`
    /// (XEP-0421), so clients can neither forge nor lose it.
    pub fn stamp_occupant_id(&self, ctx: &Ctx, stanza: &mut Element, bare_jid: &BareJid) {
        if !ctx.config.occupant_id {
            return;
        }
        while stanza.remove_child("occupant-id", NS_OCCUPANT_ID).is_some() {}
        let id = crate::id::occupant_id(bare_jid.as_str(), &self.settings.occupant_id_salt);
        stanza.append_child(el("occupant-id", NS_OCCUPANT_ID).with("id", id));
    }

    pub fn new_occupant(&self, ctx: &Ctx, bare_jid: BareJid, nick: FullJid) -> Occupant {
        let role = self.default_role(self.affiliation(ctx, &bare_jid));
        let mut occupant = Occupant::new(bare_jid, nick, role);
        occupant.service_admin = ctx.known_admin(&occupant.bare_jid);
        occupant
    }

    /// Stores an occupant; one with no role or no live session leaves the room.
    /// Returns the occupant as stored.
    pub fn save_occupant(&mut self, mut occupant: Occupant) -> Option<Occupant> {
        self.occupants_version = self.occupants_version.wrapping_add(1);
        occupant.prune_departed();
        let stays = occupant.role.is_some() && occupant.has_live_session();
        if stays {
            self.occupants.put(occupant.clone());
            self.note_admin_presence(&occupant, true);
            Some(occupant)
        } else {
            if let Some(gone) = self.occupants.remove(occupant.nick_str()) {
                self.note_admin_presence(&gone, false);
                self.departed.push(gone.into_departure());
            }
            None
        }
    }

    pub fn can_see_real_jids(&self, occupant_role: Option<Role>) -> bool {
        match self.settings.whois {
            Whois::Anyone => true,
            Whois::Moderators => occupant_role == Some(Role::Moderator),
        }
    }

    /// Whether real JIDs are hidden from `jid` (stock's `is_anonymous_for`).
    pub fn is_anonymous_for(&self, ctx: &Ctx, jid: &FullJid) -> bool {
        if self.settings.whois == Whois::Anyone {
            return false;
        }
        if self.affiliation(ctx, &jid.to_bare()) >= Affiliation::Admin {
            return false;
        }
        !self.occupant_by_real_jid(jid).is_some_and(|o| self.can_see_real_jids(o.role))
    }

    /// `<x xmlns='…muc#user'/>` with just the items describing `occupant`: one per session
    /// when real JIDs are shown.
    fn items_x(&self, ctx: &Ctx, occupant: &Occupant, anonymous: bool) -> Element {
        let affiliation = self.occupant_affiliation(ctx, occupant);
        let item = |jid: Option<&str>| {
            item_element(affiliation, Some(occupant.role_or_none()), jid, None, None, None, None)
        };
        let mut x = muc_user_x(&[]);
        if anonymous {
            x.append_child(item(None));
        } else {
            for jid in occupant.session_jids() {
                x.append_child(item(Some(jid.as_str())));
            }
        }
        x
    }

    /// The items describing `occupant` (stock's `build_item_list`): one per session, with
    /// its real JID, unless `anonymous`; the nick, actor and reason as given.
    #[allow(clippy::too_many_arguments)]
    pub fn item_list(
        &self,
        ctx: &Ctx,
        occupant: &Occupant,
        anonymous: bool,
        nick: Option<&str>,
        actor_nick: Option<&str>,
        actor_jid: Option<&str>,
        reason: Option<&str>,
    ) -> Vec<Element> {
        let affiliation = self.occupant_affiliation(ctx, occupant);
        let item = |jid: Option<&str>| {
            item_element(affiliation, Some(occupant.role_or_none()), jid, nick, actor_nick, actor_jid, reason)
        };
        if anonymous {
            return vec![item(None)];
        }
        occupant.session_jids().map(|jid| item(Some(jid.as_str()))).collect()
    }

    /// Sends the presence of every occupant (but those `skip` rejects) to one session.
    pub fn send_occupant_list(&self, ctx: &mut Ctx, to: &FullJid, skip: impl Fn(&Occupant) -> bool) {
        let to_bare = to.to_bare();
        let anonymous = self.is_anonymous_for(ctx, to);
        // In a big room each presence of the list goes to every newcomer again.
        let repeats = self.occupants.len() >= REPEATED_PRESENCES_FROM;
        for occupant in self.occupants.iter() {
            if skip(occupant) {
                continue;
            }
            let own = occupant.bare_jid == to_bare;
            if !(own || self.settings.broadcasts(occupant.role_or_none())) {
                continue;
            }
            let x = self.items_x(ctx, occupant, anonymous && !own);
            if let Some(pr) = occupant.presence(None) {
                let mut pr = pr.child(x);
                self.add_hats(ctx, &mut pr, &occupant.bare_jid);
                pr.unset("to");
                let of = (&occupant.nick, &occupant.bare_jid, true);
                self.send_listed_presence(ctx, pr, of, to, repeats);
            }
        }
        if self.settings.broadcasts(Role::None) {
            // Affiliated users who are not here, when the room shows role "none".
            for (jid, affiliation) in self.affiliations.iter() {
                let nick = self.registered_nick(jid);
                if (nick.is_none() && anonymous) || self.occupants.iter().any(|o| &o.bare_jid == jid) {
                    continue;
                }
                let from = match nick {
                    Some(n) => format!("{}/{}", self.jid, n),
                    None => self.jid.to_string(),
                };
                let item = item_element(
                    *affiliation,
                    Some(Role::None),
                    (!anonymous).then_some(jid.as_str()),
                    nick,
                    None,
                    None,
                    None,
                );
                let pr = el("presence", NS_CLIENT)
                    .with("from", from)
                    .with("type", "unavailable")
                    .child(muc_user_x(&[]).child(item));
                ctx.send(pr, to.clone().into());
            }
        }
    }

    /// Sends `stanza` to every session of every occupant (with roles at least `min_role`).
    pub fn broadcast(&self, ctx: &mut Ctx, stanza: Element, min_role: Role) {
        ctx.out.send_many(stanza, self.recipients(min_role));
    }

    /// Every session of every occupant with a role at least `min_role`.
    pub fn recipients(&self, min_role: Role) -> Vec<Jid> {
        self.occupants
            .iter()
            .filter(|o| o.role_or_none() >= min_role)
            .flat_map(|o| o.session_jids().cloned().map(Jid::from))
            .collect()
    }

    // ----- changing affiliations and roles -----

    /// Sets `jid`'s affiliation (stock's `set_affiliation`), announcing the change to the
    /// room and updating the roles of the user's occupants.
    pub fn set_affiliation(
        &mut self,
        ctx: &mut Ctx,
        actor: Actor,
        jid: &BareJid,
        affiliation: Affiliation,
        reason: Option<&str>,
        data: DataChange,
    ) -> Result<(), StanzaError> {
        if affiliation != Affiliation::Owner
            && ctx.config.admins_as_room_owners
            && self.is_service_admin(ctx, jid)
        {
            return Err(StanzaError::not_acceptable());
        }
        let is_new_entry = affiliation != Affiliation::None && !self.affiliations.contains_key(jid);
        if is_new_entry && self.affiliations.len() >= ctx.config.max_affiliations {
            return Err(StanzaError::resource_constraint());
        }
        let is_host_only = jid.node().is_none();
        let target = self.affiliations.get(jid).copied().unwrap_or(Affiliation::None);
        let is_downgrade = target > affiliation;
        if let Actor::User(actor_jid) = actor {
            let actor_bare = actor_jid.to_bare();
            match self.affiliation(ctx, &actor_bare) {
                Affiliation::Owner => {
                    if &actor_bare == jid && is_downgrade {
                        let other_owner =
                            self.affiliations.iter().any(|(j, a)| *a == Affiliation::Owner && j != jid);
                        if !other_owner {
                            return Err(StanzaError::conflict());
                        }
                    }
                }
                Affiliation::Admin if affiliation < Affiliation::Admin && target < Affiliation::Admin => {}
                _ => return Err(StanzaError::not_allowed()),
            }
        }

        let change = |room: &BareJid| AffiliationChange {
            room: room.clone(),
            actor: actor.jid().cloned(),
            jid: jid.clone(),
            affiliation,
            previous: target,
            reason: reason.map(str::to_owned),
        };
        let mut data = data;
        if ctx.listens(Hook::PreSetAffiliation) {
            // Stock's muc-pre-set-affiliation: a handler may refuse (event.allowed = false,
            // event.error), or give the data when none was.
            match ctx.facts.affiliation_answer(jid) {
                None => {
                    let given = match &data {
                        DataChange::Set(d) => Some(d.to_data()),
                        _ => None,
                    };
                    let question = Question::PreSetAffiliation { change: change(&self.jid), data: given };
                    ctx.out.ask(crate::protocol::Question::Module(question));
                    return Err(StanzaError::internal_server_error()); // never sent: asked first
                }
                Some(Answer::Affiliation { refused: Some((kind, condition)), .. }) => {
                    return Err(StanzaError::named(kind, condition));
                }
                Some(Answer::Affiliation { data: Some(kept), .. }) => {
                    data = DataChange::Set(AffiliationData::from_data(kept));
                }
                Some(_) => {}
            }
        }

        self.will_change_record(ctx);
        if affiliation == Affiliation::None {
            self.affiliations.remove(jid);
        } else {
            self.affiliations.insert(jid.clone(), affiliation);
        }
        match data {
            _ if affiliation == Affiliation::None => {
                self.affiliation_data.remove(jid);
            }
            DataChange::Clear => {
                self.affiliation_data.remove(jid);
            }
            DataChange::Set(d) if d.is_empty() => {
                self.affiliation_data.remove(jid);
            }
            DataChange::Set(d) => {
                self.affiliation_data.insert(jid.clone(), d);
            }
            DataChange::Keep => {}
        }

        // Update the roles of the user's occupants (or, for a server ban, of its users').
        let role = self.default_role(affiliation);
        let mut updated: Vec<(Occupant, Option<Role>)> = Vec::new();
        let affected: Vec<String> = self
            .occupants
            .iter()
            .filter(|o| {
                &o.bare_jid == jid
                    || (is_host_only
                        && affiliation == Affiliation::Outcast
                        && o.bare_jid.domain() == jid.domain())
            })
            .map(|o| o.nick_str().to_owned())
            .collect();
        for nick in affected {
            let Some(mut occupant) = self.occupants.get(&nick).cloned() else { continue };
            let old_role = occupant.role;
            if occupant.role != role && (is_downgrade || occupant.role < role) {
                occupant.role = role;
                self.save_occupant(occupant.clone());
            }
            updated.push((occupant, old_role));
        }

        let x = match role {
            None if affiliation == Affiliation::Outcast => muc_user_x(&[301]),
            None => muc_user_x(&[321]),
            Some(_) => muc_user_x(&[]),
        };
        let semi_anonymous = self.settings.whois == Whois::Moderators;
        if updated.is_empty() {
            // XEP-0045 example 195: tell the room about a user who is not in it.
            let item = item_element(affiliation, None, Some(jid.as_str()), None, None, None, reason);
            let msg = el("message", NS_CLIENT).with("from", self.jid.as_str()).child(x.child(item));
            let min_role = if semi_anonymous { Role::Moderator } else { Role::None };
            self.broadcast(ctx, msg, min_role);
        } else {
            let px = PresenceX { base: x, own: None };
            let actor = actor.jid();
            for (occupant, old_role) in &updated {
                self.publicise(ctx, occupant, &px, None, actor, reason, *old_role, false);
                if occupant.role.is_some()
                    && semi_anonymous
                    && ((*old_role == Some(Role::Moderator)) != (occupant.role == Some(Role::Moderator)))
                {
                    // Gained or lost moderator: which real JIDs they see has changed.
                    for session in occupant.session_jids() {
                        self.send_occupant_list(ctx, session, |o| &o.bare_jid == jid);
                    }
                }
            }
        }
        if ctx.listens(Hook::AffiliationChanged) {
            ctx.out
                .fire(Event::AffiliationChanged { change: change(&self.jid), in_room: !updated.is_empty() });
        }
        Ok(())
    }

    /// Sets an occupant's role (stock's `set_role`); `None` kicks (status 307).
    pub fn set_role(
        &mut self,
        ctx: &mut Ctx,
        actor: Actor,
        nick: &str,
        role: Option<Role>,
        reason: Option<&str>,
    ) -> Result<(), StanzaError> {
        let Some(mut occupant) = self.occupants.get(nick).cloned() else {
            return Err(StanzaError::new(crate::xml::ErrorType::Modify, "item-not-found"));
        };
        if let Actor::User(actor_jid) = actor {
            self.may_set_role(ctx, actor_jid, &occupant, role)?;
        }
        let x = if role.is_none() { muc_user_x(&[307]) } else { muc_user_x(&[]) };
        let prev_role = occupant.role;
        occupant.role = role;
        self.save_occupant(occupant.clone());
        let px = PresenceX { base: x, own: None };
        self.publicise(ctx, &occupant, &px, None, actor.jid(), reason, prev_role, false);
        Ok(())
    }

    fn may_set_role(
        &self,
        ctx: &Ctx,
        actor: &Jid,
        occupant: &Occupant,
        role: Option<Role>,
    ) -> Result<(), StanzaError> {
        let actor_affiliation = self.affiliation(ctx, &actor.to_bare());
        let target_affiliation = self.occupant_affiliation(ctx, occupant);
        if actor_affiliation < target_affiliation {
            return Err(StanzaError::not_allowed());
        }
        let touches_moderator = occupant.role == Some(Role::Moderator) || role == Some(Role::Moderator);
        if touches_moderator && actor_affiliation < Affiliation::Admin {
            return Err(StanzaError::not_allowed());
        }
        let actor_occupant = actor.try_as_full().ok().and_then(|a| self.occupant_by_real_jid(a));
        if actor_occupant.is_none_or(|o| o.role != Some(Role::Moderator)) {
            return Err(StanzaError::not_allowed());
        }
        Ok(())
    }

    /// Removes every occupant (the room is being destroyed), each told with `x`.
    pub fn clear(&mut self, ctx: &mut Ctx, x: &PresenceX) {
        let occupants: Vec<Occupant> = self.occupants.iter().cloned().collect();
        let mut removed = Vec::new();
        for mut occupant in occupants {
            let prev = occupant.role.take();
            self.save_occupant(occupant.clone());
            removed.push((occupant, prev));
        }
        for (occupant, prev) in &removed {
            self.publicise(ctx, occupant, x, None, None, None, *prev, false);
        }
    }
}

/// An `<item/>` as stock's `add_item` builds it.
pub fn item_element(
    affiliation: Affiliation,
    role: Option<Role>,
    jid: Option<&str>,
    nick: Option<&str>,
    actor_nick: Option<&str>,
    actor_jid: Option<&str>,
    reason: Option<&str>,
) -> Element {
    let mut item = el("item", NS_MUC_USER)
        .with("affiliation", affiliation.as_str())
        .with_opt("role", role.map(Role::as_str))
        .with_opt("jid", jid)
        .with_opt("nick", nick);
    if actor_nick.is_some() || actor_jid.is_some() {
        item.append_child(el("actor", NS_MUC_USER).with_opt("nick", actor_nick).with_opt("jid", actor_jid));
    }
    if let Some(reason) = reason {
        item.append_child(el("reason", NS_MUC_USER).text(reason));
    }
    item
}
