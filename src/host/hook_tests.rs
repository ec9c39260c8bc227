//! The extension points: with nobody listening the core does everything itself; with a
//! listener it leaves the step, in order, to the host, and does not do it twice.

use super::*;
use crate::affiliation::Affiliation;
use crate::hooks::{Answer, Event, Hook, Question};
use crate::memory_host::MemoryHost;
use crate::xml::NS_CLIENT;

const ROOM: &str = "room@conference.localhost";
const ROMEO: &str = "romeo@localhost/r1";

/// A host whose modules listen at some extension points (and have answered some, given
/// to the core as facts by `drive`).
struct Listening {
    hooks: Vec<Hook>,
    answers: Vec<(Hook, Answer)>,
}

impl Listening {
    fn clone_base(&self) -> Listening {
        Listening { hooks: self.hooks.clone(), answers: self.answers.clone() }
    }
}

fn env(hooks: &[Hook]) -> Listening {
    Listening { hooks: hooks.to_vec(), answers: vec![] }
}

fn host_with_room(env: &Listening) -> MucHost {
    let mut host = MucHost::new("conference.localhost", HostConfig::for_version((13, 0))).unwrap();
    let join = format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    drive(&mut host, join.parse().unwrap(), env);
    let instant = format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'>\
         <x xmlns='jabber:x:data' type='submit'/></query></iq>"
    );
    drive(&mut host, instant.parse().unwrap(), env);
    host
}

/// Hands a stanza in, with nothing stored, the modules listening and answering as `env`
/// says, and carries out its stores.
fn drive(host: &mut MucHost, stanza: Element, env: &Listening) -> Outcome {
    let mut facts = Facts::new(1_000_000, 7);
    facts.listening = env.hooks.iter().copied().collect();
    for (hook, answer) in &env.answers {
        facts.supply_answer(*hook, answer.clone());
    }
    MemoryHost::at(1_000_000).handle_with(host, stanza, facts)
}

fn groupchat(body: &str) -> Element {
    groupchat_from(ROMEO, &format!("<body>{body}</body>"))
}

fn groupchat_from(from: &str, payload: &str) -> Element {
    format!("<message xmlns='jabber:client' from='{from}' to='{ROOM}' type='groupchat' id='m'>{payload}</message>")
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
    let out = drive(&mut host, groupchat("hi"), &env);
    assert!(out.events.is_empty());
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(host.room(&room_jid()).unwrap().history.len(), 1);
}

#[test]
fn broadcast_left_to_the_host_with_its_recipients_and_verdict() {
    let env = env(&[Hook::BroadcastMessage]);
    let mut host = host_with_room(&env);
    let out = drive(&mut host, groupchat("hi"), &env);
    assert!(out.deliveries.is_empty(), "the host delivers it after its modules");
    let [(0, Event::BroadcastMessage { room, stanza, to, historic })] = out.events.as_slice() else {
        panic!("one broadcast event: {:?}", out.events);
    };
    assert_eq!(room, &room_jid());
    assert_eq!(stanza.attr("from"), Some("room@conference.localhost/romeo"));
    assert_eq!(to.iter().map(|j| j.to_string()).collect::<Vec<_>>(), vec![ROMEO]);
    assert!(historic);
    assert!(host.room(&room_jid()).unwrap().history.is_empty(), "kept only through add_history");
    assert!(host.add_history(&room_jid(), stanza, 1_000_000));
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
    let out = drive(&mut host, chatstate.parse().unwrap(), &env);
    assert!(matches!(out.events.as_slice(), [(_, Event::BroadcastMessage { historic: false, .. })]));
}

#[test]
fn history_on_join_is_offered_to_the_host() {
    let env = env(&[Hook::GetHistory, Hook::OccupantLifecycle]);
    let mut host = host_with_room(&env);
    drive(&mut host, groupchat("one"), &env);
    let join = format!(
        "<presence xmlns='jabber:client' from='juliet@localhost/j' to='{ROOM}/juliet'><x xmlns='http://jabber.org/protocol/muc'>\
         <history maxstanzas='5'/></x></presence>"
    );
    let out = drive(&mut host, join.parse().unwrap(), &env);
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
    let out = drive(&mut host, leave.parse().unwrap(), &env);
    let events: Vec<&Event> = out.events.iter().map(|(_, e)| e).collect();
    assert!(
        matches!(events.as_slice(), [Event::OccupantLeft { .. }, Event::RoomDestroyed { .. }]),
        "{events:?}"
    );
    assert!(host.room(&room_jid()).is_none());
}

