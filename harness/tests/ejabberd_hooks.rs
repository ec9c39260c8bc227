//! ejabberd's MUC hooks on mod_muc_rs (issue 26), against stock mod_muc: a test module of
//! our own (`spec/modules/mod_test_muc_hooks.erl`) listens to `join_room`, `leave_room`,
//! `start_room`, `create_room`, `room_destroyed`, `check_create_room`,
//! `muc_filter_presence` and `muc_invite`, and makes what it sees visible: the lifecycle
//! hooks as lines of a file in the node's dir, the filters on the wire (a refused room, a
//! dropped join, marked presences and invitations). The same session runs on both modules
//! and must give the same.
//!
//! Fails (no skip) when ejabberd or the module is missing: run tools/install-deps.sh and
//! `make install-ejabberd` first.

mod ejabberd_client;

use std::path::PathBuf;
use std::time::Duration;

use ejabberd_client::{assert_log_clean, configure, Client, NS_MUC_USER};
use minidom::Element;
use muc_harness::ejabberd::{Ejabberd, Extras, Muc};

const ROOM: &str = "hooks@conference.localhost";
const NS_HOOKED: &str = "urn:muc-rs:test:hooks";

/// The test module, compiled into a dir of its own.
fn test_module() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/modules/mod_test_muc_hooks.erl");
    let include = "/usr/lib/x86_64-linux-gnu/ejabberd-24.12";
    let out = std::process::Command::new("erlc")
        .args(["-pa", &format!("{include}/ebin"), "-I", &format!("{include}/include"), "-o"])
        .arg(dir.path())
        .arg(&source)
        .output()
        .expect("erlc");
    assert!(out.status.success(), "erlc: {}", String::from_utf8_lossy(&out.stderr));
    let path = dir.path().to_owned();
    (dir, path)
}

fn hooked(el: &Element, by: &str) -> Option<String> {
    el.children().find(|c| c.is("hooked", NS_HOOKED) && c.attr("by") == Some(by)).map(Element::text)
}

/// ejabberd on `muc` with the test module (and the room commands: mod_muc_admin's for
/// stock, mod_muc_rs's own).
async fn start(muc: &Muc) -> (Ejabberd, tempfile::TempDir) {
    let (dir, ebin) = test_module();
    let mut modules = vec!["mod_test_muc_hooks: {}".to_owned()];
    if *muc == Muc::Stock {
        modules.push("mod_muc_admin: {}".into());
    }
    let extras = Extras { modules, code_paths: vec![ebin], http_api: true, ..Extras::default() };
    let server = Ejabberd::start_with_extras(muc, "", extras).await.unwrap_or_else(|e| panic!("{e}"));
    (server, dir)
}

/// The lines of the test module's log once it has `last` (stock runs room_destroyed as the
/// room's process ends, after the reply).
async fn heard(server: &Ejabberd, last: &str) -> Vec<String> {
    heard_until(server, |text| text.contains(last)).await
}

