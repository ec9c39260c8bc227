//! The generated cases: every (room kind × actor × target × requested change) that can be set
//! up, enumerated from the value lists below. Nothing is picked by hand; [`feasible`] only drops
//! states that cannot exist (an outcast in the room, a non-member in a members-only room, the
//! service admin as both actor and target).

use std::fmt;

/// A room affiliation, as set in the room's list (service admins come on top, see [`Kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Aff {
    Owner,
    Admin,
    Member,
    None,
    Outcast,
}

impl Aff {
    pub const ALL: [Aff; 5] = [Aff::Owner, Aff::Admin, Aff::Member, Aff::None, Aff::Outcast];

    pub fn as_str(self) -> &'static str {
        match self {
            Aff::Owner => "owner",
            Aff::Admin => "admin",
            Aff::Member => "member",
            Aff::None => "none",
            Aff::Outcast => "outcast",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Moderator,
    Participant,
    Visitor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Moderator, Role::Participant, Role::Visitor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
        }
    }
}

/// Who a party is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A user whose room affiliation is set to this by the room's creator before the case.
    User(Aff),
    /// `admin@localhost`, listed in the server's `admins`, with no room affiliation of its own.
    ServiceAdmin,
    /// The room's creator (its only listed owner) acting itself.
    Creator,
}

impl Kind {
    pub const ACTORS: [Kind; 7] = [
        Kind::User(Aff::Owner),
        Kind::User(Aff::Admin),
        Kind::User(Aff::Member),
        Kind::User(Aff::None),
        Kind::User(Aff::Outcast),
        Kind::ServiceAdmin,
        Kind::Creator,
    ];
    pub const TARGETS: [Kind; 6] = [
        Kind::User(Aff::Owner),
        Kind::User(Aff::Admin),
        Kind::User(Aff::Member),
        Kind::User(Aff::None),
        Kind::User(Aff::Outcast),
        Kind::ServiceAdmin,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::User(a) => a.as_str(),
            Kind::ServiceAdmin => "service-admin",
            Kind::Creator => "creator",
        }
    }
}

/// A party's state when the request is sent: who, and its role (`None`: not in the room).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Party {
    pub kind: Kind,
    pub role: Option<Role>,
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.label(), self.role.map_or("absent", Role::as_str))
    }
}

/// The room's configuration for the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Defaults: open, unmoderated, semi-anonymous.
    Open,
    /// `muc#roomconfig_moderatedroom`: unaffiliated users join as visitors.
    Moderated,
    /// `muc#roomconfig_membersonly`.
    MembersOnly,
    /// `muc#roomconfig_whois` = anyone: every occupant sees real JIDs.
    NonAnonymous,
}

impl Variant {
    pub const ALL: [Variant; 4] =
        [Variant::Open, Variant::Moderated, Variant::MembersOnly, Variant::NonAnonymous];

    pub fn label(self) -> &'static str {
        match self {
            Variant::Open => "open",
            Variant::Moderated => "moderated",
            Variant::MembersOnly => "members-only",
            Variant::NonAnonymous => "non-anonymous",
        }
    }

    pub fn parse(s: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.label() == s)
    }

    /// Config form fields the creator submits (none for the defaults).
    pub fn fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Variant::Open => &[],
            Variant::Moderated => &[("muc#roomconfig_moderatedroom", "1")],
            Variant::MembersOnly => &[("muc#roomconfig_membersonly", "1")],
            Variant::NonAnonymous => &[("muc#roomconfig_whois", "anyone")],
        }
    }
}

/// The muc#admin request the actor sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Change {
    /// `<item affiliation=.. jid=target-bare>`
    Affiliation(Aff),
    /// `<item role=.. nick=target-nick>`; `None` is role `none` (a kick).
    Role(Option<Role>),
    /// `<item affiliation=.. nick=target-nick>` without a JID (stock's compatibility path).
    AffiliationByNick(Aff),
    /// `<item role=.. jid=target-bare>` without a nick.
    RoleByJid(Option<Role>),
}

const ROLES_AND_NONE: [Option<Role>; 4] =
    [Some(Role::Moderator), Some(Role::Participant), Some(Role::Visitor), None];

impl Change {
    /// The standard forms: each affiliation by JID, each role by nick.
    pub fn all() -> Vec<Change> {
        let mut v: Vec<Change> = Aff::ALL.into_iter().map(Change::Affiliation).collect();
        v.extend(ROLES_AND_NONE.into_iter().map(Change::Role));
        v
    }

    /// The other addressing: each affiliation by nick, each role by JID.
    pub fn other_forms() -> Vec<Change> {
        let mut v: Vec<Change> = Aff::ALL.into_iter().map(Change::AffiliationByNick).collect();
        v.extend(ROLES_AND_NONE.into_iter().map(Change::RoleByJid));
        v
    }

