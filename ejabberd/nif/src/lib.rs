//! muc_rs for ejabberd: the core as an Erlang NIF, driven by `mod_muc_rs` (a gen_server
//! per MUC service, `ejabberd/src/mod_muc_rs.erl`).
//!
//! A NIF cannot call Erlang, so what the core would ask its host during a stanza is
//! supplied with it or asked for first (docs/design/host-protocol.md):
//! - `options()`: the core's options as ejabberd names them (`options.rs`), from which
//!   `mod_muc_rs.erl` derives its option table;
//! - `new_host(Domain, Options, RoomOptions, TestPanic)`: a service's core, configured by
//!   the module's options under ejabberd's names;
//! - `handle(Host, Xmlel, Now, Sender, Rooms)`: the stanza (`xmpp:encode/1`'s `#xmlel{}`),
//!   the clock, what ejabberd's access rules say of its sender (`#{admins => [Jid],
//!   may_create => Bool, may_persist => Bool}`), and the stored records the gen_server read (`[{RoomJid,
//!   Record | none | {error, Reason}}]`, or `{all, Records, PublicElsewhere}`: every stored room, with the public
//!   rooms live on a cluster's other nodes, which `public_rooms(Service)` gives on each);
//! - the core may stop before it changes anything and ask (docs/design/host-protocol.md):
//!   `{load, RoomJid}` (a room neither live nor among `Rooms`) or `load_all` (the service's
//!   room list, without `{all, ...}`); or the NIF answers `dirty` (a big room:
//!   `handle_dirty` is the same on a dirty scheduler); the gen_server supplies what was
//!   asked and calls again;
//! - else `{ok, Deliveries, Stores, Logs, Gone}`: the stanzas (`#xmlel{}` terms, see
//!   `xmlel.rs`) each with its recipients, and the stanza's room if it is not live after
//!   it (`[]` or `[RoomJid]`: a cluster's nodes then forget which node had it). If
//!   `Stores` is not empty, `Deliveries` and `Logs` are held back: the gen_server writes
//!   the records and calls `confirm(Service, ok | {error, Reason})`, which answers
//!   `{ok, Deliveries, Logs}`: what was held back, or, if the write failed, the error reply
//!   (the core has put the rooms back as they were).
//!
//! A panic in the core is caught here and raised as the Erlang error
//! `{muc_rs_panic, Message}` (message and source location), which the gen_server logs and
//! answers with an error: it never takes the node down.

use jid::{BareJid, Jid};
use minidom::Element;
use muc_rs::config::OptionValue;
use muc_rs::data::{Data, Key, Table};
use muc_rs::{panic_guard, Facts, HostConfig, MucHost, Outcome, Question, StoredRoom};
use rustler::{Binary, Decoder, Encoder, NifMap, NifResult, ResourceArc, Term};
use std::sync::Mutex;

mod commands;
mod modules;
mod options;
mod xmlel;

use xmlel::binary;

mod atoms {
    rustler::atoms! {
        ok, error, load, load_all, admins, dirty, all, none, debug, info, warning, config, state, muc_rs_panic,
        bad_options, check_create_room
    }
}

/// One MUC service's core, owned by its gen_server (std's Mutex: rustler requires the
/// resource to be unwind-safe; only that one process calls in, so it is never contended).
pub struct Service {
    pub(crate) host: Mutex<MucHost>,
    /// Stanzas carrying `<panic xmlns=TEST_NS/>` make the core's call panic (`test_panic`
    /// in the module's options; see [`panic_guard::TEST_NS`]).
    test_panic: bool,
}

#[rustler::resource_impl]
impl rustler::Resource for Service {}

/// What ejabberd's access rules say: who is a MUC admin (`access_admin`: the sender, and
/// whoever else the core asked about), whether the sender may create rooms
/// (`access_create`) and make a room persistent or not (`access_persistent`).
#[derive(NifMap)]
struct Sender<'a> {
    /// `[{BareJid, IsAdmin}]`.
    admins: Vec<(String, bool)>,
    may_create: bool,
    may_persist: bool,
    /// The core's extension points at which ejabberd's hooks have handlers (`[Name]`, see
    /// [`modules::listening`]).
    listening: Vec<rustler::Atom>,
    /// The rooms' archiving switch where mod_mam is loaded ([`modules::archive_switch`]).
    archive_switch: Term<'a>,
}

