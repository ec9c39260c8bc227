//! Persistence of rooms (issue 6), checked with real clients against a real Prosody:
//! - restart: a configured persistent room survives a graceful restart;
//! - kill -9: everything acknowledged survives `kill -9` right after the acknowledgement;
//! - migration: rooms made by stock `muc` work in `muc_rs` on the same data, and changes made
//!   in `muc_rs` are seen by stock `muc` after switching back;
//! - backends: internal (files), SQLite and a PostgreSQL server started here;
//! - temporary rooms leave nothing in storage, and a persistent room made temporary is removed;
//! - also: tombstones of destroyed rooms (both ways), live state (last message) stored at
//!   shutdown as stock does, the room cache (`muc_room_cache_size`), and a storage that goes
//!   away (PostgreSQL stopped): the change is refused and undone.
//!
//! Stock `muc` runs in some tests as a reference, so that an expectation that stock does not
//! meet shows up as the test's mistake rather than muc_rs's.
//!
//! Every test runs on Prosody 0.12 and 13 and fails (no skip) when something is missing: run
//! tools/install-deps.sh and build the plugin (make build) first. The plugin is
//! `<repo>/build/plugin`, or `$MUC_RS_PLUGIN_DIR` (as for the scansion runner).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use minidom::Element;
use muc_harness::postgres::Postgres;
use muc_harness::prosody::{repo_root, Install, Prosody, ServerConfig, Version, MUC_DOMAIN};
use muc_harness::xml;
use muc_harness::xmpp::{ConnectOptions, Connection};

const T: Duration = Duration::from_secs(10);

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_DATA: &str = "jabber:x:data";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

const OWNER: &str = "owner@localhost";
const OWNER_NICK: &str = "Owner";
const STRANGER: &str = "mallory@localhost";
const ADMIN: &str = "nurse@localhost";
const OUTCAST: &str = "iago@localhost";
const NAME: &str = "Persistent Room";
const PASSWORD: &str = "s3cret";
const SUBJECT: &str = "Tea at five";
const JULIET: (&str, &str) = ("juliet@localhost", "Juliet");
const ROMEO: (&str, &str) = ("romeo@localhost", "Romeo");
/// A name that needs escaping in XML, Lua and SQL, and is not ASCII.
const UNICODE_NAME: &str = "Renamed: café ☕ «l'été» & <\"quotes\">";

// ---------------------------------------------------------------------------------------
// Servers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Module {
    Stock,
    Rs,
}

impl Module {
    fn name(self) -> &'static str {
        match self {
            Module::Stock => "muc",
            Module::Rs => "muc_rs",
        }
    }
}

/// Storage settings: `storage = ...` and the global lines that go with it.
#[derive(Clone, Debug)]
struct Storage {
    label: String,
    storage: &'static str,
    extra: Vec<String>,
}

impl Storage {
    fn internal() -> Storage {
        Storage { label: "internal".into(), storage: "internal", extra: Vec::new() }
    }

    /// A file in the data dir (relative SQLite paths resolve against `data_path`).
    fn sqlite() -> Storage {
        Storage {
            label: "sqlite".into(),
            storage: "sql",
            extra: vec![r#"sql = { driver = "SQLite3", database = "prosody.sqlite" }"#.into()],
        }
    }

    fn postgres(pg: &Postgres, database: &str) -> Storage {
        Storage { label: "postgresql".into(), storage: "sql", extra: vec![pg.prosody_sql_for(database)] }
    }
}

fn config(module: Module, storage: &Storage) -> ServerConfig {
    let plugin = std::env::var_os("MUC_RS_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build/plugin"));
    assert!(
        plugin.join("mod_muc_rs.lua").is_file() && plugin.join("muc_rs.so").is_file(),
        "the plugin is not built in {} (make build)",
        plugin.display()
    );
    ServerConfig {
        muc_module: module.name().into(),
        plugin_paths: vec![plugin],
        storage: storage.storage.into(),
        global_extra: storage.extra.clone(),
        ..Default::default()
    }
}

async fn start(version: Version, module: Module, storage: &Storage) -> Prosody {
    let install = Install::discover(version).expect("Prosody missing: run tools/install-deps.sh");
    Prosody::start(&install, config(module, storage)).await.expect("start Prosody")
}

