//! Scansion's stanza matching: does a received stanza satisfy an expected one?
//!
//! - attributes: every expected one must be present with the same value (`{scansion:any}`
//!   only requires presence);
//! - `jabber:client` elements match non-strictly: extra attributes and children are fine and
//!   child order does not matter (each expected child needs a different received child);
//! - other namespaces match strictly: same attributes, same children in the same order;
//! - `scansion:strict="true|false"` overrides that for the element it is on (not its children);
//! - text: whitespace-only expected text accepts anything; otherwise non-strict compares
//!   trimmed text and strict compares exactly.
//! - an extension of this runner: `{scansion:capture:NAME}` as an attribute value, or as an
//!   element's whole (trimmed) text, matches anything there like `{scansion:any}` and keeps
//!   the received value, which later actions use as `${NAME}` (say, a stanza-id to refer to).

use minidom::Element;

use crate::xml::{self, NS_CLIENT, NS_SCANSION};

/// Attribute value that matches any value (the attribute must still be present).
pub const ANY: &str = "{scansion:any}";

/// Start of a value that matches anything and keeps it: `{scansion:capture:NAME}`.
pub const CAPTURE_PREFIX: &str = "{scansion:capture:";

/// Values kept by `{scansion:capture:NAME}`: (NAME, received value), in document order.
pub type Captures = Vec<(String, String)>;

/// The NAME of a `{scansion:capture:NAME}` value.
pub fn capture_name(value: &str) -> Option<&str> {
    value.strip_prefix(CAPTURE_PREFIX)?.strip_suffix('}').filter(|n| !n.is_empty())
}

/// Checks `received` against `expected`; the error says where and why they differ.
pub fn check(expected: &Element, received: &Element) -> Result<(), String> {
    check_capturing(expected, received).map(|_| ())
}

/// [`check`], returning the values kept by `{scansion:capture:NAME}` on a match.
pub fn check_capturing(expected: &Element, received: &Element) -> Result<Captures, String> {
    let mut captures = Captures::new();
    match_element(expected, received, "", &mut captures)?;
    Ok(captures)
}

fn is_strict(el: &Element) -> bool {
    match el.attr_ns(NS_SCANSION, "strict") {
        Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        _ => el.ns() != NS_CLIENT,
    }
}

fn match_element(exp: &Element, rec: &Element, parent: &str, caps: &mut Captures) -> Result<(), String> {
    let path = format!("{parent}/{}", exp.name());
    if exp.name() != rec.name() || exp.ns() != rec.ns() {
        return Err(format!(
            "{path}: expected <{}> in namespace {}, got <{}> in namespace {}",
            exp.name(),
            exp.ns(),
            rec.name(),
            rec.ns()
        ));
    }
    let strict = is_strict(exp);

    for ((ns, name), want) in exp.attrs() {
        if *ns == NS_SCANSION {
            continue;
        }
        // A message without a type is of type normal (RFC 6121 §5.2.2): servers that
        // serialize stanzas themselves (ejabberd) leave the default out.
        let default_type = (parent.is_empty() && exp.name() == "message" && name.as_str() == "type")
            .then(|| String::from("normal"));
        match rec.attrs().get(ns, name).or(default_type.as_ref()) {
            None => return Err(format!("{path}: missing attribute {name}='{want}'")),
            Some(got) => {
                if let Some(var) = capture_name(want) {
                    caps.push((var.to_owned(), got.clone()));
                } else if want != ANY && got != want {
                    return Err(format!("{path}: attribute {name}='{got}', expected '{want}'"));
                }
            }
        }
    }
    if strict {
        for ((ns, name), got) in rec.attrs() {
            if exp.attrs().get(ns, name).is_none() {
                return Err(format!("{path}: unexpected attribute {name}='{got}' (strict element)"));
            }
        }
    }

    let want_text = exp.text();
    if let Some(var) = capture_name(want_text.trim()) {
        caps.push((var.to_owned(), rec.text().trim().to_owned()));
    } else if !want_text.trim().is_empty() {
        let got_text = rec.text();
        let same = if strict { want_text == got_text } else { want_text.trim() == got_text.trim() };
        if !same {
            return Err(format!("{path}: text {got_text:?}, expected {want_text:?}"));
        }
    }

    let want: Vec<&Element> = exp.children().collect();
    let got: Vec<&Element> = rec.children().collect();
    if strict {
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            match_element(w, g, &format!("{path}[child {}]", i + 1), caps)?;
        }
        if want.len() != got.len() {
            return Err(format!(
                "{path}: {} child elements, expected {} (strict element)",
                got.len(),
                want.len()
            ));
        }
        Ok(())
    } else {
        match_unordered(&want, &got, &path, caps)
    }
}

