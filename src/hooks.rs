//! Extension points: where the core lets the host's modules see and change what a room
//! does, as stock mod_muc's `muc-*` events do.
//!
//! The core never calls a module. At an extension point it reads in its facts whether
//! anyone listens ([`Hooks`]); if nobody does, it goes on exactly as without modules. If someone does, it
//! leaves the step to the host as an [`Event`] in its [`Outcome`], in order with the
//! deliveries around it, and the host fires the event, lets its handlers change or take
//! over the step, and carries out what remains (delivering a broadcast, storing history
//! through [`crate::MucHost::add_history`]).
//!
//! Where modules may refuse or change a step before the room takes it (a join, a
//! message), the core cannot go on without their verdict, and Lua handlers may wait
//! (`util.async`) where a call into Rust cannot. So the core *asks*: it stops before
//! changing anything and returns a [`Question`]; the host fires the event and hands the
//! same stanza (as the handlers left it) back with the [`Answer`] in its facts
//! ([`crate::Facts::supply_answer`]). The core then runs again from the start, checking
//! everything anew, and goes past the point with the answer.
//!
//! [`Outcome`]: crate::Outcome

use crate::affiliation::{Affiliation, Role};
use crate::data::Table;
use crate::dataform::Form;
use crate::presence_plan::OccupantPresence;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;

/// An extension point, named by the events it fires on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `muc-broadcast-message`, and inside it `muc-message-is-historic` and `muc-add-history`.
    BroadcastMessage,
    /// `muc-disco#info` on a room.
    DiscoInfo,
    /// `muc-get-history`, when a session joins.
    GetHistory,
    /// `muc-occupant-joined`, `muc-occupant-session-new`, `muc-occupant-left`.
    OccupantLifecycle,
    /// `muc-room-created` (`muc-room-destroyed` is fired by the host, which always hears
    /// of a destroyed room).
    RoomLifecycle,
    /// `muc-room-pre-create`: modules may configure a new room, or refuse it.
    RoomPreCreate,
    /// `muc-occupant-pre-join`: modules may refuse a join, or change its nick and role.
    OccupantPreJoin,
    /// `muc-occupant-pre-change`: modules may refuse a presence update or nick change.
    OccupantPreChange,
    /// `muc-occupant-pre-leave`: modules may hold a leave back (and carry it out later).
    OccupantPreLeave,
    /// `muc-occupant-groupchat`: modules may refuse or change an occupant's message.
    OccupantGroupchat,
    /// The handlers of `muc-occupant-groupchat` above stock's role check (priority 50):
    /// on stock they see every groupchat message to the room first, from non-occupants and
    /// visitors too, and may handle it themselves (Jitsi's visitors, at 55).
    GroupchatFirst,
    /// `muc-private-message`: modules may refuse a private message (blocking it with `false`).
    PrivateMessage,
    /// `muc-set-affiliation`: an affiliation changed.
    AffiliationChanged,
    /// `muc-pre-set-affiliation`: modules may refuse an affiliation change, or give the
    /// data kept with it.
    PreSetAffiliation,
    /// `muc-pre-invite`, `muc-invite`: modules may refuse a mediated invitation, change it,
    /// or send it themselves.
    Invite,
    /// `muc-build-occupant-presence`, `muc-broadcast-presence`: modules may change an
    /// occupant's presence before it goes out.
    OccupantPresence,
    /// `muc-pre-decline`, `muc-decline`: modules may refuse a declined invitation, change
    /// it, or send it themselves.
    Decline,
    /// `muc-registration-submitted` and the `muc-registration-field` items: modules add
    /// fields to the registration form and keep what is submitted in the affiliation data.
    Registration,
    /// `muc-config-form`, `muc-config-submitted` and `muc-config-submitted/<field>` for
    /// every field, the room's own included: modules may add fields, and refuse or change
    /// the room's before the room takes them.
    Config,
}

/// A set of extension points: those at which the host's modules listen ([`crate::Facts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hooks(u32);

impl Hooks {
    pub const NONE: Hooks = Hooks(0);

    pub fn with(self, hook: Hook) -> Hooks {
        Hooks(self.0 | 1 << hook as u32)
    }

    pub fn contains(self, hook: Hook) -> bool {
        self.0 & 1 << hook as u32 != 0
    }
}

impl FromIterator<Hook> for Hooks {
    fn from_iter<I: IntoIterator<Item = Hook>>(hooks: I) -> Hooks {
        hooks.into_iter().fold(Hooks::NONE, Hooks::with)
    }
}

