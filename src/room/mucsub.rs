//! MucSub (`urn:xmpp:mucsub:0`), as ejabberd 24.12's mod_muc has it: users subscribe to a
//! room's event nodes by bare JID and, while none of their sessions is joined, get its
//! messages and subject wrapped as pubsub events. Beyond stock Prosody, so only where the
//! host turns it on (`HostConfig::mucsub`); a room keeps it off unless its owner allows
//! subscriptions, and a room without subscribers pays nothing on its messages.

use super::{Ctx, Room};
use crate::affiliation::{Affiliation, Role};
use crate::room::settings::Whois;
use crate::xml::{el, reply, ElementExt, ErrorType, StanzaError, NS_CLIENT};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;

pub const NS_MUCSUB: &str = "urn:xmpp:mucsub:0";
pub const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NODE_MESSAGES: &str = "urn:xmpp:mucsub:nodes:messages";
pub const NODE_SUBJECT: &str = "urn:xmpp:mucsub:nodes:subject";
/// The room configuration field, as ejabberd's form names it.
pub const ALLOW_FIELD: &str = "muc#roomconfig_allow_subscription";

/// The nodes a subscription may name; others are dropped from a request, as stock drops
/// them (stock does not accept `system` from a client either).
const NODES: [&str; 7] = [
    "urn:xmpp:mucsub:nodes:presence",
    NODE_MESSAGES,
    "urn:xmpp:mucsub:nodes:affiliations",
    NODE_SUBJECT,
    "urn:xmpp:mucsub:nodes:config",
    "urn:xmpp:mucsub:nodes:participants",
    "urn:xmpp:mucsub:nodes:subscribers",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub jid: BareJid,
    pub nick: String,
    pub nodes: Vec<String>,
}

/// A room's MucSub state: absent (`None` in the settings) for the rooms that never allowed it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MucSub {
    pub allow: bool,
    pub subscribers: Vec<Subscriber>,
}

impl MucSub {
    pub fn subscriber(&self, jid: &BareJid) -> Option<&Subscriber> {
        self.subscribers.iter().find(|s| &s.jid == jid)
    }
}

/// The allowed nodes a `<subscribe/>` names, in its order.
fn requested_nodes(subscribe: &Element) -> Vec<String> {
    subscribe
        .children()
        .filter(|c| c.is("event", NS_MUCSUB))
        .filter_map(|c| c.attr("node"))
        .filter(|n| NODES.contains(n))
        .map(str::to_owned)
        .collect()
}

fn events(mut parent: Element, nodes: &[String]) -> Element {
    for node in nodes {
        parent.append_child(el("event", NS_MUCSUB).with("node", node.as_str()));
    }
    parent
}

impl Room {
    pub fn allows_subscription(&self) -> bool {
        self.settings.mucsub.as_ref().is_some_and(|m| m.allow)
    }

    /// Turns subscriptions on or off; stock forgets the subscribers when they are turned off.
    pub fn set_allow_subscription(&mut self, allow: bool) -> bool {
        if allow == self.allows_subscription() {
            return false;
        }
        if allow {
            self.settings.mucsub.get_or_insert_with(Box::default).allow = true;
        } else {
            self.settings.mucsub = None;
        }
        true
    }

