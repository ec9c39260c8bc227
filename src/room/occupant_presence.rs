//! Announcing an occupant's presence: who sees which variant of it (with real JIDs, their
//! own, anonymous), built from one base presence and `<x/>` templates.
//!
//! The announcement is planned first ([`OccupantPresence`], a type of the host protocol in
//! [`crate::presence_plan`]) and built second, so that
//! when the host's modules want to change it (stock's `muc-build-occupant-presence` and
//! `muc-broadcast-presence`) the plan can go to the host as an event: the handlers change
//! the base presence, the template and the nick, actor and reason the items name, and the
//! host has the core build the deliveries from what they left
//! ([`crate::MucHost::occupant_presence`]).

use super::{item_element, Ctx, PresenceX, Room};
use crate::affiliation::Role;
use crate::hooks::{Event, Hook};
use crate::occupant::Occupant;
use crate::outcome::Outcome;
use crate::presence_plan::{OccupantPresence, OwnPresences, View};
use crate::xml::{el, muc_user_x, ElementExt, NS_CLIENT};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::borrow::Cow;

impl OccupantPresence<'_> {
    /// Builds the deliveries.
    pub fn send(self, out: &mut Outcome) {
        let items_x = |template: &Element, anonymous: bool, actor_jid: Option<&str>| {
            let mut x = template.clone();
            let item = |jid: Option<&str>| {
                item_element(
                    self.affiliation,
                    Some(self.occupant.role_or_none()),
                    jid,
                    self.nick.as_deref(),
                    self.actor_nick.as_deref(),
                    actor_jid,
                    self.reason.as_deref(),
                )
            };
            if anonymous {
                x.append_child(item(None));
            } else {
                for jid in self.occupant.session_jids() {
                    x.append_child(item(Some(jid.as_str())));
                }
            }
            x
        };
        // Those who see real JIDs see the actor's too.
        let actor_jid = self.actor.as_ref().map(|a| a.as_str());
        let mut own_x = items_x(self.own_x.as_ref().unwrap_or(&self.x), false, None);
        for (to, view, unavailable) in self.recipients {
            let x = match view {
                View::Full => items_x(&self.x, false, actor_jid),
                View::Own => own_x.clone(),
                View::Anonymous => items_x(&self.x, true, None),
            };
            let mut presence = self.stanza.clone().child(x);
            if unavailable {
                presence.set("type", "unavailable");
            }
            out.send_many(presence, to);
        }
        own_x.append_child(crate::xml::status(110));
        match self.own {
            OwnPresences::Nothing => {}
            OwnPresences::Base(to) => out.send_many(self.stanza.child(own_x), to),
            OwnPresences::Sessions(sessions) => {
                for (jid, presence) in sessions {
                    let mut presence = presence.child(own_x.clone());
                    presence.unset("to");
                    out.send(presence, jid.into());
                }
            }
        }
    }

    /// The plan, owning what it borrowed, to go to the host in an event.
    fn into_owned(self) -> OccupantPresence<'static> {
        OccupantPresence { occupant: Cow::Owned(self.occupant.into_owned()), ..self }
    }
}

impl Room {
    /// Sends `occupant`'s presence to the room: the occupant's own sessions get theirs
    /// with status 110; others get it with or without real JIDs, as whois allows.
    #[allow(clippy::too_many_arguments)]
    pub fn publicise(
        &self,
        ctx: &mut Ctx,
        occupant: &Occupant,
        x: &PresenceX,
        nick: Option<&str>,
        actor: Option<&Jid>,
        reason: Option<&str>,
        prev_role: Option<Role>,
        force_unavailable: bool,
    ) {
        // Everyone else: real JIDs for those who may see them, the occupant's other
        // nicknames see their own JIDs, the rest see none.
        let broadcast = self.settings.broadcasts(occupant.role_or_none()) || force_unavailable;
        let was_broadcast = prev_role.is_some_and(|r| self.settings.broadcasts(r));
        let mut groups: [Vec<Jid>; 6] = Default::default();
        if broadcast || was_broadcast {
            for other in self.occupants.iter().filter(|o| o.nick != occupant.nick) {
                let view = self.view_of(occupant, other);
                groups[view as usize * 2 + usize::from(!broadcast)]
                    .extend(other.session_jids().cloned().map(Jid::from));
            }
        }
        let views = [View::Full, View::Own, View::Anonymous];
        let recipients = groups
            .into_iter()
            .enumerate()
            .filter(|(_, to)| !to.is_empty())
            .map(|(i, to)| (to, views[i / 2], i % 2 == 1))
            .collect();
        let own = if occupant.role.is_none() {
            OwnPresences::Base(occupant.session_jids().cloned().map(Jid::from).collect())
        } else {
            let sessions = occupant.sessions().iter().map(|s| {
                let mut presence = occupant.session_presence(s);
                self.add_hats(ctx, &mut presence, &occupant.bare_jid);
                (s.jid.clone(), presence)
            });
            OwnPresences::Sessions(sessions.collect())
        };
        let plan = OccupantPresence {
            x: x.base.clone(),
            own_x: x.own.clone(),
            nick: nick.map(str::to_owned),
            actor: actor.cloned(),
            reason: reason.map(str::to_owned),
            recipients,
            own,
            broadcast: true,
            ..self.plan_presence(ctx, occupant, force_unavailable)
        };
        self.send_presence(ctx, plan);
    }

