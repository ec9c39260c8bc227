//! Presence to an occupant JID: joining (and creating) a room, presence updates, nickname
//! changes, leaving, probes, and sessions whose errors get them removed.

use super::{Ctx, PresenceX, Room};
use crate::affiliation::{Affiliation, Role};
use crate::config::RoomCreation;
use crate::hooks::{Answer, Event, Hook, Question};
use crate::outcome::LogLevel;
use crate::xml::{
    child_text, el, error_condition, muc_user_x, status, ElementExt, ErrorType, StanzaError, NS_CLIENT,
    NS_MUC, NS_STANZAS,
};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;

/// Why a join or nick change was refused, and who says so.
struct Refusal {
    error: StanzaError,
    by_host: bool,
}

impl Refusal {
    fn room(error: StanzaError) -> Self {
        Refusal { error, by_host: false }
    }
}

impl Room {
    fn refuse(&self, ctx: &mut Ctx, stanza: &Element, refusal: Refusal) {
        let by = if refusal.by_host { ctx.host.to_string() } else { self.jid.to_string() };
        ctx.error(stanza, refusal.error, Some(&by));
    }

    /// The first presence to a room that does not exist yet: creates it with the sender as
    /// owner. Returns whether the room now exists (it does even if the join itself is then
    /// refused, as in stock).
    pub fn handle_first_presence(
        &mut self,
        ctx: &mut Ctx,
        stanza: &Element,
        real_jid: &FullJid,
        to: &FullJid,
    ) -> bool {
        let bare = real_jid.to_bare();
        let muc_x = stanza.get_child("x", NS_MUC);
        if ctx.config.room_locking && muc_x.is_some() {
            self.settings.locked_until = Some(ctx.now() + ctx.config.room_lock_timeout);
        }
        if let Some(password) = muc_x.and_then(|x| child_text(x, "password", NS_MUC)) {
            self.settings.password = Some(password).filter(|p| !p.is_empty()).map(String::into_boxed_str);
        }
        if !may_create_room(ctx, &bare) {
            let error = StanzaError::not_allowed().with_text("Room creation is restricted");
            ctx.error(stanza, error, Some(ctx.host.as_str()));
            return false;
        }
        let made_owner = self.set_affiliation(
            ctx,
            super::Actor::Room,
            &bare,
            Affiliation::Owner,
            None,
            super::DataChange::Keep,
        );
        // Only a module may refuse it (muc-pre-set-affiliation): the room goes on without
        // an owner, as stock's.
        if made_owner.is_err() && ctx.out.ask.is_some() {
            return true; // asked: the host keeps the room until the answer
        }

        // Modules may configure the new room, or refuse it (and answer the creator).
        let question = || Question::PreCreate { room: self.jid.clone() };
        if ctx.consult(Hook::RoomPreCreate, question).is_none() {
            return ctx.out.ask.is_some(); // asked: the host keeps the room until the answer
        }
        let mut occupant = self.new_occupant(ctx, bare, to.clone());
        let question = || Question::PreJoin {
            room: self.jid.clone(),
            nick: occupant.nick.clone(),
            bare_jid: occupant.bare_jid.clone(),
            role: occupant.role,
            is_first_session: true,
        };
        let Some(answer) = ctx.consult(Hook::OccupantPreJoin, question) else {
            // Refused by a module: the room stays, empty, as a refused join leaves it; or
            // asked: the host keeps it until the answer.
            return true;
        };
        self.apply_answer(&mut occupant, answer);
        if ctx.listens(Hook::RoomLifecycle) {
            ctx.out.fire(Event::RoomCreated { room: self.jid.clone() });
        }
        if let Err(refusal) = self.check_join(ctx, stanza, &mut occupant.nick, true) {
            self.refuse(ctx, stanza, refusal);
            return true;
        }
        let nick_changed = &occupant.nick != to;
        let mut stanza_with_id = stanza.clone();
        if ctx.config.hats {
            super::hats::strip_claimed_hats(&mut stanza_with_id);
        }
        self.stamp_occupant_id(ctx, &mut stanza_with_id, &occupant.bare_jid);
        occupant.set_session(real_jid, stanza_with_id);
        let mut codes = vec![201];
        if self.settings.whois == super::settings::Whois::Anyone {
            codes.push(100);
        }
        if nick_changed {
            codes.push(210);
        }
        self.save_occupant(occupant.clone());
        self.publicise(ctx, &occupant, &PresenceX::codes(&codes), None, None, None, None, false);
        self.session_joined(ctx, stanza, real_jid, &occupant.nick, true);
        true
    }

