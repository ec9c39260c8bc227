//! Room archives through ejabberd's mod_mam on mod_muc_rs (issue 26), with real clients
//! against a real ejabberd 24.12: the archive a room has under stock mod_muc (mod_mam keeps
//! it by the room's JID, in mnesia `archive_msg` or the SQL `archive` table) is returned by
//! a MAM query to the same room after switching to mod_muc_rs, with mod_mam's ids, and the
//! messages sent since are added to it; a temporary room's archive is cleared when its last
//! occupant leaves, as on stock (scansion's muc_ejabberd_mam_destroy.scs has the rest).
//!
//! Fails (no skip) when ejabberd or the module is missing: run tools/install-deps.sh and
//! `make install-ejabberd` first.

mod ejabberd_client;

use std::time::Duration;

use ejabberd_client::{assert_log_clean, configure, Client, NS_MUC_USER};
use minidom::Element;
use muc_harness::ejabberd::{Ejabberd, Extras, Muc};

const ROOM: &str = "archived@conference.localhost";
const NS_SID: &str = "urn:xmpp:sid:0";
const NS_MAM: &str = "urn:xmpp:mam:2";

/// Rooms archive by default, as in ejabberd's example config.
const MUC_OPTIONS: &str = "default_room_options: {mam: true}";

#[tokio::test(flavor = "current_thread")]
async fn a_rooms_archive_under_mod_muc_is_returned_after_the_switch_to_mod_muc_rs() {
    let extras = Extras { modules: vec!["mod_mam: {}".into()], ..Extras::default() };
    archive_survives_the_switch(MUC_OPTIONS, extras).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_rooms_archive_under_mod_muc_is_returned_after_the_switch_on_sqlite() {
    // (in the node's dir, its working directory; mod_mam makes its tables)
    let global = "sql_type: sqlite\nsql_database: \"archive.sqlite\"".to_owned();
    let extras =
        Extras { modules: vec!["mod_mam: {db_type: sql}".into()], global: Some(global), ..Extras::default() };
    let server = archive_survives_the_switch(MUC_OPTIONS, extras).await;
    let database = server.log_path().with_file_name("archive.sqlite");
    let rows = std::process::Command::new("sqlite3")
        .arg(&database)
        .arg("select username, kind from archive order by timestamp")
        .output()
        .expect("sqlite3");
    let rows = String::from_utf8_lossy(&rows.stdout).into_owned();
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        vec![format!("{ROOM}|groupchat"), format!("{ROOM}|groupchat")],
        "both in mod_mam's SQL table, by the room's JID"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_temporary_rooms_archive_is_cleared_when_it_empties_on_mod_muc_rs() {
    temporary_archive_cleared(&Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_temporary_rooms_archive_is_cleared_when_it_empties_on_stock() {
    temporary_archive_cleared(&Muc::Stock).await;
}

/// The last occupant leaves a temporary room and makes it again: its archive is empty.
async fn temporary_archive_cleared(muc: &Muc) {
    let extras = Extras { modules: vec!["mod_mam: {}".into()], ..Extras::default() };
    let server =
        Ejabberd::start_with_extras(muc, MUC_OPTIONS, extras).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo.iq_ok("cfg", &configure(ROOM, "Temporary", false)).await;
    let id = say(&mut romeo, "Gone with the room").await;
    assert_eq!(query(&mut romeo).await, vec![(id, "Gone with the room".to_owned())]);
    romeo.send(&format!("<presence xmlns='jabber:client' type='unavailable' to='{ROOM}/Romeo'/>")).await;
    let me = format!("{ROOM}/Romeo");
    romeo
        .expect("the leave", |el| {
            el.attr("type") == Some("unavailable") && el.attr("from") == Some(me.as_str())
        })
        .await;
    // (stock's room process may still be stopping: a join it gets meanwhile is lost)
    let mut made_again = false;
    for _ in 0..20 {
        romeo
            .send(&format!(
                "<presence xmlns='jabber:client' to='{ROOM}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
            ))
            .await;
        let own = romeo
            .try_expect_within(Duration::from_millis(500), |el| {
                el.name() == "presence" && el.attr("from") == Some(me.as_str())
            })
            .await;
        if let Some(own) = own {
            let codes = own.get_child("x", NS_MUC_USER).map(|x| x.children().filter_map(|c| c.attr("code")));
            assert!(codes.is_some_and(|mut c| c.any(|c| c == "201")), "made again: {}", String::from(&own));
            made_again = true;
            break;
        }
    }
    assert!(made_again, "the room could not be joined again");
    romeo.iq_ok("cfg", &configure(ROOM, "Temporary", false)).await;
    assert_eq!(query(&mut romeo).await, vec![], "the archive went with the room");
    assert_log_clean(&server);
}

/// A persistent room gets a message under mod_muc, then one under mod_muc_rs: a MAM query
/// returns both, each with the id its occupants got in its <stanza-id/>.
async fn archive_survives_the_switch(module_options: &str, extras: Extras) -> Ejabberd {
    let mut server = Ejabberd::start_with_extras(&Muc::Stock, module_options, extras)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo.iq_ok("cfg", &configure(ROOM, "Archived", true)).await;
    let before = say(&mut romeo, "Before the switch").await;
    assert_log_clean(&server);

    server.switch_to(&Muc::muc_rs(), module_options).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    let after = say(&mut romeo, "After the switch").await;
    assert_ne!(before, after);

    let mut juliet = Client::connect(&server, "juliet").await;
    let archive = query(&mut juliet).await;
    assert_eq!(
        archive,
        vec![(before, "Before the switch".to_owned()), (after, "After the switch".to_owned())],
        "the archive from before the switch, and the message since"
    );
    assert_log_clean(&server);
    server
}

/// Says `body` in the room: the id of the room's <stanza-id/> on the echo.
async fn say(client: &mut Client, body: &str) -> String {
    client.say(ROOM, body).await;
    let echo = client
        .expect("the echo", |el| {
            el.name() == "message" && el.get_child("body", "jabber:client").is_some_and(|b| b.text() == body)
        })
        .await;
    let id = echo
        .children()
        .find(|c| c.is("stanza-id", NS_SID) && c.attr("by") == Some(ROOM))
        .and_then(|c| c.attr("id"));
    id.unwrap_or_else(|| panic!("no stanza-id by the room: {}", String::from(&echo))).to_owned()
}

/// A MAM query to the room: each result's archive id and body, in order, once the query
/// is complete.
async fn query(client: &mut Client) -> Vec<(String, String)> {
    client
        .send(&format!(
            "<iq xmlns='jabber:client' type='set' to='{ROOM}' id='mam'><query xmlns='{NS_MAM}' queryid='q'/></iq>"
        ))
        .await;
    let mut results = Vec::new();
    loop {
        let el = client
            .expect("a result or the end", |el| {
                el.get_child("result", NS_MAM).is_some() || el.attr("id") == Some("mam")
            })
            .await;
        if el.name() == "iq" {
            assert_eq!(el.attr("type"), Some("result"), "{}", String::from(&el));
            let fin = el.get_child("fin", NS_MAM).expect("fin");
            assert_eq!(fin.attr("complete"), Some("true"), "{}", String::from(&el));
            return results;
        }
        results.push(result(&el));
    }
}

fn result(el: &Element) -> (String, String) {
    let result = el.get_child("result", NS_MAM).expect("result");
    let body = result
        .get_child("forwarded", "urn:xmpp:forward:0")
        .and_then(|f| f.get_child("message", "jabber:client"))
        .and_then(|m| m.get_child("body", "jabber:client"))
        .map(|b| b.text());
    let id = result.attr("id").expect("the archive's id").to_owned();
    (id, body.unwrap_or_else(|| panic!("no message: {}", String::from(el))))
}
