//! Mediated invitations and declines (XEP-0045 §7.8.2), and voice requests (§7.13).

use super::{Actor, Ctx, DataChange, Room};
use crate::affiliation::{Affiliation, Role};
use crate::dataform::{read_submitted, Field, FieldType, Form, Value};
use crate::hooks::{Event, Hook, Question};
use crate::occupant::filter_muc_payloads;
use crate::room::settings::Whois;
use crate::xml::{child_text, el, ElementExt, StanzaError, NS_CLIENT, NS_MUC_USER};
use jid::{FullJid, Jid};
use minidom::Element;

const NS_CONFERENCE: &str = "jabber:x:conference";
const NS_MUC_REQUEST: &str = "http://jabber.org/protocol/muc#request";

impl Room {
    /// `<message><x xmlns='…muc#user'><invite to='…'/></x></message>` to the room.
    pub fn handle_invite(&mut self, ctx: &mut Ctx, stanza: &Element, payload: &Element, from: &FullJid) {
        let Some(invitee) = payload.attr("to").and_then(|t| t.parse::<Jid>().ok()) else {
            return ctx.error(stanza, StanzaError::jid_malformed().with_kind_cancel(), None);
        };
        if let Some((error, by)) = self.invite_refusal(ctx, &Jid::from(from.clone())) {
            return ctx.error(stanza, error, by);
        }
        let question = || Question::PreInvite { room: self.jid.clone(), invitee: invitee.clone() };
        if ctx.consult(Hook::Invite, question).is_none() {
            return; // refused by a module (which answered), or asked first
        }
        // The invitation as stock's muc.lib builds it, then its muc-invite steps.
        let reason = child_text(payload, "reason", NS_MUC_USER).unwrap_or_default();
        let mut invite =
            filter_muc_payloads(stanza).with("from", self.jid.as_str()).with("to", invitee.as_str());
        invite.append_child(
            el("x", NS_MUC_USER).child(
                el("invite", NS_MUC_USER)
                    .with("from", from.as_str())
                    .child(el("reason", NS_MUC_USER).text(reason)),
            ),
        );
        self.name_inviter(ctx, &mut invite);
        self.complete_invite(ctx, &mut invite);
        if ctx.listens(Hook::Invite) {
            return ctx.out.fire(Event::Invite { room: self.jid.clone(), stanza: invite, to: invitee });
        }
        invite.unset("to");
        ctx.send(invite, invitee);
    }

    /// Stock's `muc-pre-invite` steps: whether `from` may invite (a visitor or more; in a
    /// members-only room an admin, or a member where members may invite), or the error it
    /// gets and who says so.
    pub fn invite_refusal(&self, ctx: &Ctx, from: &Jid) -> Option<(StanzaError, Option<&str>)> {
        let affiliation = self.affiliation(ctx, &from.to_bare());
        let occupant = from.try_as_full().ok().and_then(|full| self.occupant_by_real_jid(full));
        let role = occupant.map(|o| o.role).unwrap_or_else(|| self.default_role(affiliation));
        if role.is_none_or(|r| r <= Role::Visitor) {
            return Some((StanzaError::forbidden(), None));
        }
        if self.settings.members_only {
            let required =
                if self.settings.allow_member_invites { Affiliation::Member } else { Affiliation::Admin };
            if affiliation < required {
                return Some((StanzaError::forbidden(), Some(self.jid_str())));
            }
        }
        None
    }

    /// Stock's `muc-invite` step at 50 (whois): a semi-anonymous room names the inviter
    /// by its nick to an invitee who will not be a moderator.
    pub fn name_inviter(&self, ctx: &Ctx, invite: &mut Element) {
        if self.settings.whois != Whois::Moderators {
            return;
        }
        let Some(invitee) = invite.attr("to").and_then(|t| t.parse::<Jid>().ok()) else { return };
        if self.default_role(self.affiliation(ctx, &invitee.to_bare())) == Some(Role::Moderator) {
            return;
        }
        let Some(item) = invite_item(invite) else { return };
        let inviter = item.attr("from").and_then(|f| f.parse::<FullJid>().ok());
        if let Some(nick) = inviter.and_then(|j| self.nick_of(&j).and_then(|n| self.nick_jid(n))) {
            item.set("from", nick.to_string());
        }
    }

    /// Stock's other `muc-invite` steps on an invitation to its `to`: the room's
    /// password, `jabber:x:conference` and a body for clients without invitations, and,
    /// in a members-only room, membership for an invitee without an affiliation.
    pub fn complete_invite(&mut self, ctx: &mut Ctx, invite: &mut Element) {
        let Some(item) = invite_item(invite) else { return };
        let inviter = item.attr("from").unwrap_or_default().to_owned();
        let reason = child_text(item, "reason", NS_MUC_USER).unwrap_or_default();
        if let Some(password) = &self.settings.password {
            if let Some(x) = invite.get_child_mut("x", NS_MUC_USER) {
                x.append_child(el("password", NS_MUC_USER).text(password.clone()));
            }
        }
        invite.append_child(el("x", NS_CONFERENCE).with("jid", self.jid.as_str()).text(reason.clone()));
        if !invite.has_child("body", NS_CLIENT) {
            let why = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
            let body = format!("{inviter} invited you to the room {}{why}", self.jid);
            invite.append_child(el("body", NS_CLIENT).text(body));
        }
        let Some(invitee) = invite.attr("to").and_then(|t| t.parse::<Jid>().ok()) else { return };
        if self.settings.members_only && self.affiliation(ctx, &invitee.to_bare()) <= Affiliation::None {
            // Invited into a members-only room: the invitee becomes a member.
            let why = format!("Invited by {inviter}");
            let _ = self.set_affiliation(
                ctx,
                Actor::Room,
                &invitee.to_bare(),
                Affiliation::Member,
                Some(&why),
                DataChange::Keep,
            );
        }
    }

