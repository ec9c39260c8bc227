//! A room's configuration (stock's `room._data`): defaults, the muc#owner form built from it,
//! and the submitted form applied to it with the status codes each change announces.

use crate::affiliation::Role;
use crate::config::RoomDefaults;
use crate::dataform::{Field, FieldType, Form, Submitted, Value};
use crate::xml::NS_MUC_ROOMCONFIG;

pub const DEFAULT_HISTORY_LENGTH: u32 = 20;

/// Who may see occupants' real JIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whois {
    Moderators,
    Anyone,
}

impl Whois {
    pub fn as_str(self) -> &'static str {
        match self {
            Whois::Moderators => "moderators",
            Whois::Anyone => "anyone",
        }
    }
}

/// Who may send private messages (Prosody 13's `allow_pm`).
pub const ALLOW_PM_VALUES: [&str; 5] = ["visitor", "participant", "moderator", "affiliated", "none"];

#[derive(Debug, Clone, PartialEq)]
pub struct RoomSettings {
    pub name: Option<Box<str>>,
    pub description: Option<Box<str>>,
    pub language: Option<Box<str>>,
    pub persistent: bool,
    pub hidden: bool,
    pub password: Option<Box<str>>,
    pub members_only: bool,
    pub allow_member_invites: bool,
    pub moderated: bool,
    pub whois: Whois,
    pub change_subject: bool,
    /// `None` means the default (20); stock stores only non-default values.
    pub history_length: Option<u32>,
    pub default_history_messages: Option<u32>,
    /// Roles whose presence is broadcast; `None` means the default (all but `none`).
    pub presence_broadcast: Option<Box<[Role]>>,
    pub allow_pm: Box<str>,
    pub allow_modpm: bool,
    /// Unix time until which the room stays locked for everyone but its creator.
    pub locked_until: Option<i64>,
    /// Boxed, as the rarely set parts below: most rooms never have one.
    pub subject: Option<Box<Subject>>,
    /// Salt of the room's XEP-0421 occupant ids and relayed IQ ids.
    pub occupant_id_salt: Box<str>,
    /// Set on the stored remains of a destroyed persistent room (stock's tombstones).
    pub tombstone: Option<Box<Tombstone>>,
    /// MucSub, where the host has it (ejabberd's `allow_subscription` and subscribers);
    /// boxed and absent for the rooms that never allowed it.
    pub mucsub: Option<Box<crate::room::mucsub::MucSub>>,
    /// Keys other modules keep in the room's data, preserved as found.
    pub extra: crate::data::Table,
}

/// The room's subject, who set it and when (each may be missing from stored records).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subject {
    pub text: Option<String>,
    pub from: Option<String>,
    pub time: Option<i64>,
}

/// What a destroyed room leaves behind until it expires: the reason and new venue given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tombstone {
    pub reason: Option<String>,
    pub new_jid: Option<String>,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            name: None,
            description: None,
            language: None,
            persistent: false,
            hidden: false,
            password: None,
            members_only: false,
            allow_member_invites: false,
            moderated: false,
            whois: Whois::Moderators,
            change_subject: false,
            history_length: None,
            default_history_messages: None,
            presence_broadcast: None,
            allow_pm: "visitor".into(),
            allow_modpm: false,
            locked_until: None,
            subject: None,
            // Given when the room is made (Room::ensure_salt): a default reads no randomness.
            occupant_id_salt: Box::default(),
            tombstone: None,
            mucsub: None,
            extra: Default::default(),
        }
    }
}

/// One effect of a submitted configuration that the room must carry out beyond storing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigEffect {
    /// Members-only was switched on: non-members must leave (status 322).
    MembersOnlyEnabled,
    /// The roles whose presence is broadcast changed (from the previous set).
    PresenceBroadcastChanged(Vec<Role>),
}

/// The room data key of the archiving switch: Prosody's mod_muc_mam keeps it there, and
/// the core keeps it there for hosts that give the switch to the core
/// ([`crate::ArchiveSwitch`]).
pub const ARCHIVING: &str = "archiving";