/// Non-strict children: a matching where each expected child gets its own received child.
/// Captures come from the pairs of the matching found.
fn match_unordered(
    want: &[&Element],
    got: &[&Element],
    path: &str,
    caps: &mut Captures,
) -> Result<(), String> {
    if want.is_empty() {
        return Ok(());
    }
    let pair_caps: Vec<Vec<Option<Captures>>> = want
        .iter()
        .map(|w| {
            got.iter()
                .map(|g| {
                    let mut c = Captures::new();
                    match_element(w, g, path, &mut c).ok().map(|()| c)
                })
                .collect()
        })
        .collect();
    let fits: Vec<Vec<bool>> =
        pair_caps.iter().map(|row| row.iter().map(Option::is_some).collect()).collect();
    // Kuhn's augmenting paths; children lists are short, so this is cheap.
    let mut owner: Vec<Option<usize>> = vec![None; got.len()];
    for i in 0..want.len() {
        let mut seen = vec![false; got.len()];
        if !augment(i, &fits, &mut owner, &mut seen) {
            return Err(explain_missing(i, want, got, &fits, path));
        }
    }
    let mut pairs: Vec<(usize, usize)> =
        owner.iter().enumerate().filter_map(|(j, i)| i.map(|i| (i, j))).collect();
    pairs.sort_unstable();
    for (i, j) in pairs {
        caps.extend(pair_caps[i][j].iter().flatten().cloned());
    }
    Ok(())
}

