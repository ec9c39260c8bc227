//! An outcome with events being carried out under the shim's loop (see `events.rs`).

use mlua::{Table, UserData};
use muc_rs::hooks::Event;
use muc_rs::outcome::Delivery;
use std::collections::VecDeque;

/// An outcome with events, carried out under the shim's loop so that the events' handlers
/// run in the caller's coroutine, where they may wait (`util.async`). `host:handle`,
/// `host:call`, `host:resume` and `host:confirm` hand it to the shim as
/// `{ carry_out = carrying }` (a call's with its values, `result`); the shim calls
/// `host:next_event(carrying)`, which sends the deliveries up to the next event and
/// returns that event's kind and arguments (nil once everything went out), fires it, and
/// hands the result back with `host:event_done(carrying, pcall(...))`.
///
/// Each carry-out has its own: a handler may route stanzas back into the host, and another
/// stanza's outcome may be carried out while a handler waits.
#[derive(Default)]
pub struct Carrying {
    /// Outcomes being carried out, the innermost last (a finished event may add one: the
    /// room's configuration notice).
    pub(super) stack: Vec<Progress>,
    /// The event handed to the shim and not finished yet, with the tables it gave the
    /// handlers.
    pub(super) firing: Option<(Event, Kept)>,
}

impl UserData for Carrying {}

/// How far an outcome is carried out.
pub(super) struct Progress {
    pub(super) deliveries: Vec<Delivery>,
    pub(super) sent: usize,
    pub(super) events: VecDeque<(usize, Event)>,
}

/// The tables given to an event's handlers that its finishing reads back, as the handlers
/// left them.
pub(super) enum Kept {
    Nothing,
    Stanza(Table),
    Presence { stanza: Table, x: Table, sessions: Table },
}
