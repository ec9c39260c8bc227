//! The admin shell's `muc:` commands (issue 14): `prosodyctl shell` reaches the MUC through
//! `prosody.hosts[host].modules.muc` and must answer on a muc_rs component as on stock
//! `mod_muc`.
//!
//! For each Prosody version, stock `muc` and `muc_rs` each get a server with mod_admin_shell
//! (which brings mod_admin_socket), the same rooms made by real clients (one configured with a
//! name, affiliations and a subject, with four occupants; one left locked as its creator made
//! it), and the same `prosodyctl --config <cfg> shell <command>` invocations, one process per
//! command as an admin would run them. Every command's answer (exit status, stdout, stderr) on
//! muc_rs must equal stock's, and each also has an expected answer, checked on both, so that
//! the test cannot pass with two equally broken servers:
//! - both versions: `muc:list(host)`, `muc:room(jid)` (and a missing room), methods called on
//!   what it returns (the settings' getters, subject, affiliation, role, default role,
//!   occupant JID, affiliation data, registered nick and JID, `each_occupant` walked through
//!   the shell's room object, `destroy`),
//!   `each_occupant`/`each_affiliation` from the global environment (`>` lines), and
//!   `muc:create(jid[, config])`, whose config is the room's `_data` table on both versions;
//! - 13 only: `muc:occupants(jid[, filter])` and `muc:affiliations(jid[, filter])`, also in
//!   the command-line form `prosodyctl shell muc occupants <jid>`.
//!
//! Needs Prosody 0.12 and 13 (tools/install-deps.sh) with their `prosodyctl` beside
//! `prosody`, and the plugin (`<repo>/build/plugin` or `$MUC_RS_PLUGIN_DIR`); fails, never
//! skips, when something is missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use minidom::Element;
use muc_harness::prosody::{
    log_problems, repo_root, Install, Prosody, ServerConfig, Version, DOMAIN, MUC_DOMAIN,
};
use muc_harness::xml;
use muc_harness::xmpp::{ConnectOptions, Connection};

const T: Duration = Duration::from_secs(10);
/// One `prosodyctl shell` run.
const SHELL_TIMEOUT: Duration = Duration::from_secs(30);

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_DATA: &str = "jabber:x:data";

const LOUNGE: &str = "lounge@conference.localhost";
const ATTIC: &str = "attic@conference.localhost";
const MADE: &str = "made@conference.localhost";
const NAMED: &str = "named@conference.localhost";
const NOWHERE: &str = "nowhere@conference.localhost";

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

fn plugin_dir() -> PathBuf {
    let plugin = std::env::var_os("MUC_RS_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build/plugin"));
    assert!(
        plugin.join("mod_muc_rs.lua").is_file() && plugin.join("muc_rs.so").is_file(),
        "the plugin is not built in {} (make build)",
        plugin.display()
    );
    plugin
}

struct Server {
    p: Prosody,
    prosodyctl: PathBuf,
    label: String,
}

async fn start(version: Version, module: Module) -> Server {
    let install = Install::discover(version).expect("Prosody missing: run tools/install-deps.sh");
    let prosodyctl = install.executable.with_file_name("prosodyctl");
    assert!(prosodyctl.is_file(), "no prosodyctl beside {}", install.executable.display());
    let config = ServerConfig {
        muc_module: module.name().into(),
        plugin_paths: vec![plugin_dir()],
        // mod_admin_shell is a global module (module:set_global), so enabling it on the
        // VirtualHost loads it (and mod_admin_socket, which it depends on) for the server,
        // without a second global modules_enabled (a "Duplicate option" warning on 13).
        // The socket is data_path/prosody.sock, where `prosodyctl shell` looks by default.
        component_extra: vec![
            format!("VirtualHost \"{DOMAIN}\""),
            "modules_enabled = { \"admin_shell\" }".into(),
        ],
        ..Default::default()
    };
    let p = Prosody::start(&install, config).await.expect("start Prosody");
    let socket = p.data_dir().join("prosody.sock");
    let deadline = Instant::now() + T;
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no admin socket at {}\n{}", socket.display(), p.log_tail(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server { p, prosodyctl, label: format!("Prosody {} with {}", version.label(), module.name()) }
}