const _: () = assert!(Hook::ALL.len() <= 32, "a hook beyond the Hooks bitset");

impl Hook {
    /// Every extension point.
    pub const ALL: [Hook; 19] = [
        Hook::BroadcastMessage,
        Hook::DiscoInfo,
        Hook::GetHistory,
        Hook::OccupantLifecycle,
        Hook::RoomLifecycle,
        Hook::RoomPreCreate,
        Hook::OccupantPreJoin,
        Hook::OccupantPreChange,
        Hook::OccupantPreLeave,
        Hook::OccupantGroupchat,
        Hook::GroupchatFirst,
        Hook::PrivateMessage,
        Hook::AffiliationChanged,
        Hook::PreSetAffiliation,
        Hook::Invite,
        Hook::OccupantPresence,
        Hook::Decline,
        Hook::Registration,
        Hook::Config,
    ];

    /// The host events whose handlers make this point worth leaving to the host.
    pub fn event_names(self) -> &'static [&'static str] {
        match self {
            Hook::BroadcastMessage => {
                &["muc-broadcast-message", "muc-message-is-historic", "muc-add-history"]
            }
            Hook::DiscoInfo => &["muc-disco#info"],
            Hook::GetHistory => &["muc-get-history"],
            Hook::OccupantLifecycle => {
                &["muc-occupant-joined", "muc-occupant-session-new", "muc-occupant-left"]
            }
            Hook::RoomLifecycle => &["muc-room-created"],
            Hook::Config => CONFIG_EVENTS,
            Hook::RoomPreCreate => &["muc-room-pre-create"],
            Hook::OccupantPreJoin => &["muc-occupant-pre-join"],
            Hook::OccupantPreChange => &["muc-occupant-pre-change"],
            Hook::OccupantPreLeave => &["muc-occupant-pre-leave"],
            Hook::OccupantGroupchat => &["muc-occupant-groupchat"],
            // Not an event of its own: the host counts the handlers above 50 of the one above.
            Hook::GroupchatFirst => &["muc-occupant-groupchat>50"],
            Hook::PrivateMessage => &["muc-private-message"],
            Hook::AffiliationChanged => &["muc-set-affiliation"],
            Hook::PreSetAffiliation => &["muc-pre-set-affiliation"],
            Hook::Invite => &["muc-pre-invite", "muc-invite"],
            Hook::OccupantPresence => &["muc-build-occupant-presence", "muc-broadcast-presence"],
            Hook::Decline => &["muc-pre-decline", "muc-decline"],
            Hook::Registration => &["muc-registration-submitted", "muc-registration-field"],
        }
    }
}

/// The configuration events: with a handler of the event of any of the room's own fields
/// (a module refusing `muc#roomconfig_moderatedroom`), the room asks.
const CONFIG_EVENTS: &[&str] = &[
    "muc-config-form",
    "muc-config-submitted",
    "muc-config-submitted/muc#roomconfig_roomname",
    "muc-config-submitted/muc#roomconfig_roomdesc",
    "muc-config-submitted/muc#roomconfig_lang",
    "muc-config-submitted/muc#roomconfig_persistentroom",
    "muc-config-submitted/muc#roomconfig_publicroom",
    "muc-config-submitted/muc#roomconfig_roomsecret",
    "muc-config-submitted/muc#roomconfig_membersonly",
    "muc-config-submitted/{http://prosody.im/protocol/muc}roomconfig_allowmemberinvites",
    "muc-config-submitted/muc#roomconfig_changesubject",
    "muc-config-submitted/muc#roomconfig_moderatedroom",
    "muc-config-submitted/muc#roomconfig_whois",
    "muc-config-submitted/muc#roomconfig_historylength",
    "muc-config-submitted/muc#roomconfig_defaulthistorymessages",
    "muc-config-submitted/muc#roomconfig_presencebroadcast",
    "muc-config-submitted/muc#roomconfig_allowpm",
    "muc-config-submitted/{xmpp:prosody.im}muc#allow_modpm",
    // MucSub's switch, where the host offers it: one of the room's own fields too.
    "muc-config-submitted/muc#roomconfig_allow_subscription",
];