    /// `<message><x xmlns='…muc#user'><decline to='…'/></x></message>` to the room.
    pub fn handle_decline(&mut self, ctx: &mut Ctx, stanza: &Element, payload: &Element, from: &FullJid) {
        let Some(declinee) = payload.attr("to").and_then(|t| t.parse::<Jid>().ok()) else {
            return ctx.error(stanza, StanzaError::jid_malformed().with_kind_cancel(), None);
        };
        let question = || Question::PreDecline { room: self.jid.clone(), declinee: declinee.clone() };
        if ctx.consult(Hook::Decline, question).is_none() {
            return; // refused by a module (which answered), or asked first
        }
        let reason = child_text(payload, "reason", NS_MUC_USER).unwrap_or_default();
        let mut decline = filter_muc_payloads(stanza).with("from", self.jid.as_str());
        decline.unset("to");
        decline.append_child(
            el("x", NS_MUC_USER).child(
                el("decline", NS_MUC_USER)
                    .with("from", from.as_str())
                    .child(el("reason", NS_MUC_USER).text(reason.clone())),
            ),
        );
        if !decline.has_child("body", NS_CLIENT) {
            let why = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
            let body = format!("{from} declined your invite to the room {}{why}", self.jid);
            decline.append_child(el("body", NS_CLIENT).text(body));
        }
        // To an occupant of this room: to each of its sessions.
        let occupant = (declinee.to_bare() == self.jid)
            .then(|| declinee.resource().and_then(|nick| self.occupant_by_nick(nick.as_str())))
            .flatten();
        let to = match occupant {
            Some(o) => o.session_jids().cloned().map(Jid::from).collect(),
            None => vec![declinee.clone()],
        };
        if ctx.listens(Hook::Decline) {
            let stanza = decline.with("to", declinee.as_str());
            return ctx.out.fire(Event::Decline { room: self.jid.clone(), stanza, to });
        }
        ctx.out.send_many(decline, to);
    }

    /// A muc#request form: from a visitor, a request for voice sent on to the moderators;
    /// from a moderator, the answer.
    pub fn handle_voice_request(&mut self, ctx: &mut Ctx, stanza: &Element, form: &Element, from: &FullJid) {
        let Some(occupant) = self.occupant_by_real_jid(from).cloned() else {
            return ctx.error(stanza, StanzaError::not_in_room(), Some(self.jid_str()));
        };
        let fields = read_submitted(&voice_request_form(None, None), form);
        let field = |var: &str| fields.iter().find(|f| f.var == var).and_then(|f| f.value.clone());
        if occupant.role == Some(Role::Moderator) {
            if field("muc#request_allow") != Some(Value::Bool(true)) {
                return;
            }
            let Some(Value::Text(jid)) = field("muc#jid") else { return };
            let Some(affected) =
                jid.parse::<FullJid>().ok().and_then(|j| self.occupant_by_real_jid(&j).cloned())
            else {
                return;
            };
            if affected.role != Some(Role::Visitor) {
                return;
            }
            let actor = Jid::from(from.clone());
            let nick = affected.nick_str().to_owned();
            if let Err(e) =
                self.set_role(ctx, Actor::User(&actor), &nick, Some(Role::Participant), Some("Voice granted"))
            {
                ctx.error(stanza, e, None);
            }
        } else if occupant.role == Some(Role::Visitor) {
            let form = voice_request_form(Some(from.as_str()), Some(occupant.nick_str())).render("form");
            let msg =
                el("message", NS_CLIENT).with("type", "normal").with("from", self.jid.as_str()).child(form);
            self.broadcast(ctx, msg, Role::Moderator);
        }
    }
}

fn voice_request_form(jid: Option<&str>, nick: Option<&str>) -> Form {
    let mut role = Field::new("muc#role", FieldType::ListSingle)
        .label("Requested role")
        .value(Value::Text("participant".into()));
    for r in Role::ALL {
        role = role.option(r.as_str(), r.as_str());
    }
    Form {
        title: Some("Voice Request".into()),
        instructions: None,
        fields: vec![
            Field::hidden("FORM_TYPE", NS_MUC_REQUEST),
            Field::new("muc#jid", FieldType::JidSingle)
                .label("User ID")
                .desc("The user's JID (address)")
                .maybe_value(jid.map(|j| Value::Text(j.into()))),
            Field::new("muc#roomnick", FieldType::TextSingle)
                .label("Room nickname")
                .desc("The user's nickname within the room")
                .maybe_value(nick.map(|n| Value::Text(n.into()))),
            role,
            Field::new("muc#request_allow", FieldType::Boolean)
                .label("Grant voice to this person?")
                .desc("Specify whether this person is able to speak in a moderated room")
                .value(Value::Bool(false)),
        ],
    }
}

/// The `<invite/>` of an invitation's first muc#user `<x/>`, as stock's handlers find it.
fn invite_item(invite: &mut Element) -> Option<&mut Element> {
    invite.get_child_mut("x", NS_MUC_USER)?.get_child_mut("invite", NS_MUC_USER)
}

/// The FORM_TYPE of voice requests.
pub fn is_voice_request(form: &Element) -> bool {
    crate::dataform::form_type(form).as_deref() == Some(NS_MUC_REQUEST)
}