/// The options mod_muc_rs passes to [`new_host`], as `mod_muc_rs.erl` derives its own
/// option table from them: `{Own, ModMuc, RoomKeys}`, the core options offered by their own
/// names (`[{Name, bool | string | {int, Least}}]`), mod_muc's options the core honours and
/// the `default_room_options` keys it honours (`[Name]`, atoms).
#[rustler::nif]
fn options(env: rustler::Env) -> NifResult<Term> {
    let atom = |name: &str| rustler::Atom::from_str(env, name);
    let own = options::own_options()
        .map(|(name, kind)| {
            let kind = match kind {
                options::OwnKind::Bool => atom("bool")?.encode(env),
                options::OwnKind::String => atom("string")?.encode(env),
                options::OwnKind::Int(least) => (atom("int")?, least).encode(env),
            };
            Ok((atom(name)?, kind))
        })
        .collect::<NifResult<Vec<_>>>()?;
    let mod_muc = options::mod_muc_options().into_iter().map(atom).collect::<NifResult<Vec<_>>>()?;
    let room = options::room_options().map(atom).collect::<NifResult<Vec<_>>>()?;
    Ok((own, mod_muc, room).encode(env))
}

/// A core for the MUC service `domain`, from the module's options by ejabberd's names
/// (`[{Name, Value}]`: mod_muc's the core honours and the core's own, see [`options`]) and
/// the new rooms' settings (`default_room_options`, `[{Key, Value}]`; keys the core does
/// not honour are left alone): `{ok, Service}`, or `{error, {bad_options, [Name]}}` for
/// options the core does not take with that value (ejabberd has checked their types
/// already: this is a bug between the two).
#[rustler::nif]
fn new_host<'a>(
    env: rustler::Env<'a>,
    domain: String,
    options: Vec<(Term<'a>, Term<'a>)>,
    room_options: Vec<(Term<'a>, Term<'a>)>,
    test_panic: bool,
) -> NifResult<Term<'a>> {
    panic_guard::install_hook();
    let config = match host_config(options, room_options)? {
        Ok(config) => config,
        Err(bad) => return Ok((atoms::error(), (atoms::bad_options(), bad)).encode(env)),
    };
    let host = MucHost::new(&domain, config).map_err(|e| rustler::Error::Term(Box::new(e)))?;
    let service = ResourceArc::new(Service { host: Mutex::new(host), test_panic });
    Ok((atoms::ok(), service).encode(env))
}

/// `reconfigure(Service, Options, RoomOptions)`, as [`new_host`] takes them, after
/// `reload_config`: `ok`, or `{error, {bad_options, [Name]}}` (the service is left as it was).
#[rustler::nif]
fn reconfigure<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    options: Vec<(Term<'a>, Term<'a>)>,
    room_options: Vec<(Term<'a>, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let config = match host_config(options, room_options)? {
        Ok(config) => config,
        Err(bad) => return Ok((atoms::error(), (atoms::bad_options(), bad)).encode(env)),
    };
    panic_guard::run(|| {
        let mut host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        host.reconfigure(config);
    })
    .map_err(panicked)?;
    Ok(atoms::ok().encode(env))
}

/// The core's configuration from the module's options under ejabberd's names; `Err` names
/// the options the core does not take with their values.
fn host_config<'a>(
    options: Vec<(Term<'a>, Term<'a>)>,
    room_options: Vec<(Term<'a>, Term<'a>)>,
) -> NifResult<Result<HostConfig, Vec<String>>> {
    let named = |pairs: Vec<(Term<'a>, Term<'a>)>| -> NifResult<Vec<(String, OptionValue)>> {
        pairs.into_iter().map(|(name, value)| Ok((name.atom_to_string()?, option_value(value)))).collect()
    };
    let core = match options::core_options(named(options)?, named(room_options)?) {
        Ok(core) => core,
        Err(unknown) => return Ok(Err(unknown)),
    };
    // Rooms behave as on the newest Prosody this core matches.
    let (mut config, invalid) = HostConfig::from_options((13, 0), &core);
    if !invalid.is_empty() {
        return Ok(Err(invalid));
    }
    // ejabberd's access_admin makes its users owners of every room, as in mod_muc.
    config.admins_as_room_owners = true;
    // Rooms keep their vCards in their own options, as mod_muc's do (mod_muc_rs_rooms).
    config.room_vcards = true;
    config.vcards_in_rooms = true;
    // mod_muc_rs takes nickname registrations with the service (mod_muc_rs_service_nicks).
    config.service_registration = true;
    // Moderation (XEP-0425) as mod_muc_room has it, the archive being mod_mam's.
    config.message_moderation = true;
    // MucSub is mod_muc's (rooms still refuse it unless allow_subscription is set).
    config.mucsub = true;
    Ok(Ok(config))
}