impl RoomSettings {
    /// The archiving switch, if set.
    pub fn archiving(&self) -> Option<bool> {
        match self.extra.get(&ARCHIVING.into()) {
            Some(crate::data::Data::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// Sets the archiving switch; whether it changed.
    pub fn set_archiving(&mut self, on: bool) -> bool {
        self.extra.insert(ARCHIVING.into(), crate::data::Data::Bool(on)) != Some(crate::data::Data::Bool(on))
    }

    pub fn with_defaults(defaults: &RoomDefaults, language: Option<&str>) -> Self {
        let mut s = RoomSettings {
            hidden: !defaults.public,
            persistent: defaults.persistent,
            members_only: defaults.members_only,
            allow_member_invites: defaults.allow_member_invites,
            moderated: defaults.moderated,
            whois: if defaults.public_jids { Whois::Anyone } else { Whois::Moderators },
            change_subject: defaults.change_subject,
            language: language.or(defaults.language.as_deref()).map(Box::from),
            mucsub: defaults
                .allow_subscription
                .then(|| Box::new(crate::room::mucsub::MucSub { allow: true, subscribers: Vec::new() })),
            ..RoomSettings::default()
        };
        s.set_history_length(Some(defaults.history_length as i64));
        s
    }

    pub fn history_length(&self, max: Option<u32>) -> u32 {
        let len = self.history_length.unwrap_or(DEFAULT_HISTORY_LENGTH);
        max.map_or(len, |m| len.min(m))
    }

    pub fn default_history_messages(&self) -> u32 {
        self.default_history_messages.unwrap_or(DEFAULT_HISTORY_LENGTH)
    }

    pub fn broadcast_roles(&self) -> Vec<Role> {
        match &self.presence_broadcast {
            Some(roles) => roles.to_vec(),
            None => vec![Role::Visitor, Role::Participant, Role::Moderator],
        }
    }

    pub fn broadcasts(&self, role: Role) -> bool {
        match &self.presence_broadcast {
            Some(roles) => roles.contains(&role),
            None => role != Role::None,
        }
    }

    /// Stores a history length; stock keeps the default as "unset".
    fn set_history_length(&mut self, length: Option<i64>) {
        let length = length.map(|n| n.clamp(0, u32::MAX as i64) as u32);
        self.history_length = length.filter(|n| *n != DEFAULT_HISTORY_LENGTH);
    }

    fn set_default_history_messages(&mut self, number: Option<i64>) {
        let cap = self.history_length.unwrap_or(DEFAULT_HISTORY_LENGTH) as i64;
        let n = number.unwrap_or(DEFAULT_HISTORY_LENGTH as i64).min(cap).max(0) as u32;
        self.default_history_messages = (n != DEFAULT_HISTORY_LENGTH).then_some(n);
    }

    /// The muc#owner configuration form, field for field as stock builds it on the given
    /// server version (13 adds the private-message fields).
    pub fn form(&self, room_jid: &str, server_major: u32, max_history: Option<u32>) -> Form {
        let text_or_empty = |v: &Option<Box<str>>| Value::Text(v.as_deref().unwrap_or_default().to_owned());
        let flag = |b: bool| b.then_some(Value::Bool(true));
        let mut fields = vec![
            Field::hidden("FORM_TYPE", NS_MUC_ROOMCONFIG),
            Field::fixed("Room information"),
            Field::new("muc#roomconfig_roomname", FieldType::TextSingle)
                .label("Title")
                .maybe_value(self.name.as_deref().map(|n| Value::Text(n.to_owned()))),
            Field::new("muc#roomconfig_roomdesc", FieldType::TextSingle)
                .label("Description")
                .desc("A brief description of the room")
                .value(text_or_empty(&self.description)),
            Field::new("muc#roomconfig_lang", FieldType::TextSingle)
                .label("Language tag for room (e.g. 'en', 'de', 'fr' etc.)")
                .desc("Indicate the primary language spoken in this room")
                .datatype("xs:language")
                .value(text_or_empty(&self.language)),
            Field::new("muc#roomconfig_persistentroom", FieldType::Boolean)
                .label("Persistent (room should remain even when it is empty)")
                .desc("Rooms are automatically deleted when they are empty, unless this option is enabled")
                .maybe_value(flag(self.persistent)),
            Field::new("muc#roomconfig_publicroom", FieldType::Boolean)
                .label("Include room information in public lists")
                .desc("Enable this to allow people to find the room")
                .value(Value::Bool(!self.hidden)),
            Field::fixed("Access to the room"),
            Field::new("muc#roomconfig_roomsecret", FieldType::TextPrivate)
                .label("Password")
                .value(text_or_empty(&self.password)),
            Field::new("muc#roomconfig_membersonly", FieldType::Boolean)
                .label("Only allow members to join")
                .desc("Enable this to only allow access for room owners, admins and members")
                .maybe_value(flag(self.members_only)),
            Field::new("{http://prosody.im/protocol/muc}roomconfig_allowmemberinvites", FieldType::Boolean)
                .label("Allow members to invite new members")
                .maybe_value(flag(self.allow_member_invites)),
            Field::fixed("Permissions in the room"),
            Field::new("muc#roomconfig_changesubject", FieldType::Boolean)
                .label("Allow anyone to set the room's subject")
                .desc("Choose whether anyone, or only moderators, may set the room's subject")
                .maybe_value(flag(self.change_subject)),
            Field::new("muc#roomconfig_moderatedroom", FieldType::Boolean)
                .label("Moderated (require permission to speak)")
                .desc("In moderated rooms occupants must be given permission to speak by a room moderator")
                .maybe_value(flag(self.moderated)),
            Field::new("muc#roomconfig_whois", FieldType::ListSingle)
                .label("Addresses (JIDs) of room occupants may be viewed by:")
                .option("moderators", "Moderators only")
                .option("anyone", "Anyone")
                .value(Value::Text(self.whois.as_str().to_owned())),
            Field::fixed("Other options"),
            Field::new("muc#roomconfig_historylength", FieldType::TextSingle)
                .label("Maximum number of history messages returned by room")
                .desc("Specify the maximum number of previous messages that should be sent to users when they join the room")
                .datatype("xs:integer")
                .value(Value::Int(self.history_length(max_history) as i64)),
            Field::new("muc#roomconfig_defaulthistorymessages", FieldType::TextSingle)
                .label("Default number of history messages returned by room")
                .desc("Specify the number of previous messages sent to new users when they join the room")
                .datatype("xs:integer")
                .value(Value::Int(self.default_history_messages() as i64)),
            {
                let mut f = Field::new("muc#roomconfig_presencebroadcast", FieldType::ListMulti)
                    .label("Only show participants with roles:")
                    .value(Value::List(
                        self.broadcast_roles().iter().map(|r| r.as_str().to_owned()).collect(),
                    ));
                for role in Role::ALL {
                    f = f.option(role.as_str(), role.as_str());
                }
                f
            },
        ];
        if server_major >= 13 {
            let mut pm = Field::new("muc#roomconfig_allowpm", FieldType::ListSingle)
                .label("Allow private messages from");
            for (value, label) in
                ALLOW_PM_VALUES.iter().zip(["Everyone", "Participants", "Moderators", "Members", "No one"])
            {
                pm = pm.option(value, label);
            }
            fields.push(pm.value(Value::Text(self.allow_pm.to_string())));
            fields.push(
                Field::new("{xmpp:prosody.im}muc#allow_modpm", FieldType::Boolean)
                    .label("Always allow private messages to moderators")
                    .value(Value::Bool(self.allow_modpm)),
            );
        }
        Form {
            title: Some(format!("Configuration for {room_jid}")),
            instructions: Some("Complete and submit this form to configure the room.".to_owned()),
            fields,
        }
    }

    /// Applies submitted fields; returns the status codes to announce and the effects the
    /// room must carry out. A field submitted empty or with a value of the wrong type reads
    /// as unset, as stock reads it (so an invalid boolean turns the option off).
    pub fn apply(&mut self, submitted: &[Submitted]) -> (Vec<u16>, Vec<ConfigEffect>) {
        let mut codes: Vec<u16> = Vec::new();
        let mut effects = Vec::new();
        let mut code = |c: u16| {
            if !codes.contains(&c) {
                codes.push(c);
            }
        };
        for field in submitted {
            let text = match &field.value {
                Some(Value::Text(t)) => Some(Box::<str>::from(t.as_str())),
                _ => None,
            };
            let flag = matches!(field.value, Some(Value::Bool(true)));
            let changed = match field.var {
                "muc#roomconfig_roomname" => replace(&mut self.name, text),
                "muc#roomconfig_roomdesc" => replace(&mut self.description, text),
                "muc#roomconfig_lang" => replace(&mut self.language, text),
                "muc#roomconfig_persistentroom" => replace(&mut self.persistent, flag),
                "muc#roomconfig_publicroom" => replace(&mut self.hidden, !flag),
                "muc#roomconfig_roomsecret" => replace(&mut self.password, text),
                "muc#roomconfig_membersonly" => {
                    let changed = replace(&mut self.members_only, flag);
                    if changed && flag {
                        effects.push(ConfigEffect::MembersOnlyEnabled);
                    }
                    changed
                }
                "{http://prosody.im/protocol/muc}roomconfig_allowmemberinvites" => {
                    replace(&mut self.allow_member_invites, flag)
                }
                "muc#roomconfig_changesubject" => replace(&mut self.change_subject, flag),
                "muc#roomconfig_moderatedroom" => replace(&mut self.moderated, flag),
                "muc#roomconfig_whois" => {
                    let whois = match text.as_deref() {
                        Some("anyone") => Some(Whois::Anyone),
                        Some("moderators") => Some(Whois::Moderators),
                        _ => None,
                    };
                    if let Some(whois) = whois.filter(|w| *w != self.whois) {
                        self.whois = whois;
                        code(if whois == Whois::Moderators { 173 } else { 172 });
                    }
                    false
                }
                "muc#roomconfig_historylength" => {
                    let n = match field.value {
                        Some(Value::Int(n)) => Some(n),
                        _ => None,
                    };
                    self.set_history_length(n);
                    true // stock announces this field whether or not it changed
                }
                "muc#roomconfig_defaulthistorymessages" => {
                    let n = match field.value {
                        Some(Value::Int(n)) => Some(n),
                        _ => None,
                    };
                    self.set_default_history_messages(n);
                    false // stock never announces this one
                }
                "muc#roomconfig_presencebroadcast" => match &field.value {
                    Some(Value::List(values)) => {
                        let mut roles: Vec<Role> = Vec::new();
                        for role in values.iter().filter_map(|v| Role::parse(v)) {
                            if !roles.contains(&role) {
                                roles.push(role);
                            }
                        }
                        roles.sort();
                        let old = self.broadcast_roles();
                        if roles != old {
                            self.presence_broadcast = Some(roles.into());
                            effects.push(ConfigEffect::PresenceBroadcastChanged(old));
                            true
                        } else {
                            false
                        }
                    }
                    _ => false,
                },
                "muc#roomconfig_allowpm" => match text {
                    Some(v) if ALLOW_PM_VALUES.contains(&&*v) => replace(&mut self.allow_pm, v),
                    _ => false,
                },
                "{xmpp:prosody.im}muc#allow_modpm" => replace(&mut self.allow_modpm, flag),
                _ => false,
            };
            if changed {
                code(104);
            }
        }
        (codes, effects)
    }
}

/// Sets `slot` to `value`; true if that changed it.
fn replace<T: PartialEq>(slot: &mut T, value: T) -> bool {
    if *slot == value {
        false
    } else {
        *slot = value;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The room asks its host's modules about a submitted form when they listen to the
    /// event of any of its fields.
    #[test]
    fn every_field_has_its_event_among_the_config_hooks() {
        let events = crate::hooks::Hook::Config.event_names();
        for major in [0, 13] {
            let form = RoomSettings::default().form("room@muc.example.org", major, None);
            for var in form.fields.iter().filter_map(|f| f.var).filter(|v| *v != "FORM_TYPE") {
                let name = format!("muc-config-submitted/{var}");
                assert!(events.contains(&name.as_str()), "{name}");
            }
        }
    }

    fn sub(var: &'static str, value: Option<Value>) -> Submitted {
        Submitted { var, value }
    }

    #[test]
    fn changes_announce_104_and_whois_172_173() {
        let mut s = RoomSettings::default();
        let (codes, effects) = s.apply(&[
            sub("muc#roomconfig_membersonly", Some(Value::Bool(true))),
            sub("muc#roomconfig_whois", Some(Value::Text("anyone".into()))),
        ]);
        assert_eq!(codes, vec![104, 172]);
        assert_eq!(effects, vec![ConfigEffect::MembersOnlyEnabled]);
        let (codes, _) = s.apply(&[sub("muc#roomconfig_membersonly", Some(Value::Bool(true)))]);
        assert!(codes.is_empty(), "no change, no code");
        let (codes, _) = s.apply(&[sub("muc#roomconfig_whois", Some(Value::Text("moderators".into())))]);
        assert_eq!(codes, vec![173]);
    }

    #[test]
    fn invalid_values_read_as_unset() {
        let mut s = RoomSettings { moderated: true, name: Some("x".into()), ..Default::default() };
        s.apply(&[sub("muc#roomconfig_moderatedroom", None), sub("muc#roomconfig_roomname", None)]);
        assert!(!s.moderated);
        assert_eq!(s.name, None);
    }

    #[test]
    fn history_defaults_are_stored_as_unset_and_capped() {
        let mut s = RoomSettings::default();
        s.apply(&[
            sub("muc#roomconfig_historylength", Some(Value::Int(5))),
            sub("muc#roomconfig_defaulthistorymessages", Some(Value::Int(10))),
        ]);
        assert_eq!(s.history_length(None), 5);
        assert_eq!(s.default_history_messages(), 5);
        assert_eq!(s.history_length(Some(3)), 3);
        s.apply(&[sub("muc#roomconfig_historylength", Some(Value::Int(20)))]);
        assert_eq!(s.history_length, None);
    }
}
