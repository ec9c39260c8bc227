//! XML helpers: an incremental XMPP stream parser (bytes in, stanzas out), a fragment parser
//! for script blocks and a compact serializer used both on the wire and in reports.

use std::collections::BTreeMap;

use minidom::tree_builder::TreeBuilder;
use minidom::{Element, Node};
use rxml::error::EndOrError;
use rxml::{Namespace, Parse, RawEvent, RawParser};

use crate::{err, Result};

pub const NS_CLIENT: &str = "jabber:client";
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Namespace bound to the `scansion:` prefix in script blocks (scripts never declare it).
pub const NS_SCANSION: &str = "https://matthewwild.co.uk/projects/scansion";

/// What the stream parser produced.
#[derive(Debug)]
pub enum StreamEvent {
    /// The peer's stream header, with its plain attributes (id, from, version, ...).
    Header(Vec<(String, String)>),
    /// A complete top-level element (a stanza, or a nonza like `<stream:features>`).
    Stanza(Element),
    /// The peer closed its stream (`</stream:stream>`).
    End,
}

/// Push parser for one XMPP stream. A stream restart needs a fresh parser.
pub struct StreamParser {
    raw: RawParser,
    /// Attributes of the stream header while it is being read.
    header: Option<Vec<(String, String)>>,
    in_stream: bool,
    /// Prefixes declared on the stream header, inherited by every stanza.
    prefixes: BTreeMap<Option<String>, String>,
    stanza: Option<TreeBuilder>,
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    pub fn new() -> Self {
        StreamParser {
            raw: RawParser::new(),
            header: None,
            in_stream: false,
            prefixes: BTreeMap::new(),
            stanza: None,
        }
    }

    /// Parses from `buf`, consuming the bytes it uses. `Ok(None)`: more data is needed.
    pub fn parse(&mut self, buf: &mut &[u8]) -> Result<Option<StreamEvent>> {
        loop {
            let ev = match self.raw.parse(buf, false) {
                Ok(Some(ev)) => ev,
                Ok(None) => return Ok(Some(StreamEvent::End)),
                Err(EndOrError::NeedMoreData) => return Ok(None),
                Err(EndOrError::Error(e)) => return Err(err!("malformed XML from server: {e}")),
            };
            if let Some(builder) = self.stanza.as_mut() {
                builder.process_event(ev)?;
                if let Some(el) = builder.root.take() {
                    self.stanza = None;
                    return Ok(Some(StreamEvent::Stanza(el)));
                }
                continue;
            }
            match ev {
                RawEvent::XmlDeclaration(..) => {}
                RawEvent::ElementHeadOpen(..) if !self.in_stream => {
                    self.header = Some(Vec::new());
                }
                RawEvent::Attribute(_, (prefix, name), value) if !self.in_stream => {
                    match (prefix.as_ref().map(|p| p.as_str()), name.as_str()) {
                        (None, "xmlns") => {
                            self.prefixes.insert(None, value);
                        }
                        (Some("xmlns"), p) => {
                            self.prefixes.insert(Some(p.to_owned()), value);
                        }
                        (_, n) => {
                            if let Some(h) = self.header.as_mut() {
                                h.push((n.to_owned(), value));
                            }
                        }
                    }
                }
                RawEvent::ElementHeadClose(_) if !self.in_stream => {
                    self.in_stream = true;
                    return Ok(Some(StreamEvent::Header(self.header.take().unwrap_or_default())));
                }
                RawEvent::ElementHeadOpen(..) => {
                    let mut builder =
                        TreeBuilder::new().with_prefixes_stack(vec![self.prefixes.clone().into()]);
                    builder.process_event(ev)?;
                    self.stanza = Some(builder);
                }
                // Whitespace keepalives between stanzas.
                RawEvent::Text(..) => {}
                RawEvent::ElementFoot(_) => return Ok(Some(StreamEvent::End)),
                RawEvent::Attribute(..) | RawEvent::ElementHeadClose(_) => {
                    return Err(err!("unexpected XML event in stream"));
                }
            }
        }
    }
}

/// Parses a script block: zero or more top-level elements, `jabber:client` by default, with
/// the `scansion:` prefix predeclared.
pub fn parse_fragment(text: &str) -> Result<Vec<Element>> {
    let doc =
        format!("<scansion-block xmlns='{NS_CLIENT}' xmlns:scansion='{NS_SCANSION}'>{text}</scansion-block>");
    let mut root: Element = doc.parse()?;
    strip_indentation(&mut root);
    Ok(root.children().cloned().collect())
}

/// Drops whitespace-only text beside child elements: it is the script's indentation, and
/// sending it would make Prosody echo it back (a MUC reflects presence payloads verbatim).
fn strip_indentation(el: &mut Element) {
    if el.children().next().is_none() {
        return;
    }
    for node in el.take_nodes() {
        match node {
            Node::Text(t) if t.trim().is_empty() => {}
            Node::Element(mut child) => {
                strip_indentation(&mut child);
                el.append_child(child);
            }
            text => el.append_node(text),
        }
    }
}

/// Serializes `el` compactly; `xmlns` appears only where the namespace changes, and the
/// top level is taken to be inside a `jabber:client` stream.
pub fn to_string(el: &Element) -> String {
    let mut out = String::new();
    write_element(&mut out, el, NS_CLIENT);
    out
}

