//! Stanzas kept for a long time (each session's last presence) in a compact form:
//! a `minidom::Element` spends kilobytes on maps for a few attributes, which made the
//! stored presences most of a room's memory. Converted back when a stanza is sent.

use crate::xml::{attr_key, set_attr_key, NS_CLIENT, NS_OCCUPANT_ID};
use minidom::{Element, Node};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactElement {
    name: Word,
    /// `None` when the same as the parent's (for the root: `jabber:client`).
    ns: Option<Word>,
    /// Keys as Prosody names them (`name`, `xml:lang`, `uri\u{1}name`).
    attrs: Box<[(Word, Box<str>)]>,
    children: Box<[CompactNode]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CompactNode {
    Element(CompactElement),
    Text(Box<str>),
}

/// An element or attribute name, or a namespace: the ones every stored presence repeats
/// are shared statics instead of an allocation each.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Common(&'static str),
    Other(Box<str>),
}

const COMMON_WORDS: &[&str] = &[
    "presence",
    "from",
    "to",
    "id",
    "type",
    "xml:lang",
    "show",
    "status",
    "priority",
    "occupant-id",
    NS_OCCUPANT_ID,
    "c",
    "http://jabber.org/protocol/caps",
    "hash",
    "node",
    "ver",
    "ext",
    "x",
    "vcard-temp:x:update",
    "photo",
];

impl Word {
    fn new(s: &str) -> Word {
        match COMMON_WORDS.iter().find(|w| **w == s) {
            Some(w) => Word::Common(w),
            None => Word::Other(s.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Word::Common(w) => w,
            Word::Other(w) => w,
        }
    }
}

impl CompactElement {
    pub fn new(element: &Element) -> Self {
        Self::from_element(element, NS_CLIENT)
    }

    fn from_element(e: &Element, parent_ns: &str) -> Self {
        let ns = e.ns();
        let children = e
            .nodes()
            .map(|node| match node {
                Node::Element(c) => CompactNode::Element(Self::from_element(c, &ns)),
                Node::Text(t) => CompactNode::Text(t.as_str().into()),
            })
            .collect();
        CompactElement {
            name: Word::new(e.name()),
            ns: (ns != parent_ns).then(|| Word::new(&ns)),
            attrs: e
                .attrs()
                .iter()
                .map(|((ans, name), v)| (Word::new(&attr_key(ans, name)), v.as_str().into()))
                .collect(),
            children,
        }
    }

    pub fn to_element(&self) -> Element {
        self.build(NS_CLIENT)
    }

    fn build(&self, parent_ns: &str) -> Element {
        let ns = self.ns.as_ref().map_or(parent_ns, Word::as_str);
        let mut e = Element::bare(self.name.as_str(), ns);
        for (k, v) in self.attrs.iter() {
            set_attr_key(&mut e, k.as_str(), v);
        }
        for child in self.children.iter() {
            match child {
                CompactNode::Element(c) => {
                    e.append_child(c.build(ns));
                }
                CompactNode::Text(t) => e.append_text_node(&**t),
            }
        }
        e
    }

    /// A top-level attribute without a namespace.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| &**v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_namespaces_attributes_and_text() {
        let e: Element = "<presence xmlns='jabber:client' from='r@m/n' type='unavailable' xml:lang='en'>\
            <show>away</show><status>a &amp; b</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' ver='x'/>\
            <x xmlns='urn:x'><y z='1'>t<w/>u</y></x></presence>"
            .parse()
            .unwrap();
        let c = CompactElement::new(&e);
        assert_eq!(c.to_element(), e);
        assert_eq!(c.attr("type"), Some("unavailable"));
        assert_eq!(c.attr("lang"), None);
    }
}