#[test]
fn a_submitted_configuration_is_the_modules_first() {
    let mut host = host_with_room(&env(&[]));
    let submit: Element = format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='c2'><query xmlns='http://jabber.org/protocol/muc#owner'>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
         <field var='muc#roomconfig_roomname'><value>Verona</value></field>\
         <field var='muc#roomconfig_moderatedroom'><value>1</value></field></x></query></iq>"
    )
    .parse()
    .unwrap();
    // Asked first, with nothing changed.
    let mut listening = env(&[Hook::Config]);
    let out = drive(&mut host, submit.clone(), &listening);
    let Some(crate::protocol::Question::Module(Question::ConfigSubmitted { layout, .. })) = &out.ask else {
        panic!("asked the modules: {:?}", out.ask);
    };
    assert!(layout.fields.iter().any(|f| f.var == Some("muc#roomconfig_moderatedroom")));
    assert!(host.room(&room_jid()).unwrap().settings.name.is_none());
    // Their answer is what the room takes: a changed name, a refused field left out, and
    // their codes in the notice.
    let fields = vec![("muc#roomconfig_roomname".to_owned(), vec!["Mantua".to_owned()])];
    listening.answers.push((Hook::Config, Answer::Configured { fields, codes: vec![104, 170] }));
    let out = drive(&mut host, submit, &listening);
    let settings = &host.room(&room_jid()).unwrap().settings;
    assert_eq!(settings.name.as_deref(), Some("Mantua"));
    assert!(!settings.moderated);
    assert_eq!(out.deliveries.len(), 2, "the reply, then the notice");
    let notice = &out.deliveries[1].stanza;
    let codes: Vec<_> = notice.children().flat_map(|x| x.children()).filter_map(|c| c.attr("code")).collect();
    assert_eq!(codes, ["104", "170"]);
}

#[test]
fn module_data_round_trips_through_the_record() {
    let env = env(&[]);
    let mut host = host_with_room(&env);
    host.with_room(&room_jid(), &Facts::new(1_000_000, 7), |room, _| {
        room.settings.set_data("archiving", Some(crate::data::Data::Bool(false)));
        room.settings.set_data("name", Some(crate::data::Data::Str("Verona".into())));
    });
    let room = host.room(&room_jid()).unwrap();
    assert_eq!(room.settings.name.as_deref(), Some("Verona"));
    let restored = Room::restore(&room.freeze(), None).unwrap();
    assert_eq!(restored.settings.data("archiving"), Some(crate::data::Data::Bool(false)));
}

#[test]
fn a_message_waits_for_the_modules_verdict() {
    let mut env = env(&[Hook::OccupantGroupchat]);
    let mut host = host_with_room(&env);
    let asked = drive(&mut host, groupchat("hi"), &env);
    assert_eq!(
        asked.module_question(),
        Some(&Question::Groupchat {
            room: room_jid(),
            nick: format!("{ROOM}/romeo").parse().unwrap(),
            subject_change: false
        })
    );
    assert!(asked.deliveries.is_empty() && asked.events.is_empty());
    assert!(host.room(&room_jid()).unwrap().history.is_empty(), "nothing done before the answer");

    env.answers = vec![(Hook::OccupantGroupchat, Answer::Refused)];
    let refused = drive(&mut host, groupchat("hi"), &env);
    assert!(refused.ask.is_none() && refused.deliveries.is_empty());

    env.answers = vec![(Hook::OccupantGroupchat, Answer::Allowed { nick: None, role: None })];
    let allowed = drive(&mut host, groupchat("changed by a module"), &env);
    assert_eq!(allowed.deliveries.len(), 1);
    assert_eq!(
        allowed.deliveries[0].stanza.get_child("body", crate::xml::NS_CLIENT).unwrap().text(),
        "changed by a module"
    );
}

