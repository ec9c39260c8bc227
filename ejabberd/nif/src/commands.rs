//! The room commands of ejabberd's mod_muc_admin, as mod_muc_rs runs them on its own
//! rooms (`ejabberd/src/mod_muc_rs_admin.erl`): reads of a live room, and the changes
//! made with the room's own authority. A change answers as `remove_user/5` does: a
//! question (`{load, RoomJid}`, `{admins, [BareJid]}`: answer it and call again with the
//! answers so far), `{error, Why}` (nothing changed), or `{ok, Deliveries, Stores, Logs,
//! Gone}` to settle as a stanza's.

use crate::{answered_facts, data_from_term, data_to_term, done_term, panicked, question_term, Service};
use jid::BareJid;
use muc_rs::room::settings::Tombstone;
use muc_rs::{panic_guard, MucHost, Outcome};
use rustler::{Encoder, NifResult, ResourceArc, Term};

mod atoms {
    rustler::atoms! { none, error }
}

/// The live room `Room`: `{Config, [{RealJid, Nick, Role}], [{Time, Message}]}` (Config the
/// room's record as stored: `_jid`, `_data`, affiliations; its history, each message as XML
/// text with the time in seconds), or `none` if it is not live here.
#[rustler::nif]
fn room_snapshot<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    room: String,
) -> NifResult<Term<'a>> {
    let room: BareJid = room.parse().map_err(|_| rustler::Error::BadArg)?;
    let snapshot = panic_guard::run(|| {
        let host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        host.room_snapshot(&room)
    })
    .map_err(panicked)?;
    Ok(match snapshot {
        Some(room) => (data_to_term(env, &room.config), room.sessions, room.history).encode(env),
        None => atoms::none().encode(env),
    })
}

/// `{RoomJid, Public, Sessions, LastMessage}`.
type LiveRoom = (String, bool, usize, Option<i64>);

/// The rooms live here: `[{RoomJid, Public, Sessions, LastMessage}]`, LastMessage the
/// time (seconds) of the last message in the room's history, or `nil`.
#[rustler::nif]
fn live_rooms(service: ResourceArc<Service>) -> NifResult<Vec<LiveRoom>> {
    locked(&service, |host| host.live_rooms_summary())
}

/// The rooms live here where `User` (a bare JID) has an occupant: `[RoomJid]`.
#[rustler::nif]
fn rooms_with_occupant(service: ResourceArc<Service>, user: String) -> NifResult<Vec<String>> {
    let user: BareJid = user.parse().map_err(|_| rustler::Error::BadArg)?;
    locked(&service, |host| host.rooms_with_occupant(&user))
}

/// Makes the room `Room` from `Config` (its record as stored, from mod_muc's options).
#[rustler::nif]
fn create_room<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    room: String,
    config: Term<'a>,
    records: Vec<(String, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let room: BareJid = room.parse().map_err(|_| rustler::Error::BadArg)?;
    let config = data_from_term(config).ok_or(rustler::Error::BadArg)?;
    let facts = answered_facts(Vec::new(), records);
    let (created, outcome) = locked(&service, |host| host.admin_create_room(&room, &config, &facts))?;
    answer(env, created.map(|()| outcome).map_err(str::to_owned), &[])
}

/// Gives the room `Room` the settings `Data` (its record's `_data`, from mod_muc's options).
#[rustler::nif]
fn configure_room<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    room: String,
    data: Term<'a>,
    admins: Vec<(String, bool)>,
    records: Vec<(String, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let room: BareJid = room.parse().map_err(|_| rustler::Error::BadArg)?;
    let data = data_from_term(data).ok_or(rustler::Error::BadArg)?;
    let facts = answered_facts(admins, records);
    let changed = locked(&service, |host| host.admin_configure(&room, &data, &facts))?;
    answer(env, changed, &[])
}

/// Sets `Jid`'s affiliation in the room `Room` (`owner`, `admin`, `member`, `outcast`,
/// `none`).
#[rustler::nif]
fn set_affiliation<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    room: String,
    jid: String,
    affiliation: String,
    admins: Vec<(String, bool)>,
    records: Vec<(String, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let facts = answered_facts(admins, records);
    let changed =
        locked(&service, |host| host.admin_set_affiliation(&room, &jid, &affiliation, None, &facts))?;
    answer(env, changed, &[])
}

/// Destroys the room `Room`, its occupants told, with `Reason` (`<<>>`: none), as its owner
/// could.
#[rustler::nif]
fn destroy_room<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    room: String,
    reason: String,
    admins: Vec<(String, bool)>,
    records: Vec<(String, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let jid: BareJid = room.parse().map_err(|_| rustler::Error::BadArg)?;
    let facts = answered_facts(admins, records);
    let why = Tombstone { reason: (!reason.is_empty()).then_some(reason), new_jid: None };
    let destroyed = locked(&service, |host| host.destroy_room(&room, why, None, &facts))?;
    answer(env, destroyed, std::slice::from_ref(&jid))
}

/// Runs `f` on the service's core, a panic raised as the Erlang error the gen_server logs.
pub(crate) fn locked<T>(service: &Service, f: impl FnOnce(&mut MucHost) -> T) -> NifResult<T> {
    panic_guard::run(|| {
        // (a poisoned lock: see handle_stanza)
        let mut host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut host)
    })
    .map_err(panicked)
}

/// A change's answer: its question, `{error, Why}`, or the outcome to settle (`gone`: the
/// rooms no longer live once it is done).
pub(crate) fn answer<'a>(
    env: rustler::Env<'a>,
    changed: Result<Outcome, String>,
    gone: &[BareJid],
) -> NifResult<Term<'a>> {
    match changed {
        Err(why) => Ok((atoms::error(), why).encode(env)),
        Ok(outcome) => match outcome.ask {
            Some(question) => question_term(env, question),
            // (no events: the commands run with no module listening, as mod_muc_admin's changes skip the hooks)
            None => Ok(done_term(env, &outcome, gone, &[])),
        },
    }
}