/// A step the core left to the host, with what the host needs to carry it out.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message (or presence) from the room to `to`. The host fires
    /// `muc-broadcast-message`; unless a handler answers, it asks `muc-message-is-historic`
    /// (the core's answer is `historic`) and then `muc-add-history` (whose last handler is
    /// the room's own history), and delivers the stanza as the handlers left it.
    BroadcastMessage { room: BareJid, stanza: Element, to: Vec<Jid>, historic: bool },
    /// The disco#info reply of a room, to which the host adds `form`, rendered. Handlers
    /// add features to the reply and fields to the form; the host then sends it to `to`.
    DiscoInfo { room: BareJid, reply: Element, form: Form, to: Jid },
    /// The history a joining session asked for; `default` is what the room's own history
    /// gives, in order. A handler may serve another (an archive); the host sends the
    /// result to `to`.
    GetHistory {
        room: BareJid,
        to: FullJid,
        maxchars: Option<f64>,
        maxstanzas: Option<f64>,
        since: Option<i64>,
        default: Vec<Element>,
    },
    /// The owner's configuration form: the reply, to whose query the host adds `form`,
    /// rendered. Handlers add fields; the host then sends it to `to`.
    ConfigForm { room: BareJid, actor: FullJid, reply: Element, form: Form, to: Jid },
    /// A user's first session entered the room as `nick`.
    OccupantJoined { room: BareJid, nick: FullJid, jid: FullJid },
    /// A session joined (or re-joined) the occupant `nick`.
    OccupantSessionNew { room: BareJid, nick: FullJid, jid: FullJid },
    /// The occupant `nick`, of the user `jid`, is no longer in the room; `real_jid` is its
    /// primary session's (stock's `occupant.jid`).
    OccupantLeft { room: BareJid, nick: FullJid, jid: BareJid, real_jid: Option<FullJid> },
    /// An affiliation changed (`in_room`: the user has occupants in the room).
    AffiliationChanged { change: AffiliationChange, in_room: bool },
    /// The invitation the room sends to `to` (the host delivers it unless a handler did).
    Invite { room: BareJid, stanza: Element, to: Jid },
    /// An occupant's presence, planned: the host fires `muc-build-occupant-presence` on its
    /// base presence (and on each of the occupant's own session presences), then, for a
    /// broadcast, `muc-broadcast-presence`; the core builds the deliveries from what the
    /// handlers left ([`crate::MucHost::occupant_presence`]).
    OccupantPresence { room: BareJid, presence: Box<OccupantPresence<'static>> },
    /// One presence of the occupant list a session gets (or of an absent registered user,
    /// `is_occupant` false): the host fires `muc-build-occupant-presence` and sends it to `to`.
    BuildPresence {
        room: BareJid,
        nick: FullJid,
        bare_jid: BareJid,
        is_occupant: bool,
        stanza: Element,
        to: FullJid,
    },
    /// A declined invitation the room passes on to `to` (the host delivers it unless a
    /// handler did).
    Decline { room: BareJid, stanza: Element, to: Vec<Jid> },
    /// The registration form for `user` (`form_type` "form", or "result" with what is kept):
    /// the host adds the modules' fields, rendered, to the query of `reply`, and sends it to
    /// `to`.
    RegistrationForm {
        room: BareJid,
        user: BareJid,
        reply: Element,
        form: Form,
        form_type: &'static str,
        to: Jid,
    },
    /// A room was made (by a join, or by the host's API).
    RoomCreated { room: BareJid },
    /// A room was destroyed, by its owner or because its last occupant left (always
    /// reported: the host may keep things for live rooms; it fires `muc-room-destroyed`
    /// if a module listens).
    RoomDestroyed { room: BareJid },
    /// A live room was put away to storage to make room for another (always reported:
    /// the host may keep things for live rooms).
    RoomEvicted { room: BareJid },
    /// A moderator (XEP-0425), or its sender (XEP-0424), removed the message of the room's
    /// stanza-id `stanza_id` (a number, as ejabberd's are): if the room archives, the host
    /// removes it from the archive (ejabberd's mod_mam `remove_message_from_archive`).
    /// Fired only where rooms take moderation ([`crate::HostConfig::message_moderation`]).
    RemoveArchived { room: BareJid, stanza_id: i64 },
}

