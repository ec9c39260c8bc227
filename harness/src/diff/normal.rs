//! Normal form of what a case produced, so that the two modules' outcomes compare as text:
//! real JIDs become the parties' labels, random values (stanza ids, resources, occupant ids,
//! timestamps) are dropped, and what stock sends in hash order is sorted.

use std::collections::BTreeMap;

use minidom::{Element, Node};

use muc_harness::xml;

const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Real JIDs of one case and the labels that replace them.
pub struct JidMap {
    /// (full JID, label), e.g. ("w3-actor@localhost/abc", "ACTOR").
    pub clients: Vec<(String, String)>,
    /// The case's room, as `ROOM`.
    pub room: String,
}

impl JidMap {
    pub fn map(&self, value: &str) -> String {
        if value == self.room {
            return "ROOM".into();
        }
        if let Some(nick) = value.strip_prefix(&self.room).and_then(|r| r.strip_prefix('/')) {
            return format!("ROOM/{nick}");
        }
        for (full, label) in &self.clients {
            if value == full {
                return format!("{label}/~");
            }
            if full.split('/').next() == Some(value) {
                return label.clone();
            }
        }
        value.to_owned()
    }

    /// Whether a stanza concerns this case: it comes from the room or one of its occupants.
    pub fn is_from_room(&self, el: &Element) -> bool {
        let from = el.attr("from").unwrap_or("");
        from == self.room || from.strip_prefix(&self.room).is_some_and(|r| r.starts_with('/'))
    }
}

/// The iq reply in short: `result`, or `error TYPE CONDITION`.
pub fn reply(el: &Element) -> String {
    match el.attr("type") {
        Some("result") => "result".into(),
        Some("error") => {
            let Some(error) = el.children().find(|c| c.name() == "error") else {
                return "error (no <error/>)".into();
            };
            let condition = error
                .children()
                .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
                .map_or("?", |c| c.name());
            format!("error {} {condition}", error.attr("type").unwrap_or("?"))
        }
        other => format!("type={}", other.unwrap_or("?")),
    }
}

/// One stanza in normal form: attributes sorted, JIDs mapped, the stanza's own `id` and `to`
/// dropped, random values blanked, the children of a muc#user `<x/>` sorted.
pub fn stanza(el: &Element, map: &JidMap) -> String {
    let mut out = String::new();
    write(&mut out, el, map, "jabber:client", true);
    out
}

fn write(out: &mut String, el: &Element, map: &JidMap, parent_ns: &str, top: bool) {
    let ns = el.ns();
    out.push('<');
    out.push_str(el.name());
    if ns != parent_ns {
        out.push_str(&format!(" xmlns='{}'", xml::escape(&ns)));
    }
    let blank =
        |name: &str| matches!((el.name(), name), ("occupant-id" | "stanza-id", "id") | ("delay", "stamp"));
    let mut attrs: Vec<(String, String)> = el
        .attrs()
        .into_iter()
        .filter(|((_, name), _)| !(top && matches!(name.as_str(), "id" | "to")))
        .map(|((_, name), value)| {
            let v = if blank(name.as_str()) { "*".to_owned() } else { map.map(value) };
            (name.as_str().to_owned(), v)
        })
        .collect();
    attrs.sort();
    for (name, value) in attrs {
        out.push_str(&format!(" {name}='{}'", xml::escape(&value)));
    }
    let mut parts: Vec<String> = Vec::new();
    for node in el.nodes() {
        match node {
            Node::Element(child) => {
                let mut s = String::new();
                write(&mut s, child, map, &ns, false);
                parts.push(s);
            }
            Node::Text(t) if !t.trim().is_empty() => parts.push(xml::escape(t.trim())),
            Node::Text(_) => {}
        }
    }
    if el.name() == "x" && ns == NS_MUC_USER {
        parts.sort();
    }
    if parts.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        for p in parts {
            out.push_str(&p);
        }
        out.push_str(&format!("</{}>", el.name()));
    }
}

/// A case's outcome: the iq reply and, per party label, what it received (sorted: stock sends
/// several stanzas to one client in occupant-table order, which is hash order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub reply: String,
    pub received: BTreeMap<String, Vec<String>>,
}

impl Outcome {
    /// Label → text, non-empty lists only, for printing and comparing by part.
    pub fn parts(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("reply".to_owned(), self.reply.clone());
        for (label, list) in &self.received {
            if !list.is_empty() {
                m.insert(label.clone(), list.join(" "));
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> JidMap {
        JidMap {
            clients: vec![("w1-actor@localhost/r1".into(), "ACTOR".into())],
            room: "c1@conference.localhost".into(),
        }
    }

    #[test]
    fn stanza_is_normalised() {
        let el = &xml::parse_fragment(
            "<presence id='x' to='w1-actor@localhost/r1' from='c1@conference.localhost/actor'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/>\
             <item role='none' jid='w1-actor@localhost/r1' affiliation='none'><actor nick='owner'/></item>\
             <status code='307'/></x><occupant-id xmlns='urn:xmpp:occupant-id:0' id='abc'/></presence>",
        )
        .unwrap()[0];
        assert_eq!(
            stanza(el, &map()),
            "<presence from='ROOM/actor'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' jid='ACTOR/~' role='none'><actor nick='owner'/></item>\
             <status code='110'/><status code='307'/></x>\
             <occupant-id xmlns='urn:xmpp:occupant-id:0' id='*'/></presence>"
        );
        assert!(map().is_from_room(el));
    }

    #[test]
    fn reply_short_form() {
        let el = &xml::parse_fragment(
            "<iq type='error'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></iq>",
        )
        .unwrap()[0];
        assert_eq!(reply(el), "error cancel not-allowed");
        assert_eq!(map().map("w1-actor@localhost"), "ACTOR");
    }
}
