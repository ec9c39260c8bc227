//! muc#owner: the configuration form, and destroying the room.

use super::settings::{ConfigEffect, Tombstone};
use super::{Ctx, PresenceX, Room};
use crate::affiliation::{Affiliation, Role};
use crate::dataform::{form_type, read_submitted, Submitted, Value};
use crate::hooks::{Answer, Event, Hook, Question};
use crate::xml::{
    child_text, el, muc_user_x, reply, ElementExt, StanzaError, NS_CLIENT, NS_DATA, NS_MUC_OWNER,
    NS_MUC_ROOMCONFIG, NS_MUC_USER,
};
use jid::FullJid;
use minidom::Element;

/// The configuration field the host's `sender_may_persist` rule governs.
const PERSISTENT_FIELD: &str = "muc#roomconfig_persistentroom";
/// The archiving switch's field, as ejabberd's mod_mam adds it to the form
/// ([`crate::ArchiveSwitch`]).
const ARCHIVE_FIELD: &str = "mam";

/// A submitted form of these fields and the text of their values.
fn form_of(fields: &[(String, Vec<String>)]) -> Element {
    let mut x = el("x", NS_DATA).with("type", "submit");
    for (var, values) in fields {
        let mut field = el("field", NS_DATA).with("var", var.as_str());
        for value in values {
            field = field.text_child("value", NS_DATA, value.as_str());
        }
        x = x.child(field);
    }
    x
}

/// What a muc#owner request did to the room's existence.
#[derive(Debug, PartialEq, Eq)]
pub enum OwnerOutcome {
    Kept,
    Destroyed,
}

impl Room {
    fn only_owners(&self, ctx: &mut Ctx, stanza: &Element, actor: &FullJid) -> bool {
        if self.affiliation(ctx, &actor.to_bare()) == Affiliation::Owner {
            return true;
        }
        ctx.error(stanza, StanzaError::forbidden().with_text("Only owners can configure rooms"), None);
        false
    }

    pub fn handle_owner_get(&mut self, ctx: &mut Ctx, stanza: &Element, actor: &FullJid) {
        if !self.only_owners(ctx, stanza, actor) {
            return;
        }
        let mut form = self.config_form(ctx);
        if ctx.facts.sender_may_persist == Some(false) {
            form.fields.retain(|f| f.var != Some(PERSISTENT_FIELD));
        }
        let query = el("query", NS_MUC_OWNER);
        if ctx.listens(Hook::Config) {
            // Modules add their fields (an archive's switch) to the room's.
            let (room, actor, to) = (self.jid.clone(), actor.clone(), actor.clone().into());
            return ctx.out.fire(Event::ConfigForm {
                room,
                actor,
                reply: reply(stanza).child(query),
                form,
                to,
            });
        }
        ctx.send(reply(stanza).child(query.child(form.render("form"))), actor.clone().into());
    }

    pub fn handle_owner_set(
        &mut self,
        ctx: &mut Ctx,
        stanza: &Element,
        query: &Element,
        actor: &FullJid,
    ) -> OwnerOutcome {
        if !self.only_owners(ctx, stanza, actor) {
            return OwnerOutcome::Kept;
        }
        let Some(child) = query.children().next() else {
            ctx.error(stanza, StanzaError::modify_bad_request(), None);
            return OwnerOutcome::Kept;
        };
        if child.is("destroy", NS_MUC_OWNER) {
            let new_jid = child.attr("jid").map(str::to_owned);
            let reason = child_text(child, "reason", NS_MUC_OWNER);
            let password = child_text(child, "password", NS_MUC_OWNER);
            self.destroy(ctx, new_jid.as_deref(), reason.as_deref(), password.as_deref());
            ctx.send(reply(stanza), actor.clone().into());
            OwnerOutcome::Destroyed
        } else if child.is("x", NS_DATA) {
            self.process_form(ctx, stanza, child, actor);
            OwnerOutcome::Kept
        } else {
            ctx.error(stanza, StanzaError::service_unavailable(), None);
            OwnerOutcome::Kept
        }
    }