    /// Presence from a user to one of this room's occupant JIDs.
    pub fn handle_presence_to_occupant(
        &mut self,
        ctx: &mut Ctx,
        stanza: &Element,
        real_jid: &FullJid,
        to: &FullJid,
    ) {
        match stanza.attr("type") {
            Some("error") => self.handle_kickable(ctx, stanza, real_jid),
            None | Some("unavailable") | Some("probe") => {
                self.handle_normal_presence(ctx, stanza, real_jid, to)
            }
            // ejabberd relays XEP-0018 presences; stock ignores them, and results.
            Some("result") | Some("visible") | Some("invisible") => {}
            Some(_) => ctx.error(stanza, StanzaError::modify_bad_request(), Some(self.jid_str())),
        }
    }

    /// An error from a session bounced to the room: that session is removed (333 when it
    /// was the occupant's last). Returns false if the sender is not in the room.
    pub fn handle_kickable(&mut self, ctx: &mut Ctx, stanza: &Element, real_jid: &FullJid) {
        let Some(mut occupant) = self.occupant_by_real_jid(real_jid).cloned() else { return };
        let condition = error_condition(stanza).map(|c| c.replace('-', " "));
        let mut message = format!("Kicked: {}", condition.as_deref().unwrap_or("presence error"));
        let text = stanza
            .get_child("error", NS_CLIENT)
            .and_then(|e| e.get_child("text", NS_STANZAS))
            .map(Element::text);
        if let Some(text) = text.filter(|_| self.settings.whois == super::settings::Whois::Anyone) {
            message = format!("{message}: {text}");
        }
        let unavailable = el("presence", NS_CLIENT)
            .with("type", "unavailable")
            .child(el("status", NS_CLIENT).text(message));
        occupant.set_session(real_jid, unavailable);
        let orig_role = occupant.role;
        let is_last_session = occupant.primary() == Some(real_jid);
        if is_last_session {
            occupant.role = None;
        }
        let saved = self.save_occupant(occupant.clone());
        let codes: &[u16] = if is_last_session { &[333] } else { &[] };
        let shown = saved.as_ref().unwrap_or(&occupant);
        self.publicise(ctx, shown, &PresenceX::codes(codes), None, None, None, orig_role, false);
    }

