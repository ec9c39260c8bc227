//! The MUC service on one host: routes each stanza to its room (creating rooms on first
//! join, destroying empty temporary ones) and answers what no room can.

use crate::config::HostConfig;
use crate::env::Env;
use crate::outcome::{LogLevel, Outcome};
use crate::room::owner::OwnerOutcome;
use crate::room::settings::RoomSettings;
use crate::room::{Ctx, Room};
use crate::xml::{
    el, reply, ElementExt, StanzaError, NS_DATA, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_MUC_ADMIN,
    NS_MUC_OWNER, NS_MUC_USER, NS_REGISTER,
};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::collections::HashMap;

pub struct MucHost {
    domain: BareJid,
    config: HostConfig,
    rooms: HashMap<BareJid, Room>,
}

impl MucHost {
    pub fn new(domain: &str, config: HostConfig) -> Result<Self, String> {
        let domain = BareJid::new(domain).map_err(|e| format!("invalid host {domain:?}: {e}"))?;
        if domain.node().is_some() {
            return Err(format!("invalid host {domain}: a MUC service has no node"));
        }
        Ok(MucHost { domain, config, rooms: HashMap::new() })
    }

    pub fn domain(&self) -> &BareJid {
        &self.domain
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    pub fn room(&self, jid: &BareJid) -> Option<&Room> {
        self.rooms.get(jid)
    }

    /// Every room, in no particular order (read-only, for tests and checks).
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.values()
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Public rooms with their names, for the service's disco#items.
    pub fn public_rooms(&self) -> Vec<(String, Option<String>)> {
        let mut rooms: Vec<_> = self
            .rooms
            .values()
            .filter(|r| !r.settings.hidden)
            .map(|r| (r.jid.to_string(), r.settings.name.clone()))
            .collect();
        rooms.sort();
        rooms
    }

    /// Handles one stanza addressed to the service or one of its rooms.
    pub fn handle(&mut self, stanza: Element, env: &dyn Env) -> Outcome {
        let mut out = Outcome::default();
        let mut ctx = Ctx { config: &self.config, env, out: &mut out, host: &self.domain };
        let kind = stanza.attr("type");
        let to = stanza.attr("to").and_then(|t| t.parse::<Jid>().ok());
        let from = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok());
        let (Some(to), Some(from)) = (to, from) else {
            ctx.log(LogLevel::Warn, format!("dropping <{}/> without valid from/to", stanza.name()));
            return out;
        };
        let Ok(from) = from.try_into_full() else {
            // Every MUC action is taken by a client session.
            ctx.error(
                &stanza,
                StanzaError::modify_bad_request().with_text("Sender must be a full JID"),
                None,
            );
            return out;
        };
        if to.domain() != self.domain.domain() {
            ctx.error(&stanza, StanzaError::service_unavailable(), None);
            return out;
        }
        if to.node().is_none() {
            self.handle_to_service(&mut ctx, &stanza, &from);
            return out;
        }
        let room_jid = to.to_bare();
        let nick = to.try_as_full().ok().cloned();
        if stanza.name() == "iq" && nick.is_none() && matches!(kind, Some("result" | "error")) {
            return out; // nobody here asked: replies to the room itself are dropped, as stock
        }
        let Some(room) = self.rooms.get_mut(&room_jid) else {
            let created =
                Self::handle_to_missing_room(&mut ctx, &stanza, &from, room_jid.clone(), nick.as_ref());
            if let Some(room) = created {
                self.rooms.insert(room_jid, room);
            }
            return out;
        };
        let destroyed = match (stanza.name(), nick) {
            ("presence", Some(nick)) => {
                room.handle_presence_to_occupant(&mut ctx, &stanza, &from, &nick);
                false
            }
            ("presence", None) => {
                // Some clients send presence updates to the room itself: use their nick.
                if let Some(nick) = room.nick_of(&from).and_then(|n| room.nick_jid(n)) {
                    room.handle_presence_to_occupant(&mut ctx, &stanza, &from, &nick);
                }
                false
            }
            ("message", Some(nick)) => {
                room.handle_message_to_occupant(&mut ctx, &stanza, &from, &nick);
                false
            }
            ("message", None) => {
                Self::handle_message_to_room(room, &mut ctx, &stanza, &from);
                false
            }
            ("iq", Some(nick)) => {
                room.handle_iq_to_occupant(&mut ctx, &stanza, &from, &nick);
                false
            }
            ("iq", None) => {
                Self::handle_iq_to_room(room, &mut ctx, &stanza, &from) == OwnerOutcome::Destroyed
            }
            _ => {
                ctx.error(&stanza, StanzaError::bad_request(), None);
                false
            }
        };
        let empty_temporary = room.occupant_left && !room.has_occupants() && !room.settings.persistent;
        room.occupant_left = false;
        if destroyed || empty_temporary {
            ctx.log(LogLevel::Debug, format!("{room_jid} destroyed"));
            self.rooms.remove(&room_jid);
        }
        out
    }

