//! The core's options under ejabberd's names: which of mod_muc's options (and keys of its
//! `default_room_options`) set which core option, and which core options mod_muc_rs offers
//! by their own (Prosody) names. The core's table (`muc_rs::config::OPTIONS`) is the one
//! list of options, kinds and least values; `mod_muc_rs.erl` asks for this through
//! `muc_rs_nif:options/0` and keeps only ejabberd's own types and defaults of mod_muc's
//! options.

use muc_rs::config::{OptionKind, OptionSpec, OptionValue, OPTIONS};
use std::collections::HashMap;

/// A mod_muc option (or `default_room_options` key) that sets a core option; `negate`: the
/// core's boolean is the opposite of ejabberd's.
struct Mapped {
    ejabberd: &'static str,
    core: &'static str,
    negate: bool,
}

const fn same(ejabberd: &'static str, core: &'static str) -> Mapped {
    Mapped { ejabberd, core, negate: false }
}

/// mod_muc's options the core honours.
const MOD_MUC: &[Mapped] = &[
    same("name", "name"),
    // mod_muc keeps this many messages per room, and rooms cannot ask for more.
    same("history_size", "max_history_messages"),
    same("history_size", "muc_room_default_history_length"),
    same("max_users", "muc_rs_max_occupants"),
    same("max_users_admin_threshold", "muc_rs_max_occupants_admin_allowance"),
    same("max_room_name", "muc_max_room_name"),
    same("max_room_desc", "muc_max_room_description"),
    same("max_password", "muc_max_room_password"),
];

/// `default_room_options` keys the core honours (new rooms' settings).
const ROOM_OPTIONS: &[Mapped] = &[
    same("persistent", "muc_room_default_persistent"),
    same("public", "muc_room_default_public"),
    same("members_only", "muc_room_default_members_only"),
    // With `members_by_default` (see `core_options`).
    same("moderated", "muc_room_default_moderated"),
    same("members_by_default", "muc_room_default_moderated"),
    same("allow_change_subj", "muc_room_default_change_subject"),
    same("allow_user_invites", "muc_room_default_allow_member_invites"),
    // An anonymous room shows real JIDs to moderators only.
    Mapped { ejabberd: "anonymous", core: "muc_room_default_public_jids", negate: true },
    same("lang", "muc_room_default_language"),
    same("allow_subscription", "muc_room_default_allow_subscription"),
];

/// Core options ejabberd does not offer by their own names: `restrict_room_creation`
/// (`access_create` says who may create rooms); `component_admins_as_room_owners`
/// (`access_admin`'s users own every room, as with mod_muc); `muc_vcard` (rooms always
/// have vCards there, kept in their options as mod_muc keeps them); `muc_mucsub` (MucSub
/// is always there, as in mod_muc).
const NOT_OFFERED: &[&str] =
    &["restrict_room_creation", "component_admins_as_room_owners", "muc_vcard", "muc_mucsub"];

/// How ejabberd reads an option the core takes by its own name: `bool`, `int` (with its
/// least value) or `string`.
pub enum OwnKind {
    Bool,
    Int(i64),
    String,
}

/// The core options mod_muc_rs offers by their own names, with their kinds: every option of
/// the core's table that no mod_muc name sets and that is not held back.
pub fn own_options() -> impl Iterator<Item = (&'static str, OwnKind)> {
    OPTIONS.iter().filter(|spec| is_own(spec.name)).map(|spec| {
        let kind = match spec.kind {
            OptionKind::Boolean => OwnKind::Bool,
            OptionKind::Integer | OptionKind::Period => OwnKind::Int(spec.min),
            OptionKind::String | OptionKind::Any => OwnKind::String,
        };
        (spec.name, kind)
    })
}

fn is_own(name: &str) -> bool {
    !NOT_OFFERED.contains(&name) && !MOD_MUC.iter().chain(ROOM_OPTIONS).any(|m| m.core == name)
}

/// mod_muc's options the core honours, by their names (each once).
pub fn mod_muc_options() -> Vec<&'static str> {
    let mut names: Vec<&str> = MOD_MUC.iter().map(|m| m.ejabberd).collect();
    names.dedup();
    names
}

/// `default_room_options` keys the core honours.
pub fn room_options() -> impl Iterator<Item = &'static str> {
    ROOM_OPTIONS.iter().map(|m| m.ejabberd)
}

/// The module's options (ejabberd's names: mod_muc's the core honours and the core's own;
/// `default_room_options` as its keys, those the core does not honour left out) as the
/// core's options. Names that are neither come back in the error.
pub fn core_options(
    options: Vec<(String, OptionValue)>,
    room_options: Vec<(String, OptionValue)>,
) -> Result<HashMap<String, OptionValue>, Vec<String>> {
    let mut core = HashMap::new();
    let mut unknown = Vec::new();
    let mut set = |mapped: &Mapped, value: &OptionValue| {
        let value = match value {
            OptionValue::Bool(b) if mapped.negate => OptionValue::Bool(!b),
            other => other.clone(),
        };
        core.insert(mapped.core.to_owned(), value);
    };
    for (name, value) in &options {
        let mut by_mod_muc = MOD_MUC.iter().filter(|m| m.ejabberd == name).peekable();
        if by_mod_muc.peek().is_none() {
            match OptionSpec::find(name).filter(|spec| is_own(spec.name)) {
                Some(spec) => set(&same(spec.name, spec.name), value),
                None => unknown.push(name.clone()),
            }
        }
        by_mod_muc.for_each(|mapped| set(mapped, value));
    }
    let room_option = |key: &str| room_options.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    for (key, value) in &room_options {
        // ejabberd's empty `lang` is no language.
        if matches!(value, OptionValue::Str(s) if s.is_empty()) || key == "members_by_default" {
            continue;
        }
        if let Some(mapped) = ROOM_OPTIONS.iter().find(|m| m.ejabberd == key) {
            set(mapped, value);
        }
    }
    // In ejabberd a newcomer without affiliation gets voice by `members_by_default` (and
    // `moderated` says whether an occupant without voice may speak); in the core it gets
    // voice unless the room is moderated, where no one without voice speaks. So a new room
    // is moderated in the core when it is in ejabberd and newcomers get no voice there.
    if let (Some(OptionValue::Bool(true)), Some(OptionValue::Bool(true))) =
        (room_option("moderated"), room_option("members_by_default"))
    {
        core.insert("muc_room_default_moderated".to_owned(), OptionValue::Bool(false));
    }
    if unknown.is_empty() {
        Ok(core)
    } else {
        Err(unknown)
    }
}
