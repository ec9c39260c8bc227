//! MucSub driven with stanzas: subscribing to a room that allows it, the join rules a
//! subscription meets, delivery to subscribers who are not joined, the subscriber list,
//! and subscriptions kept with the room across a restart.

use super::*;
use crate::memory_host::MemoryHost;
use crate::room::mucsub::{NS_MUCSUB, NS_PUBSUB_EVENT};
use crate::xml::{error_condition, NS_CLIENT};

const ROOM: &str = "room@conference.localhost";
const ROMEO: &str = "romeo@localhost/r1";
const JULIET: &str = "juliet@localhost/j1";
const JULIET_BARE: &str = "juliet@localhost";
const NURSE: &str = "nurse@localhost/n1";

fn host(mucsub: bool) -> MucHost {
    let mut config = HostConfig::for_version((13, 0));
    config.mucsub = mucsub;
    MucHost::new("conference.localhost", config).unwrap()
}

fn send(host: &mut MucHost, store: &mut MemoryHost, xml: &str) -> Vec<(String, Element)> {
    let name_end = xml.find(' ').expect("stanzas have attributes");
    let stanza: Element =
        format!("{} xmlns='jabber:client'{}", &xml[..name_end], &xml[name_end..]).parse().expect("parses");
    store
        .handle(host, stanza)
        .deliveries
        .into_iter()
        .flat_map(|d| d.to.into_iter().map(move |to| (to.to_string(), d.stanza.clone())))
        .collect()
}

fn to<'a>(out: &'a [(String, Element)], jid: &str) -> Vec<&'a Element> {
    out.iter().filter(|(to, _)| to == jid).map(|(_, s)| s).collect()
}

fn join(nick: &str, from: &str) -> String {
    format!(
        "<presence from='{from}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
}

// Romeo submits the room configuration form with `fields`.
use super::tests::config_iq as config;

const ALLOW: &str = "<field var='muc#roomconfig_allow_subscription'><value>1</value></field>";
const PERSISTENT: &str = "<field var='muc#roomconfig_persistentroom'><value>1</value></field>";

fn subscribe(from: &str, nick: &str, extra: &str) -> String {
    format!(
        "<iq from='{from}' to='{ROOM}' type='set' id='sub'><subscribe xmlns='{NS_MUCSUB}' nick='{nick}'{extra}>\
         <event node='urn:xmpp:mucsub:nodes:messages'/><event node='urn:xmpp:mucsub:nodes:subject'/>\
         <event node='urn:example:unknown'/></subscribe></iq>"
    )
}

fn groupchat(body: &str) -> String {
    format!("<message from='{ROMEO}' to='{ROOM}' type='groupchat' id='m1'><body>{body}</body></message>")
}

/// Romeo's room, configured with `fields` (and unlocked).
fn room_of_romeo(h: &mut MucHost, store: &mut MemoryHost, fields: &str) {
    send(h, store, &join("Romeo", ROMEO));
    let out = send(h, store, &config(fields));
    assert_eq!(to(&out, ROMEO)[0].attr("type"), Some("result"));
}

fn reply_to<'a>(out: &'a [(String, Element)], jid: &str) -> &'a Element {
    to(out, jid).into_iter().find(|s| s.name() == "iq").expect("an iq answer")
}

fn error_text(stanza: &Element) -> Option<String> {
    stanza.get_child("error", NS_CLIENT)?.children().find(|c| c.name() == "text").map(|t| t.text())
}

