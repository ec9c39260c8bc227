//! What the service tells every room at once, as ejabberd's mod_muc does: a service
//! admin's message to the service itself goes to every live room as the room's own
//! message, and when the service stops each occupant is told it was removed by the
//! shutdown (status 332). Prosody's MUC has neither: it keeps its rooms' occupants across a
//! restart and answers a message to the service with an error.

use super::MucHost;
use crate::affiliation::{Affiliation, Role};
use crate::outcome::Outcome;
use crate::protocol::Facts;
use crate::room::{item_element, Ctx};
use crate::xml::{el, ElementExt, NS_CLIENT, NS_MUC_USER};
use jid::Jid;

const SHUTDOWN_REASON: &str = "You are being removed from the room because of a system shutdown";

impl MucHost {
    /// `text` as a groupchat message from every live room to its occupants, kept in each
    /// room's history (ejabberd's `broadcast_service_message`). Whether the sender may is
    /// the host's to decide (ejabberd: `access_admin`). As with mod_muc, no module sees it
    /// on its way (it is not archived).
    pub fn announce(&mut self, text: &str, facts: &Facts) -> Outcome {
        self.settle_unconfirmed();
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        for room in self.rooms.rooms_mut() {
            let message = el("message", NS_CLIENT)
                .with("type", "groupchat")
                .with("from", room.jid.as_str())
                .child(el("body", NS_CLIENT).text(text));
            room.add_history(ctx.config.max_history_messages, ctx.now(), &message);
            room.broadcast(&mut ctx, message, Role::None);
        }
        out
    }

    /// The service is stopping: each occupant's sessions are told they are removed (their
    /// own unavailable presence, 110 and 332, as mod_muc's rooms send it when they
    /// terminate) and the rooms are left empty. Nothing is stored: the rooms' records are
    /// as they were, and occupants are not kept across a restart on ejabberd.
    pub fn shut_down(&mut self, facts: &Facts) -> Outcome {
        self.settle_unconfirmed();
        let mut out = Outcome::default();
        let mut ctx = Ctx::new(&self.config, facts, &mut out, &self.domain);
        for room in self.rooms.rooms_mut() {
            let occupants: Vec<_> = room.occupants().cloned().collect();
            for mut occupant in occupants {
                let reason = Some(SHUTDOWN_REASON);
                let item = item_element(Affiliation::None, Some(Role::None), None, None, None, None, reason);
                let x = el("x", NS_MUC_USER)
                    .child(item)
                    .child(el("status", NS_MUC_USER).with("code", "332"))
                    .child(el("status", NS_MUC_USER).with("code", "110"));
                let presence = el("presence", NS_CLIENT)
                    .with("type", "unavailable")
                    .with("from", occupant.nick.as_str())
                    .child(x);
                for session in occupant.session_jids() {
                    ctx.send(presence.clone(), Jid::from(session.clone()));
                }
                occupant.role = None;
                room.save_occupant(occupant);
            }
        }
        out
    }
}