    fn handle_normal_presence(&mut self, ctx: &mut Ctx, stanza: &Element, real_jid: &FullJid, to: &FullJid) {
        let kind = stanza.attr("type");
        let bare = real_jid.to_bare();
        let orig = self.occupant_by_real_jid(real_jid).cloned();
        let muc_x = stanza.get_child("x", NS_MUC).is_some();

        if orig.is_none() && !muc_x && kind.is_none() {
            ctx.log(
                LogLevel::Debug,
                format!("{real_jid} attempted to join {to} without <x>, possibly desynced"),
            );
            let error =
                StanzaError::item_not_found().with_text("You are not currently connected to this chat");
            ctx.error(stanza, error, Some(self.jid_str()));
            return;
        }

        // Who the session is now (orig) and who it will be (dest).
        let mut is_update = false;
        let mut is_first_dest_session = false;
        let mut dest = match kind {
            Some("unavailable") => {
                if orig.is_none() {
                    return;
                }
                None
            }
            Some("probe") => {
                self.respond_to_probe(ctx, stanza, real_jid, to, orig.as_ref());
                return;
            }
            _ => match &orig {
                Some(o) if &o.nick == to => {
                    is_update = true;
                    Some(o.clone())
                }
                _ => match self.occupant_by_nick(to.resource().as_str()) {
                    Some(existing) => Some(existing.clone()),
                    None => {
                        is_first_dest_session = true;
                        let mut fresh = self.new_occupant(ctx, bare.clone(), to.clone());
                        if let Some(o) = &orig {
                            fresh.role = o.role;
                        }
                        Some(fresh)
                    }
                },
            },
        };
        let is_last_orig_session = orig.as_ref().is_some_and(|o| o.sessions().len() < 2);
        let requested_nick = dest.as_ref().map(|d| d.nick.clone());

        if let Some(refusal) =
            self.check_limits(ctx, real_jid, orig.is_none(), is_first_dest_session, dest.as_ref())
        {
            return self.refuse(ctx, stanza, refusal);
        }
        if let Some(d) = dest.as_mut() {
            // The modules' say comes before the room's own checks, as their handlers run
            // before stock's (at lower priorities).
            let (hook, question) = match &orig {
                None => (Hook::OccupantPreJoin, None),
                Some(o) => (Hook::OccupantPreChange, Some(o)),
            };
            let question = || match question {
                None => Question::PreJoin {
                    room: self.jid.clone(),
                    nick: d.nick.clone(),
                    bare_jid: d.bare_jid.clone(),
                    role: d.role,
                    is_first_session: is_first_dest_session,
                },
                Some(o) => Question::PreChange {
                    room: self.jid.clone(),
                    orig_nick: o.nick.clone(),
                    nick: d.nick.clone(),
                    bare_jid: bare.clone(),
                    role: d.role,
                    is_first_session: is_first_dest_session,
                    is_last_session: is_last_orig_session,
                },
            };
            let Some(answer) = ctx.consult(hook, question) else { return };
            self.apply_answer(d, answer);
            // Joining, or changing nick/presence: the same checks, except the room-entry
            // ones (members-only, bans, password, lock) that only a join faces.
            let checked = if orig.is_none() {
                self.check_join(ctx, stanza, &mut d.nick, false)
            } else {
                self.check_nick(ctx, stanza, &mut d.nick, false)
            };
            if let Err(refusal) = checked {
                self.refuse(ctx, stanza, refusal);
                return;
            }
        }
        if let (None, Some(o)) = (&dest, &orig) {
            let question = || Question::PreLeave {
                room: self.jid.clone(),
                nick: o.nick.clone(),
                bare_jid: o.bare_jid.clone(),
                role: o.role,
                is_last_session: is_last_orig_session,
            };
            if ctx.consult(Hook::OccupantPreLeave, question).is_none() {
                return; // held back by a module, or asked first
            }
        }
        let nick_changed = dest.as_ref().map(|d| d.nick.clone()) != requested_nick;
        if nick_changed {
            // The nick was forced to the registered one: use the occupant behind it.
            if let Some(d) = dest.as_mut() {
                if let Some(existing) = self.occupant_by_nick(d.nick.resource().as_str()) {
                    if orig.as_ref().is_none_or(|o| o.nick != existing.nick) {
                        *d = existing.clone();
                        is_first_dest_session = false;
                    }
                }
            }
        }

        if let Some(d) = &dest {
            if !is_first_dest_session && !is_update && d.bare_jid != bare {
                ctx.log(
                    LogLevel::Debug,
                    format!("{real_jid} couldn't join due to nick conflict: {}", d.nick),
                );
                ctx.error(stanza, StanzaError::conflict(), Some(self.jid_str()));
                return;
            }
        }

        // The session leaves its old nickname.
        if let Some(mut o) = orig.clone().filter(|_| !is_update) {
            let orig_role = o.role;
            let mut dest_nick: Option<String> = None;
            match &dest {
                None => {
                    if is_last_orig_session {
                        o.role = None;
                    }
                    o.set_session(real_jid, stanza.clone());
                }
                Some(d) => {
                    let generated_unavailable = el("presence", NS_CLIENT)
                        .with("from", o.nick.as_str())
                        .with("to", real_jid.as_str())
                        .with("type", "unavailable");
                    o.set_session(real_jid, generated_unavailable.clone());
                    let new_nick = d.nick_str().to_owned();
                    if !is_first_dest_session {
                        // Joining another existing session: show that one leaving first.
                        let item = super::item_element(
                            self.affiliation(ctx, &bare),
                            Some(Role::None),
                            None,
                            None,
                            None,
                            None,
                            None,
                        );
                        let pr = el("presence", NS_CLIENT)
                            .with("from", d.nick.as_str())
                            .with("type", "unavailable")
                            .child(
                                el("status", NS_CLIENT)
                                    .text(format!("you are joining pre-existing session {new_nick}")),
                            )
                            .child(muc_user_x(&[]).child(item));
                        ctx.send(pr, real_jid.clone().into());
                    }
                    if is_first_dest_session && is_last_orig_session {
                        dest_nick = Some(new_nick);
                    } else {
                        // Only this session moves: it alone sees the nick change.
                        o.remove_session(real_jid);
                        let item = super::item_element(
                            self.affiliation(ctx, &bare),
                            o.role,
                            Some(real_jid.as_str()),
                            Some(&new_nick),
                            None,
                            None,
                            None,
                        );
                        let mut x = muc_user_x(&[]).child(item);
                        x.append_child(status(303));
                        x.append_child(status(110));
                        let mut pr = generated_unavailable.child(x);
                        pr.unset("to");
                        ctx.send(pr, real_jid.clone().into());
                    }
                }
            }
            self.save_occupant(o.clone());
            let codes: &[u16] = if dest_nick.is_some() { &[303] } else { &[] };
            self.publicise(
                ctx,
                &o,
                &PresenceX::codes(codes),
                dest_nick.as_deref(),
                None,
                None,
                orig_role,
                false,
            );
        }

        // The session arrives at (or stays in) its new nickname.
        let Some(mut d) = dest else { return };
        let mut stanza_with_id = stanza.clone();
        if ctx.config.hats {
            super::hats::strip_claimed_hats(&mut stanza_with_id);
        }
        self.stamp_occupant_id(ctx, &mut stanza_with_id, &d.bare_jid);
        d.set_session(real_jid, stanza_with_id);
        if self.save_occupant(d.clone()).is_none() {
            return; // the session could not stay (no role, no live session)
        }
        let joined = orig.is_none() || muc_x;
        if joined {
            let real = real_jid.clone();
            self.send_occupant_list(ctx, real_jid, move |o| o.session(&real).is_some());
        }
        let mut own = muc_user_x(&[]);
        if orig.is_none() && self.settings.whois == super::settings::Whois::Anyone {
            own.append_child(status(100));
        }
        if nick_changed {
            own.append_child(status(210));
        }
        let px = PresenceX { base: muc_user_x(&[]), own: Some(own) };
        let prev_role = orig.as_ref().and_then(|o| o.role);
        self.publicise(ctx, &d, &px, None, None, None, prev_role, false);

        if let Some(o) = orig.as_ref().filter(|_| !is_update && !is_last_orig_session) {
            // The session split from a multi-session nick: show it the old one, still there.
            if let Some(remaining) = self.occupant_by_nick(o.nick_str()) {
                let x = self.items_x(ctx, remaining, false);
                if let Some(pr) = remaining.presence(None) {
                    let mut pr = pr.child(x);
                    pr.unset("to");
                    ctx.send(pr, real_jid.clone().into());
                }
            }
        }
        if joined {
            let new_occupant = orig.is_none() && is_first_dest_session;
            self.session_joined(ctx, stanza, real_jid, &d.nick, new_occupant);
        }
    }