#[test]
fn handlers_above_the_role_check_see_a_non_occupants_message_first() {
    let mut env = env(&[Hook::GroupchatFirst, Hook::OccupantGroupchat]);
    let mut host = host_with_room(&env);
    let stranger = groupchat_from("juliet@localhost/j1", "<body>hi</body>");
    let asked = drive(&mut host, stranger.clone(), &env);
    assert_eq!(asked.module_question(), Some(&Question::GroupchatFirst { room: room_jid(), nick: None }));
    assert!(asked.deliveries.is_empty());

    // A module that handles it: the room says nothing.
    env.answers = vec![(Hook::GroupchatFirst, Answer::Refused)];
    let handled = drive(&mut host, stranger.clone(), &env);
    assert!(handled.ask.is_none() && handled.deliveries.is_empty());

    // Let through, the room's own check refuses it, before the other handlers are asked.
    env.answers = vec![(Hook::GroupchatFirst, Answer::Allowed { nick: None, role: None })];
    let refused = drive(&mut host, stranger, &env);
    assert!(refused.ask.is_none());
    assert_eq!(refused.deliveries.len(), 1);
    assert_eq!(crate::xml::error_condition(&refused.deliveries[0].stanza), Some("not-acceptable"));

    // An occupant's message: asked first with the nick, then as before.
    env.answers.clear();
    let asked = drive(&mut host, groupchat("hi"), &env);
    assert_eq!(
        asked.module_question(),
        Some(&Question::GroupchatFirst {
            room: room_jid(),
            nick: Some(format!("{ROOM}/romeo").parse().unwrap())
        })
    );
}

#[test]
fn a_subject_change_is_asked_before_the_room_takes_it() {
    let mut env = env(&[Hook::OccupantGroupchat]);
    let mut host = host_with_room(&env);
    let change = groupchat_from(ROMEO, "<subject>Secret</subject>");
    let asked = drive(&mut host, change.clone(), &env);
    assert_eq!(
        asked.module_question(),
        Some(&Question::Groupchat {
            room: room_jid(),
            nick: format!("{ROOM}/romeo").parse().unwrap(),
            subject_change: true
        })
    );
    env.answers = vec![(Hook::OccupantGroupchat, Answer::Refused)];
    let refused = drive(&mut host, change.clone(), &env);
    assert!(refused.deliveries.is_empty());
    assert!(host.room(&room_jid()).unwrap().settings.subject.is_none(), "the room kept its subject");
    env.answers = vec![(Hook::OccupantGroupchat, Answer::Allowed { nick: None, role: None })];
    drive(&mut host, change, &env);
    assert!(host.room(&room_jid()).unwrap().settings.subject.is_some());
}

