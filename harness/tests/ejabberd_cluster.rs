//! muc_rs rooms in an ejabberd cluster (issue 17): two ejabberd 24.12 nodes clustered on
//! loopback, clients on both sharing a room that lives on one node at a time. What one
//! node's clients do is seen from the other's; when the room's node is killed with
//! `kill -9`, the other node takes the room over from the records mnesia replicated, with
//! its settings and affiliations; in a room on the surviving node, an occupant whose client
//! was on the lost node is removed as a ghost at the next message, as stock removes an
//! occupant whose client has vanished (status 333); the killed node, restarted, rejoins the
//! cluster and reaches the room where it now lives.
//!
//! Fails (no skip) when ejabberd or the module is missing (`make install-ejabberd`).

mod ejabberd_client;

use std::time::Duration;

use ejabberd_client::{assert_log_clean, configure, disco_info_of, has_feature, Client, NS_MUC_USER};
use minidom::Element;
use muc_harness::ejabberd::{ClusterNode, Ejabberd, Extras, Muc};

const ROOM: &str = "shared@conference.localhost";
/// A room that lives on the second node.
const OTHER: &str = "other@conference.localhost";

/// Waits until the cluster knows a new session everywhere: ejabberd replicates its session
/// table asynchronously, so a reply from a room on another node to a session opened a
/// moment ago can find no session there and be dropped (ejabberd's mod_muc meets the
/// same). A disco#info to `room` is asked until one is answered.
async fn settle(client: &mut Client, room: &str) {
    for attempt in 0.. {
        let id = format!("settle{attempt}");
        client
            .send(&format!(
                "<iq xmlns='jabber:client' type='get' to='{room}' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
            ))
            .await;
        let answered =
            client.try_expect_within(Duration::from_millis(500), |el| el.attr("id") == Some(&id)).await;
        if answered.is_some() {
            return;
        }
        assert!(attempt < 40, "{room} never answered");
    }
}

/// A node of the cluster; its rooms are hidden unless made public (mod_muc's default makes
/// them public), so that the room list shows the one room made public.
async fn start(node: ClusterNode) -> Ejabberd {
    let extras = Extras { cluster: Some(node), ..Extras::default() };
    let options = "default_room_options: {public: false}";
    Ejabberd::start_with_extras(&Muc::muc_rs(), options, extras).await.unwrap_or_else(|e| panic!("{e}"))
}

fn is_presence_of(el: &Element, nick: &str) -> bool {
    el.name() == "presence" && el.attr("from") == Some(&format!("{ROOM}/{nick}")) && el.attr("type").is_none()
}

fn affiliation(presence: &Element) -> Option<String> {
    let item = presence.get_child("x", NS_MUC_USER)?.get_child("item", NS_MUC_USER)?;
    item.attr("affiliation").map(str::to_owned)
}

fn has_body(el: &Element, body: &str) -> bool {
    el.name() == "message" && el.get_child("body", "jabber:client").is_some_and(|b| b.text() == body)
}