/// Fails on Lua tracebacks or MUC errors in the log.
fn check_log(p: &Prosody, what: &str) {
    let log = p.read_log();
    let problems = muc_harness::prosody::log_problems(&log);
    assert!(problems.is_empty(), "{what}: problems in Prosody's log:\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Clients

struct Client {
    c: Connection,
    next_id: u64,
}

fn parse(text: &str) -> Element {
    xml::parse_fragment(text).unwrap_or_else(|e| panic!("bad XML {text}: {e}")).remove(0)
}

fn room_jid(room: &str) -> String {
    format!("{room}@{MUC_DOMAIN}")
}

fn error_condition(el: &Element) -> Option<String> {
    el.get_child("error", "jabber:client")
        .and_then(|e| e.children().find(|c| c.ns() == NS_STANZAS && c.name() != "text"))
        .map(|c| c.name().to_owned())
}

fn has_status(el: &Element, code: &str) -> bool {
    el.get_child("x", NS_MUC_USER)
        .is_some_and(|x| x.children().any(|s| s.name() == "status" && s.attr("code") == Some(code)))
}

impl Client {
    async fn connect(p: &Prosody, jid: &str) -> Client {
        let opts = ConnectOptions {
            addr: p.c2s_addr(),
            jid: jid.into(),
            password: "pw".into(),
            resource: Some("res".into()),
            timeout: T,
            record_traffic: false,
        };
        let c = Connection::connect(&opts).await.unwrap_or_else(|e| panic!("connect as {jid}: {e}"));
        Client { c, next_id: 0 }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("t{}", self.next_id)
    }

    async fn send(&mut self, text: &str) {
        self.c.send(&parse(text)).await.expect("send");
    }

    /// Waits for a stanza matching `pred`, dropping others; panics with what came instead.
    async fn expect(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        let deadline = Instant::now() + T;
        let mut seen = Vec::new();
        loop {
            match self.c.next_stanza(deadline).await {
                Ok(Some(el)) if pred(&el) => return el,
                Ok(Some(el)) => seen.push(xml::to_string(&el)),
                Ok(None) => panic!("{}: no {what} within {T:?}; got:\n{}", self.c.jid(), seen.join("\n")),
                Err(e) => panic!("{}: no {what}: {e}; got:\n{}", self.c.jid(), seen.join("\n")),
            }
        }
    }

    /// Sends an iq (`{id}` in the text is replaced by a fresh id) and returns its answer.
    async fn iq(&mut self, text: &str) -> Element {
        let id = self.id();
        self.send(&text.replace("{id}", &id)).await;
        self.expect(&format!("answer to iq {id}"), |el| el.name() == "iq" && el.attr("id") == Some(&id)).await
    }

    async fn iq_ok(&mut self, what: &str, text: &str) -> Element {
        let reply = self.iq(text).await;
        assert_eq!(reply.attr("type"), Some("result"), "{what}: {}", xml::to_string(&reply));
        reply
    }

    /// Joins; `Ok` with every stanza of the join (presences, history, subject), or `Err` with
    /// the error presence.
    async fn join(
        &mut self,
        room: &str,
        nick: &str,
        password: Option<&str>,
    ) -> Result<Vec<Element>, Element> {
        let occupant = format!("{}/{nick}", room_jid(room));
        let password = password.map(|p| format!("<password>{p}</password>")).unwrap_or_default();
        self.send(&format!("<presence to='{occupant}'><x xmlns='{NS_MUC}'>{password}</x></presence>")).await;
        let deadline = Instant::now() + T;
        let mut got = Vec::new();
        loop {
            let el = match self.c.next_stanza(deadline).await {
                Ok(Some(el)) => el,
                other => {
                    panic!("{} joining {occupant}: no self-presence ({other:?}); got {got:?}", self.c.jid())
                }
            };
            let from_me = el.name() == "presence" && el.attr("from") == Some(&occupant);
            if from_me && el.attr("type") == Some("error") {
                return Err(el);
            }
            let done = from_me && has_status(&el, "110");
            got.push(el);
            if done {
                break;
            }
        }
        // The subject follows the self-presence in the same round.
        self.c.sync(T).await.expect("sync");
        while let Ok(Some(el)) = self.c.next_stanza(Instant::now()).await {
            got.push(el);
        }
        Ok(got)
    }

    async fn join_ok(&mut self, room: &str, nick: &str, password: Option<&str>) -> Vec<Element> {
        match self.join(room, nick, password).await {
            Ok(got) => got,
            Err(e) => panic!("{} cannot join {room} as {nick}: {}", self.c.jid(), xml::to_string(&e)),
        }
    }

    async fn join_error(&mut self, room: &str, nick: &str, password: Option<&str>) -> String {
        match self.join(room, nick, password).await {
            Ok(got) => panic!(
                "{} joined {room} as {nick} but should not have: {}",
                self.c.jid(),
                got.iter().map(xml::to_string).collect::<Vec<_>>().join("\n")
            ),
            Err(e) => error_condition(&e).unwrap_or_else(|| panic!("error without condition: {e:?}")),
        }
    }

    async fn leave(&mut self, room: &str, nick: &str) {
        let occupant = format!("{}/{nick}", room_jid(room));
        self.send(&format!("<presence type='unavailable' to='{occupant}'/>")).await;
        self.expect("own unavailable presence", |el| {
            el.name() == "presence"
                && el.attr("from") == Some(&occupant)
                && el.attr("type") == Some("unavailable")
        })
        .await;
    }

    /// Submits the owner config form with these fields.
    async fn configure(&mut self, room: &str, fields: &[(&str, &str)]) -> Element {
        let mut form = String::from(
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
        );
        for (var, value) in fields {
            let value = xml::escape(value);
            form.push_str(&format!("<field var='muc#roomconfig_{var}'><value>{value}</value></field>"));
        }
        let text = format!(
            "<iq type='set' id='{{id}}' to='{}'><query xmlns='{NS_MUC_OWNER}'>\
             <x xmlns='{NS_DATA}' type='submit'>{form}</x></query></iq>",
            room_jid(room)
        );
        self.iq_ok(&format!("configure {room} {fields:?}"), &text).await
    }

    async fn set_affiliation(&mut self, room: &str, jid: &str, affiliation: &str, nick: Option<&str>) {
        let nick = nick.map(|n| format!(" nick='{n}'")).unwrap_or_default();
        let text = format!(
            "<iq type='set' id='{{id}}' to='{}'><query xmlns='{NS_MUC_ADMIN}'>\
             <item jid='{jid}' affiliation='{affiliation}'{nick}/></query></iq>",
            room_jid(room)
        );
        self.iq_ok(&format!("make {jid} {affiliation} of {room}"), &text).await;
    }

    /// Sets the subject (as an occupant) and waits for the room to echo it.
    async fn set_subject(&mut self, room: &str, nick: &str, subject: &str) {
        let jid = room_jid(room);
        self.send(&format!("<message type='groupchat' to='{jid}'><subject>{subject}</subject></message>"))
            .await;
        let from = format!("{jid}/{nick}");
        let echo = self
            .expect("subject echo", |el| {
                el.name() == "message"
                    && (el.attr("from") == Some(&from) || el.attr("from") == Some(&jid))
                    && (el.attr("type") == Some("error")
                        || el.get_child("subject", "jabber:client").is_some())
            })
            .await;
        assert_ne!(echo.attr("type"), Some("error"), "set subject: {}", xml::to_string(&echo));
    }

    async fn affiliation_list(&mut self, room: &str, affiliation: &str) -> Vec<(String, Option<String>)> {
        let text = format!(
            "<iq type='get' id='{{id}}' to='{}'><query xmlns='{NS_MUC_ADMIN}'>\
             <item affiliation='{affiliation}'/></query></iq>",
            room_jid(room)
        );
        let reply = self.iq_ok(&format!("{affiliation} list of {room}"), &text).await;
        let mut list: Vec<_> = reply
            .get_child("query", NS_MUC_ADMIN)
            .map(|q| {
                q.children()
                    .filter(|i| i.attr("affiliation") == Some(affiliation))
                    .map(|i| (i.attr("jid").unwrap_or("").to_owned(), i.attr("nick").map(str::to_owned)))
                    .collect()
            })
            .unwrap_or_default();
        list.sort();
        list
    }

    /// The owner form's fields as (var, values).
    async fn config_form(&mut self, room: &str) -> Vec<(String, Vec<String>)> {
        let text = format!(
            "<iq type='get' id='{{id}}' to='{}'><query xmlns='{NS_MUC_OWNER}'/></iq>",
            room_jid(room)
        );
        let reply = self.iq_ok(&format!("config form of {room}"), &text).await;
        let form = reply
            .get_child("query", NS_MUC_OWNER)
            .and_then(|q| q.get_child("x", NS_DATA))
            .unwrap_or_else(|| panic!("no form: {}", xml::to_string(&reply)));
        form.children()
            .filter(|f| f.name() == "field")
            .map(|f| {
                let values = f.children().filter(|v| v.name() == "value").map(|v| v.text()).collect();
                (f.attr("var").unwrap_or("").to_owned(), values)
            })
            .collect()
    }

    async fn disco_info(&mut self, to: &str, node: Option<&str>) -> Element {
        let node = node.map(|n| format!(" node='{n}'")).unwrap_or_default();
        let text =
            format!("<iq type='get' id='{{id}}' to='{to}'><query xmlns='{NS_DISCO_INFO}'{node}/></iq>");
        self.iq(&text).await
    }

    async fn close(mut self) {
        let _ = self.c.close(T).await;
    }
}

fn field<'a>(form: &'a [(String, Vec<String>)], var: &str) -> Option<&'a [String]> {
    form.iter().find(|(v, _)| v == var).map(|(_, values)| values.as_slice())
}

