//! Bytes → a sequence of stanzas into one MUC host, with the service's invariants checked
//! after every stanza (the same checks as tests/properties.rs).
//!
//! Each step starts with a byte choosing how the next stanza is made:
//! - most values: a structured action (join, leave, admin set, config form, …) decoded
//!   from the bytes that follow, from one of several users into one of several rooms;
//! - 0xF0..=0xF7: raw XML (a length byte, then that many bytes) parsed as a whole stanza;
//!   its `from` is replaced by a known user's session unless the next byte says not to;
//! - 0xF8..=0xFF: raw XML as the payload of an otherwise well-formed message, presence or
//!   iq from a known user to a known room or occupant.
#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

use libfuzzer_sys::fuzz_target;
use minidom::Element;
use muc_rs::config::HostConfig;
use muc_rs::memory_host::MemoryHost;
use muc_rs::MucHost;
use support::*;

const MAX_STEPS: usize = 200;

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes::new(data);
    let version = if b.bool() { (13, 0) } else { (0, 12) };
    let mut host = MucHost::new(DOMAIN, HostConfig::for_version(version)).unwrap();
    let mut storage = MemoryHost { admins: vec![ADMIN.parse().unwrap()], ..MemoryHost::at(1_000_000) };
    let mut step = 0;
    while !b.is_empty() && step < MAX_STEPS {
        let Some(stanza) = next_stanza(&mut b, step) else { continue };
        let out = storage.handle(&mut host, stanza.clone());
        if let Err(e) = check_step(&stanza, &out).and_then(|()| check_invariants(&host, &storage.admins)) {
            panic!("step {step}: {e}\nstanza: {}", String::from(&stanza));
        }
        step += 1;
    }
});

fn next_stanza(b: &mut Bytes, step: usize) -> Option<Element> {
    let mode = b.u8();
    let who = |b: &mut Bytes| {
        format!("{}/{}", USERS[b.pick(USERS.len()) as usize], RESOURCES[b.pick(RESOURCES.len()) as usize])
    };
    match mode {
        0xF0..=0xF7 => {
            let raw = b.chunk(255);
            let mut stanza: Element = std::str::from_utf8(raw).ok()?.parse().ok()?;
            if !b.u8().is_multiple_of(4) {
                let from = who(b);
                stanza.attrs_mut().insert(
                    minidom::rxml::Namespace::none().clone(),
                    minidom::rxml::NcName::try_from("from").unwrap(),
                    from,
                );
            }
            Some(stanza)
        }
        0xF8..=0xFF => {
            let raw = b.chunk(255);
            let payload = std::str::from_utf8(raw).ok()?;
            let name = ["message", "presence", "iq"][b.pick(3) as usize];
            let kind = GARBAGE_TYPES[b.pick(GARBAGE_TYPES.len()) as usize];
            let to = GARBAGE_TO[b.pick(3) as usize];
            let xml = format!(
                "<{name} xmlns='jabber:client' from='{}' to='{to}' id='f{step}'{}>{payload}</{name}>",
                who(b),
                kind.map(|k| format!(" type='{k}'")).unwrap_or_default()
            );
            xml.parse().ok()
        }
        _ => Some(Action::decode(b).to_stanza(step)),
    }
}