impl Server {
    /// Runs `prosodyctl --config <cfg> shell <args...>` and returns what an admin sees:
    /// the exit status, stdout and stderr (separated, as a script would read them).
    async fn shell(&self, args: &[&str]) -> Answer {
        let mut cmd = tokio::process::Command::new(&self.prosodyctl);
        cmd.arg("--config")
            .arg(self.p.config_path())
            .arg("shell")
            .args(args)
            .current_dir(self.p.dir())
            // 13 sends the terminal's width with each command and lays tables out for it.
            .env("COLUMNS", "132")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(SHELL_TIMEOUT, cmd.output())
            .await
            .unwrap_or_else(|_| {
                panic!("{}: prosodyctl shell {args:?} took over {SHELL_TIMEOUT:?}", self.label)
            })
            .unwrap_or_else(|e| panic!("{}: cannot run {}: {e}", self.label, self.prosodyctl.display()));
        Answer {
            status: out.status.code(),
            stdout: normalise(&String::from_utf8_lossy(&out.stdout)),
            stderr: normalise(&String::from_utf8_lossy(&out.stderr)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status.map_or("killed".to_owned(), |s| s.to_string());
        write!(f, "exit {status}")?;
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !text.is_empty() {
                write!(f, "\n      {name}:")?;
                for line in text.lines() {
                    write!(f, "\n        |{line}")?;
                }
            }
        }
        Ok(())
    }
}

/// What legitimately differs from run to run: Lua addresses (`table: 0x55d0…`), and
/// trailing spaces of the tables' padded last column.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("0x") {
            out.push_str(&rest[..at]);
            out.push_str("0x…");
            rest = rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
        }
        out.push_str(rest);
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------
// Clients

fn parse(text: &str) -> Element {
    xml::parse_fragment(text).unwrap_or_else(|e| panic!("bad XML {text}: {e}")).remove(0)
}

fn has_status(el: &Element, code: &str) -> bool {
    el.get_child("x", NS_MUC_USER)
        .is_some_and(|x| x.children().any(|s| s.name() == "status" && s.attr("code") == Some(code)))
}

struct Client {
    c: Connection,
    next_id: u64,
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

    async fn send(&mut self, text: &str) {
        self.c.send(&parse(text)).await.expect("send");
    }

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

    /// Sends an iq (`{id}` in the text is replaced by a fresh id) and asserts a result.
    async fn iq_ok(&mut self, what: &str, text: &str) {
        self.next_id += 1;
        let id = format!("a{}", self.next_id);
        self.send(&text.replace("{id}", &id)).await;
        let reply = self
            .expect(&format!("answer to {what}"), |el| el.name() == "iq" && el.attr("id") == Some(&id))
            .await;
        assert_eq!(reply.attr("type"), Some("result"), "{what}: {}", xml::to_string(&reply));
    }

    /// Joins and waits for the self-presence; returns it.
    async fn join(&mut self, room: &str, nick: &str) -> Element {
        let occupant = format!("{room}/{nick}");
        self.send(&format!("<presence to='{occupant}'><x xmlns='{NS_MUC}'/></presence>")).await;
        let me = self
            .expect(&format!("self-presence in {room}"), |el| {
                el.name() == "presence"
                    && el.attr("from") == Some(&occupant)
                    && (el.attr("type") == Some("error") || has_status(el, "110"))
            })
            .await;
        assert_ne!(me.attr("type"), Some("error"), "join {occupant}: {}", xml::to_string(&me));
        me
    }

    async fn configure(&mut self, room: &str, fields: &[(&str, &str)]) {
        let mut form = String::from(
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
        );
        for (var, value) in fields {
            form.push_str(&format!(
                "<field var='muc#roomconfig_{var}'><value>{}</value></field>",
                xml::escape(value)
            ));
        }
        let text = format!(
            "<iq type='set' id='{{id}}' to='{room}'><query xmlns='{NS_MUC_OWNER}'>\
             <x xmlns='{NS_DATA}' type='submit'>{form}</x></query></iq>"
        );
        self.iq_ok(&format!("configure {room}"), &text).await;
    }

    async fn set_affiliation(&mut self, room: &str, jid: &str, affiliation: &str, nick: Option<&str>) {
        let nick = nick.map(|n| format!(" nick='{n}'")).unwrap_or_default();
        let text = format!(
            "<iq type='set' id='{{id}}' to='{room}'><query xmlns='{NS_MUC_ADMIN}'>\
             <item jid='{jid}' affiliation='{affiliation}'{nick}/></query></iq>"
        );
        self.iq_ok(&format!("make {jid} {affiliation} of {room}"), &text).await;
    }

