//! An occupant's presence as the core plans it before building it: the base presence, the
//! `<x/>` templates, what the items say, and who gets which variant. It is a type of the
//! host protocol: the core hands it to a host whose modules change presences
//! ([`crate::hooks::Event::OccupantPresence`]) and builds the deliveries from what they
//! left ([`crate::MucHost::occupant_presence`]; the building is in
//! `room/occupant_presence.rs`).

use crate::affiliation::Affiliation;
use crate::occupant::Occupant;
use jid::{FullJid, Jid};
use minidom::Element;
use std::borrow::Cow;

/// Which `<x/>` a recipient gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// With every session's real JID, and the actor's.
    Full,
    /// The occupant's other nicknames see their own JIDs (as the occupant itself does).
    Own,
    /// Without real JIDs.
    Anonymous,
}

/// What the occupant's own sessions get.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnPresences {
    /// Nothing (a presence sent to one other occupant only).
    Nothing,
    /// The base presence with status 110, to these sessions (the occupant is leaving).
    Base(Vec<Jid>),
    /// Each session its own presence, with status 110.
    Sessions(Vec<(FullJid, Element)>),
}

/// An occupant's presence, planned: the base presence and the templates, what the items
/// say, and who gets which variant.
#[derive(Debug, Clone, PartialEq)]
pub struct OccupantPresence<'a> {
    pub occupant: Cow<'a, Occupant>,
    pub affiliation: Affiliation,
    /// The presence without `<x/>` (stock's `event.stanza`).
    pub stanza: Element,
    /// The template of everyone's `<x/>` (stock's `event.x`).
    pub x: Element,
    /// The template of the occupant's own `<x/>`, when it differs.
    pub own_x: Option<Element>,
    /// The new nick the items name (a nick change).
    pub nick: Option<String>,
    pub actor: Option<Jid>,
    /// The actor's nick in the room, shown to everyone when there is an actor.
    pub actor_nick: Option<String>,
    pub reason: Option<String>,
    /// Recipients, the variant they get, and whether as `unavailable` (the occupant's role
    /// is no longer shown to them).
    pub recipients: Vec<(Vec<Jid>, View, bool)>,
    pub own: OwnPresences,
    /// A broadcast to the room (stock fires `muc-broadcast-presence` for these only).
    pub broadcast: bool,
}