    /// `<subscribe/>`, `<unsubscribe/>` and `<subscriptions/>` to the room.
    pub fn handle_mucsub(&mut self, ctx: &mut Ctx, stanza: &Element, query: &Element, from: &FullJid) {
        // A moderator may (un)subscribe someone else, named by `jid`.
        let user = match query.attr("jid").filter(|_| stanza.attr("type") == Some("set")) {
            None => Ok(from.to_bare()),
            Some(_) if !self.is_mucsub_moderator(ctx, from) => {
                Err(StanzaError::forbidden().with_text("Moderator privileges required"))
            }
            Some(jid) => jid.parse::<Jid>().map(|j| j.to_bare()).map_err(|_| StanzaError::jid_malformed()),
        };
        let result = match (stanza.attr("type"), query.name(), user) {
            (_, _, Err(e)) => Err(e),
            (Some("set"), "subscribe", Ok(user)) => self.subscribe(ctx, query, user),
            (Some("set"), "unsubscribe", Ok(user)) => Ok(self.unsubscribe(ctx, &user)),
            (Some("get"), "subscriptions", _) => self.subscriptions(ctx, from),
            (Some("get"), _, _) => {
                Err(StanzaError::bad_request().with_text("Value 'get' of 'type' attribute is not allowed"))
            }
            _ => Err(StanzaError::service_unavailable()),
        };
        match result {
            Ok(payload) => {
                let answer = match payload {
                    Some(p) => reply(stanza).child(p),
                    None => reply(stanza),
                };
                ctx.send(answer, from.clone().into())
            }
            Err(e) => ctx.error(stanza, e, None),
        }
    }

