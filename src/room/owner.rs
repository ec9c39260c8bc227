//! muc#owner: the configuration form, and destroying the room.

use super::settings::{ConfigEffect, Tombstone};
use super::{Ctx, PresenceX, Room};
use crate::affiliation::{Affiliation, Role};
use crate::dataform::{form_type, read_submitted};
use crate::hooks::{Event, Hook};
use crate::xml::{
    child_text, el, muc_user_x, reply, ElementExt, StanzaError, NS_CLIENT, NS_DATA, NS_MUC_OWNER,
    NS_MUC_ROOMCONFIG, NS_MUC_USER,
};
use jid::FullJid;
use minidom::Element;

/// The configuration field the host's `sender_may_persist` rule governs.
const PERSISTENT_FIELD: &str = "muc#roomconfig_persistentroom";

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
        let mut form =
            self.settings.form(self.jid_str(), ctx.config.server_version.0, ctx.config.max_history_messages);
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
        let submitted = if form.children().next().is_none() {
            Vec::new() // an instant room: accept the defaults
        } else {
            if form_type(form).as_deref() != Some(NS_MUC_ROOMCONFIG) {
                let error = StanzaError::bad_request().with_text("Form is not of type room configuration");
                return ctx.error(stanza, error, None);
            }
            let layout = self.settings.form(
                self.jid_str(),
                ctx.config.server_version.0,
                ctx.config.max_history_messages,
            );
            read_submitted(&layout, form)
        };
        if ctx.facts.sender_may_persist == Some(false) && submitted.iter().any(|f| f.var == PERSISTENT_FIELD)
        {
            let error =
                StanzaError::not_acceptable().with_text("You may not change whether the room is kept");
            return ctx.error(stanza, error, None);
        }
        // Any configuration, even an instant room's, unlocks a new room.
        self.will_change_record(ctx);
        self.settings.locked_until = None;
        let (codes, effects) = self.settings.apply(&submitted);
        self.carry_out_effects(ctx, effects);
        let listening = ctx.listens(Hook::Config);
        if listening {
            let (room, actor, form) = (self.jid.clone(), actor.clone(), form.clone());
            ctx.out.fire(Event::ConfigSubmitted { room, actor, form });
        }
        ctx.send(reply(stanza), actor.clone().into());
        if listening {
            ctx.out.fire(Event::ConfigNotice { room: self.jid.clone(), codes });
        } else {
            self.config_notice(ctx, &codes);
        }
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
