//! A test client for the ejabberd tests (harness/tests/ejabberd*.rs): a real XMPP session
//! against a harness-started ejabberd, with the few steps the tests take.

// Shared by the ejabberd test files: not every one uses every step.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use minidom::Element;
use muc_harness::ejabberd::{Ejabberd, PASSWORD};
use muc_harness::xmpp::{ConnectOptions, Connection};

pub const T: Duration = Duration::from_secs(10);
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";

pub struct Client(pub Connection);

impl Client {
    pub async fn connect(server: &Ejabberd, user: &str) -> Client {
        let opts = ConnectOptions {
            addr: server.c2s_addr(),
            jid: format!("{user}@localhost"),
            password: PASSWORD.into(),
            resource: Some("res".into()),
            timeout: T,
            record_traffic: false,
        };
        Client(Connection::connect(&opts).await.unwrap_or_else(|e| panic!("connect as {user}: {e}")))
    }

    pub async fn send(&mut self, xml: &str) {
        let el: Element = xml.parse().unwrap_or_else(|e| panic!("bad test stanza {xml}: {e}"));
        self.0.send(&el).await.expect("send");
    }

    /// The next stanza `pred` accepts (others are dropped).
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        self.try_expect(pred).await.unwrap_or_else(|| panic!("no {what} within {T:?}"))
    }

    /// The next stanza `pred` accepts within the timeout, if any.
    pub async fn try_expect(&mut self, pred: impl Fn(&Element) -> bool) -> Option<Element> {
        self.try_expect_within(T, pred).await
    }

    /// The next stanza `pred` accepts within `timeout`, if any.
    pub async fn try_expect_within(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Option<Element> {
        let deadline = Instant::now() + timeout;
        while let Some(el) = self.0.next_stanza(deadline).await.expect("read") {
            if pred(&el) {
                return Some(el);
            }
        }
        None
    }

    /// Joins `room` as `nick`; the status codes of the self-presence.
    pub async fn join(&mut self, room: &str, nick: &str) -> Vec<String> {
        self.send(&format!(
            "<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
        let me = format!("{room}/{nick}");
        let own = self
            .expect("the self-presence", |el| el.name() == "presence" && el.attr("from") == Some(me.as_str()))
            .await;
        assert_ne!(own.attr("type"), Some("error"), "joining {room}: {}", String::from(&own));
        let x = own.get_child("x", NS_MUC_USER).expect("muc#user x");
        x.children()
            .filter(|c| c.name() == "status")
            .filter_map(|c| c.attr("code").map(str::to_owned))
            .collect()
    }

    /// Tries to join `room` as `nick`, which must be refused: the error presence.
    #[allow(dead_code)] // (not every test file has a refusal)
    pub async fn join_refused(&mut self, room: &str, nick: &str) -> Element {
        self.send(&format!(
            "<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await;
        let refused = self.expect("the refusal", |el| el.name() == "presence").await;
        assert_eq!(refused.attr("type"), Some("error"), "{}", String::from(&refused));
        refused
    }

    /// Sends a groupchat message with `body` to `room`.
    pub async fn say(&mut self, room: &str, body: &str) {
        self.send(&format!(
            "<message xmlns='jabber:client' to='{room}' type='groupchat'><body>{body}</body></message>"
        ))
        .await;
    }

    /// Sends an iq and waits for its result.
    pub async fn iq_ok(&mut self, id: &str, xml: &str) -> Element {
        self.send(xml).await;
        let reply = self.expect("the iq's reply", |el| el.name() == "iq" && el.attr("id") == Some(id)).await;
        assert_eq!(reply.attr("type"), Some("result"), "{}", String::from(&reply));
        reply
    }
}

/// A muc#admin set of one affiliation (with a reason, if any).
pub fn set_affiliation(room: &str, id: &str, jid: &str, affiliation: &str, reason: Option<&str>) -> String {
    let reason = reason.map(|r| format!("<reason>{r}</reason>")).unwrap_or_default();
    format!(
        "<iq xmlns='jabber:client' type='set' to='{room}' id='{id}'><query xmlns='http://jabber.org/protocol/muc#admin'>\
         <item affiliation='{affiliation}' jid='{jid}'>{reason}</item></query></iq>"
    )
}

/// The owner's configuration form for `room`: its name and whether it is persistent.
pub fn configure(room: &str, name: &str, persistent: bool) -> String {
    format!(
        "<iq xmlns='jabber:client' type='set' to='{room}' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
         <field var='muc#roomconfig_roomname'><value>{name}</value></field>\
         <field var='muc#roomconfig_persistentroom'><value>{}</value></field>\
         </x></query></iq>",
        u8::from(persistent)
    )
}

pub async fn disco_info_of(client: &mut Client, to: &str) -> Element {
    let id = "info";
    client
        .send(&format!(
            "<iq xmlns='jabber:client' type='get' to='{to}' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ))
        .await;
    client.expect("disco#info's reply", |el| el.name() == "iq" && el.attr("id") == Some(id)).await
}

pub fn has_feature(info: &Element, var: &str) -> bool {
    let query = info.get_child("query", "http://jabber.org/protocol/disco#info");
    query.is_some_and(|q| q.children().any(|c| c.name() == "feature" && c.attr("var") == Some(var)))
}

/// The node's log has no error or crash of the MUC module.
pub fn assert_log_clean(server: &Ejabberd) {
    let log = server.read_log();
    assert!(muc_harness::ejabberd::log_problems(&log).is_empty(), "{log}");
}
