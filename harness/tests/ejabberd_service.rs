//! What the service says to every room at once on ejabberd, as ejabberd's own mod_muc says
//! it: a MUC admin's message to the service reaches every room as the room's message (and
//! anyone else's is refused), and occupants are told they are removed (status 332) when the
//! module stops; `reload_config` applies the module's changed options to the running
//! service; users register nicknames with the service itself; the limits mod_muc sets on
//! rooms (occupants past `max_users` for owners and admins, the lengths of names and
//! passwords); `ejabberdctl stop_kindly`'s notice reaches the rooms. The same stories run against both modules.
//!
//! Fails (no skip) when ejabberd or the module is missing: run tools/install-deps.sh and
//! `make install-ejabberd` first.

mod ejabberd_client;

use ejabberd_client::{disco_info_of, has_feature, Client, NS_MUC_USER};
use minidom::Element;
use muc_harness::ejabberd::{ClusterNode, Ejabberd, Extras, Muc};

const FRIENDS: &str = "friends@conference.localhost";
const FAMILY: &str = "family@conference.localhost";
const NOTICE: &str = "The server restarts at noon";

fn body(el: &Element) -> Option<String> {
    el.get_child("body", "jabber:client").map(Element::text)
}

fn is_notice_from(room: &'static str) -> impl Fn(&Element) -> bool {
    move |el| el.name() == "message" && el.attr("from") == Some(room) && body(el).as_deref() == Some(NOTICE)
}

async fn started(muc: &Muc) -> Ejabberd {
    started_with(muc, "").await
}