#[test]
fn a_join_waits_for_the_modules_and_takes_the_nick_they_force() {
    let mut env = env(&[Hook::OccupantPreJoin]);
    let mut host = host_with_room(&Listening { hooks: vec![], ..env.clone_base() });
    let join: Element = format!(
        "<presence xmlns='jabber:client' from='juliet@localhost/j' to='{ROOM}/Juliet!'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    )
    .parse()
    .unwrap();
    let asked = drive(&mut host, join.clone(), &env);
    let Some(Question::PreJoin { nick, is_first_session: true, role, .. }) = asked.module_question().cloned()
    else {
        panic!("asked first: {:?}", asked.ask);
    };
    assert_eq!(nick.resource().as_str(), "Juliet!");
    assert_eq!(role, Some(crate::affiliation::Role::Participant));
    assert_eq!(host.room(&room_jid()).unwrap().occupants().count(), 1, "not joined yet");

    env.answers = vec![(Hook::OccupantPreJoin, Answer::Allowed { nick: Some("juliet".into()), role: None })];
    let joined = drive(&mut host, join, &env);
    let to_juliet =
        joined.deliveries.iter().filter(|d| d.to.iter().any(|j| j.as_str() == "juliet@localhost/j"));
    assert!(to_juliet.clone().any(|d| d.stanza.attr("from") == Some("room@conference.localhost/juliet")));
    assert!(!to_juliet.clone().any(|d| d.stanza.attr("from") == Some("room@conference.localhost/Juliet!")));
    assert!(host.room(&room_jid()).unwrap().occupant_by_nick("juliet").is_some());
}

#[test]
fn a_new_room_is_not_made_before_the_modules_let_its_creator_in() {
    let env = env(&[Hook::OccupantPreJoin]);
    let mut host = MucHost::new("conference.localhost", HostConfig::for_version((13, 0))).unwrap();
    let join = format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    let asked = drive(&mut host, join.parse().unwrap(), &env);
    assert!(matches!(asked.module_question(), Some(Question::PreJoin { is_first_session: true, .. })));
    // The modules see the room being made, its creator its owner, as on stock...
    let pending = host.room(&room_jid()).expect("the room being made");
    assert_eq!(
        pending.stored_affiliation(&"romeo@localhost".parse().unwrap()),
        crate::affiliation::Affiliation::Owner
    );
    assert!(pending.occupants().next().is_none());
    assert!(host.live_room_jids().is_empty(), "...but it is not live yet");
    host.with_room(&room_jid(), &Facts::new(1_000_000, 7), |room, _| {
        room.settings.set_data("lobby", Some(crate::data::Data::Bool(true)))
    });

    let allowed = Listening {
        answers: vec![(Hook::OccupantPreJoin, Answer::Allowed { nick: None, role: None })],
        ..env.clone_base()
    };
    let out = drive(&mut host, join.parse().unwrap(), &allowed);
    assert!(out.deliveries.iter().any(|d| d.stanza.name() == "presence"));
    let room = host.room(&room_jid()).expect("made once allowed");
    assert_eq!(room.occupants().count(), 1);
    assert_eq!(room.settings.data("lobby"), Some(crate::data::Data::Bool(true)), "what modules set is kept");
}

#[test]
fn a_creator_refused_by_a_module_leaves_the_room_empty_as_stock() {
    let env = env(&[Hook::OccupantPreJoin]);
    let mut host = MucHost::new("conference.localhost", HostConfig::for_version((13, 0))).unwrap();
    let join = format!("<presence xmlns='jabber:client' from='{ROMEO}' to='{ROOM}/romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    drive(&mut host, join.parse().unwrap(), &env);
    let refused = Listening { answers: vec![(Hook::OccupantPreJoin, Answer::Refused)], ..env.clone_base() };
    let out = drive(&mut host, join.parse().unwrap(), &refused);
    assert!(out.deliveries.is_empty(), "the module answered the sender");
    let room = host.room(&room_jid()).expect("the room stays");
    assert!(room.occupants().next().is_none());
    assert_eq!(host.live_room_jids(), vec![room_jid()]);
}

fn kick(nick: &str, reason: &str) -> Element {
    format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='k'><query xmlns='http://jabber.org/protocol/muc#admin'>\
         <item nick='{nick}' role='none'><reason>{reason}</reason></item></query></iq>"
    )
    .parse()
    .unwrap()
}

fn join(from: &str, nick: &str) -> Element {
    format!("<presence xmlns='jabber:client' from='{from}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .parse()
        .unwrap()
}

#[test]
fn presences_are_planned_for_the_host_and_built_from_what_its_modules_changed() {
    use crate::presence_plan::OwnPresences;
    let env = env(&[Hook::OccupantPresence]);
    let mut host = host_with_room(&env);
    let out = drive(&mut host, join("juliet@localhost/j1", "juliet"), &env);
    // The occupant list (Romeo) and Juliet's own presence, all left to the host.
    assert!(out.deliveries.iter().all(|d| d.stanza.name() != "presence"));
    assert!(out
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::BuildPresence { nick, .. } if nick.resource().as_str() == "romeo")));

    let out = drive(&mut host, kick("juliet", "spam"), &env);
    let Some((_, Event::OccupantPresence { presence, .. })) =
        out.events.iter().find(|(_, e)| matches!(e, Event::OccupantPresence { .. }))
    else {
        panic!("the kick's presence is left to the host: {:?}", out.events)
    };
    assert!(presence.broadcast);
    assert_eq!(presence.actor.as_ref().map(|a| a.as_str()), Some(ROMEO));
    assert!(matches!(presence.own, OwnPresences::Base(_)), "the kicked occupant gets the base presence");

    // A module removed the actor, changed the reason and added to the template.
    let mut plan = (**presence).clone();
    plan.actor = None;
    plan.reason = Some("Moderated: spam".into());
    plan.x.append_child(crate::xml::el("mark", "urn:test"));
    let built = host.occupant_presence(&room_jid(), plan, true);
    assert_eq!(built.deliveries.len(), 2, "Romeo and Juliet");
    for delivery in &built.deliveries {
        let x = delivery.stanza.get_child("x", crate::xml::NS_MUC_USER).unwrap();
        let item = x.get_child("item", crate::xml::NS_MUC_USER).unwrap();
        assert!(item.get_child("actor", crate::xml::NS_MUC_USER).is_none());
        assert_eq!(
            crate::xml::child_text(item, "reason", crate::xml::NS_MUC_USER).as_deref(),
            Some("Moderated: spam")
        );
        assert!(x.has_child("mark", "urn:test"), "one template: everyone's x has what was added");
    }
}

