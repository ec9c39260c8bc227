//! muc_rs in ejabberd (issue 16), with real clients against a real ejabberd 24.12: rooms are
//! kept in mnesia before the owner hears back, so a persistent room survives `kill -9`
//! right after the acknowledgement, and a temporary room leaves nothing behind; a panic in
//! the core is an error reply and a log line, and the node and its rooms go on; the
//! module's options in ejabberd.yml (access rules, mod_muc's names) shape the service; a
//! write mnesia refuses leaves the live room as it was and is an error reply; and the
//! package `make ejabberd-contrib` makes installs with ejabberd's contrib mechanism.
//!
//! Fails (no skip) when ejabberd or the module is missing: run tools/install-deps.sh and
//! `make install-ejabberd ejabberd-contrib` first (the module is
//! `<repo>/build/ejabberd/mod_muc_rs`, or `$MUC_RS_EJABBERD_DIR`; the package is in
//! `<repo>/build/ejabberd-contrib`).

mod ejabberd_client;

use std::time::{Duration, Instant};

use ejabberd_client::{assert_log_clean, disco_info_of, has_feature, Client, NS_MUC_USER, T};
use minidom::Element;
use muc_harness::ejabberd::{default_module_dir, log_problems, ClusterNode, Ejabberd, Extras, Muc, C2S_PORT};
use muc_harness::postgres::Postgres;

const ROOM: &str = "keep@conference.localhost";

fn configure(persistent: bool) -> String {
    ejabberd_client::configure(ROOM, "Kept Room", persistent)
}

async fn disco_info(client: &mut Client) -> Element {
    disco_info_of(client, ROOM).await
}