/// An option's value as the core reads it; a value of another type is reported as invalid.
fn option_value(term: Term) -> OptionValue {
    if let Ok(b) = bool::decode(term) {
        OptionValue::Bool(b)
    } else if let Ok(i) = i64::decode(term) {
        OptionValue::Int(i)
    } else if let Ok(bin) = Binary::decode(term) {
        OptionValue::Str(String::from_utf8_lossy(bin.as_slice()).into_owned())
    } else {
        OptionValue::Str(format!("{term:?}"))
    }
}

/// Stanzas for rooms with more occupants than this are handled on a dirty scheduler: their
/// fan-out may take longer than the millisecond a NIF should hold a normal one. Smaller
/// rooms stay on the normal scheduler, which spares every stanza the switch.
const DIRTY_FROM_OCCUPANTS: usize = 300;

/// Why the call ends before the core has handled the stanza.
enum Ask {
    /// The core's question (nothing changed).
    Core(Box<Question>),
    /// Call `handle_dirty` instead (a big room).
    DirtyScheduler,
}

#[rustler::nif]
fn handle<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    stanza: Term<'a>,
    now: i64,
    sender: Sender<'a>,
    rooms: Term<'a>,
) -> NifResult<Term<'a>> {
    handle_stanza(env, service, stanza, now, sender, rooms, false)
}

/// `handle` on a dirty CPU scheduler, for the stanzas `handle` answers `dirty` to.
#[rustler::nif(schedule = "DirtyCpu")]
fn handle_dirty<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    stanza: Term<'a>,
    now: i64,
    sender: Sender<'a>,
    rooms: Term<'a>,
) -> NifResult<Term<'a>> {
    handle_stanza(env, service, stanza, now, sender, rooms, true)
}