    fn process_form(&mut self, ctx: &mut Ctx, stanza: &Element, form: &Element, actor: &FullJid) {
        match form.attr("type") {
            Some("cancel") => return ctx.send(reply(stanza), actor.clone().into()),
            Some("submit") => {}
            _ => {
                let error = StanzaError::bad_request().with_text("Not a submitted form");
                return ctx.error(stanza, error, None);
            }
        }
        let instant = form.children().next().is_none(); // an instant room: accept the defaults
        if !instant && form_type(form).as_deref() != Some(NS_MUC_ROOMCONFIG) {
            let error = StanzaError::bad_request().with_text("Form is not of type room configuration");
            return ctx.error(stanza, error, None);
        }
        let layout = self.config_form(ctx);
        let mut submitted = if instant { Vec::new() } else { read_submitted(&layout, form) };
        if ctx.facts.sender_may_persist == Some(false) && submitted.iter().any(|f| f.var == PERSISTENT_FIELD)
        {
            let error =
                StanzaError::not_acceptable().with_text("You may not change whether the room is kept");
            return ctx.error(stanza, error, None);
        }
        let sets_archiving = submitted.iter().any(|f| f.var == ARCHIVE_FIELD);
        if sets_archiving && ctx.facts.archive_switch.is_some_and(|s| !s.sender_may_change) {
            let error =
                StanzaError::not_acceptable().with_text("You may not change whether the room is archived");
            return ctx.error(stanza, error, None);
        }
        if let Some(field) = submitted.iter().find(|f| too_long(ctx, f)) {
            let error = StanzaError::not_acceptable().with_text(format!("{} is too long", field.var));
            return ctx.error(stanza, error, None);
        }
        // The modules see the whole form first, and may refuse or change the room's fields.
        let mut module_codes = Vec::new();
        if ctx.listens(Hook::Config) {
            let question = || Question::ConfigSubmitted {
                room: self.jid.clone(),
                actor: actor.clone(),
                layout: layout.clone(),
            };
            match ctx.consult(Hook::Config, question) {
                None => return,
                Some(Answer::Configured { fields, codes }) => {
                    submitted = if instant { Vec::new() } else { read_submitted(&layout, &form_of(&fields)) };
                    module_codes = codes;
                }
                Some(_) => {}
            }
        }
        // Any configuration, even an instant room's, unlocks a new room.
        self.will_change_record(ctx);
        self.settings.locked_until = None;
        let (mut codes, effects) = self.settings.apply(&submitted);
        if let Some(field) = submitted.iter().find(|f| f.var == ARCHIVE_FIELD) {
            self.settings.set_archiving(matches!(field.value, Some(Value::Bool(true))));
        }
        if let Some(field) = submitted.iter().find(|f| f.var == crate::room::mucsub::ALLOW_FIELD) {
            if self.set_allow_subscription(matches!(field.value, Some(Value::Bool(true))))
                && !codes.contains(&104)
            {
                codes.push(104);
            }
        }
        self.carry_out_effects(ctx, effects);
        for code in module_codes {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        ctx.send(reply(stanza), actor.clone().into());
        self.config_notice(ctx, &codes);
    }

    /// The room's form, with the host's archiving switch after the room's own fields.
    fn config_form(&self, ctx: &Ctx) -> crate::dataform::Form {
        let (version, max_history) = (ctx.config.server_version.0, ctx.config.max_history_messages);
        let mut form = self.settings.form(self.jid_str(), version, max_history);
        if let Some(switch) = ctx.facts.archive_switch {
            let on = self.settings.archiving().unwrap_or(switch.default);
            let field = crate::dataform::Field::new(ARCHIVE_FIELD, crate::dataform::FieldType::Boolean)
                .label("Enable message archiving")
                .value(crate::dataform::Value::Bool(on));
            form.fields.push(field);
        }
        if ctx.config.mucsub {
            let field = crate::dataform::Field::new(
                crate::room::mucsub::ALLOW_FIELD,
                crate::dataform::FieldType::Boolean,
            )
            .label("Allow subscription")
            .value(crate::dataform::Value::Bool(self.allows_subscription()));
            form.fields.push(field);
        }
        form
    }

    fn carry_out_effects(&mut self, ctx: &mut Ctx, effects: Vec<ConfigEffect>) {
        for effect in effects {
            match effect {
                ConfigEffect::MembersOnlyEnabled => self.remove_non_members(ctx),
                ConfigEffect::PresenceBroadcastChanged(old) => self.rebroadcast_presences(ctx, &old),
            }
        }
    }

    /// One setting changed by the host's modules (stock's `room:set_<name>()`): as if that
    /// field alone were submitted, without the notice. Returns whether it changed.
    pub fn set_option(
        &mut self,
        ctx: &mut Ctx,
        var: &'static str,
        value: Option<crate::dataform::Value>,
    ) -> bool {
        let (codes, effects) = self.settings.apply(&[crate::dataform::Submitted { var, value }]);
        self.carry_out_effects(ctx, effects);
        let changed = !codes.is_empty();
        // Only modules set options, through MucHost::change_room, which keeps the room
        // as it was itself.
        self.needs_save |= changed;
        changed
    }

    /// Takes `new`'s configurable settings as if an owner had submitted them in the form
    /// (an admin command's change): the effects carried out and the change announced. The
    /// history settings stay (a command has none to give). Returns whether anything changed.
    pub fn apply_settings(&mut self, ctx: &mut Ctx, new: &super::settings::RoomSettings) -> bool {
        const KEPT: [&str; 2] = ["muc#roomconfig_historylength", "muc#roomconfig_defaulthistorymessages"];
        let layout = new.form(self.jid_str(), ctx.config.server_version.0, ctx.config.max_history_messages);
        let submitted: Vec<crate::dataform::Submitted> = layout
            .fields
            .into_iter()
            .filter_map(|field| {
                // An empty text is submitted as none, as read_submitted reads it.
                let value =
                    field.value.filter(|v| !matches!(v, crate::dataform::Value::Text(t) if t.is_empty()));
                Some(crate::dataform::Submitted { var: field.var?, value })
            })
            .filter(|field| !KEPT.contains(&field.var))
            .collect();
        self.will_change_record(ctx);
        let (codes, effects) = self.settings.apply(&submitted);
        self.carry_out_effects(ctx, effects);
        self.config_notice(ctx, &codes);
        !codes.is_empty()
    }

    /// Tells the occupants that the configuration changed (unless nothing is to be told).
    pub fn config_notice(&mut self, ctx: &mut Ctx, codes: &[u16]) {
        if codes.is_empty() {
            return;
        }
        let mut x = el("x", NS_MUC_USER);
        for code in codes {
            x.append_child(crate::xml::status(*code));
        }
        let msg = el("message", NS_CLIENT).with("type", "groupchat").with("from", self.jid.as_str()).child(x);
        self.broadcast_message(ctx, msg);
    }

    /// Members-only was switched on: everyone without an affiliation leaves (322).
    fn remove_non_members(&mut self, ctx: &mut Ctx) {
        let outsiders: Vec<_> = self
            .occupants()
            .filter(|o| self.occupant_affiliation(ctx, o) <= Affiliation::None)
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for mut occupant in outsiders {
            occupant.role = None;
            self.save_occupant(occupant.clone());
            removed.push(occupant);
        }
        for occupant in &removed {
            self.publicise(ctx, occupant, &PresenceX::codes(&[322]), None, None, None, None, false);
        }
    }

    /// The roles whose presence is shown changed: show or hide occupants accordingly.
    fn rebroadcast_presences(&mut self, ctx: &mut Ctx, old: &[Role]) {
        let occupants: Vec<_> = self.occupants().cloned().collect();
        for occupant in &occupants {
            let role = occupant.role_or_none();
            let now_shown = self.settings.broadcasts(role);
            let was_shown = old.contains(&role);
            if now_shown && !was_shown {
                self.publicise(ctx, occupant, &PresenceX::codes(&[]), None, None, None, None, false);
            } else if was_shown && !now_shown {
                self.publicise(ctx, occupant, &PresenceX::codes(&[]), None, None, None, None, true);
            }
        }
    }

    /// Destroys the room: every occupant is told, with the reason and alternative venue.
    pub fn destroy(
        &mut self,
        ctx: &mut Ctx,
        new_jid: Option<&str>,
        reason: Option<&str>,
        password: Option<&str>,
    ) {
        let mut destroy = el("destroy", NS_MUC_USER).with_opt("jid", new_jid);
        if let Some(reason) = reason {
            destroy.append_child(el("reason", NS_MUC_USER).text(reason));
        }
        if let Some(password) = password {
            destroy.append_child(el("password", NS_MUC_USER).text(password));
        }
        let x = PresenceX { base: muc_user_x(&[]).child(destroy), own: None };
        self.clear(ctx, &x);
        self.destroyed_with = Some(Box::new(Tombstone {
            reason: reason.map(str::to_owned),
            new_jid: new_jid.map(str::to_owned),
        }));
    }
}

/// Whether a submitted name, description or password is longer than the service allows.
fn too_long(ctx: &Ctx, field: &Submitted) -> bool {
    let limit = match field.var {
        "muc#roomconfig_roomname" => ctx.config.max_name_length,
        "muc#roomconfig_roomdesc" => ctx.config.max_description_length,
        "muc#roomconfig_roomsecret" => ctx.config.max_password_length,
        _ => None,
    };
    matches!((&field.value, limit), (Some(Value::Text(text)), Some(limit)) if text.len() > limit)
}