    /// A joining occupant as the modules' handlers left it (a nick or role they forced).
    fn apply_answer(&self, occupant: &mut crate::occupant::Occupant, answer: Answer) {
        let Answer::Allowed { nick, role } = answer else { return };
        if let Some(nick) = nick.and_then(|n| self.jid.with_resource_str(&n).ok()) {
            occupant.nick = nick;
        }
        if let Some(role) = role {
            occupant.role = role;
        }
    }

    /// What a new session gets after its join: the history, then the subject; then the
    /// host's modules hear of it (and of a new occupant), as stock's events run in turn.
    fn session_joined(
        &mut self,
        ctx: &mut Ctx,
        stanza: &Element,
        real_jid: &FullJid,
        nick: &FullJid,
        new_occupant: bool,
    ) {
        let listening = ctx.listens(Hook::OccupantLifecycle);
        let names = |room: &Room| (room.jid.clone(), nick.clone(), real_jid.clone());
        if listening && new_occupant {
            let (room, nick, jid) = names(self);
            ctx.out.fire(Event::OccupantJoined { room, nick, jid });
        }
        if new_occupant {
            self.send_avatar_hash(ctx, real_jid);
        }
        self.send_history(ctx, stanza, real_jid);
        self.send_subject(ctx, real_jid);
        if listening {
            let (room, nick, jid) = names(self);
            ctx.out.fire(Event::OccupantSessionNew { room, nick, jid });
        }
    }