#[test]
fn a_room_that_does_not_allow_subscriptions_refuses_them() {
    let mut store = MemoryHost::at(1_000_000);
    let mut h = host(true);
    room_of_romeo(&mut h, &mut store, "");
    let out = send(&mut h, &mut store, &subscribe(JULIET, "Juliet", ""));
    let answer = reply_to(&out, JULIET);
    assert_eq!(error_condition(answer), Some("not-allowed"));
    assert_eq!(error_text(answer).as_deref(), Some("Subscriptions are not allowed"));

    // Where the host has no MucSub, the room has no handler for it, as stock Prosody.
    let mut h = host(false);
    room_of_romeo(&mut h, &mut store, ALLOW);
    let out = send(&mut h, &mut store, &subscribe(JULIET, "Juliet", ""));
    assert_eq!(error_condition(reply_to(&out, JULIET)), Some("service-unavailable"));
    let out = send(
        &mut h,
        &mut store,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='get' id='f'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"),
    );
    assert!(!String::from(reply_to(&out, ROMEO)).contains("allow_subscription"), "no field in the form");
}

#[test]
fn a_subscriber_not_joined_gets_messages_and_subject_wrapped_at_its_bare_jid() {
    let mut store = MemoryHost::at(1_000_000);
    let mut h = host(true);
    room_of_romeo(&mut h, &mut store, ALLOW);
    let out = send(
        &mut h,
        &mut store,
        &format!("<iq from='{JULIET}' to='{ROOM}' type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
    );
    assert!(String::from(reply_to(&out, JULIET)).contains(NS_MUCSUB), "the room says it has MucSub");

    let out = send(&mut h, &mut store, &subscribe(JULIET, "Juliet", ""));
    let answer = reply_to(&out, JULIET);
    assert_eq!(answer.attr("type"), Some("result"));
    let sub = answer.get_child("subscribe", NS_MUCSUB).expect("the subscription echoed");
    assert_eq!(sub.attr("nick"), Some("Juliet"));
    let nodes: Vec<_> = sub.children().filter_map(|e| e.attr("node")).collect();
    assert_eq!(
        nodes,
        ["urn:xmpp:mucsub:nodes:messages", "urn:xmpp:mucsub:nodes:subject"],
        "unknown nodes dropped"
    );

    let out = send(&mut h, &mut store, &groupchat("hello"));
    let wrapped = to(&out, JULIET_BARE);
    assert_eq!(wrapped.len(), 1);
    assert_eq!(wrapped[0].attr("from"), Some(ROOM));
    let items =
        wrapped[0].get_child("event", NS_PUBSUB_EVENT).unwrap().get_child("items", NS_PUBSUB_EVENT).unwrap();
    assert_eq!(items.attr("node"), Some("urn:xmpp:mucsub:nodes:messages"));
    let item = items.get_child("item", NS_PUBSUB_EVENT).unwrap();
    assert_eq!(item.attr("id"), wrapped[0].attr("id"));
    let inner = item.get_child("message", NS_CLIENT).unwrap();
    assert_eq!(inner.attr("from"), Some("room@conference.localhost/Romeo"));
    assert_eq!(inner.get_child("body", NS_CLIENT).map(|b| b.text()).as_deref(), Some("hello"));

    let out = send(
        &mut h,
        &mut store,
        &format!("<message from='{ROMEO}' to='{ROOM}' type='groupchat'><subject>News</subject></message>"),
    );
    let items = to(&out, JULIET_BARE)[0].get_child("event", NS_PUBSUB_EVENT).unwrap();
    assert_eq!(
        items.get_child("items", NS_PUBSUB_EVENT).unwrap().attr("node"),
        Some("urn:xmpp:mucsub:nodes:subject")
    );

    // Joined, Juliet gets the message as any occupant, and nothing wrapped.
    send(&mut h, &mut store, &join("Juliet", JULIET));
    let out = send(&mut h, &mut store, &groupchat("again"));
    assert!(to(&out, JULIET_BARE).is_empty());
    assert_eq!(to(&out, JULIET).len(), 1);
}

#[test]
fn unsubscribing_stops_delivery_and_is_answered_even_when_not_subscribed() {
    let mut store = MemoryHost::at(1_000_000);
    let mut h = host(true);
    room_of_romeo(&mut h, &mut store, ALLOW);
    send(&mut h, &mut store, &subscribe(JULIET, "Juliet", ""));
    let unsubscribe =
        format!("<iq from='{JULIET}' to='{ROOM}' type='set' id='u'><unsubscribe xmlns='{NS_MUCSUB}'/></iq>");
    let out = send(&mut h, &mut store, &unsubscribe);
    assert_eq!(reply_to(&out, JULIET).attr("type"), Some("result"));
    let out = send(&mut h, &mut store, &groupchat("hello"));
    assert!(to(&out, JULIET_BARE).is_empty());
    let out = send(&mut h, &mut store, &unsubscribe);
    assert_eq!(reply_to(&out, JULIET).attr("type"), Some("result"));
}

#[test]
fn subscriptions_meet_the_join_rules() {
    let mut store = MemoryHost::at(1_000_000);
    let mut h = host(true);
    room_of_romeo(
        &mut h,
        &mut store,
        &format!("{ALLOW}<field var='muc#roomconfig_roomsecret'><value>secret</value></field>"),
    );
    let out = send(&mut h, &mut store, &subscribe(JULIET, "Juliet", ""));
    let answer = reply_to(&out, JULIET);
    assert_eq!(error_condition(answer), Some("not-authorized"));
    assert_eq!(error_text(answer).as_deref(), Some("A password is required to enter this room"));
    let out = send(&mut h, &mut store, &subscribe(JULIET, "Juliet", " password='wrong'"));
    assert_eq!(error_text(reply_to(&out, JULIET)).as_deref(), Some("Incorrect password"));
    let out = send(&mut h, &mut store, &subscribe(JULIET, "Romeo", " password='secret'"));
    assert_eq!(error_condition(reply_to(&out, JULIET)), Some("conflict"), "an occupant's nick");
    let out = send(&mut h, &mut store, &subscribe(JULIET, "", " password='secret'"));
    assert_eq!(error_condition(reply_to(&out, JULIET)), Some("jid-malformed"));
    let out = send(&mut h, &mut store, &subscribe(JULIET, "Juliet", " password='secret'"));
    assert_eq!(reply_to(&out, JULIET).attr("type"), Some("result"));
    let out = send(&mut h, &mut store, &subscribe(NURSE, "Juliet", " password='secret'"));
    assert_eq!(error_condition(reply_to(&out, NURSE)), Some("conflict"), "a subscriber's nick");

    send(&mut h, &mut store, &config("<field var='muc#roomconfig_membersonly'><value>1</value></field><field var='muc#roomconfig_roomsecret'><value></value></field>"));
    let out = send(&mut h, &mut store, &subscribe(NURSE, "Nurse", ""));
    let answer = reply_to(&out, NURSE);
    assert_eq!(error_condition(answer), Some("registration-required"));
    assert_eq!(error_text(answer).as_deref(), Some("Membership is required to enter this room"));
    send(
        &mut h,
        &mut store,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='set' id='ban'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='nurse@localhost' affiliation='outcast'/></query></iq>"),
    );
    let out = send(&mut h, &mut store, &subscribe(NURSE, "Nurse", ""));
    assert_eq!(error_condition(reply_to(&out, NURSE)), Some("forbidden"));
}

#[test]
fn moderators_and_subscribers_list_the_subscribers() {
    let mut store = MemoryHost::at(1_000_000);
    let mut h = host(true);
    room_of_romeo(&mut h, &mut store, ALLOW);
    let list = |from: &str| {
        format!("<iq from='{from}' to='{ROOM}' type='get' id='l'><subscriptions xmlns='{NS_MUCSUB}'/></iq>")
    };
    let out = send(&mut h, &mut store, &list(JULIET));
    assert_eq!(error_condition(reply_to(&out, JULIET)), Some("forbidden"));
    send(&mut h, &mut store, &subscribe(JULIET, "Juliet", ""));

    let out = send(&mut h, &mut store, &list(ROMEO));
    let subs = reply_to(&out, ROMEO).get_child("subscriptions", NS_MUCSUB).unwrap();
    let sub = subs.get_child("subscription", NS_MUCSUB).unwrap();
    assert_eq!((sub.attr("jid"), sub.attr("nick")), (Some(JULIET_BARE), Some("Juliet")));
    assert_eq!(sub.children().count(), 2, "its nodes");

    // A subscriber sees the list, without real JIDs in a semi-anonymous room.
    let out = send(&mut h, &mut store, &list(JULIET));
    let sub = reply_to(&out, JULIET)
        .get_child("subscriptions", NS_MUCSUB)
        .unwrap()
        .get_child("subscription", NS_MUCSUB)
        .unwrap();
    assert_eq!((sub.attr("jid"), sub.attr("nick")), (None, Some("Juliet")));
}

#[test]
fn subscriptions_stay_with_a_persistent_room_across_a_restart() {
    let mut store = MemoryHost::at(1_000_000);
    let mut h = host(true);
    room_of_romeo(&mut h, &mut store, &format!("{ALLOW}{PERSISTENT}"));
    send(&mut h, &mut store, &subscribe(JULIET, "Juliet", ""));
    send(&mut h, &mut store, &format!("<presence from='{ROMEO}' to='{ROOM}/Romeo' type='unavailable'/>"));

    let mut h = host(true);
    send(&mut h, &mut store, &join("Romeo", ROMEO));
    let out = send(&mut h, &mut store, &groupchat("after"));
    assert_eq!(to(&out, JULIET_BARE).len(), 1, "still subscribed");
    let out = send(
        &mut h,
        &mut store,
        &format!("<iq from='{ROMEO}' to='{ROOM}' type='get' id='f'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"),
    );
    let form = String::from(reply_to(&out, ROMEO));
    assert!(form.contains("muc#roomconfig_allow_subscription"));

    // Turning subscriptions off forgets the subscribers, as stock does.
    send(
        &mut h,
        &mut store,
        &config("<field var='muc#roomconfig_allow_subscription'><value>0</value></field>"),
    );
    send(&mut h, &mut store, &config(ALLOW));
    let out = send(&mut h, &mut store, &groupchat("gone"));
    assert!(to(&out, JULIET_BARE).is_empty());
}

#[test]
fn a_moderator_subscribes_and_unsubscribes_someone_else() {
    let mut store = MemoryHost::at(1_000_000);
    let mut h = host(true);
    room_of_romeo(&mut h, &mut store, ALLOW);
    let for_nurse = |from: &str, what: &str| {
        let nick = if what == "subscribe" { " nick='Nurse'" } else { "" };
        format!(
            "<iq from='{from}' to='{ROOM}' type='set' id='x'><{what} xmlns='{NS_MUCSUB}' jid='nurse@localhost'{nick}>\
             <event node='urn:xmpp:mucsub:nodes:messages'/></{what}></iq>"
        )
    };
    let out = send(&mut h, &mut store, &for_nurse(JULIET, "subscribe"));
    let answer = reply_to(&out, JULIET);
    assert_eq!(error_condition(answer), Some("forbidden"));
    assert_eq!(error_text(answer).as_deref(), Some("Moderator privileges required"));

    let out = send(&mut h, &mut store, &for_nurse(ROMEO, "subscribe"));
    assert_eq!(reply_to(&out, ROMEO).attr("type"), Some("result"));
    let out = send(&mut h, &mut store, &groupchat("for the nurse"));
    assert_eq!(to(&out, "nurse@localhost").len(), 1, "subscribed by the owner");
    assert!(to(&out, "romeo@localhost").is_empty(), "not the owner");

    let out = send(&mut h, &mut store, &for_nurse(ROMEO, "unsubscribe"));
    assert_eq!(reply_to(&out, ROMEO).attr("type"), Some("result"));
    let out = send(&mut h, &mut store, &groupchat("no more"));
    assert!(to(&out, "nurse@localhost").is_empty());
}
