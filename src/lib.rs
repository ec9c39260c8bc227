//! muc_rs: a multi-user chat service (XEP-0045) whose rules live in Rust.
//!
//! The core is a state machine for one MUC host with no I/O and no Lua: a stanza goes in
//! (with the facts the core cannot know, through [`Env`]), and the stanzas to send come out
//! as an [`Outcome`]. Prosody-specific code lives only in [`binding`] (mlua, built with the
//! default `module` feature) and in the Lua shim `lua/mod_muc_rs.lua`.

pub mod affiliation;
pub mod cache;
pub mod compact;
pub mod config;
pub mod dataform;
pub mod env;
pub mod hooks;
pub mod host;
pub mod id;
pub mod occupant;
pub mod ordered_map;
pub mod outcome;
pub mod panic_guard;
pub mod persist;
pub mod room;
pub mod xml;

#[cfg(feature = "module")]
pub mod binding;

pub use config::{HostConfig, OptionKind, OptionSpec, OptionValue};
pub use env::Env;
pub use hooks::{Event, Hook};
pub use host::MucHost;
pub use outcome::{Delivery, LogLevel, Outcome};
