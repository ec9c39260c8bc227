//! Room vCards and avatars, as Prosody 13's MUC has them (its `muc/vcard.lib.lua`): the
//! host keeps the vCard (Prosody's mod_vcard, on the room's JID) and knows its avatar's
//! hash; the room says who may set it (its owners), shows the hash in its disco#info,
//! tells each new occupant, and announces a new one. Where rooms keep their own vCard
//! (`vcards_in_rooms`: ejabberd's mod_muc keeps it in the room's options), the room also
//! answers `vcard-temp` itself, as Prosody's mod_vcard answers for it, and the hash is the
//! SHA-1 of the vCard's photo (XEP-0153).

use super::{Ctx, Room};
use crate::affiliation::Affiliation;
use crate::config::AvatarAdvertise;
use crate::data::{Data, Key};
use crate::dataform::{Field, FieldType, Form, Value};
use crate::xml::{el, reply, ElementExt, ErrorType, StanzaError, NS_CLIENT, NS_DISCO_INFO, NS_MUC_USER};
use base64::Engine;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use sha1::{Digest, Sha1};

pub const NS_VCARD: &str = "vcard-temp";
const NS_VCARD_UPDATE: &str = "vcard-temp:x:update";
/// The key of the room's data its own vCard is kept under (as XML), where rooms keep it.
pub const VCARD_KEY: &str = "vcard";

impl Room {
    /// Whether `jid` may replace the room's vCard: its owners may.
    pub fn may_set_vcard(&self, ctx: &Ctx, jid: &BareJid) -> bool {
        ctx.config.room_vcards && self.affiliation(ctx, jid) == Affiliation::Owner
    }

    /// The vCard feature and the avatar hash field of the room's disco#info.
    pub fn vcard_info(&self, ctx: &Ctx, query: &mut Element, form: &mut Form) {
        if !ctx.config.room_vcards {
            return;
        }
        query.append_child(el("feature", NS_DISCO_INFO).with("var", "vcard-temp"));
        let hash = self.avatar_hash(ctx).map(|h| Value::Text(h.to_owned()));
        form.fields.push(Field::new("muc#roominfo_avatarhash", FieldType::TextMulti).maybe_value(hash));
    }

    /// A new occupant's session learns the room's avatar, if it has one.
    pub fn send_avatar_hash(&self, ctx: &mut Ctx, to: &FullJid) {
        if !ctx.config.room_vcards || ctx.config.avatar_advertise == AvatarAdvertise::None {
            return;
        }
        if let Some(hash) = self.avatar_hash(ctx) {
            ctx.send(self.avatar_presence(Some(hash)), Jid::from(to.clone()));
        }
    }

    /// The room's vCard changed: everyone learns its avatar's hash.
    pub fn announce_avatar(&mut self, ctx: &mut Ctx) {
        let advertise = ctx.config.avatar_advertise;
        if !ctx.config.room_vcards || advertise == AvatarAdvertise::None {
            return;
        }
        self.avatar_hash.take(); // a new vCard: ask again
        if matches!(advertise, AvatarAdvertise::Both | AvatarAdvertise::Presence) {
            let presence = self.avatar_presence(self.avatar_hash(ctx));
            self.broadcast_message(ctx, presence);
        }
        if matches!(advertise, AvatarAdvertise::Both | AvatarAdvertise::Message) {
            let x = el("x", NS_MUC_USER).child(crate::xml::status(104));
            let msg =
                el("message", NS_CLIENT).with("from", self.jid.as_str()).with("type", "groupchat").child(x);
            self.broadcast_message(ctx, msg);
        }
    }

    /// A `vcard-temp` query to the room, where it keeps its own vCard: anyone may read it,
    /// its owners replace it (then everyone learns the new avatar).
    pub fn handle_vcard(&mut self, ctx: &mut Ctx, stanza: &Element, vcard: &Element, from: &FullJid) {
        let to = Jid::from(from.clone());
        if stanza.attr("type") != Some("set") {
            return match self.stored_vcard() {
                Some(stored) => ctx.send(reply(stanza).child(stored), to),
                None => ctx.error(stanza, StanzaError::item_not_found().with_kind_cancel(), None),
            };
        }
        if !self.may_set_vcard(ctx, &from.to_bare()) {
            return ctx.error(stanza, StanzaError::new(ErrorType::Auth, "forbidden"), None);
        }
        self.will_change_record(ctx);
        self.settings.extra.insert(Key::from(VCARD_KEY), Data::Str(String::from(vcard)));
        ctx.send(reply(stanza), to);
        self.announce_avatar(ctx);
    }

    /// The vCard the room keeps itself, if any.
    fn stored_vcard(&self) -> Option<Element> {
        self.settings.extra.get(&Key::from(VCARD_KEY)).and_then(Data::str).and_then(|xml| xml.parse().ok())
    }

    /// The avatar's hash: of the room's own vCard, or as the host gave it (asked before
    /// the room's first stanza: see [`Room::knows_avatar_hash`]).
    fn avatar_hash(&self, ctx: &Ctx) -> Option<&str> {
        let find = || match ctx.config.vcards_in_rooms {
            true => self.stored_vcard().and_then(|vcard| photo_hash(&vcard)).map(Box::from),
            false => ctx.facts.avatar_hash(&self.jid).flatten().map(Box::from),
        };
        self.avatar_hash.get_or_init(find).as_deref()
    }

    /// Whether the room has its avatar's hash, or must ask the host for it first.
    pub fn knows_avatar_hash(&self) -> bool {
        self.avatar_hash.get().is_some()
    }

    fn avatar_presence(&self, hash: Option<&str>) -> Element {
        let photo = el("photo", NS_VCARD_UPDATE);
        let photo = match hash {
            Some(hash) => photo.text(hash),
            None => photo,
        };
        el("presence", NS_CLIENT).with("from", self.jid.as_str()).child(el("x", NS_VCARD_UPDATE).child(photo))
    }
}

/// XEP-0153's hash of a vCard's photo: the SHA-1 of the image, in lowercase hex.
fn photo_hash(vcard: &Element) -> Option<String> {
    let binval = vcard.get_child("PHOTO", NS_VCARD)?.get_child("BINVAL", NS_VCARD)?.text();
    let encoded: String = binval.split_whitespace().collect();
    let image = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    Some(Sha1::digest(image).iter().map(|byte| format!("{byte:02x}")).collect())
}
