//! Prosody stanza tables ⇄ `minidom::Element`, directly (no XML text in between).
//!
//! A Prosody stanza is a table `{ name = "x", attr = { … }, tags = { <element children> },
//! [1..n] = <children and text strings, in order> }` with `util.stanza`'s metatable.
//! Namespaces live in `attr.xmlns` and are inherited by children that have none; the root
//! of a stanza from a client has none and means `jabber:client`. Attribute keys are plain
//! names, `xml:lang` (and `xml:space` …) for the XML namespace, and `"uri\1name"` for any
//! other namespaced attribute.

use minidom::rxml::{Namespace, NcName};
use minidom::{Element, Node};
use mlua::{Lua, LuaString, Result as LuaResult, Table, Value};
use muc_rs::xml::NS_CLIENT;

/// The XML namespace (`xml:` prefix), always bound.
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Deeper nesting than this is rejected (it also stops a table that contains itself).
const MAX_DEPTH: usize = 128;

/// Interned Lua strings for the keys every stanza table uses, created once per host so the
/// hot path pushes a reference instead of hashing the key again.
pub struct Keys {
    pub name: LuaString,
    pub attr: LuaString,
    pub tags: LuaString,
    pub xmlns: LuaString,
    pub to: LuaString,
    pub top_tag: LuaString,
    pub rendered: LuaString,
}

impl Keys {
    pub fn new(lua: &Lua) -> LuaResult<Keys> {
        Ok(Keys {
            name: lua.create_string("name")?,
            attr: lua.create_string("attr")?,
            tags: lua.create_string("tags")?,
            xmlns: lua.create_string("xmlns")?,
            to: lua.create_string("to")?,
            top_tag: lua.create_string("top_tag")?,
            rendered: lua.create_string("muc_rs_rendered")?,
        })
    }
}

/// Why a stanza table could not be converted (shown in the log, never to the client).
pub type Malformed = String;

/// Reads a stanza table into an element. The root's namespace defaults to `jabber:client`.
/// Errors from the Lua API (there should be none: only raw reads) count as malformed too.
pub fn element_from_table(keys: &Keys, table: &Table) -> Result<Element, Malformed> {
    read_element(keys, table, NS_CLIENT, 0)
}

fn read_element(keys: &Keys, table: &Table, parent_ns: &str, depth: usize) -> Result<Element, Malformed> {
    if depth > MAX_DEPTH {
        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
    }
    let name = match table.raw_get::<Value>(&keys.name) {
        Ok(Value::String(s)) => s,
        Ok(other) => return Err(format!("element name is a {}", other.type_name())),
        Err(e) => return Err(e.to_string()),
    };
    let name = name.to_str().map_err(|_| "element name is not UTF-8".to_owned())?;
    if NcName::try_from(&*name).is_err() {
        return Err(format!("invalid element name {:?}", &*name));
    }
    let attr = match table.raw_get::<Value>(&keys.attr) {
        Ok(Value::Table(t)) => Some(t),
        Ok(Value::Nil) => None,
        Ok(other) => return Err(format!("<{}> attr is a {}", &*name, other.type_name())),
        Err(e) => return Err(e.to_string()),
    };
    let ns = match &attr {
        Some(attr) => match attr.raw_get::<Value>(&keys.xmlns) {
            Ok(Value::String(s)) => s.to_str().map_err(|_| "xmlns is not UTF-8".to_owned())?.to_owned(),
            Ok(Value::Nil) => parent_ns.to_owned(),
            Ok(other) => return Err(format!("<{}> xmlns is a {}", &*name, other.type_name())),
            Err(e) => return Err(e.to_string()),
        },
        None => parent_ns.to_owned(),
    };
    let mut element = Element::bare(&*name, ns.as_str());
    if let Some(attr) = attr {
        read_attributes(&mut element, &attr)?;
    }
    let len = table.raw_len();
    for i in 1..=len {
        match table.raw_get::<Value>(i) {
            Ok(Value::String(text)) => {
                let text = text.to_str().map_err(|_| format!("text in <{}> is not UTF-8", &*name))?;
                element.append_node(Node::Text(text.to_owned()));
            }
            Ok(Value::Table(child)) => {
                let child = read_element(keys, &child, &ns, depth + 1)?;
                element.append_node(Node::Element(child));
            }
            Ok(other) => return Err(format!("child #{i} of <{}> is a {}", &*name, other.type_name())),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(element)
}

fn read_attributes(element: &mut Element, attr: &Table) -> Result<(), Malformed> {
    for pair in attr.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| e.to_string())?;
        let key = match key {
            Value::String(k) => k,
            other => return Err(format!("attribute key is a {}", other.type_name())),
        };
        let key = key.to_str().map_err(|_| "attribute name is not UTF-8".to_owned())?;
        if &*key == "xmlns" || key.starts_with("xmlns:") {
            // The element's own namespace, or a prefix declaration (meaningless here).
            continue;
        }
        let value = match value {
            Value::String(v) => {
                v.to_str().map_err(|_| format!("attribute {:?} is not UTF-8", &*key))?.to_owned()
            }
            Value::Integer(n) => n.to_string(),
            Value::Number(n) => n.to_string(),
            other => return Err(format!("attribute {:?} is a {}", &*key, other.type_name())),
        };
        let (ns, local) = if let Some(local) = key.strip_prefix("xml:") {
            (Namespace::from(NS_XML), local)
        } else if let Some((uri, local)) = key.split_once('\u{1}') {
            (Namespace::from(uri.to_owned()), local)
        } else {
            (Namespace::NONE, &*key)
        };
        let local = NcName::try_from(local).map_err(|_| format!("invalid attribute name {:?}", &*key))?;
        element.attrs_mut().insert(ns, local, value);
    }
    Ok(())
}