#[test]
fn nobody_listening_presences_go_out_as_before() {
    let env = env(&[]);
    let mut host = host_with_room(&env);
    let out = drive(&mut host, join("juliet@localhost/j1", "juliet"), &env);
    assert!(out.events.is_empty());
    let out = drive(&mut host, kick("juliet", "spam"), &env);
    let actors = out
        .deliveries
        .iter()
        .filter_map(|d| {
            d.stanza.get_child("x", crate::xml::NS_MUC_USER)?.get_child("item", crate::xml::NS_MUC_USER)
        })
        .filter(|item| item.has_child("actor", crate::xml::NS_MUC_USER))
        .count();
    assert_eq!(actors, 2, "both the kicked and the kicker see who kicked");
}

#[test]
fn a_registration_keeps_what_the_modules_add() {
    let register = |nick: &str| -> Element {
        format!(
            "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='r'><query xmlns='jabber:iq:register'>\
             <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
             <field var='muc#register_roomnick'><value>{nick}</value></field></x></query></iq>"
        )
        .parse()
        .unwrap()
    };
    let mut env = env(&[Hook::Registration]);
    let mut host = host_with_room(&env);
    let out = drive(&mut host, register("Romeo"), &env);
    assert!(
        matches!(out.module_question(), Some(Question::RegistrationSubmitted { ref nick, .. }) if nick == "Romeo")
    );
    let romeo: BareJid = "romeo@localhost".parse().unwrap();
    assert!(
        host.room(&room_jid()).unwrap().registered_nick(&romeo).is_none(),
        "nothing kept before the answer"
    );

    let mut data = crate::data::Table::new();
    data.insert("reserved_nickname".into(), crate::data::Data::Str("Romeo".into()));
    data.insert("motto".into(), crate::data::Data::Str("Wherefore".into()));
    env.answers.push((Hook::Registration, Answer::Registered { data }));
    let out = drive(&mut host, register("Romeo"), &env);
    assert!(out.ask.is_none());
    let room = host.room(&room_jid()).unwrap();
    assert_eq!(room.registered_nick(&romeo), Some("Romeo"));
    let kept = room.affiliation_data(&romeo).unwrap();
    assert_eq!(kept.extra.get(&"motto".into()).and_then(crate::data::Data::str), Some("Wherefore"));
}

