//! jabber:iq:register to a room: reserving a nickname (which makes the user a member) and
//! cancelling the registration.

use super::{Actor, AffiliationData, Ctx, DataChange, Room};
use crate::affiliation::Affiliation;
use crate::data::{Data, Key};
use crate::dataform::{read_submitted, Field, FieldType, Form, Value};
use crate::hooks::{Answer, Event, Hook, Question};
use crate::room::presence::is_strict_resource;
use crate::xml::{el, reply, ElementExt, ErrorType, StanzaError, NS_DATA, NS_MUC_REGISTER, NS_REGISTER};
use jid::FullJid;
use minidom::Element;

fn registration_form() -> Form {
    Form {
        title: None,
        instructions: None,
        fields: vec![
            Field::hidden("FORM_TYPE", NS_MUC_REGISTER),
            Field::new("muc#register_roomnick", FieldType::TextSingle).required().label("Nickname"),
        ],
    }
}

impl Room {
    pub fn handle_register(&mut self, ctx: &mut Ctx, stanza: &Element, query: &Element, from: &FullJid) {
        let user = from.to_bare();
        let affiliation = self.affiliation(ctx, &user);
        if affiliation == Affiliation::Outcast {
            return ctx.error(stanza, StanzaError::forbidden(), None);
        }
        if affiliation == Affiliation::None && !ctx.config.allow_unaffiliated_register {
            return ctx.error(stanza, StanzaError::new(ErrorType::Auth, "registration-required"), None);
        }
        let registered = self.registered_nick(&user).map(str::to_owned);
        let bad_request = |text: &str| StanzaError::modify_bad_request().with_text(text);

        if stanza.attr("type") == Some("get") {
            let mut q = el("query", NS_REGISTER);
            let form = match registered {
                Some(nick) => {
                    q.append_child(el("registered", NS_REGISTER));
                    q.append_child(el("username", NS_REGISTER).text(nick));
                    // What is kept, as a form, if asked for (fields named as kept).
                    let kept = self.affiliation_data(&user).filter(|_| ctx.config.registration_include_form);
                    kept.map(|data| {
                        let mut form = registration_form();
                        for field in &mut form.fields {
                            let value = field.var.and_then(|var| data.extra.get(&Key::from(var)));
                            if let Some(text) = value.and_then(Data::str) {
                                field.value = Some(Value::Text(text.to_owned()));
                            }
                        }
                        (form, "result")
                    })
                }
                None => Some((registration_form(), "form")),
            };
            return match form {
                // Modules' fields are added by the host.
                Some((form, form_type)) if ctx.listens(Hook::Registration) => {
                    let (room, reply, to) = (self.jid.clone(), reply(stanza).child(q), from.clone().into());
                    ctx.out.fire(Event::RegistrationForm { room, user, reply, form, form_type, to })
                }
                Some((form, form_type)) => {
                    ctx.send(reply(stanza).child(q.child(form.render(form_type))), from.clone().into())
                }
                None => ctx.send(reply(stanza).child(q), from.clone().into()),
            };
        }

        if query.has_child("remove", NS_REGISTER) {
            // Membership goes; a higher affiliation stays.
            let keep = if affiliation == Affiliation::Member { Affiliation::None } else { affiliation };
            return match self.set_affiliation(ctx, Actor::Room, &user, keep, None, DataChange::Clear) {
                Ok(()) => ctx.send(reply(stanza), from.clone().into()),
                Err(e) => ctx.error(stanza, e, None),
            };
        }
        let Some(form) = query.get_child("x", NS_DATA) else {
            return ctx.error(stanza, bad_request("Missing dataform"), None);
        };
        match crate::dataform::form_type(form) {
            None => return ctx.error(stanza, bad_request("Error with form: Missing FORM_TYPE"), None),
            Some(t) if t != NS_MUC_REGISTER => return ctx.error(stanza, bad_request("Error in form"), None),
            Some(_) => {}
        }
        let submitted = read_submitted(&registration_form(), form);
        let desired = submitted.iter().find_map(|s| match &s.value {
            Some(Value::Text(t)) if s.var == "muc#register_roomnick" => Some(t.clone()),
            _ => None,
        });
        let Some(desired) = desired.filter(|n| is_strict_resource(n)) else {
            return ctx.error(stanza, bad_request("Invalid Nickname"), None);
        };
        if self.occupant_by_nick(&desired).is_some_and(|o| o.bare_jid != user)
            || self.registered_jid(&desired).is_some_and(|j| *j != user)
        {
            return ctx.error(stanza, StanzaError::conflict(), None);
        }
        let changes = registered.as_deref() != Some(desired.as_str());
        let mut data = AffiliationData { reserved_nickname: Some(desired.clone()), ..Default::default() };
        if changes {
            // Modules keep what they want of the submission in the data (before any change).
            let question = || Question::RegistrationSubmitted {
                room: self.jid.clone(),
                user: user.clone(),
                nick: desired.clone(),
            };
            match ctx.consult(Hook::Registration, question) {
                None => return,
                Some(Answer::Registered { data: kept }) => data = AffiliationData::from_data(&kept),
                Some(_) => {}
            }
        }
        if ctx.config.enforce_registered_nickname {
            // Sessions of this user under other nicknames must go before the nick is theirs.
            let others: Vec<String> = self
                .occupants()
                .filter(|o| o.bare_jid == user && o.nick_str() != desired)
                .map(|o| o.nick_str().to_owned())
                .collect();
            for nick in others {
                let _ = self.set_role(ctx, Actor::Room, &nick, None, None);
            }
        }
        if changes {
            let new_affiliation =
                if affiliation == Affiliation::None { Affiliation::Member } else { affiliation };
            if let Err(e) =
                self.set_affiliation(ctx, Actor::Room, &user, new_affiliation, None, DataChange::Set(data))
            {
                return ctx.error(stanza, e, None);
            }
        }
        ctx.send(reply(stanza), from.clone().into());
    }
}
