//! The extension points: with nobody listening the core does everything itself; with a
//! listener it leaves the step, in order, to the host, and does not do it twice.

use super::*;
use crate::env::FixedEnv;
use crate::hooks::{Event, Hook};

const ROOM: &str = "room@conference.localhost";
const ROMEO: &str = "romeo@localhost/r1";

/// A host whose modules listen at some extension points.
struct Listening {
    base: FixedEnv,
    hooks: Vec<Hook>,
}

impl Env for Listening {
    fn now(&self) -> i64 {
        self.base.now()
    }
    fn is_service_admin(&self, jid: &BareJid) -> bool {
        self.base.is_service_admin(jid)
    }
    fn listens(&self, hook: Hook) -> bool {
        self.hooks.contains(&hook)
    }
}

fn env(hooks: &[Hook]) -> Listening {
    Listening { base: FixedEnv { now: 1_000_000, admins: vec![] }, hooks: hooks.to_vec() }
}

fn host_with_room(env: &dyn Env) -> MucHost {
    let mut host = MucHost::new("conference.localhost", HostConfig::for_version((13, 0))).unwrap();
    let join = format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    host.handle(join.parse().unwrap(), env);
    let instant = format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'>\
         <x xmlns='jabber:x:data' type='submit'/></query></iq>"
    );
    host.handle(instant.parse().unwrap(), env);
    host
}

fn groupchat(body: &str) -> Element {
    format!("<message xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='groupchat' id='m'><body>{body}</body></message>")
        .parse()
        .unwrap()
}

fn room_jid() -> BareJid {
    ROOM.parse().unwrap()
}

#[test]
fn nobody_listening_no_events() {
    let env = env(&[]);
    let mut host = host_with_room(&env);
    let out = host.handle(groupchat("hi"), &env);
    assert!(out.events.is_empty());
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(host.room(&room_jid()).unwrap().history.len(), 1);
}

#[test]
fn broadcast_left_to_the_host_with_its_recipients_and_verdict() {
    let env = env(&[Hook::BroadcastMessage]);
    let mut host = host_with_room(&env);
    let out = host.handle(groupchat("hi"), &env);
    assert!(out.deliveries.is_empty(), "the host delivers it after its modules");
    let [(0, Event::BroadcastMessage { room, stanza, to, historic })] = out.events.as_slice() else {
        panic!("one broadcast event: {:?}", out.events);
    };
    assert_eq!(room, &room_jid());
    assert_eq!(stanza.attr("from"), Some("room@conference.localhost/romeo"));
    assert_eq!(to.iter().map(|j| j.to_string()).collect::<Vec<_>>(), vec![ROMEO]);
    assert!(historic);
    assert!(host.room(&room_jid()).unwrap().history.is_empty(), "kept only through add_history");
    assert!(host.add_history(&room_jid(), stanza, &env));
    assert_eq!(host.room(&room_jid()).unwrap().history.len(), 1);
}

#[test]
fn a_message_without_body_is_not_historic() {
    let env = env(&[Hook::BroadcastMessage]);
    let mut host = host_with_room(&env);
    let chatstate = format!(
        "<message xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='groupchat'>\
         <active xmlns='http://jabber.org/protocol/chatstates'/></message>"
    );
    let out = host.handle(chatstate.parse().unwrap(), &env);
    assert!(matches!(out.events.as_slice(), [(_, Event::BroadcastMessage { historic: false, .. })]));
}

#[test]
fn history_on_join_is_offered_to_the_host() {
    let env = env(&[Hook::GetHistory, Hook::OccupantLifecycle]);
    let mut host = host_with_room(&env);
    host.handle(groupchat("one"), &env);
    let join = format!(
        "<presence xmlns='jabber:client' from='juliet@localhost/j' to='{ROOM}/juliet'><x xmlns='http://jabber.org/protocol/muc'>\
         <history maxstanzas='5'/></x></presence>"
    );
    let out = host.handle(join.parse().unwrap(), &env);
    let kinds: Vec<&str> = out
        .events
        .iter()
        .map(|(_, e)| match e {
            Event::OccupantJoined { .. } => "joined",
            Event::GetHistory { .. } => "history",
            Event::OccupantSessionNew { .. } => "session-new",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["joined", "history", "session-new"]);
    let Some((_, Event::GetHistory { default, maxstanzas, .. })) = out.events.get(1) else { unreachable!() };
    assert_eq!(default.len(), 1);
    assert_eq!(*maxstanzas, Some(5.0));
    // The subject still goes out, after the history's place.
    let (at, _) = out.events[1];
    assert!(out.deliveries[at..].iter().any(|d| d.stanza.has_child("subject", crate::xml::NS_CLIENT)));
}

#[test]
fn leaving_and_destroying_are_reported() {
    let env = env(&[Hook::OccupantLifecycle, Hook::RoomLifecycle]);
    let mut host = host_with_room(&env);
    let leave =
        format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/romeo' type='unavailable'/>");
    let out = host.handle(leave.parse().unwrap(), &env);
    let events: Vec<&Event> = out.events.iter().map(|(_, e)| e).collect();
    assert!(
        matches!(events.as_slice(), [Event::OccupantLeft { .. }, Event::RoomDestroyed { .. }]),
        "{events:?}"
    );
    assert!(host.room(&room_jid()).is_none());
}

#[test]
fn config_changes_leave_the_notice_to_the_host() {
    let env = env(&[Hook::Config]);
    let mut host = host_with_room(&env);
    let submit = format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='c2'><query xmlns='http://jabber.org/protocol/muc#owner'>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
         <field var='muc#roomconfig_roomname'><value>Verona</value></field></x></query></iq>"
    );
    let out = host.handle(submit.parse().unwrap(), &env);
    let [(0, Event::ConfigSubmitted { .. }), (1, Event::ConfigNotice { codes, .. })] = out.events.as_slice()
    else {
        panic!("submitted before the reply, the notice after it: {:?}", out.events);
    };
    assert_eq!(codes, &[104]);
    assert_eq!(out.deliveries.len(), 1, "only the reply");
    let notice = host.config_notice(&room_jid(), &[104, 170], &FixedEnv::default()).unwrap();
    assert_eq!(notice.deliveries.len(), 1);
}

#[test]
fn module_data_round_trips_through_the_record() {
    let env = env(&[]);
    let mut host = host_with_room(&env);
    host.with_room(&room_jid(), &env, |room, _| {
        room.settings.set_data("archiving", Some(crate::persist::Data::Bool(false)));
        room.settings.set_data("name", Some(crate::persist::Data::Str("Verona".into())));
    });
    let room = host.room(&room_jid()).unwrap();
    assert_eq!(room.settings.name.as_deref(), Some("Verona"));
    let restored = Room::restore(&room.freeze(), None).unwrap();
    assert_eq!(restored.settings.data("archiving"), Some(crate::persist::Data::Bool(false)));
}
