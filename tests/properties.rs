//! Property tests: arbitrary sequences of stanzas from several users (several resources
//! each, some of them service admins) into several rooms, with the service's invariants
//! checked after every step. Run with `cargo test -p muc_rs --test properties`;
//! `PROPTEST_CASES=N` runs more cases.
//!
//! The generator and the checks live in `tests/support/mod.rs`, shared with the fuzz target.

mod support;

use muc_rs::config::HostConfig;
use muc_rs::memory_host::MemoryHost;
use muc_rs::MucHost;
use proptest::prelude::*;
use support::{check_invariants, check_step, Action, Bytes, ADMIN, DOMAIN};

/// A host with nothing stored, whose service admin is `ADMIN`.
fn storage() -> MemoryHost {
    MemoryHost { admins: vec![ADMIN.parse().unwrap()], ..MemoryHost::at(1_000_000) }
}

/// Runs `actions` on a fresh host for `version`, checking every step.
fn run(version: (u32, u32), actions: &[Action]) -> Result<(), TestCaseError> {
    let mut host = MucHost::new(DOMAIN, HostConfig::for_version(version)).unwrap();
    // Rooms are stored as a server would store them, so persistence is exercised too.
    let mut storage = storage();
    for (i, action) in actions.iter().enumerate() {
        let stanza = action.to_stanza(i);
        let out = storage.handle(&mut host, stanza.clone());
        if let Err(e) = check_step(&stanza, &out).and_then(|()| check_invariants(&host, &storage.admins)) {
            return Err(TestCaseError::fail(format!(
                "step {i} ({action:?}): {e}\nstanza: {}",
                show(&stanza)
            )));
        }
    }
    Ok(())
}

fn show(e: &minidom::Element) -> String {
    String::from(e)
}

fn config() -> ProptestConfig {
    // A few hundred cases keep `make test` fast; PROPTEST_CASES overrides.
    ProptestConfig {
        cases: 256,
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Sequences of actions, each decoded from its own bytes (so shrinking drops or simplifies
/// whole actions).
fn actions() -> impl Strategy<Value = Vec<Action>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 12), 1..60)
        .prop_map(|chunks| chunks.iter().map(|c| Action::decode(&mut Bytes::new(c))).collect())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn invariants_hold_on_prosody_13(actions in actions()) {
        run((13, 0), &actions)?;
    }

    #[test]
    fn invariants_hold_on_prosody_0_12(actions in actions()) {
        run((0, 12), &actions)?;
    }
}

/// Fixed scenarios that always run (a join, a second session, a nick change, a ban, a
/// leave); add any sequence a property failure reports here as a regression test.
#[test]
fn known_sequences_hold() {
    use support::Action::*;
    let seqs: Vec<Vec<Action>> = vec![vec![
        Join { user: 0, res: 0, room: 0, nick: 0, password: None, history: false },
        OwnerConfig { user: 0, res: 0, room: 0, form: support::ConfigForm::unlock() },
        Join { user: 1, res: 0, room: 0, nick: 1, password: None, history: true },
        Join { user: 1, res: 1, room: 0, nick: 1, password: None, history: false },
        NickChange { user: 1, res: 1, room: 0, nick: 2 },
        SetAffiliation { user: 0, res: 0, room: 0, target: 1, affiliation: 0, reason: true },
        Leave { user: 1, res: 0, room: 0, nick: 1 },
    ]];
    for seq in seqs {
        run((13, 0), &seq).unwrap();
        run((0, 12), &seq).unwrap();
    }
}

/// The generator reaches the states the invariants are about (so a passing run means
/// something): crowded rooms, occupants with several sessions, members-only and moderated
/// rooms with people in them, visitors, bans, destroyed rooms.
#[test]
fn generator_reaches_interesting_states() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as u8
    };
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..300 {
        let mut host = MucHost::new(DOMAIN, HostConfig::for_version((13, 0))).unwrap();
        let mut storage = storage();
        for i in 0..60 {
            let bytes: Vec<u8> = (0..12).map(|_| next()).collect();
            let action = Action::decode(&mut Bytes::new(&bytes));
            let stanza = action.to_stanza(i);
            let out = storage.handle(&mut host, stanza);
            let mut mark = |what| *seen.entry(what).or_default() += 1;
            if out.deliveries.iter().any(|d| String::from(&d.stanza).contains("code='301'")) {
                mark("ban announced");
            }
            if out.deliveries.iter().any(|d| String::from(&d.stanza).contains("<destroy")) {
                mark("room destroyed");
            }
            for room in host.rooms() {
                let n = room.occupants().count();
                if n >= 2 {
                    mark("room with 2+ occupants");
                }
                if room.occupants().any(|o| o.sessions().len() >= 2) {
                    mark("occupant with 2+ sessions");
                }
                if room.settings.members_only && n > 0 {
                    mark("members-only room with occupants");
                }
                if room.settings.moderated && n > 0 {
                    mark("moderated room with occupants");
                }
                if room.occupants().any(|o| o.role == Some(muc_rs::affiliation::Role::Visitor)) {
                    mark("visitor");
                }
                if room.settings.password.is_some() && n > 0 {
                    mark("password room with occupants");
                }
            }
        }
    }
    eprintln!("{seen:#?}");
    for what in [
        "room with 2+ occupants",
        "occupant with 2+ sessions",
        "members-only room with occupants",
        "moderated room with occupants",
        "visitor",
        "password room with occupants",
        "ban announced",
        "room destroyed",
    ] {
        assert!(seen.get(what).copied().unwrap_or(0) > 0, "never reached: {what}; reached: {seen:?}");
    }
}