/// Just the start tag of `el`, to name an element in a report.
pub fn start_tag(el: &Element) -> String {
    let mut out = String::new();
    write_start(&mut out, el, NS_CLIENT);
    out.push('>');
    out
}

fn write_element(out: &mut String, el: &Element, parent_ns: &str) {
    let ns = write_start(out, el, parent_ns);
    if el.nodes().next().is_none() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for node in el.nodes() {
        match node {
            Node::Element(child) => write_element(out, child, &ns),
            Node::Text(t) => escape_into(out, t, false),
        }
    }
    out.push_str("</");
    out.push_str(el.name());
    out.push('>');
}

/// Writes `<name attrs...` (unclosed) and returns the element's namespace.
fn write_start(out: &mut String, el: &Element, parent_ns: &str) -> String {
    let ns = el.ns();
    out.push('<');
    out.push_str(el.name());
    if ns != parent_ns {
        push_attr(out, "xmlns", &ns);
    }
    let mut prefixes = 0;
    for ((attr_ns, name), value) in el.attrs() {
        if attr_ns.is_none() {
            push_attr(out, name.as_str(), value);
        } else if *attr_ns == *Namespace::xml() {
            push_attr(out, &format!("xml:{}", name.as_str()), value);
        } else {
            let p = format!("ns{prefixes}");
            prefixes += 1;
            push_attr(out, &format!("xmlns:{p}"), attr_ns.as_str());
            push_attr(out, &format!("{p}:{}", name.as_str()), value);
        }
    }
    ns
}

fn push_attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("='");
    escape_into(out, value, true);
    out.push('\'');
}

fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' if attr => out.push_str("&apos;"),
            '"' if attr => out.push_str("&quot;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            _ => out.push(c),
        }
    }
}

/// Escapes text for use inside XML (attribute values or text).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s, true);
    out
}

/// The `xml:lang` of an element, if it has one.
pub fn attr_xml_lang(el: &Element) -> Option<&str> {
    el.attr_ns(Namespace::xml(), "lang")
}

/// Sets the `xml:lang` of an element.
pub fn set_xml_lang(el: &mut Element, lang: &str) {
    let name = rxml::NcName::try_from("lang").expect("a literal name");
    el.attrs_mut().insert(Namespace::xml().clone(), name, lang.to_owned());
}

/// Sets an attribute of no namespace (`to`, `from`, `type`...).
pub fn set_attr(el: &mut Element, name: &str, value: impl Into<String>) {
    let name = rxml::NcName::try_from(name).expect("attribute names are literals");
    el.attrs_mut().insert(Namespace::none().clone(), name, value.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(p: &mut StreamParser, data: &[u8]) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        // Feed byte by byte to prove the parser copes with arbitrary splits.
        let mut pending: Vec<u8> = Vec::new();
        for b in data {
            pending.push(*b);
            let mut slice = &pending[..];
            while let Some(ev) = p.parse(&mut slice).unwrap() {
                out.push(ev);
            }
            let used = pending.len() - slice.len();
            pending.drain(..used);
        }
        out
    }

    #[test]
    fn stream_parser_splits_stanzas() {
        let mut p = StreamParser::new();
        let data = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost'>\
            <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features> \
            <message from='a@b'><body>hi &amp; bye</body></message></stream:stream>";
        let evs = feed_all(&mut p, data);
        assert_eq!(evs.len(), 4);
        match &evs[0] {
            StreamEvent::Header(attrs) => {
                assert!(attrs.contains(&("id".to_owned(), "abc".to_owned())))
            }
            e => panic!("{e:?}"),
        }
        match &evs[1] {
            StreamEvent::Stanza(el) => assert!(el.is("features", NS_STREAM)),
            e => panic!("{e:?}"),
        }
        match &evs[2] {
            StreamEvent::Stanza(el) => {
                assert!(el.is("message", NS_CLIENT));
                assert_eq!(el.get_child("body", NS_CLIENT).unwrap().text(), "hi & bye");
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(evs[3], StreamEvent::End));
    }

    #[test]
    fn serializer_is_compact_and_escapes() {
        let els = parse_fragment(
            "<iq type='set' id='a&amp;b'><query xmlns='urn:x'><item jid=\"x'y\"/></query></iq>",
        )
        .unwrap();
        assert_eq!(
            to_string(&els[0]),
            "<iq id='a&amp;b' type='set'><query xmlns='urn:x'><item jid='x&apos;y'/></query></iq>"
        );
    }

    #[test]
    fn fragment_with_several_elements_and_scansion_prefix() {
        let els = parse_fragment("\n\t<a/>\n\t<b scansion:strict='true'/>\n").unwrap();
        assert_eq!(els.len(), 2);
        assert_eq!(els[1].attr_ns(NS_SCANSION, "strict"), Some("true"));
    }

    #[test]
    fn fragment_drops_indentation_but_keeps_text() {
        let els = parse_fragment("<m>\n\t<body> hi </body>\n\t<x>\n\t</x>\n</m>").unwrap();
        assert_eq!(to_string(&els[0]), "<m><body> hi </body><x>\n\t</x></m>");
    }
}
