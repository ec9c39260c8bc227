//! The service driven with stanzas, as a client would drive it: the seed scenario and the
//! join, configuration, affiliation and registration rules it rests on.

use super::*;
use crate::affiliation::Affiliation;
use crate::data::{Data, Key};
use crate::memory_host::MemoryHost;
use crate::protocol::ReadRooms;
use crate::xml::{error_condition, NS_CLIENT, NS_MUC_USER};
use jid::BareJid;

const ROOM: &str = "room@conference.localhost";
const ROMEO: &str = "romeo@localhost/r1";
const JULIET: &str = "juliet@localhost/j1";

fn host() -> MucHost {
    MucHost::new("conference.localhost", HostConfig::for_version((13, 0))).unwrap()
}

/// A host with nothing stored, at the tests' time.
fn storage() -> MemoryHost {
    MemoryHost::at(1_000_000)
}

fn room_jid() -> BareJid {
    ROOM.parse().unwrap()
}

fn parse(xml: &str) -> Element {
    xml.parse().expect("test stanza parses")
}

/// Sends `xml` (in jabber:client) and returns every delivery as (recipient, stanza).
fn send(host: &mut MucHost, xml: &str) -> Vec<(String, Element)> {
    send_with(host, &mut storage(), xml)
}

fn to<'a>(deliveries: &'a [(String, Element)], jid: &str) -> Vec<&'a Element> {
    deliveries.iter().filter(|(to, _)| to == jid).map(|(_, s)| s).collect()
}

fn codes(stanza: &Element) -> Vec<String> {
    stanza
        .get_child("x", NS_MUC_USER)
        .map(|x| {
            x.children()
                .filter(|c| c.name() == "status")
                .filter_map(|c| c.attr("code"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn join(host: &mut MucHost, from: &str, nick: &str) -> Vec<(String, Element)> {
    send(
        host,
        &format!("<presence from='{from}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"),
    )
}

fn configure(host: &mut MucHost, fields: &str) -> Vec<(String, Element)> {
    send(
        host,
        &format!(
            "<iq from='{ROMEO}' to='{ROOM}' type='set' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             {fields}</x></query></iq>"
        ),
    )
}

#[test]
fn first_join_creates_a_locked_room_owned_by_the_creator() {
    let mut h = host();
    let out = join(&mut h, ROMEO, "Romeo");
    let romeo = to(&out, ROMEO);
    assert_eq!(romeo.len(), 2, "{out:?}");
    assert_eq!(codes(romeo[0]), vec!["201", "110"]);
    let item = romeo[0].get_child("x", NS_MUC_USER).unwrap().get_child("item", NS_MUC_USER).unwrap();
    assert_eq!(item.attr("affiliation"), Some("owner"));
    assert_eq!(item.attr("role"), Some("moderator"));
    assert_eq!(item.attr("jid"), Some(ROMEO));
    assert!(romeo[1].get_child("subject", NS_CLIENT).is_some());

    // Locked until configured: nobody else gets in.
    let out = join(&mut h, JULIET, "Juliet");
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("item-not-found"));
    configure(&mut h, "");
    let out = join(&mut h, JULIET, "Juliet");
    let juliet = to(&out, JULIET);
    assert_eq!(juliet[0].attr("from"), Some(&*format!("{ROOM}/Romeo")));
    assert_eq!(juliet[1].attr("from"), Some(&*format!("{ROOM}/Juliet")));
    assert_eq!(codes(juliet[1]), vec!["110"]);
    // Romeo, a moderator, sees Juliet's real JID; Juliet does not see Romeo's.
    let romeo_view =
        to(&out, ROMEO)[0].get_child("x", NS_MUC_USER).unwrap().get_child("item", NS_MUC_USER).unwrap();
    assert_eq!(romeo_view.attr("jid"), Some(JULIET));
    let juliet_view = juliet[0].get_child("x", NS_MUC_USER).unwrap().get_child("item", NS_MUC_USER).unwrap();
    assert_eq!(juliet_view.attr("jid"), None);
}

#[test]
fn nick_conflicts_and_invalid_nicks_are_refused() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "");
    let out = join(&mut h, JULIET, "Romeo");
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("conflict"));
    let out = join(&mut h, JULIET, " ");
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("not-allowed"));
    assert_eq!(h.room(&ROOM.parse().unwrap()).unwrap().occupants().count(), 1);
}

#[test]
fn members_only_room_kicks_a_member_who_unregisters() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    let out = configure(&mut h, "<field var='muc#roomconfig_membersonly'><value>1</value></field>");
    assert_eq!(to(&out, ROMEO)[0].attr("type"), Some("result"));

    // Outsiders are kept out.
    let out = join(&mut h, JULIET, "Juliet");
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("registration-required"));

    // Making Juliet a member announces it to the room, with her bare JID.
    let out = send(
        &mut h,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='m1'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='juliet@localhost'/></query></iq>"),
    );
    let romeo = to(&out, ROMEO);
    assert_eq!(romeo[0].name(), "message");
    let item = romeo[0].get_child("x", NS_MUC_USER).unwrap().get_child("item", NS_MUC_USER).unwrap();
    assert_eq!((item.attr("affiliation"), item.attr("jid")), (Some("member"), Some("juliet@localhost")));
    assert_eq!(romeo[1].attr("type"), Some("result"));

    join(&mut h, JULIET, "Juliet");
    let out = send(
        &mut h,
        &format!("<iq from='{JULIET}' to='{ROOM}' type='set' id='u1'><query xmlns='jabber:iq:register'><remove/></query></iq>"),
    );
    let juliet = to(&out, JULIET);
    assert_eq!(juliet[0].attr("type"), Some("unavailable"));
    assert_eq!(codes(juliet[0]), vec!["321", "110"]);
    assert_eq!(juliet[1].attr("type"), Some("result"));
    let romeo = to(&out, ROMEO);
    assert_eq!(codes(romeo[0]), vec!["321"]);
    let item = romeo[0].get_child("x", NS_MUC_USER).unwrap().get_child("item", NS_MUC_USER).unwrap();
    assert_eq!(
        (item.attr("affiliation"), item.attr("role"), item.attr("jid")),
        (Some("none"), Some("none"), Some(JULIET))
    );
    assert_eq!(h.room(&ROOM.parse().unwrap()).unwrap().occupants().count(), 1);
}

