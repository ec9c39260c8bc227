//! Stanzas kept for a long time (each session's last presence) in a compact form:
//! a `minidom::Element` spends kilobytes on maps for a few attributes, which made the
//! stored presences most of a room's memory. Converted back when a stanza is sent.

use crate::xml::{attr_key, set_attr_key, NS_CLIENT};
use minidom::{Element, Node};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactElement {
    name: Box<str>,
    /// `None` when the same as the parent's (for the root: `jabber:client`).
    ns: Option<Box<str>>,
    /// Keys as Prosody names them (`name`, `xml:lang`, `uri\u{1}name`).
    attrs: Box<[(Box<str>, Box<str>)]>,
    children: Box<[CompactNode]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum CompactNode {
    Element(CompactElement),
    Text(Box<str>),
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
            name: e.name().into(),
            ns: (ns != parent_ns).then(|| ns.into_boxed_str()),
            attrs: e
                .attrs()
                .iter()
                .map(|((ans, name), v)| (attr_key(ans, name).into(), v.as_str().into()))
                .collect(),
            children,
        }
    }

    pub fn to_element(&self) -> Element {
        self.build(NS_CLIENT)
    }

    fn build(&self, parent_ns: &str) -> Element {
        let ns = self.ns.as_deref().unwrap_or(parent_ns);
        let mut e = Element::bare(&*self.name, ns);
        for (k, v) in self.attrs.iter() {
            set_attr_key(&mut e, k, v);
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
        self.attrs.iter().find(|(k, _)| &**k == name).map(|(_, v)| &**v)
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
