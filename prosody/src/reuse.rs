//! Stanza tables kept for deliveries the core marks repeatable (an occupant's presence in
//! a big room's occupant list, sent again to every newcomer): the table built the first
//! time is sent again, so a join costs Prosody's delivery and not a new table per occupant.
//!
//! Tables are found by content: a 128-bit hash of the element, keyed at random per process
//! (so no one can craft a presence that collides with another's). A table someone changed
//! after it was sent (children added or removed) is not reused.
//!
//! Two generations bound the memory: tables go into the young one; when it is full it
//! becomes the old one and the previous old one is dropped; a table found in the old one
//! moves back. What a list uses stays; the presences of those who left age out. A
//! generation holds twice the longest occupant list seen, so a whole list fits.

use minidom::{Element, Node};
use mlua::Table;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// The smallest generation.
const MIN_GENERATION: usize = 256;

pub struct StanzaCache {
    young: HashMap<u128, Kept>,
    old: HashMap<u128, Kept>,
    generation: usize,
    keys: (RandomState, RandomState),
}

struct Kept {
    table: Table,
    /// The root's node and element child counts when built.
    nodes: usize,
    children: usize,
}

impl Kept {
    fn intact(&self) -> bool {
        self.table.raw_len() == self.nodes
            && self.table.raw_get::<Table>("tags").is_ok_and(|tags| tags.raw_len() == self.children)
    }
}

impl Default for StanzaCache {
    fn default() -> Self {
        StanzaCache {
            young: HashMap::new(),
            old: HashMap::new(),
            generation: MIN_GENERATION,
            keys: (RandomState::new(), RandomState::new()),
        }
    }
}

impl StanzaCache {
    /// One outcome is about to deliver `count` repeatable stanzas (an occupant list).
    pub fn expect(&mut self, count: usize) {
        self.generation = self.generation.max(2 * count);
    }

    /// The table kept under `key` (see [`StanzaCache::key`]), if it still looks as built.
    pub fn get(&mut self, key: u128) -> Option<Table> {
        if let Some(kept) = self.young.get(&key) {
            return kept.intact().then(|| kept.table.clone());
        }
        let kept = self.old.remove(&key).filter(Kept::intact)?;
        let table = kept.table.clone();
        self.put(key, kept);
        Some(table)
    }

    /// Keeps `table`, built from `element`, under `key`.
    pub fn keep(&mut self, key: u128, element: &Element, table: &Table) {
        let kept = Kept {
            table: table.clone(),
            nodes: element.nodes().count(),
            children: element.children().count(),
        };
        self.put(key, kept);
    }

    fn put(&mut self, key: u128, kept: Kept) {
        if self.young.len() >= self.generation {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, kept);
    }

    /// The content hash `element`'s table is kept under.
    pub fn key(&self, element: &Element) -> u128 {
        let mut both = Both(self.keys.0.build_hasher(), self.keys.1.build_hasher());
        hash_element(element, &mut both);
        (u128::from(both.0.finish()) << 64) | u128::from(both.1.finish())
    }
}

/// Two independently keyed hashers fed in one walk of the element.
struct Both<H>(H, H);

impl<H: Hasher> Hasher for Both<H> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
        self.1.write(bytes);
    }

    /// The first's; `key` reads both.
    fn finish(&self) -> u64 {
        self.0.finish()
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
