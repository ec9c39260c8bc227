//! What ejabberd's modules that hook rooms (mod_mam first) need from the core: which
//! extension points they listen at, the steps the core leaves to them as terms, a room's
//! history kept after they had their say, and a room as they read it (`#state{}`, built by
//! `mod_muc_rs_hooks.erl`).

use crate::xmlel::{self, binary};
use crate::{panicked, read_record, Service};
use jid::{BareJid, FullJid};
use muc_rs::hooks::{Event, Hook, Hooks};
use muc_rs::{panic_guard, Facts, MucHost, Outcome};
use rustler::{Encoder, Env, NifResult, ResourceArc, Term};

mod atoms {
    rustler::atoms! {
        broadcast_message, disco_info, room_destroyed, remove_archived, load, undefined, none, affiliations, users, history, archiving, anonymous,
        members_only, occupant_lifecycle, room_lifecycle, room_pre_create, invite, join_room, leave_room, room_created
    }
}

/// The extension points named (as `mod_muc_rs_hooks:listening/2` names them):
/// `broadcast_message` (`muc_filter_message` has handlers) makes the core leave a message's
/// broadcast to the host; `disco_info` (mod_mam is loaded) a room's disco#info reply;
/// `occupant_lifecycle` (`join_room` or `leave_room`) reports sessions joining and
/// occupants leaving; `room_lifecycle` (`start_room`) rooms made; `room_pre_create`
/// (`check_create_room`) asks before a join makes a room; `invite` (`muc_invite`) leaves
/// the invitations the room sends to the host.
pub fn listening(names: &[rustler::Atom]) -> Hooks {
    names
        .iter()
        .filter_map(|name| match *name {
            n if n == atoms::broadcast_message() => Some(Hook::BroadcastMessage),
            n if n == atoms::disco_info() => Some(Hook::DiscoInfo),
            n if n == atoms::occupant_lifecycle() => Some(Hook::OccupantLifecycle),
            n if n == atoms::room_lifecycle() => Some(Hook::RoomLifecycle),
            n if n == atoms::room_pre_create() => Some(Hook::RoomPreCreate),
            n if n == atoms::invite() => Some(Hook::Invite),
            _ => None,
        })
        .collect()
}

/// A room's archiving switch (mod_mam's `mam` room option): `Some` once set (by mod_muc's
/// row, or an owner), `None` for the service's default.
pub fn archiving(host: &MucHost, room: &BareJid) -> Option<bool> {
    host.room(room)?.settings.archiving()
}

/// The archiving switch the owner's form offers, where mod_mam is loaded: `{Default,
/// MayChange}` (`default_room_options`' `mam`, and `access_mam` for the sender), or `none`.
pub fn archive_switch(term: Term) -> Option<muc_rs::ArchiveSwitch> {
    let (default, sender_may_change): (bool, bool) = term.decode().ok()?;
    Some(muc_rs::ArchiveSwitch { default, sender_may_change })
}

/// The archiving switch of each event's room (in the events' order), read while the
/// rooms are at hand.
pub fn archiving_of_events(host: &MucHost, outcome: &Outcome) -> Vec<Option<bool>> {
    outcome
        .events
        .iter()
        .map(|(_, event)| match event {
            Event::BroadcastMessage { room, .. }
            | Event::DiscoInfo { room, .. }
            | Event::RemoveArchived { room, .. } => archiving(host, room),
            _ => None,
        })
        .collect()
}

/// An event as the gen_server carries it out: `{broadcast_message, RoomJid, Xmlel, [To],
/// Historic, Archiving}` or `{disco_info, RoomJid, Xmlel, To, Archiving}` (the reply with
/// its form; Archiving `undefined` for the default), `{room_destroyed, RoomJid}` (always
/// reported: ejabberd's `remove_room` may have handlers), `{join_room, RoomJid, Jid}` (a
/// session joined), `{leave_room, RoomJid, Jid}` (an occupant left; its primary session),
/// `{room_created, RoomJid}`, `{invite, RoomJid, Xmlel, To}`, `{remove_archived, RoomJid,
/// StanzaId, Archiving}` (a moderated or retracted message, for mod_mam); `None` for the
/// events no ejabberd hook listens to.
pub fn event_term<'a>(env: Env<'a>, event: &Event, archiving: Option<bool>) -> Option<Term<'a>> {
    match event {
        Event::BroadcastMessage { room, stanza, to, historic } => {
            let recipients: Vec<Term> = to.iter().map(|to| xmlel::recipient(env, to)).collect();
            let archiving = archiving.map_or(atoms::undefined().encode(env), |b| b.encode(env));
            let term = (
                atoms::broadcast_message(),
                binary(env, room.as_str()),
                xmlel::stanza(env, stanza),
                recipients,
                *historic,
                archiving,
            );
            Some(term.encode(env))
        }
        Event::DiscoInfo { room, reply, form, to } => {
            let mut reply = reply.clone();
            if let Some(query) = reply.children_mut().next() {
                query.append_child(form.render("result"));
            }
            let archiving = archiving.map_or(atoms::undefined().encode(env), |b| b.encode(env));
            let term = (
                atoms::disco_info(),
                binary(env, room.as_str()),
                xmlel::stanza(env, &reply),
                xmlel::recipient(env, to),
                archiving,
            );
            Some(term.encode(env))
        }
        Event::RoomDestroyed { room } => {
            Some((atoms::room_destroyed(), binary(env, room.as_str())).encode(env))
        }
        // (mod_muc_room runs join_room for each session it adds)
        Event::OccupantSessionNew { room, jid, .. } => {
            Some((atoms::join_room(), binary(env, room.as_str()), binary(env, jid.as_str())).encode(env))
        }
        Event::OccupantLeft { room, real_jid: Some(jid), .. } => {
            Some((atoms::leave_room(), binary(env, room.as_str()), binary(env, jid.as_str())).encode(env))
        }
        Event::RoomCreated { room } => Some((atoms::room_created(), binary(env, room.as_str())).encode(env)),
        Event::Invite { room, stanza, to } => {
            let term = (
                atoms::invite(),
                binary(env, room.as_str()),
                xmlel::stanza(env, stanza),
                xmlel::recipient(env, to),
            );
            Some(term.encode(env))
        }
        Event::RemoveArchived { room, stanza_id } => {
            let archiving = archiving.map_or(atoms::undefined().encode(env), |b| b.encode(env));
            Some((atoms::remove_archived(), binary(env, room.as_str()), *stanza_id, archiving).encode(env))
        }
        _ => None,
    }
}

