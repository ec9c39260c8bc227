//! The room commands of ejabberd's mod_muc_admin (`ejabberdctl`, the HTTP API) on
//! mod_muc_rs, against stock mod_muc + mod_muc_admin: the same rooms are made over XMPP on
//! each, the same commands run, and what each prints must be the same (listings compared
//! as sets: their order is a hash table's in stock), errors on a missing room included.
//!
//! Fails (no skip) when ejabberd or the module is missing: run tools/install-deps.sh and
//! `make install-ejabberd` first.

mod ejabberd_client;

use ejabberd_client::Client;
use muc_harness::ejabberd::{ClusterNode, Ejabberd, Extras, Muc};
use muc_harness::postgres::Postgres;

const SERVICE: &str = "conference.localhost";
const FRIENDS: &str = "friends@conference.localhost";

/// One command as run, and what came of it.
#[derive(Debug, PartialEq)]
struct Ran {
    command: String,
    status: i32,
    printed: String,
}

/// Runs ejabberdctl commands on one server and keeps what they printed.
struct Transcript<'a> {
    server: &'a Ejabberd,
    ran: Vec<Ran>,
    /// What the commands given bad input printed (stock crashes on some, with its own
    /// stack: only their status is compared).
    refused: Vec<String>,
}

impl Transcript<'_> {
    /// `ejabberdctl args`; `unordered`: a listing whose lines are compared as a set.
    async fn ctl(&mut self, args: &[&str], unordered: bool) {
        let (status, printed) = self.server.ctl(args).await.unwrap_or_else(|e| panic!("{e}"));
        // (a file in the server's own dir: named without it)
        let args: Vec<&str> = args.iter().map(|a| a.rsplit('/').next().unwrap_or(a)).collect();
        let printed = if unordered {
            let mut lines: Vec<&str> = printed.lines().collect();
            lines.sort_unstable();
            lines.join("\n")
        } else {
            printed.trim_end().to_owned()
        };
        self.ran.push(Ran { command: args.join(" "), status, printed });
    }

    /// `ejabberdctl args` with bad input.
    async fn ctl_refused(&mut self, args: &[&str]) {
        let (status, printed) = self.server.ctl(args).await.unwrap_or_else(|e| panic!("{e}"));
        self.refused.push(format!("{}: {printed}", args.join(" ")));
        self.ran.push(Ran { command: args.join(" "), status, printed: String::new() });
    }

    /// A POST to the HTTP API.
    async fn api(&mut self, command: &str, body: &str) {
        let (status, printed) = self.server.api(command, body).await.unwrap_or_else(|e| panic!("{e}"));
        self.ran.push(Ran { command: format!("POST /api/{command} {body}"), status: status.into(), printed });
    }
}

/// Where the rooms are kept.
#[derive(Clone, Copy)]
enum Db {
    Mnesia,
    /// SQLite, in the node's dir.
    Sqlite,
    /// A database of its own on the PostgreSQL server on this port.
    Postgres(u16),
}

