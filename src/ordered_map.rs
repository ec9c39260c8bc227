//! A map that keeps insertion order, for a room's lists (affiliations): most rooms list a
//! few JIDs, where a vector searched in order costs a fraction of a hash map's memory;
//! from `INDEXED_FROM` entries a hash index keeps lookups O(1) for rooms with long lists.
//! The same policy serves `room::occupants`.

use std::collections::HashMap;
use std::hash::Hash;

/// Lists from this length on keep a hash index.
pub(crate) const INDEXED_FROM: usize = 16;

/// Whether a list shrunk to `len` keeps its index: not below half the threshold
/// (hysteresis: a list hovering around it does not rebuild each time).
pub(crate) fn keeps_index(len: usize) -> bool {
    len >= INDEXED_FROM / 2
}

/// Pushes onto a list that grows one slot at a time while small (most stay small), and
/// doubles once big.
pub(crate) fn push_sparingly<T>(list: &mut Vec<T>, item: T) {
    if list.len() == list.capacity() && list.len() < INDEXED_FROM {
        list.reserve_exact(1);
    }
    list.push(item);
}

#[derive(Debug, Clone)]
pub struct OrderedMap<K, V> {
    entries: Vec<(K, V)>,
    /// Boxed: a map that has none costs one word, not a hash map's inline size.
    index: Option<Box<Index<K>>>,
}

/// Positions in `entries`, for big maps.
#[derive(Debug, Clone)]
struct Index<K>(HashMap<K, usize>);

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap { entries: Vec::new(), index: None }
    }
}

impl<K: Hash + Eq + Clone, V> OrderedMap<K, V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &K) -> Option<usize> {
        match &self.index {
            Some(index) => index.0.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).map(|at| &self.entries[at].1)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.position(key).is_some()
    }

    /// In insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Sets the value for `key`: in place if it is there, last otherwise.
    pub fn insert(&mut self, key: K, value: V) {
        if let Some(at) = self.position(&key) {
            self.entries[at].1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.0.insert(key.clone(), self.entries.len());
        }
        push_sparingly(&mut self.entries, (key, value));
        if self.index.is_none() && self.entries.len() >= INDEXED_FROM {
            self.reindex();
        }
    }

    /// Removes `key`, keeping the others' order.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let at = self.position(key)?;
        let (_, value) = self.entries.remove(at);
        if self.index.is_some() {
            self.reindex();
        }
        Some(value)
    }

    fn reindex(&mut self) {
        self.index = keeps_index(self.entries.len()).then(|| {
            Box::new(Index(self.entries.iter().enumerate().map(|(at, (k, _))| (k.clone(), at)).collect()))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same answers below and above the size where the index starts.
    #[test]
    fn keeps_order_and_finds_small_and_big() {
        for n in [3usize, 15, 16, 40] {
            let mut map = OrderedMap::default();
            for i in 0..n {
                map.insert(format!("k{i}"), i);
            }
            assert_eq!(map.len(), n);
            assert_eq!(map.get(&"k2".to_owned()), Some(&2));
            assert_eq!(map.get(&format!("k{}", n - 1)), Some(&(n - 1)));
            assert!(!map.contains_key(&"missing".to_owned()));

            // Setting a present key keeps its place.
            map.insert("k1".to_owned(), 100);
            assert_eq!(map.iter().nth(1), Some((&"k1".to_owned(), &100)));
            assert_eq!(map.len(), n);

            // Removing keeps the others' order and finds them still.
            assert_eq!(map.remove(&"k0".to_owned()), Some(0));
            assert_eq!(map.remove(&"k0".to_owned()), None);
            assert_eq!(map.iter().next().map(|(k, _)| k.as_str()), Some("k1"));
            assert_eq!(map.get(&"k2".to_owned()), Some(&2));
            let keys: Vec<usize> = map.iter().map(|(_, v)| *v).collect();
            let mut expected: Vec<usize> = (1..n).collect();
            expected[0] = 100;
            assert_eq!(keys, expected);

            // Back down below the threshold, then up again.
            for i in 2..n {
                map.remove(&format!("k{i}"));
            }
            assert_eq!(map.len(), 1);
            for i in 0..n {
                map.insert(format!("j{i}"), i);
            }
            assert_eq!(map.get(&format!("j{}", n - 1)), Some(&(n - 1)));
            assert_eq!(map.get(&"k1".to_owned()), Some(&100));
        }
    }
}
