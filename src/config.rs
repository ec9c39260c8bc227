//! Host-wide options, named and defaulted as stock mod_muc names and defaults them, so an
//! admin's existing config keeps working when `muc` becomes `muc_rs`.

use std::collections::HashMap;

/// How the host should read an option from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    Boolean,
    Integer,
    /// A duration in seconds (Prosody 13 also accepts "5 minutes").
    Period,
    String,
    /// Any plain value: `true`, `false` or a string (e.g. `restrict_room_creation`).
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub kind: OptionKind,
    /// The least value an `Integer` or `Period` option takes (0 or 1); unused for others.
    pub min: i64,
}

impl OptionSpec {
    const fn new(name: &'static str, kind: OptionKind) -> OptionSpec {
        OptionSpec { name, kind, min: 0 }
    }

    /// An integer option of at least 1 (a count of things kept).
    const fn positive(name: &'static str) -> OptionSpec {
        OptionSpec { name, kind: OptionKind::Integer, min: 1 }
    }

    /// The spec of the option `name`, if muc_rs reads it.
    pub fn find(name: &str) -> Option<&'static OptionSpec> {
        OPTIONS.iter().find(|spec| spec.name == name)
    }
}

/// A value read from the host's configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// Who may create rooms (`restrict_room_creation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomCreation {
    Anyone,
    /// Only users of the host this component belongs to (and admins).
    Local,
    AdminsOnly,
}

/// Configuration defaults for new rooms (`muc_room_default_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoomDefaults {
    pub public: bool,
    pub persistent: bool,
    pub members_only: bool,
    pub allow_member_invites: bool,
    pub moderated: bool,
    pub public_jids: bool,
    pub change_subject: bool,
    pub history_length: u32,
    pub language: Option<String>,
    /// MucSub subscriptions allowed in new rooms (ejabberd's `allow_subscription`).
    pub allow_subscription: bool,
}

