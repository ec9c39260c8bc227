//! Stanzas and JIDs exchanged with ejabberd as Erlang terms (fxml's `#xmlel{}`), built and
//! read directly: no XML text written on one side to be parsed on the other (that round
//! trip was most of the module's cost per stanza).

use jid::Jid;
use minidom::rxml::{Namespace, NcName};
use minidom::{Element, Node};
use rustler::{Binary, Decoder, Encoder, Env, Term};

mod atoms {
    rustler::atoms! { xmlel, xmlcdata }
}

/// The client namespace a stanza's top element is in (xmpp:decode's default: no `xmlns`).
const NS_CLIENT: &str = "jabber:client";
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Deeper nesting than any stanza has: refused rather than recursed into.
const MAX_DEPTH: usize = 64;

/// A stanza from `xmpp:encode/1`'s `#xmlel{}` (its top element in `jabber:client` unless it
/// says otherwise); `None` if the term is not a well-formed element.
pub fn read_stanza(term: Term) -> Option<Element> {
    read_element(term, NS_CLIENT, 0)
}

fn read_element(term: Term, parent_ns: &str, depth: usize) -> Option<Element> {
    if depth > MAX_DEPTH {
        return None;
    }
    let (tag, name, attrs, children): (rustler::Atom, Binary, Vec<(Binary, Binary)>, Vec<Term>) =
        term.decode().ok()?;
    if tag != atoms::xmlel() {
        return None;
    }
    let name = std::str::from_utf8(name.as_slice()).ok()?;
    NcName::try_from(name).ok()?;
    let text = |bin: &Binary| std::str::from_utf8(bin.as_slice()).ok().map(str::to_owned);
    let ns = match attrs.iter().find(|(key, _)| key.as_slice() == b"xmlns") {
        Some((_, uri)) => text(uri)?,
        None => parent_ns.to_owned(),
    };
    let mut element = Element::bare(name, ns.as_str());
    for (key, value) in &attrs {
        let key = std::str::from_utf8(key.as_slice()).ok()?;
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let (attr_ns, local) = match key.strip_prefix("xml:") {
            Some(local) => (Namespace::from(NS_XML), local),
            None => (Namespace::NONE, key),
        };
        element.attrs_mut().insert(attr_ns, NcName::try_from(local).ok()?, text(value)?);
    }
    for child in children {
        if let Ok((tag, cdata)) = <(rustler::Atom, Binary)>::decode(child) {
            if tag != atoms::xmlcdata() {
                return None;
            }
            element.append_node(Node::Text(text(&cdata)?));
        } else {
            element.append_node(Node::Element(read_element(child, &ns, depth + 1)?));
        }
    }
    Some(element)
}

/// A stanza as fxml's `#xmlel{name, attrs, children}`, ready for `xmpp:decode/3`.
pub fn stanza<'a>(env: Env<'a>, stanza: &Element) -> Term<'a> {
    element(env, stanza, NS_CLIENT)
}

fn element<'a>(env: Env<'a>, element: &Element, parent_ns: &str) -> Term<'a> {
    let ns = element.ns();
    let mut attrs: Vec<(Term<'a>, Term<'a>)> = Vec::with_capacity(element.attrs().len() + 1);
    if ns != parent_ns {
        attrs.push((binary(env, "xmlns"), binary(env, &ns)));
    }
    for ((attr_ns, name), value) in element.attrs().iter() {
        let name = if attr_ns.is_none() {
            binary(env, name.as_str())
        } else if attr_ns.as_str() == NS_XML {
            binary(env, &format!("xml:{}", name.as_str()))
        } else {
            // Attributes in other namespaces: none in what the core sends.
            continue;
        };
        attrs.push((name, binary(env, value)));
    }
    let children: Vec<Term<'a>> = element
        .nodes()
        .map(|node| match node {
            Node::Element(child) => self::element(env, child, &ns),
            Node::Text(text) => (atoms::xmlcdata(), binary(env, text)).encode(env),
        })
        .collect();
    (atoms::xmlel(), binary(env, element.name()), attrs, children).encode(env)
}

/// A recipient as `{User, Server, Resource}` when it is ASCII with a lower-case user and
/// server: then ejabberd's preparation of it is the identity, and the gen_server builds
/// `#jid{}` without running stringprep on every delivery. Anything else as the JID's text,
/// for `jid:decode/1`.
pub fn recipient<'a>(env: Env<'a>, jid: &Jid) -> Term<'a> {
    let user = jid.node().map(|n| n.as_str()).unwrap_or("");
    let server = jid.domain().as_str();
    let prepared = |part: &str| part.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase());
    let resource = jid.resource().map(|r| r.as_str()).unwrap_or("");
    if !(prepared(user) && prepared(server) && resource.is_ascii()) {
        return binary(env, jid.as_str());
    }
    (binary(env, user), binary(env, server), binary(env, resource)).encode(env)
}

pub fn binary<'a>(env: Env<'a>, text: &str) -> Term<'a> {
    let mut bin = rustler::OwnedBinary::new(text.len());
    bin.as_mut_slice().copy_from_slice(text.as_bytes());
    bin.release(env).encode(env)
}