    /// Stock's checks are a join's (add_new_user), in its order, then the password.
    fn subscribe(
        &mut self,
        ctx: &mut Ctx,
        query: &Element,
        user: BareJid,
    ) -> Result<Option<Element>, StanzaError> {
        if !self.allows_subscription() {
            return Err(StanzaError::not_allowed().with_text("Subscriptions are not allowed"));
        }
        let nick = query.attr("nick").unwrap_or("").to_owned();
        let nodes = requested_nodes(query);
        let current = self.settings.mucsub.as_ref().and_then(|m| m.subscriber(&user)).map(|s| s.nick.clone());
        match current {
            Some(old) if old == nick => {}
            Some(_) => {
                if self.nick_taken(&user, &nick) {
                    return Err(nick_in_use());
                }
                if nick.is_empty() {
                    return Err(StanzaError::jid_malformed().with_text("Nickname can't be empty"));
                }
            }
            None => {
                let affiliation = self.affiliation(ctx, &user);
                if affiliation == Affiliation::Outcast {
                    return Err(StanzaError::forbidden().with_text("You have been banned from this room"));
                }
                if self.settings.members_only && affiliation == Affiliation::None {
                    return Err(StanzaError::new(ErrorType::Auth, "registration-required")
                        .with_text("Membership is required to enter this room"));
                }
                if self.nick_taken(&user, &nick) {
                    return Err(nick_in_use());
                }
                if nick.is_empty() {
                    return Err(StanzaError::jid_malformed().with_text("Nickname can't be empty"));
                }
                if let Some(expected) =
                    self.settings.password.as_deref().filter(|_| affiliation != Affiliation::Owner)
                {
                    match query.attr("password") {
                        None | Some("") => {
                            return Err(StanzaError::new(ErrorType::Auth, "not-authorized")
                                .with_text("A password is required to enter this room"))
                        }
                        Some(p) if p != expected => {
                            return Err(StanzaError::new(ErrorType::Auth, "not-authorized")
                                .with_text("Incorrect password"))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        self.will_change_record(ctx);
        let mucsub = self.settings.mucsub.get_or_insert_with(Box::default);
        let subscriber = Subscriber { jid: user.clone(), nick: nick.clone(), nodes: nodes.clone() };
        match mucsub.subscribers.iter_mut().find(|s| s.jid == user) {
            Some(s) => *s = subscriber,
            None => mucsub.subscribers.push(subscriber),
        }
        Ok(Some(events(el("subscribe", NS_MUCSUB).with("nick", nick), &nodes)))
    }

    /// Stock's moderator for MucSub: a moderator's session, or an owner or admin.
    fn is_mucsub_moderator(&self, ctx: &Ctx, from: &FullJid) -> bool {
        self.occupant_by_real_jid(from).is_some_and(|o| o.role == Some(Role::Moderator))
            || matches!(self.affiliation(ctx, &from.to_bare()), Affiliation::Owner | Affiliation::Admin)
    }

    /// Whether `nick` is someone else's: another user's occupant or subscription.
    fn nick_taken(&self, user: &BareJid, nick: &str) -> bool {
        self.occupant_by_nick(nick).is_some_and(|o| &o.bare_jid != user)
            || self
                .settings
                .mucsub
                .as_ref()
                .is_some_and(|m| m.subscribers.iter().any(|s| s.nick == nick && &s.jid != user))
    }

    /// Stock answers an unsubscribe with a result whether or not there was a subscription.
    fn unsubscribe(&mut self, ctx: &mut Ctx, user: &BareJid) -> Option<Element> {
        let subscribed = self.settings.mucsub.as_ref().is_some_and(|m| m.subscriber(user).is_some());
        if subscribed {
            self.will_change_record(ctx);
            if let Some(m) = self.settings.mucsub.as_mut() {
                m.subscribers.retain(|s| &s.jid != user);
            }
        }
        None
    }

    /// The room's subscribers, for its moderators and its subscribers; real JIDs only to
    /// moderators or in a non-anonymous room.
    fn subscriptions(&self, ctx: &Ctx, from: &FullJid) -> Result<Option<Element>, StanzaError> {
        let user = from.to_bare();
        let is_moderator = self.is_mucsub_moderator(ctx, from);
        let mucsub = self.settings.mucsub.as_deref();
        let is_subscriber = mucsub.is_some_and(|m| m.subscriber(&user).is_some());
        if !is_moderator && !is_subscriber {
            return Err(StanzaError::forbidden().with_text("Moderator privileges required"));
        }
        let show_jid = is_moderator || self.settings.whois == Whois::Anyone;
        let mut list = el("subscriptions", NS_MUCSUB);
        // Stock folds its map into a list head-first: the last one it holds comes first.
        for s in mucsub.iter().flat_map(|m| m.subscribers.iter().rev()) {
            let mut item = el("subscription", NS_MUCSUB).with("nick", s.nick.as_str());
            if show_jid {
                item.set("jid", s.jid.as_str());
            }
            list.append_child(events(item, &s.nodes));
        }
        Ok(Some(list))
    }

    /// The wrapped copies of a message or subject change for the subscribers to its node
    /// who have no session in the room, to their bare JID.
    pub fn send_to_subscribers(&self, ctx: &mut Ctx, message: &Element) {
        let Some(mucsub) = self.settings.mucsub.as_deref().filter(|m| !m.subscribers.is_empty()) else {
            return;
        };
        let node = if is_subject_change(message) { NODE_SUBJECT } else { NODE_MESSAGES };
        let absent: Vec<&Subscriber> = mucsub
            .subscribers
            .iter()
            .filter(|s| s.nodes.iter().any(|n| n == node))
            .filter(|s| !self.occupants().any(|o| o.bare_jid == s.jid && o.role.is_some()))
            .collect();
        if absent.is_empty() {
            return;
        }
        let room = self.jid.as_str();
        let id = message
            .get_child("stanza-id", "urn:xmpp:sid:0")
            .filter(|s| s.attr("by") == Some(room))
            .and_then(|s| s.attr("id"))
            .map(str::to_owned)
            .unwrap_or_else(|| ctx.uuid());
        let mut inner = message.clone();
        inner.unset("to");
        let item = el("item", NS_PUBSUB_EVENT).with("id", id.as_str()).child(inner);
        let event =
            el("event", NS_PUBSUB_EVENT).child(el("items", NS_PUBSUB_EVENT).with("node", node).child(item));
        let wrapped = el("message", NS_CLIENT).with("from", room).with("id", id.as_str()).child(event);
        for s in absent {
            ctx.send(wrapped.clone(), Jid::from(s.jid.clone()));
        }
    }
}

fn nick_in_use() -> StanzaError {
    StanzaError::conflict().with_text("That nickname is already in use by another occupant")
}

/// Stock's subject node takes a message whose subject it took as a change.
fn is_subject_change(message: &Element) -> bool {
    message.has_child("subject", NS_CLIENT) && !message.has_child("body", NS_CLIENT)
}