    async fn set_subject(&mut self, room: &str, subject: &str) {
        self.send(&format!("<message type='groupchat' to='{room}'><subject>{subject}</subject></message>"))
            .await;
        let echo = self
            .expect("subject echo", |el| {
                el.name() == "message"
                    && el.attr("from").is_some_and(|f| f.starts_with(room))
                    && (el.attr("type") == Some("error")
                        || el.get_child("subject", "jabber:client").is_some())
            })
            .await;
        assert_ne!(echo.attr("type"), Some("error"), "set subject: {}", xml::to_string(&echo));
    }
}

/// The rooms the commands look at, made by real clients, who stay connected (as occupants)
/// while the commands run:
/// - lounge: configured by its owner (name, description, moderated, persistent, public),
///   the nurse admin, Juliet a member with her reserved nick, Iago an outcast, a subject;
///   occupants Owner and Nurse (moderators), Juliet (participant), Romeo (visitor);
/// - attic: made by Romeo's join and left as made (locked, unconfigured).
async fn make_rooms(p: &Prosody) -> Vec<Client> {
    let mut owner = Client::connect(p, "owner@localhost").await;
    let created = owner.join(LOUNGE, "Owner").await;
    assert!(has_status(&created, "201"), "lounge should be new: {}", xml::to_string(&created));
    owner
        .configure(
            LOUNGE,
            &[
                ("roomname", "The Lounge"),
                ("roomdesc", "Where we talk"),
                ("moderatedroom", "1"),
                ("persistentroom", "1"),
                ("publicroom", "1"),
            ],
        )
        .await;
    owner.set_affiliation(LOUNGE, "nurse@localhost", "admin", None).await;
    owner.set_affiliation(LOUNGE, "juliet@localhost", "member", Some("Juliet")).await;
    owner.set_affiliation(LOUNGE, "iago@localhost", "outcast", None).await;
    owner.set_subject(LOUNGE, "Tea at five").await;

    let mut nurse = Client::connect(p, "nurse@localhost").await;
    nurse.join(LOUNGE, "Nurse").await;
    let mut juliet = Client::connect(p, "juliet@localhost").await;
    juliet.join(LOUNGE, "Juliet").await;
    let mut romeo = Client::connect(p, "romeo@localhost").await;
    romeo.join(LOUNGE, "Romeo").await;
    let attic = romeo.join(ATTIC, "Romeo").await;
    assert!(has_status(&attic, "201"), "attic should be new: {}", xml::to_string(&attic));

    for c in [&mut owner, &mut nurse, &mut juliet, &mut romeo] {
        c.c.sync(T).await.expect("sync");
    }
    vec![owner, nurse, juliet, romeo]
}

// ---------------------------------------------------------------------------------------
// Commands and what they must answer

/// What a command must answer (on stock and muc_rs alike).
enum Expect {
    /// Exit 0, this stdout, no stderr.
    Ok(String),
    /// Exit 0, these stdout lines in any order (rooms come in the order of each server's
    /// own room table), no stderr.
    OkAnyOrder(&'static [&'static str]),
    /// Exit 0 and, in stdout, one line for each row, in this order, that holds the row's
    /// fragments in order (13's tables, whose padding follows the terminal's width); then
    /// this last line.
    Table(&'static [&'static [&'static str]], &'static str),
    /// Exit 1, nothing on stdout, this on stderr.
    Err(String),
}

fn ok(text: &str) -> Expect {
    Expect::Ok(text.to_owned())
}

fn err(text: &str) -> Expect {
    Expect::Err(text.to_owned())
}

struct Command {
    args: Vec<String>,
    expect: Expect,
}

fn cmd(line: &str, expect: Expect) -> Command {
    Command { args: vec![line.to_owned()], expect }
}

fn room_call(room: &str, call: &str, expect: Expect) -> Command {
    cmd(&format!("muc:room({room:?}):{call}"), expect)
}

/// The global environment (`>`) reaches the room as mod_admin_shell does, through
/// `prosody.hosts[host].modules.muc`; `table` is there to sort what the iterators give.
fn global_walk(room: &str, iterator: &str, row: &str) -> String {
    format!(
        ">local r = prosody.hosts[{MUC_DOMAIN:?}].modules.muc.get_room_from_jid({room:?}) \
         local t = {{}} for {iterator} do t[#t+1] = {row} end table.sort(t) return table.concat(t, '; ')"
    )
}