/// A step the core will not take before the host's modules have had their say.
#[derive(Debug, Clone, PartialEq)]
pub enum Question {
    /// A join would make the room (which the host's modules see, its creator its owner).
    PreCreate { room: BareJid },
    /// A session asks to join as `nick` (a new occupant if `is_first_session`).
    PreJoin { room: BareJid, nick: FullJid, bare_jid: BareJid, role: Option<Role>, is_first_session: bool },
    /// An occupant's session changes its presence, or its nick from `orig_nick` to `nick`.
    PreChange {
        room: BareJid,
        orig_nick: FullJid,
        nick: FullJid,
        bare_jid: BareJid,
        role: Option<Role>,
        is_first_session: bool,
        is_last_session: bool,
    },
    /// A session of the occupant `nick` leaves (the occupant's last if `is_last_session`).
    PreLeave { room: BareJid, nick: FullJid, bare_jid: BareJid, role: Option<Role>, is_last_session: bool },
    /// The occupant `nick` sends a message to the room; a subject change is asked before the
    /// room takes it, of the handlers above stock's subject step (priority 20) only.
    Groupchat { room: BareJid, nick: FullJid, subject_change: bool },
    /// A groupchat message to the room, before the room's own checks ([`Hook::GroupchatFirst`]):
    /// from the occupant `nick`, or from one who is not in the room (`None`).
    GroupchatFirst { room: BareJid, nick: Option<FullJid> },
    /// `from` invites `invitee` to the room.
    PreInvite { room: BareJid, invitee: Jid },
    /// The occupant `from` sends a private message to the occupant `to`.
    PrivateMessage { room: BareJid, from: FullJid, to: FullJid },
    /// `declinee` is told that an invitation was declined.
    PreDecline { room: BareJid, declinee: Jid },
    /// `user` registers `nick`; the modules may add to the affiliation data it is kept in
    /// (the answer's `data`).
    RegistrationSubmitted { room: BareJid, user: BareJid, nick: String },
    /// `actor` submitted the configuration form (the stanza's), whose fields of the room's
    /// own are those of `layout`: the modules see every field, and may refuse or change the
    /// room's (the answer's `fields`) and add status codes to the notice.
    ConfigSubmitted { room: BareJid, actor: FullJid, layout: Form },
    /// An affiliation would change, with `data` to keep (if any was given).
    PreSetAffiliation { change: AffiliationChange, data: Option<Table> },
}

/// `jid`'s affiliation, changed (or to change) from `previous` to `affiliation`, by
/// `actor` (`None`: the room itself).
#[derive(Debug, Clone, PartialEq)]
pub struct AffiliationChange {
    pub room: BareJid,
    pub actor: Option<Jid>,
    pub jid: BareJid,
    pub affiliation: Affiliation,
    pub previous: Affiliation,
    pub reason: Option<String>,
}

impl Question {
    pub fn room(&self) -> &BareJid {
        match self {
            Question::PreCreate { room }
            | Question::PreJoin { room, .. }
            | Question::PreChange { room, .. }
            | Question::PreLeave { room, .. }
            | Question::Groupchat { room, .. }
            | Question::GroupchatFirst { room, .. }
            | Question::PreInvite { room, .. }
            | Question::PrivateMessage { room, .. }
            | Question::PreDecline { room, .. }
            | Question::RegistrationSubmitted { room, .. }
            | Question::ConfigSubmitted { room, .. } => room,
            Question::PreSetAffiliation { change, .. } => &change.room,
        }
    }

    pub fn hook(&self) -> Hook {
        match self {
            Question::PreCreate { .. } => Hook::RoomPreCreate,
            Question::PreJoin { .. } => Hook::OccupantPreJoin,
            Question::PreChange { .. } => Hook::OccupantPreChange,
            Question::PreLeave { .. } => Hook::OccupantPreLeave,
            Question::Groupchat { .. } => Hook::OccupantGroupchat,
            Question::GroupchatFirst { .. } => Hook::GroupchatFirst,
            Question::PrivateMessage { .. } => Hook::PrivateMessage,
            Question::PreInvite { .. } => Hook::Invite,
            Question::PreDecline { .. } => Hook::Decline,
            Question::RegistrationSubmitted { .. } => Hook::Registration,
            Question::ConfigSubmitted { .. } => Hook::Config,
            Question::PreSetAffiliation { .. } => Hook::PreSetAffiliation,
        }
    }
}

/// The modules' verdict on a [`Question`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A handler refused the step (and answered the sender itself).
    Refused,
    /// Go on; a joining occupant's nick (the resource) or role, if a handler changed them.
    Allowed { nick: Option<String>, role: Option<Option<Role>> },
    /// Go on, keeping this with a registration (the affiliation data the handlers left).
    Registered { data: Table },
    /// Take these of the room's own fields, as the handlers left them (each with the text
    /// of its values, as a form carries them; a field a handler refused is not there), and
    /// add these codes to the notice.
    Configured { fields: Vec<(String, Vec<String>)>, codes: Vec<u16> },
    /// The affiliation change of `jid`: refused with this error (type, condition), or
    /// allowed, keeping `data` (the data given, as the handlers left it, or theirs).
    Affiliation { jid: BareJid, refused: Option<(String, String)>, data: Option<Table> },
}