    pub fn is_affiliation(self) -> bool {
        matches!(self, Change::Affiliation(_) | Change::AffiliationByNick(_))
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Affiliation(a) => write!(f, "affiliation={}", a.as_str()),
            Change::Role(r) => write!(f, "role={}", r.map_or("none", Role::as_str)),
            Change::AffiliationByNick(a) => write!(f, "affiliation={} by-nick", a.as_str()),
            Change::RoleByJid(r) => write!(f, "role={} by-jid", r.map_or("none", Role::as_str)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Case {
    pub variant: Variant,
    pub actor: Party,
    /// `None`: the actor targets itself.
    pub target: Option<Party>,
    pub change: Change,
    /// Whether service admins own every room (`component_admins_as_room_owners`).
    pub admins_owners: bool,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} actor={} target=", self.variant.label(), self.actor)?;
        match self.target {
            Some(t) => write!(f, "{t}")?,
            None => f.write_str("self")?,
        }
        write!(f, " {}", self.change)?;
        if !self.admins_owners {
            f.write_str(" (admins not owners)")?;
        }
        Ok(())
    }
}

/// The role a party gets on joining, before any role change.
pub fn default_role(kind: Kind, variant: Variant, admins_owners: bool) -> Role {
    match kind {
        Kind::ServiceAdmin if !admins_owners => default_role(Kind::User(Aff::None), variant, false),
        Kind::User(Aff::Owner | Aff::Admin) | Kind::ServiceAdmin | Kind::Creator => Role::Moderator,
        Kind::User(Aff::None) if variant == Variant::Moderated => Role::Visitor,
        Kind::User(_) => Role::Participant,
    }
}

/// Whether the state can be set up at all.
fn feasible(p: Party, variant: Variant, admins_owners: bool) -> bool {
    match (p.kind, p.role) {
        (Kind::ServiceAdmin, Some(_)) => admins_owners || variant != Variant::MembersOnly,
        // The creator sets the case up from inside the room.
        (Kind::Creator, None) => false,
        (_, None) => true,
        (Kind::User(Aff::Outcast), Some(_)) => false,
        (Kind::User(Aff::None), Some(_)) => variant != Variant::MembersOnly,
        (_, Some(_)) => true,
    }
}

/// How much of the product to generate for a room kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Every role for every present party.
    Full,
    /// Parties only in the role they join with; the target may also be absent (the actor
    /// always is present). The room kind changes default roles, kicks and JID visibility,
    /// not who may change whose role, which the full product on the open room covers.
    DefaultRoles,
}

fn parties(kinds: &[Kind], variant: Variant, depth: Depth, absent: bool, admins_owners: bool) -> Vec<Party> {
    let mut out = Vec::new();
    for &kind in kinds {
        for role in std::iter::once(None).chain(Role::ALL.map(Some)) {
            let p = Party { kind, role };
            let wanted = depth == Depth::Full
                || (role.is_none() && absent)
                || role == Some(default_role(kind, variant, admins_owners));
            if wanted && feasible(p, variant, admins_owners) {
                out.push(p);
            }
        }
    }
    out
}

/// Every case for the given room kinds, in a stable order: the standard request forms
/// ([`Change::all`]) over the full product for [`Variant::Open`] (and for all kinds when
/// `full`), over [`Depth::DefaultRoles`] for the others; then the other addressing forms
/// ([`Change::other_forms`]) over the open room's [`Depth::DefaultRoles`] (full when `full`).
/// `admins_owners` is the servers' `component_admins_as_room_owners`.
pub fn generate(variants: &[Variant], full: bool, admins_owners: bool) -> Vec<Case> {
    let mut cases = Vec::new();
    for &variant in variants {
        let depth = if full || variant == Variant::Open { Depth::Full } else { Depth::DefaultRoles };
        product(&mut cases, variant, depth, &Change::all(), admins_owners);
    }
    if variants.contains(&Variant::Open) {
        let depth = if full { Depth::Full } else { Depth::DefaultRoles };
        product(&mut cases, Variant::Open, depth, &Change::other_forms(), admins_owners);
    }
    cases
}

fn product(cases: &mut Vec<Case>, variant: Variant, depth: Depth, changes: &[Change], admins_owners: bool) {
    {
        let actors = parties(&Kind::ACTORS, variant, depth, false, admins_owners);
        let targets = parties(&Kind::TARGETS, variant, depth, true, admins_owners);
        for &actor in &actors {
            let self_target = std::iter::once(None);
            let others = targets
                .iter()
                .filter(|t| !(t.kind == Kind::ServiceAdmin && actor.kind == Kind::ServiceAdmin))
                .map(|&t| Some(t));
            for target in self_target.chain(others) {
                for &change in changes {
                    cases.push(Case { variant, actor, target, change, admins_owners });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_covers_the_product_minus_infeasible_states() {
        let all = generate(&[Variant::Open], false, true);
        let cases: Vec<&Case> = all.iter().filter(|c| Change::all().contains(&c.change)).collect();
        // actors: 6 kinds × 4 states, minus present outcasts (3), plus the creator's 3 roles = 24
        // targets: 6 kinds × 4, minus present outcasts = 21; the service admin can't be both.
        let actors = 5 * 4 + 1 + 3;
        let expected = (actors * 21 - 4 * 4 + actors) * 9;
        assert_eq!(cases.len(), expected);
        let mut seen = std::collections::HashSet::new();
        assert!(all.iter().all(|c| seen.insert(*c)), "duplicates");
        // Other forms over default roles: 6 present actor kinds, 5 present + 6 absent targets.
        assert_eq!(all.len() - cases.len(), (6 * 11 - 2 + 6) * 9);
        let members_only = generate(&[Variant::MembersOnly], true, true);
        assert!(members_only.iter().all(|c| c.actor.role.is_none() || c.actor.kind != Kind::User(Aff::None)));
        // Moderated, default roles: 6 actor states (no present outcast), 11 target states.
        assert_eq!(generate(&[Variant::Moderated], false, true).len(), (6 * 11 - 2 + 6) * 9);
    }
}