/// ejabberd with `muc` and `module_options` for it, reachable by rpc.
async fn started_with(muc: &Muc, module_options: &str) -> Ejabberd {
    let extras = Extras { cluster: ClusterNode::cluster(1).pop(), ..Extras::default() };
    Ejabberd::start_with_extras(muc, module_options, extras).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn an_admins_message_to_the_service_reaches_every_room(muc: Muc) {
    let server = started(&muc).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(FRIENDS, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(FRIENDS, "Friends", false)).await;
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.join(FAMILY, "Juliet").await;
    juliet.iq_ok("cfg", &ejabberd_client::configure(FAMILY, "Family", false)).await;

    let to_service = format!(
        "<message xmlns='jabber:client' to='conference.localhost' id='n1'><body>{NOTICE}</body></message>"
    );
    // Not an admin: refused, and no room hears it.
    juliet.send(&to_service).await;
    let refused =
        juliet.expect("the refusal", |el| el.name() == "message" && el.attr("id") == Some("n1")).await;
    assert_eq!(refused.attr("type"), Some("error"), "{}: {}", muc.label(), String::from(&refused));
    assert!(String::from(&refused).contains("forbidden"), "{}: {}", muc.label(), String::from(&refused));

    let mut admin = Client::connect(&server, "admin").await;
    admin.send(&to_service).await;
    let heard = romeo.expect("the notice in Friends", is_notice_from(FRIENDS)).await;
    assert_eq!(heard.attr("type"), Some("groupchat"), "{}", muc.label());
    juliet.expect("the notice in Family", is_notice_from(FAMILY)).await;
    assert!(romeo
        .try_expect_within(std::time::Duration::from_millis(300), is_notice_from(FRIENDS))
        .await
        .is_none());

    // As the README tells admins to send stop_kindly's notice: `ejabberdctl send_message`.
    let sent = server
        .rpc(
            "mod_admin_extra",
            "send_message",
            &format!("[<<\"normal\">>, <<\"admin@localhost\">>, <<\"conference.localhost\">>, <<>>, <<\"{NOTICE}\">>]"),
        )
        .await;
    assert_eq!(sent.unwrap_or_else(|e| panic!("{e}")), "ok");
    romeo.expect("the notice sent by ejabberdctl", is_notice_from(FRIENDS)).await;

    // It is in the room's history, as the room's own message.
    let mut mercutio = Client::connect(&server, "mercutio").await;
    mercutio.join(FRIENDS, "Mercutio").await;
    mercutio.expect("the notice in the history", is_notice_from(FRIENDS)).await;
    mercutio.expect("the second notice in the history", is_notice_from(FRIENDS)).await;
    ejabberd_client::assert_log_clean(&server);
}

async fn occupants_are_told_when_the_module_stops(muc: Muc) {
    let server = started(&muc).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(FRIENDS, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(FRIENDS, "Friends", true)).await;
    let module = match muc {
        Muc::Stock => "mod_muc",
        _ => "mod_muc_rs",
    };
    let stopped = server.rpc("gen_mod", "stop_module", &format!("[<<\"localhost\">>, {module}]")).await;
    assert_eq!(stopped.unwrap_or_else(|e| panic!("{e}")), "ok");
    let me = format!("{FRIENDS}/Romeo");
    let gone = romeo
        .expect("the removal", |el| el.name() == "presence" && el.attr("from") == Some(me.as_str()))
        .await;
    assert_eq!(gone.attr("type"), Some("unavailable"), "{}: {}", muc.label(), String::from(&gone));
    let x = gone.get_child("x", NS_MUC_USER).expect("muc#user x");
    let codes: Vec<&str> =
        x.children().filter(|c| c.name() == "status").filter_map(|c| c.attr("code")).collect();
    assert!(codes.contains(&"332") && codes.contains(&"110"), "{}: {}", muc.label(), String::from(&gone));
}

/// The service's name in its disco#info identity.
async fn service_name(client: &mut Client, service: &str) -> Option<String> {
    let info = disco_info_of(client, service).await;
    let query = info.get_child("query", "http://jabber.org/protocol/disco#info")?;
    let identity = query.children().find(|c| c.name() == "identity")?;
    identity.attr("name").map(str::to_owned)
}

async fn reload_config_applies_changed_options(muc: Muc) {
    let server = started(&muc).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(FRIENDS, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(FRIENDS, "Friends", false)).await;
    assert_eq!(service_name(&mut romeo, "conference.localhost").await.as_deref(), Some("Chatrooms"));

    let config_path = server.log_path().with_file_name("ejabberd.yml");
    let config = std::fs::read_to_string(&config_path).expect("the node's config");
    let changed = config.replace(
        "access_admin: muc_admin",
        "access_admin: muc_admin, name: \"Verona\", max_users: 1, \
         hosts: [\"conference.localhost\", \"chat.localhost\"]",
    );
    assert_ne!(config, changed, "the module's line");
    std::fs::write(&config_path, changed).expect("the changed config");
    let reloaded = server.rpc("ejabberd_config", "reload", "[]").await.unwrap_or_else(|e| panic!("{e}"));
    // (what the node logs while the call runs is printed by the caller too)
    assert!(reloaded.lines().any(|line| line == "ok"), "{reloaded}");

    assert_eq!(service_name(&mut romeo, "conference.localhost").await.as_deref(), Some("Verona"));
    // The room is full now (one occupant), for anyone but its owners and admins: mod_muc_rs
    // refuses as Prosody's rooms do (service-unavailable, XEP-0045 7.2.9), mod_muc with
    // resource-constraint.
    let mut juliet = Client::connect(&server, "juliet").await;
    let refused = String::from(&juliet.join_refused(FRIENDS, "Juliet").await);
    let full = ["service-unavailable", "resource-constraint"];
    assert!(full.iter().any(|condition| refused.contains(condition)), "{}: {refused}", muc.label());
    // The service added by `hosts` serves rooms.
    let codes = juliet.join("balcony@chat.localhost", "Juliet").await;
    assert!(codes.contains(&"201".to_owned()), "{}: a new room on chat.localhost: {codes:?}", muc.label());
    ejabberd_client::assert_log_clean(&server);
}

const NS_REGISTER: &str = "jabber:iq:register";

/// A registration iq to the service: `query` inside `<query xmlns='jabber:iq:register'>`.
fn register(id: &str, kind: &str, query: &str) -> String {
    format!(
        "<iq xmlns='jabber:client' type='{kind}' to='conference.localhost' id='{id}'>\
         <query xmlns='{NS_REGISTER}'>{query}</query></iq>"
    )
}

/// The form submitting `nick` as the nickname to register.
fn nick_form(nick: &str) -> String {
    format!(
        "<x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
         <field var='muc#register_roomnick'><value>{nick}</value></field></x>"
    )
}

/// The reply to `xml`, an iq with the id `id`.
async fn reply_to(client: &mut Client, id: &str, xml: &str) -> Element {
    client.send(xml).await;
    client.expect("the iq's reply", |el| el.name() == "iq" && el.attr("id") == Some(id)).await
}

async fn nicks_register_with_the_service(muc: Muc) {
    let server = started(&muc).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    let info = disco_info_of(&mut romeo, "conference.localhost").await;
    assert!(has_feature(&info, NS_REGISTER), "{}: {}", muc.label(), String::from(&info));

    let form = romeo.iq_ok("get1", &register("get1", "get", "")).await;
    let query = form.get_child("query", NS_REGISTER).expect("the registration query");
    assert!(query.get_child("registered", NS_REGISTER).is_none(), "{}", String::from(&form));
    assert!(
        String::from(&form).contains("muc#register_roomnick"),
        "{}: {}",
        muc.label(),
        String::from(&form)
    );

    romeo.iq_ok("set1", &register("set1", "set", &nick_form("Montague"))).await;
    let form = romeo.iq_ok("get2", &register("get2", "get", "")).await;
    let query = form.get_child("query", NS_REGISTER).expect("the registration query");
    assert!(query.get_child("registered", NS_REGISTER).is_some(), "{}: {}", muc.label(), String::from(&form));
    assert_eq!(query.get_child("nick", NS_REGISTER).map(Element::text).as_deref(), Some("Montague"));

    // Someone else can neither register it nor join a room with it.
    let mut juliet = Client::connect(&server, "juliet").await;
    let taken =
        String::from(&reply_to(&mut juliet, "set2", &register("set2", "set", &nick_form("Montague"))).await);
    assert!(taken.contains("type='error'") && taken.contains("conflict"), "{}: {taken}", muc.label());
    let refused = String::from(&juliet.join_refused(FRIENDS, "Montague").await);
    assert!(refused.contains("conflict"), "{}: {refused}", muc.label());

    // Removed, it is free again.
    romeo.iq_ok("remove", &register("remove", "set", "<remove/>")).await;
    juliet.iq_ok("set3", &register("set3", "set", &nick_form("Montague"))).await;
    // A form without the nickname is refused.
    let empty = String::from(&reply_to(&mut romeo, "set4", &register("set4", "set", "")).await);
    assert!(empty.contains("not-acceptable"), "{}: {empty}", muc.label());
    ejabberd_client::assert_log_clean(&server);
}

async fn limits_on_rooms_apply(muc: Muc) {
    let options = "max_users: 1, max_users_admin_threshold: 1, max_room_name: 8, max_password: 4";
    let server = started_with(&muc, options).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(FRIENDS, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(FRIENDS, "Friends", false)).await;
    for (id, field, value) in [
        ("long1", "muc#roomconfig_roomname", "Far too long"),
        ("long2", "muc#roomconfig_roomsecret", "secret"),
    ] {
        let form = format!(
            "<iq xmlns='jabber:client' type='set' to='{FRIENDS}' id='{id}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             <field var='{field}'><value>{value}</value></field></x></query></iq>"
        );
        let refused = String::from(&reply_to(&mut romeo, id, &form).await);
        assert!(refused.contains("not-acceptable"), "{}: {refused}", muc.label());
    }
    let affiliations = [("benvolio@localhost", "admin"), ("mercutio@localhost", "owner")];
    for (jid, affiliation) in affiliations {
        let set = ejabberd_client::set_affiliation(FRIENDS, "aff", jid, affiliation, None);
        romeo.iq_ok("aff", &set).await;
    }
    // Full at one occupant; an admin may still join, one past it; an owner not two past.
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.join_refused(FRIENDS, "Juliet").await;
    let mut benvolio = Client::connect(&server, "benvolio").await;
    benvolio.join(FRIENDS, "Benvolio").await;
    let mut mercutio = Client::connect(&server, "mercutio").await;
    mercutio.join_refused(FRIENDS, "Mercutio").await;
    // The MUC admins own every room, and join whatever its size.
    let mut admin = Client::connect(&server, "admin").await;
    admin.join(FRIENDS, "Admin").await;
    ejabberd_client::assert_log_clean(&server);
}

async fn stop_kindly_tells_the_rooms(muc: Muc) {
    let server = started(&muc).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(FRIENDS, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(FRIENDS, "Friends", false)).await;
    // (the node stops a second later: what ejabberdctl prints then is not looked at)
    let stopping = server.ctl(&["stop_kindly", "1", "Back soon"]);
    let notice = romeo.expect("the notice", |el| {
        el.name() == "message"
            && el.attr("from") == Some(FRIENDS)
            && body(el).is_some_and(|b| b.contains("Back soon"))
    });
    let (_, notice) = tokio::join!(stopping, notice);
    assert_eq!(body(&notice).as_deref(), Some("Server stop in 1 seconds!\nBack soon"), "{}", muc.label());
    assert_eq!(notice.attr("type"), Some("groupchat"), "{}", muc.label());
}

#[tokio::test(flavor = "current_thread")]
async fn stop_kindly_tells_the_rooms_on_mod_muc_rs() {
    stop_kindly_tells_the_rooms(Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn stop_kindly_tells_the_rooms_on_mod_muc() {
    stop_kindly_tells_the_rooms(Muc::Stock).await;
}

#[tokio::test(flavor = "current_thread")]
async fn limits_on_rooms_apply_on_mod_muc_rs() {
    limits_on_rooms_apply(Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn limits_on_rooms_apply_on_mod_muc() {
    limits_on_rooms_apply(Muc::Stock).await;
}

#[tokio::test(flavor = "current_thread")]
async fn nicks_register_with_the_service_on_mod_muc_rs() {
    nicks_register_with_the_service(Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn nicks_register_with_the_service_on_mod_muc() {
    nicks_register_with_the_service(Muc::Stock).await;
}

#[tokio::test(flavor = "current_thread")]
async fn reload_config_applies_changed_options_on_mod_muc_rs() {
    reload_config_applies_changed_options(Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn reload_config_applies_changed_options_on_mod_muc() {
    reload_config_applies_changed_options(Muc::Stock).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_admins_message_to_the_service_reaches_every_room_on_mod_muc_rs() {
    an_admins_message_to_the_service_reaches_every_room(Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_admins_message_to_the_service_reaches_every_room_on_mod_muc() {
    an_admins_message_to_the_service_reaches_every_room(Muc::Stock).await;
}

#[tokio::test(flavor = "current_thread")]
async fn occupants_are_told_when_the_module_stops_on_mod_muc_rs() {
    occupants_are_told_when_the_module_stops(Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn occupants_are_told_when_the_module_stops_on_mod_muc() {
    occupants_are_told_when_the_module_stops(Muc::Stock).await;
}