fn handle_stanza<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    stanza: Term<'a>,
    now: i64,
    sender: Sender<'a>,
    rooms: Term<'a>,
    on_dirty_scheduler: bool,
) -> NifResult<Term<'a>> {
    let stanza: Element = xmlel::read_stanza(stanza).ok_or(rustler::Error::BadArg)?;
    // `[{RoomJid, Record}]`, or `{all, Records, PublicElsewhere}` with every stored room and
    // the public rooms live on other nodes (`[{RoomJid, Name | nil}]`).
    type Elsewhere = Vec<(String, Option<String>)>;
    let (all_rooms, rooms, public_elsewhere): (bool, Vec<(String, Term<'a>)>, Elsewhere) =
        match rooms.decode() {
            Ok(some) => (false, some, Vec::new()),
            Err(_) => {
                let (tag, every, elsewhere): (rustler::Atom, Vec<(String, Term<'a>)>, Elsewhere) =
                    rooms.decode()?;
                if tag != atoms::all() {
                    return Err(rustler::Error::BadArg);
                }
                (true, every, elsewhere)
            }
        };
    let mut facts = Facts::new(now, muc_rs::id::fresh_entropy());
    // access_create, for the sender: the only creator a stanza can have.
    facts.sender_may_create = Some(sender.may_create);
    // access_persistent, for the sender: it may configure a room only as it says.
    facts.sender_may_persist = Some(sender.may_persist);
    facts.public_rooms_elsewhere = public_elsewhere;
    facts.listening = modules::listening(&sender.listening);
    if facts.listening.contains(muc_rs::Hook::Invite) {
        // ejabberd has no hook before an invitation is sent (muc_invite changes it after)
        facts.supply_answer(muc_rs::Hook::Invite, muc_rs::hooks::Answer::Allowed { nick: None, role: None });
    }
    facts.archive_switch = modules::archive_switch(sender.archive_switch);
    // mod_muc_room stamps its own stanza-id on every occupant's message; where
    // muc_filter_message has handlers, mod_muc_rs_hooks stamps it (mod_mam's id).
    if !facts.listening.contains(muc_rs::hooks::Hook::BroadcastMessage) && is_groupchat(&stanza) {
        facts.room_stanza_id = Some(now_micros());
    }
    let records = rooms
        .into_iter()
        .filter_map(|(jid, record)| Some((jid.parse::<BareJid>().ok()?, read_record(record))));
    if all_rooms {
        // (the gen_server has logged and left out the rooms it could not read)
        facts.supply_stored_rooms(Ok(records
            .filter_map(|(jid, record)| Some((jid, record.ok()??)))
            .collect()));
    } else {
        for (jid, record) in records {
            facts.supply_room(jid, record);
        }
    }
    for (user, is_admin) in &sender.admins {
        if let Ok(user) = user.parse::<BareJid>() {
            facts.supply_service_admin(user, *is_admin);
        }
    }
    let step = panic_guard::run(|| {
        // A panic while the core held the lock poisons it, but the core is still whole (a
        // stanza's handling changes a room only once it has checked everything): go on.
        let mut host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if service.test_panic && stanza.has_child("panic", panic_guard::TEST_NS) {
            panic!("forced panic (test hook)");
        }
        let room = room_of(&stanza);
        let big = room
            .as_ref()
            .and_then(|r| host.room(r))
            .is_some_and(|r| r.occupant_count() > DIRTY_FROM_OCCUPANTS);
        if big && !on_dirty_scheduler {
            return Err(Ask::DirtyScheduler);
        }
        let outcome = host.handle(&stanza, &facts);
        if let Some(question) = outcome.ask {
            return Err(Ask::Core(Box::new(question)));
        }
        let gone = room.filter(|room| host.room(room).is_none());
        let archiving = modules::archiving_of_events(&host, &outcome);
        Ok((outcome, gone, archiving))
    })
    .map_err(panicked)?;
    let (outcome, gone, archiving) = match step {
        Err(Ask::Core(question)) => return question_term(env, *question),
        Err(Ask::DirtyScheduler) => return Ok(atoms::dirty().encode(env)),
        Ok(done) => done,
    };
    Ok(done_term(env, &outcome, gone.as_slice(), &archiving))
}

/// The core's question as the gen_server answers it: `{load, RoomJid}`, `load_all`,
/// `{admins, [BareJid]}`, `{check_create_room, RoomJid}` (a join would make the room: the
/// gen_server runs ejabberd's `check_create_room` and calls again, without listening there
/// if its handlers allow it, else with `may_create` false).
pub(crate) fn question_term(env: rustler::Env<'_>, question: Question) -> NifResult<Term<'_>> {
    match question {
        Question::LoadRoom(room) => Ok((atoms::load(), room.as_str()).encode(env)),
        Question::StoredRooms => Ok(atoms::load_all().encode(env)),
        Question::ServiceAdmins(users) => {
            let users: Vec<&str> = users.iter().map(|u| u.as_str()).collect();
            Ok((atoms::admins(), users).encode(env))
        }
        Question::Module(muc_rs::hooks::Question::PreCreate { room }) => {
            Ok((atoms::check_create_room(), room.as_str()).encode(env))
        }
        // No other module of ejabberd's is asked (none listens), and rooms have no vCards
        // here (muc_vcard is off): a bug between the two.
        question @ (Question::Module(_) | Question::AvatarHash(_)) => {
            Err(rustler::Error::Term(Box::new(format!("unexpected question {question:?}"))))
        }
    }
}

/// `{ok, Deliveries, Stores, Logs, Gone}`: an outcome (its deliveries held back if it has
/// stores) and the rooms no longer live; `archiving`: each event's room's switch
/// ([`modules::archiving_of_events`]).
pub(crate) fn done_term<'a>(
    env: rustler::Env<'a>,
    outcome: &Outcome,
    gone: &[BareJid],
    archiving: &[Option<bool>],
) -> Term<'a> {
    let stores: Vec<(Term, Term)> = outcome
        .stores
        .iter()
        .map(|store| (binary(env, store.room.as_str()), record_to_term(env, store.record.as_ref())))
        .collect();
    let (deliveries, logs) = outcome_terms(env, outcome, archiving);
    let gone: Vec<&str> = gone.iter().map(|room| room.as_str()).collect();
    (atoms::ok(), deliveries, stores, logs, gone).encode(env)
}

/// The rooms where a deleted account (ejabberd's `remove_user`) has an affiliation or an
/// occupant, live or among `Stored` (`[{RoomJid, Record}]`, every stored room): `[RoomJid]`.
#[rustler::nif]
fn rooms_of_user<'a>(
    service: ResourceArc<Service>,
    user: String,
    stored: Vec<(String, Term<'a>)>,
) -> NifResult<Vec<String>> {
    let user: BareJid = user.parse().map_err(|_| rustler::Error::BadArg)?;
    let mut facts = Facts::new(now(), 0);
    facts.supply_stored_rooms(Ok(stored
        .into_iter()
        .filter_map(|(jid, record)| Some((jid.parse().ok()?, record_from_term(record)?)))
        .collect()));
    let rooms = panic_guard::run(|| {
        let host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        host.rooms_of_user(&user, &facts)
    })
    .map_err(panicked)?;
    let rooms = rooms.ok_or_else(|| rustler::Error::Term(Box::new("the stored rooms were not given")))?;
    Ok(rooms.iter().map(|room| room.to_string()).collect())
}

/// The deleted `User` loses its affiliation in `Room` and leaves it, as with mod_muc.
/// `Admins`: `[{BareJid, IsAdmin}]` answered so far; `Records`: `[{RoomJid, Record | none}]`
/// read so far. Answers as `handle/5` does.
#[rustler::nif]
fn remove_user<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    room: String,
    user: String,
    admins: Vec<(String, bool)>,
    records: Vec<(String, Term<'a>)>,
) -> NifResult<Term<'a>> {
    let (Ok(room), Ok(user)) = (room.parse::<BareJid>(), user.parse::<BareJid>()) else {
        return Err(rustler::Error::BadArg);
    };
    let facts = answered_facts(admins, records);
    let outcome = commands::locked(&service, |host| host.remove_user(&room, &user, &facts))?;
    commands::answer(env, Ok(outcome), &[])
}

/// The facts of a call outside a stanza (a deleted account, an admin command) from the
/// answers the gen_server gave so far: `[{BareJid, IsAdmin}]` and `[{RoomJid, Record |
/// none}]`. Occupants leaving and rooms made are reported (for ejabberd's `leave_room`,
/// `start_room` and `create_room`: rare steps, whose hooks the gen_server runs only if
/// they have handlers).
pub(crate) fn answered_facts(admins: Vec<(String, bool)>, records: Vec<(String, Term)>) -> Facts {
    let mut facts = Facts::new(now(), muc_rs::id::fresh_entropy());
    facts.listening = [muc_rs::Hook::OccupantLifecycle, muc_rs::Hook::RoomLifecycle].into_iter().collect();
    for (jid, is_admin) in admins {
        if let Ok(jid) = jid.parse::<BareJid>() {
            facts.supply_service_admin(jid, is_admin);
        }
    }
    for (jid, record) in records {
        if let Ok(jid) = jid.parse::<BareJid>() {
            facts.supply_room(jid, read_record(record));
        }
    }
    facts
}

/// Microseconds since the Unix epoch (mod_muc_room's stanza-ids).
fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

fn is_groupchat(stanza: &minidom::Element) -> bool {
    stanza.name() == "message" && stanza.attr("type") == Some("groupchat")
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// After the gen_server wrote the stores `handle` returned: `ok`, or `{error, Reason}` (a
/// binary). `{ok, Deliveries, Logs}`: what to route now (the held-back outcome, or the
/// error reply, the rooms being as they were before).
#[rustler::nif]
fn confirm<'a>(
    env: rustler::Env<'a>,
    service: ResourceArc<Service>,
    written: Term<'a>,
) -> NifResult<Term<'a>> {
    let written = if written.decode::<rustler::Atom>().is_ok_and(|a| a == atoms::ok()) {
        Ok(())
    } else {
        let (_, reason): (rustler::Atom, Binary) = written.decode()?;
        Err(String::from_utf8_lossy(reason.as_slice()).into_owned())
    };
    let (outcome, archiving) = panic_guard::run(|| {
        let mut host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outcome = host.confirm(written).outcome;
        let archiving = modules::archiving_of_events(&host, &outcome);
        (outcome, archiving)
    })
    .map_err(panicked)?;
    let (deliveries, logs) = outcome_terms(env, &outcome, &archiving);
    Ok((atoms::ok(), deliveries, logs).encode(env))
}