/// A module that handles invitations itself (Jitsi Meet's lobby) fires muc-pre-invite
/// and muc-invite on its own: the room's steps of those events, asked for by the host.
#[test]
fn an_invitation_a_module_sends_takes_the_rooms_steps() {
    let env = env(&[]);
    let mut host = host_with_room(&env);
    let config = format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='c2'><query xmlns='http://jabber.org/protocol/muc#owner'>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
         <field var='muc#roomconfig_membersonly'><value>1</value></field>\
         <field var='muc#roomconfig_roomsecret'><value>cauldron</value></field></x></query></iq>"
    );
    drive(&mut host, config.parse().unwrap(), &env);
    let mut facts = Facts::new(1_000_000, 7);
    for user in ["romeo@localhost", "juliet@localhost", "mercutio@localhost"] {
        facts.supply_service_admin(user.parse().unwrap(), false);
    }
    let muc_user = "http://jabber.org/protocol/muc#user";
    let incoming = |from: &str| -> Element {
        format!("<message xmlns='jabber:client' from='{from}' to='{ROOM}' id='i'><x xmlns='{muc_user}'><invite to='juliet@localhost'/></x></message>")
            .parse()
            .unwrap()
    };

    // A non-member may not invite to a members-only room: answered forbidden.
    let (refused, out) =
        host.module_pre_invite(&room_jid(), &incoming("mercutio@localhost/m"), &facts).unwrap();
    assert!(refused);
    let [error] = &out.deliveries[..] else { panic!("one error: {:?}", out.deliveries) };
    assert_eq!(error.stanza.attr("type"), Some("error"));
    assert!(error
        .stanza
        .get_child("error", NS_CLIENT)
        .unwrap()
        .has_child("forbidden", crate::xml::NS_STANZAS));
    let (refused, out) = host.module_pre_invite(&room_jid(), &incoming(ROMEO), &facts).unwrap();
    assert!(!refused && out.deliveries.is_empty(), "the owner may");

    let invite: Element = format!(
        "<message xmlns='jabber:client' from='{ROOM}' to='juliet@localhost' id='i'><x xmlns='{muc_user}'>\
         <invite from='{ROMEO}'><reason>Be my guest</reason></invite></x></message>"
    )
    .parse()
    .unwrap();
    // At 50: the semi-anonymous room names the inviter by its nick.
    let invite = host.module_invite(&room_jid(), invite, true, &facts).unwrap().0.unwrap();
    let item = |invite: &Element| {
        invite
            .get_child("x", muc_user)
            .unwrap()
            .get_child("invite", muc_user)
            .unwrap()
            .attr("from")
            .map(str::to_owned)
    };
    assert_eq!(item(&invite).as_deref(), Some("room@conference.localhost/romeo"));
    let juliet: BareJid = "juliet@localhost".parse().unwrap();
    assert_eq!(host.room(&room_jid()).unwrap().stored_affiliation(&juliet), Affiliation::None);

    // At 0: the password, jabber:x:conference, a body, and membership, stored first.
    let (invite, out) = host.module_invite(&room_jid(), invite, false, &facts).unwrap();
    let invite = invite.unwrap();
    let x = invite.get_child("x", muc_user).unwrap();
    assert_eq!(x.get_child("password", muc_user).map(Element::text).as_deref(), Some("cauldron"));
    assert_eq!(invite.get_child("x", "jabber:x:conference").and_then(|c| c.attr("jid")), Some(ROOM),);
    assert_eq!(
        invite.get_child("body", NS_CLIENT).map(Element::text).as_deref(),
        Some(
            "room@conference.localhost/romeo invited you to the room room@conference.localhost (Be my guest)"
        )
    );
    assert!(!out.stores.is_empty(), "the new member is stored before anyone hears of it");
    host.confirm(Ok(()));
    assert_eq!(host.room(&room_jid()).unwrap().stored_affiliation(&juliet), Affiliation::Member);
}

