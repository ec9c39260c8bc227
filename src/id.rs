//! Identifiers the service makes up: UUIDs (room salts, unique room names), stanza ids,
//! XEP-0421 occupant ids and the ids of IQs relayed between occupants.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `n`th 128 bits drawn from `entropy` (SplitMix64 on each half): the ids one call
/// makes up differ from each other, and calls differ by the host's entropy. Nothing here
/// needs cryptographic randomness; it needs no collisions.
pub fn draw(entropy: u128, n: u64) -> u128 {
    let mix = |seed: u64| {
        let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (u128::from(mix(entropy as u64)) << 64) | u128::from(mix((entropy >> 64) as u64 ^ 0x5851_f42d_4c95_7f2d))
}

/// Fresh random bits for a host's call into the core ([`crate::Facts::entropy`]): the
/// process's randomly keyed hasher over a counter and the clock. For hosts; the core
/// itself never calls it.
pub fn fresh_entropy() -> u128 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = std::collections::hash_map::RandomState::new();
    let now = std::time::SystemTime::now();
    (u128::from(state.hash_one((1u8, n, now))) << 64) | u128::from(state.hash_one((2u8, n, now)))
}

/// A random (version 4) UUID in its usual text form, from 128 random bits.
pub fn uuid_v4(bits: u128) -> String {
    let v = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let h = format!("{v:032x}");
    let mut uuid = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
    uuid.shrink_to_fit(); // kept for the room's life, as its salt
    uuid
}

/// A short random id for stanzas that came without one, from 128 random bits.
pub fn stanza_id(bits: u128) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..12).map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char).collect()
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// XEP-0421 occupant id, as stock derives it: base64(HMAC-SHA256(bare JID, room salt)).
pub fn occupant_id(bare_jid: &str, room_salt: &str) -> String {
    BASE64.encode(hmac_sha256(bare_jid.as_bytes(), room_salt.as_bytes()))
}

/// The 32 bytes an occupant id stands for, if `id` is one in canonical form.
pub fn decode_occupant_id(id: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 33];
    let ok = id.len() == 44 && BASE64.decode_slice(id, &mut bytes).ok() == Some(32);
    let id_bytes: [u8; 32] = bytes[..32].try_into().ok()?;
    (ok && encode_occupant_id(&id_bytes) == id).then_some(id_bytes)
}

pub fn encode_occupant_id(bytes: &[u8; 32]) -> String {
    BASE64.encode(bytes)
}

/// The id an IQ relayed from `from` to `target_session` carries, so that the reply can be
/// routed back to `from` with its original id (stock's scheme, readable by stock).
pub fn relayed_iq_id(target_session: &str, original_id: &str, from: &str, room_salt: &str) -> String {
    let tag = hmac_sha256(room_salt.as_bytes(), from.as_bytes());
    let mut raw = Vec::with_capacity(target_session.len() + original_id.len() + 10);
    raw.extend_from_slice(target_session.as_bytes());
    raw.push(0);
    raw.extend_from_slice(original_id.as_bytes());
    raw.push(0);
    raw.extend_from_slice(&tag[..8]);
    BASE64.encode(raw)
}

/// Splits a relayed IQ id into (target session, original id, sender tag).
pub fn parse_relayed_iq_id(id: &str) -> Option<(String, String, Vec<u8>)> {
    let raw = BASE64.decode(id).ok()?;
    let mut parts = raw.splitn(3, |b| *b == 0);
    let target = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    let original = std::str::from_utf8(parts.next()?).ok()?.to_owned();
    let tag = parts.next()?.to_vec();
    (!target.is_empty() && !tag.is_empty()).then_some((target, original, tag))
}

/// Whether `tag` is the sender tag of `session` in a relayed IQ id.
pub fn relayed_iq_tag_matches(tag: &[u8], session: &str, room_salt: &str) -> bool {
    hmac_sha256(room_salt.as_bytes(), session.as_bytes())[..8] == *tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_uuids_and_differ_draw_by_draw_and_call_by_call() {
        let a = uuid_v4(draw(7, 1));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(&a[19..20].chars().next().map(|c| "89ab".contains(c)), &Some(true));
        assert_ne!(a, uuid_v4(draw(7, 2)), "two draws of one call");
        assert_ne!(a, uuid_v4(draw(8, 1)), "two calls");
        assert_eq!(a, uuid_v4(draw(7, 1)), "the same facts, the same ids");
        assert_ne!(stanza_id(draw(7, 1)), stanza_id(draw(7, 2)));
        assert_ne!(fresh_entropy(), fresh_entropy());
    }

    #[test]
    fn relayed_ids_round_trip() {
        let id = relayed_iq_id("b@x/1", "orig-1", "a@x/2", "salt");
        let (target, original, tag) = parse_relayed_iq_id(&id).unwrap();
        assert_eq!((target.as_str(), original.as_str()), ("b@x/1", "orig-1"));
        assert!(relayed_iq_tag_matches(&tag, "a@x/2", "salt"));
        assert!(!relayed_iq_tag_matches(&tag, "a@x/3", "salt"));
        assert!(parse_relayed_iq_id("not base64!").is_none());
    }

    #[test]
    fn occupant_ids_are_stable_per_user_and_room() {
        assert_eq!(occupant_id("a@x", "s1"), occupant_id("a@x", "s1"));
        assert_ne!(occupant_id("a@x", "s1"), occupant_id("a@x", "s2"));
        assert_eq!(occupant_id("a@x", "s1").len(), 44);
    }
}