    /// Sends `occupant`'s presence to one other occupant only (a reply to a probe).
    pub fn publicise_to(&self, ctx: &mut Ctx, occupant: &Occupant, recipient: &Occupant) {
        let view = self.view_of(occupant, recipient);
        let to = recipient.session_jids().cloned().map(Jid::from).collect();
        let plan = OccupantPresence {
            recipients: vec![(to, view, false)],
            ..self.plan_presence(ctx, occupant, false)
        };
        self.send_presence(ctx, plan);
    }

    /// Which variant of `occupant`'s presence `recipient` sees.
    fn view_of(&self, occupant: &Occupant, recipient: &Occupant) -> View {
        if self.can_see_real_jids(recipient.role) {
            View::Full
        } else if recipient.bare_jid == occupant.bare_jid {
            View::Own
        } else {
            View::Anonymous
        }
    }

    /// A plan with the base presence and nothing to send yet.
    fn plan_presence<'a>(
        &self,
        ctx: &Ctx,
        occupant: &'a Occupant,
        force_unavailable: bool,
    ) -> OccupantPresence<'a> {
        let mut stanza = self.base_presence(occupant, force_unavailable);
        self.add_hats(ctx, &mut stanza, &occupant.bare_jid);
        self.stamp_occupant_id(ctx, &mut stanza, &occupant.bare_jid);
        OccupantPresence {
            occupant: Cow::Borrowed(occupant),
            affiliation: self.occupant_affiliation(ctx, occupant),
            stanza,
            x: muc_user_x(&[]),
            own_x: None,
            nick: None,
            actor: None,
            actor_nick: None,
            reason: None,
            recipients: Vec::new(),
            own: OwnPresences::Nothing,
            broadcast: false,
        }
    }

    /// Sends a planned presence, or leaves it to the host's modules first.
    fn send_presence(&self, ctx: &mut Ctx, mut plan: OccupantPresence) {
        plan.actor_nick = self.actor_nick(plan.actor.as_ref());
        if ctx.listens(Hook::OccupantPresence) {
            let presence = Box::new(plan.into_owned());
            return ctx.out.fire(Event::OccupantPresence { room: self.jid.clone(), presence });
        }
        plan.send(ctx.out);
    }

    /// The nick in this room of the actor of a change, if the actor is an occupant.
    pub fn actor_nick(&self, actor: Option<&Jid>) -> Option<String> {
        let actor = actor?.try_as_full().ok()?;
        self.nick_of(actor).map(str::to_owned)
    }

    /// The presence others see for `occupant`: its primary session's, or a generated
    /// unavailable one when it is leaving without having said so.
    fn base_presence(&self, occupant: &Occupant, force_unavailable: bool) -> Element {
        match occupant.presence(None) {
            Some(pr)
                if (occupant.role.is_some() || pr.attr("type") == Some("unavailable"))
                    && !force_unavailable =>
            {
                let mut pr = pr;
                pr.unset("to");
                pr
            }
            _ => el("presence", NS_CLIENT).with("from", occupant.nick.as_str()).with("type", "unavailable"),
        }
    }

    /// Sends one presence of an occupant list (or of an absent registered user) to one
    /// session, or leaves it to the host's modules first (stock's
    /// `muc-build-occupant-presence` sees each).
    pub(super) fn send_listed_presence(
        &self,
        ctx: &mut Ctx,
        presence: Element,
        of: (&FullJid, &BareJid, bool),
        to: &FullJid,
        repeatable: bool,
    ) {
        let (nick, bare_jid, is_occupant) = of;
        if ctx.listens(Hook::OccupantPresence) {
            return ctx.out.fire(Event::BuildPresence {
                room: self.jid.clone(),
                nick: nick.clone(),
                bare_jid: bare_jid.clone(),
                is_occupant,
                stanza: presence,
                to: to.clone(),
            });
        }
        if repeatable {
            ctx.out.send_repeatable(presence, vec![to.clone().into()]);
        } else {
            ctx.send(presence, to.clone().into());
        }
    }
}
