//! The MUC service on one host: routes each stanza to its room (creating rooms on first
//! join, destroying empty temporary ones) and answers what no room can.

use crate::cache::RoomCache;
use crate::config::HostConfig;
use crate::hooks::{Event, Hook};
use crate::outcome::{LogLevel, Outcome};
use crate::protocol::{Facts, Question, Store, StoreReason, StoredRoom};
use crate::room::owner::OwnerOutcome;
use crate::room::settings::{RoomSettings, Tombstone};
use crate::room::{Ctx, Room, Undo};
use crate::xml::{
    el, reply, ElementExt, StanzaError, NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_MUC_ADMIN,
    NS_MUC_OWNER, NS_MUC_USER, NS_OCCUPANT_ID, NS_REGISTER,
};
pub use commit::Confirmed;
use commit::Unconfirmed;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;

pub struct MucHost {
    domain: BareJid,
    config: HostConfig,
    rooms: RoomCache,
    /// A room being made by a join the core asked the modules about: they see it (its
    /// creator already its owner) as on stock, where it exists by then. It is made anew,
    /// or not, when the answer comes.
    pending: Option<Box<Room>>,
    /// The last outcome's stores not confirmed yet, and what their failure undoes.
    unconfirmed: Option<Box<Unconfirmed>>,
}

impl MucHost {
    pub fn new(domain: &str, config: HostConfig) -> Result<Self, String> {
        let domain = BareJid::new(domain).map_err(|e| format!("invalid host {domain:?}: {e}"))?;
        if domain.node().is_some() {
            return Err(format!("invalid host {domain}: a MUC service has no node"));
        }
        let rooms = RoomCache::new(config.max_rooms.unwrap_or(config.room_cache_size));
        Ok(MucHost { domain, config, rooms, pending: None, unconfirmed: None })
    }

    pub fn domain(&self) -> &BareJid {
        &self.domain
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The host's options changed (ejabberd's `reload_config`): service-wide settings and
    /// limits apply from the next stanza, the room defaults to rooms made from then on;
    /// rooms keep their own settings.
    pub fn reconfigure(&mut self, config: HostConfig) {
        self.rooms.set_capacity(config.max_rooms.unwrap_or(config.room_cache_size));
        self.config = config;
    }

    /// A live room, or the one being made while the modules are asked about its creator.
    pub fn room(&self, jid: &BareJid) -> Option<&Room> {
        self.rooms.get(jid).or_else(|| self.pending.as_deref().filter(|p| p.jid == *jid))
    }

    fn room_mut(&mut self, jid: &BareJid) -> Option<&mut Room> {
        match self.rooms.get_mut(jid) {
            Some(room) => Some(room),
            None => self.pending.as_deref_mut().filter(|p| p.jid == *jid),
        }
    }

    /// Every room, in no particular order (read-only, for tests and checks).
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.rooms()
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Public rooms with their names, for the service's disco#items.
    pub fn public_rooms(&self) -> Vec<(String, Option<String>)> {
        public_rooms(&self.rooms)
    }

    /// Public rooms that are only in storage, read without bringing them into memory;
    /// `None` once the host is asked for them.
    fn stored_public_rooms(rooms: &RoomCache, ctx: &mut Ctx) -> Option<Vec<(String, Option<String>)>> {
        let facts = ctx.facts;
        let stored = match facts.stored_rooms() {
            None => {
                ctx.out.ask(Question::StoredRooms);
                return None;
            }
            Some(Ok(stored)) => stored,
            Some(Err(e)) => {
                ctx.log(LogLevel::Error, format!("could not list stored rooms: {e}"));
                return Some(Vec::new());
            }
        };
        let mut public = Vec::new();
        for (jid, record) in stored.iter().filter(|(j, _)| !rooms.contains(j)) {
            match Room::restore(&record.config, None) {
                Ok(room) if !room.settings.hidden && room.settings.tombstone.is_none() => {
                    public.push((jid.to_string(), room.settings.name.map(String::from)))
                }
                Ok(_) => {}
                Err(e) => ctx.log(LogLevel::Error, format!("stored room {jid} is unreadable: {e}")),
            }
        }
        Some(public)
    }

