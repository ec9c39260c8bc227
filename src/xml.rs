//! Namespaces, element building and XMPP error replies: the vocabulary the core speaks.

use minidom::rxml::{Namespace, NcName};
use minidom::Element;

pub const NS_CLIENT: &str = "jabber:client";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_MUC_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
pub const NS_MUC_REGISTER: &str = "http://jabber.org/protocol/muc#register";
pub const NS_MUC_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
pub const NS_REGISTER: &str = "jabber:iq:register";
pub const NS_DATA: &str = "jabber:x:data";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_DELAY: &str = "urn:xmpp:delay";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";

/// Builds elements in a chain, like Prosody's `st.stanza(...):tag(...):up()`, but as values.
pub trait ElementExt: Sized {
    /// Sets (or replaces) an attribute without a namespace.
    fn set(&mut self, name: &str, value: impl Into<String>);
    /// Removes an attribute without a namespace.
    fn unset(&mut self, name: &str);
    fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }
    fn with_opt(mut self, name: &str, value: Option<impl Into<String>>) -> Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }
    fn child(self, child: Element) -> Self;
    fn text_child(self, name: &str, ns: &str, text: impl Into<String>) -> Self {
        self.child(el(name, ns).text(text))
    }
    fn text(self, text: impl Into<String>) -> Self;
}

impl ElementExt for Element {
    fn set(&mut self, name: &str, value: impl Into<String>) {
        let name = NcName::try_from(name).expect("attribute names are literals");
        self.attrs_mut().insert(Namespace::none().clone(), name, value.into());
    }
    fn unset(&mut self, name: &str) {
        self.attrs_mut().remove(Namespace::none(), name);
    }
    fn child(mut self, child: Element) -> Self {
        self.append_child(child);
        self
    }
    fn text(mut self, text: impl Into<String>) -> Self {
        let text = text.into();
        if !text.is_empty() {
            self.append_text(text);
        }
        self
    }
}

/// A new empty element.
pub fn el(name: &str, ns: &str) -> Element {
    Element::bare(name, ns)
}

/// `<x xmlns='…muc#user'>` with the given status codes.
pub fn muc_user_x(codes: &[u16]) -> Element {
    let mut x = el("x", NS_MUC_USER);
    for code in codes {
        x.append_child(status(*code));
    }
    x
}

pub fn status(code: u16) -> Element {
    el("status", NS_MUC_USER).with("code", code.to_string())
}

/// An attribute's key as Prosody names it: `name`, `xml:name` for the XML namespace, and
/// `uri\u{1}name` for any other namespace.
pub fn attr_key(ns: &minidom::rxml::Namespace, name: &str) -> String {
    if ns.is_none() {
        name.to_owned()
    } else if ns.as_str() == minidom::rxml::Namespace::xml().as_str() {
        format!("xml:{name}")
    } else {
        format!("{}\u{1}{name}", ns.as_str())
    }
}

/// Sets an attribute given by its Prosody key (see [`attr_key`]); false if the name is
/// not a valid XML name.
pub fn set_attr_key(element: &mut Element, key: &str, value: &str) -> bool {
    use minidom::rxml::Namespace;
    let (ns, local) = if let Some(local) = key.strip_prefix("xml:") {
        (Namespace::xml().clone(), local)
    } else if let Some((uri, local)) = key.split_once('\u{1}') {
        (Namespace::from(uri.to_owned()), local)
    } else {
        (Namespace::none().clone(), key)
    };
    match NcName::try_from(local) {
        Ok(local) => {
            element.attrs_mut().insert(ns, local, value.to_owned());
            true
        }
        Err(_) => false,
    }
}

/// A stanza's `xml:lang`, if it has one.
pub fn xml_lang(stanza: &Element) -> Option<&str> {
    stanza.attr_ns(minidom::rxml::Namespace::xml(), "lang")
}

/// The text of the first child `name` in `ns`, if any.
pub fn child_text(element: &Element, name: &str, ns: &str) -> Option<String> {
    element.get_child(name, ns).map(Element::text)
}

/// XMPP error types (RFC 6120 §8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Modify,
    Wait,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// An error to answer a stanza with: type, defined condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    pub kind: ErrorType,
    pub condition: &'static str,
    pub text: Option<String>,
    /// Text inside the condition element itself (e.g. the new address in `<gone/>`).
    pub condition_text: Option<String>,
}

impl StanzaError {
    pub fn new(kind: ErrorType, condition: &'static str) -> Self {
        StanzaError { kind, condition, text: None, condition_text: None }
    }