/// Every settings getter stock has on the version, called on the room in one go:
/// `name=value ...` (`MISSING` for a getter the room lacks).
fn getters(version: Version, room: &str, expect: &str) -> Command {
    let mut names = vec![
        "name",
        "description",
        "language",
        "password",
        "hidden",
        "public",
        "members_only",
        "allow_member_invites",
        "moderated",
        "persistent",
        "changesubject",
        "whois",
        "historylength",
    ];
    if version == Version::V13 {
        names.extend(["allow_pm", "allow_modpm"]);
    }
    let names = names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    let line = format!(
        ">local r = prosody.hosts[{MUC_DOMAIN:?}].modules.muc.get_room_from_jid({room:?}) \
         local t = {{}} for _, k in ipairs({{ {names} }}) do local f = r['get_'..k] \
         t[#t+1] = k..'='..(f and tostring(f(r)) or 'MISSING') end return table.concat(t, ' ')"
    );
    let mut expect = format!("Result: {expect}");
    if version == Version::V13 {
        expect.push_str(" allow_pm=visitor allow_modpm=false");
    }
    cmd(&line, Expect::Ok(expect))
}

fn commands(version: Version) -> Vec<Command> {
    use Expect::*;
    let mut list = vec![
        cmd(&format!("muc:list({MUC_DOMAIN:?})"), OkAnyOrder(&[LOUNGE, ATTIC, "OK: 2 rooms"])),
        cmd(&format!("muc:room({LOUNGE:?})"), ok("Result: MUC room <lounge@conference.localhost>")),
        cmd(&format!("muc:room({NOWHERE:?})"), err("Error: No such room: nowhere@conference.localhost")),
        room_call(LOUNGE, "get_name()", ok("Result: The Lounge")),
        room_call(LOUNGE, "get_description()", ok("Result: Where we talk")),
        room_call(LOUNGE, "get_members_only()", ok("Result: nil")),
        room_call(LOUNGE, "get_moderated()", ok("Result: true")),
        room_call(LOUNGE, "get_persistent()", ok("Result: true")),
        room_call(LOUNGE, "get_public()", ok("Result: true")),
        room_call(LOUNGE, "get_hidden()", ok("Result: nil")),
        room_call(LOUNGE, "get_whois()", ok("Result: moderators")),
        room_call(LOUNGE, "get_password()", ok("Result: nil")),
        // get_subject answers (from, subject): the shell shows the second as its message.
        room_call(LOUNGE, "get_subject()", ok("OK: Tea at five")),
        room_call(LOUNGE, "get_affiliation(\"juliet@localhost\")", ok("Result: member")),
        room_call(LOUNGE, "get_affiliation(\"iago@localhost\")", ok("Result: outcast")),
        room_call(LOUNGE, "get_affiliation(\"romeo@localhost\")", ok("Result: nil")),
        // Occupants are named by their occupant JID (room@service/nick).
        room_call(LOUNGE, "get_role(\"lounge@conference.localhost/Romeo\")", ok("Result: visitor")),
        room_call(LOUNGE, "get_role(\"lounge@conference.localhost/Nurse\")", ok("Result: moderator")),
        room_call(LOUNGE, "get_role(\"lounge@conference.localhost/Iago\")", ok("Result: nil")),
        room_call(
            LOUNGE,
            "get_occupant_jid(\"romeo@localhost/res\")",
            ok("Result: lounge@conference.localhost/Romeo"),
        ),
        room_call(
            LOUNGE,
            "get_affiliation_data(\"juliet@localhost\", \"reserved_nickname\")",
            ok("Result: Juliet"),
        ),
        // get_default_role answers (role, its rank): the shell shows the rank as its message.
        room_call(LOUNGE, "get_default_role()", ok("OK: 1")),
        room_call(LOUNGE, "get_default_role(\"member\")", ok("OK: 2")),
        room_call(LOUNGE, "get_registered_nick(\"juliet@localhost\")", ok("Result: Juliet")),
        room_call(LOUNGE, "get_registered_jid(\"Juliet\")", ok("Result: juliet@localhost")),
        // Stock's getters answer nil, not false, for a switch that is off (its setters store
        // `value and true or nil`).
        getters(
            version,
            LOUNGE,
            "name=The Lounge description=Where we talk language=en password=nil hidden=nil public=true \
             members_only=nil allow_member_invites=nil moderated=true persistent=true changesubject=nil \
             whois=moderators historylength=20",
        ),
        getters(
            version,
            ATTIC,
            "name=nil description=nil language=en password=nil hidden=true public=false members_only=nil \
             allow_member_invites=nil moderated=nil persistent=nil changesubject=nil whois=moderators \
             historylength=20",
        ),
        room_call(ATTIC, "get_name()", ok("Result: nil")),
        room_call(ATTIC, "get_affiliation(\"romeo@localhost\")", ok("Result: owner")),
        // each_occupant through the shell's room object (methods get it as self).
        cmd(
            &format!(
                "local n, m = 0, 0 for nick, o in muc:room({LOUNGE:?}):each_occupant() do n = n + 1 \
                 if o.role == 'moderator' then m = m + 1 end end return n..' occupants, '..m..' moderators'"
            ),
            ok("Result: 4 occupants, 2 moderators"),
        ),
        cmd(
            &global_walk(
                LOUNGE,
                "nick, o in r:each_occupant()",
                "nick..' '..o.role..' '..o.bare_jid..' '..o.jid",
            ),
            ok("Result: lounge@conference.localhost/Juliet participant juliet@localhost juliet@localhost/res; \
                lounge@conference.localhost/Nurse moderator nurse@localhost nurse@localhost/res; \
                lounge@conference.localhost/Owner moderator owner@localhost owner@localhost/res; \
                lounge@conference.localhost/Romeo visitor romeo@localhost romeo@localhost/res"),
        ),
        cmd(
            &global_walk(
                LOUNGE,
                "j, a, d in r:each_affiliation()",
                "j..' '..a..' '..tostring(d and d.reserved_nickname)",
            ),
            ok("Result: iago@localhost outcast nil; juliet@localhost member Juliet; \
                nurse@localhost admin nil; owner@localhost owner nil"),
        ),
    ];

    if version == Version::V13 {
        list.extend([
            cmd(
                &format!("muc:occupants({LOUNGE:?})"),
                Table(
                    &[
                        &["Role", "JID", "Nickname"],
                        &["moderator", "nurse@localhost", "Nurse"],
                        &["moderator", "owner@localhost", "Owner"],
                        &["participant", "juliet@localhost", "Juliet"],
                        &["visitor", "romeo@localhost", "Romeo"],
                    ],
                    "OK: 4 occupants listed",
                ),
            ),
            cmd(
                &format!("muc:occupants({LOUNGE:?}, \"moderator\")"),
                Table(
                    &[
                        &["Role", "JID", "Nickname"],
                        &["moderator", "nurse@localhost", "Nurse"],
                        &["moderator", "owner@localhost", "Owner"],
                    ],
                    "OK: 2 out of 4 occupants listed",
                ),
            ),
            cmd(
                &format!("muc:occupants({LOUNGE:?}, \"Rom\")"),
                Table(
                    &[&["Role", "JID", "Nickname"], &["visitor", "romeo@localhost", "Romeo"]],
                    "OK: 1 out of 4 occupants listed",
                ),
            ),
            cmd(&format!("muc:occupants({LOUNGE:?}, \"none\")"), ok("OK: 0 out of 4 occupants listed")),
            cmd(
                &format!("muc:occupants({ATTIC:?})"),
                Table(
                    &[&["Role", "JID", "Nickname"], &["moderator", "romeo@localhost", "Romeo"]],
                    "OK: 1 occupant listed",
                ),
            ),
            cmd(
                &format!("muc:occupants({NOWHERE:?})"),
                err("Error: No such room: nowhere@conference.localhost"),
            ),
            // The command-line form: `prosodyctl shell muc occupants <jid>`.
            Command {
                args: vec!["muc".into(), "occupants".into(), LOUNGE.into(), "visitor".into()],
                expect: Table(
                    &[&["Role", "JID", "Nickname"], &["visitor", "romeo@localhost", "Romeo"]],
                    "OK: 1 out of 4 occupants listed",
                ),
            },
            cmd(
                &format!("muc:affiliations({LOUNGE:?})"),
                Table(
                    &[
                        &["Affiliation", "JID", "Nickname"],
                        &["owner", "owner@localhost"],
                        &["admin", "nurse@localhost"],
                        &["member", "juliet@localhost", "Juliet"],
                        &["outcast", "iago@localhost"],
                    ],
                    "OK: 4 affiliations listed",
                ),
            ),
            cmd(
                &format!("muc:affiliations({LOUNGE:?}, \"member\")"),
                Table(
                    &[&["Affiliation", "JID", "Nickname"], &["member", "juliet@localhost", "Juliet"]],
                    "OK: 1 out of 4 affiliations listed",
                ),
            ),
            cmd(
                &format!("muc:affiliations({LOUNGE:?}, \"iago\")"),
                Table(
                    &[&["Affiliation", "JID", "Nickname"], &["outcast", "iago@localhost"]],
                    "OK: 1 out of 4 affiliations listed",
                ),
            ),
            Command {
                args: vec!["muc".into(), "affiliations".into(), ATTIC.into()],
                expect: Table(
                    &[&["Affiliation", "JID", "Nickname"], &["owner", "romeo@localhost"]],
                    "OK: 1 affiliation listed",
                ),
            },
            cmd(
                &format!("muc:affiliations({NOWHERE:?})"),
                err("Error: No such room: nowhere@conference.localhost"),
            ),
        ]);
    }

    // Rooms made and destroyed from the shell. muc:create's config is the new room's `_data`
    // (stock: muclib.new_room(jid, config), without the service's defaults), on both versions.
    list.extend([
        cmd(&format!("muc:create({MADE:?})"), ok("Result: MUC room (made@conference.localhost)")),
        cmd(&format!("muc:create({MADE:?})"), err("Error: Room exists already")),
        cmd(&format!("muc:create({LOUNGE:?})"), err("Error: Room exists already")),
        cmd(&format!("muc:create({NAMED:?}, \"x\")"), err("Error: Config must be a table")),
        cmd(
            &format!("muc:create({NAMED:?}, {{ name = \"Made by admin\"; members_only = true; persistent = true }})"),
            ok("Result: MUC room (named@conference.localhost)"),
        ),
        room_call(NAMED, "get_name()", ok("Result: Made by admin")),
        room_call(NAMED, "get_members_only()", ok("Result: true")),
        room_call(NAMED, "get_persistent()", ok("Result: true")),
        // With a config, stock's create_room makes the room's `_data` of it alone, without
        // the service's defaults (so not hidden); without one, the defaults apply.
        getters(
            version,
            NAMED,
            "name=Made by admin description=nil language=nil password=nil hidden=nil public=true \
             members_only=true allow_member_invites=nil moderated=nil persistent=true changesubject=nil \
             whois=moderators historylength=20",
        ),
        getters(
            version,
            MADE,
            "name=nil description=nil language=nil password=nil hidden=true public=false members_only=nil \
             allow_member_invites=nil moderated=nil persistent=nil changesubject=nil whois=moderators \
             historylength=20",
        ),
        room_call(MADE, "get_name()", ok("Result: nil")),
        room_call(MADE, "get_persistent()", ok("Result: nil")),
        room_call(MADE, "get_members_only()", ok("Result: nil")),
        cmd(
            &format!("muc:list({MUC_DOMAIN:?})"),
            OkAnyOrder(&[LOUNGE, ATTIC, MADE, NAMED, "OK: 4 rooms"]),
        ),
        room_call(MADE, "destroy()", ok("Result: true")),
        cmd(&format!("muc:room({MADE:?})"), err("Error: No such room: made@conference.localhost")),
        cmd(&format!("muc:list({MUC_DOMAIN:?})"), OkAnyOrder(&[LOUNGE, ATTIC, NAMED, "OK: 3 rooms"])),
        // The command-line form on both versions: `prosodyctl shell muc list <host>`.
        Command {
            args: vec!["muc".into(), "list".into(), MUC_DOMAIN.into()],
            expect: OkAnyOrder(&[LOUNGE, ATTIC, NAMED, "OK: 3 rooms"]),
        },
    ]);
    if version == Version::V13 {
        list.push(cmd(&format!("muc:occupants({NAMED:?})"), ok("OK: 0 out of 0 occupants listed")));
    }
    list
}