fn augment(i: usize, fits: &[Vec<bool>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for j in 0..owner.len() {
        if fits[i][j] && !seen[j] {
            seen[j] = true;
            if owner[j].is_none_or(|k| augment(k, fits, owner, seen)) {
                owner[j] = Some(i);
                return true;
            }
        }
    }
    false
}

fn explain_missing(i: usize, want: &[&Element], got: &[&Element], fits: &[Vec<bool>], path: &str) -> String {
    let w = want[i];
    if fits[i].iter().any(|&f| f) {
        return format!(
            "{path}: not enough received children to match each of the expected ones (e.g. {})",
            xml::to_string(w)
        );
    }
    // The nearest miss is the first received child with the same name: say why it failed.
    let near = got
        .iter()
        .filter(|g| g.name() == w.name() && g.ns() == w.ns())
        .map(|g| match_element(w, g, path, &mut Captures::new()).unwrap_err())
        .collect::<Vec<_>>();
    if near.is_empty() {
        format!("{path}: missing child {}", xml::to_string(w))
    } else {
        format!("{path}: no child matches {} ({})", xml::start_tag(w), near.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        let mut v = xml::parse_fragment(s).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn ok(exp: &str, rec: &str) -> bool {
        match check(&el(exp), &el(rec)) {
            Ok(()) => true,
            Err(why) => {
                eprintln!("mismatch: {why}");
                false
            }
        }
    }

    const MUC_USER: &str = "http://jabber.org/protocol/muc#user";

    #[test]
    fn client_elements_are_not_strict() {
        assert!(ok(
            "<presence from='r@c/R'/>",
            "<presence from='r@c/R' to='u@l/x' id='1'><x xmlns='urn:y'/></presence>"
        ));
        assert!(!ok("<presence from='r@c/R'/>", "<presence from='r@c/J'/>"));
        assert!(!ok("<presence type='unavailable'/>", "<presence/>"));
        assert!(!ok("<presence/>", "<message/>"));
    }

    #[test]
    fn other_namespaces_are_strict() {
        let exp = format!("<presence><x xmlns='{MUC_USER}'><status code='110'/></x></presence>");
        assert!(ok(&exp, &format!("<presence><x xmlns='{MUC_USER}'><status code='110'/></x></presence>")));
        // extra child
        assert!(!ok(
            &exp,
            &format!(
                "<presence><x xmlns='{MUC_USER}'><status code='110'/><status code='100'/></x></presence>"
            )
        ));
        // extra attribute
        assert!(!ok(
            &exp,
            &format!("<presence><x xmlns='{MUC_USER}'><status code='110' a='b'/></x></presence>")
        ));
        // wrong namespace
        assert!(!ok(&exp, "<presence><x xmlns='urn:other'><status code='110'/></x></presence>"));
    }

    #[test]
    fn strict_children_keep_their_order() {
        let exp = format!(
            "<presence><x xmlns='{MUC_USER}'><status code='201'/><item role='moderator'/><status code='110'/></x></presence>"
        );
        let good = format!(
            "<presence><x xmlns='{MUC_USER}'><status code='201'/><item role='moderator'/><status code='110'/></x></presence>"
        );
        let reordered = format!(
            "<presence><x xmlns='{MUC_USER}'><status code='110'/><item role='moderator'/><status code='201'/></x></presence>"
        );
        assert!(ok(&exp, &good));
        assert!(!ok(&exp, &reordered));
    }

    #[test]
    fn client_children_in_any_order_each_used_once() {
        let exp = "<message><body/><subject>s</subject></message>";
        assert!(ok(exp, "<message><subject>s</subject><thread/><body>b</body></message>"));
        // Two expected children may not share one received child.
        assert!(!ok("<message><body/><body/></message>", "<message><body>a</body></message>"));
        // A greedy pairing would take the first <body> for the any-text one; the matcher must
        // still find the assignment that works.
        assert!(ok(
            "<message><body/><body>x</body></message>",
            "<message><body>x</body><body>y</body></message>"
        ));
    }

    #[test]
    fn strict_override_applies_to_that_element_only() {
        // Loosened payload: extra attributes and children fine.
        assert!(ok(
            "<iq><query xmlns='urn:q' scansion:strict='false'><item a='1'/></query></iq>",
            "<iq><query xmlns='urn:q' ver='2'><other/><item a='1'/></query></iq>"
        ));
        // ... but its children stay strict (they are not jabber:client).
        assert!(!ok(
            "<iq><query xmlns='urn:q' scansion:strict='false'><item a='1'/></query></iq>",
            "<iq><query xmlns='urn:q'><item a='1' b='2'/></query></iq>"
        ));
        // Tightened jabber:client element: no extra attributes.
        assert!(!ok("<message scansion:strict='true' type='chat'/>", "<message type='chat' id='x'/>"));
        assert!(ok("<message scansion:strict='true' type='chat'/>", "<message type='chat'/>"));
    }

    #[test]
    fn any_value_only_requires_presence() {
        assert!(ok("<iq id='{scansion:any}'/>", "<iq id='abc'/>"));
        assert!(!ok("<iq id='{scansion:any}'/>", "<iq/>"));
        assert!(ok(
            &format!("<presence><x xmlns='{MUC_USER}'><item jid='{{scansion:any}}'/></x></presence>"),
            &format!("<presence><x xmlns='{MUC_USER}'><item jid='a@b/c'/></x></presence>")
        ));
    }

    #[test]
    fn captures_keep_received_values() {
        let caps = |exp: &str, rec: &str| check_capturing(&el(exp), &el(rec));
        assert_eq!(capture_name("{scansion:capture:m1 id}"), Some("m1 id"));
        assert_eq!(capture_name("{scansion:capture:}"), None);
        assert_eq!(capture_name("{scansion:any}"), None);
        // An attribute, in a strict payload, is kept like {scansion:any} matches it.
        let got = caps(
            "<message><stanza-id xmlns='urn:xmpp:sid:0' by='r@c' id='{scansion:capture:sid}'/></message>",
            "<message><stanza-id xmlns='urn:xmpp:sid:0' by='r@c' id='abc'/></message>",
        )
        .unwrap();
        assert_eq!(got, vec![("sid".to_owned(), "abc".to_owned())]);
        // It must still be present.
        assert!(caps("<iq id='{scansion:capture:x}'/>", "<iq/>").is_err());
        // Whole text, trimmed.
        let got = caps(
            "<message><body>{scansion:capture:b}</body></message>",
            "<message><body> hi </body></message>",
        )
        .unwrap();
        assert_eq!(got, vec![("b".to_owned(), "hi".to_owned())]);
        // Among unordered children, the value comes from the child that was paired: the
        // <stanza-id by='r@c'/> here, not the first one tried.
        let got = caps(
            "<message><stanza-id xmlns='urn:xmpp:sid:0' by='r@c' id='{scansion:capture:sid}'/></message>",
            "<message><stanza-id xmlns='urn:xmpp:sid:0' by='u@l' id='spoof'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='r@c' id='real'/></message>",
        )
        .unwrap();
        assert_eq!(got, vec![("sid".to_owned(), "real".to_owned())]);
        // No capture on a mismatch.
        assert!(caps(
            "<message type='chat' id='{scansion:capture:i}'/>",
            "<message type='groupchat' id='1'/>"
        )
        .is_err());
    }

    #[test]
    fn text_rules() {
        // No expected text: anything goes, also in strict elements.
        assert!(ok("<message><subject/></message>", "<message><subject>Hi</subject></message>"));
        assert!(ok("<x xmlns='urn:x'><y/></x>", "<x xmlns='urn:x'><y>t</y></x>"));
        // Non-strict compares trimmed text.
        assert!(ok("<message><body>\n  hello\n</body></message>", "<message><body>hello</body></message>"));
        assert!(!ok("<message><body>hello</body></message>", "<message><body>bye</body></message>"));
        // Strict compares exactly.
        assert!(ok("<x xmlns='urn:x'><y>t</y></x>", "<x xmlns='urn:x'><y>t</y></x>"));
        assert!(!ok("<x xmlns='urn:x'><y> t</y></x>", "<x xmlns='urn:x'><y>t</y></x>"));
        // Whitespace between children is not text.
        assert!(ok("<x xmlns='urn:x'>\n\t<y/>\n</x>", "<x xmlns='urn:x'><y/></x>"));
    }

    #[test]
    fn a_message_without_type_is_normal() {
        assert!(check(&el("<message type='normal'/>"), &el("<message/>")).is_ok());
        assert!(check(&el("<message type='chat'/>"), &el("<message/>")).is_err());
        assert!(check(&el("<presence type='normal'/>"), &el("<presence/>")).is_err());
    }

    #[test]
    fn mismatch_reasons_are_specific() {
        let why = check(
            &el(&format!("<presence><x xmlns='{MUC_USER}'><status code='321'/></x></presence>")),
            &el(&format!("<presence><x xmlns='{MUC_USER}'><status code='307'/></x></presence>")),
        )
        .unwrap_err();
        assert!(why.contains("code='307', expected '321'"), "{why}");
        let why = check(&el("<presence type='unavailable'/>"), &el("<presence/>")).unwrap_err();
        assert!(why.contains("missing attribute type='unavailable'"), "{why}");
    }
}