    /// The error a host's module names by type and condition (RFC 6120 §8.3.3; another
    /// condition is undefined-condition, another type cancel).
    pub fn named(kind: &str, condition: &str) -> Self {
        const CONDITIONS: [&str; 22] = [
            "bad-request",
            "conflict",
            "feature-not-implemented",
            "forbidden",
            "gone",
            "internal-server-error",
            "item-not-found",
            "jid-malformed",
            "not-acceptable",
            "not-allowed",
            "not-authorized",
            "policy-violation",
            "recipient-unavailable",
            "redirect",
            "registration-required",
            "remote-server-not-found",
            "remote-server-timeout",
            "resource-constraint",
            "service-unavailable",
            "subscription-required",
            "undefined-condition",
            "unexpected-request",
        ];
        let kind = match kind {
            "auth" => ErrorType::Auth,
            "modify" => ErrorType::Modify,
            "wait" => ErrorType::Wait,
            _ => ErrorType::Cancel,
        };
        let condition = CONDITIONS.into_iter().find(|c| *c == condition).unwrap_or("undefined-condition");
        Self::new(kind, condition)
    }
    /// The same condition, as a `cancel` error (stock's type for some conditions).
    pub fn with_kind_cancel(mut self) -> Self {
        self.kind = ErrorType::Cancel;
        self
    }
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
    pub fn bad_request() -> Self {
        Self::new(ErrorType::Cancel, "bad-request")
    }
    pub fn modify_bad_request() -> Self {
        Self::new(ErrorType::Modify, "bad-request")
    }
    pub fn forbidden() -> Self {
        Self::new(ErrorType::Auth, "forbidden")
    }
    pub fn not_allowed() -> Self {
        Self::new(ErrorType::Cancel, "not-allowed")
    }
    pub fn not_acceptable() -> Self {
        Self::new(ErrorType::Modify, "not-acceptable")
    }
    pub fn item_not_found() -> Self {
        Self::new(ErrorType::Cancel, "item-not-found")
    }
    pub fn service_unavailable() -> Self {
        Self::new(ErrorType::Cancel, "service-unavailable")
    }
    pub fn feature_not_implemented() -> Self {
        Self::new(ErrorType::Cancel, "feature-not-implemented")
    }
    pub fn jid_malformed() -> Self {
        Self::new(ErrorType::Modify, "jid-malformed")
    }
    pub fn conflict() -> Self {
        Self::new(ErrorType::Cancel, "conflict")
    }
    pub fn resource_constraint() -> Self {
        Self::new(ErrorType::Wait, "resource-constraint")
    }
    pub fn internal_server_error() -> Self {
        Self::new(ErrorType::Wait, "internal-server-error")
    }
    pub fn not_in_room() -> Self {
        Self::new(ErrorType::Cancel, "not-acceptable")
            .with_text("You are not currently connected to this chat")
    }
}

/// A result reply to an iq, or an empty reply of the same kind (Prosody's `st.reply`):
/// to and from swapped, same id.
pub fn reply(orig: &Element) -> Element {
    let kind = if orig.name() == "iq" { Some("result") } else { orig.attr("type") };
    el(orig.name(), NS_CLIENT)
        .with_opt("to", orig.attr("from"))
        .with_opt("from", orig.attr("to"))
        .with_opt("id", orig.attr("id"))
        .with_opt("type", kind)
}

/// An error reply (Prosody's `st.error_reply`). `by` names the entity that raised the error
/// and is left out when it is the replying address itself.
pub fn error_reply(orig: &Element, error: &StanzaError, by: Option<&str>) -> Element {
    let mut reply = reply(orig);
    reply.set("type", "error");
    let by = by.filter(|by| Some(*by) != orig.attr("to"));
    let mut err = el("error", NS_CLIENT)
        .with("type", error.kind.as_str())
        .with_opt("by", by)
        .child(el(error.condition, NS_STANZAS).text(error.condition_text.clone().unwrap_or_default()));
    if let Some(text) = &error.text {
        err = err.text_child("text", NS_STANZAS, text.clone());
    }
    reply.child(err)
}

/// The defined condition of an error stanza, if it has one.
pub fn error_condition(stanza: &Element) -> Option<&str> {
    let error = stanza.get_child("error", NS_CLIENT)?;
    error.children().find(|c| c.ns() == NS_STANZAS && c.name() != "text").map(Element::name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_swaps_addresses_and_omits_by_when_it_is_the_sender() {
        let iq = el("iq", NS_CLIENT)
            .with("from", "a@x/r")
            .with("to", "room@muc.x")
            .with("id", "1")
            .with("type", "set");
        let err = error_reply(&iq, &StanzaError::forbidden(), Some("room@muc.x"));
        assert_eq!(err.attr("to"), Some("a@x/r"));
        assert_eq!(err.attr("from"), Some("room@muc.x"));
        assert_eq!(err.attr("type"), Some("error"));
        let e = err.get_child("error", NS_CLIENT).unwrap();
        assert_eq!(e.attr("by"), None);
        assert_eq!(e.attr("type"), Some("auth"));
        assert_eq!(error_condition(&err), Some("forbidden"));
    }

    #[test]
    fn xml_lang_is_read_from_the_xml_namespace() {
        let p: Element = "<presence xmlns='jabber:client' xml:lang='de'/>".parse().unwrap();
        assert_eq!(xml_lang(&p), Some("de"));
        assert_eq!(xml_lang(&el("presence", NS_CLIENT)), None);
    }
}