/// Why `answer` does not meet `expect`, if it does not.
fn unmet(expect: &Expect, answer: &Answer) -> Option<String> {
    let lines: Vec<&str> = answer.stdout.lines().collect();
    let ok = answer.status == Some(0) && answer.stderr.is_empty();
    let met = match expect {
        Expect::Ok(text) => ok && answer.stdout == format!("{text}\n"),
        Expect::OkAnyOrder(want) => {
            let mut got = lines.clone();
            let mut want = want.to_vec();
            got.sort_unstable();
            want.sort_unstable();
            ok && got == want
        }
        Expect::Table(rows, last) => {
            ok && lines.len() == rows.len() + 1
                && lines.last() == Some(last)
                && rows.iter().zip(&lines).all(|(row, line)| {
                    let mut rest = *line;
                    row.iter().all(|fragment| match rest.find(fragment) {
                        Some(at) => {
                            rest = &rest[at + fragment.len()..];
                            true
                        }
                        None => false,
                    })
                })
        }
        Expect::Err(text) => {
            answer.status == Some(1) && answer.stdout.is_empty() && answer.stderr == format!("{text}\n")
        }
    };
    (!met).then(|| {
        let want = match expect {
            Expect::Ok(text) => format!("exit 0, stdout {text:?}"),
            Expect::OkAnyOrder(want) => format!("exit 0, stdout lines in any order {want:?}"),
            Expect::Table(rows, last) => format!("exit 0, table rows {rows:?} then {last:?}"),
            Expect::Err(text) => format!("exit 1, stderr {text:?}"),
        };
        format!("expected {want}")
    })
}