/// `add_history(Service, RoomJid, Xmlel, Now)`: the room keeps the message as ejabberd's
/// hooks left it (`muc-add-history`'s last step). `true`, or `false` if the room is gone.
#[rustler::nif]
fn add_history<'a>(
    service: ResourceArc<Service>,
    room: String,
    stanza: Term<'a>,
    now: i64,
) -> NifResult<bool> {
    let room: BareJid = room.parse().map_err(|_| rustler::Error::BadArg)?;
    let stanza = xmlel::read_stanza(stanza).ok_or(rustler::Error::BadArg)?;
    panic_guard::run(|| {
        let mut host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        host.add_history(&room, &stanza, now)
    })
    .map_err(panicked)
}

/// `room_view(Service, RoomJid, Now, Records)`: the room as a module that queries its
/// archive reads it, brought back from storage if need be. `{load, RoomJid}` (read its
/// record, add it to Records, call again), or `{View, Done}`: View `none` (no such room) or
/// `#{archiving => true | false | undefined, anonymous, members_only, affiliations =>
/// [{BareJid, Affiliation}], users => [{FullJid, Nick, Role}], history => [{Nick, Xmlel,
/// Time}]}`, and Done as `handle/5` answers (the rooms put away to make space, to write).
#[rustler::nif]
fn room_view<'a>(
    env: Env<'a>,
    service: ResourceArc<Service>,
    room: String,
    now: i64,
    records: Vec<(String, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let room: BareJid = room.parse().map_err(|_| rustler::Error::BadArg)?;
    let mut facts = Facts::new(now, muc_rs::id::fresh_entropy());
    for (jid, record) in records {
        if let Ok(jid) = jid.parse::<BareJid>() {
            facts.supply_room(jid, read_record(record));
        }
    }
    panic_guard::run(|| {
        let mut host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (found, outcome) = host.find_room(&room, &facts);
        if outcome.ask.is_some() {
            return Ok((atoms::load(), room.as_str()).encode(env));
        }
        let view = match found {
            Ok(true) => view_term(env, &host, &room),
            // (a record that could not be read: the core answers the stanza itself)
            _ => atoms::none().encode(env),
        };
        Ok((view, crate::done_term(env, &outcome, &[], &[])).encode(env))
    })
    .map_err(panicked)?
}

fn view_term<'a>(env: Env<'a>, host: &MucHost, jid: &BareJid) -> Term<'a> {
    let Some(room) = host.room(jid) else { return atoms::none().encode(env) };
    let affiliations: Vec<(Term, &str)> =
        room.affiliations().map(|(jid, aff)| (binary(env, jid.as_str()), aff.as_str())).collect();
    let users: Vec<(Term, Term, &str)> = room
        .occupants()
        .flat_map(|o| {
            o.sessions().iter().map(move |s| (s.jid.clone(), o.nick.clone(), o.role_or_none().as_str()))
        })
        .map(|(real, nick, role): (FullJid, FullJid, &str)| {
            (binary(env, real.as_str()), binary(env, nick.resource().as_str()), role)
        })
        .collect();
    let history: Vec<(Term, Term, i64)> = room
        .history
        .iter()
        .map(|entry| {
            let nick = entry.stanza.attr("from").and_then(|f| f.parse::<FullJid>().ok());
            let nick = nick.as_ref().map_or("", |n| n.resource().as_str());
            (binary(env, nick), xmlel::stanza(env, &entry.stanza), entry.timestamp)
        })
        .collect();
    let archiving = archiving(host, jid).map_or(atoms::undefined().encode(env), |b| b.encode(env));
    let anonymous = room.settings.whois != muc_rs::room::settings::Whois::Anyone;
    let mut map = rustler::types::map::map_new(env);
    for (key, value) in [
        (atoms::archiving(), archiving),
        (atoms::anonymous(), anonymous.encode(env)),
        (atoms::members_only(), room.settings.members_only.encode(env)),
        (atoms::affiliations(), affiliations.encode(env)),
        (atoms::users(), users.encode(env)),
        (atoms::history(), history.encode(env)),
    ] {
        map = map.map_put(key, value).expect("a map");
    }
    map
}