/// A panic in the core, as the Erlang error the gen_server logs.
pub(crate) fn panicked(message: String) -> rustler::Error {
    rustler::Error::RaiseTerm(Box::new((atoms::muc_rs_panic(), message)))
}

/// An outcome's deliveries (each stanza with its recipients, `{Xmlel, [To]}`, and in their
/// place among them the steps left to ejabberd's hooks, see [`modules::event_term`]) and
/// log lines as terms.
fn outcome_terms<'a, 'o>(
    env: rustler::Env<'a>,
    outcome: &'o Outcome,
    archiving: &[Option<bool>],
) -> (Vec<Term<'a>>, Vec<(rustler::Atom, &'o str)>) {
    let delivery = |d: &muc_rs::Delivery| {
        let to: Vec<Term> = d.to.iter().map(|to| xmlel::recipient(env, to)).collect();
        (xmlel::stanza(env, &d.stanza), to).encode(env)
    };
    let deliveries = if outcome.events.is_empty() {
        outcome.deliveries.iter().map(delivery).collect()
    } else {
        let mut terms = Vec::with_capacity(outcome.deliveries.len() + outcome.events.len());
        let mut sent = 0;
        for (i, (before, event)) in outcome.events.iter().enumerate() {
            terms.extend(outcome.deliveries[sent..*before].iter().map(delivery));
            sent = *before;
            terms.extend(modules::event_term(env, event, archiving.get(i).copied().flatten()));
        }
        terms.extend(outcome.deliveries[sent..].iter().map(delivery));
        terms
    };
    let logs = outcome
        .log
        .iter()
        .map(|(level, line)| {
            let level = match level {
                muc_rs::LogLevel::Debug => atoms::debug(),
                muc_rs::LogLevel::Info => atoms::info(),
                muc_rs::LogLevel::Warn | muc_rs::LogLevel::Error => atoms::warning(),
            };
            (level, line.as_str())
        })
        .collect();
    (deliveries, logs)
}