impl Default for RoomDefaults {
    fn default() -> Self {
        RoomDefaults {
            public: false,
            persistent: false,
            members_only: false,
            allow_member_invites: false,
            moderated: false,
            public_jids: false,
            change_subject: false,
            history_length: 20,
            language: None,
            allow_subscription: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Major.minor of the host server, e.g. (0, 12) or (13, 0): some stock defaults differ.
    pub server_version: (u32, u32),
    /// Service name shown in disco (`name`).
    pub name: String,
    pub room_locking: bool,
    pub room_lock_timeout: i64,
    pub room_creation: RoomCreation,
    pub admins_as_room_owners: bool,
    pub max_history_messages: Option<u32>,
    /// Safety limits stock does not have: occupants per room, sessions per occupant,
    /// affiliations per room (`muc_rs_max_occupants`, `muc_max_sessions_per_occupant`,
    /// `muc_max_affiliations`). Owners and admins may still join a full room.
    pub max_occupants: usize,
    /// How many occupants past `max_occupants` a room's owners and admins may still join
    /// (`muc_rs_max_occupants_admin_allowance`; ejabberd's `max_users_admin_threshold`); `None`:
    /// no limit for them. A service admin who owns every room joins regardless.
    pub admin_occupant_allowance: Option<usize>,
    /// Longest room name, description and password a configuration form may set, in bytes
    /// (`muc_max_room_name`, `muc_max_room_description`, `muc_max_room_password`;
    /// ejabberd's `max_room_name`, `max_room_desc`, `max_password`); `None`: no limit.
    pub max_name_length: Option<usize>,
    pub max_description_length: Option<usize>,
    pub max_password_length: Option<usize>,
    pub max_sessions_per_occupant: usize,
    pub max_affiliations: usize,
    pub allow_unaffiliated_register: bool,
    pub enforce_registered_nickname: bool,
    /// A registered user's registration request shows what is kept, as a form
    /// (`muc_registration_include_form`).
    pub registration_include_form: bool,
    /// XEP-0421 occupant ids on presences and messages (`muc_occupant_id`).
    pub occupant_id: bool,
    /// XEP-0317 hats on occupants' presences (Prosody 13's MUC has them, 0.12's not).
    pub hats: bool,
    /// Hats also in Prosody's pre-XEP namespace (`muc_hats_compat`).
    pub hats_compat: bool,
    /// Room vCards and avatars (Prosody 13's MUC has them, through its mod_vcard).
    pub room_vcards: bool,
    /// Users register nicknames with the service itself (`jabber:iq:register` to its JID),
    /// which the host answers (ejabberd's mod_muc has it; Prosody's MUC has not).
    pub service_registration: bool,
    /// Rooms keep their vCard in their own record and answer `vcard-temp` themselves
    /// (ejabberd, whose mod_muc keeps it in the room's options); else the host keeps it
    /// (Prosody's mod_vcard) and is asked for the avatar's hash.
    pub vcards_in_rooms: bool,
    /// Message moderation (XEP-0425) as ejabberd's MUC has it (`room::moderation`); on
    /// Prosody it is the community module mod_muc_moderation's, so off.
    pub message_moderation: bool,
    /// How a room's avatar hash is announced (`muc_avatar_advertise_hashes`).
    pub avatar_advertise: AvatarAdvertise,
    /// MucSub (`urn:xmpp:mucsub:0`, ejabberd's; beyond stock Prosody): rooms answer
    /// subscriptions and their form has ejabberd's `allow_subscription` field
    /// (`muc_mucsub`; the ejabberd host turns it on).
    pub mucsub: bool,
    /// Destroyed persistent rooms answer `gone` until this many seconds have passed.
    pub tombstones: bool,
    /// Live rooms kept in memory (`muc_room_cache_size`); idle ones are stored away.
    pub room_cache_size: usize,
    /// A hard limit on rooms (`muc_max_rooms`): no eviction, new rooms are refused.
    pub max_rooms: Option<usize>,
    pub tombstone_expiry: i64,
    pub defaults: RoomDefaults,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig::for_version((13, 0))
    }
}

/// Every option muc_rs reads, for the host to look up.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec::new("name", OptionKind::String),
    OptionSpec::new("muc_room_locking", OptionKind::Boolean),
    OptionSpec::new("muc_room_lock_timeout", OptionKind::Period),
    OptionSpec::new("restrict_room_creation", OptionKind::Any),
    OptionSpec::new("component_admins_as_room_owners", OptionKind::Boolean),
    OptionSpec::new("max_history_messages", OptionKind::Integer),
    OptionSpec::positive("muc_rs_max_occupants"),
    OptionSpec::new("muc_rs_max_occupants_admin_allowance", OptionKind::Integer),
    OptionSpec::positive("muc_max_room_name"),
    OptionSpec::positive("muc_max_room_description"),
    OptionSpec::positive("muc_max_room_password"),
    OptionSpec::positive("muc_max_sessions_per_occupant"),
    OptionSpec::positive("muc_max_affiliations"),
    OptionSpec::new("allow_unaffiliated_register", OptionKind::Boolean),
    OptionSpec::new("enforce_registered_nickname", OptionKind::Boolean),
    OptionSpec::new("muc_registration_include_form", OptionKind::Boolean),
    OptionSpec::new("muc_occupant_id", OptionKind::Boolean),
    OptionSpec::new("muc_hats_compat", OptionKind::Boolean),
    OptionSpec::new("muc_vcard", OptionKind::Boolean),
    OptionSpec::new("muc_avatar_advertise_hashes", OptionKind::String),
    OptionSpec::new("muc_tombstones", OptionKind::Boolean),
    OptionSpec::new("muc_mucsub", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_allow_subscription", OptionKind::Boolean),
    OptionSpec::positive("muc_room_cache_size"),
    OptionSpec::new("muc_max_rooms", OptionKind::Integer),
    OptionSpec::new("muc_tombstone_expiry", OptionKind::Period),
    OptionSpec::new("muc_room_default_public", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_persistent", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_members_only", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_allow_member_invites", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_moderated", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_public_jids", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_change_subject", OptionKind::Boolean),
    OptionSpec::new("muc_room_default_history_length", OptionKind::Integer),
    OptionSpec::new("muc_room_default_language", OptionKind::String),
];

impl HostConfig {
    /// Stock defaults for the given server version.
    pub fn for_version(server_version: (u32, u32)) -> Self {
        HostConfig {
            server_version,
            name: "Prosody Chatrooms".to_owned(),
            room_locking: true,
            room_lock_timeout: 300,
            room_creation: RoomCreation::Anyone,
            // Prosody 13 turned this off by default; 0.12 had it on.
            admins_as_room_owners: server_version.0 < 13,
            // Stock keeps up to the room's configured length, unbounded; this caps it.
            max_history_messages: Some(1000),
            max_occupants: 10_000,
            admin_occupant_allowance: None,
            max_name_length: None,
            max_description_length: None,
            max_password_length: None,
            max_sessions_per_occupant: 32,
            max_affiliations: 20_000,
            allow_unaffiliated_register: false,
            enforce_registered_nickname: false,
            registration_include_form: false,
            occupant_id: true,
            hats: server_version.0 >= 13,
            hats_compat: false,
            room_vcards: server_version.0 >= 13,
            service_registration: false,
            vcards_in_rooms: false,
            message_moderation: false,
            avatar_advertise: AvatarAdvertise::Both,
            tombstones: true,
            mucsub: false,
            room_cache_size: 100,
            max_rooms: None,
            tombstone_expiry: 31 * 86_400,
            defaults: RoomDefaults::default(),
        }
    }