#[test]
fn registration_makes_a_member_and_reserves_the_nick() {
    let mut h = host();
    h.config.allow_unaffiliated_register = true;
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "");
    let out = send(
        &mut h,
        &format!("<iq from='{JULIET}' to='{ROOM}' type='set' id='r1'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
        <field var='muc#register_roomnick'><value>Jules</value></field></x></query></iq>"),
    );
    assert_eq!(to(&out, JULIET)[0].attr("type"), Some("result"));
    let room = h.room(&ROOM.parse().unwrap()).unwrap();
    assert_eq!(
        room.stored_affiliation(&"juliet@localhost".parse().unwrap()),
        crate::affiliation::Affiliation::Member
    );
    // Someone else may not take the reserved nick.
    let out = join(&mut h, "paris@localhost/p", "Jules");
    assert_eq!(error_condition(to(&out, "paris@localhost/p")[0]), Some("conflict"));
}

#[test]
fn leaving_the_last_occupant_destroys_a_temporary_room() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    let out = send(&mut h, &format!("<presence from='{ROMEO}' to='{ROOM}/Romeo' type='unavailable'/>"));
    let romeo = to(&out, ROMEO);
    assert_eq!(romeo[0].attr("type"), Some("unavailable"));
    assert_eq!(codes(romeo[0]), vec!["110"]);
    assert_eq!(h.room_count(), 0);
}

#[test]
fn malformed_requests_get_errors_and_leave_the_room_intact() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    for bad in [
        format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='x'/>"),
        format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='x'><query xmlns='http://jabber.org/protocol/muc#admin'/></iq>"),
        format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='x'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='king' jid='a@b'/></query></iq>"),
        format!("<iq from='{ROMEO}' to='{ROOM}' type='get' id='x'><query xmlns='urn:unknown'/></iq>"),
        format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='x'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>wrong</value></field></x></query></iq>"),
        format!("<message from='{ROMEO}' to='{ROOM}' type='normal'><x xmlns='http://jabber.org/protocol/muc#user'><bogus/></x></message>"),
        format!("<presence from='{ROMEO}' to='{ROOM}/Romeo' type='subscribe'/>"),
    ] {
        let out = send(&mut h, &bad);
        let replies = to(&out, ROMEO);
        assert_eq!(replies.len(), 1, "{bad}: {out:?}");
        assert_eq!(replies[0].attr("type"), Some("error"), "{bad}");
    }
    assert_eq!(h.room(&ROOM.parse().unwrap()).unwrap().occupants().count(), 1);
}

#[test]
fn the_service_lists_public_rooms_only() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "<field var='muc#roomconfig_publicroom'><value>1</value></field>");
    send(&mut h, &format!("<presence from='{JULIET}' to='other@conference.localhost/J'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let out = send(
        &mut h,
        &format!("<iq from='{ROMEO}' to='conference.localhost' type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"),
    );
    let query = to(&out, ROMEO)[0].get_child("query", NS_DISCO_ITEMS).unwrap();
    let jids: Vec<_> = query.children().filter_map(|i| i.attr("jid")).collect();
    assert_eq!(jids, vec![ROOM], "rooms are hidden unless made public");
}