/// `announce(Service, Text)`: a service admin's message to the service, sent by every live
/// room to its occupants (ejabberd's `broadcast_service_message`): `{ok, Deliveries, Logs}`.
#[rustler::nif]
fn announce<'a>(env: rustler::Env<'a>, service: ResourceArc<Service>, text: String) -> NifResult<Term<'a>> {
    to_all_rooms(env, &service, |host, facts| host.announce(&text, facts))
}

/// `shut_down(Service)`: the service stops; each occupant is told it is removed (status 332):
/// `{ok, Deliveries, Logs}`.
#[rustler::nif]
fn shut_down<'a>(env: rustler::Env<'a>, service: ResourceArc<Service>) -> NifResult<Term<'a>> {
    to_all_rooms(env, &service, MucHost::shut_down)
}

/// A service-wide step that asks nothing and stores nothing: `{ok, Deliveries, Logs}`.
fn to_all_rooms<'a>(
    env: rustler::Env<'a>,
    service: &Service,
    step: impl FnOnce(&mut MucHost, &Facts) -> Outcome,
) -> NifResult<Term<'a>> {
    let facts = Facts::new(now(), muc_rs::id::fresh_entropy());
    let (outcome, archiving) = commands::locked(service, |host| {
        let outcome = step(host, &facts);
        let archiving = modules::archiving_of_events(host, &outcome);
        (outcome, archiving)
    })?;
    let (deliveries, logs) = outcome_terms(env, &outcome, &archiving);
    Ok((atoms::ok(), deliveries, logs).encode(env))
}

