//! muc_rs: a multi-user chat service (XEP-0045) whose rules live in Rust.
//!
//! The core is a state machine for one MUC host with no I/O and no Lua: a stanza goes in
//! with the [`Facts`] the core cannot know (the clock, stored records), and either a
//! [`Question`] or an [`Outcome`] comes out: the records to store, the stanzas to send
//! (see [`protocol`]). The hosts are crates of their own: `prosody/` (the Lua module, with
//! the shim in `lua/`) and `ejabberd/nif` (the NIF, with the Erlang module in
//! `ejabberd/src`).

pub mod affiliation;
pub mod cache;
pub mod compact;
pub mod config;
pub mod data;
pub mod dataform;
pub mod hooks;
pub mod host;
pub mod id;
pub mod memory_host;
pub mod occupant;
pub mod ordered_map;
pub mod outcome;
pub mod panic_guard;
pub mod persist;
pub mod presence_plan;
pub mod protocol;
pub mod room;
pub mod xml;

pub use config::{HostConfig, OptionKind, OptionSpec, OptionValue};
pub use hooks::{Event, Hook};
pub use host::{Confirmed, MucHost};
pub use outcome::{Delivery, LogLevel, Outcome};
pub use protocol::{ArchiveSwitch, Facts, Question, Store, StoreReason, StoredRoom};