    /// The service itself: its room list and unique room names. Its disco#info is the host
    /// server's (mod_disco), which answers before this.
    fn handle_to_service(&self, ctx: &mut Ctx, stanza: &Element, from: &FullJid) {
        let query = stanza.children().next();
        let get = stanza.name() == "iq" && stanza.attr("type") == Some("get");
        match query {
            Some(q) if get && q.is("query", NS_DISCO_ITEMS) => {
                let mut items = el("query", NS_DISCO_ITEMS).with_opt("node", q.attr("node"));
                if q.attr("node").is_none() {
                    for (jid, name) in self.public_rooms() {
                        items
                            .append_child(el("item", NS_DISCO_ITEMS).with("jid", jid).with_opt("name", name));
                    }
                }
                ctx.send(reply(stanza).child(items), from.clone().into());
            }
            Some(q) if get && q.is("unique", NS_MUC_UNIQUE) => {
                let name = crate::id::uuid_v4();
                ctx.send(reply(stanza).child(el("unique", NS_MUC_UNIQUE).text(name)), from.clone().into());
            }
            _ if stanza.name() == "iq" => {
                if matches!(stanza.attr("type"), Some("get" | "set")) {
                    ctx.error(stanza, StanzaError::service_unavailable(), None);
                }
            }
            _ => ctx.error(stanza, StanzaError::item_not_found(), None),
        }
    }

    /// A stanza for a room that does not exist: a join creates it, the rest is refused.
    fn handle_to_missing_room(
        ctx: &mut Ctx,
        stanza: &Element,
        from: &FullJid,
        room_jid: BareJid,
        nick: Option<&FullJid>,
    ) -> Option<Room> {
        let host = ctx.host.to_string();
        let is_join = stanza.name() == "presence"
            && stanza.attr("type").is_none()
            && stanza.get_child("x", NS_MUC).is_some();
        if !is_join {
            // Stock answers the namespaces it serves with item-not-found; other iqs find no
            // handler at all, which Prosody answers with service-unavailable.
            let served = [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC_ADMIN, NS_MUC_OWNER, NS_REGISTER];
            let unserved_iq = stanza.name() == "iq"
                && !stanza.children().next().is_some_and(|q| served.iter().any(|ns| q.is("query", *ns)));
            if unserved_iq {
                ctx.error(stanza, StanzaError::service_unavailable(), None);
            } else {
                ctx.error(stanza, StanzaError::item_not_found(), Some(&host));
            }
            return None;
        }
        let Some(nick) = nick else {
            ctx.error(stanza, StanzaError::jid_malformed().with_text("A nickname is required"), Some(&host));
            return None;
        };
        let lang = crate::xml::xml_lang(stanza);
        let settings = RoomSettings::with_defaults(&ctx.config.defaults, lang);
        let mut room = Room::new(room_jid, settings);
        room.handle_first_presence(ctx, stanza, from, nick).then_some(room)
    }

    fn handle_message_to_room(room: &mut Room, ctx: &mut Ctx, stanza: &Element, from: &FullJid) {
        match stanza.attr("type") {
            Some("groupchat") => room.handle_groupchat(ctx, stanza, from),
            Some("error") => {
                if crate::room::message::is_kickable_error(stanza) {
                    room.handle_kickable(ctx, stanza, from);
                }
            }
            None | Some("normal") => {
                if let Some(x) = stanza.get_child("x", NS_MUC_USER) {
                    match x.children().next() {
                        Some(p) if p.name() == "invite" && p.attr("to").is_some() => {
                            room.handle_invite(ctx, stanza, p, from)
                        }
                        Some(p) if p.name() == "decline" && p.attr("to").is_some() => {
                            room.handle_decline(ctx, stanza, p, from)
                        }
                        _ => ctx.error(stanza, StanzaError::bad_request(), None),
                    }
                    return;
                }
                if let Some(form) =
                    stanza.get_child("x", NS_DATA).filter(|f| crate::room::invite::is_voice_request(f))
                {
                    return room.handle_voice_request(ctx, stanza, form, from);
                }
                ctx.error(stanza, StanzaError::service_unavailable(), None);
            }
            Some(_) => ctx.error(stanza, StanzaError::service_unavailable(), None),
        }
    }

    fn handle_iq_to_room(room: &mut Room, ctx: &mut Ctx, stanza: &Element, from: &FullJid) -> OwnerOutcome {
        let kind = stanza.attr("type").unwrap_or("");
        if kind == "result" || kind == "error" {
            return OwnerOutcome::Kept;
        }
        let Some(query) = stanza.children().next() else {
            ctx.error(stanza, StanzaError::bad_request(), None);
            return OwnerOutcome::Kept;
        };
        match (kind, query.name(), query.ns().as_str()) {
            ("get", "query", NS_DISCO_INFO) => room.handle_disco_info(ctx, stanza, query, from),
            ("get", "query", NS_DISCO_ITEMS) => room.handle_disco_items(ctx, stanza, from),
            ("set", "query", NS_MUC_ADMIN) => room.handle_admin_set(ctx, stanza, query, from),
            ("get", "query", NS_MUC_ADMIN) => room.handle_admin_get(ctx, stanza, query, from),
            ("set", "query", NS_MUC_OWNER) => return room.handle_owner_set(ctx, stanza, query, from),
            ("get", "query", NS_MUC_OWNER) => room.handle_owner_get(ctx, stanza, from),
            ("get" | "set", "query", NS_REGISTER) => room.handle_register(ctx, stanza, query, from),
            _ => ctx.error(stanza, StanzaError::service_unavailable(), None),
        }
        OwnerOutcome::Kept
    }
}

const NS_MUC_UNIQUE: &str = "http://jabber.org/protocol/muc#unique";

#[cfg(test)]
mod tests;
