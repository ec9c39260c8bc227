//! Moderation (XEP-0425) and own retraction (XEP-0424) where the host has them
//! (`message_moderation`, ejabberd), and their absence where it has not (Prosody).

use super::*;
use crate::hooks::Event;
use crate::memory_host::MemoryHost;

const ROOM: &str = "room@conference.localhost";
const ROMEO: &str = "romeo@localhost/r1";
const JULIET: &str = "juliet@localhost/j1";

fn host(moderation: bool) -> MucHost {
    let mut config = HostConfig::for_version((13, 0));
    config.message_moderation = moderation;
    let mut host = MucHost::new("conference.localhost", config).unwrap();
    for (jid, nick) in [(ROMEO, "romeo"), (JULIET, "juliet")] {
        let join = format!("<presence xmlns='jabber:client' from='{jid}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        drive(&mut host, &join, None);
        if jid == ROMEO {
            let instant = format!(
                "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                 <x xmlns='jabber:x:data' type='submit'/></query></iq>"
            );
            drive(&mut host, &instant, None);
        }
    }
    host
}

fn drive(host: &mut MucHost, stanza: &str, stanza_id: Option<i64>) -> Outcome {
    let mut facts = Facts::new(1_000_000, 7);
    facts.room_stanza_id = stanza_id;
    MemoryHost::at(1_000_000).handle_with(host, stanza.parse().unwrap(), facts)
}

/// Juliet's message, with the room's stanza-id `sid` and the origin-id `origin`.
fn say(host: &mut MucHost, sid: i64, origin: &str) {
    let msg = format!(
        "<message xmlns='jabber:client' from='{JULIET}' to='{ROOM}' type='groupchat' id='{origin}'>\
         <body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='{origin}'/></message>"
    );
    let out = drive(host, &msg, Some(sid));
    let sent = &out.deliveries[0].stanza;
    let stamped = sent.get_child("stanza-id", "urn:xmpp:sid:0").and_then(|s| s.attr("id"));
    assert_eq!(stamped, Some(sid.to_string().as_str()), "the room's own stanza-id");
}

fn moderate(from: &str, id: &str) -> String {
    format!(
        "<iq xmlns='jabber:client' from='{from}' to='{ROOM}' type='set' id='mod'>\
         <moderate xmlns='urn:xmpp:message-moderate:1' id='{id}'><retract xmlns='urn:xmpp:message-retract:1'/>\
         <reason>spam</reason></moderate></iq>"
    )
}

fn history_ids(host: &MucHost) -> Vec<String> {
    let room = host.room(&ROOM.parse().unwrap()).unwrap();
    room.history.iter().map(|e| e.stanza.attr("id").unwrap_or("").to_owned()).collect()
}

fn error_condition(out: &Outcome) -> Option<String> {
    let reply = &out.deliveries.last()?.stanza;
    assert_eq!(reply.attr("type"), Some("error"));
    Some(reply.get_child("error", crate::xml::NS_CLIENT)?.children().next()?.name().to_owned())
}

#[test]
fn a_moderator_removes_a_message_from_history_and_archive() {
    let mut host = host(true);
    say(&mut host, 11, "a");
    say(&mut host, 12, "b");
    let out = drive(&mut host, &moderate(ROMEO, "11"), None);
    assert!(matches!(out.events.as_slice(), [(0, Event::RemoveArchived { stanza_id: 11, .. })]));
    // The tombstone to both occupants, then the result.
    let [tombstone, result] = out.deliveries.as_slice() else { panic!("{:?}", out.deliveries) };
    assert_eq!(tombstone.to.len(), 2);
    let (tombstone, result) = (&tombstone.stanza, &result.stanza);
    assert_eq!(tombstone.attr("from"), Some(ROOM));
    let retract = tombstone.get_child("retract", "urn:xmpp:message-retract:1").unwrap();
    assert_eq!(retract.attr("id"), Some("11"));
    let by = retract.get_child("moderated", "urn:xmpp:message-moderate:1").and_then(|m| m.attr("by"));
    assert_eq!(by, Some("room@conference.localhost/romeo"));
    assert_eq!(result.attr("type"), Some("result"));
    // b stays, a is gone, and the tombstone (no id) is kept.
    assert_eq!(history_ids(&host), vec!["b", ""]);
}

#[test]
fn a_participant_may_not_moderate_and_ids_are_numbers() {
    let mut host = host(true);
    say(&mut host, 11, "a");
    let out = drive(&mut host, &moderate(JULIET, "11"), None);
    assert_eq!(error_condition(&out).as_deref(), Some("forbidden"));
    let out = drive(&mut host, &moderate(ROMEO, "eleven"), None);
    assert_eq!(error_condition(&out).as_deref(), Some("bad-request"));
    assert!(out.events.is_empty());
    assert_eq!(history_ids(&host), vec!["a"]);
}

#[test]
fn an_occupant_retracts_its_own_message_in_a_fastening() {
    let mut host = host(true);
    say(&mut host, 11, "a");
    say(&mut host, 12, "b");
    // Romeo cannot retract Juliet's.
    let retract = |from: &str| {
        format!(
            "<message xmlns='jabber:client' from='{from}' to='{ROOM}' type='groupchat' id='r'>\
             <apply-to xmlns='urn:xmpp:fasten:0' id='a'><retract xmlns='urn:xmpp:message-retract:1'/></apply-to>\
             <body>retracted</body></message>"
        )
    };
    let out = drive(&mut host, &retract(ROMEO), Some(13));
    assert!(out.events.is_empty());
    assert_eq!(history_ids(&host), vec!["a", "b", "r"]);
    let out = drive(&mut host, &retract(JULIET), Some(14));
    assert!(matches!(out.events.as_slice(), [(0, Event::RemoveArchived { stanza_id: 11, .. })]));
    assert_eq!(history_ids(&host), vec!["b", "r", "r"]);
}

#[test]
fn without_moderation_the_room_has_none() {
    let mut host = host(false);
    say(&mut host, 11, "a");
    let out = drive(&mut host, &moderate(ROMEO, "11"), None);
    assert_eq!(error_condition(&out).as_deref(), Some("service-unavailable"));
    assert_eq!(history_ids(&host), vec!["a"]);
    let disco = format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    );
    let features = |host: &mut MucHost| {
        let out = drive(host, &disco, None);
        let query = out.deliveries[0].stanza.children().next().unwrap().clone();
        query.children().filter_map(|f| f.attr("var").map(str::to_owned)).collect::<Vec<_>>()
    };
    assert!(!features(&mut host).iter().any(|f| f.starts_with("urn:xmpp:message-")));
    let mut ejabberd = self::host(true);
    let listed = features(&mut ejabberd);
    for feature in crate::room::moderation::FEATURES {
        assert!(listed.iter().any(|f| f == feature), "{feature} in {listed:?}");
    }
}
