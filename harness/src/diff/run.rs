//! Running cases: a worker holds five connections (room creator, actor, target, bystander,
//! service admin) and runs cases one after another, each in a fresh room.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use minidom::Element;

use muc_harness::prosody::MUC_DOMAIN;
use muc_harness::xml;
use muc_harness::xmpp::{ConnectOptions, Connection};

use super::cases::{default_role, Aff, Case, Change, Kind, Role, Variant};
use super::normal::{self, JidMap, Outcome};

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";

/// Connection slots of a worker.
const CREATOR: usize = 0;
const ACTOR: usize = 1;
const TARGET: usize = 2;
const BYSTANDER: usize = 3;
const ADMIN: usize = 4;
const SLOTS: usize = 5;
const NICKS: [&str; SLOTS] = ["owner", "actor", "target", "bystander", "admin"];

/// Reason sent with every request (echoed in broadcasts and announcements).
const REASON: &str = "diff-reason";

struct Client {
    conn: Connection,
    /// Stanzas read while waiting for something else, since the last drain.
    seen: Vec<Element>,
}

impl Client {
    async fn send(&mut self, text: &str) -> Result<(), String> {
        self.conn.send_raw(text).await.map_err(|e| e.to_string())
    }

    async fn sync_if(&mut self, on: bool, timeout: Duration) -> Result<(), String> {
        if !on {
            return Ok(());
        }
        self.conn.sync(timeout).await.map_err(|e| e.to_string())
    }

    /// Reads until the iq with `id` arrives; everything else read goes to `seen`.
    async fn wait_iq(&mut self, id: &str, deadline: Instant) -> Result<Element, String> {
        loop {
            match self.conn.next_stanza(deadline).await.map_err(|e| e.to_string())? {
                Some(el) if el.name() == "iq" && el.attr("id") == Some(id) => return Ok(el),
                Some(el) => self.seen.push(el),
                None => return Err(format!("{}: no reply to iq {id}", self.conn.jid())),
            }
        }
    }

    /// Waits for the results of setup iqs; any error reply fails the setup.
    async fn expect_results(&mut self, ids: &[String], deadline: Instant) -> Result<(), String> {
        for id in ids {
            let reply = self.wait_iq(id, deadline).await?;
            if reply.attr("type") != Some("result") {
                return Err(format!("setup: {id} failed: {}", xml::to_string(&reply)));
            }
        }
        Ok(())
    }

    /// Everything received and not yet taken (what has already arrived; no waiting).
    async fn drain(&mut self) -> Vec<Element> {
        let mut out = std::mem::take(&mut self.seen);
        // With a deadline of now, `next_stanza` only takes what is already queued.
        while let Ok(Some(el)) = self.conn.next_stanza(Instant::now()).await {
            out.push(el);
        }
        out
    }
}

pub struct Worker {
    clients: Vec<Client>,
    timeout: Duration,
}

impl Worker {
    pub async fn connect(addr: SocketAddr, id: usize, timeout: Duration) -> Result<Worker, String> {
        let mut clients = Vec::new();
        for (slot, nick) in NICKS.iter().enumerate() {
            let jid =
                if slot == ADMIN { "admin@localhost".to_owned() } else { format!("w{id}-{nick}@localhost") };
            let opts = ConnectOptions {
                addr,
                jid,
                password: "password".into(),
                resource: None,
                timeout,
                record_traffic: false,
            };
            let conn = Connection::connect(&opts).await.map_err(|e| e.to_string())?;
            clients.push(Client { conn, seen: Vec::new() });
        }
        Ok(Worker { clients, timeout })
    }

    /// Whether every stream is still open (a worker with a dead stream stops).
    pub fn alive(&self) -> bool {
        self.clients.iter().all(|c| c.conn.ended().is_none())
    }

    fn bare(&self, slot: usize) -> String {
        self.clients[slot].conn.jid().to_bare().to_string()
    }

    /// Ping round trips on the connections in `slots` (at once): afterwards, everything the
    /// server sent them before is queued.
    async fn sync(&mut self, slots: &[bool; SLOTS]) -> Result<(), String> {
        let t = self.timeout;
        let [a, b, c, d, e] = &mut self.clients[..] else { unreachable!() };
        let (ra, rb, rc, rd, re) = tokio::join!(
            a.sync_if(slots[0], t),
            b.sync_if(slots[1], t),
            c.sync_if(slots[2], t),
            d.sync_if(slots[3], t),
            e.sync_if(slots[4], t)
        );
        ra.and(rb).and(rc).and(rd).and(re)
    }

