//! A deleted account on ejabberd (`ejabberdctl unregister`, `ejabberd_auth:remove_user`):
//! it loses its affiliations in the service's rooms, live and stored, as with ejabberd's own
//! mod_muc. The same story runs against both modules.
//!
//! Fails (no skip) when ejabberd or the module is missing: run tools/install-deps.sh and
//! `make install-ejabberd` first.

mod ejabberd_client;

use std::time::{Duration, Instant};

use ejabberd_client::{Client, T};
use minidom::Element;
use muc_harness::ejabberd::{ClusterNode, Ejabberd, Extras, Muc};

const ROOM: &str = "friends@conference.localhost";

/// The JIDs of the room's members, as its owner asks for them.
async fn members(owner: &mut Client, id: &str) -> Vec<String> {
    let list = owner
        .iq_ok(
            id,
            &format!(
                "<iq xmlns='jabber:client' type='get' to='{ROOM}' id='{id}'><query xmlns='http://jabber.org/protocol/muc#admin'>\
                 <item affiliation='member'/></query></iq>"
            ),
        )
        .await;
    let query = list.get_child("query", "http://jabber.org/protocol/muc#admin");
    query.map_or_else(Vec::new, |q| {
        q.children().filter_map(|item: &Element| item.attr("jid")).map(str::to_owned).collect()
    })
}

/// Deletes Juliet's account; returns the room's members once the change is through (the
/// modules take it asynchronously), or as they stand after `T`.
async fn delete_juliet(server: &Ejabberd, romeo: &mut Client) -> Vec<String> {
    let removed = server.rpc("ejabberd_auth", "remove_user", "[<<\"juliet\">>, <<\"localhost\">>]").await;
    assert_eq!(removed.unwrap_or_else(|e| panic!("{e}")), "ok");
    let start = Instant::now();
    let mut asked = 0;
    loop {
        asked += 1;
        let now = members(romeo, &format!("after{asked}")).await;
        if now.is_empty() || start.elapsed() > T {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_deleted_account_loses_its_affiliations(muc: Muc) {
    let extras = Extras { cluster: ClusterNode::cluster(1).pop(), ..Extras::default() };
    let mut server = Ejabberd::start_with_extras(&muc, "", extras).await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(ROOM, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(ROOM, "Friends", true)).await;
    let member =
        ejabberd_client::set_affiliation(ROOM, "member", "juliet@localhost", "member", Some("a friend"));
    romeo.iq_ok("member", &member).await;
    assert_eq!(members(&mut romeo, "before").await, vec!["juliet@localhost"], "{}", muc.label());

    // Live room: the affiliation goes, and stays gone once the room is read back (after a
    // clean restart: stock mod_muc may lose a room's last change to a kill -9).
    let left = delete_juliet(&server, &mut romeo).await;
    assert_eq!(left, Vec::<String>::new(), "{}:\n{}", muc.label(), server.read_log());
    server.restart().await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    assert_eq!(members(&mut romeo, "restarted").await, Vec::<String>::new(), "{}", muc.label());

    // A room nobody has been in since the server started: the same.
    let member = ejabberd_client::set_affiliation(ROOM, "member2", "juliet@localhost", "member", None);
    romeo.iq_ok("member2", &member).await;
    server.restart().await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&server, "romeo").await;
    assert_eq!(delete_juliet(&server, &mut romeo).await, Vec::<String>::new(), "{}", muc.label());
}

#[tokio::test(flavor = "current_thread")]
async fn a_deleted_account_loses_its_affiliations_on_mod_muc_rs() {
    a_deleted_account_loses_its_affiliations(Muc::muc_rs()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_deleted_account_loses_its_affiliations_on_mod_muc() {
    a_deleted_account_loses_its_affiliations(Muc::Stock).await;
}
