//! Stanza tables kept for deliveries the core marks repeatable (an occupant's presence in
//! a big room, sent again to every newcomer): the table built the first time is sent
//! again, so a join costs Prosody's delivery and not a new table per occupant.
//!
//! Tables are found by content: a 128-bit hash of the element, keyed at random per process
//! (so no one can craft a presence that collides with another's). A table someone changed
//! after it was sent (children added or removed) is not reused. The cache is emptied when
//! full, which bounds its memory.

use minidom::{Element, Node};
use mlua::Table;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// At most this many tables are kept (each ~1 kB of Lua memory for a presence).
const CAPACITY: usize = 4096;

pub struct StanzaCache {
    tables: HashMap<u128, Kept>,
    keys: (RandomState, RandomState),
}

struct Kept {
    table: Table,
    /// The root's node and element child counts when built.
    nodes: usize,
    children: usize,
}

impl Default for StanzaCache {
    fn default() -> Self {
        StanzaCache { tables: HashMap::new(), keys: (RandomState::new(), RandomState::new()) }
    }
}

impl StanzaCache {
    /// The table kept for `element`, if it still looks as built.
    pub fn get(&self, element: &Element) -> Option<Table> {
        let kept = self.tables.get(&self.key(element))?;
        let intact = kept.table.raw_len() == kept.nodes
            && kept.table.raw_get::<Table>("tags").is_ok_and(|tags| tags.raw_len() == kept.children);
        intact.then(|| kept.table.clone())
    }

    pub fn keep(&mut self, element: &Element, table: &Table) {
        if self.tables.len() >= CAPACITY {
            self.tables.clear();
        }
        let kept = Kept {
            table: table.clone(),
            nodes: element.nodes().count(),
            children: element.children().count(),
        };
        self.tables.insert(self.key(element), kept);
    }

    fn key(&self, element: &Element) -> u128 {
        let (mut a, mut b) = (self.keys.0.build_hasher(), self.keys.1.build_hasher());
        hash_element(element, &mut a);
        hash_element(element, &mut b);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }
}

/// Feeds everything that makes the XML: names, namespaces, attributes, text, structure.
fn hash_element(element: &Element, h: &mut impl Hasher) {
    element.name().hash(h);
    element.ns().hash(h);
    h.write_usize(element.attrs().len());
    for ((ns, name), value) in element.attrs().iter() {
        ns.as_str().hash(h);
        name.as_str().hash(h);
        value.hash(h);
    }
    for node in element.nodes() {
        match node {
            Node::Element(child) => {
                h.write_u8(1);
                hash_element(child, h);
            }
            Node::Text(text) => {
                h.write_u8(2);
                text.hash(h);
            }
        }
    }
    h.write_u8(0);
}