/// The public rooms live in this node's core, `[{RoomJid, Name | nil}]`: what another node
/// of a cluster lists beside its own.
#[rustler::nif]
fn public_rooms(service: ResourceArc<Service>) -> NifResult<Vec<(String, Option<String>)>> {
    panic_guard::run(|| {
        let host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        host.public_rooms()
    })
    .map_err(panicked)
}

/// `forget_service_admins(Service)`: access_admin may have changed; `ok`.
#[rustler::nif]
fn forget_service_admins(service: ResourceArc<Service>) -> NifResult<rustler::Atom> {
    panic_guard::run(|| {
        let mut host = service.host.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        host.forget_service_admins();
    })
    .map_err(panicked)?;
    Ok(atoms::ok())
}

/// The room a stanza is for, if any (the service's own stanzas are for none).
fn room_of(stanza: &Element) -> Option<BareJid> {
    let to = stanza.attr("to")?.parse::<Jid>().ok()?;
    to.node().is_some().then(|| to.to_bare())
}

/// A room's records as the gen_server stores them: `#{config => Data, state => Data}`
/// (maps, binaries, numbers and booleans: readable with mnesia's own tools), or `none`.
fn record_to_term<'a>(env: rustler::Env<'a>, record: Option<&StoredRoom>) -> Term<'a> {
    let Some(record) = record else { return atoms::none().encode(env) };
    let mut map = rustler::types::map::map_new(env);
    map = map.map_put(atoms::config(), data_to_term(env, &record.config)).expect("a map");
    if let Some(state) = &record.state {
        map = map.map_put(atoms::state(), data_to_term(env, state)).expect("a map");
    }
    map
}

/// A room's records as the gen_server read them: `none` (no such room), `{error, Reason}`
/// (a record it could not read, which the core answers with an error: the room is neither
/// served nor made anew over its stored record), or the record.
pub(crate) fn read_record(term: Term) -> Result<Option<StoredRoom>, String> {
    if term.decode::<rustler::Atom>().is_ok_and(|a| a == atoms::none()) {
        return Ok(None);
    }
    if let Ok((tag, reason)) = term.decode::<(rustler::Atom, Binary)>() {
        if tag == atoms::error() {
            return Err(String::from_utf8_lossy(reason.as_slice()).into_owned());
        }
    }
    record_from_term(term).map(Some).ok_or_else(|| "unreadable room record".to_owned())
}

fn record_from_term(term: Term) -> Option<StoredRoom> {
    let config = data_from_term(term.map_get(atoms::config().encode(term.get_env())).ok()?)?;
    let state = term.map_get(atoms::state().encode(term.get_env())).ok().and_then(data_from_term);
    Some(StoredRoom { config, state })
}

pub(crate) fn data_to_term<'a>(env: rustler::Env<'a>, data: &Data) -> Term<'a> {
    match data {
        Data::Bool(b) => b.encode(env),
        Data::Int(i) => i.encode(env),
        Data::Num(n) => n.encode(env),
        Data::Str(s) => binary(env, s),
        Data::Table(table) => {
            let mut map = rustler::types::map::map_new(env);
            for (key, value) in table {
                let key = match key {
                    Key::Int(i) => i.encode(env),
                    Key::Str(s) => binary(env, s),
                };
                map = map.map_put(key, data_to_term(env, value)).expect("a map");
            }
            map
        }
    }
}

pub(crate) fn data_from_term(term: Term) -> Option<Data> {
    if let Ok(b) = bool::decode(term) {
        return Some(Data::Bool(b));
    }
    if let Ok(i) = i64::decode(term) {
        return Some(Data::Int(i));
    }
    if let Ok(n) = f64::decode(term) {
        return Some(Data::Num(n));
    }
    if let Ok(bin) = Binary::decode(term) {
        return Some(Data::Str(String::from_utf8_lossy(bin.as_slice()).into_owned()));
    }
    let iter = rustler::types::map::MapIterator::new(term)?;
    let mut table = Table::new();
    for (key, value) in iter {
        let key = if let Ok(i) = i64::decode(key) {
            Key::Int(i)
        } else {
            Key::Str(String::from_utf8_lossy(Binary::decode(key).ok()?.as_slice()).into_owned())
        };
        table.insert(key, data_from_term(value)?);
    }
    Some(Data::Table(table))
}

rustler::init!("muc_rs_nif");