    /// Builds the configuration from the options the host found set; unset ones keep
    /// their stock default. Returns the names of options with a value of the wrong type.
    pub fn from_options(
        server_version: (u32, u32),
        options: &HashMap<String, OptionValue>,
    ) -> (Self, Vec<String>) {
        let mut config = HostConfig::for_version(server_version);
        let mut invalid = Vec::new();
        for (name, value) in options {
            if !config.apply(name, value) {
                invalid.push(name.clone());
            }
        }
        invalid.sort();
        (config, invalid)
    }

    /// Sets one option; false if the value does not fit it (or the option is unknown).
    fn apply(&mut self, name: &str, value: &OptionValue) -> bool {
        use OptionValue::*;
        match (OptionSpec::find(name), value) {
            (None, _) => return false,
            (Some(spec), Int(n)) if *n < spec.min => return false,
            _ => {}
        }
        let d = &mut self.defaults;
        match (name, value) {
            ("name", Str(s)) => self.name = s.clone(),
            ("muc_room_locking", Bool(b)) => self.room_locking = *b,
            ("muc_room_lock_timeout", Int(n)) => self.room_lock_timeout = *n,
            ("restrict_room_creation", Bool(b)) => {
                self.room_creation = if *b { RoomCreation::AdminsOnly } else { RoomCreation::Anyone }
            }
            ("restrict_room_creation", Str(s)) if s == "local" => self.room_creation = RoomCreation::Local,
            ("restrict_room_creation", Str(s)) if s == "admin" => {
                self.room_creation = RoomCreation::AdminsOnly
            }
            ("component_admins_as_room_owners", Bool(b)) => self.admins_as_room_owners = *b,
            ("max_history_messages", Int(n)) => self.max_history_messages = Some(clamp_u32(*n)),
            ("muc_rs_max_occupants", Int(n)) => self.max_occupants = *n as usize,
            ("muc_rs_max_occupants_admin_allowance", Int(n)) => {
                self.admin_occupant_allowance = Some((*n).max(0) as usize)
            }
            ("muc_max_room_name", Int(n)) => self.max_name_length = Some(*n as usize),
            ("muc_max_room_description", Int(n)) => self.max_description_length = Some(*n as usize),
            ("muc_max_room_password", Int(n)) => self.max_password_length = Some(*n as usize),
            ("muc_max_sessions_per_occupant", Int(n)) => self.max_sessions_per_occupant = *n as usize,
            ("muc_max_affiliations", Int(n)) => self.max_affiliations = *n as usize,
            ("allow_unaffiliated_register", Bool(b)) => self.allow_unaffiliated_register = *b,
            ("enforce_registered_nickname", Bool(b)) => self.enforce_registered_nickname = *b,
            ("muc_registration_include_form", Bool(b)) => self.registration_include_form = *b,
            ("muc_occupant_id", Bool(b)) => self.occupant_id = *b,
            ("muc_hats_compat", Bool(b)) => self.hats_compat = *b,
            ("muc_vcard", Bool(b)) => self.room_vcards = *b && self.server_version.0 >= 13,
            ("muc_avatar_advertise_hashes", Str(s)) => self.avatar_advertise = AvatarAdvertise::parse(s),
            ("muc_tombstones", Bool(b)) => self.tombstones = *b,
            ("muc_mucsub", Bool(b)) => self.mucsub = *b,
            ("muc_room_default_allow_subscription", Bool(b)) => d.allow_subscription = *b,
            ("muc_room_cache_size", Int(n)) => self.room_cache_size = *n as usize,
            ("muc_max_rooms", Int(n)) => self.max_rooms = Some(*n as usize),
            ("muc_tombstone_expiry", Int(n)) => self.tombstone_expiry = *n,
            ("muc_room_default_public", Bool(b)) => d.public = *b,
            ("muc_room_default_persistent", Bool(b)) => d.persistent = *b,
            ("muc_room_default_members_only", Bool(b)) => d.members_only = *b,
            ("muc_room_default_allow_member_invites", Bool(b)) => d.allow_member_invites = *b,
            ("muc_room_default_moderated", Bool(b)) => d.moderated = *b,
            ("muc_room_default_public_jids", Bool(b)) => d.public_jids = *b,
            ("muc_room_default_change_subject", Bool(b)) => d.change_subject = *b,
            ("muc_room_default_history_length", Int(n)) => d.history_length = clamp_u32(*n),
            ("muc_room_default_language", Str(s)) => d.language = Some(s.clone()),
            _ => return false,
        }
        true
    }
}

fn clamp_u32(n: i64) -> u32 {
    n.clamp(0, u32::MAX as i64) as u32
}

/// Where a room's new avatar hash goes: a presence from the room, a status 104 message,
/// both (the default), or nowhere; a joining occupant gets the presence unless `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarAdvertise {
    Both,
    Presence,
    Message,
    /// Any other value: stock then tells joining occupants only.
    JoinersOnly,
    None,
}

