//! A plain value tree: booleans, numbers, strings and tables with string or integer keys,
//! the shape of what Prosody's storage API keeps and of a Lua table. Stored rooms
//! ([`crate::persist`]), the data modules keep with a room or an affiliation, and what the
//! modules answer travel in it; each host converts it to and from its own values.

use std::collections::BTreeMap;

/// A table key: Lua tables have string and integer keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Int(i64),
    Str(String),
}

impl From<&str> for Key {
    fn from(s: &str) -> Self {
        Key::Str(s.to_owned())
    }
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Table(BTreeMap<Key, Data>),
}

pub type Table = BTreeMap<Key, Data>;

impl Data {
    pub fn str(&self) -> Option<&str> {
        match self {
            Data::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self) -> Option<i64> {
        match self {
            Data::Int(n) => Some(*n),
            Data::Num(f) if f.is_finite() => Some(*f as i64),
            Data::Num(f) if *f > 0.0 => Some(i64::MAX),
            _ => None,
        }
    }
    pub fn truthy(&self) -> bool {
        !matches!(self, Data::Bool(false))
    }
    pub fn table(&self) -> Option<&Table> {
        match self {
            Data::Table(t) => Some(t),
            _ => None,
        }
    }
}