/// The lines of the test module's log once `done` says they are all there.
async fn heard_until(server: &Ejabberd, done: impl Fn(&str) -> bool) -> Vec<String> {
    let log = server.dir().join("muc_hooks.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if done(&text) || std::time::Instant::now() > deadline {
            assert_log_clean(server);
            return text.lines().map(str::to_owned).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The session, on `muc`: the lifecycle hooks it heard, in order.
async fn session(muc: &Muc) -> Vec<String> {
    let (server, _dir) = start(muc).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    let mut juliet = Client::connect(&server, "juliet").await;
    let mut mercutio = Client::connect(&server, "mercutio").await;
    // (available, so that a message to the bare JID reaches the session)
    mercutio.send("<presence xmlns='jabber:client'/>").await;

    // check_create_room refuses the room `refused`, as access_create would.
    // (no room made: start_room is not heard for it)
    romeo.join_refused("refused@conference.localhost", "Romeo").await;

    // muc_filter_presence marks the join, and the room keeps the mark in what it sends.
    romeo
        .send(&format!("<presence xmlns='jabber:client' to='{ROOM}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"))
        .await;
    let me = format!("{ROOM}/Romeo");
    let own = romeo
        .expect("the self-presence", |el| el.name() == "presence" && el.attr("from") == Some(&*me))
        .await;
    assert!(own.has_child("x", NS_MUC_USER) && own.attr("type").is_none(), "{}", String::from(&own));
    assert!(hooked(&own, "presence").is_some(), "marked: {}", String::from(&own));
    romeo.iq_ok("cfg", &configure(ROOM, "Hooks", false)).await;

    // A join it drops is never seen by the room: no answer, no occupant.
    juliet
        .send(&format!("<presence xmlns='jabber:client' to='{ROOM}/Dropped'><x xmlns='http://jabber.org/protocol/muc'/></presence>"))
        .await;
    let answer = juliet.try_expect_within(Duration::from_secs(2), |el| el.name() == "presence").await;
    assert!(
        answer.is_none(),
        "a dropped join is not answered: {}",
        answer.map(|a| String::from(&a)).unwrap_or_default()
    );
    juliet.join(ROOM, "Juliet").await;
    let seen = romeo
        .expect("Juliet's presence", |el| {
            el.name() == "presence" && el.attr("from") == Some(&*format!("{ROOM}/Juliet"))
        })
        .await;
    assert!(hooked(&seen, "presence").is_some(), "marked: {}", String::from(&seen));

    // muc_invite sees the room, the inviter, the invitee and the reason, and may change
    // the invitation.
    romeo
        .send(&format!(
            "<message xmlns='jabber:client' to='{ROOM}'><x xmlns='{NS_MUC_USER}'>\
             <invite to='mercutio@localhost'><reason>Come</reason></invite></x></message>"
        ))
        .await;
    let invite = mercutio.expect("the invitation", |el| el.name() == "message").await;
    assert_eq!(invite.attr("from"), Some(ROOM), "{}", String::from(&invite));
    assert_eq!(
        hooked(&invite, "invite").as_deref(),
        Some(format!("{ROOM} romeo@localhost mercutio@localhost Come").as_str()),
        "{}",
        String::from(&invite)
    );

    // Juliet leaves; the owner destroys the room (with Romeo in it).
    juliet.send(&format!("<presence xmlns='jabber:client' type='unavailable' to='{ROOM}/Juliet'/>")).await;
    juliet.expect("the leave", |el| el.name() == "presence" && el.attr("type") == Some("unavailable")).await;
    romeo
        .iq_ok(
            "destroy",
            &format!(
                "<iq xmlns='jabber:client' type='set' to='{ROOM}' id='destroy'>\
                 <query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>"
            ),
        )
        .await;
    heard(&server, "room_destroyed").await
}

/// A persistent room made and destroyed by the room commands (HTTP API), with Romeo in it
/// between: the lifecycle hooks heard, in order.
async fn commands(muc: &Muc) -> Vec<String> {
    let (server, _dir) = start(muc).await;
    let api = |command: &'static str, body: &'static str| {
        let server = &server;
        async move {
            let (status, answer) = server.api(command, body).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((status, answer.trim()), (200, "0"), "{command}");
        }
    };
    api(
        "create_room_with_opts",
        r#"{"room": "made", "service": "conference.localhost", "host": "localhost",
            "options": [{"name": "persistent", "value": "true"}]}"#,
    )
    .await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join("made@conference.localhost", "Romeo").await;
    api("destroy_room", r#"{"room": "made", "service": "conference.localhost"}"#).await;
    heard(&server, "room_destroyed").await
}

const MADE: &[&str] = &[
    "start_room made conference.localhost",
    "create_room made conference.localhost",
    "join_room made conference.localhost romeo@localhost/res",
    "leave_room made conference.localhost romeo@localhost/res",
    "room_destroyed made conference.localhost true",
];

#[tokio::test(flavor = "current_thread")]
async fn muc_hooks_of_room_commands_run_on_stock() {
    assert_eq!(commands(&Muc::Stock).await, MADE);
}

#[tokio::test(flavor = "current_thread")]
async fn muc_hooks_of_room_commands_run_on_mod_muc_rs() {
    assert_eq!(commands(&Muc::muc_rs()).await, MADE);
}

const SESSION: &[&str] = &[
    "check_create_room refused",
    "start_room hooks conference.localhost",
    "join_room hooks conference.localhost romeo@localhost/res",
    "join_room hooks conference.localhost juliet@localhost/res",
    "leave_room hooks conference.localhost juliet@localhost/res",
    "leave_room hooks conference.localhost romeo@localhost/res",
    "room_destroyed hooks conference.localhost false",
];

#[tokio::test(flavor = "current_thread")]
async fn muc_hooks_run_on_stock() {
    assert_eq!(session(&Muc::Stock).await, SESSION);
}

#[tokio::test(flavor = "current_thread")]
async fn muc_hooks_run_on_mod_muc_rs() {
    assert_eq!(session(&Muc::muc_rs()).await, SESSION);
}

/// A persistent room Romeo made and left, then joins again after a restart: the lifecycle
/// hooks heard, in order (stock starts its stored rooms at start, mod_muc_rs when it brings
/// one back into memory: before the join either way).
async fn restarted(muc: &Muc) -> Vec<String> {
    const KEPT: &str = "kept@conference.localhost";
    let (mut server, _dir) = start(muc).await;
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(KEPT, "Romeo").await;
    romeo.iq_ok("cfg", &configure(KEPT, "Kept", true)).await;
    romeo.send(&format!("<presence xmlns='jabber:client' type='unavailable' to='{KEPT}/Romeo'/>")).await;
    romeo.expect("the leave", |el| el.name() == "presence" && el.attr("type") == Some("unavailable")).await;
    drop(romeo);
    server.switch_to(muc, "").await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(KEPT, "Romeo").await;
    heard_until(&server, |text| text.matches("join_room").count() == 2).await
}

const KEPT_ROOM: &[&str] = &[
    "start_room kept conference.localhost",
    "join_room kept conference.localhost romeo@localhost/res",
    "leave_room kept conference.localhost romeo@localhost/res",
    "start_room kept conference.localhost",
    "join_room kept conference.localhost romeo@localhost/res",
];

#[tokio::test(flavor = "current_thread")]
async fn muc_hooks_of_a_stored_room_run_on_stock() {
    assert_eq!(restarted(&Muc::Stock).await, KEPT_ROOM);
}

#[tokio::test(flavor = "current_thread")]
async fn muc_hooks_of_a_stored_room_run_on_mod_muc_rs() {
    assert_eq!(restarted(&Muc::muc_rs()).await, KEPT_ROOM);
}

/// mod_muc_occupantid cannot run beside mod_muc_rs, so the two never both add occupant
/// ids: ejabberd refuses to start with it and without mod_muc (its hard dependency), saying
/// so; mod_muc_rs gives the ids itself (muc_ejabberd_occupant_id.scs).
#[tokio::test(flavor = "current_thread")]
async fn mod_muc_occupantid_beside_mod_muc_rs_is_refused_by_ejabberd() {
    let extras = Extras { modules: vec!["mod_muc_occupantid: {}".into()], ..Extras::default() };
    let Err(why) = Ejabberd::start_with_extras(&Muc::muc_rs(), "", extras).await else {
        panic!("ejabberd started with mod_muc_occupantid beside mod_muc_rs");
    };
    let why = why.to_string();
    assert!(why.contains("module mod_muc_occupantid depends on module mod_muc"), "{why}");
}