    /// Handles one stanza addressed to the service or one of its rooms, with what the host
    /// has told so far. The outcome either asks a question (nothing changed: answer it in
    /// `facts` and call again), or is to be carried out: if it has stores, only them, and
    /// [`MucHost::confirm`] then gives the rest (see [`crate::protocol`]).
    pub fn handle(&mut self, stanza: &Element, facts: &Facts) -> Outcome {
        self.settle_unconfirmed();
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        let added = Self::route(&mut self.rooms, &mut self.pending, &mut ctx, stanza);
        let undo = std::mem::take(&mut ctx.undo);
        self.hold(out, undo, added, Some(stanza))
    }

    /// The stanza to where it goes; returns the room it added to the live ones, if any.
    fn route(
        rooms: &mut RoomCache,
        pending: &mut Option<Box<Room>>,
        ctx: &mut Ctx,
        stanza: &Element,
    ) -> Option<BareJid> {
        let kind = stanza.attr("type");
        let to = stanza.attr("to").and_then(|t| t.parse::<Jid>().ok());
        let from = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok());
        let (Some(to), Some(from)) = (to, from.clone()) else {
            if let Some(from) = from {
                if Self::refuse_unparsable_nick(rooms, ctx, stanza, from) {
                    return None;
                }
            }
            ctx.log(LogLevel::Warn, format!("dropping <{}/> without valid from/to", stanza.name()));
            return None;
        };
        if stanza.name() == "iq" && matches!(kind, Some("result" | "error")) {
            // Replies to queries the room relayed; a user's server answers from the bare JID.
            if let (Ok(nick), Some(room)) = (to.try_as_full(), rooms.get_mut(&to.to_bare())) {
                room.relay_iq_reply(ctx, stanza, &from, nick);
            }
            return None;
        }
        let Ok(from) = from.try_into_full() else {
            // Every MUC action is taken by a client session.
            ctx.error(stanza, StanzaError::modify_bad_request().with_text("Sender must be a full JID"), None);
            return None;
        };
        if to.domain() != ctx.host.domain() {
            ctx.error(stanza, StanzaError::service_unavailable(), None);
            return None;
        }
        if to.node().is_none() {
            Self::handle_to_service(rooms, ctx, stanza, &from);
            return None;
        }
        let room_jid = to.to_bare();
        let nick = to.try_as_full().ok().cloned();
        let mut added = None;
        if !rooms.contains(&room_jid) {
            match Self::load_room(ctx, &room_jid) {
                Loaded::Asked => return None,
                Loaded::Room(room) => {
                    if Self::make_room_for_one(rooms, ctx).is_err() {
                        let host = ctx.host.to_string();
                        ctx.error(stanza, StanzaError::resource_constraint(), Some(&host));
                        return None;
                    }
                    rooms.insert(*room);
                    added = Some(room_jid.clone());
                }
                Loaded::Absent => {}
                Loaded::Failed => {
                    ctx.error(stanza, StanzaError::internal_server_error(), Some(room_jid.as_str()));
                    return None;
                }
            }
        }
        let live = rooms.get(&room_jid);
        // The room's avatar, where rooms have vCards: asked once, before anything changes.
        if ctx.config.room_vcards
            && !ctx.config.vcards_in_rooms
            && !live.is_some_and(Room::knows_avatar_hash)
            && ctx.facts.avatar_hash(&room_jid).is_none()
        {
            ctx.out.ask(Question::AvatarHash(room_jid));
            return added;
        }
        if let Some(question) = crate::room::service_admins::ask_unknown(ctx, live, stanza, &from) {
            ctx.out.ask(question);
            return added;
        }
        let tombstoned = live.is_some_and(|r| r.settings.tombstone.is_some());
        if let Some(room) = rooms.get_mut(&room_jid) {
            room.learn_service_admins(ctx.facts);
        }
        if tombstoned && !Self::pass_tombstone(rooms, ctx, stanza, &from, &room_jid) {
            return added;
        }
        // The room a join was making when the modules were asked: made on from where it was.
        let pending_room = pending.take_if(|p| p.jid == room_jid);
        let Some(room) = rooms.get_mut(&room_jid) else {
            let created = Self::handle_to_missing_room(
                rooms,
                ctx,
                stanza,
                &from,
                room_jid.clone(),
                pending_room,
                nick.as_ref(),
            );
            match created {
                Some(room) if ctx.out.ask.is_some() => *pending = Some(Box::new(room)),
                Some(mut room) => {
                    report_departures(&mut room, ctx);
                    rooms.insert(room);
                    added = Some(room_jid);
                }
                None => {}
            }
            return added;
        };
        // A change left unstored by an earlier call (a room being made) is stored with this
        // one's: keep the room as it is, to put back if that fails.
        if room.needs_save {
            room.keep_undo(ctx);
        }
        let destroyed = match (stanza.name(), nick) {
            ("presence", Some(nick)) => {
                room.handle_presence_to_occupant(ctx, stanza, &from, &nick);
                false
            }
            ("presence", None) => {
                // Some clients send presence updates to the room itself: use their nick.
                // From anyone else the room has no use for it: stock leaves it unhandled,
                // and Prosody answers service-unavailable.
                match room.nick_of(&from).and_then(|n| room.nick_jid(n)) {
                    Some(nick) => room.handle_presence_to_occupant(ctx, stanza, &from, &nick),
                    None => ctx.error(stanza, StanzaError::service_unavailable(), None),
                }
                false
            }
            ("message", Some(nick)) => {
                room.handle_message_to_occupant(ctx, stanza, &from, &nick);
                false
            }
            ("message", None) => {
                Self::handle_message_to_room(room, ctx, stanza, &from);
                false
            }
            ("iq", Some(nick)) => {
                room.relay_iq_query(ctx, stanza, &from, &nick);
                false
            }
            ("iq", None) => Self::handle_iq_to_room(room, ctx, stanza, &from) == OwnerOutcome::Destroyed,
            _ => {
                ctx.error(stanza, StanzaError::bad_request(), None);
                false
            }
        };
        if ctx.out.ask.is_some() {
            return added;
        }
        let someone_left = report_departures(room, ctx);
        let empty_temporary = someone_left && !room.has_occupants() && !room.settings.persistent;
        if destroyed || empty_temporary {
            ctx.log(LogLevel::Debug, format!("{room_jid} destroyed"));
            ctx.out.fire(Event::RoomDestroyed { room: room_jid.clone() });
            let was_persistent = room.settings.persistent;
            let reason_and_venue = room.destroyed_with.take();
            rooms.remove(&room_jid);
            // Gone from memory whatever storage says: nothing to undo.
            ctx.undo.changed = None;
            let tombstone = (destroyed && was_persistent && ctx.config.tombstones).then(|| {
                let Tombstone { reason, new_jid } = *reason_and_venue.unwrap_or_default();
                tombstone_record(&room_jid, ctx.now() + ctx.config.tombstone_expiry, reason, new_jid)
            });
            ctx.out.stores.push(Store { room: room_jid, record: tombstone, why: StoreReason::Remove });
        } else if std::mem::take(&mut room.needs_save) {
            ctx.out.stores.push(Store {
                room: room_jid,
                record: room_record(room),
                why: StoreReason::Change,
            });
        }
        added
    }

    /// A stanza to `room/nick` whose nick this JID library cannot read (characters
    /// unassigned in Unicode 3.2, which Prosody's router lets through): the nick fails
    /// strict validation, as it does in stock. Returns whether an answer was given.
    fn refuse_unparsable_nick(rooms: &RoomCache, ctx: &mut Ctx, stanza: &Element, from: Jid) -> bool {
        let Some((room, _nick)) = stanza.attr("to").and_then(|t| t.split_once('/')) else { return false };
        let Ok(room) = room.parse::<BareJid>() else { return false };
        if room.node().is_none() || room.domain() != ctx.host.domain() {
            return false;
        }
        let error = match (stanza.name(), stanza.attr("type")) {
            ("presence", None) => {
                StanzaError::jid_malformed().with_text("Nickname must pass strict validation")
            }
            ("presence", _) => return true,
            _ if rooms
                .get(&room)
                .and_then(|r| from.try_as_full().ok().and_then(|f| r.nick_of(f)))
                .is_none() =>
            {
                StanzaError::not_in_room()
            }
            _ => StanzaError::item_not_found().with_text("Recipient not in room"),
        };
        ctx.error(stanza, error, Some(room.as_str()));
        true
    }

    /// Every room, live or stored (for the admins' room list).
    /// `None`: the host has not said which rooms it stores ([`Question::StoredRooms`]).
    pub fn all_room_jids(&self, facts: &Facts) -> Option<Vec<String>> {
        let stored = facts.stored_rooms()?.unwrap_or_default();
        let mut jids: Vec<String> = self.rooms.rooms().map(|r| r.jid.to_string()).collect();
        jids.extend(stored.iter().map(|(j, _)| j.to_string()));
        jids.sort();
        jids.dedup();
        Some(jids)
    }

    /// An admin command: destroys a room (live or stored), as its owner could.
    pub fn admin_destroy(&mut self, room_jid: &str, facts: &Facts) -> Result<Outcome, String> {
        self.destroy_room(room_jid, Tombstone::default(), None, facts)
    }

    /// Brings a room back from storage for a host's or a module's call (`Ok(true)`), if it is
    /// not live; `Ok(false)`: it has no records. The outcome may ask the host for them.
    fn bring_back_into(rooms: &mut RoomCache, ctx: &mut Ctx, jid: &BareJid) -> Result<bool, String> {
        if rooms.contains(jid) {
            return Ok(true);
        }
        match Self::load_room(ctx, jid) {
            Loaded::Asked | Loaded::Absent => Ok(false),
            Loaded::Failed => Err("Could not load the room".into()),
            Loaded::Room(room) => {
                if Self::make_room_for_one(rooms, ctx).is_err() {
                    return Err("resource-constraint".into());
                }
                rooms.insert(*room);
                Ok(true)
            }
        }
    }

    /// Destroys a room (live or stored) with the room's authority, telling its occupants
    /// the reason and the new venue, if any, as an owner's destroy would.
    pub fn destroy_room(
        &mut self,
        room_jid: &str,
        why: Tombstone,
        password: Option<&str>,
        facts: &Facts,
    ) -> Result<Outcome, String> {
        self.settle_unconfirmed();
        let jid: BareJid = room_jid.parse().map_err(|e| format!("{room_jid}: {e}"))?;
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        let was_live = self.rooms.contains(&jid);
        let found = Self::bring_back_into(&mut self.rooms, &mut ctx, &jid)?;
        if ctx.out.ask.is_some() {
            return Ok(out);
        }
        if !found {
            return Err("No such room".into());
        }
        let Some(room) = self.rooms.get_mut(&jid) else { return Err("No such room".into()) };
        if let Some(question) = crate::room::service_admins::unknown_for_change(&ctx, room, &[]) {
            ctx.out.ask(question);
            let undo = std::mem::take(&mut ctx.undo);
            return Ok(self.hold(out, undo, (!was_live).then_some(jid), None));
        }
        room.learn_service_admins(ctx.facts);
        let Some(mut room) = self.rooms.remove(&jid) else { return Err("No such room".into()) };
        room.destroy(&mut ctx, why.new_jid.as_deref(), why.reason.as_deref(), password);
        report_departures(&mut room, &mut ctx);
        ctx.out.fire(Event::RoomDestroyed { room: jid.clone() });
        let Tombstone { reason, new_jid } = why;
        let tombstone = (room.settings.persistent && ctx.config.tombstones)
            .then(|| tombstone_record(&jid, ctx.now() + ctx.config.tombstone_expiry, reason, new_jid));
        ctx.out.stores.push(Store { room: jid, record: tombstone, why: StoreReason::Remove });
        let undo = std::mem::take(&mut ctx.undo);
        Ok(self.hold(out, undo, None, None))
    }

    /// An admin command: sets an affiliation in a room with the room's own authority.
    pub fn admin_set_affiliation(
        &mut self,
        room_jid: &str,
        jid: &str,
        affiliation: &str,
        reason: Option<&str>,
        facts: &Facts,
    ) -> Result<Outcome, String> {
        let room_jid: BareJid = room_jid.parse().map_err(|e| format!("{room_jid}: {e}"))?;
        let jid: BareJid = jid.parse::<Jid>().map_err(|e| format!("{jid}: {e}"))?.to_bare();
        self.admin_change(&room_jid, std::slice::from_ref(&jid), facts, |room, ctx| {
            // As stock words it: the error type and condition set_affiliation gives.
            let affiliation =
                crate::affiliation::Affiliation::parse(affiliation).ok_or("modify:not-acceptable")?;
            room.set_affiliation(
                ctx,
                crate::room::Actor::Room,
                &jid,
                affiliation,
                reason,
                crate::room::DataChange::Keep,
            )
            .map(|_| ())
            .map_err(|e| format!("{}:{}", e.kind.as_str(), e.condition))
        })
    }

    /// The host's admins may have changed (its configuration was reloaded, a role was
    /// granted or taken): each room asks again about its occupants before its next stanza.
    pub fn forget_service_admins(&mut self) {
        self.rooms.rooms_mut().for_each(Room::forget_service_admins);
        if let Some(room) = self.pending.as_deref_mut() {
            room.forget_service_admins();
        }
    }

    /// Stores every live room with its occupants, as stock does when the server stops.
    pub fn save_all(&mut self) -> Outcome {
        self.settle_unconfirmed();
        let stores = self
            .rooms
            .rooms()
            .map(|room| Store {
                room: room.jid.clone(),
                record: Some(record_with_occupants(room)),
                why: StoreReason::Shutdown,
            })
            .collect();
        let out = Outcome { stores, ..Outcome::default() };
        self.hold(out, Undo::default(), None, None)
    }

    /// Evicts the least recently used room (stored with its occupants, as stock swaps
    /// idle rooms to disk) if the cache is full; with `muc_max_rooms`, refuses instead.
    /// The rooms put away wait in the call's undo until their write is confirmed.
    fn make_room_for_one(rooms: &mut RoomCache, ctx: &mut Ctx) -> Result<(), crate::cache::Full> {
        let evicted = match rooms.reserve(ctx.config.max_rooms.is_some()) {
            Ok(evicted) => evicted,
            Err(full) => {
                ctx.log(LogLevel::Info, "room limit reached, no new rooms allowed");
                return Err(full);
            }
        };
        for room in evicted {
            ctx.out.stores.push(Store {
                room: room.jid.clone(),
                record: Some(record_with_occupants(&room)),
                why: StoreReason::Evict,
            });
            ctx.out.fire(Event::RoomEvicted { room: room.jid.clone() });
            ctx.undo.evicted.push(room);
        }
        Ok(())
    }

    /// A room from storage, if it has records there (asked of the host first). Its saved
    /// state (if it was put away live) is consumed.
    fn load_room(ctx: &mut Ctx, jid: &BareJid) -> Loaded {
        let facts = ctx.facts;
        let record = match facts.room(jid) {
            None => {
                ctx.out.ask(Question::LoadRoom(jid.clone()));
                return Loaded::Asked;
            }
            Some(Ok(Some(record))) => record,
            Some(Ok(None)) => return Loaded::Absent,
            Some(Err(e)) => {
                ctx.log(LogLevel::Error, format!("could not load room {jid}: {e}"));
                return Loaded::Failed;
            }
        };
        let mut room = match Room::restore(&record.config, record.state.as_ref()) {
            Ok(room) => room,
            Err(e) => {
                ctx.log(LogLevel::Error, format!("stored room {jid} is unreadable: {e}"));
                return Loaded::Failed;
            }
        };
        if room.jid != *jid {
            // Found under this address, so it is this room, whatever its record says; the
            // occupants it saved were in the other.
            ctx.log(LogLevel::Warn, format!("stored room {jid} names itself {}", room.jid));
            let Ok(renamed) = Room::restore(&record.config, None) else { return Loaded::Failed };
            room = renamed;
            room.jid = jid.clone();
        }
        if record.state.is_some() {
            let record = StoredRoom { config: record.config.clone(), state: None };
            ctx.out.stores.push(Store {
                room: jid.clone(),
                record: Some(record),
                why: StoreReason::ClearState,
            });
        }
        room.ensure_salt(ctx);
        ctx.log(LogLevel::Debug, format!("restored {jid} from storage"));
        Loaded::Room(Box::new(room))
    }

    /// A destroyed room's remains answer `gone` until they expire (or an admin rejoins).
    /// Returns whether the stanza may go on, the remains having been cleared.
    fn pass_tombstone(
        rooms: &mut RoomCache,
        ctx: &mut Ctx,
        stanza: &Element,
        from: &FullJid,
        jid: &BareJid,
    ) -> bool {
        let Some(room) = rooms.get(jid) else { return true };
        let Some(tombstone) = room.settings.tombstone.clone() else { return true };
        let expired = room.settings.locked_until.is_none_or(|until| until < ctx.now());
        let admin_rejoins = stanza.name() == "presence"
            && stanza.attr("type").is_none()
            && ctx.facts.service_admin(&from.to_bare()) == Some(true);
        if expired || admin_rejoins {
            rooms.remove(jid);
            ctx.out.stores.push(Store { room: jid.clone(), record: None, why: StoreReason::Remove });
            return true;
        }
        if stanza.attr("type") != Some("error") {
            let mut error = StanzaError::new(crate::xml::ErrorType::Cancel, "gone");
            error.text = tombstone.reason.clone();
            error.condition_text = tombstone.new_jid.map(|j| format!("xmpp:{j}?join"));
            let host = ctx.host.to_string();
            ctx.error(stanza, error, Some(&host));
        }
        false
    }

    /// The features of the service itself (its disco#info, with the conference identity).
    pub fn service_features(&self) -> Vec<&'static str> {
        service_features(&self.config)
    }

    /// The service itself: its disco#info, room list and unique room names. On Prosody
    /// mod_disco answers the disco#info first (from `service_features`, with the host's
    /// other modules' features); hosts without such a module get the core's answer.
    fn handle_to_service(rooms: &RoomCache, ctx: &mut Ctx, stanza: &Element, from: &FullJid) {
        let query = stanza.children().next();
        let get = stanza.name() == "iq" && stanza.attr("type") == Some("get");
        match query {
            Some(q) if get && q.is("query", NS_DISCO_INFO) && q.attr("node").is_none() => {
                let identity = el("identity", NS_DISCO_INFO)
                    .with("category", "conference")
                    .with("type", "text")
                    .with("name", ctx.config.name.as_str());
                let mut info = el("query", NS_DISCO_INFO).child(identity);
                for feature in [NS_DISCO_INFO, NS_DISCO_ITEMS].into_iter().chain(service_features(ctx.config))
                {
                    info.append_child(el("feature", NS_DISCO_INFO).with("var", feature));
                }
                ctx.send(reply(stanza).child(info), from.clone().into());
            }
            Some(q) if get && q.is("query", NS_DISCO_ITEMS) => {
                let mut items = el("query", NS_DISCO_ITEMS).with_opt("node", q.attr("node"));
                if q.attr("node").is_none() {
                    let Some(stored) = Self::stored_public_rooms(rooms, ctx) else { return };
                    let mut listed = public_rooms(rooms);
                    listed.extend(ctx.facts.public_rooms_elsewhere.iter().cloned());
                    listed.extend(stored);
                    listed.sort();
                    // A stored room may be live on another node too.
                    listed.dedup_by(|a, b| a.0 == b.0);
                    for (jid, name) in listed {
                        items
                            .append_child(el("item", NS_DISCO_ITEMS).with("jid", jid).with_opt("name", name));
                    }
                }
                ctx.send(reply(stanza).child(items), from.clone().into());
            }
            Some(q) if get && q.is("unique", NS_MUC_UNIQUE) => {
                let name = ctx.uuid();
                ctx.send(reply(stanza).child(el("unique", NS_MUC_UNIQUE).text(name)), from.clone().into());
            }
            _ if stanza.name() == "iq" => {
                if matches!(stanza.attr("type"), Some("get" | "set")) {
                    ctx.error(stanza, StanzaError::service_unavailable(), None);
                }
            }
            _ => ctx.error(stanza, StanzaError::item_not_found(), None),
        }
    }

    /// A stanza for a room that does not exist: a join creates it, the rest is refused.
    fn handle_to_missing_room(
        rooms: &mut RoomCache,
        ctx: &mut Ctx,
        stanza: &Element,
        from: &FullJid,
        room_jid: BareJid,
        pending: Option<Box<Room>>,
        nick: Option<&FullJid>,
    ) -> Option<Room> {
        let host = ctx.host.to_string();
        let is_join = stanza.name() == "presence"
            && stanza.attr("type").is_none()
            && stanza.get_child("x", NS_MUC).is_some();
        if !is_join {
            // Stock answers the namespaces it serves with item-not-found; other iqs find no
            // handler at all, which Prosody answers with service-unavailable.
            let served = [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC_ADMIN, NS_MUC_OWNER, NS_REGISTER];
            let room_vcard =
                |q: &Element| ctx.config.vcards_in_rooms && q.is("vCard", crate::room::vcard::NS_VCARD);
            let unserved_iq = stanza.name() == "iq"
                && !stanza
                    .children()
                    .next()
                    .is_some_and(|q| served.iter().any(|ns| q.is("query", *ns)) || room_vcard(q));
            if unserved_iq {
                ctx.error(stanza, StanzaError::service_unavailable(), None);
            } else {
                ctx.error(stanza, StanzaError::item_not_found(), Some(&host));
            }
            return None;
        }
        let Some(nick) = nick else {
            ctx.error(stanza, StanzaError::jid_malformed().with_text("A nickname is required"), Some(&host));
            return None;
        };
        if Self::make_room_for_one(rooms, ctx).is_err() {
            ctx.error(stanza, StanzaError::resource_constraint(), Some(&host));
            return None;
        }
        let mut room = match pending {
            Some(room) => *room,
            None => {
                let lang = crate::xml::xml_lang(stanza);
                Room::new(room_jid, RoomSettings::with_defaults(&ctx.config.defaults, lang))
            }
        };
        room.ensure_salt(ctx);
        let mut room = room.handle_first_presence(ctx, stanza, from, nick).then_some(room)?;
        // Storage has no records of it (it was asked), and a temporary room keeps none: its
        // creator's affiliation is nothing to write (a persistent one is written with the
        // room's next stanza, as before).
        if !room.settings.persistent {
            room.needs_save = false;
        }
        Some(room)
    }

    fn handle_message_to_room(room: &mut Room, ctx: &mut Ctx, stanza: &Element, from: &FullJid) {
        match stanza.attr("type") {
            Some("groupchat") => room.handle_groupchat(ctx, stanza, from),
            Some("error") => {
                if crate::room::message::is_kickable_error(stanza) {
                    room.handle_kickable(ctx, stanza, from);
                }
            }
            None | Some("normal") => {
                if let Some(x) = stanza.get_child("x", NS_MUC_USER) {
                    match x.children().next() {
                        Some(p) if p.name() == "invite" && p.attr("to").is_some() => {
                            room.handle_invite(ctx, stanza, p, from)
                        }
                        Some(p) if p.name() == "decline" && p.attr("to").is_some() => {
                            room.handle_decline(ctx, stanza, p, from)
                        }
                        _ => ctx.error(stanza, StanzaError::bad_request(), None),
                    }
                    return;
                }
                if let Some(form) =
                    stanza.get_child("x", NS_DATA).filter(|f| crate::room::invite::is_voice_request(f))
                {
                    return room.handle_voice_request(ctx, stanza, form, from);
                }
                ctx.error(stanza, StanzaError::service_unavailable(), None);
            }
            Some(_) => ctx.error(stanza, StanzaError::service_unavailable(), None),
        }
    }

    fn handle_iq_to_room(room: &mut Room, ctx: &mut Ctx, stanza: &Element, from: &FullJid) -> OwnerOutcome {
        let kind = stanza.attr("type").unwrap_or("");
        if kind == "result" || kind == "error" {
            return OwnerOutcome::Kept;
        }
        let Some(query) = stanza.children().next() else {
            ctx.error(stanza, StanzaError::bad_request(), None);
            return OwnerOutcome::Kept;
        };
        match (kind, query.name(), query.ns().as_str()) {
            ("get", "query", NS_DISCO_INFO) => room.handle_disco_info(ctx, stanza, query, from),
            ("get", "query", NS_DISCO_ITEMS) => room.handle_disco_items(ctx, stanza, from),
            ("set", "query", NS_MUC_ADMIN) => room.handle_admin_set(ctx, stanza, query, from),
            ("get", "query", NS_MUC_ADMIN) => room.handle_admin_get(ctx, stanza, query, from),
            ("set", "query", NS_MUC_OWNER) => return room.handle_owner_set(ctx, stanza, query, from),
            ("get", "query", NS_MUC_OWNER) => room.handle_owner_get(ctx, stanza, from),
            ("get" | "set", "query", NS_REGISTER) => room.handle_register(ctx, stanza, query, from),
            (_, _, crate::room::mucsub::NS_MUCSUB) if ctx.config.mucsub => {
                room.handle_mucsub(ctx, stanza, query, from)
            }
            ("get" | "set", "vCard", crate::room::vcard::NS_VCARD) if ctx.config.vcards_in_rooms => {
                room.handle_vcard(ctx, stanza, query, from)
            }
            _ => match crate::room::moderation::request(query).filter(|_| ctx.config.message_moderation) {
                Some((id, reason)) => room.handle_moderate(ctx, stanza, from, id, reason),
                None => ctx.error(stanza, StanzaError::service_unavailable(), None),
            },
        }
        OwnerOutcome::Kept
    }
}