    /// Runs one case in room `c<no>`; `Err` when the case could not be set up or timed out.
    pub async fn run(&mut self, no: usize, case: &Case) -> Result<Outcome, String> {
        let room = format!("c{no}@{MUC_DOMAIN}");
        let result = self.run_in(&room, case).await;
        // Destroy the room whatever happened; its leftovers are filtered out by room JID.
        let destroy = format!(
            "<iq type='set' id='destroy' to='{room}'><query xmlns='{NS_MUC_OWNER}'><destroy/></query></iq>"
        );
        let _ = self.clients[CREATOR].send(&destroy).await;
        result
    }

    async fn run_in(&mut self, room: &str, case: &Case) -> Result<Outcome, String> {
        let deadline = Instant::now() + self.timeout;
        let actor_slot = slot_of(case.actor.kind, ACTOR);
        let (target_slot, target) = match case.target {
            Some(t) => (slot_of(t.kind, TARGET), t),
            None => (actor_slot, case.actor),
        };
        // Parties present in the room and the role each must have.
        let bystander_aff = if case.variant == Variant::MembersOnly { Aff::Member } else { Aff::None };
        let mut present: Vec<(usize, Role)> =
            vec![(BYSTANDER, default_role(Kind::User(bystander_aff), case.variant, case.admins_owners))];
        let mut roles_wanted: BTreeMap<usize, (Kind, Role)> = BTreeMap::new();
        for (slot, party) in [(actor_slot, case.actor), (target_slot, target)] {
            if let Some(role) = party.role {
                roles_wanted.insert(slot, (party.kind, role));
            }
        }
        roles_wanted.entry(CREATOR).or_insert((Kind::Creator, Role::Moderator));
        for (&slot, &(_, role)) in &roles_wanted {
            present.push((slot, role));
        }

        // Connections that take part (the others get nothing from this room).
        let mut involved = [false; SLOTS];
        for slot in [CREATOR, BYSTANDER, actor_slot, target_slot] {
            involved[slot] = true;
        }

        // 1. The creator makes the room, configures it and sets affiliations.
        let creator = &mut self.clients[CREATOR];
        creator.send(&join(room, NICKS[CREATOR])).await?;
        let mut ids = Vec::new();
        if !case.variant.fields().is_empty() {
            let mut form = String::new();
            for (var, value) in case.variant.fields() {
                form.push_str(&format!("<field var='{var}'><value>{value}</value></field>"));
            }
            creator
                .send(&format!(
                    "<iq type='set' id='config-{room}' to='{room}'><query xmlns='{NS_MUC_OWNER}'>\
                     <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>\
                     <value>http://jabber.org/protocol/muc#roomconfig</value></field>{form}</x></query></iq>"
                ))
                .await?;
            ids.push(format!("config-{room}"));
        }
        let mut affs: Vec<(usize, Aff)> = Vec::new();
        for (slot, party) in [(actor_slot, case.actor), (target_slot, target)] {
            if let Kind::User(aff) = party.kind {
                if aff != Aff::None && !affs.iter().any(|(s, _)| *s == slot) {
                    affs.push((slot, aff));
                }
            }
        }
        if bystander_aff != Aff::None {
            affs.push((BYSTANDER, bystander_aff));
        }
        for (slot, aff) in affs {
            let id = format!("aff-{slot}-{room}");
            let jid = self.bare(slot);
            self.clients[CREATOR]
                .send(&admin_item(room, &id, &format!("affiliation='{}' jid='{jid}'", aff.as_str()), None))
                .await?;
            ids.push(id);
        }
        self.clients[CREATOR].expect_results(&ids, deadline).await?;
        if ids.is_empty() {
            // The room must exist (made by the creator) before anyone else joins.
            self.clients[CREATOR].sync_if(true, self.timeout).await?;
        }

        // 2. The others join.
        for &(slot, _) in &present {
            if slot != CREATOR {
                self.clients[slot].send(&join(room, NICKS[slot])).await?;
            }
        }
        self.sync(&involved).await?;

        // 3. The creator gives each party its role (its own last: it may demote itself).
        let mut ids = Vec::new();
        let mut order: Vec<(usize, Kind, Role)> =
            roles_wanted.iter().map(|(&slot, &(kind, role))| (slot, kind, role)).collect();
        order.sort_by_key(|(slot, _, _)| *slot == CREATOR);
        for (slot, kind, role) in order {
            if role != default_role(kind, case.variant, case.admins_owners) {
                let id = format!("role-{slot}-{room}");
                self.clients[CREATOR]
                    .send(&admin_item(
                        room,
                        &id,
                        &format!("role='{}' nick='{}'", role.as_str(), NICKS[slot]),
                        None,
                    ))
                    .await?;
                ids.push(id);
            }
        }
        self.clients[CREATOR].expect_results(&ids, deadline).await?;
        self.sync(&involved).await?;
        let mut setup_seen = Vec::new();
        for c in &mut self.clients {
            setup_seen.push(c.drain().await);
        }
        for &(slot, role) in &present {
            let got = self_role(&setup_seen[slot], room, NICKS[slot]);
            if got.as_deref() != Some(role.as_str()) {
                return Err(format!(
                    "setup: {} should be {} in the room but is {}",
                    NICKS[slot],
                    role.as_str(),
                    got.unwrap_or_else(|| "absent".into())
                ));
            }
        }

        // 4. The request.
        let item = match case.change {
            Change::Affiliation(aff) => {
                format!("affiliation='{}' jid='{}'", aff.as_str(), self.bare(target_slot))
            }
            Change::Role(role) => {
                format!("role='{}' nick='{}'", role.map_or("none", Role::as_str), NICKS[target_slot])
            }
            Change::AffiliationByNick(aff) => {
                format!("affiliation='{}' nick='{}'", aff.as_str(), NICKS[target_slot])
            }
            Change::RoleByJid(role) => {
                format!("role='{}' jid='{}'", role.map_or("none", Role::as_str), self.bare(target_slot))
            }
        };
        // Ids name the room: a late reply from an earlier case never passes for this one's.
        let req = format!("req-{room}");
        self.clients[actor_slot].send(&admin_item(room, &req, &item, Some(REASON))).await?;
        let reply = self.clients[actor_slot].wait_iq(&req, deadline).await?;
        self.sync(&involved).await?;

        let map = JidMap {
            clients: (0..SLOTS)
                .map(|s| (self.clients[s].conn.jid().to_string(), label(s, actor_slot, target_slot)))
                .collect(),
            room: room.to_owned(),
        };
        let mut received = BTreeMap::new();
        for slot in (0..SLOTS).filter(|&s| involved[s]) {
            let mut list: Vec<String> = self.clients[slot]
                .drain()
                .await
                .iter()
                .filter(|el| map.is_from_room(el))
                .map(|el| normal::stanza(el, &map))
                .collect();
            list.sort();
            received.insert(label(slot, actor_slot, target_slot), list);
        }
        Ok(Outcome { reply: normal::reply(&reply), received })
    }
}