#[tokio::test(flavor = "current_thread")]
async fn a_persistent_room_survives_kill_9_right_after_its_owner_heard_back() {
    let mut server = Ejabberd::start(&default_module_dir()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    assert!(romeo.join(ROOM, "Romeo").await.contains(&"201".to_owned()), "a new room");
    romeo.iq_ok("cfg", &configure(true)).await;
    server.crash_restart().await.unwrap_or_else(|e| panic!("{e}"));

    let mut juliet = Client::connect(&server, "juliet").await;
    let info = disco_info(&mut juliet).await;
    assert_eq!(info.attr("type"), Some("result"), "the room is there: {}", String::from(&info));
    assert!(has_feature(&info, "muc_persistent"), "{}", String::from(&info));
    let form = String::from(&info);
    assert!(form.contains("Kept Room"), "its name was kept: {form}");
    let codes = juliet.join(ROOM, "Juliet").await;
    assert!(!codes.contains(&"201".to_owned()), "not made again: {codes:?}");
    assert_log_clean(&server);
}

/// A MucSub subscription to `room`'s messages as `nick`.
fn subscribe_iq(room: &str, nick: &str) -> String {
    format!(
        "<iq xmlns='jabber:client' type='set' to='{room}' id='sub'><subscribe xmlns='urn:xmpp:mucsub:0' nick='{nick}'>\
         <event node='urn:xmpp:mucsub:nodes:messages'/></subscribe></iq>"
    )
}

/// The next room event MucSub wraps for a subscriber who is not joined.
async fn expect_wrapped(client: &mut Client) -> Element {
    client
        .expect("a wrapped room event", |el| {
            el.name() == "message"
                && el.get_child("event", "http://jabber.org/protocol/pubsub#event").is_some()
        })
        .await
}

#[tokio::test(flavor = "current_thread")]
async fn a_mucsub_subscription_survives_a_restart_with_its_room() {
    let mut server = Ejabberd::start(&default_module_dir()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    let allowed = [("muc#roomconfig_persistentroom", "1"), ("muc#roomconfig_allow_subscription", "1")];
    romeo.iq_ok("cfg", &submit(ROOM, "cfg", &allowed)).await;
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.iq_ok("sub", &subscribe_iq(ROOM, "Juliet")).await;
    server.crash_restart().await.unwrap_or_else(|e| panic!("{e}"));

    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.send("<presence xmlns='jabber:client'/>").await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo
        .send(&format!(
            "<message xmlns='jabber:client' to='{ROOM}' type='groupchat'><body>Still there?</body></message>"
        ))
        .await;
    let wrapped = expect_wrapped(&mut juliet).await;
    assert!(String::from(&wrapped).contains("Still there?"), "{}", String::from(&wrapped));
    assert_log_clean(&server);
}

#[tokio::test(flavor = "current_thread")]
async fn a_temporary_room_leaves_nothing_behind() {
    let mut server = Ejabberd::start(&default_module_dir()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo.iq_ok("cfg", &configure(false)).await;
    server.crash_restart().await.unwrap_or_else(|e| panic!("{e}"));

    let mut juliet = Client::connect(&server, "juliet").await;
    let info = disco_info(&mut juliet).await;
    assert_eq!(info.attr("type"), Some("error"), "no such room: {}", String::from(&info));
    assert!(juliet.join(ROOM, "Juliet").await.contains(&"201".to_owned()), "made anew");
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_in_the_core_is_an_error_reply_and_a_log_line_and_the_node_goes_on() {
    let mut server =
        Ejabberd::start_with(&Muc::muc_rs(), "test_panic: true").await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo
        .send(&format!(
            "<iq xmlns='jabber:client' type='get' to='{ROOM}' id='boom'><panic xmlns='urn:xmpp:muc-rs:test:0'/></iq>"
        ))
        .await;
    let reply = romeo.try_expect(|el| el.name() == "iq" && el.attr("id") == Some("boom")).await;
    let reply =
        reply.unwrap_or_else(|| panic!("no reply to the panicking iq; the log:\n{}", server.read_log()));
    assert_eq!(reply.attr("type"), Some("error"), "{}", String::from(&reply));
    assert!(String::from(&reply).contains("internal-server-error"), "{}", String::from(&reply));
    let log =
        server.wait_for_log("muc_rs failed on", T).await.unwrap_or_else(|log| panic!("no log line:\n{log}"));
    assert!(log.contains("muc_rs_panic") && log.contains("forced panic (test hook)"), "says why:\n{log}");
    // The room and the node go on.
    romeo.iq_ok("cfg", &configure(true)).await;
    let mut juliet = Client::connect(&server, "juliet").await;
    let codes = juliet.join(ROOM, "Juliet").await;
    assert!(!codes.contains(&"201".to_owned()), "the same room: {codes:?}");
    server.kill().await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_options_in_ejabberd_yml_shape_the_rooms() {
    let options = "access_create: muc_admin, name: \"Test Rooms\", muc_room_locking: false, \
                   default_room_options: {persistent: true, public: true, anonymous: false}";
    let mut server = Ejabberd::start_with(&Muc::muc_rs(), options).await.unwrap_or_else(|e| panic!("{e}"));

    // access_create: only the MUC admin (the acl `admin`) makes rooms.
    let mut romeo = Client::connect(&server, "romeo").await;
    let refused = romeo.join_refused(ROOM, "Romeo").await;
    assert!(String::from(&refused).contains("not-allowed"), "{}", String::from(&refused));
    let mut admin = Client::connect(&server, "admin").await;
    assert!(admin.join(ROOM, "Admin").await.contains(&"201".to_owned()), "the admin makes it");

    // default_room_options: persistent and non-anonymous from the start, without a form;
    // muc_room_locking: false, so romeo may join at once.
    let info = disco_info(&mut romeo).await;
    assert!(has_feature(&info, "muc_persistent"), "{}", String::from(&info));
    assert!(has_feature(&info, "muc_nonanonymous"), "{}", String::from(&info));
    assert!(romeo.join(ROOM, "Romeo").await.contains(&"100".to_owned()), "real JIDs are shown");

    // name: the service's identity.
    let service = disco_info_of(&mut romeo, "conference.localhost").await;
    let identity = service
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .and_then(|q| q.get_child("identity", "http://jabber.org/protocol/disco#info"));
    assert_eq!(identity.and_then(|i| i.attr("name")), Some("Test Rooms"), "{}", String::from(&service));
    assert!(has_feature(&service, "http://jabber.org/protocol/muc"), "{}", String::from(&service));

    // Persistent by default: the room is kept, and public: listed before anyone is in it.
    server.crash_restart().await.unwrap_or_else(|e| panic!("{e}"));
    let mut juliet = Client::connect(&server, "juliet").await;
    assert_eq!(room_list(&mut juliet, "conference.localhost").await, vec![ROOM]);
    let codes = juliet.join(ROOM, "Juliet").await;
    assert!(!codes.contains(&"201".to_owned()), "the room was kept: {codes:?}");
    assert_log_clean(&server);
}

/// The rooms the MUC service `service` lists (disco#items).
async fn room_list(client: &mut Client, service: &str) -> Vec<String> {
    client
        .send(&format!(
            "<iq xmlns='jabber:client' type='get' to='{service}' id='items'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
        ))
        .await;
    let items = client.expect("the room list", |el| el.attr("id") == Some("items")).await;
    let query = items.get_child("query", "http://jabber.org/protocol/disco#items");
    let listed = query.map(|q| q.children().filter_map(|i| i.attr("jid").map(str::to_owned)).collect());
    listed.unwrap_or_else(|| panic!("{}", String::from(&items)))
}

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// mod_muc_rs's log line for a transaction mnesia aborted.
const FAILED_WRITE: &str = "muc_rs could not write";

/// The room's name in its disco#info.
fn room_name(info: &Element) -> Option<&str> {
    info.get_child("query", NS_DISCO_INFO)?.get_child("identity", NS_DISCO_INFO)?.attr("name")
}

/// The room's occupant count in its disco#info (the muc#roominfo form).
fn occupants(info: &Element) -> Option<String> {
    let form = info.get_child("query", NS_DISCO_INFO)?.get_child("x", "jabber:x:data")?;
    let field = form.children().find(|f| f.attr("var") == Some("muc#roominfo_occupants"))?;
    Some(field.get_child("value", "jabber:x:data")?.text())
}

fn status_codes(el: &Element) -> Vec<&str> {
    let x = el.get_child("x", NS_MUC_USER);
    x.map(|x| x.children().filter(|c| c.name() == "status").filter_map(|c| c.attr("code")).collect())
        .unwrap_or_default()
}

/// The room's disco#info, failing if a stanza `unwanted` accepts comes before it: the room
/// routes in order, so what an earlier stanza delivered to this client would come first.
async fn disco_info_with_none(client: &mut Client, unwanted: impl Fn(&Element) -> bool) -> Element {
    client
        .send(&format!(
            "<iq xmlns='jabber:client' type='get' to='{ROOM}' id='check'><query xmlns='{NS_DISCO_INFO}'/></iq>"
        ))
        .await;
    let is_reply = |el: &Element| el.name() == "iq" && el.attr("id") == Some("check");
    let el = client.expect("disco#info's reply", |el| is_reply(el) || unwanted(el)).await;
    assert!(is_reply(&el), "unexpected: {}", String::from(&el));
    el
}

async fn expect_internal_error(client: &mut Client, id: &str) {
    let reply = client.expect("the iq's reply", |el| el.name() == "iq" && el.attr("id") == Some(id)).await;
    assert_eq!(reply.attr("type"), Some("error"), "{}", String::from(&reply));
    assert!(String::from(&reply).contains("internal-server-error"), "{}", String::from(&reply));
}

/// `mnesia:change_table_access_mode` of the rooms' table in the node.
async fn set_room_table(server: &Ejabberd, mode: &str) {
    let result = server.rpc("mnesia", "change_table_access_mode", &format!("[muc_rs_room, {mode}]")).await;
    assert_eq!(result.unwrap_or_else(|e| panic!("{e}")), "{atomic,ok}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_that_fails_leaves_the_room_as_it_was_and_the_sender_gets_the_error() {
    // A node with Erlang distribution (on loopback), for the test to reach its mnesia.
    let extras = Extras { cluster: ClusterNode::cluster(1).pop(), ..Extras::default() };
    let mut server =
        Ejabberd::start_with_extras(&Muc::muc_rs(), "", extras).await.unwrap_or_else(|e| panic!("{e}"));
    let rename = |name| ejabberd_client::configure(ROOM, name, true);
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo.iq_ok("cfg", &rename("Old Name")).await;
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.join(ROOM, "Juliet").await;
    let juliet_in_room = format!("{ROOM}/Juliet");
    romeo.expect("Juliet's arrival", |el| el.attr("from") == Some(&juliet_in_room)).await;

    set_room_table(&server, "read_only").await;

    // A config change mnesia cannot write: an error to Romeo, no notice to anyone, and the
    // live room keeps its old name.
    romeo.send(&rename("New Name")).await;
    expect_internal_error(&mut romeo, "cfg").await;
    for client in [&mut romeo, &mut juliet] {
        let notice = |el: &Element| el.name() == "message" && status_codes(el).contains(&"104");
        let info = disco_info_with_none(client, notice).await;
        assert_eq!(room_name(&info), Some("Old Name"), "{}", String::from(&info));
    }

    // An affiliation change mnesia cannot write: an error, Juliet is not banned out of the
    // room, and she is not an outcast.
    romeo
        .send(&format!(
            "<iq xmlns='jabber:client' type='set' to='{ROOM}' id='ban'><query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item affiliation='outcast' jid='juliet@localhost'/></query></iq>"
        ))
        .await;
    expect_internal_error(&mut romeo, "ban").await;
    let removed = |el: &Element| {
        el.name() == "presence"
            && el.attr("from") == Some(&juliet_in_room)
            && el.attr("type") == Some("unavailable")
    };
    disco_info_with_none(&mut juliet, removed).await;
    let info = disco_info_with_none(&mut romeo, removed).await;
    assert_eq!(occupants(&info).as_deref(), Some("2"), "{}", String::from(&info));
    assert_eq!(affiliation_list(&mut romeo, ROOM, "outcast").await, Vec::new());

    // Writable again: the same change goes through, and is kept.
    set_room_table(&server, "read_write").await;
    romeo.iq_ok("cfg", &rename("New Name")).await;
    juliet.expect("the 104 notice", |el| el.name() == "message" && status_codes(el).contains(&"104")).await;
    // (checked before the kill -9, which may lose the logger's last lines)
    let log = server
        .wait_for_log(FAILED_WRITE, T)
        .await
        .unwrap_or_else(|log| panic!("no `{FAILED_WRITE}`:\n{log}"));
    assert_only_failed_writes(&log);
    server.crash_restart().await.unwrap_or_else(|e| panic!("{e}"));
    let mut juliet = Client::connect(&server, "juliet").await;
    let info = disco_info(&mut juliet).await;
    assert_eq!(room_name(&info), Some("New Name"), "{}", String::from(&info));
    assert_only_failed_writes(&server.read_log());
}

/// The node's log has no error of the MUC module but its line for a failed write, and no
/// crash of any process.
fn assert_only_failed_writes(log: &str) {
    let others: Vec<String> = log_problems(log).into_iter().filter(|l| !l.contains(FAILED_WRITE)).collect();
    assert!(others.is_empty(), "{others:#?}\n{log}");
    assert!(!log.contains("CRASH REPORT") && !log.contains("terminating"), "{log}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_contrib_package_installs_with_install_contrib_modules_and_serves_rooms() {
    let contrib = muc_harness::prosody::repo_root().join("build/ejabberd-contrib");
    let mut server = Ejabberd::start_with(&Muc::Contrib(contrib), "").await.unwrap_or_else(|e| panic!("{e}"));
    // ejabberd compiles and installs the package while reading its config, then reloads
    // the config (with the package's conf/mod_muc_rs.yml) a few seconds later.
    let mut romeo = Client::connect(&server, "romeo").await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let info = disco_info_of(&mut romeo, "conference.localhost").await;
        if info.attr("type") == Some("result") {
            assert!(has_feature(&info, "http://jabber.org/protocol/muc"), "{}", String::from(&info));
            break;
        }
        assert!(Instant::now() < deadline, "the service never came up; the log:\n{}", server.read_log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // (ejabberd's logger writes in batches)
    let serving = server.wait_for_log("muc_rs serving conference.localhost", T).await;
    serving.unwrap_or_else(|log| panic!("the module is not muc_rs's:\n{log}"));
    assert!(romeo.join(ROOM, "Romeo").await.contains(&"201".to_owned()), "a new room");
    romeo.iq_ok("cfg", &configure(true)).await;

    // Installed once: a restart loads it from the contrib dir, rooms and all.
    server.crash_restart().await.unwrap_or_else(|e| panic!("{e}"));
    let mut juliet = Client::connect(&server, "juliet").await;
    let codes = juliet.join(ROOM, "Juliet").await;
    assert!(!codes.contains(&"201".to_owned()), "the room was kept: {codes:?}");
    assert_log_clean(&server);
}

/// Debian's packaged config (`/etc/ejabberd/ejabberd.yml`, from the ejabberd package the
/// harness runs) changed only for a throw-away node on loopback: fresh ports on 127.0.0.1
/// (the clients' is [`C2S_PORT`]), no TLS and no certificate files,
/// and the README's edits: `mod_muc:` renamed `mod_muc_rs:`, and the `mod_muc_admin` line
/// removed (it needs mod_muc itself until muc_rs has the admin commands). Each edit must
/// apply where the packaged file has it, or the test fails: a change in Debian's file is
/// seen, not papered over.
fn debian_config_on_loopback(original: &str) -> String {
    let mut out = Vec::new();
    let mut edits = std::collections::BTreeMap::<&str, usize>::new();
    let mut in_certfiles = false;
    for line in original.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        if in_certfiles && body.starts_with("- ") {
            continue;
        }
        in_certfiles = false;
        let mut edit = |what: &'static str, new: String| {
            *edits.entry(what).or_default() += 1;
            out.push(new);
        };
        match body {
            _ if body.starts_with('#') => out.push(line.to_owned()),
            "certfiles:" => {
                in_certfiles = true;
                edit("certfiles", "certfiles: []".to_owned());
            }
            "port: 5222" => edit("c2s port", format!("{indent}port: {C2S_PORT}")),
            _ if body.starts_with("port: ") => {
                let port = muc_harness::prosody::free_port().expect("a free port");
                edit("other ports", format!("{indent}port: {port}"));
            }
            "ip: \"::\"" => edit("ip", format!("{indent}ip: \"127.0.0.1\"")),
            "starttls_required: true" => edit("starttls", format!("{indent}starttls_required: false")),
            "tls: true" => edit("tls", format!("{indent}tls: false")),
            "mod_muc:" => edit("mod_muc", format!("{indent}mod_muc_rs:")),
            "mod_muc_admin: {}" => *edits.entry("mod_muc_admin").or_default() += 1,
            _ => out.push(line.to_owned()),
        }
    }
    let counts: Vec<(&str, usize)> = edits.into_iter().collect();
    assert_eq!(
        counts,
        [
            ("c2s port", 1),
            ("certfiles", 1),
            ("ip", 7),
            ("mod_muc", 1),
            ("mod_muc_admin", 1),
            ("other ports", 6),
            ("starttls", 1),
            ("tls", 3),
        ],
        "Debian's ejabberd.yml is not the one this test knows"
    );
    out.join("\n") + "\n"
}

/// The modules a config lists (the keys under `modules:`).
fn listed_modules(config: &str) -> Vec<String> {
    let modules = config.split("\nmodules:\n").nth(1).expect("a modules: section");
    let mut listed: Vec<String> = modules
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("  ")?.split_once(':').map(|(name, _)| name.to_owned()))
        .filter(|name| name.starts_with("mod_"))
        .collect();
    listed.sort();
    listed
}

#[tokio::test(flavor = "current_thread")]
async fn debians_packaged_config_starts_with_mod_muc_renamed_and_serves_rooms() {
    let original = std::fs::read_to_string("/etc/ejabberd/ejabberd.yml")
        .unwrap_or_else(|e| panic!("Debian's ejabberd.yml (the ejabberd package): {e}"));
    let config = debian_config_on_loopback(&original);
    // A node with Erlang distribution (on loopback), for the test to ask it what it loaded.
    let extras =
        Extras { config: Some(config.clone()), cluster: ClusterNode::cluster(1).pop(), ..Extras::default() };
    let mut server =
        Ejabberd::start_with_extras(&Muc::muc_rs(), "", extras).await.unwrap_or_else(|e| panic!("{e}"));

    // Every module it lists is running, mod_muc_rs in mod_muc's place.
    let loaded = server
        .rpc("gen_mod", "loaded_modules", "[<<\"localhost\">>]")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let loaded: Vec<&str> = loaded.trim_matches(['[', ']']).split(',').collect();
    let missing: Vec<String> =
        listed_modules(&config).into_iter().filter(|m| !loaded.contains(&m.as_str())).collect();
    assert!(missing.is_empty(), "not loaded: {missing:?} (loaded: {loaded:?})\n{}", server.read_log());

    // The service answers, a room is made, and a message goes through.
    let mut romeo = Client::connect(&server, "romeo").await;
    let service = disco_info_of(&mut romeo, "conference.localhost").await;
    assert!(has_feature(&service, "http://jabber.org/protocol/muc"), "{}", String::from(&service));
    assert!(romeo.join(ROOM, "Romeo").await.contains(&"201".to_owned()), "a new room");
    romeo.iq_ok("cfg", &configure(true)).await;
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.join(ROOM, "Juliet").await;
    romeo.say(ROOM, "wherefore").await;
    let got = juliet
        .expect("Romeo's message", |el| el.name() == "message" && el.has_child("body", "jabber:client"))
        .await;
    assert_eq!(got.attr("from"), Some(format!("{ROOM}/Romeo").as_str()), "{}", String::from(&got));

    // Every mod_muc option it sets is honoured: access_mam and default_room_options' mam
    // are mod_mam's (commented out in Debian's file, so without effect, as with mod_muc).
    let log = server.read_log();
    assert_eq!(log.matches("has no effect yet").count(), 0, "nothing logged as without effect:\n{log}");
    assert_log_clean(&server);
    server.kill().await;
}

/// The error `stanza` carries: its condition's name.
fn error_condition(stanza: &Element) -> Option<String> {
    let error = stanza.get_child("error", "jabber:client")?;
    error
        .children()
        .find(|c| c.ns() == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name() != "text")
        .map(|c| c.name().to_owned())
}

#[tokio::test(flavor = "current_thread")]
async fn mod_mucs_options_are_honoured_or_logged_once_as_without_effect() {
    let options = "access: [{deny: {user: \"mallory@localhost\"}}, allow], access_persistent: muc_admin, \
                   max_users: 2, history_size: 1, max_users_presence: 10, min_message_interval: 1, \
                   max_room_id: 8, regexp_room_id: \"^[a-z]+$\", muc_room_locking: false, \
                   default_room_options: {mam: true, logging: true, title: \"T\", public: false, allowpm: anyone}";
    let server = Ejabberd::start_with(&Muc::muc_rs(), options).await.unwrap_or_else(|e| panic!("{e}"));

    // access: mallory may not use the service at all, as mod_muc answers.
    let mut mallory = Client::connect(&server, "mallory").await;
    let refused = mallory.join_refused(ROOM, "M").await;
    assert_eq!(error_condition(&refused).as_deref(), Some("forbidden"), "{}", String::from(&refused));
    assert!(String::from(&refused).contains("Access denied by service policy"), "{}", String::from(&refused));

    // max_room_id, regexp_room_id: rooms are made only with names that fit both.
    let mut romeo = Client::connect(&server, "romeo").await;
    for room in ["toolongname@conference.localhost", "no-dash@conference.localhost"] {
        let refused = romeo.join_refused(room, "Romeo").await;
        assert_eq!(
            error_condition(&refused).as_deref(),
            Some("not-allowed"),
            "{room}: {}",
            String::from(&refused)
        );
    }

    // access_persistent: only the MUC admin may make a room persistent; romeo, its owner,
    // gets no such field and may not set it.
    assert!(romeo.join(ROOM, "Romeo").await.contains(&"201".to_owned()), "a new room");
    let form = romeo
        .iq_ok(
            "form",
            &format!("<iq xmlns='jabber:client' type='get' to='{ROOM}' id='form'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"),
        )
        .await;
    assert!(!String::from(&form).contains("muc#roomconfig_persistentroom"), "{}", String::from(&form));
    romeo.send(&configure(true)).await;
    let reply = romeo.expect("the refusal", |el| el.name() == "iq" && el.attr("id") == Some("cfg")).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("not-acceptable"), "{}", String::from(&reply));
    // default_room_options: public: false, honoured.
    let info = disco_info(&mut romeo).await;
    assert!(has_feature(&info, "muc_hidden"), "{}", String::from(&info));

    // max_users: two occupants; history_size: one message kept.
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.join(ROOM, "Juliet").await;
    let mut mercutio = Client::connect(&server, "mercutio").await;
    let full = mercutio.join_refused(ROOM, "Mercutio").await;
    assert_eq!(error_condition(&full).as_deref(), Some("service-unavailable"), "{}", String::from(&full));
    for body in ["first", "second"] {
        romeo.say(ROOM, body).await;
        juliet
            .expect("the message", |el| el.name() == "message" && el.has_child("body", "jabber:client"))
            .await;
    }
    juliet.send(&format!("<presence xmlns='jabber:client' to='{ROOM}/Juliet' type='unavailable'/>")).await;
    juliet.expect("her leaving", |el| el.attr("type") == Some("unavailable")).await;
    mercutio.join(ROOM, "Mercutio").await;
    let history = mercutio.expect("the history", |el| el.has_child("body", "jabber:client")).await;
    assert_eq!(history.get_child("body", "jabber:client").map(Element::text).as_deref(), Some("second"));
    let more = mercutio
        .try_expect_within(Duration::from_millis(500), |el| el.has_child("body", "jabber:client"))
        .await;
    assert!(more.is_none(), "one message of history: {:?}", more.map(|m| String::from(&m)));

    // Those set that have no effect yet are logged once each, and only those (mam is
    // mod_mam's, as with mod_muc: harness/tests/ejabberd_mam.rs).
    let log =
        server.wait_for_log("default_room_options: title", T).await.unwrap_or_else(|log| panic!("{log}"));
    for option in [
        "option max_users_presence has no effect yet",
        "option min_message_interval has no effect yet",
        "option default_room_options: logging has no effect yet",
        "option default_room_options: title has no effect yet",
    ] {
        assert_eq!(log.matches(option).count(), 1, "`{option}` once:\n{log}");
    }
    assert_eq!(log.matches("has no effect yet").count(), 4, "nothing else:\n{log}");
    assert_log_clean(&server);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_option_values_are_refused_at_start_with_ejabberds_own_message() {
    for (option, message) in [
        ("max_users: 0", "Invalid value of option modules->mod_muc_rs->max_users"),
        (
            "default_room_options: {allowpm: everybody}",
            "Invalid value of option modules->mod_muc_rs->default_room_options->allowpm",
        ),
        (
            "muc_max_sessions_per_occupant: 0",
            "Invalid value of option modules->mod_muc_rs->muc_max_sessions_per_occupant",
        ),
        (
            "max_user: 10",
            "Invalid value of option modules->mod_muc_rs: Unknown option: max_user. Did you mean max_users?",
        ),
    ] {
        let started = Ejabberd::start_with(&Muc::muc_rs(), option).await;
        let error = match started {
            Ok(server) => panic!("`{option}` was taken; the log:\n{}", server.read_log()),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(message), "`{option}`: {error}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_host_of_hosts_is_a_service_of_its_own() {
    let options = "hosts: [\"rooms.localhost\", \"chat.@HOST@\"]";
    let server = Ejabberd::start_with(&Muc::muc_rs(), options).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    for service in ["rooms.localhost", "chat.localhost"] {
        let room = format!("{service}room@{service}");
        assert!(romeo.join(&room, "Romeo").await.contains(&"201".to_owned()), "a new room on {service}");
        romeo.iq_ok("cfg", &ejabberd_client::configure(&room, service, false)).await;
    }
    for service in ["rooms.localhost", "chat.localhost"] {
        assert_eq!(room_list(&mut romeo, service).await, vec![format!("{service}room@{service}")]);
    }
    assert_log_clean(&server);
}

// Rooms move from mod_muc to mod_muc_rs and back (issue 25): both keep them in mod_muc's
// tables and format.

const MOVED: &str = "moved@conference.localhost";
const OPEN: &str = "open@conference.localhost";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";

/// A room configuration form submitting `fields` (`[(var, value)]`).
fn submit(room: &str, id: &str, fields: &[(&str, &str)]) -> String {
    let fields: String = fields
        .iter()
        .map(|(var, value)| format!("<field var='{var}'><value>{value}</value></field>"))
        .collect();
    format!(
        "<iq xmlns='jabber:client' type='set' to='{room}' id='{id}'><query xmlns='{NS_MUC_OWNER}'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>{fields}\
         </x></query></iq>"
    )
}

/// A muc#admin set of `items` (`[(jid, affiliation, reason)]`).
fn set_affiliations(room: &str, items: &[(&str, &str, Option<&str>)]) -> String {
    let items: String = items
        .iter()
        .map(|(jid, affiliation, reason)| match reason {
            Some(reason) => {
                format!("<item jid='{jid}' affiliation='{affiliation}'><reason>{reason}</reason></item>")
            }
            None => format!("<item jid='{jid}' affiliation='{affiliation}'/>"),
        })
        .collect();
    format!(
        "<iq xmlns='jabber:client' type='set' to='{room}' id='affs'><query xmlns='{NS_MUC_ADMIN}'>{items}</query></iq>"
    )
}

/// The room's list of `affiliation` as its owner gets it: `[(jid, reason)]`, sorted.
async fn affiliation_list(
    owner: &mut Client,
    room: &str,
    affiliation: &str,
) -> Vec<(String, Option<String>)> {
    let reply = owner
        .iq_ok(
            "list",
            &format!(
                "<iq xmlns='jabber:client' type='get' to='{room}' id='list'><query xmlns='{NS_MUC_ADMIN}'>\
                 <item affiliation='{affiliation}'/></query></iq>"
            ),
        )
        .await;
    let query = reply.get_child("query", NS_MUC_ADMIN).unwrap_or_else(|| panic!("{}", String::from(&reply)));
    let mut items: Vec<(String, Option<String>)> = query
        .children()
        .map(|item| {
            let reason = item.get_child("reason", NS_MUC_ADMIN).map(Element::text).filter(|r| !r.is_empty());
            (item.attr("jid").unwrap_or_default().to_owned(), reason)
        })
        .collect();
    items.sort();
    items
}

/// The value of the field `var` of the data form in `stanza`'s query.
fn field_value(stanza: &Element, var: &str) -> Option<String> {
    let query = stanza.children().find(|c| c.name() == "query")?;
    let form = query.get_child("x", "jabber:x:data")?;
    let field = form.children().find(|f| f.attr("var") == Some(var))?;
    Some(field.children().filter(|v| v.name() == "value").map(Element::text).collect::<Vec<_>>().join(","))
}

/// Joins `room` as `nick` with `password`; the self-presence (an error presence if refused).
async fn join_with(client: &mut Client, room: &str, nick: &str, password: Option<&str>) -> Element {
    let password = password.map(|p| format!("<password>{p}</password>")).unwrap_or_default();
    client
        .send(&format!(
            "<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>{password}</x></presence>"
        ))
        .await;
    let me = format!("{room}/{nick}");
    client
        .expect("the self-presence", |el| el.name() == "presence" && el.attr("from") == Some(me.as_str()))
        .await
}

/// The subject the room sends a newcomer (after the self-presence).
async fn subject_on_join(client: &mut Client, room: &str) -> String {
    let subject = client
        .expect("the subject", |el| {
            el.name() == "message"
                && el.attr("from").is_some_and(|f| f.starts_with(room))
                && el.get_child("subject", "jabber:client").is_some()
        })
        .await;
    subject.get_child("subject", "jabber:client").map(Element::text).unwrap_or_default()
}

/// What the tests check of the members-only room in its disco#info: its name, description
/// and features.
async fn check_moved_room_info(client: &mut Client, name: &str) {
    let info = disco_info_of(client, MOVED).await;
    let text = String::from(&info);
    assert_eq!(room_name(&info), Some(name), "{text}");
    assert_eq!(field_value(&info, "muc#roominfo_description").as_deref(), Some("About moving"), "{text}");
    for feature in
        ["muc_persistent", "muc_membersonly", "muc_passwordprotected", "muc_hidden", "muc_nonanonymous"]
    {
        assert!(has_feature(&info, feature), "{feature}: {text}");
    }
}

async fn owner_form(owner: &mut Client, room: &str) -> Element {
    owner
        .iq_ok(
            "form",
            &format!("<iq xmlns='jabber:client' type='get' to='{room}' id='form'><query xmlns='{NS_MUC_OWNER}'/></iq>"),
        )
        .await
}

fn jids(list: &[&str]) -> Vec<(String, Option<String>)> {
    list.iter().map(|j| (j.to_string(), None)).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn rooms_move_from_mod_muc_to_mod_muc_rs_and_back_with_nothing_lost() {
    rooms_move_and_back("", Extras::default()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn rooms_move_from_mod_muc_to_mod_muc_rs_and_back_on_postgresql() {
    let mut pg = Postgres::start().await.expect("PostgreSQL: run tools/install-deps.sh");
    pg.create_database("ejabberd").await.expect("create database");
    // mod_muc makes its tables (update_sql_schema, on by default), mod_muc_rs finds them.
    let global = format!(
        "sql_type: pgsql\nsql_server: \"127.0.0.1\"\nsql_port: {}\nsql_database: \"ejabberd\"\n\
         sql_username: \"{}\"\nsql_password: \"\"",
        pg.port(),
        muc_harness::postgres::USER
    );
    rooms_move_and_back("db_type: sql", Extras { global: Some(global), ..Extras::default() }).await;
    let rooms = pg.query("ejabberd", "select name from muc_room order by name").await.expect("psql");
    assert_eq!(rooms.split_whitespace().collect::<Vec<_>>(), vec!["moved", "open"], "in mod_muc's SQL table");
    pg.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn rooms_move_from_mod_muc_to_mod_muc_rs_and_back_on_sqlite() {
    // (in the node's dir, its working directory)
    let global = "sql_type: sqlite\nsql_database: \"rooms.sqlite\"".to_owned();
    let server =
        rooms_move_and_back("db_type: sql", Extras { global: Some(global), ..Extras::default() }).await;
    let database = server.log_path().with_file_name("rooms.sqlite");
    let rooms = std::process::Command::new("sqlite3")
        .arg(&database)
        .arg("select name from muc_room order by name")
        .output()
        .expect("sqlite3");
    let rooms = String::from_utf8_lossy(&rooms.stdout).into_owned();
    assert_eq!(rooms.split_whitespace().collect::<Vec<_>>(), vec!["moved", "open"], "in mod_muc's SQL table");
}

/// Rooms made under mod_muc are all there under mod_muc_rs, and back under mod_muc, with the
/// change made under mod_muc_rs: both modules with `module_options` (the database).
async fn rooms_move_and_back(module_options: &str, extras: Extras) -> Ejabberd {
    let mut server = Ejabberd::start_with_extras(&Muc::Stock, module_options, extras)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Under mod_muc: a persistent, hidden, members-only, non-anonymous room with a password,
    // a description, a subject, a second owner, an admin, a member with a reserved nick and
    // an outcast with a reason, and a limit of its own mod_muc_rs has no setting for.
    let mut romeo = Client::connect(&server, "romeo").await;
    assert!(romeo.join(MOVED, "Romeo").await.contains(&"201".to_owned()), "a new room");
    let settings = [
        ("muc#roomconfig_roomname", "Moved Room"),
        ("muc#roomconfig_roomdesc", "About moving"),
        ("muc#roomconfig_persistentroom", "1"),
        ("muc#roomconfig_publicroom", "0"),
        ("muc#roomconfig_membersonly", "1"),
        ("muc#roomconfig_passwordprotectedroom", "1"),
        ("muc#roomconfig_roomsecret", "secret"),
        ("muc#roomconfig_whois", "anyone"),
        ("muc#roomconfig_maxusers", "30"),
    ];
    romeo.iq_ok("cfg", &submit(MOVED, "cfg", &settings)).await;
    romeo
        .send(&format!("<message xmlns='jabber:client' to='{MOVED}' type='groupchat'><subject>Moving day</subject></message>"))
        .await;
    assert_eq!(subject_on_join_echo(&mut romeo).await, "Moving day");
    let affiliations = [
        ("benvolio@localhost", "owner", None),
        ("mercutio@localhost", "admin", None),
        ("juliet@localhost", "member", None),
        ("mallory@localhost", "outcast", Some("Spam")),
    ];
    romeo.iq_ok("affs", &set_affiliations(MOVED, &affiliations)).await;
    romeo.iq_ok("vcard", &set_vcard(MOVED, "Moved Room's card", None)).await;
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.iq_ok("reg", &register_nick(MOVED, "Jules")).await;
    // A nick registered with the service itself (kept as it is: mod_muc_rs does not act on it).
    romeo.iq_ok("reg", &register_nick("conference.localhost", "Montague")).await;
    // And a public room with a MucSub subscriber.
    assert!(juliet.join(OPEN, "Juliet").await.contains(&"201".to_owned()), "a new room");
    let open_settings = [
        ("muc#roomconfig_roomname", "Open Room"),
        ("muc#roomconfig_persistentroom", "1"),
        ("muc#roomconfig_allow_subscription", "1"),
    ];
    juliet.iq_ok("cfg", &submit(OPEN, "cfg", &open_settings)).await;
    let mut mercutio = Client::connect(&server, "mercutio").await;
    mercutio.iq_ok("sub", &subscribe_iq(OPEN, "Merc")).await;
    assert_log_clean(&server);

    // Switched to mod_muc_rs: every setting is there.
    server.switch_to(&Muc::muc_rs(), module_options).await.unwrap_or_else(|e| panic!("{e}"));
    let mut user = Client::connect(&server, "user").await;
    assert_eq!(
        room_list(&mut user, "conference.localhost").await,
        vec![OPEN],
        "the hidden room is not listed"
    );
    let mut benvolio = Client::connect(&server, "benvolio").await;
    check_moved_room_info(&mut benvolio, "Moved Room").await;
    let open = disco_info_of(&mut benvolio, OPEN).await;
    assert_eq!(room_name(&open), Some("Open Room"), "{}", String::from(&open));
    assert!(
        has_feature(&open, "muc_persistent") && has_feature(&open, "muc_public"),
        "{}",
        String::from(&open)
    );
    let mut romeo = Client::connect(&server, "romeo").await;
    let form = owner_form(&mut romeo, MOVED).await;
    assert_eq!(
        field_value(&form, "muc#roomconfig_roomsecret").as_deref(),
        Some("secret"),
        "{}",
        String::from(&form)
    );
    assert_eq!(field_value(&form, "muc#roomconfig_roomdesc").as_deref(), Some("About moving"));
    assert_eq!(vcard_name(&mut romeo, MOVED).await.as_deref(), Some("Moved Room's card"));
    assert_eq!(
        affiliation_list(&mut romeo, MOVED, "owner").await,
        jids(&["benvolio@localhost", "romeo@localhost"])
    );
    assert_eq!(affiliation_list(&mut romeo, MOVED, "admin").await, jids(&["mercutio@localhost"]));
    assert_eq!(affiliation_list(&mut romeo, MOVED, "member").await, jids(&["juliet@localhost"]));
    let outcasts = affiliation_list(&mut romeo, MOVED, "outcast").await;
    assert_eq!(outcasts, vec![("mallory@localhost".to_owned(), Some("Spam".to_owned()))]);
    // Juliet's reserved nick: hers, and no one else's.
    let mut juliet = Client::connect(&server, "juliet").await;
    let nick = juliet
        .iq_ok(
            "nick",
            &format!(
                "<iq xmlns='jabber:client' type='get' to='{MOVED}' id='nick'><query xmlns='{NS_DISCO_INFO}' node='x-roomuser-item'/></iq>"
            ),
        )
        .await;
    assert!(
        String::from(&nick).contains("name='Jules'") || String::from(&nick).contains("name=\"Jules\""),
        "{}",
        String::from(&nick)
    );
    let taken = join_with(&mut benvolio, MOVED, "Jules", Some("secret")).await;
    assert!(String::from(&taken).contains("conflict"), "{}", String::from(&taken));
    // The nick Romeo registered with the service under mod_muc is his in every room.
    let taken = join_with(&mut juliet, OPEN, "Montague", None).await;
    assert!(String::from(&taken).contains("conflict"), "{}", String::from(&taken));
    let joined = join_with(&mut romeo, OPEN, "Montague", None).await;
    assert_ne!(joined.attr("type"), Some("error"), "{}", String::from(&joined));
    // Mercutio's subscription from mod_muc: the room's messages reach him, wrapped, while
    // he is not joined; Benvolio's, made here, goes back to mod_muc with the room.
    let mut mercutio = Client::connect(&server, "mercutio").await;
    mercutio.send("<presence xmlns='jabber:client'/>").await;
    benvolio.iq_ok("sub", &subscribe_iq(OPEN, "Ben")).await;
    romeo
        .send(&format!("<message xmlns='jabber:client' to='{OPEN}' type='groupchat'><body>For subscribers</body></message>"))
        .await;
    let wrapped = expect_wrapped(&mut mercutio).await;
    let text = String::from(&wrapped);
    assert!(text.contains("urn:xmpp:mucsub:nodes:messages") && text.contains("For subscribers"), "{text}");
    // The password, the subject, the outcast.
    let refused = join_with(&mut juliet, MOVED, "Juliet", None).await;
    assert!(String::from(&refused).contains("not-authorized"), "{}", String::from(&refused));
    let joined = join_with(&mut juliet, MOVED, "Juliet", Some("secret")).await;
    assert_ne!(joined.attr("type"), Some("error"), "{}", String::from(&joined));
    assert_eq!(subject_on_join(&mut juliet, MOVED).await, "Moving day");
    let mut mallory = Client::connect(&server, "mallory").await;
    let banned = join_with(&mut mallory, MOVED, "Mallory", Some("secret")).await;
    assert_eq!(banned.attr("type"), Some("error"), "{}", String::from(&banned));

    // Changed under mod_muc_rs: the name, the subject, an affiliation.
    join_with(&mut romeo, MOVED, "Romeo", Some("secret")).await;
    romeo.iq_ok("cfg", &submit(MOVED, "cfg", &[("muc#roomconfig_roomname", "Moved Room 2")])).await;
    romeo
        .send(&format!("<message xmlns='jabber:client' to='{MOVED}' type='groupchat'><subject>Moved in</subject></message>"))
        .await;
    assert_eq!(subject_on_join_echo(&mut romeo).await, "Moved in");
    romeo.iq_ok("affs", &set_affiliations(MOVED, &[("mercutio@localhost", "member", None)])).await;
    romeo.iq_ok("vcard", &set_vcard(MOVED, "Moved in card", Some("aGVsbG8="))).await;
    assert_log_clean(&server);

    // Back to mod_muc: the changes are seen, and nothing was lost.
    server.switch_to(&Muc::Stock, module_options).await.unwrap_or_else(|e| panic!("{e}"));
    let mut benvolio = Client::connect(&server, "benvolio").await;
    check_moved_room_info(&mut benvolio, "Moved Room 2").await;
    let mut romeo = Client::connect(&server, "romeo").await;
    let form = owner_form(&mut romeo, MOVED).await;
    let form_text = String::from(&form);
    assert_eq!(field_value(&form, "muc#roomconfig_roomsecret").as_deref(), Some("secret"), "{form_text}");
    assert_eq!(field_value(&form, "muc#roomconfig_maxusers").as_deref(), Some("30"), "{form_text}");
    assert_eq!(field_value(&form, "muc#roomconfig_whois").as_deref(), Some("anyone"), "{form_text}");
    // The new vCard, and its avatar's hash (SHA-1 of "hello") as mod_muc keeps it beside it.
    assert_eq!(vcard_name(&mut romeo, MOVED).await.as_deref(), Some("Moved in card"));
    let info = String::from(&disco_info_of(&mut romeo, MOVED).await);
    assert!(info.contains("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"), "{info}");
    assert_eq!(
        affiliation_list(&mut romeo, MOVED, "owner").await,
        jids(&["benvolio@localhost", "romeo@localhost"])
    );
    assert_eq!(affiliation_list(&mut romeo, MOVED, "admin").await, jids(&[]));
    assert_eq!(
        affiliation_list(&mut romeo, MOVED, "member").await,
        jids(&["juliet@localhost", "mercutio@localhost"])
    );
    let outcasts = affiliation_list(&mut romeo, MOVED, "outcast").await;
    assert_eq!(outcasts, vec![("mallory@localhost".to_owned(), Some("Spam".to_owned()))]);
    let mut juliet = Client::connect(&server, "juliet").await;
    let registered = juliet
        .iq_ok(
            "reg",
            &format!("<iq xmlns='jabber:client' type='get' to='{MOVED}' id='reg'><query xmlns='jabber:iq:register'/></iq>"),
        )
        .await;
    assert!(String::from(&registered).contains("Jules"), "{}", String::from(&registered));
    let registered = romeo
        .iq_ok(
            "reg",
            "<iq xmlns='jabber:client' type='get' to='conference.localhost' id='reg'><query xmlns='jabber:iq:register'/></iq>",
        )
        .await;
    assert!(String::from(&registered).contains("Montague"), "{}", String::from(&registered));
    let joined = join_with(&mut juliet, MOVED, "Juliet", Some("secret")).await;
    assert_ne!(joined.attr("type"), Some("error"), "{}", String::from(&joined));
    assert_eq!(subject_on_join(&mut juliet, MOVED).await, "Moved in");
    // The public room, with its subscriber (and listed; the other is not, to a user
    // without an affiliation there).
    let mut user = Client::connect(&server, "user").await;
    assert_eq!(room_list(&mut user, "conference.localhost").await, vec![OPEN]);
    join_with(&mut juliet, OPEN, "Juliet", None).await;
    let subscriptions = juliet
        .iq_ok(
            "subs",
            &format!("<iq xmlns='jabber:client' type='get' to='{OPEN}' id='subs'><subscriptions xmlns='urn:xmpp:mucsub:0'/></iq>"),
        )
        .await;
    let subscriptions = String::from(&subscriptions);
    assert!(subscriptions.contains("mercutio@localhost"), "{subscriptions}");
    assert!(subscriptions.contains("benvolio@localhost"), "made under mod_muc_rs: {subscriptions}");
    assert_log_clean(&server);
    server
}

/// A room's new vCard, named `name`, with a photo (base64) if any.
fn set_vcard(room: &str, name: &str, photo: Option<&str>) -> String {
    let photo = photo
        .map(|p| format!("<PHOTO><TYPE>image/png</TYPE><BINVAL>{p}</BINVAL></PHOTO>"))
        .unwrap_or_default();
    format!(
        "<iq xmlns='jabber:client' type='set' to='{room}' id='vcard'><vCard xmlns='vcard-temp'><FN>{name}</FN>{photo}</vCard></iq>"
    )
}

/// The name on a room's vCard.
async fn vcard_name(client: &mut Client, room: &str) -> Option<String> {
    let got = client
        .iq_ok("getvcard", &format!("<iq xmlns='jabber:client' type='get' to='{room}' id='getvcard'><vCard xmlns='vcard-temp'/></iq>"))
        .await;
    got.get_child("vCard", "vcard-temp")?.get_child("FN", "vcard-temp").map(Element::text)
}

/// Registers `nick` with a room or the service (jabber:iq:register, muc#register's form).
fn register_nick(to: &str, nick: &str) -> String {
    format!(
        "<iq xmlns='jabber:client' type='set' to='{to}' id='reg'><query xmlns='jabber:iq:register'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
         <field var='muc#register_roomnick'><value>{nick}</value></field></x></query></iq>"
    )
}

/// The subject an occupant who set it hears back from the room.
async fn subject_on_join_echo(client: &mut Client) -> String {
    let echo = client
        .expect("the subject's echo", |el| {
            el.name() == "message" && el.get_child("subject", "jabber:client").is_some()
        })
        .await;
    echo.get_child("subject", "jabber:client").map(Element::text).unwrap_or_default()
}

/// mod_muc_rs's log line for a room whose record in mod_muc's table cannot be read.
const UNREADABLE: &str = "is not served: its record in mod_muc's table muc_room cannot be read";

#[tokio::test(flavor = "current_thread")]
async fn an_unreadable_stored_room_is_logged_and_skipped_and_earlier_installs_rooms_are_read() {
    let extras = Extras { cluster: ClusterNode::cluster(1).pop(), ..Extras::default() };
    let mut server =
        Ejabberd::start_with_extras(&Muc::muc_rs(), "", extras).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo.iq_ok("cfg", &configure(true)).await;
    // A row of mod_muc's table no mod_muc wrote (a title that is not text), and a room as
    // mod_muc_rs kept them before it used mod_muc's tables.
    let write = |record: &str| format!("[{record}]");
    let broken =
        "{muc_room, {<<\"broken\">>, <<\"conference.localhost\">>}, [{title, 42}, {persistent, true}]}";
    let old = "{muc_rs_room, <<\"old@conference.localhost\">>, #{config => #{<<\"_jid\">> => <<\"old@conference.localhost\">>, \
               <<\"_data\">> => #{<<\"name\">> => <<\"Old Room\">>, <<\"persistent\">> => true}, \
               <<\"romeo@localhost\">> => <<\"owner\">>}}}";
    for record in [broken, old] {
        let written = server.rpc("mnesia", "dirty_write", &write(record)).await;
        assert_eq!(written.unwrap_or_else(|e| panic!("{e}")), "ok");
    }
    // (stopped, not killed: mnesia writes the dirty writes out)
    server.switch_to(&Muc::muc_rs(), "").await.unwrap_or_else(|e| panic!("{e}"));

    // The broken room is left out of the list and is not served (nor made anew over its
    // record); the others are there.
    let mut juliet = Client::connect(&server, "juliet").await;
    let mut listed = room_list(&mut juliet, "conference.localhost").await;
    listed.sort();
    assert_eq!(listed, vec![ROOM, "old@conference.localhost"]);
    let refused = join_with(&mut juliet, "broken@conference.localhost", "Juliet", None).await;
    assert_eq!(refused.attr("type"), Some("error"), "{}", String::from(&refused));
    let info = disco_info(&mut juliet).await;
    assert_eq!(room_name(&info), Some("Kept Room"), "{}", String::from(&info));
    let codes = juliet.join(ROOM, "Juliet").await;
    assert!(!codes.contains(&"201".to_owned()), "not made again: {codes:?}");
    let log =
        server.wait_for_log(UNREADABLE, T).await.unwrap_or_else(|log| panic!("no `{UNREADABLE}`:\n{log}"));
    let others: Vec<String> = log_problems(&log).into_iter().filter(|l| !l.contains(UNREADABLE)).collect();
    assert!(others.is_empty(), "{others:#?}");
    let still = server
        .rpc("mnesia", "dirty_read", "[muc_room, {<<\"broken\">>, <<\"conference.localhost\">>}]")
        .await;
    assert!(still.unwrap_or_else(|e| panic!("{e}")).contains("42"), "the broken row is left as it was");

    // The earlier install's room is served, and its next change is written to mod_muc's table.
    let old_room = "old@conference.localhost";
    let info = disco_info_of(&mut juliet, old_room).await;
    assert_eq!(room_name(&info), Some("Old Room"), "{}", String::from(&info));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(old_room, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(old_room, "Old Room 2", true)).await;
    let row =
        server.rpc("mnesia", "dirty_read", "[muc_room, {<<\"old\">>, <<\"conference.localhost\">>}]").await;
    assert!(
        row.unwrap_or_else(|e| panic!("{e}")).contains("{title,<<\"Old Room 2\">>}"),
        "in mod_muc's table"
    );
}

/// `mod_muc_rs_rooms`' mapping, in an Erlang VM with the module and ejabberd's code: a room
/// as mod_muc writes it (every option of 24.12's `make_opts`) read into the core's record and
/// written back unchanged; a change of the core's settings changes only the options they
/// stand for.
#[test]
fn mod_mucs_room_options_map_to_the_cores_record_and_back_unchanged() {
    let script = r#"
        application:ensure_all_started(xmpp),
        Room = <<"r@conference.localhost">>,
        J = fun jid:decode/1,
        Opts = [{title, <<"T">>}, {description, <<"D">>}, {allow_change_subj, false},
                {allow_query_users, false}, {allowpm, moderators},
                {allow_private_messages_from_visitors, nobody}, {allow_visitor_status, false},
                {allow_visitor_nickchange, false}, {public, false}, {public_list, false},
                {persistent, true}, {moderated, true}, {members_by_default, false},
                {members_only, true}, {allow_user_invites, true}, {password_protected, true},
                {captcha_protected, true}, {password, <<"pw">>}, {anonymous, false},
                {logging, true}, {max_users, 30}, {allow_voice_requests, false},
                {allow_subscription, true}, {mam, true}, {presence_broadcast, [moderator]},
                {voice_request_min_interval, 60}, {vcard, <<"<vCard xmlns='vcard-temp'/>">>},
                {vcard_xupdate, <<"abc">>}, {pubsub, <<"node">>}, {enable_hats, true}, {lang, <<"fr">>},
                {captcha_whitelist, [{<<"b">>, <<"localhost">>, <<>>}]},
                {affiliations, [{{<<"romeo">>, <<"localhost">>, <<>>}, owner},
                                {{<<"mallory">>, <<"localhost">>, <<>>}, {outcast, <<"Spam">>}},
                                {{<<"x">>, <<"localhost">>, <<"res">>}, member}]},
                {roles, [{{<<"v">>, <<"localhost">>, <<>>}, visitor}]},
                {subject, [{text, <<>>, <<"Subj">>}, {text, <<"fr">>, <<"Sujet">>}]},
                {subject_author, {<<"Romeo">>, J(<<"romeo@localhost/res">>)}},
                {hats_users, [{{<<"romeo">>, <<"localhost">>, <<>>}, [{<<"h">>, <<"Hat">>}]}]},
                {hibernation_time, undefined},
                {subscribers, [{J(<<"m@localhost">>), <<"M">>, [<<"urn:xmpp:mucsub:nodes:messages">>]}]}],
        Nicks = [{{<<"juliet">>, <<"localhost">>}, <<"Jules">>}],
        #{config := C} = mod_muc_rs_rooms:to_record(Room, Opts, Nicks, none),
        #{<<"_data">> := D, <<"_affiliation_data">> := AD} = C,
        Expected = #{<<"name">> => <<"T">>, <<"description">> => <<"D">>, <<"language">> => <<"fr">>,
                     <<"persistent">> => true, <<"hidden">> => true, <<"password">> => <<"pw">>,
                     <<"members_only">> => true, <<"allow_member_invites">> => true,
                     <<"moderated">> => true, <<"whois">> => <<"anyone">>,
                     <<"allow_pm">> => <<"moderator">>,
                     <<"presence_broadcast">> => #{<<"moderator">> => true},
                     <<"subject">> => <<"Subj">>, <<"subject_from">> => <<"r@conference.localhost/Romeo">>,
                     <<"vcard">> => <<"<vCard xmlns='vcard-temp'/>">>,
                     <<"archiving">> => true, <<"allow_subscription">> => true,
                     <<"mucsub_subscribers">> =>
                         #{1 => #{<<"jid">> => <<"m@localhost">>, <<"nick">> => <<"M">>,
                                  <<"nodes">> => #{1 => <<"urn:xmpp:mucsub:nodes:messages">>}}}},
        Expected = D,
        #{<<"romeo@localhost">> := <<"owner">>, <<"mallory@localhost">> := <<"outcast">>} = C,
        #{<<"mallory@localhost">> := #{<<"reason">> := <<"Spam">>},
          <<"juliet@localhost">> := #{<<"reserved_nickname">> := <<"Jules">>}} = AD,
        Sorted = fun(O) -> lists:sort([case K of affiliations -> {K, lists:sort(V)}; _ -> {K, V} end
                                       || {K, V} <- O]) end,
        true = Sorted(mod_muc_rs_rooms:to_opts(C, Opts)) == Sorted(Opts),
        C2 = maps:remove(<<"mallory@localhost">>,
                         C#{<<"_data">> => maps:without([<<"password">>, <<"moderated">>, <<"subject">>],
                                                        D#{<<"name">> => <<"T2">>}),
                            <<"juliet@localhost">> => <<"member">>}),
        Changed = mod_muc_rs_rooms:to_opts(C2, Opts),
        Diff = lists:sort([{K, V} || {K, V} <- Changed, proplists:get_value(K, Opts) /= V]),
        [{affiliations, Affs}, {members_by_default, true}, {password_protected, false},
         {subject, []}, {subject_author, {<<>>, _}}, {title, <<"T2">>}] = Diff,
        [{{<<"juliet">>, <<"localhost">>, <<>>}, member}, {{<<"romeo">>, <<"localhost">>, <<>>}, owner},
         {{<<"x">>, <<"localhost">>, <<"res">>}, member}] = lists:sort(Affs),
        <<"pw">> = proplists:get_value(password, Changed),
        {'EXIT', _} = catch mod_muc_rs_rooms:to_record(Room, [{title, 42}], [], none),
        io:format("MAPPED~n"),
        halt()."#;
    let ebin = default_module_dir().join("ebin");
    let output = std::process::Command::new("erl")
        .args(["-noshell", "-pa"])
        .arg(&ebin)
        .args(["-eval", script])
        .env("ERL_LIBS", "/usr/lib/x86_64-linux-gnu")
        .output()
        .expect("erl (is ejabberd installed?)");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("MAPPED"), "{printed}\n{}", String::from_utf8_lossy(&output.stderr));
}
