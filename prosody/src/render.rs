//! Deliveries rendered as XML once, for every recipient.
//!
//! Prosody serializes a stanza per recipient (`tostring`, which walks the table and
//! escapes every value) and renders its opening tag for a debug line (`top_tag`, which
//! clones the root first). A delivery's table carries `muc_rs_rendered`: its XML cut
//! around the value of `to`, so the shim's `tostring` and `top_tag` only splice in the
//! recipient. The record also holds what the stanza looked like (root attributes but
//! `to`, root children) so the shim can tell a table someone changed since, and render
//! that one the usual way.
//!
//! Output is what `util.stanza` writes: `'` quotes, the same five characters escaped,
//! `xmlns` where a namespace differs from the parent's, `<x/>` for empty elements.

use super::convert::Keys;
use minidom::{Element, Node};
use mlua::{Lua, Result as LuaResult, Table, Value};
use muc_rs::xml::NS_CLIENT;

/// `<name attr='v' … to='` and `'>…</name>` (or `'/>`).
pub struct Rendered {
    pub head: String,
    pub tail: String,
}

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// None when an attribute has a namespace other than `xml:` anywhere in the stanza
/// (Prosody writes those with generated prefixes; such stanzas are rendered by Prosody).
fn render(element: &Element) -> Option<Rendered> {
    let mut head = String::with_capacity(128);
    head.push('<');
    head.push_str(element.name());
    if element.ns() != NS_CLIENT {
        push_attribute(&mut head, "", "xmlns", &element.ns());
    }
    push_attributes(&mut head, element, true)?;
    head.push_str(" to='");
    let mut tail = String::with_capacity(256);
    tail.push('\'');
    push_content(&mut tail, element, &element.ns())?;
    Some(Rendered { head, tail })
}

/// Attaches the rendering to `table`, the stanza built from `element`, with the record of
/// its root attributes (but `to`) and children as they are now.
pub fn attach(lua: &Lua, keys: &Keys, table: &Table, element: &Element) -> LuaResult<bool> {
    let Some(rendered) = render(element) else { return Ok(false) };
    let nodes = table.raw_len();
    let record = lua.create_table_with_capacity(nodes, 4)?;
    record.raw_set("head", rendered.head)?;
    record.raw_set("tail", rendered.tail)?;
    let attr: Table = table.raw_get(&keys.attr)?;
    let snapshot = lua.create_table()?;
    let mut count = 0;
    for pair in attr.pairs::<Value, Value>() {
        let (k, v) = pair?;
        if !matches!(&k, Value::String(s) if *s == "to") {
            snapshot.raw_set(k, v)?;
            count += 1;
        }
    }
    record.raw_set("attr", snapshot)?;
    record.raw_set("attrs", count)?;
    for i in 1..=nodes {
        record.raw_set(i, table.raw_get::<Value>(i)?)?;
    }
    table.raw_set(&keys.rendered, record)?;
    Ok(true)
}

fn push_content(out: &mut String, element: &Element, ns: &str) -> Option<()> {
    if element.nodes().next().is_none() {
        out.push_str("/>");
        return Some(());
    }
    out.push('>');
    for node in element.nodes() {
        match node {
            Node::Element(child) => push_element(out, child, ns)?,
            Node::Text(text) => push_escaped(out, text),
        }
    }
    out.push_str("</");
    out.push_str(element.name());
    out.push('>');
    Some(())
}

fn push_element(out: &mut String, element: &Element, parent_ns: &str) -> Option<()> {
    out.push('<');
    out.push_str(element.name());
    let ns = element.ns();
    if ns != parent_ns {
        push_attribute(out, "", "xmlns", &ns);
    }
    push_attributes(out, element, false)?;
    push_content(out, element, &ns)
}

fn push_attributes(out: &mut String, element: &Element, skip_to: bool) -> Option<()> {
    for ((ns, name), value) in element.attrs().iter() {
        if ns.is_none() {
            if !(skip_to && name.as_str() == "to") {
                push_attribute(out, "", name.as_str(), value);
            }
        } else if ns.as_str() == NS_XML {
            push_attribute(out, "xml:", name.as_str(), value);
        } else {
            return None;
        }
    }
    Some(())
}

/// ` prefix:name='value'`.
fn push_attribute(out: &mut String, prefix: &str, name: &str, value: &str) {
    out.push(' ');
    out.push_str(prefix);
    out.push_str(name);
    out.push_str("='");
    push_escaped(out, value);
    out.push('\'');
}

/// As `util.stanza.xml_escape`.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
}