    fn respond_to_probe(
        &mut self,
        ctx: &mut Ctx,
        stanza: &Element,
        real_jid: &FullJid,
        to: &FullJid,
        prober: Option<&super::Occupant>,
    ) {
        let Some(prober) = prober else {
            ctx.error(stanza, StanzaError::not_in_room(), Some(self.jid_str()));
            return;
        };
        match self.occupant_by_nick(to.resource().as_str()) {
            Some(probed) => self.publicise_to(ctx, probed, prober),
            None => {
                let nick = to.resource().as_str();
                let Some(owner) = self.registered_jid(nick).cloned() else { return };
                let anonymous = self.is_anonymous_for(ctx, real_jid);
                let item = super::item_element(
                    self.affiliation(ctx, &owner),
                    Some(Role::None),
                    (!anonymous).then_some(owner.as_str()),
                    Some(nick),
                    None,
                    None,
                    None,
                );
                let mut pr = el("presence", NS_CLIENT)
                    .with("from", to.as_str())
                    .with("type", "unavailable")
                    .child(muc_user_x(&[]).child(item));
                self.add_hats(ctx, &mut pr, &owner);
                self.send_listed_presence(ctx, pr, (to, &owner, false), real_jid, false);
            }
        }
    }

    /// The nickname rules every join and nick change passes (and the reserved-nick policy,
    /// which may replace the nick with the user's registered one).
    fn check_nick(
        &self,
        ctx: &Ctx,
        stanza: &Element,
        nick: &mut FullJid,
        joining: bool,
    ) -> Result<(), Refusal> {
        let requested = nick.resource().as_str().to_owned();
        if !is_strict_resource(&requested) {
            return Err(Refusal::room(
                StanzaError::jid_malformed().with_text("Nickname must pass strict validation"),
            ));
        }
        if requested.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')) {
            return Err(Refusal::room(
                StanzaError::new(ErrorType::Modify, "not-allowed")
                    .with_text("Invisible Nicknames are forbidden"),
            ));
        }
        let from = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok()).map(|j| j.to_bare());
        if let Some(owner) = self.registered_jid(&requested) {
            if Some(owner) != from.as_ref() {
                return Err(Refusal::room(StanzaError::conflict()));
            }
        }
        if ctx.config.enforce_registered_nickname {
            if let Some(own) = from.as_ref().and_then(|f| self.registered_nick(f)) {
                if own != requested {
                    if joining {
                        if let Some(forced) = self.nick_jid(own) {
                            *nick = forced;
                        }
                    } else {
                        return Err(Refusal::room(StanzaError::new(ErrorType::Cancel, "not-acceptable")));
                    }
                }
            }
        }
        Ok(())
    }

    /// Everything a join must pass, in stock's order.
    fn check_join(
        &self,
        ctx: &Ctx,
        stanza: &Element,
        nick: &mut FullJid,
        is_new_room: bool,
    ) -> Result<(), Refusal> {
        self.check_nick(ctx, stanza, nick, true)?;
        let from = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok()).map(|j| j.to_bare());
        let affiliation = from.as_ref().map_or(Affiliation::None, |f| self.affiliation(ctx, f));
        if self.settings.members_only && affiliation <= Affiliation::None {
            return Err(Refusal::room(StanzaError::new(ErrorType::Auth, "registration-required")));
        }
        if affiliation == Affiliation::Outcast {
            return Err(Refusal::room(StanzaError::forbidden()));
        }
        if let Some(expected) = &self.settings.password {
            if let Some(x) = stanza.get_child("x", NS_MUC) {
                let given = child_text(x, "password", NS_MUC).filter(|p| !p.is_empty());
                if given.as_deref() != Some(&**expected) {
                    return Err(Refusal::room(StanzaError::new(ErrorType::Auth, "not-authorized")));
                }
            }
        }
        if !is_new_room && self.is_locked(ctx.now()) {
            return Err(Refusal { error: StanzaError::item_not_found(), by_host: true });
        }
        Ok(())
    }

    /// The safety limits on occupants per room and sessions per occupant.
    fn check_limits(
        &self,
        ctx: &Ctx,
        session: &FullJid,
        joining: bool,
        new_occupant: bool,
        dest: Option<&super::Occupant>,
    ) -> Option<Refusal> {
        let dest = dest?;
        if joining && new_occupant && self.occupants().count() >= ctx.config.max_occupants {
            let user = session.to_bare();
            let limit = if self.affiliation(ctx, &user) < Affiliation::Admin {
                Some(ctx.config.max_occupants)
            } else if ctx.config.admins_as_room_owners && ctx.known_admin(&user) == Some(true) {
                None
            } else {
                ctx.config.admin_occupant_allowance.map(|extra| ctx.config.max_occupants + extra)
            };
            if limit.is_some_and(|limit| self.occupants().count() >= limit) {
                // XEP-0045 §7.2.9: the room has reached its maximum number of occupants.
                return Some(Refusal::room(StanzaError::service_unavailable()));
            }
        }
        if !new_occupant
            && dest.session(session).is_none()
            && dest.sessions().len() >= ctx.config.max_sessions_per_occupant
        {
            return Some(Refusal::room(StanzaError::resource_constraint()));
        }
        None
    }

    pub fn is_locked(&self, now: i64) -> bool {
        self.settings.locked_until.is_some_and(|until| now < until)
    }
}

fn may_create_room(ctx: &Ctx, creator: &BareJid) -> bool {
    if let Some(host_rule) = ctx.facts.sender_may_create {
        return host_rule;
    }
    match ctx.config.room_creation {
        RoomCreation::Anyone => true,
        RoomCreation::AdminsOnly => ctx.facts.service_admin(creator) == Some(true),
        RoomCreation::Local => {
            // Stock's "local": users of the host this service is a subdomain of.
            let parent = ctx.host.domain().as_str().split_once('.').map(|(_, rest)| rest);
            ctx.facts.service_admin(creator) == Some(true) || Some(creator.domain().as_str()) == parent
        }
    }
}

/// Whether a nickname survives strict resourceprep unchanged (no unassigned code points,
/// nothing mapped away).
pub fn is_strict_resource(nick: &str) -> bool {
    !nick.is_empty()
        && nick.len() <= 1023
        && jid::FullJid::new(&format!("x@y/{nick}")).is_ok_and(|j| j.resource().as_str() == nick)
}