/// For the comparison: a room list's lines sorted (each server lists its rooms in the order
/// of its own room table, which no admin relies on).
fn comparable(expect: &Expect, answer: &Answer) -> Answer {
    let mut a = answer.clone();
    if matches!(expect, Expect::OkAnyOrder(_)) {
        let mut lines: Vec<&str> = answer.stdout.lines().collect();
        lines.sort_unstable();
        a.stdout = lines.iter().map(|l| format!("{l}\n")).collect();
    }
    a
}

// ---------------------------------------------------------------------------------------
// The test

struct Run {
    label: String,
    answers: Vec<Answer>,
    log_problems: Vec<String>,
}

async fn run(version: Version, module: Module, commands: &[Command]) -> Run {
    let mut server = start(version, module).await;
    let clients = make_rooms(&server.p).await;
    let mut answers = Vec::new();
    for c in commands {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        answers.push(server.shell(&args).await);
    }
    for mut c in clients {
        let _ = c.c.close(T).await;
    }
    let log_problems = log_problems(&server.p.read_log());
    server.p.stop(Duration::from_secs(5)).await;
    Run { label: server.label, answers, log_problems }
}

async fn admin_shell(version: Version) {
    let started = Instant::now();
    let commands = commands(version);
    let (stock, rs) =
        tokio::join!(run(version, Module::Stock, &commands), run(version, Module::Rs, &commands));

    let mut failures = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        let shown = c.args.join(" ");
        let (s, r) = (&stock.answers[i], &rs.answers[i]);
        if let Some(why) = unmet(&c.expect, s) {
            failures.push(format!("{}: `{shown}`: {why}\n    got {s}", stock.label));
        }
        let differs = comparable(&c.expect, s) != comparable(&c.expect, r);
        if differs {
            failures.push(format!(
                "{}: `{shown}` differs from stock\n    stock:  {s}\n    muc_rs: {r}",
                rs.label
            ));
        } else if let Some(why) = unmet(&c.expect, r) {
            failures.push(format!("{}: `{shown}`: {why}\n    got {r}", rs.label));
        }
    }
    for run in [&stock, &rs] {
        if !run.log_problems.is_empty() {
            failures.push(format!(
                "{}: problems in Prosody's log:\n    {}",
                run.label,
                run.log_problems.join("\n    ")
            ));
        }
    }
    eprintln!(
        "admin shell on Prosody {}: {} commands on stock and muc_rs in {:.1?}",
        version.label(),
        commands.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} admin shell checks failed on Prosody {}:\n\n{}",
        failures.len(),
        commands.len() * 2,
        version.label(),
        failures.join("\n\n")
    );
}

#[tokio::test]
async fn admin_shell_muc_commands_0_12() {
    admin_shell(Version::V0_12).await;
}

#[tokio::test]
async fn admin_shell_muc_commands_13() {
    admin_shell(Version::V13).await;
}
