//! Service discovery on a room: identity, features and the muc#roominfo form.

use super::{Ctx, Room};
use crate::dataform::{Field, FieldType, Form, Value};
use crate::hooks::{Event, Hook};
use crate::xml::{
    el, reply, ElementExt, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_MUC_ROOMINFO, NS_REGISTER,
};
use jid::FullJid;
use minidom::Element;

impl Room {
    pub fn handle_disco_info(&self, ctx: &mut Ctx, stanza: &Element, query: &Element, from: &FullJid) {
        let node = query.attr("node").filter(|n| !n.is_empty());
        let mut q = el("query", NS_DISCO_INFO).with_opt("node", node);
        match node {
            Some("x-roomuser-item") => {
                if let Some(nick) = self.registered_nick(&from.to_bare()) {
                    q.append_child(
                        el("identity", NS_DISCO_INFO)
                            .with("category", "conference")
                            .with("type", "text")
                            .with("name", nick),
                    );
                }
            }
            Some(_) => {}
            None => {
                let mut form = self.room_info(&mut q, ctx.config.occupant_id);
                if ctx.config.message_moderation {
                    for var in super::moderation::FEATURES {
                        q.append_child(el("feature", NS_DISCO_INFO).with("var", var));
                    }
                }
                self.vcard_info(ctx, &mut q, &mut form);
                if ctx.listens(Hook::DiscoInfo) {
                    // Modules add features after the room's, and fields to its form.
                    let (room, to) = (self.jid.clone(), from.clone().into());
                    return ctx.out.fire(Event::DiscoInfo { room, reply: reply(stanza).child(q), form, to });
                }
                q.append_child(form.render("result"));
            }
        }
        ctx.send(reply(stanza).child(q), from.clone().into());
    }

    /// Features, in the order stock's plugins add them, and the roominfo form.
    fn room_info(&self, q: &mut Element, occupant_ids: bool) -> Form {
        let s = &self.settings;
        let feature = |var: &str| el("feature", NS_DISCO_INFO).with("var", var);
        for var in [
            NS_MUC,
            "http://jabber.org/protocol/muc#stable_id",
            "http://jabber.org/protocol/muc#self-ping-optimization",
        ] {
            q.append_child(feature(var));
        }
        q.append_child(feature(if s.whois == super::settings::Whois::Anyone {
            "muc_nonanonymous"
        } else {
            "muc_semianonymous"
        }));
        q.append_child(
            el("identity", NS_DISCO_INFO)
                .with("category", "conference")
                .with("type", "text")
                .with_opt("name", s.name.clone()),
        );
        q.append_child(feature(if s.hidden { "muc_hidden" } else { "muc_public" }));
        q.append_child(feature(if s.password.is_some() { "muc_passwordprotected" } else { "muc_unsecured" }));
        q.append_child(feature(if s.members_only { "muc_membersonly" } else { "muc_open" }));
        q.append_child(feature(if s.moderated { "muc_moderated" } else { "muc_unmoderated" }));
        q.append_child(feature("http://jabber.org/protocol/muc#request"));
        q.append_child(feature(if s.persistent { "muc_persistent" } else { "muc_temporary" }));
        q.append_child(feature(NS_REGISTER));
        if self.allows_subscription() {
            q.append_child(feature(super::mucsub::NS_MUCSUB));
        }
        if occupant_ids {
            q.append_child(feature(crate::xml::NS_OCCUPANT_ID));
        }
        let text = |v: &Option<Box<str>>| v.as_deref().map(|t| Value::Text(t.to_owned()));
        // Stock's roominfo fields default to an empty value when the room has none.
        let text_or_empty = |v: &Option<Box<str>>| Value::Text(v.as_deref().unwrap_or_default().to_owned());
        let form = Form {
            title: None,
            instructions: None,
            fields: vec![
                Field::hidden("FORM_TYPE", NS_MUC_ROOMINFO),
                Field::new("muc#roominfo_occupants", FieldType::TextSingle)
                    .label("Number of occupants")
                    .value(Value::Text(self.occupants().count().to_string())),
                Field::new("muc#roomconfig_roomname", FieldType::TextSingle)
                    .label("Title")
                    .maybe_value(text(&s.name)),
                Field::new("muc#roominfo_description", FieldType::TextSingle)
                    .label("Description")
                    .value(text_or_empty(&s.description)),
                Field::new("muc#roominfo_lang", FieldType::TextSingle).value(text_or_empty(&s.language)),
                Field::new(
                    "{http://prosody.im/protocol/muc}roomconfig_allowmemberinvites",
                    FieldType::Boolean,
                )
                .label("Allow members to invite new members")
                .value(Value::Bool(s.allow_member_invites)),
                Field::new("muc#roomconfig_allowinvites", FieldType::Boolean)
                    .label("Allow users to invite other users")
                    .value(Value::Bool(!s.members_only || s.allow_member_invites)),
                Field::new("muc#roomconfig_changesubject", FieldType::Boolean)
                    .maybe_value(s.change_subject.then_some(Value::Bool(true))),
            ],
        };
        form
    }

    pub fn handle_disco_items(&self, ctx: &mut Ctx, stanza: &Element, from: &FullJid) {
        ctx.send(reply(stanza).child(el("query", NS_DISCO_ITEMS)), from.clone().into());
    }
}