fn is_true(values: Option<&[String]>) -> bool {
    matches!(values, Some([v]) if v == "1" || v == "true")
}

fn identity_name(info: &Element) -> Option<String> {
    info.get_child("query", NS_DISCO_INFO)?
        .children()
        .find(|c| c.name() == "identity")?
        .attr("name")
        .map(str::to_owned)
}

fn features(info: &Element) -> Vec<String> {
    info.get_child("query", NS_DISCO_INFO)
        .map(|q| {
            q.children()
                .filter(|c| c.name() == "feature")
                .filter_map(|c| c.attr("var"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Scenario

/// What a configured room must look like.
struct Expect<'a> {
    name: &'a str,
    subject: &'a str,
    /// Members with their reserved nicks; the first one joins.
    members: &'a [(&'a str, &'a str)],
}

/// Creates `room` and configures it (persistent, public, members-only, name, password), sets the
/// subject, makes the nurse an admin, bans Iago and registers Juliet as a member with her nick. The owner stays in the room;
/// the last step (the affiliation) is acknowledged when this returns.
async fn create_room(owner: &mut Client, room: &str, name: &str) {
    let got = owner.join_ok(room, OWNER_NICK, None).await;
    assert!(
        got.iter().any(|el| has_status(el, "201")),
        "{room} should be new: {}",
        got.iter().map(xml::to_string).collect::<Vec<_>>().join("\n")
    );
    owner
        .configure(
            room,
            &[
                ("persistentroom", "1"),
                ("publicroom", "1"),
                ("membersonly", "1"),
                ("roomname", name),
                ("passwordprotectedroom", "1"),
                ("roomsecret", PASSWORD),
            ],
        )
        .await;
    owner.set_subject(room, OWNER_NICK, SUBJECT).await;
    owner.set_affiliation(room, ADMIN, "admin", None).await;
    owner.set_affiliation(room, OUTCAST, "outcast", None).await;
    owner.set_affiliation(room, JULIET.0, "member", Some(JULIET.1)).await;
}

/// Checks `room` with fresh clients, as its users would see it.
async fn check_room(p: &Prosody, room: &str, want: &Expect<'_>, context: &str) {
    let jid = room_jid(room);
    let (member, nick) = want.members[0];

    // The owner's view: the service's room list (first, before anything loads the room),
    // the form, the affiliation lists.
    let mut owner = Client::connect(p, OWNER).await;
    let items = owner
        .iq_ok(
            "room list",
            &format!("<iq type='get' id='{{id}}' to='{MUC_DOMAIN}'><query xmlns='{NS_DISCO_ITEMS}'/></iq>"),
        )
        .await;
    let listed = items.get_child("query", NS_DISCO_ITEMS).and_then(|q| {
        q.children().find(|i| i.attr("jid") == Some(&jid)).map(|i| i.attr("name").map(str::to_owned))
    });
    assert_eq!(listed, Some(Some(want.name.to_owned())), "{context}: room list {}", xml::to_string(&items));
    let form = owner.config_form(room).await;
    assert_eq!(
        field(&form, "muc#roomconfig_roomname"),
        Some(&[want.name.to_owned()][..]),
        "{context}: name in {form:?}"
    );
    assert!(is_true(field(&form, "muc#roomconfig_persistentroom")), "{context}: persistent in {form:?}");
    assert!(is_true(field(&form, "muc#roomconfig_membersonly")), "{context}: members-only in {form:?}");
    assert_eq!(
        field(&form, "muc#roomconfig_roomsecret"),
        Some(&[PASSWORD.to_owned()][..]),
        "{context}: password in {form:?}"
    );
    let mut members: Vec<_> =
        want.members.iter().map(|(j, n)| (j.to_string(), Some(n.to_string()))).collect();
    members.sort();
    assert_eq!(owner.affiliation_list(room, "member").await, members, "{context}: members of {room}");
    assert_eq!(
        owner.affiliation_list(room, "owner").await,
        vec![(OWNER.to_owned(), None)],
        "{context}: owners"
    );
    assert_eq!(
        owner.affiliation_list(room, "admin").await,
        vec![(ADMIN.to_owned(), None)],
        "{context}: admins"
    );
    assert_eq!(
        owner.affiliation_list(room, "outcast").await,
        vec![(OUTCAST.to_owned(), None)],
        "{context}: banned"
    );

    // A stranger: disco shows the name and settings; joining needs registration.
    let mut stranger = Client::connect(p, STRANGER).await;
    let info = stranger.disco_info(&jid, None).await;
    assert_eq!(info.attr("type"), Some("result"), "{context}: disco#info {}", xml::to_string(&info));
    assert_eq!(identity_name(&info).as_deref(), Some(want.name), "{context}: {}", xml::to_string(&info));
    let feats = features(&info);
    for f in ["muc_persistent", "muc_membersonly", "muc_passwordprotected"] {
        assert!(feats.iter().any(|x| x == f), "{context}: no {f} in {feats:?}");
    }
    assert_eq!(
        stranger.join_error(room, "Mallory", Some(PASSWORD)).await,
        "registration-required",
        "{context}"
    );
    stranger.close().await;

    // The member: needs the password; with it she joins and gets the subject.
    let mut m = Client::connect(p, member).await;
    let reserved = m.disco_info(&jid, Some("x-roomuser-item")).await;
    assert_eq!(
        identity_name(&reserved).as_deref(),
        Some(nick),
        "{context}: reserved nick {}",
        xml::to_string(&reserved)
    );
    assert_eq!(m.join_error(room, nick, None).await, "not-authorized", "{context}: join without password");
    let got = m.join_ok(room, nick, Some(PASSWORD)).await;
    let me = format!("{jid}/{nick}");
    let own =
        got.iter().find(|el| el.name() == "presence" && el.attr("from") == Some(&me)).expect("self-presence");
    let item = own.get_child("x", NS_MUC_USER).and_then(|x| x.get_child("item", NS_MUC_USER));
    assert_eq!(
        item.and_then(|i| i.attr("affiliation")),
        Some("member"),
        "{context}: {}",
        xml::to_string(own)
    );
    let subject = got
        .iter()
        .filter(|el| el.name() == "message")
        .find_map(|el| el.get_child("subject", "jabber:client").map(|s| s.text()));
    assert_eq!(subject.as_deref(), Some(want.subject), "{context}: subject on join");
    // Another member may not take her reserved nick.
    if let Some((other, _)) = want.members.get(1) {
        let mut o = Client::connect(p, other).await;
        assert_eq!(
            o.join_error(room, nick, Some(PASSWORD)).await,
            "conflict",
            "{context}: reserved nick taken"
        );
        o.close().await;
    }
    m.leave(room, nick).await;
    m.close().await;
    owner.close().await;
}

fn juliet_only() -> Expect<'static> {
    Expect { name: NAME, subject: SUBJECT, members: &[JULIET] }
}

/// Restart scenario on one server: create, graceful restart, check; then a change, a
/// `kill -9` right after its acknowledgement, check.
async fn restart_then_crash(p: &mut Prosody, room: &str, context: &str) {
    let mut owner = Client::connect(p, OWNER).await;
    create_room(&mut owner, room, NAME).await;
    owner.leave(room, OWNER_NICK).await;
    owner.close().await;
    p.restart().await.expect("restart");
    check_room(p, room, &juliet_only(), &format!("{context}, after a restart")).await;

    let mut owner = Client::connect(p, OWNER).await;
    owner.configure(room, &[("roomname", UNICODE_NAME)]).await;
    p.crash_restart().await.expect("start after kill -9");
    drop(owner);
    let want = Expect { name: UNICODE_NAME, ..juliet_only() };
    check_room(p, room, &want, &format!("{context}, after a rename and kill -9")).await;
    check_log(p, context);
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn restart_keeps_rooms() {
    for version in Version::ALL {
        let context = format!("muc_rs on {}, internal storage", version.label());
        let mut p = start(version, Module::Rs, &Storage::internal()).await;
        let mut owner = Client::connect(&p, OWNER).await;
        create_room(&mut owner, "garden", NAME).await;
        owner.leave("garden", OWNER_NICK).await;
        // A second room is still occupied when the server stops: stored with its occupant.
        create_room(&mut owner, "balcony", "Balcony").await;
        p.restart().await.expect("restart");
        drop(owner);
        check_room(&p, "garden", &juliet_only(), &context).await;
        let want = Expect { name: "Balcony", ..juliet_only() };
        check_room(&p, "balcony", &want, &format!("{context}, room occupied at shutdown")).await;
        check_log(&p, &context);
        p.stop(Duration::from_secs(5)).await;
    }
}

/// MucSub (beyond stock: muc_rs with `muc_mucsub`): a subscription kept in the room's record
/// survives a restart, and the room's messages reach the subscriber, not joined, wrapped.
#[tokio::test]
async fn restart_keeps_mucsub_subscriptions() {
    for version in Version::ALL {
        let context = format!("muc_rs with MucSub on {}", version.label());
        let install = Install::discover(version).expect("Prosody missing: run tools/install-deps.sh");
        let mut server = config(Module::Rs, &Storage::internal());
        server.component_extra.push("muc_mucsub = true".into());
        let mut p = Prosody::start(&install, server).await.expect("start Prosody");
        let mut owner = Client::connect(&p, OWNER).await;
        owner.join_ok("garden", OWNER_NICK, None).await;
        owner.configure("garden", &[("persistentroom", "1"), ("allow_subscription", "1")]).await;
        let mut juliet = Client::connect(&p, JULIET.0).await;
        let subscribe = format!(
            "<iq type='set' id='{{id}}' to='{}'><subscribe xmlns='urn:xmpp:mucsub:0' nick='{}'>\
             <event node='urn:xmpp:mucsub:nodes:messages'/></subscribe></iq>",
            room_jid("garden"),
            JULIET.1
        );
        juliet.iq_ok("subscribe", &subscribe).await;
        p.restart().await.expect("restart");
        drop((owner, juliet));

        let mut juliet = Client::connect(&p, JULIET.0).await;
        juliet.send("<presence/>").await;
        let mut owner = Client::connect(&p, OWNER).await;
        owner.join_ok("garden", OWNER_NICK, None).await;
        owner
            .send(&format!(
                "<message type='groupchat' to='{}'><body>Still subscribed?</body></message>",
                room_jid("garden")
            ))
            .await;
        let wrapped = juliet
            .expect("the wrapped message", |el| {
                el.name() == "message"
                    && el.get_child("event", "http://jabber.org/protocol/pubsub#event").is_some()
            })
            .await;
        let text = xml::to_string(&wrapped);
        assert!(
            text.contains("urn:xmpp:mucsub:nodes:messages") && text.contains("Still subscribed?"),
            "{context}: {text}"
        );
        check_log(&p, &context);
        p.stop(Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn kill_9_keeps_what_was_acknowledged() {
    for version in Version::ALL {
        let context = format!("muc_rs on {}, internal storage", version.label());
        let mut p = start(version, Module::Rs, &Storage::internal()).await;
        // Killed right after the affiliation (the last step) is acknowledged.
        let mut owner = Client::connect(&p, OWNER).await;
        create_room(&mut owner, "garden", NAME).await;
        p.crash_restart().await.expect("start after kill -9");
        drop(owner);
        check_room(&p, "garden", &juliet_only(), &format!("{context}, kill -9 after affiliation")).await;

        // Killed right after a config change, then right after a new member with a nick.
        let mut owner = Client::connect(&p, OWNER).await;
        owner.configure("garden", &[("roomname", "Renamed")]).await;
        p.crash_restart().await.expect("start after kill -9");
        drop(owner);
        let mut owner = Client::connect(&p, OWNER).await;
        owner.set_affiliation("garden", ROMEO.0, "member", Some(ROMEO.1)).await;
        p.crash_restart().await.expect("start after kill -9");
        drop(owner);
        let want = Expect { name: "Renamed", subject: SUBJECT, members: &[JULIET, ROMEO] };
        check_room(&p, "garden", &want, &format!("{context}, kill -9 after config and member")).await;

        // Killed right after a subject change was echoed.
        let mut owner = Client::connect(&p, OWNER).await;
        owner.join_ok("garden", OWNER_NICK, Some(PASSWORD)).await;
        owner.set_subject("garden", OWNER_NICK, "Dinner at eight").await;
        p.crash_restart().await.expect("start after kill -9");
        drop(owner);
        let want = Expect { name: "Renamed", subject: "Dinner at eight", members: &[JULIET, ROMEO] };
        check_room(&p, "garden", &want, &format!("{context}, kill -9 after subject")).await;

        // Killed right after a member registered another nick (jabber:iq:register).
        let mut juliet = Client::connect(&p, JULIET.0).await;
        let text = format!(
            "<iq type='set' id='{{id}}' to='{}'><query xmlns='jabber:iq:register'>\
             <x xmlns='{NS_DATA}' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>\
             <field var='muc#register_roomnick'><value>Jules</value></field></x></query></iq>",
            room_jid("garden")
        );
        juliet.iq_ok("register a nick", &text).await;
        p.crash_restart().await.expect("start after kill -9");
        drop(juliet);
        let want =
            Expect { name: "Renamed", subject: "Dinner at eight", members: &[(JULIET.0, "Jules"), ROMEO] };
        check_room(&p, "garden", &want, &format!("{context}, kill -9 after registration")).await;
        check_log(&p, &context);
        p.stop(Duration::from_secs(5)).await;
    }
}

/// Stock's config, optionally writing its old record format (`new_muc_storage_format`).
fn stock_config(storage: &Storage, old_format: bool) -> ServerConfig {
    let mut cfg = config(Module::Stock, storage);
    if old_format {
        cfg.component_extra.push("new_muc_storage_format = false".into());
    }
    cfg
}

/// Rooms made by stock (one left empty, one occupied when stock stops), used and changed in
/// muc_rs, then seen by stock again.
async fn migration(version: Version, storage: Storage, old_format: bool) {
    let v = format!(
        "{}, {} storage{}",
        version.label(),
        storage.label,
        if old_format { ", stock's old record format" } else { "" }
    );
    let install = Install::discover(version).expect("Prosody missing: run tools/install-deps.sh");
    let mut p = Prosody::start(&install, stock_config(&storage, old_format)).await.expect("start Prosody");
    let mut owner = Client::connect(&p, OWNER).await;
    create_room(&mut owner, "garden", NAME).await;
    owner.leave("garden", OWNER_NICK).await;
    // Occupied when stock stops: stock stores its live state too.
    create_room(&mut owner, "balcony", "Balcony").await;
    p.restart().await.expect("restart stock");
    drop(owner);
    check_room(&p, "garden", &juliet_only(), &format!("stock muc on {v} (reference)")).await;

    p.restart_with(config(Module::Rs, &storage)).await.expect("switch to muc_rs");
    let context = format!("muc_rs on {v}, rooms made by stock");
    check_room(&p, "garden", &juliet_only(), &context).await;
    let want = Expect { name: "Balcony", ..juliet_only() };
    check_room(&p, "balcony", &want, &format!("{context}, room occupied at shutdown")).await;

    // Changes under muc_rs.
    let mut owner = Client::connect(&p, OWNER).await;
    owner.set_affiliation("garden", ROMEO.0, "member", Some(ROMEO.1)).await;
    owner.configure("garden", &[("roomname", "Renamed")]).await;
    owner.join_ok("garden", OWNER_NICK, Some(PASSWORD)).await;
    owner.set_subject("garden", OWNER_NICK, "Dinner at eight").await;
    owner.leave("garden", OWNER_NICK).await;
    // And a room made by muc_rs.
    create_room(&mut owner, "attic", "Attic").await;
    owner.leave("attic", OWNER_NICK).await;
    owner.close().await;
    check_log(&p, &context);

    p.restart_with(stock_config(&storage, old_format)).await.expect("switch back to stock muc");
    let context = format!("stock muc on {v}, after muc_rs");
    let want = Expect { name: "Renamed", subject: "Dinner at eight", members: &[JULIET, ROMEO] };
    check_room(&p, "garden", &want, &context).await;
    let want = Expect { name: "Attic", ..juliet_only() };
    check_room(&p, "attic", &want, &format!("{context}, room made by muc_rs")).await;
    let want = Expect { name: "Balcony", ..juliet_only() };
    check_room(&p, "balcony", &want, &context).await;
    p.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn migration_from_stock_and_back() {
    for version in Version::ALL {
        migration(version, Storage::internal(), false).await;
        migration(version, Storage::internal(), true).await;
        migration(version, Storage::sqlite(), false).await;
    }
}

#[tokio::test]
async fn backends_internal_sqlite_postgresql() {
    let mut pg = Postgres::start().await.expect("PostgreSQL: run tools/install-deps.sh");
    for version in Version::ALL {
        let v = version.label();
        let db = format!("prosody_{}", v.replace('.', "_"));
        pg.create_database(&db).await.expect("create database");
        for storage in [Storage::internal(), Storage::sqlite(), Storage::postgres(&pg, &db)] {
            let context = format!("muc_rs on {v}, {} storage", storage.label);
            let mut p = start(version, Module::Rs, &storage).await;
            restart_then_crash(&mut p, "garden", &context).await;
            // The room really is in this backend.
            let traces = Store::of(&p, &storage, &pg, &db).traces("garden").await;
            assert!(traces.iter().any(|t| t.contains("Renamed")), "{context}: stored: {traces:?}");
            p.stop(Duration::from_secs(5)).await;
        }
    }
    pg.stop().await;
    assert!(!pg.running(), "PostgreSQL still running after stop");
}

/// Where a server's rooms are stored, to look at what is there.
enum Store<'a> {
    Files(PathBuf),
    Sqlite(PathBuf),
    Postgres(&'a Postgres, String),
}

impl Store<'_> {
    fn of<'a>(p: &Prosody, storage: &Storage, pg: &'a Postgres, db: &str) -> Store<'a> {
        match storage.label.as_str() {
            "internal" => Store::Files(p.data_dir()),
            "sqlite" => Store::Sqlite(p.data_dir().join("prosody.sqlite")),
            _ => Store::Postgres(pg, db.to_owned()),
        }
    }

    /// Everything stored that belongs to or mentions `room` (empty when nothing does).
    async fn traces(&self, room: &str) -> Vec<String> {
        let jid = room_jid(room);
        let sql = format!(
            "SELECT store, \"user\", key, value FROM prosody WHERE host = '{MUC_DOMAIN}' \
             AND (\"user\" = '{room}' OR key = '{jid}' OR value LIKE '%{jid}%')"
        );
        let rows = |text: String| text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
        match self {
            Store::Files(data) => file_traces(data, room),
            Store::Sqlite(file) => {
                let out = std::process::Command::new("sqlite3")
                    .args(["-readonly", "-cmd", ".timeout 5000"])
                    .arg(file)
                    .arg(&sql)
                    .output()
                    .expect("run sqlite3 (tools/install-deps.sh installs it)");
                assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
                rows(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Store::Postgres(pg, db) => rows(pg.query(db, &sql).await.expect("psql")),
        }
    }
}

/// Files under the data dir that are a room's or mention it.
fn file_traces(data: &Path, room: &str) -> Vec<String> {
    let jid = room_jid(room);
    let mut found = Vec::new();
    let mut dirs = vec![data.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read data dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if file.split('.').next() == Some(room) || text.contains(&jid) {
                found.push(format!("{}:\n{text}", path.display()));
            }
        }
    }
    found
}

/// Temporary rooms leave nothing in `store`; a persistent room made temporary is removed.
async fn temporary_rooms(p: &mut Prosody, storage: &Storage, pg: &Postgres, db: &str, context: &str) {
    let none = Vec::<String>::new();
    let mut owner = Client::connect(p, OWNER).await;

    // A temporary room in use (configured, subject, member with a nick), then left.
    owner.join_ok("pantry", OWNER_NICK, None).await;
    owner.configure("pantry", &[("roomname", "Pantry")]).await;
    owner.set_subject("pantry", OWNER_NICK, SUBJECT).await;
    owner.set_affiliation("pantry", JULIET.0, "member", Some(JULIET.1)).await;
    let mut juliet = Client::connect(p, JULIET.0).await;
    juliet.join_ok("pantry", JULIET.1, None).await;
    let store = Store::of(p, storage, pg, db);
    assert_eq!(store.traces("pantry").await, none, "{context}: temporary room in use");
    juliet.leave("pantry", JULIET.1).await;
    owner.leave("pantry", OWNER_NICK).await;
    assert_eq!(store.traces("pantry").await, none, "{context}: temporary room left");

    // A persistent room is stored; made temporary again, it is removed.
    owner.join_ok("cellar", OWNER_NICK, None).await;
    owner.configure("cellar", &[("persistentroom", "1"), ("roomname", "Cellar")]).await;
    owner.set_affiliation("cellar", JULIET.0, "member", Some(JULIET.1)).await;
    assert_ne!(store.traces("cellar").await, none, "{context}: persistent room not stored");
    owner.configure("cellar", &[("persistentroom", "0")]).await;
    assert_eq!(store.traces("cellar").await, none, "{context}: room made temporary");
    owner.leave("cellar", OWNER_NICK).await;
    assert_eq!(store.traces("cellar").await, none, "{context}: temporary room left");
    juliet.close().await;
    owner.close().await;

    p.restart().await.expect("restart");
    let store = Store::of(p, storage, pg, db);
    for room in ["pantry", "cellar"] {
        assert_eq!(store.traces(room).await, none, "{context}: {room} after restart");
        let mut c = Client::connect(p, OWNER).await;
        let got = c.join_ok(room, OWNER_NICK, None).await;
        assert!(got.iter().any(|el| has_status(el, "201")), "{context}: {room} should be new after restart");
        c.leave(room, OWNER_NICK).await;
        c.close().await;
    }
    check_log(p, context);
}

#[tokio::test]
async fn temporary_rooms_are_not_stored() {
    let mut pg = Postgres::start().await.expect("PostgreSQL: run tools/install-deps.sh");
    for version in Version::ALL {
        let v = version.label();
        let db = format!("temp_{}", v.replace('.', "_"));
        pg.create_database(&db).await.expect("create database");
        for storage in [Storage::internal(), Storage::sqlite(), Storage::postgres(&pg, &db)] {
            let context = format!("muc_rs on {v}, {} storage", storage.label);
            let mut p = start(version, Module::Rs, &storage).await;
            temporary_rooms(&mut p, &storage, &pg, &db, &context).await;
            p.stop(Duration::from_secs(5)).await;
        }
    }
    pg.stop().await;
    assert!(!pg.running(), "PostgreSQL still running after stop");
}

/// Destroys `room` with a reason and an alternative venue.
async fn destroy(owner: &mut Client, room: &str) {
    let text = format!(
        "<iq type='set' id='{{id}}' to='{}'><query xmlns='{NS_MUC_OWNER}'>\
         <destroy jid='{}'><reason>Moved</reason></destroy></query></iq>",
        room_jid(room),
        room_jid("newplace")
    );
    owner.iq_ok(&format!("destroy {room}"), &text).await;
}

/// A join to a destroyed persistent room answers `gone`, with the reason and the new place.
async fn check_tombstone(p: &Prosody, room: &str, context: &str) {
    let mut c = Client::connect(p, STRANGER).await;
    let err = match c.join(room, "Mallory", None).await {
        Ok(got) => panic!("{context}: joined destroyed {room}: {got:?}"),
        Err(e) => e,
    };
    let error = err.get_child("error", "jabber:client").expect("error element");
    let gone = error.get_child("gone", NS_STANZAS);
    assert_eq!(
        gone.map(|g| g.text()),
        Some(format!("xmpp:{}?join", room_jid("newplace"))),
        "{context}: {}",
        xml::to_string(&err)
    );
    let text = error.get_child("text", NS_STANZAS).map(|t| t.text());
    assert_eq!(text.as_deref(), Some("Moved"), "{context}: {}", xml::to_string(&err));
    c.close().await;
}

#[tokio::test]
async fn destroyed_rooms_leave_tombstones() {
    for version in Version::ALL {
        let v = version.label();
        let storage = Storage::internal();
        let mut p = start(version, Module::Stock, &storage).await;
        let mut owner = Client::connect(&p, OWNER).await;
        create_room(&mut owner, "ruin", NAME).await;
        destroy(&mut owner, "ruin").await;
        owner.close().await;
        check_tombstone(&p, "ruin", &format!("stock muc on {v} (reference)")).await;

        p.restart_with(config(Module::Rs, &storage)).await.expect("switch to muc_rs");
        check_tombstone(&p, "ruin", &format!("muc_rs on {v}, stock's tombstone")).await;
        let mut owner = Client::connect(&p, OWNER).await;
        create_room(&mut owner, "wreck", NAME).await;
        destroy(&mut owner, "wreck").await;
        p.crash_restart().await.expect("start after kill -9");
        drop(owner);
        check_tombstone(&p, "wreck", &format!("muc_rs on {v}, kill -9 after destroy")).await;
        check_log(&p, &format!("muc_rs on {v}"));

        p.restart_with(config(Module::Stock, &storage)).await.expect("switch back to stock");
        check_tombstone(&p, "wreck", &format!("stock muc on {v}, muc_rs's tombstone")).await;
        p.stop(Duration::from_secs(5)).await;
    }
}

/// What a joining member sees, in order: other occupants, history bodies, the subject.
fn join_summary(got: &[Element], room: &str) -> Vec<String> {
    let jid = room_jid(room);
    got.iter()
        .filter_map(|el| {
            let from = el.attr("from").unwrap_or("");
            let nick = from.strip_prefix(&format!("{jid}/")).unwrap_or(from);
            match el.name() {
                "presence" if has_status(el, "110") => Some(format!("self {nick}")),
                "presence" => Some(format!("presence {nick} {}", el.attr("type").unwrap_or("available"))),
                "message" => {
                    if let Some(b) = el.get_child("body", "jabber:client") {
                        Some(format!("history {nick}: {}", b.text()))
                    } else {
                        el.get_child("subject", "jabber:client").map(|s| format!("subject {}", s.text()))
                    }
                }
                _ => None,
            }
        })
        .collect()
}

/// A room in use when the server stops: the owner stays in, two messages were said.
/// Returns what Juliet sees when she joins after a restart with `after` (from `before`).
async fn live_state(version: Version, before: Module, after: Module) -> Vec<String> {
    let storage = Storage::internal();
    let mut p = start(version, before, &storage).await;
    let mut owner = Client::connect(&p, OWNER).await;
    create_room(&mut owner, "kitchen", NAME).await;
    for body in ["first", "second"] {
        owner
            .send(&format!(
                "<message type='groupchat' to='{}'><body>{body}</body></message>",
                room_jid("kitchen")
            ))
            .await;
        owner
            .expect("echo", |el| {
                el.name() == "message"
                    && el.get_child("body", "jabber:client").is_some_and(|b| b.text() == body)
            })
            .await;
    }
    p.restart_with(config(after, &storage)).await.expect("restart");
    drop(owner);
    let mut juliet = Client::connect(&p, JULIET.0).await;
    let got = juliet.join_ok("kitchen", JULIET.1, Some(PASSWORD)).await;
    juliet.close().await;
    check_log(&p, &format!("{} on {} after {}", after.name(), version.label(), before.name()));
    p.stop(Duration::from_secs(5)).await;
    join_summary(&got, "kitchen")
}

#[tokio::test]
async fn live_state_is_kept_over_a_restart_as_stock_does() {
    for version in Version::ALL {
        let v = version.label();
        let stock = live_state(version, Module::Stock, Module::Stock).await;
        // Stock keeps the last message (and the subject) of a room stored live.
        assert_eq!(stock, ["self Juliet", "history Owner: second", "subject Tea at five"], "stock on {v}");
        for (before, after) in
            [(Module::Rs, Module::Rs), (Module::Stock, Module::Rs), (Module::Rs, Module::Stock)]
        {
            let got = live_state(version, before, after).await;
            assert_eq!(
                got,
                stock,
                "{} then {} on {v}, compared with stock alone",
                before.name(),
                after.name()
            );
        }
    }
}

/// With a room cache of 2: a temporary room in use and four persistent rooms, so that rooms
/// are evicted (stored with their occupants) and come back on demand, also after kill -9.
async fn cache_run(version: Version, module: Module) {
    let v = version.label();
    let context = format!("{} on {v}, room cache of 2", module.name());
    let storage = Storage::internal();
    let mut cfg = config(module, &storage);
    cfg.component_extra.push("muc_room_cache_size = 2".into());
    let install = Install::discover(version).expect("Prosody missing: run tools/install-deps.sh");
    let mut p = Prosody::start(&install, cfg).await.expect("start Prosody");
    let mut owner = Client::connect(&p, OWNER).await;
    owner.join_ok("porch", OWNER_NICK, None).await;
    owner.configure("porch", &[]).await;
    let rooms = ["r1", "r2", "r3", "r4"];
    for room in rooms {
        create_room(&mut owner, room, NAME).await;
    }
    // Back from storage: the owner is still in the temporary room and may speak there.
    let porch = room_jid("porch");
    owner.send(&format!("<message type='groupchat' to='{porch}'><body>still here</body></message>")).await;
    let echo = owner
        .expect("echo or error", |el| {
            el.name() == "message" && el.attr("from").is_some_and(|f| f.starts_with(&porch))
        })
        .await;
    assert_ne!(echo.attr("type"), Some("error"), "{context}: {}", xml::to_string(&echo));
    for room in rooms {
        check_room(&p, room, &juliet_only(), &context).await;
    }
    p.crash_restart().await.expect("start after kill -9");
    drop(owner);
    for room in rooms {
        check_room(&p, room, &juliet_only(), &format!("{context}, after kill -9")).await;
    }
    if module == Module::Rs {
        check_log(&p, &context);
    }
    p.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn room_cache_evicts_without_losing_anything() {
    for version in Version::ALL {
        cache_run(version, Module::Stock).await;
        cache_run(version, Module::Rs).await;
    }
}

/// PostgreSQL goes away under a running server: a change that cannot be stored is refused
/// and undone; once the database is back, changes are stored again.
#[tokio::test]
async fn storage_failure_is_reported_and_undone() {
    let mut pg = Postgres::start().await.expect("PostgreSQL: run tools/install-deps.sh");
    for version in Version::ALL {
        let v = version.label();
        let db = format!("fail_{}", v.replace('.', "_"));
        pg.create_database(&db).await.expect("create database");
        let storage = Storage::postgres(&pg, &db);
        let context = format!("muc_rs on {v}, PostgreSQL stopped");
        let mut p = start(version, Module::Rs, &storage).await;
        let mut owner = Client::connect(&p, OWNER).await;
        create_room(&mut owner, "garden", NAME).await;

        pg.stop().await;
        let text = format!(
            "<iq type='set' id='{{id}}' to='{}'><query xmlns='{NS_MUC_OWNER}'><x xmlns='{NS_DATA}' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             <field var='muc#roomconfig_roomname'><value>Lost</value></field></x></query></iq>",
            room_jid("garden")
        );
        let reply = owner.iq(&text).await;
        assert_eq!(
            reply.attr("type"),
            Some("error"),
            "{context}: rename answered {}",
            xml::to_string(&reply)
        );
        assert_eq!(error_condition(&reply).as_deref(), Some("internal-server-error"), "{context}");
        let reply = owner
            .iq(&format!(
                "<iq type='set' id='{{id}}' to='{}'><query xmlns='{NS_MUC_ADMIN}'>\
                 <item jid='{}' affiliation='member' nick='{}'/></query></iq>",
                room_jid("garden"),
                ROMEO.0,
                ROMEO.1
            ))
            .await;
        assert_eq!(
            error_condition(&reply).as_deref(),
            Some("internal-server-error"),
            "{context}: new member"
        );

        pg.restart().await.expect("PostgreSQL back");
        let form = owner.config_form("garden").await;
        assert_eq!(
            field(&form, "muc#roomconfig_roomname"),
            Some(&[NAME.to_owned()][..]),
            "{context}: undone"
        );
        assert_eq!(owner.affiliation_list("garden", "member").await.len(), 1, "{context}: member undone");
        owner.configure("garden", &[("roomname", "Renamed")]).await;
        p.crash_restart().await.expect("start after kill -9");
        drop(owner);
        let want = Expect { name: "Renamed", ..juliet_only() };
        check_room(&p, "garden", &want, &format!("{context}, and back")).await;
        let log = p.read_log();
        assert!(log.contains("change undone"), "{context}: the failure is not logged");
        p.stop(Duration::from_secs(5)).await;
    }
    pg.stop().await;
    assert!(!pg.running(), "PostgreSQL still running after stop");
}

// ---------------------------------------------------------------------------------------
// Room vCards (Prosody 13): kept where stock keeps them, so they move with the room.

const PHOTO_A: (&str, &str) = ("YSByZWQgcm9zZQ==", "318ca7b31517630cca080ff1502a35d9b5201f86");

/// Sets the room's vCard with a PHOTO whose BINVAL is `binval`.
async fn set_vcard(owner: &mut Client, room: &str, name: &str, binval: &str) {
    let text = format!(
        "<iq type='set' id='{{id}}' to='{}'><vCard xmlns='vcard-temp'><FN>{name}</FN>\
         <PHOTO><TYPE>image/png</TYPE><BINVAL>{binval}</BINVAL></PHOTO></vCard></iq>",
        room_jid(room)
    );
    owner.iq_ok(&format!("set the vCard of {room}"), &text).await;
}

/// The FN of the room's vCard, and the avatar hash a joining occupant is told.
async fn seen_vcard(p: &Prosody, room: &str) -> (String, Option<String>) {
    let mut juliet = Client::connect(p, JULIET.0).await;
    let reply = juliet
        .iq_ok(
            "get the vCard",
            &format!("<iq type='get' id='{{id}}' to='{}'><vCard xmlns='vcard-temp'/></iq>", room_jid(room)),
        )
        .await;
    let name = reply
        .get_child("vCard", "vcard-temp")
        .and_then(|v| v.get_child("FN", "vcard-temp"))
        .map(Element::text)
        .unwrap_or_default();
    let got = juliet.join_ok(room, JULIET.1, Some(PASSWORD)).await;
    let hash = got
        .iter()
        .filter(|el| el.name() == "presence" && el.attr("from") == Some(&room_jid(room)))
        .find_map(|el| {
            el.get_child("x", "vcard-temp:x:update")?
                .get_child("photo", "vcard-temp:x:update")
                .map(Element::text)
        });
    juliet.close().await;
    (name, hash)
}

#[tokio::test]
async fn room_vcards_move_with_the_room() {
    let storage = Storage::internal();
    let mut p = start(Version::V13, Module::Stock, &storage).await;
    let mut owner = Client::connect(&p, OWNER).await;
    create_room(&mut owner, "portrait", NAME).await;
    set_vcard(&mut owner, "portrait", "Set on stock", PHOTO_A.0).await;
    owner.close().await;
    assert_eq!(
        seen_vcard(&p, "portrait").await,
        ("Set on stock".into(), Some(PHOTO_A.1.into())),
        "stock (reference)"
    );

    p.restart_with(config(Module::Rs, &storage)).await.expect("switch to muc_rs");
    assert_eq!(
        seen_vcard(&p, "portrait").await,
        ("Set on stock".into(), Some(PHOTO_A.1.into())),
        "muc_rs after stock"
    );
    let mut owner = Client::connect(&p, OWNER).await;
    // "a white rose": another photo, another hash.
    set_vcard(&mut owner, "portrait", "Set on muc_rs", "YSB3aGl0ZSByb3Nl").await;
    owner.close().await;
    let (name, hash) = seen_vcard(&p, "portrait").await;
    assert_eq!(name, "Set on muc_rs");
    let new_hash = hash.expect("muc_rs tells a joiner the new avatar");
    assert_ne!(new_hash, PHOTO_A.1);
    check_log(&p, "muc_rs, room vCards");

    p.restart_with(config(Module::Stock, &storage)).await.expect("switch back to stock");
    assert_eq!(
        seen_vcard(&p, "portrait").await,
        ("Set on muc_rs".into(), Some(new_hash)),
        "stock after muc_rs"
    );
    p.stop(Duration::from_secs(5)).await;
}