/// The connection slot a party of this kind uses (`user_slot` for a plain user).
fn slot_of(kind: Kind, user_slot: usize) -> usize {
    match kind {
        Kind::ServiceAdmin => ADMIN,
        Kind::Creator => CREATOR,
        Kind::User(_) => user_slot,
    }
}

fn label(slot: usize, actor: usize, target: usize) -> String {
    match slot {
        s if s == actor && s == target => "ACTOR=TARGET".into(),
        s if s == actor => "ACTOR".into(),
        s if s == target => "TARGET".into(),
        s => NICKS[s].to_owned(),
    }
}

fn join(room: &str, nick: &str) -> String {
    format!("<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
}

fn admin_item(room: &str, id: &str, attrs: &str, reason: Option<&str>) -> String {
    let reason = reason.map(|r| format!("<reason>{}</reason>", xml::escape(r))).unwrap_or_default();
    format!(
        "<iq type='set' id='{id}' to='{room}'><query xmlns='{NS_MUC_ADMIN}'><item {attrs}>{reason}</item></query></iq>"
    )
}

/// The role in the last self-presence (status 110) from `room/nick`, if the party is in.
fn self_role(stanzas: &[Element], room: &str, nick: &str) -> Option<String> {
    let from = format!("{room}/{nick}");
    let last = stanzas.iter().rev().find(|el| {
        el.name() == "presence"
            && el.attr("from") == Some(from.as_str())
            && el
                .get_child("x", NS_MUC_USER)
                .is_some_and(|x| x.children().any(|c| c.name() == "status" && c.attr("code") == Some("110")))
    })?;
    if last.attr("type").is_some() {
        return None;
    }
    let item = last.get_child("x", NS_MUC_USER)?.get_child("item", NS_MUC_USER)?;
    item.attr("role").map(str::to_owned)
}
