//! Committing a call's writes: an outcome with stores is held back until the host has
//! written them and confirms; a failed write puts the rooms back as they were before the
//! call and answers its sender with the error instead (see [`crate::protocol`]).

use super::MucHost;
use crate::outcome::{LogLevel, Outcome};
use crate::protocol::StoreReason;
use crate::room::Undo;
use crate::xml::StanzaError;
use jid::{BareJid, Jid};
use minidom::Element;

/// What [`MucHost::confirm`] gives back.
#[derive(Debug, Default)]
pub struct Confirmed {
    /// What to carry out now.
    pub outcome: Outcome,
    /// The write failed and the change was undone: `outcome` has the error reply instead.
    pub undone: bool,
}

/// An outcome held back until the host has written its stores (see [`crate::protocol`]).
pub(super) struct Unconfirmed {
    outcome: Outcome,
    undo: Undo,
    /// A room this call added to the live ones (made, or brought back from storage).
    added: Option<BareJid>,
    /// The stanza handled, to answer with an error if a write fails.
    stanza: Option<Element>,
    /// The rooms written, for the log.
    rooms: Vec<BareJid>,
    /// Whether a failed write undoes anything (or is only logged).
    undoable: bool,
}

impl MucHost {
    /// An outcome with stores is held back until the host has written them: the host gets
    /// only the stores now, and the rest from [`MucHost::confirm`].
    pub(super) fn hold(
        &mut self,
        mut outcome: Outcome,
        undo: Undo,
        added: Option<BareJid>,
        stanza: Option<&Element>,
    ) -> Outcome {
        if outcome.ask.is_some() {
            // Asked before anything changed, but a room may have been brought back from
            // storage (it is read again from the same facts) and others put away to make
            // space: as they were.
            if let Some(added) = added {
                self.rooms.remove(&added);
            }
            for room in undo.evicted {
                self.rooms.insert(room);
            }
            // A room changed before a later step of the same call asked (a muc#admin
            // set's second item): as it was, for the run with the answer.
            if let Some(before) = undo.changed {
                if self.rooms.contains(&before.jid) {
                    self.rooms.insert(*before);
                }
            }
            return outcome;
        }
        if outcome.stores.is_empty() {
            return outcome;
        }
        let stores = std::mem::take(&mut outcome.stores);
        let undoable = stores.iter().any(|s| matches!(s.why, StoreReason::Change | StoreReason::Evict));
        let rooms = stores.iter().map(|s| s.room.clone()).collect();
        let stanza = stanza.cloned();
        self.unconfirmed = Some(Box::new(Unconfirmed { outcome, undo, added, stanza, rooms, undoable }));
        Outcome { stores, ..Outcome::default() }
    }

    /// The host has written the last outcome's stores (`Ok`), or failed to (`Err`, why):
    /// the rest of that outcome to carry out, or, if the write failed and was undone (the
    /// rooms being as they were before), what to carry out instead (see [`crate::protocol`]).
    pub fn confirm(&mut self, written: Result<(), String>) -> Confirmed {
        let Some(held) = self.unconfirmed.take() else { return Confirmed::default() };
        let Unconfirmed { mut outcome, undo, added, stanza, rooms, undoable } = *held;
        let why = match written {
            Ok(()) => return Confirmed { outcome, undone: false },
            Err(why) => why,
        };
        let rooms = rooms.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
        if !undoable {
            outcome.log(LogLevel::Error, format!("could not write {rooms} to storage: {why}"));
            return Confirmed { outcome, undone: false };
        }
        let mut instead = Outcome { log: outcome.log, ..Outcome::default() };
        instead.log(LogLevel::Error, format!("could not write {rooms} to storage, change undone: {why}"));
        // The rooms put away for space stay; the room that took their place goes again.
        let space_refused = !undo.evicted.is_empty();
        for room in undo.evicted {
            self.rooms.insert(room);
        }
        if space_refused {
            if let Some(added) = &added {
                self.rooms.remove(added);
            }
        }
        if let Some(before) = undo.changed {
            if self.rooms.contains(&before.jid) {
                self.rooms.insert(*before);
            }
        }
        if let Some(stanza) = stanza {
            if space_refused {
                instead.error(&stanza, StanzaError::resource_constraint(), Some(self.domain.as_str()));
            } else if let Some(room) = stanza.attr("to").and_then(|t| t.parse::<Jid>().ok()) {
                let room = room.to_bare();
                instead.error(&stanza, StanzaError::internal_server_error(), Some(room.as_str()));
            }
        }
        Confirmed { outcome: instead, undone: true }
    }

    /// Whether an outcome's stores are being written (handed out, not confirmed yet): a
    /// host whose writes may wait lets the next call that may store wait its turn.
    pub fn awaiting_confirm(&self) -> bool {
        self.unconfirmed.is_some()
    }

    /// A host that handed in the next stanza without confirming: the stores are taken as
    /// written, and what was held back is dropped (a bug in the host, caught in tests).
    pub(super) fn settle_unconfirmed(&mut self) {
        if self.unconfirmed.take().is_some() {
            debug_assert!(false, "the host did not confirm an outcome's stores");
        }
    }
}