/// muc-pre-set-affiliation: each change is asked about before the room changes, one
/// answer per user (a muc#admin set of several items asks for each); a refusal is the
/// error the modules named, and their data is kept.
#[test]
fn an_affiliation_change_waits_for_the_modules() {
    let admin_set = format!(
        "<iq xmlns='jabber:client' from='{ROMEO}' to='{ROOM}' type='set' id='a'><query xmlns='http://jabber.org/protocol/muc#admin'>\
         <item affiliation='member' jid='juliet@localhost'/><item affiliation='member' jid='tybalt@localhost'/></query></iq>"
    );
    let mut env = env(&[]);
    let mut host = host_with_room(&env);
    env.hooks.push(Hook::PreSetAffiliation);
    let juliet: BareJid = "juliet@localhost".parse().unwrap();
    let tybalt: BareJid = "tybalt@localhost".parse().unwrap();
    let member = |host: &MucHost, user: &BareJid| host.room(&room_jid()).unwrap().stored_affiliation(user);

    let out = drive(&mut host, admin_set.parse().unwrap(), &env);
    assert!(matches!(out.module_question(), Some(Question::PreSetAffiliation { change, .. })
            if change.jid == juliet && change.affiliation == Affiliation::Member && change.previous == Affiliation::None));
    assert!(out.deliveries.is_empty());
    assert_eq!(member(&host, &juliet), Affiliation::None, "nothing changed before the answer");

    let mut noted = crate::data::Table::new();
    noted.insert("noted_by".into(), crate::data::Data::Str("romeo@localhost".into()));
    env.answers.push((
        Hook::PreSetAffiliation,
        Answer::Affiliation { jid: juliet.clone(), refused: None, data: Some(noted) },
    ));
    let out = drive(&mut host, admin_set.parse().unwrap(), &env);
    assert!(
        matches!(out.module_question(), Some(Question::PreSetAffiliation { change, .. }) if change.jid == tybalt)
    );
    assert_eq!(
        member(&host, &juliet),
        Affiliation::None,
        "the first item is undone while the second is asked"
    );

    let refused = Some(("auth".to_owned(), "forbidden".to_owned()));
    env.answers
        .push((Hook::PreSetAffiliation, Answer::Affiliation { jid: tybalt.clone(), refused, data: None }));
    let out = drive(&mut host, admin_set.parse().unwrap(), &env);
    let [error] = &out.deliveries[..] else { panic!("one error: {:?}", out.deliveries) };
    let error = error.stanza.get_child("error", NS_CLIENT).unwrap();
    assert_eq!(error.attr("type"), Some("auth"));
    assert!(error.has_child("forbidden", crate::xml::NS_STANZAS));
    assert_eq!(member(&host, &juliet), Affiliation::None, "all or nothing");

    env.answers.pop();
    env.answers.push((
        Hook::PreSetAffiliation,
        Answer::Affiliation { jid: tybalt.clone(), refused: None, data: None },
    ));
    let out = drive(&mut host, admin_set.parse().unwrap(), &env);
    assert!(out.ask.is_none());
    assert_eq!((member(&host, &juliet), member(&host, &tybalt)), (Affiliation::Member, Affiliation::Member));
    let data = host.room(&room_jid()).unwrap().affiliation_data(&juliet).unwrap().to_data();
    assert_eq!(data.get(&"noted_by".into()), Some(&crate::data::Data::Str("romeo@localhost".into())));
}

/// An admin command's affiliation change asks the modules too, and their refusal is the
/// command's answer.
#[test]
fn an_admin_commands_affiliation_change_waits_for_the_modules() {
    let mut env = env(&[]);
    let mut host = host_with_room(&env);
    env.hooks.push(Hook::PreSetAffiliation);
    let juliet: BareJid = "juliet@localhost".parse().unwrap();
    let mut facts = Facts::new(1_000_000, 7);
    facts.listening = env.hooks.iter().copied().collect();
    facts.supply_service_admin(juliet.clone(), false);
    let out = host.admin_set_affiliation(ROOM, "juliet@localhost", "member", None, &facts).unwrap();
    assert!(
        matches!(out.module_question(), Some(Question::PreSetAffiliation { change, .. }) if change.jid == juliet)
    );
    let refused = Some(("cancel".to_owned(), "not-allowed".to_owned()));
    facts.supply_answer(
        Hook::PreSetAffiliation,
        Answer::Affiliation { jid: juliet.clone(), refused, data: None },
    );
    let refusal = host.admin_set_affiliation(ROOM, "juliet@localhost", "member", None, &facts);
    assert_eq!(refusal.err().as_deref(), Some("cancel:not-allowed"));
    assert_eq!(host.room(&room_jid()).unwrap().stored_affiliation(&juliet), Affiliation::None);
}