impl AvatarAdvertise {
    pub fn parse(s: &str) -> Self {
        match s {
            "presence" => AvatarAdvertise::Presence,
            "message" => AvatarAdvertise::Message,
            "none" => AvatarAdvertise::None,
            _ => AvatarAdvertise::JoinersOnly,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_own_rooms_by_default_only_before_13() {
        assert!(HostConfig::for_version((0, 12)).admins_as_room_owners);
        assert!(!HostConfig::for_version((13, 0)).admins_as_room_owners);
    }

    #[test]
    fn options_override_defaults_and_bad_types_are_reported() {
        let mut opts = HashMap::new();
        opts.insert("muc_room_locking".to_owned(), OptionValue::Bool(false));
        opts.insert("restrict_room_creation".to_owned(), OptionValue::Str("local".into()));
        opts.insert("muc_room_default_moderated".to_owned(), OptionValue::Str("yes".into()));
        let (config, invalid) = HostConfig::from_options((0, 12), &opts);
        assert!(!config.room_locking);
        assert_eq!(config.room_creation, RoomCreation::Local);
        assert!(!config.defaults.moderated);
        assert_eq!(invalid, vec!["muc_room_default_moderated".to_owned()]);
    }

    #[test]
    fn integers_below_an_options_least_value_are_refused() {
        let mut opts = HashMap::new();
        opts.insert("muc_rs_max_occupants".to_owned(), OptionValue::Int(0));
        opts.insert("muc_max_rooms".to_owned(), OptionValue::Int(0));
        opts.insert("muc_room_lock_timeout".to_owned(), OptionValue::Int(-1));
        let (config, invalid) = HostConfig::from_options((13, 0), &opts);
        assert_eq!(invalid, vec!["muc_room_lock_timeout".to_owned(), "muc_rs_max_occupants".to_owned()]);
        assert_eq!(config.max_rooms, Some(0));
    }

    #[test]
    fn every_listed_option_is_understood() {
        for spec in OPTIONS {
            let value = match spec.kind {
                OptionKind::Boolean | OptionKind::Any => OptionValue::Bool(true),
                OptionKind::Integer | OptionKind::Period => OptionValue::Int(1),
                OptionKind::String => OptionValue::Str("x".into()),
            };
            assert!(HostConfig::default().apply(spec.name, &value), "{}", spec.name);
        }
    }
}