/// Builds a Prosody stanza table from an element: `stanza_mt` on it and on every child,
/// `attr.xmlns` only where the namespace differs from the parent's (the root's parent being
/// `jabber:client`), children and text in the array part, element children in `tags`.
/// The root has room for two more fields (a delivery's `top_tag` and `muc_rs_rendered`).
pub fn table_from_element(lua: &Lua, keys: &Keys, stanza_mt: &Table, element: &Element) -> LuaResult<Table> {
    write_element(lua, keys, stanza_mt, element, NS_CLIENT, 5)
}

fn write_element(
    lua: &Lua,
    keys: &Keys,
    mt: &Table,
    element: &Element,
    parent_ns: &str,
    fields: usize,
) -> LuaResult<Table> {
    let nodes = element.nodes().len();
    let table = lua.create_table_with_capacity(nodes, fields)?;
    table.raw_set(&keys.name, element.name())?;

    let ns = element.ns();
    let xmlns = (ns != parent_ns) as usize;
    let attrs = element.attrs();
    let attr = lua.create_table_with_capacity(0, attrs.len() + xmlns)?;
    if xmlns == 1 {
        attr.raw_set(&keys.xmlns, ns.as_str())?;
    }
    for ((attr_ns, local), value) in attrs.iter() {
        if attr_ns.is_none() {
            attr.raw_set(local.as_str(), value.as_str())?;
        } else if attr_ns.as_str() == NS_XML {
            attr.raw_set(format!("xml:{}", local.as_str()), value.as_str())?;
        } else {
            attr.raw_set(format!("{}\u{1}{}", attr_ns.as_str(), local.as_str()), value.as_str())?;
        }
    }
    table.raw_set(&keys.attr, attr)?;

    let children = element.children().count();
    let tags = lua.create_table_with_capacity(children, 0)?;
    let (mut i, mut t) = (0, 0);
    for node in element.nodes() {
        i += 1;
        match node {
            Node::Element(child) => {
                let child = write_element(lua, keys, mt, child, &ns, 3)?;
                t += 1;
                tags.raw_seti(t, &child)?;
                table.raw_seti(i, child)?;
            }
            Node::Text(text) => table.raw_seti(i, text.as_str())?,
        }
    }
    table.raw_set(&keys.tags, tags)?;
    table.set_metatable(Some(mt.clone()))?;
    Ok(table)
}