#[test]
fn the_service_answers_its_own_disco_info_where_the_host_does_not() {
    let config = HostConfig { name: "Rooms".into(), occupant_id: false, ..HostConfig::for_version((13, 0)) };
    let mut h = MucHost::new("conference.localhost", config).unwrap();
    let out = send(
        &mut h,
        &format!("<iq from='{ROMEO}' to='conference.localhost' type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
    );
    let query = to(&out, ROMEO)[0].get_child("query", NS_DISCO_INFO).expect("a disco#info result");
    let identity = query.get_child("identity", NS_DISCO_INFO).unwrap();
    assert_eq!(
        (identity.attr("category"), identity.attr("type"), identity.attr("name")),
        (Some("conference"), Some("text"), Some("Rooms"))
    );
    let features: Vec<_> = query.children().filter_map(|f| f.attr("var")).collect();
    assert!(features.contains(&NS_MUC) && features.contains(&NS_DISCO_ITEMS), "{features:?}");
    assert!(!features.contains(&NS_OCCUPANT_ID), "occupant ids are off: {features:?}");
}

#[test]
fn a_host_that_answers_nothing_gets_questions_and_nothing_changes() {
    let mut h = host();
    let facts = Facts::new(1_000_000, 7);
    let join = parse(&format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let asked = h.handle(&join, &facts);
    assert_eq!(asked.ask, Some(Question::LoadRoom(room_jid())), "a room not live: its records");
    assert!(asked.deliveries.is_empty() && asked.stores.is_empty() && h.room_count() == 0);
    // Asked again and again, as long as the answer is not given.
    assert_eq!(h.handle(&join, &facts).ask, Some(Question::LoadRoom(room_jid())));

    let list = parse("<iq xmlns='jabber:client' from='romeo@localhost/r1' to='conference.localhost' type='get' id='l'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    let asked = h.handle(&list, &facts);
    assert_eq!(asked.ask, Some(Question::StoredRooms), "the room list: every stored room");
    assert!(asked.deliveries.is_empty());

    // Answered: on 13, rooms have vCards, so the avatar is asked next; then the join makes
    // the room, and the list has what storage has.
    let mut answered = facts.clone();
    answered.supply_room(room_jid(), Ok(None));
    assert_eq!(h.handle(&join, &answered).ask, Some(Question::AvatarHash(room_jid())));
    answered.supply_avatar_hash(room_jid(), None);
    let joined = h.handle(&join, &answered);
    assert_eq!(joined.ask, None);
    assert_eq!(h.room_count(), 1);
    let mut answered = facts.clone();
    answered.supply_stored_rooms(Ok(Vec::new()));
    let listed = h.handle(&list, &answered);
    assert_eq!(listed.ask, None);
    assert_eq!(listed.deliveries.len(), 1);
}

#[test]
fn a_read_that_fails_is_an_error_never_an_empty_room() {
    let mut h = host();
    let mut facts = Facts::new(1_000_000, 7);
    facts.supply_room(room_jid(), Err("database down".into()));
    let join = parse(&format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let out = h.handle(&join, &facts);
    assert_eq!(error_condition(&out.deliveries[0].stanza), Some("internal-server-error"));
    assert_eq!(h.room_count(), 0, "no room made over one that could not be read");
}

/// A service with Romeo's persistent room, stored in `store`.
fn persistent_room_of_romeo(store: &mut MemoryHost) -> MucHost {
    let mut h = host();
    send_with(&mut h, store, JOIN_ROMEO);
    send_with(
        &mut h,
        store,
        &config_iq("<field var='muc#roomconfig_persistentroom'><value>1</value></field>"),
    );
    h
}

/// A service that keeps one room live: another puts it away to storage.
fn host_of_one_live_room() -> MucHost {
    let mut config = HostConfig::for_version((13, 0));
    config.room_cache_size = 1;
    MucHost::new("conference.localhost", config).unwrap()
}

fn send_with(host: &mut MucHost, storage: &mut MemoryHost, xml: &str) -> Vec<(String, Element)> {
    let name_end = xml.find(' ').expect("stanzas have attributes");
    let stanza = parse(&format!("{} xmlns='jabber:client'{}", &xml[..name_end], &xml[name_end..]));
    delivered(storage.handle(host, stanza))
}

pub(super) fn config_iq(fields: &str) -> String {
    format!(
        "<iq from='{ROMEO}' to='{ROOM}' type='set' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
         {fields}</x></query></iq>"
    )
}

const JOIN_ROMEO: &str = "<presence from='romeo@localhost/r1' to='room@conference.localhost/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>";
const LEAVE_ROMEO: &str =
    "<presence from='romeo@localhost/r1' to='room@conference.localhost/Romeo' type='unavailable'/>";

#[test]
fn persistent_rooms_are_stored_before_the_reply_and_come_back() {
    let mut store = storage();
    let mut h = host();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    send_with(
        &mut h,
        &mut store,
        &config_iq("<field var='muc#roomconfig_persistentroom'><value>1</value></field><field var='muc#roomconfig_membersonly'><value>1</value></field>"),
    );
    assert!(store.rooms.contains_key(&room_jid()), "stored when configured");
    send_with(&mut h, &mut store, LEAVE_ROMEO);
    assert_eq!(h.room_count(), 1, "a persistent room stays when empty");

    // A new host (a restarted server) finds the room in storage.
    let mut h = host();
    let out = send_with(&mut h, &mut store, &format!("<presence from='{JULIET}' to='{ROOM}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("registration-required"));
    let out = send_with(&mut h, &mut store, JOIN_ROMEO);
    let item =
        to(&out, ROMEO)[0].get_child("x", NS_MUC_USER).unwrap().get_child("item", NS_MUC_USER).unwrap();
    assert_eq!(item.attr("affiliation"), Some("owner"));
    assert!(!codes(to(&out, ROMEO)[0]).contains(&"201".to_owned()), "not created again");
    let loads = store.asked.iter().filter(|q| **q == Question::LoadRoom(room_jid())).count();
    assert_eq!(loads, 2, "asked when it was made and when it came back, never while live");
}

#[test]
fn a_failed_write_undoes_the_change_and_tells_the_client() {
    let mut store = storage();
    let mut h = persistent_room_of_romeo(&mut store);
    store.fail_writes = true;
    let out = send_with(
        &mut h,
        &mut store,
        &config_iq("<field var='muc#roomconfig_roomname'><value>New</value></field>"),
    );
    let replies = to(&out, ROMEO);
    assert_eq!(replies.len(), 1, "only the error, no 104 broadcast: {out:?}");
    assert_eq!(error_condition(replies[0]), Some("internal-server-error"));
    assert_eq!(h.room(&ROOM.parse().unwrap()).unwrap().settings.name, None, "the change was undone");
}

#[test]
fn destroyed_persistent_rooms_answer_gone_until_their_tombstone_expires() {
    let mut store = storage();
    let mut h = persistent_room_of_romeo(&mut store);
    send_with(
        &mut h,
        &mut store,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='d'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='new@conference.localhost'><reason>moved</reason></destroy></query></iq>"),
    );
    assert_eq!(h.room_count(), 0);
    let out = send_with(&mut h, &mut store, &format!("<presence from='{JULIET}' to='{ROOM}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let error = to(&out, JULIET)[0];
    assert_eq!(error_condition(error), Some("gone"));
    let gone =
        error.get_child("error", NS_CLIENT).unwrap().get_child("gone", crate::xml::NS_STANZAS).unwrap();
    assert_eq!(gone.text(), "xmpp:new@conference.localhost?join");
}

#[test]
fn idle_rooms_are_swapped_to_storage_and_come_back_with_their_occupants() {
    let mut store = storage();
    let mut h = host_of_one_live_room();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    send_with(&mut h, &mut store, &format!("<presence from='{JULIET}' to='other@conference.localhost/J'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    assert_eq!(h.room_count(), 1);
    assert!(store.rooms[&room_jid()].state.is_some(), "evicted with its occupants");

    // Romeo, still in the evicted room, speaks: the room comes back with him in it.
    let out = send_with(
        &mut h,
        &mut store,
        &format!("<message from='{ROMEO}' to='{ROOM}' type='groupchat'><body>back</body></message>"),
    );
    assert_eq!(to(&out, ROMEO)[0].attr("from"), Some(&*format!("{ROOM}/Romeo")));
    assert!(store.rooms[&room_jid()].state.is_none(), "saved state is consumed on restore");
}

#[test]
fn muc_max_rooms_refuses_new_rooms() {
    let mut config = HostConfig::for_version((13, 0));
    config.max_rooms = Some(1);
    let mut h = MucHost::new("conference.localhost", config).unwrap();
    join(&mut h, ROMEO, "Romeo");
    let out = send(&mut h, &format!("<presence from='{JULIET}' to='other@conference.localhost/J'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("resource-constraint"));
    assert_eq!(h.room_count(), 1);
}

#[test]
fn safety_limits_refuse_joins_and_affiliations_beyond_them() {
    let mut config = HostConfig::for_version((13, 0));
    config.max_occupants = 1;
    config.max_sessions_per_occupant = 1;
    config.max_affiliations = 1;
    let mut h = MucHost::new("conference.localhost", config).unwrap();
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "");
    let out = join(&mut h, JULIET, "Juliet");
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("service-unavailable"));
    let out = join(&mut h, "romeo@localhost/r2", "Romeo");
    assert_eq!(error_condition(to(&out, "romeo@localhost/r2")[0]), Some("resource-constraint"));
    // Presence updates from the session already there still pass.
    let out =
        send(&mut h, &format!("<presence from='{ROMEO}' to='{ROOM}/Romeo'><show>away</show></presence>"));
    assert_eq!(to(&out, ROMEO)[0].attr("type"), None);
    let out = send(
        &mut h,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='juliet@localhost'/></query></iq>"),
    );
    assert_eq!(error_condition(to(&out, ROMEO)[0]), Some("resource-constraint"));
}

#[test]
fn several_admin_items_apply_all_or_nothing() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "");
    let admin = |items: &str| {
        format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='a'><query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query></iq>")
    };
    let out = send(&mut h, &admin("<item affiliation='member' jid='juliet@localhost'/><item affiliation='king' jid='paris@localhost'/>"));
    assert_eq!(to(&out, ROMEO).len(), 1, "only the error, no announcement of the undone change: {out:?}");
    assert_eq!(error_condition(to(&out, ROMEO)[0]), Some("not-acceptable"));
    let room = h.room(&ROOM.parse().unwrap()).unwrap();
    assert_eq!(
        room.stored_affiliation(&"juliet@localhost".parse().unwrap()),
        crate::affiliation::Affiliation::None
    );

    let out = send(&mut h, &admin("<item affiliation='member' jid='juliet@localhost'/><item affiliation='outcast' jid='paris@localhost'/>"));
    assert_eq!(to(&out, ROMEO).last().unwrap().attr("type"), Some("result"));
    let room = h.room(&ROOM.parse().unwrap()).unwrap();
    assert_eq!(
        room.stored_affiliation(&"juliet@localhost".parse().unwrap()),
        crate::affiliation::Affiliation::Member
    );
    assert_eq!(
        room.stored_affiliation(&"paris@localhost".parse().unwrap()),
        crate::affiliation::Affiliation::Outcast
    );
}

#[test]
fn a_failed_eviction_keeps_the_old_room_and_refuses_the_new_one() {
    let mut store = storage();
    let mut h = host_of_one_live_room();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    store.fail_writes = true;
    let other = "other@conference.localhost";
    let out = send_with(
        &mut h,
        &mut store,
        &format!(
            "<presence from='{JULIET}' to='{other}/J'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ),
    );
    assert_eq!(to(&out, JULIET).len(), 1, "only the error: {out:?}");
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("resource-constraint"));
    assert!(h.room(&room_jid()).is_some_and(|r| r.has_occupants()), "Romeo's room is still live");
    assert!(h.room(&other.parse().unwrap()).is_none(), "the new room is not made");
    assert!(store.rooms.is_empty());
}

#[test]
fn a_failed_write_of_an_affiliation_undoes_it_and_its_kick() {
    let mut store = storage();
    let mut h = persistent_room_of_romeo(&mut store);
    send_with(&mut h, &mut store, &format!("<presence from='{JULIET}' to='{ROOM}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    store.fail_writes = true;
    let ban = format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='juliet@localhost'/></query></iq>");
    let out = send_with(&mut h, &mut store, &ban);
    assert!(to(&out, JULIET).is_empty(), "Juliet is not told of a ban that did not happen: {out:?}");
    assert_eq!(error_condition(to(&out, ROMEO)[0]), Some("internal-server-error"));
    let room = h.room(&room_jid()).unwrap();
    assert_eq!(
        room.stored_affiliation(&"juliet@localhost".parse().unwrap()),
        crate::affiliation::Affiliation::None
    );
    assert!(room.nick_of(&JULIET.parse().unwrap()).is_some(), "Juliet is still in the room");
    let stored = Room::restore(&store.rooms[&room_jid()].config, None).unwrap();
    assert_eq!(
        stored.stored_affiliation(&"juliet@localhost".parse().unwrap()),
        crate::affiliation::Affiliation::None
    );

    // Storage back: the same ban goes through.
    store.fail_writes = false;
    let out = send_with(&mut h, &mut store, &ban);
    assert_eq!(codes(to(&out, JULIET)[0]), vec!["301", "110"]);
}

#[test]
fn rooms_put_away_for_a_new_room_stay_while_the_modules_are_asked() {
    let mut store = storage();
    let mut h = host_of_one_live_room();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    let join = parse(&format!("<presence xmlns='jabber:client' from='{JULIET}' to='other@conference.localhost/J'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    store.listening = crate::hooks::Hooks::NONE.with(crate::hooks::Hook::RoomPreCreate);
    let out = store.handle(&mut h, join);
    assert!(out.module_question().is_some());
    assert!(out.stores.is_empty() && store.rooms.is_empty(), "nothing written before the answer");
    assert!(h.room(&room_jid()).is_some(), "Romeo's room was not dropped");
}

#[test]
fn a_room_brought_back_while_the_modules_are_asked_keeps_its_saved_state_until_the_answer() {
    let mut store = storage();
    let mut h = host_of_one_live_room();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    send_with(&mut h, &mut store, &format!("<presence from='{JULIET}' to='other@conference.localhost/J'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    assert!(store.rooms[&room_jid()].state.is_some(), "put away with Romeo in it");
    let message = parse(&format!("<message xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='groupchat'><body>back</body></message>"));
    store.listening = crate::hooks::Hooks::NONE.with(crate::hooks::Hook::OccupantGroupchat);
    let out = store.handle(&mut h, message);
    assert!(out.module_question().is_some());
    assert!(store.rooms[&room_jid()].state.is_some(), "nothing written before the answer");
    assert!(h.room(&"other@conference.localhost".parse().unwrap()).is_some(), "the other room stays");
}

#[test]
fn each_room_makes_its_own_occupant_ids() {
    let mut config = HostConfig::for_version((13, 0));
    config.occupant_id = true;
    let mut h = MucHost::new("conference.localhost", config).unwrap();
    let mut store = storage();
    let occupant_id = |out: &[(String, Element)]| -> String {
        let presence = to(out, ROMEO)[0];
        presence.get_child("occupant-id", NS_OCCUPANT_ID).and_then(|o| o.attr("id")).unwrap().to_owned()
    };
    let in_room = occupant_id(&send_with(&mut h, &mut store, JOIN_ROMEO));
    let other = format!("<presence from='{ROMEO}' to='other@conference.localhost/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    let in_other = occupant_id(&send_with(&mut h, &mut store, &other));
    assert_ne!(in_room, in_other, "XEP-0421: ids differ from room to room (each room has its salt)");
}

/// A service where service admins own every room (Prosody 0.12's default), whose admin is
/// `admin@localhost`.
fn host_where_admins_own_rooms() -> (MucHost, MemoryHost) {
    let h = MucHost::new("conference.localhost", HostConfig::for_version((0, 12))).unwrap();
    let store = MemoryHost { admins: vec!["admin@localhost".parse().unwrap()], ..storage() };
    (h, store)
}

#[test]
fn admins_are_asked_about_before_anything_changes_and_known_while_they_stay() {
    let (mut h, mut store) = host_where_admins_own_rooms();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    send_with(&mut h, &mut store, &config_iq(""));
    let admin = "admin@localhost/a1";
    let join = parse(&format!("<presence xmlns='jabber:client' from='{admin}' to='{ROOM}/Admin'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let facts = Facts::new(1_000_000, 7);
    let asked = h.handle(&join, &facts);
    assert_eq!(asked.ask, Some(Question::ServiceAdmins(vec!["admin@localhost".parse().unwrap()])));
    assert!(asked.deliveries.is_empty() && asked.stores.is_empty());
    assert_eq!(h.room(&room_jid()).unwrap().occupant_count(), 1, "nothing changed before the answer");

    let mut answered = facts.clone();
    answered.supply_service_admin("admin@localhost".parse().unwrap(), true);
    let joined = h.handle(&join, &answered);
    let own = joined
        .deliveries
        .iter()
        .find(|d| {
            d.stanza.attr("from") == Some(&*format!("{ROOM}/Admin"))
                && d.to.iter().any(|t| t.to_string() == admin)
        })
        .expect("the admin's own presence");
    let own = String::from(&own.stanza);
    assert!(own.contains("affiliation='owner'") && own.contains("role='moderator'"), "{own}");

    // In the room, the admin is known: speaking, or Romeo's next presence, asks nothing.
    let said = parse(&format!("<message xmlns='jabber:client' from='{admin}' to='{ROOM}' type='groupchat'><body>hi</body></message>"));
    assert_eq!(h.handle(&said, &facts).ask, None);
    let away = parse(&format!(
        "<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/Romeo'><show>away</show></presence>"
    ));
    assert_eq!(h.handle(&away, &facts).ask, None);

    // The host's admins changed: the room asks again about who is in it.
    h.forget_service_admins();
    let Some(Question::ServiceAdmins(users)) = h.handle(&said, &facts).ask else { panic!("asked again") };
    assert!(
        users.contains(&"admin@localhost".parse().unwrap())
            && users.contains(&"romeo@localhost".parse().unwrap())
    );
    store.handle(&mut h, said.clone());

    // A user named in an affiliation change is asked about first; an admin stays owner.
    let demote = parse(&format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='d'><query xmlns='http://jabber.org/protocol/muc#admin'>\
         <item jid='admin@localhost' affiliation='member'/></query></iq>"
    ));
    assert_eq!(
        h.handle(&demote, &facts).ask,
        Some(Question::ServiceAdmins(vec!["admin@localhost".parse().unwrap()]))
    );
    let out = store.handle(&mut h, demote);
    assert_eq!(error_condition(&out.deliveries[0].stanza), Some("not-acceptable"));
}

#[test]
fn a_room_brought_back_with_its_occupants_asks_about_them_once() {
    let mut config = HostConfig::for_version((0, 12));
    config.room_cache_size = 1;
    let mut h = MucHost::new("conference.localhost", config).unwrap();
    let mut store = MemoryHost { admins: vec!["admin@localhost".parse().unwrap()], ..storage() };
    send_with(&mut h, &mut store, JOIN_ROMEO);
    send_with(&mut h, &mut store, &config_iq(""));
    send_with(&mut h, &mut store, "<presence from='admin@localhost/a1' to='room@conference.localhost/Admin'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    send_with(&mut h, &mut store, &format!("<presence from='{JULIET}' to='other@conference.localhost/J'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    assert!(store.rooms[&room_jid()].state.is_some(), "put away with its occupants");

    store.asked.clear();
    let out = send_with(
        &mut h,
        &mut store,
        &format!("<message from='{ROMEO}' to='{ROOM}' type='groupchat'><body>back</body></message>"),
    );
    assert!(!out.is_empty());
    let asked_admins: Vec<_> =
        store.asked.iter().filter(|q| matches!(q, Question::ServiceAdmins(_))).collect();
    assert_eq!(asked_admins.len(), 1, "{:?}", store.asked);
    let Question::ServiceAdmins(users) = asked_admins[0] else { unreachable!() };
    assert!(users.contains(&"admin@localhost".parse().unwrap()), "{users:?}");

    // Known from then on: the admin, still in the room, is its owner.
    store.asked.clear();
    let out = send_with(&mut h, &mut store, "<presence from='admin@localhost/a1' to='room@conference.localhost/Admin'><show>dnd</show></presence>");
    assert!(store.asked.is_empty(), "{:?}", store.asked);
    let seen = String::from(to(&out, ROMEO)[0]);
    assert!(seen.contains("affiliation='owner'"), "{seen}");
}

#[test]
fn an_owner_the_host_does_not_let_make_rooms_persistent_neither_sees_nor_sets_it() {
    let mut store = storage();
    let mut h = host();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    let mut facts = Facts::new(1_000_000, 7);
    facts.sender_may_persist = Some(false);
    let get = parse(&format!("<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='get' id='form'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"));
    let form = String::from(&store.handle_with(&mut h, get, facts.clone()).deliveries[0].stanza);
    assert!(form.contains("muc#roomconfig_publicroom"), "{form}");
    assert!(!form.contains("muc#roomconfig_persistentroom"), "no field to make it persistent: {form}");

    let set = config_iq("<field var='muc#roomconfig_persistentroom'><value>1</value></field>");
    let set = parse(&set.replacen("<iq ", "<iq xmlns='jabber:client' ", 1));
    let out = store.handle_with(&mut h, set.clone(), facts);
    assert_eq!(error_condition(&out.deliveries[0].stanza), Some("not-acceptable"));
    assert!(
        !h.room(&room_jid()).unwrap().settings.persistent && store.rooms.is_empty(),
        "not made persistent"
    );

    let mut facts = Facts::new(1_000_000, 8);
    facts.sender_may_persist = Some(true);
    store.handle_with(&mut h, set, facts);
    assert!(h.room(&room_jid()).unwrap().settings.persistent, "an owner the rule allows may");
}

#[test]
fn a_deleted_account_loses_its_affiliation_and_leaves_the_room() {
    let mut store = storage();
    let mut h = persistent_room_of_romeo(&mut store);
    let juliet: BareJid = "juliet@localhost".parse().unwrap();
    send_with(
        &mut h,
        &mut store,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='juliet@localhost'><reason>friend</reason></item></query></iq>"),
    );
    send_with(&mut h, &mut store, &format!("<presence from='{JULIET}' to='{ROOM}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let mut facts = store.facts();
    assert_eq!(h.rooms_of_user(&juliet, &facts), None);
    facts.supply_stored_rooms(store.stored_rooms());
    assert_eq!(h.rooms_of_user(&juliet, &facts), Some(vec![room_jid()]));

    let facts = store.facts();
    let out = store.drive(&mut h, facts, |h, facts| h.remove_user(&room_jid(), &juliet, facts));
    let gone: Vec<_> = out
        .deliveries
        .iter()
        .filter(|d| {
            d.stanza.attr("from") == Some(&*format!("{ROOM}/Juliet"))
                && d.stanza.attr("type") == Some("unavailable")
        })
        .collect();
    assert!(gone.iter().any(|d| d.to.iter().any(|t| t.to_string() == ROMEO)), "Romeo sees her go");
    let seen = String::from(&gone[0].stanza);
    assert!(seen.contains("User removed") && seen.contains("affiliation='none'"), "{seen}");
    let mut facts = store.facts();
    facts.supply_stored_rooms(store.stored_rooms());
    assert_eq!(h.rooms_of_user(&juliet, &facts), Some(vec![]));
    let record = &store.rooms[&room_jid()];
    assert!(!format!("{:?}", record.config).contains("juliet@localhost"), "the stored room forgot her");

    // A room only in storage (a service just started) is brought back to forget her too.
    send_with(
        &mut h,
        &mut store,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='m2'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='juliet@localhost'/></query></iq>"),
    );
    let mut restarted = host();
    let mut facts = store.facts();
    facts.supply_stored_rooms(store.stored_rooms());
    assert_eq!(restarted.rooms_of_user(&juliet, &facts), Some(vec![room_jid()]));
    let facts = store.facts();
    store.drive(&mut restarted, facts, |h, facts| h.remove_user(&room_jid(), &juliet, facts));
    assert!(!format!("{:?}", store.rooms[&room_jid()].config).contains("juliet@localhost"));
}

#[test]
fn a_temporary_room_is_never_written() {
    let mut config = HostConfig::for_version((13, 0));
    config.room_locking = false;
    let mut h = MucHost::new("conference.localhost", config).unwrap();
    let mut facts = Facts::new(1_000_000, 7);
    facts.supply_room(room_jid(), Ok(None));
    facts.supply_avatar_hash(room_jid(), None);
    let made = h.handle(&parse(&format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>")), &facts);
    assert!(made.ask.is_none() && made.stores.is_empty(), "{:?}", made.stores);
    // Storage has nothing of it, and nothing to be told by the next stanza either.
    let joined = h.handle(&parse(&format!("<presence xmlns='jabber:client' from='{JULIET}' to='{ROOM}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>")), &facts);
    assert!(joined.stores.is_empty(), "{:?}", joined.stores);
    assert_eq!(joined.deliveries.len(), 4);
}

/// Every delivery of an outcome as (recipient, stanza).
fn delivered(out: Outcome) -> Vec<(String, Element)> {
    out.deliveries
        .into_iter()
        .flat_map(|d| d.to.into_iter().map(move |to| (to.to_string(), d.stanza.clone())))
        .collect()
}

#[test]
fn an_announcement_reaches_every_room_and_stays_in_its_history() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "");
    send(
        &mut h,
        "<presence from='juliet@localhost/j1' to='other@conference.localhost/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    );
    let out = delivered(h.announce("Maintenance at noon", &Facts::new(1_000_000, 1)));
    for (to_jid, room) in [(ROMEO, ROOM), (JULIET, "other@conference.localhost")] {
        let got = to(&out, to_jid);
        assert_eq!(got.len(), 1, "{out:?}");
        assert_eq!(got[0].attr("type"), Some("groupchat"));
        assert_eq!(got[0].attr("from"), Some(room));
        assert_eq!(
            got[0].get_child("body", NS_CLIENT).map(|b| b.text()).as_deref(),
            Some("Maintenance at noon")
        );
    }
    let joined = join(&mut h, "mercutio@localhost/m1", "Mercutio");
    let history: Vec<_> = to(&joined, "mercutio@localhost/m1")
        .into_iter()
        .filter(|s| s.name() == "message" && s.has_child("body", NS_CLIENT))
        .collect();
    assert_eq!(history.len(), 1, "{joined:?}");
    assert_eq!(history[0].attr("from"), Some(ROOM));
}

#[test]
fn shutting_down_tells_each_occupant_it_is_removed() {
    let mut h = host();
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "");
    join(&mut h, JULIET, "Juliet");
    let out = delivered(h.shut_down(&Facts::new(1_000_000, 1)));
    assert_eq!(out.len(), 2, "only each occupant's own presence: {out:?}");
    for (to_jid, nick) in [(ROMEO, "Romeo"), (JULIET, "Juliet")] {
        let got = to(&out, to_jid);
        assert_eq!(got.len(), 1, "{out:?}");
        assert_eq!(got[0].attr("type"), Some("unavailable"));
        assert_eq!(got[0].attr("from"), Some(format!("{ROOM}/{nick}").as_str()));
        assert_eq!(codes(got[0]), vec!["332", "110"]);
        let item = got[0].get_child("x", NS_MUC_USER).unwrap().get_child("item", NS_MUC_USER).unwrap();
        assert_eq!((item.attr("affiliation"), item.attr("role")), (Some("none"), Some("none")));
    }
    assert!(!h.room(&room_jid()).unwrap().has_occupants());
}

/// A host whose rooms keep their own vCards (ejabberd's way).
fn host_with_vcards_in_rooms() -> MucHost {
    let mut config = HostConfig::for_version((13, 0));
    config.vcards_in_rooms = true;
    MucHost::new("conference.localhost", config).unwrap()
}

const SET_VCARD: &str = "<iq from='romeo@localhost/r1' to='room@conference.localhost' type='set' id='v1'>\
     <vCard xmlns='vcard-temp'><FN>Verona</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>aGVs\nbG8=</BINVAL></PHOTO></vCard></iq>";
/// SHA-1 of "hello", the photo above.
const HELLO_SHA1: &str = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d";

#[test]
fn a_room_keeps_its_own_vcard_and_announces_its_avatar() {
    let mut h = host_with_vcards_in_rooms();
    let get = "<iq from='juliet@localhost/j1' to='room@conference.localhost' type='get' id='g1'><vCard xmlns='vcard-temp'/></iq>";
    join(&mut h, ROMEO, "Romeo");
    configure(&mut h, "");
    join(&mut h, JULIET, "Juliet");
    let none = send(&mut h, get);
    assert_eq!(error_condition(to(&none, JULIET)[0]), Some("item-not-found"), "{none:?}");

    let refused = send(&mut h, &SET_VCARD.replace("romeo@localhost/r1", JULIET));
    let refusal = to(&refused, JULIET)[0];
    assert_eq!(error_condition(refusal), Some("forbidden"), "{refused:?}");

    let set = send(&mut h, SET_VCARD);
    assert_eq!(to(&set, ROMEO)[0].attr("type"), Some("result"), "{set:?}");
    let announced: Vec<_> = to(&set, JULIET).into_iter().map(String::from).collect();
    assert!(announced.iter().any(|s| s.contains(HELLO_SHA1)), "{announced:?}");

    let got = send(&mut h, get);
    let vcard = to(&got, JULIET)[0].get_child("vCard", "vcard-temp").expect("the room's vCard");
    assert_eq!(vcard.get_child("FN", "vcard-temp").map(Element::text).as_deref(), Some("Verona"));
    let joined = join(&mut h, "mercutio@localhost/m1", "Mercutio");
    assert!(joined.iter().any(|(_, s)| String::from(s).contains(HELLO_SHA1)), "{joined:?}");
}

#[test]
fn a_rooms_own_vcard_is_kept_in_its_record() {
    let mut h = host_with_vcards_in_rooms();
    let mut store = storage();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    send_with(
        &mut h,
        &mut store,
        &config_iq("<field var='muc#roomconfig_persistentroom'><value>1</value></field>"),
    );
    send_with(&mut h, &mut store, SET_VCARD);
    send_with(&mut h, &mut store, LEAVE_ROMEO);
    // Brought back from its record by a fresh service.
    let mut fresh = host_with_vcards_in_rooms();
    let info = send_with(
        &mut fresh,
        &mut store,
        "<iq from='juliet@localhost/j1' to='room@conference.localhost' type='get' id='i1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    assert!(info.iter().any(|(_, s)| String::from(s).contains(HELLO_SHA1)), "{info:?}");
}

#[test]
fn owners_and_admins_join_a_full_room_up_to_their_allowance_and_long_names_are_refused() {
    let mut config = HostConfig::for_version((13, 0));
    config.max_occupants = 1;
    config.admin_occupant_allowance = Some(1);
    config.max_name_length = Some(8);
    let mut h = MucHost::new("conference.localhost", config).unwrap();
    join(&mut h, ROMEO, "Romeo");
    let long = configure(&mut h, "<field var='muc#roomconfig_roomname'><value>Far too long</value></field>");
    assert_eq!(error_condition(to(&long, ROMEO)[0]), Some("not-acceptable"), "{long:?}");
    configure(&mut h, "<field var='muc#roomconfig_roomname'><value>Friends</value></field>");
    for (jid, affiliation) in [("benvolio@localhost", "admin"), ("mercutio@localhost", "owner")] {
        send(
            &mut h,
            &format!(
                "<iq from='{ROMEO}' to='{ROOM}' type='set' id='a'><query xmlns='http://jabber.org/protocol/muc#admin'>\
                 <item jid='{jid}' affiliation='{affiliation}'/></query></iq>"
            ),
        );
    }
    let refused =
        |out: &[(String, Element)], jid: &str| to(out, jid).iter().any(|s| s.attr("type") == Some("error"));
    assert!(refused(&join(&mut h, JULIET, "Juliet"), JULIET), "full for Juliet");
    assert!(
        !refused(&join(&mut h, "benvolio@localhost/b", "Benvolio"), "benvolio@localhost/b"),
        "an admin may join"
    );
    assert!(refused(&join(&mut h, "mercutio@localhost/m", "Mercutio"), "mercutio@localhost/m"), "no more");
}

#[test]
fn the_hosts_archiving_switch_is_in_the_form_and_only_those_the_host_lets_set_it() {
    let mut store = storage();
    let mut h = host();
    send_with(&mut h, &mut store, JOIN_ROMEO);
    let facts = |may: bool| {
        let mut facts = Facts::new(1_000_000, 7);
        facts.archive_switch = Some(crate::ArchiveSwitch { default: true, sender_may_change: may });
        facts
    };
    let get = parse(&format!("<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='get' id='form'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"));
    let form = String::from(&store.handle_with(&mut h, get.clone(), facts(true)).deliveries[0].stanza);
    assert!(
        form.contains("<field label='Enable message archiving' type='boolean' var='mam'><value>1</value>"),
        "{form}"
    );
    let without =
        String::from(&store.handle_with(&mut h, get, Facts::new(1_000_000, 7)).deliveries[0].stanza);
    assert!(!without.contains("var='mam'"), "no switch where the host has none: {without}");

    let set = config_iq("<field var='mam'><value>0</value></field>");
    let set = parse(&set.replacen("<iq ", "<iq xmlns='jabber:client' ", 1));
    let out = store.handle_with(&mut h, set.clone(), facts(false));
    assert_eq!(error_condition(&out.deliveries[0].stanza), Some("not-acceptable"));
    assert_eq!(h.room(&room_jid()).unwrap().settings.archiving(), None, "as it was");

    store.handle_with(&mut h, set, facts(true));
    assert_eq!(
        h.room(&room_jid()).unwrap().settings.archiving(),
        Some(false),
        "an owner the rule allows may"
    );
}

/// The settings of Romeo's room with `name` and members-only, as an admin command gives
/// them (the record's `_data`).
fn settings_named(h: &MucHost, name: &str) -> Data {
    let config = h.room_snapshot(&room_jid()).expect("live").config;
    let mut data =
        config.table().and_then(|t| t.get(&Key::from("_data"))).and_then(Data::table).unwrap().clone();
    data.insert(Key::from("name"), Data::Str(name.into()));
    data.insert(Key::from("members_only"), Data::Bool(true));
    Data::Table(data)
}

#[test]
fn an_admin_commands_settings_are_stored_then_announced_and_undone_if_the_write_fails() {
    let mut store = storage();
    let mut h = persistent_room_of_romeo(&mut store);
    let facts = store.facts();
    let data = settings_named(&h, "Renamed");
    let out = store.drive(&mut h, facts, |h, facts| h.admin_configure(&room_jid(), &data, facts).unwrap());
    let notice = out.deliveries.iter().find(|d| d.stanza.name() == "message").expect("a notice");
    assert!(codes(&notice.stanza).contains(&"104".to_owned()), "{}", String::from(&notice.stanza));
    let settings = &h.room(&room_jid()).unwrap().settings;
    assert!(settings.name.as_deref() == Some("Renamed") && settings.members_only);
    assert!(format!("{:?}", store.rooms[&room_jid()].config).contains("Renamed"), "stored");

    store.fail_writes = true;
    let facts = store.facts();
    let data = settings_named(&h, "Lost");
    let out = store.drive(&mut h, facts, |h, facts| h.admin_configure(&room_jid(), &data, facts).unwrap());
    assert!(out.deliveries.is_empty(), "no one hears of a change not written");
    assert_eq!(h.room(&room_jid()).unwrap().settings.name.as_deref(), Some("Renamed"), "undone");
    let missing: BareJid = "nosuch@conference.localhost".parse().unwrap();
    let facts = store.facts();
    let mut asked = facts.clone();
    assert!(h.admin_configure(&missing, &data, &facts).is_ok_and(|out| out.ask.is_some()), "asks for it");
    asked.supply_room(missing.clone(), Ok(None));
    assert_eq!(h.admin_configure(&missing, &data, &asked).err().as_deref(), Some("No such room"));
}

#[test]
fn an_admin_commands_room_is_made_from_its_record_and_stored_with_its_affiliations() {
    let mut store = storage();
    let mut h = persistent_room_of_romeo(&mut store);
    let record = h.room_snapshot(&room_jid()).unwrap().config;
    let made: BareJid = "made@conference.localhost".parse().unwrap();
    let facts = store.facts();
    let out = store.drive(&mut h, facts.clone(), |h, facts| {
        let (created, out) = h.admin_create_room(&made, &record, facts);
        created.unwrap();
        out
    });
    assert!(out.deliveries.is_empty());
    let room = h.room(&made).expect("live");
    assert_eq!(room.stored_affiliation(&"romeo@localhost".parse().unwrap()), Affiliation::Owner);
    assert!(store.rooms.contains_key(&made), "a persistent room is stored at once");
    assert_eq!(h.admin_create_room(&made, &record, &facts).0, Err("room-exists"));
    let summary = h.live_rooms_summary();
    assert!(summary.iter().any(|(jid, _, sessions, _)| jid == ROOM && *sessions == 1), "{summary:?}");
    assert_eq!(h.rooms_with_occupant(&"romeo@localhost".parse().unwrap()), vec![ROOM.to_owned()]);
}

/// Sends `xml` with a module's replacement of the room's affiliation rule or members-only
/// answer (Prosody's patched `room_mt`) in the facts.
fn send_patched(host: &mut MucHost, patch: impl FnOnce(&mut Facts), xml: &str) -> Vec<(String, Element)> {
    let mut store = storage();
    let name_end = xml.find(' ').expect("stanzas have attributes");
    let stanza = parse(&format!("{} xmlns='jabber:client'{}", &xml[..name_end], &xml[name_end..]));
    let mut facts = store.facts();
    patch(&mut facts);
    delivered(store.handle_with(host, stanza, facts))
}

fn juliet_owner(facts: &mut Facts) {
    facts.supply_patched_affiliation(room_jid(), "juliet@localhost".parse().unwrap(), Affiliation::Owner);
}

#[test]
fn a_patched_affiliation_decides_the_role_kicks_and_configuration() {
    let mut h = host();
    send(&mut h, JOIN_ROMEO);
    send(&mut h, &config_iq(""));
    join(&mut h, "nurse@localhost/n1", "Nurse");
    let join_juliet = format!(
        "<presence from='{JULIET}' to='{ROOM}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    );
    let out = send_patched(&mut h, juliet_owner, &join_juliet);
    let own = to(&out, JULIET).into_iter().find(|s| s.attr("from") == Some(&*format!("{ROOM}/Juliet")));
    let own = String::from(own.expect("Juliet's own presence"));
    assert!(own.contains("affiliation='owner'") && own.contains("role='moderator'"), "{own}");
    // The patch answers for this call only: nothing is stored.
    assert_eq!(
        h.room(&room_jid()).unwrap().stored_affiliation(&"juliet@localhost".parse().unwrap()),
        Affiliation::None
    );

    let kick = format!(
        "<iq from='{JULIET}' to='{ROOM}' type='set' id='k'><query xmlns='http://jabber.org/protocol/muc#admin'>\
         <item nick='Nurse' role='none'/></query></iq>"
    );
    let form = format!("<iq from='{JULIET}' to='{ROOM}' type='get' id='f'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>");
    // Without the patch, Juliet may not configure (her role stays: she may still kick).
    let out = send(&mut h, &form);
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("forbidden"));
    let out = send_patched(&mut h, juliet_owner, &form);
    assert_eq!(to(&out, JULIET)[0].attr("type"), Some("result"));
    let out = send_patched(&mut h, juliet_owner, &kick);
    assert_eq!(to(&out, JULIET).iter().find(|s| s.name() == "iq").unwrap().attr("type"), Some("result"));
    assert!(codes(to(&out, "nurse@localhost/n1")[0]).contains(&"307".to_owned()), "Nurse is kicked");
}

#[test]
fn a_patched_members_only_lets_members_see_the_member_list_where_jids_are_public() {
    let mut h = host();
    send(&mut h, JOIN_ROMEO);
    send(&mut h, &config_iq("<field var='muc#roomconfig_whois'><value>anyone</value></field>"));
    send(
        &mut h,
        &format!(
            "<iq from='{ROMEO}' to='{ROOM}' type='set' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item jid='juliet@localhost' affiliation='member'/></query></iq>"
        ),
    );
    let list = format!(
        "<iq from='{JULIET}' to='{ROOM}' type='get' id='l'><query xmlns='http://jabber.org/protocol/muc#admin'>\
         <item affiliation='member'/></query></iq>"
    );
    let out = send(&mut h, &list);
    assert_eq!(error_condition(to(&out, JULIET)[0]), Some("forbidden"));
    let out = send_patched(&mut h, |f| f.supply_patched_members_only(room_jid(), true), &list);
    let reply = String::from(to(&out, JULIET)[0]);
    assert!(reply.contains("type='result'") && reply.contains("jid='juliet@localhost'"), "{reply}");
}