/// Public rooms (not hidden, and not a destroyed room's remains) with their names.
fn public_rooms(rooms: &RoomCache) -> Vec<(String, Option<String>)> {
    let mut list: Vec<_> = rooms
        .rooms()
        .filter(|r| !r.settings.hidden && r.settings.tombstone.is_none())
        .map(|r| (r.jid.to_string(), r.settings.name.as_deref().map(str::to_owned)))
        .collect();
    list.sort();
    list
}

/// What a room's records become after a change: its configuration, or none for a
/// temporary room.
fn room_record(room: &Room) -> Option<StoredRoom> {
    room.settings.persistent.then(|| StoredRoom { config: room.freeze(), state: None })
}

/// What a live room put away leaves: its configuration and its occupants, as stock swaps
/// idle rooms to disk and saves them when the server stops.
fn record_with_occupants(room: &Room) -> StoredRoom {
    StoredRoom { config: room.freeze(), state: Some(room.freeze_state()) }
}

/// A room asked of storage.
enum Loaded {
    /// The host is asked for its records.
    Asked,
    Absent,
    /// Storage could not be read, or the record not understood (logged).
    Failed,
    Room(Box<Room>),
}

/// The record a destroyed persistent room leaves (stock's tombstone): hidden, persistent,
/// locked until it expires.
fn tombstone_record(
    jid: &BareJid,
    until: i64,
    reason: Option<String>,
    new_jid: Option<String>,
) -> StoredRoom {
    let settings = RoomSettings {
        persistent: true,
        hidden: true,
        locked_until: Some(until),
        tombstone: Some(Box::new(Tombstone { reason, new_jid })),
        ..RoomSettings::default()
    };
    StoredRoom { config: Room::new(jid.clone(), settings).freeze(), state: None }
}

const NS_MUC_UNIQUE: &str = "http://jabber.org/protocol/muc#unique";

fn service_features(config: &HostConfig) -> Vec<&'static str> {
    let mut features = vec![NS_MUC, NS_MUC_UNIQUE];
    if config.occupant_id {
        features.push(NS_OCCUPANT_ID);
    }
    if config.service_registration {
        features.push(NS_REGISTER);
    }
    features
}

mod account_removal;
mod admin_commands;
mod api;
mod commit;
mod module_occupants;
pub use module_occupants::Publicise;
#[cfg(test)]
mod hook_tests;

#[cfg(test)]
mod moderation_tests;
#[cfg(test)]
mod mucsub_tests;
mod service_notices;
#[cfg(test)]
mod tests;

/// Tells the host's modules of the occupants who left the room during this call; whether
/// anyone did.
fn report_departures(room: &mut Room, ctx: &mut Ctx) -> bool {
    if room.departed.is_empty() {
        return false;
    }
    let departed = std::mem::take(&mut room.departed);
    if ctx.listens(Hook::OccupantLifecycle) {
        for (nick, jid, real_jid) in departed {
            ctx.out.fire(Event::OccupantLeft { room: room.jid.clone(), nick, jid, real_jid });
        }
    }
    true
}
