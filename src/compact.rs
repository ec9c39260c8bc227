//! Stanzas kept for a long time (each session's last presence) in a compact form:
//! a `minidom::Element` spends kilobytes on maps for a few attributes, which made the
//! stored presences most of a room's memory. Converted back when a stanza is sent.

use crate::xml::{attr_key, set_attr_key, NS_CLIENT, NS_OCCUPANT_ID};
use minidom::{Element, Node};

/// A `<presence/>` of the client namespace (as Prosody hands stanzas to the component),
/// kept as its attributes and children: the root's name and namespace are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactPresence {
    attrs: Box<[(Word, Box<str>)]>,
    children: Box<[CompactNode]>,
}

impl CompactPresence {
    pub fn new(presence: &Element) -> Self {
        CompactPresence { attrs: compact_attrs(presence), children: compact_children(presence, NS_CLIENT) }
    }

    pub fn to_element(&self) -> Element {
        let mut e = Element::bare("presence", NS_CLIENT);
        fill(&mut e, &self.attrs, &self.children, NS_CLIENT);
        e
    }

    /// A top-level attribute without a namespace.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| &**v)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CompactElement {
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
    fn new(e: &Element, parent_ns: &str) -> Self {
        let ns = e.ns();
        CompactElement {
            name: Word::new(e.name()),
            ns: (ns != parent_ns).then(|| Word::new(&ns)),
            attrs: compact_attrs(e),
            children: compact_children(e, &ns),
        }
    }

    fn build(&self, parent_ns: &str) -> Element {
        let ns = self.ns.as_ref().map_or(parent_ns, Word::as_str);
        let mut e = Element::bare(self.name.as_str(), ns);
        fill(&mut e, &self.attrs, &self.children, ns);
        e
    }
}

fn compact_attrs(e: &Element) -> Box<[(Word, Box<str>)]> {
    e.attrs().iter().map(|((ans, name), v)| (Word::new(&attr_key(ans, name)), v.as_str().into())).collect()
}

fn compact_children(e: &Element, ns: &str) -> Box<[CompactNode]> {
    e.nodes()
        .map(|node| match node {
            Node::Element(c) => CompactNode::Element(CompactElement::new(c, ns)),
            Node::Text(t) => CompactNode::Text(t.as_str().into()),
        })
        .collect()
}

/// Gives `e` (in namespace `ns`) its attributes and children back.
fn fill(e: &mut Element, attrs: &[(Word, Box<str>)], children: &[CompactNode], ns: &str) {
    for (k, v) in attrs {
        set_attr_key(e, k.as_str(), v);
    }
    for child in children {
        match child {
            CompactNode::Element(c) => {
                e.append_child(c.build(ns));
            }
            CompactNode::Text(t) => e.append_text_node(&**t),
        }
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
        let c = CompactPresence::new(&e);
        assert_eq!(c.to_element(), e);
        assert_eq!(c.attr("type"), Some("unavailable"));
        assert_eq!(c.attr("lang"), None);
    }
}