/// Rooms made over XMPP, then the commands, on `muc` keeping its rooms in `db`.
async fn run_commands(muc: Muc, db: Db) -> Vec<Ran> {
    let modules = if muc == Muc::Stock { vec!["mod_muc_admin: {}".to_owned()] } else { Vec::new() };
    let (options, global) = match db {
        Db::Mnesia => ("", None),
        Db::Sqlite => ("db_type: sql", Some("sql_type: sqlite\nsql_database: \"rooms.sqlite\"".to_owned())),
        Db::Postgres(port) => {
            let global = format!(
                "sql_type: pgsql\nsql_server: \"127.0.0.1\"\nsql_port: {port}\nsql_database: \"{}\"\n\
                 sql_username: \"{}\"\nsql_password: \"\"",
                muc.label(),
                muc_harness::postgres::USER
            );
            ("db_type: sql", Some(global))
        }
    };
    let extras = Extras {
        cluster: ClusterNode::cluster(1).pop(),
        modules,
        http_api: true,
        global,
        ..Extras::default()
    };
    let server = Ejabberd::start_with_extras(&muc, options, extras).await.unwrap_or_else(|e| panic!("{e}"));

    // A persistent room with an owner, a member (with a reason), an outcast, and two
    // occupants; a temporary room with one.
    let mut romeo = Client::connect(&server, "romeo").await;
    romeo.join(FRIENDS, "Romeo").await;
    romeo.iq_ok("cfg", &ejabberd_client::configure(FRIENDS, "Friends", true)).await;
    let member =
        ejabberd_client::set_affiliation(FRIENDS, "m", "juliet@localhost", "member", Some("a friend"));
    romeo.iq_ok("m", &member).await;
    let outcast =
        ejabberd_client::set_affiliation(FRIENDS, "o", "mallory@localhost", "outcast", Some("spam"));
    romeo.iq_ok("o", &outcast).await;
    let mut juliet = Client::connect(&server, "juliet").await;
    juliet.join(FRIENDS, "Juliet").await;
    let mut mercutio = Client::connect(&server, "mercutio").await;
    let temp = "temp@conference.localhost";
    mercutio.join(temp, "Mercutio").await;
    mercutio.iq_ok("cfg", &ejabberd_client::configure(temp, "Temp", false)).await;

    romeo.say(FRIENDS, "hello").await;
    juliet.say(FRIENDS, "hi Romeo").await;
    let mut benvolio = Client::connect(&server, "benvolio").await;
    // (available: a message to the bare JID reaches the session)
    benvolio.send("<presence xmlns='jabber:client'/>").await;

    let mut t = Transcript { server: &server, ran: Vec::new(), refused: Vec::new() };
    t.ctl(&["muc_online_rooms", SERVICE], true).await;
    t.ctl(&["muc_online_rooms", "global"], true).await;
    t.ctl(&["muc_online_rooms_by_regex", SERVICE, "^fr"], true).await;
    t.ctl(&["muc_online_rooms_by_regex", SERVICE, "."], true).await;
    t.ctl(&["get_room_occupants", "friends", SERVICE], true).await;
    t.ctl(&["get_room_occupants_number", "friends", SERVICE], false).await;
    t.ctl(&["get_room_occupants_number", "temp", SERVICE], false).await;
    t.ctl(&["get_room_affiliations", "friends", SERVICE], true).await;
    t.ctl(&["get_room_affiliation", "friends", SERVICE, "juliet@localhost"], false).await;
    t.ctl(&["get_room_affiliation", "friends", SERVICE, "mallory@localhost"], false).await;
    t.ctl(&["get_room_affiliation", "friends", SERVICE, "benvolio@localhost"], false).await;
    t.ctl(&["get_room_affiliation", "friends", SERVICE, "admin@localhost"], false).await;
    t.ctl(&["get_room_options", "friends", SERVICE], false).await;
    t.ctl(&["get_room_options", "temp", SERVICE], false).await;

    // The web admin's MUC pages list the rooms, from the same commands.
    for page in ["muc/", "server/localhost/user/romeo/muc-rooms/"] {
        let (status, html) = server.web_admin(page).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "{}: /admin/{page}: {html}", muc.label());
        assert!(html.contains(FRIENDS), "{}: /admin/{page} lists no {FRIENDS}: {html}", muc.label());
    }
    if muc != Muc::Stock {
        let (status, html) =
            server.web_admin("server/localhost/muc/").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(FRIENDS) && html.contains("get_room_options"), "{html}");
    }

    t.ctl(&["get_room_history", "friends", SERVICE], false).await;
    t.ctl(&["get_room_history", "temp", SERVICE], false).await;
    t.ctl(&["get_user_rooms", "romeo", "localhost"], true).await;
    t.ctl(&["get_user_rooms", "mercutio", "localhost"], true).await;
    t.ctl(&["get_user_rooms", "benvolio", "localhost"], true).await;

    // Nicks registered with the service, and invitations.
    t.ctl(&["muc_register_nick", "Tim", "romeo", "localhost", SERVICE], false).await;
    t.ctl(&["muc_register_nick", "Tim", "juliet", "localhost", SERVICE], false).await;
    t.ctl(&["muc_unregister_nick", "romeo", "localhost", SERVICE], false).await;
    t.ctl(&["muc_register_nick", "Tim", "juliet", "localhost", SERVICE], false).await;
    t.ctl(
        &[
            "send_direct_invitation",
            "friends",
            SERVICE,
            "none",
            "Come",
            "benvolio@localhost,juliet@localhost",
        ],
        false,
    )
    .await;
    let invitation = benvolio
        .expect("the invitation", |el| el.name() == "message" && el.has_child("x", "jabber:x:conference"))
        .await;
    assert_eq!(invitation.attr("from"), Some(FRIENDS), "{}", muc.label());

    // Changes: settings the core has, one it has not (kept in mod_muc's row), affiliations.
    t.ctl(&["change_room_option", "friends", SERVICE, "title", "Old friends"], false).await;
    t.ctl(&["change_room_option", "friends", SERVICE, "members_only", "true"], false).await;
    t.ctl(&["change_room_option", "friends", SERVICE, "anonymous", "false"], false).await;
    t.ctl(&["change_room_option", "friends", SERVICE, "max_users", "50"], false).await;
    t.ctl(&["get_room_options", "friends", SERVICE], false).await;
    t.ctl_refused(&["change_room_option", "friends", SERVICE, "nosuchoption", "true"]).await;
    t.ctl_refused(&["change_room_option", "friends", SERVICE, "max_users", "many"]).await;
    t.ctl_refused(&["change_room_option", "friends", SERVICE, "subject", "News"]).await;
    t.ctl(&["set_room_affiliation", "friends", SERVICE, "benvolio", "localhost", "admin"], false).await;
    t.ctl(&["set_room_affiliation", "friends", SERVICE, "mallory", "localhost", "none"], false).await;
    t.ctl(&["set_room_affiliation", "friends", SERVICE, "mallory", "localhost", "king"], false).await;
    t.ctl(&["get_room_affiliations", "friends", SERVICE], true).await;
    t.ctl(&["get_room_occupants", "friends", SERVICE], true).await;

    // Rooms made and destroyed by command.
    t.ctl(&["create_room", "made", SERVICE, "localhost"], false).await;
    t.ctl(&["create_room", "made", SERVICE, "localhost"], false).await;
    t.ctl(&["create_room", "other", SERVICE, "nosuch.example"], false).await;
    t.ctl(&["get_room_options", "made", SERVICE], false).await;
    t.ctl(&["muc_online_rooms", SERVICE], true).await;
    t.ctl(&["rooms_unused_list", SERVICE, "0"], true).await;
    t.ctl(&["rooms_unused_list", "global", "1"], true).await;
    t.ctl(&["rooms_empty_list", SERVICE], true).await;
    t.ctl(&["rooms_empty_destroy", SERVICE], true).await;
    t.ctl(&["rooms_unused_destroy", SERVICE, "0"], true).await;
    t.ctl(&["destroy_room", "made", SERVICE], false).await;
    t.ctl(&["destroy_room", "temp", SERVICE], false).await;
    t.ctl(&["muc_online_rooms", SERVICE], true).await;

    // Rooms listed in a file (stock stores them for its next start: read back, not listed).
    let file = server.dir().join("rooms.txt");
    std::fs::write(&file, "filed1@conference.localhost\nfiled2@conference.localhost\n").unwrap();
    let file = file.to_str().unwrap();
    t.ctl(&["create_rooms_file", file], false).await;
    t.ctl(&["get_room_affiliations", "filed1", SERVICE], false).await;
    t.ctl(&["destroy_rooms_file", file], false).await;
    t.ctl(&["get_room_options", "filed2", SERVICE], false).await;

    // A room that does not exist, and a service that is not one.
    for command in [
        "get_room_occupants",
        "get_room_occupants_number",
        "get_room_affiliations",
        "get_room_options",
        "destroy_room",
    ] {
        t.ctl(&[command, "nosuch", SERVICE], false).await;
    }
    t.ctl(&["get_room_affiliation", "nosuch", SERVICE, "juliet@localhost"], false).await;
    t.ctl(&["get_room_history", "nosuch", SERVICE], false).await;
    t.ctl(&["change_room_option", "nosuch", SERVICE, "title", "x"], false).await;
    t.ctl(&["set_room_affiliation", "nosuch", SERVICE, "juliet", "localhost", "member"], false).await;
    t.ctl(&["get_room_options", "friends", "nosuch.localhost"], false).await;
    t.ctl(&["muc_online_rooms", "nosuch.localhost"], false).await;

    // The HTTP API: a room with options, read back; a missing room's error.
    let body = format!(
        r#"{{"room": "api", "service": "{SERVICE}", "host": "localhost",
            "options": [{{"name": "persistent", "value": "true"}}, {{"name": "members_only", "value": "true"}},
                        {{"name": "title", "value": "By API"}},
                        {{"name": "affiliations", "value": "owner:romeo@localhost,member:juliet@localhost"}}]}}"#
    );
    t.api("create_room_with_opts", &body).await;
    t.api("get_room_options", &format!(r#"{{"room": "api", "service": "{SERVICE}"}}"#)).await;
    t.api("get_room_affiliations", &format!(r#"{{"room": "api", "service": "{SERVICE}"}}"#)).await;
    t.api("get_room_affiliations", &format!(r#"{{"room": "nosuch", "service": "{SERVICE}"}}"#)).await;
    t.api("muc_online_rooms", &format!(r#"{{"service": "{SERVICE}"}}"#)).await;
    if let Db::Sqlite = db {
        // The rooms and the service's registered nick are in mod_muc's SQL tables.
        let database = server.dir().join("rooms.sqlite");
        let query = |sql: &str| {
            let out =
                std::process::Command::new("sqlite3").arg(&database).arg(sql).output().expect("sqlite3");
            String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect::<Vec<_>>()
        };
        assert_eq!(query("select name from muc_room order by name"), ["api", "friends"], "{}", muc.label());
        let nicks = query("select nick from muc_registered where host = 'conference.localhost'");
        assert_eq!(nicks, ["Tim"], "{}", muc.label());
    }
    ejabberd_client::assert_log_clean(&server);
    if muc != Muc::Stock {
        let crashed: Vec<&String> = t.refused.iter().filter(|p| p.contains("exception")).collect();
        assert!(crashed.is_empty(), "bad input crashed the command: {crashed:#?}");
    }
    t.ran
}

/// A JSON list of the HTTP API (of strings, or of flat objects) in the table's order:
/// sorted.
fn sorted_json_list(printed: &str) -> String {
    let Some(inner) = printed.strip_prefix('[').and_then(|p| p.strip_suffix(']')) else {
        return printed.into();
    };
    let separator = if inner.contains("},{") { "},{" } else { "," };
    let mut items: Vec<&str> = inner.split(separator).map(|i| i.trim_matches(['{', '}'])).collect();
    items.sort_unstable();
    let (open, close) = if separator == "," { ("", "") } else { ("{", "}") };
    format!("[{open}{}{close}]", items.join(separator))
}

#[tokio::test(flavor = "current_thread")]
async fn room_commands_answer_as_mod_muc_admin_does() {
    compare(Db::Mnesia).await;
}

#[tokio::test(flavor = "current_thread")]
async fn room_commands_answer_as_mod_muc_admin_does_on_sqlite() {
    compare(Db::Sqlite).await;
}

#[tokio::test(flavor = "current_thread")]
async fn room_commands_answer_as_mod_muc_admin_does_on_postgresql() {
    let mut pg = Postgres::start().await.expect("PostgreSQL: run tools/install-deps.sh");
    // (a database for each module, named by its label; mod_muc makes its tables)
    for muc in [Muc::Stock, Muc::muc_rs()] {
        pg.create_database(muc.label()).await.expect("create database");
    }
    compare(Db::Postgres(pg.port())).await;
    for muc in [Muc::Stock, Muc::muc_rs()] {
        let rooms = pg.query(muc.label(), "select name from muc_room order by name").await.expect("psql");
        assert_eq!(rooms.split_whitespace().collect::<Vec<_>>(), ["api", "friends"], "{}", muc.label());
    }
    pg.stop().await;
}

/// The same commands on the same rooms, kept in `db`, on mod_muc and on mod_muc_rs.
async fn compare(db: Db) {
    let mut stock = run_commands(Muc::Stock, db).await;
    let mut ours = run_commands(Muc::muc_rs(), db).await;
    for ran in stock.iter_mut().chain(ours.iter_mut()) {
        // The history: stock keeps each message as it came in, mod_muc_rs as the room sent
        // it (from the occupant's room JID, with its occupant-id); stamped to the
        // microsecond by stock, to the second by mod_muc_rs; and the two messages, sent at
        // once by two clients, may arrive in either order.
        if ran.command.starts_with("get_room_history") && ran.status == 0 {
            ran.printed = history_summary(&ran.printed);
        }
        // A room made by a join takes its creator's language on mod_muc_rs (as on Prosody)
        // and none on mod_muc: a difference of room creation, not of the commands.
        if ran.command.starts_with("get_room_options friends")
            || ran.command.starts_with("get_room_options temp")
        {
            ran.printed = ran
                .printed
                .lines()
                .filter(|l| l.split('\t').next() != Some("lang"))
                .collect::<Vec<_>>()
                .join("\n");
        }
        if ran.command.starts_with("POST /api/muc_online_rooms")
            || ran.command.contains("get_room_affiliations")
        {
            ran.printed = sorted_json_list(&ran.printed);
        }
    }
    for ran in &ours {
        eprintln!("{} -> {}\n{}", ran.command, ran.status, indent(&ran.printed));
    }
    assert_eq!(stock.len(), ours.len());
    let differ: Vec<String> = stock
        .iter()
        .zip(&ours)
        .filter(|(s, o)| s != o)
        .map(|(s, o)| {
            format!(
                "{}\n  mod_muc ({}):\n{}\n  mod_muc_rs ({}):\n{}",
                s.command,
                s.status,
                indent(&s.printed),
                o.status,
                indent(&o.printed)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} commands differ:\n\n{}",
        differ.len(),
        stock.len(),
        differ.join("\n\n")
    );
}

/// How many messages a history lists, and their bodies in order of their text.
fn history_summary(printed: &str) -> String {
    let entries = printed.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_digit())).count();
    let mut bodies: Vec<&str> = printed.lines().map(str::trim).filter(|l| l.starts_with("<body>")).collect();
    bodies.sort_unstable();
    format!("{entries} messages: {}", bodies.join(" "))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// In a cluster, a command on one node reaches a room live on another: listed, read,
/// changed and destroyed there.
#[tokio::test(flavor = "current_thread")]
async fn room_commands_reach_rooms_on_other_nodes() {
    let nodes = ClusterNode::cluster(2);
    let start = |node: ClusterNode| async move {
        let extras = Extras { cluster: Some(node), ..Extras::default() };
        Ejabberd::start_with_extras(&Muc::muc_rs(), "", extras).await.unwrap_or_else(|e| panic!("{e}"))
    };
    let a = start(nodes[0].clone()).await;
    let b = start(nodes[1].clone()).await;
    // A temporary room, live on b only.
    let mut juliet = Client::connect(&b, "juliet").await;
    let room = "onb@conference.localhost";
    juliet.join(room, "Juliet").await;
    juliet.iq_ok("cfg", &ejabberd_client::configure(room, "On b", false)).await;

    let ctl = |args: &'static [&'static str]| {
        let a = &a;
        async move {
            let (status, printed) = a.ctl(args).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(status, 0, "ejabberdctl {args:?} on a: {printed}");
            printed.trim_end().to_owned()
        }
    };
    assert_eq!(ctl(&["muc_online_rooms", SERVICE]).await, room);
    assert_eq!(ctl(&["get_room_occupants", "onb", SERVICE]).await, "juliet@localhost/res\tJuliet\tmoderator");
    ctl(&["change_room_option", "onb", SERVICE, "title", "Renamed"]).await;
    let options = ctl(&["get_room_options", "onb", SERVICE]).await;
    assert!(options.lines().any(|l| l == "title\tRenamed"), "{options}");
    // Its occupant on b heard of the change.
    juliet
        .expect("the configuration notice", |el| {
            let x = el.get_child("x", ejabberd_client::NS_MUC_USER);
            el.name() == "message" && x.is_some_and(|x| x.children().any(|s| s.attr("code") == Some("104")))
        })
        .await;
    ctl(&["destroy_room", "onb", SERVICE]).await;
    assert_eq!(ctl(&["muc_online_rooms", SERVICE]).await, "");
    for server in [&a, &b] {
        ejabberd_client::assert_log_clean(server);
    }
}