#[tokio::test(flavor = "current_thread")]
async fn a_room_is_shared_across_the_cluster_and_survives_the_loss_of_its_node() {
    let nodes = ClusterNode::cluster(2);
    let mut a = start(nodes[0].clone()).await;
    let b = start(nodes[1].clone()).await;

    // Romeo on node a makes the room: it lives on a.
    let mut romeo = Client::connect(&a, "romeo").await;
    assert!(romeo.join(ROOM, "Romeo").await.contains(&"201".to_owned()), "a new room");
    romeo.iq_ok("cfg", &configure(ROOM, "Shared Room", true)).await;

    // Juliet on node b joins it and talks: both see it.
    let mut juliet = Client::connect(&b, "juliet").await;
    settle(&mut juliet, ROOM).await;
    let codes = juliet.join(ROOM, "Juliet").await;
    assert!(!codes.contains(&"201".to_owned()), "the same room, from b: {codes:?}");
    romeo.expect("Juliet's arrival", |el| is_presence_of(el, "Juliet")).await;
    juliet.say(ROOM, "from b").await;
    romeo.expect("Juliet's message", |el| has_body(el, "from b")).await;
    juliet.expect("her own message", |el| has_body(el, "from b")).await;

    // An affiliation made on a is seen on b; the room's settings are read from b.
    romeo
        .iq_ok("aff", &ejabberd_client::set_affiliation(ROOM, "aff", "juliet@localhost", "admin", None))
        .await;
    let changed = juliet.expect("her new affiliation", |el| is_presence_of(el, "Juliet")).await;
    assert_eq!(affiliation(&changed).as_deref(), Some("admin"), "{}", String::from(&changed));
    let mut mercutio = Client::connect(&b, "mercutio").await;
    settle(&mut mercutio, ROOM).await;
    let info = disco_info_of(&mut mercutio, ROOM).await;
    assert!(String::from(&info).contains("Shared Room"), "{}", String::from(&info));
    assert!(has_feature(&info, "muc_persistent"), "{}", String::from(&info));

    // A second room lives on b, public and temporary, with Romeo (on a) in it; a's room
    // list has it.
    assert!(juliet.join(OTHER, "Juliet").await.contains(&"201".to_owned()), "a new room, on b");
    let public = configure(OTHER, "Other Room", false).replace(
        "</x></query>",
        "<field var='muc#roomconfig_publicroom'><value>1</value></field></x></query>",
    );
    juliet.iq_ok("cfg", &public).await;
    romeo
        .send("<iq xmlns='jabber:client' type='get' to='conference.localhost' id='items'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
        .await;
    let items = romeo.expect("the room list", |el| el.attr("id") == Some("items")).await;
    let listed: Vec<(Option<&str>, Option<&str>)> = items
        .get_child("query", "http://jabber.org/protocol/disco#items")
        .map(|q| q.children().map(|i| (i.attr("jid"), i.attr("name"))).collect())
        .unwrap_or_default();
    assert_eq!(
        listed,
        vec![(Some(OTHER), Some("Other Room"))],
        "a lists b's public room: {}",
        String::from(&items)
    );
    romeo.join(OTHER, "Romeo").await;
    let romeo_in_other = format!("{OTHER}/Romeo");
    juliet
        .expect("Romeo in the other room", |el| {
            el.name() == "presence" && el.attr("from") == Some(&romeo_in_other)
        })
        .await;

    // Node a dies: b takes the room over from the replicated records. Juliet has to join
    // again (as after a restart), and finds its name and her affiliation kept.
    a.kill().await;
    let codes = juliet.join(ROOM, "Juliet").await;
    assert!(!codes.contains(&"201".to_owned()), "the room was taken over, not made anew: {codes:?}");
    let info = disco_info_of(&mut mercutio, ROOM).await;
    assert!(String::from(&info).contains("Shared Room"), "{}", String::from(&info));

    // In the room on b, Romeo's client is gone with a: the next message to him bounces and
    // the room removes him.
    juliet.say(OTHER, "still here?").await;
    let gone = juliet
        .expect("Romeo's removal", |el| {
            el.name() == "presence"
                && el.attr("from") == Some(&romeo_in_other)
                && el.attr("type") == Some("unavailable")
        })
        .await;
    let codes: Vec<_> = gone
        .get_child("x", NS_MUC_USER)
        .map(|x| x.children().filter_map(|s| s.attr("code")).collect())
        .unwrap_or_default();
    assert_eq!(codes, vec!["333"], "{}", String::from(&gone));

    // a comes back and rejoins the cluster: Romeo, on a again, reaches the room on b.
    a.crash_restart().await.unwrap_or_else(|e| panic!("{e}"));
    let mut romeo = Client::connect(&a, "romeo").await;
    settle(&mut romeo, ROOM).await;
    romeo
        .send(&format!(
            "<presence xmlns='jabber:client' to='{ROOM}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
    let juliet_seen = romeo.expect("Juliet in the room", |el| is_presence_of(el, "Juliet")).await;
    assert_eq!(affiliation(&juliet_seen).as_deref(), Some("admin"), "{}", String::from(&juliet_seen));
    let own = romeo.expect("his own presence", |el| is_presence_of(el, "Romeo")).await;
    assert_eq!(affiliation(&own).as_deref(), Some("owner"), "{}", String::from(&own));
    juliet.expect("Romeo's return", |el| is_presence_of(el, "Romeo")).await;
    for server in [&a, &b] {
        assert_log_clean(server);
    }
}
