//! Room logs over HTTP and on disk (issue 14): the community modules that publish what is
//! said in rooms, checked with real clients and a plain HTTP/1.1 GET against a real
//! Prosody with its HTTP server on a loopback port:
//! - `mod_muc_log` (0.12's prosody-modules only) writes the stanzas that occupants send
//!   to a logged room, day by day, into files under `data_path`
//!   (`<host>/muc_log%2f<yymmdd>/<room>.dat`): joins, messages, subject changes, kicks
//!   (the moderator's request, with its reason), leaves, each from the sender's room JID.
//!   Rooms are logged when an owner turns on `muc#roomconfig_enablelogging`, and never
//!   when hidden. `mod_muc_log_http` serves those files under `/muc_log/`: the list of
//!   logged rooms, a room's page, a day's page (joins, messages, `/me`, subject changes,
//!   kicks with their reason, leaves); hidden and unlogged rooms have no logs (404).
//! - `mod_http_muc_log` (both versions' packages) serves `mod_muc_mam`'s archive under
//!   `/muc_log/`: the room list (0.12: rooms not hidden; 13: public rooms; members-only
//!   and password-protected ones too), a room's calendar, a day's messages (`/me`,
//!   corrections; no subject changes, which the archive does not keep), `latest`
//!   redirecting to the last day; members-only and password-protected rooms answer 403,
//!   unknown rooms 404; a hidden room's logs are served to whoever knows the address,
//!   which disco#info gives (`muc#roominfo_logs`) for every room without members-only or
//!   password.
//!
//! Each scenario runs once on stock `mod_muc`, where the pages and files are checked for
//! what a reader must find, and once on muc_rs, whose pages and files must be stock's
//! once times, dates and archive ids are masked (and the logged stanzas' attributes put
//! in order: mod_muc_log writes them in Lua's hash order).
//!
//! Not covered, as stock fails there: with mod_muc_log, an occupant's presence change in a
//! logged room (a traceback: the module leaves the stanza in an invalid state).
//!
//! Needs tools/install-deps.sh and the plugin (make build; or `$MUC_RS_PLUGIN_DIR`).

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use minidom::Element;
use muc_harness::prosody::{repo_root, Install, Prosody, ServerConfig, Version, MUC_DOMAIN};
use muc_harness::xml;
use muc_harness::xmpp::{ConnectOptions, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(10);

const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_DATA: &str = "jabber:x:data";

const ROMEO: &str = "romeo@localhost";
const JULIET: &str = "juliet@localhost";
const MERCUTIO: &str = "mercutio@localhost";

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

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    l.local_addr().expect("local addr").port()
}

struct Server {
    p: Prosody,
    http_port: u16,
}

/// Prosody with `modules` on the MUC component, the version's community modules on
/// `plugin_paths`, and its HTTP server on a loopback port.
async fn start(version: Version, module: Module, modules: &[&str]) -> Server {
    let install = Install::discover(version).expect("Prosody missing: run tools/install-deps.sh");
    let community = install.community_modules().expect("prosody-modules missing: run tools/install-deps.sh");
    let list = modules.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ");
    let mut last_err = None;
    for _ in 0..5 {
        let http_port = free_port();
        let config = ServerConfig {
            muc_module: module.name().into(),
            plugin_paths: vec![plugin_dir(), community.clone()],
            global_extra: vec![
                format!("http_ports = {{ {http_port} }}"),
                "http_interfaces = { \"127.0.0.1\" }".into(),
            ],
            component_extra: vec![format!("modules_enabled = {{ {list} }}")],
            ..Default::default()
        };
        let p = Prosody::start(&install, config).await.expect("start Prosody");
        // The HTTP port is bound during startup too; another process may have taken it.
        let deadline = Instant::now() + T;
        loop {
            let log = p.read_log();
            if log.contains(&format!("Activated service 'http' on [127.0.0.1]:{http_port}")) {
                return Server { p, http_port };
            }
            if log.contains("Failed to open server port") || Instant::now() > deadline {
                last_err = Some(muc_harness::prosody::tail(&log, 20));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    panic!("Prosody's HTTP server did not listen:\n{}", last_err.unwrap_or_default());
}

/// Fails on Lua tracebacks or MUC errors in the log.
fn check_log(p: &Prosody, what: &str) {
    let log = p.read_log();
    let problems = muc_harness::prosody::log_problems(&log);
    assert!(
        problems.is_empty(),
        "{what}: problems in Prosody's log:\n{}\nlog:\n{}",
        problems.join("\n"),
        muc_harness::prosody::tail(&log, 60)
    );
}

// ---------------------------------------------------------------------------------------
// HTTP

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 GET on loopback, for the MUC component's host.
async fn get(port: u16, path: &str) -> Response {
    let mut s = tokio::time::timeout(T, TcpStream::connect((Ipv4Addr::LOCALHOST, port)))
        .await
        .expect("HTTP connect timed out")
        .expect("HTTP connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {MUC_DOMAIN}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("HTTP write");
    let mut raw = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut raw)).await.expect("HTTP read timed out").expect("HTTP read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) =
        text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("GET {path}: bad answer {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Response { status, headers, body }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------------
// Masking what differs from run to run

/// Replaces every run of ASCII characters matching `pattern` (`9` a digit, `x` a hex
/// digit, anything else itself) with `mask`.
fn mask(text: &str, pattern: &str, mask: &str) -> String {
    let p = pattern.as_bytes();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i + p.len() <= b.len() {
        let hit = p.iter().zip(&b[i..i + p.len()]).all(|(pc, c)| match pc {
            b'9' => c.is_ascii_digit(),
            b'x' => c.is_ascii_hexdigit(),
            _ => pc == c,
        });
        if hit {
            out.push_str(&text[copied..i]);
            out.push_str(mask);
            i += p.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The values of attributes that start with `prefix` (e.g. `id="`) replaced by `mask`.
fn mask_values(text: &str, prefix: &str, mask: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i + prefix.len()]);
        rest = &rest[i + prefix.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str(mask);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Times, dates and archive ids (mod_http_muc_log's message anchors) masked.
fn normalise(text: &str) -> String {
    let mut t = mask_values(text, "\" id=\"", "<id>");
    t = mask_values(&t, "href=\"#", "<id>");
    t = mask(&t, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "<uuid>");
    t = mask(&t, "9999-99-99", "<date>");
    t = mask(&t, "99:99:99", "<time>");
    t = mask(&t, "<time>.999999", "<time>");
    t
}

/// A Lua string literal's content, unescaped (as util.serialization writes them).
fn lua_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(d) if d.is_ascii_digit() => {
                let mut n = d.to_digit(10).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(10)) {
                        Some(x) => {
                            n = n * 10 + x;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(n).unwrap_or('?'));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// mod_muc_log's day file (a Lua table of `<stanza time=…>…</stanza>` strings, its
/// stanzas' attributes in Lua's hash order) as one canonical entry per line.
fn log_entries(content: &str) -> Vec<String> {
    content
        .lines()
        .filter_map(|line| line.trim().strip_prefix('"').and_then(|l| l.strip_suffix("\";")))
        .map(|literal| {
            let text = lua_unescape(literal);
            xml::parse_fragment(text.trim_end())
                .unwrap_or_else(|e| panic!("bad log entry {text:?}: {e}"))
                .iter()
                .map(xml::to_string)
                .collect::<String>()
        })
        .collect()
}

/// A page, or just the reason given on Prosody's error pages (whose other sentence is
/// picked at random).
fn page_text(body: &str) -> String {
    if !body.contains("p.extra{") {
        return body.to_owned();
    }
    let title = body.split_once("<title>").and_then(|(_, t)| t.split_once("</title>")).map(|(t, _)| t);
    let extra =
        body.split_once("<p class=\"extra\">").and_then(|(_, e)| e.split_once("</p>")).map(|(e, _)| e);
    format!("{}: {}", title.unwrap_or_default(), extra.unwrap_or_default())
}

/// Where the two texts part, for a report.
fn first_difference(a: &str, b: &str) -> String {
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let from = a[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = |s: &str| s[at..].find('\n').map(|i| at + i).unwrap_or(s.len()).min(at + 300);
    format!("stock:  {}\nmuc_rs: {}", &a[from..end(a)], &b[from..end(b)])
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

fn has_status(el: &Element, code: &str) -> bool {
    el.get_child("x", NS_MUC_USER)
        .is_some_and(|x| x.children().any(|s| s.name() == "status" && s.attr("code") == Some(code)))
}

impl Client {
    async fn connect(s: &Server, jid: &str) -> Client {
        let opts = ConnectOptions {
            addr: s.p.c2s_addr(),
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

    /// Sends and waits until the server has processed it.
    async fn send(&mut self, text: &str) {
        self.c.send(&parse(text)).await.expect("send");
        self.c.sync(T).await.expect("sync");
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

    async fn iq_ok(&mut self, text: &str) -> Element {
        let id = self.id();
        self.send(&text.replace("{id}", &id)).await;
        let reply = self
            .expect(&format!("answer to iq {id}"), |el| el.name() == "iq" && el.attr("id") == Some(&id))
            .await;
        assert_eq!(reply.attr("type"), Some("result"), "{text}: {}", xml::to_string(&reply));
        reply
    }

    async fn join(&mut self, room: &str, nick: &str, password: Option<&str>) {
        let occupant = format!("{}/{nick}", room_jid(room));
        let password = password.map(|p| format!("<password>{p}</password>")).unwrap_or_default();
        self.send(&format!("<presence to='{occupant}'><x xmlns='{NS_MUC}'>{password}</x></presence>")).await;
        let own = self
            .expect("self-presence", |el| el.name() == "presence" && el.attr("from") == Some(&occupant))
            .await;
        assert!(has_status(&own, "110"), "{} joining {occupant}: {}", self.c.jid(), xml::to_string(&own));
    }

    /// Creates the room and submits its configuration form with these fields
    /// (`muc#roomconfig_` is put before each name).
    async fn create(&mut self, room: &str, nick: &str, fields: &[(&str, &str)]) {
        self.join(room, nick, None).await;
        let mut form = String::from(
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
        );
        for (var, value) in fields {
            let value = xml::escape(value);
            form.push_str(&format!("<field var='muc#roomconfig_{var}'><value>{value}</value></field>"));
        }
        self.iq_ok(&format!(
            "<iq type='set' id='{{id}}' to='{}'><query xmlns='{NS_MUC_OWNER}'>\
             <x xmlns='{NS_DATA}' type='submit'>{form}</x></query></iq>",
            room_jid(room)
        ))
        .await;
    }

    async fn say(&mut self, room: &str, id: &str, payload: &str) {
        self.send(&format!(
            "<message type='groupchat' id='{id}' to='{}'>{payload}</message>",
            room_jid(room)
        ))
        .await;
        self.expect(&format!("echo of {id}"), |el| el.name() == "message" && el.attr("id") == Some(id)).await;
    }

    async fn close(mut self) {
        let _ = self.c.close(T).await;
    }
}

// ---------------------------------------------------------------------------------------
// mod_muc_log and mod_muc_log_http (Prosody 0.12's prosody-modules)

/// What a reader finds: the log files (path relative to the data dir, and content) and
/// the pages (path, status, body).
struct Found {
    files: Vec<(String, String)>,
    pages: Vec<(String, u16, String)>,
}

impl Found {
    fn page(&self, path: &str) -> (u16, &str) {
        self.pages
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, s, b)| (*s, b.as_str()))
            .unwrap_or_else(|| panic!("no page {path}"))
    }

    fn file(&self, suffix: &str) -> Option<&str> {
        self.files.iter().find(|(p, _)| p.ends_with(suffix)).map(|(_, c)| c.as_str())
    }

    /// The same with times, dates and ids masked, for comparing runs.
    fn normalised(&self) -> Vec<(String, String)> {
        let files = self.files.iter().map(|(p, c)| (normalise(p), normalise(&log_entries(c).join("\n"))));
        let pages = self
            .pages
            .iter()
            .map(|(p, s, b)| (format!("GET {} -> {s}", normalise(p)), normalise(&page_text(b))));
        files.chain(pages).collect()
    }
}

fn files_under(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_under(&path, base, out);
        } else {
            let rel = path.strip_prefix(base).unwrap_or(&path).to_string_lossy().into_owned();
            out.push((rel, std::fs::read_to_string(&path).unwrap_or_default()));
        }
    }
}

/// tavern: public, logging on: Juliet and Mercutio join, talk, Juliet sets the subject
/// and changes her status, Romeo kicks Mercutio, Juliet leaves. crypt: logging on but
/// hidden. quiet: public, logging off.
async fn muc_log_scenario(s: &Server) -> Found {
    let mut romeo = Client::connect(s, ROMEO).await;
    romeo
        .create(
            "tavern",
            "Romeo",
            &[("roomname", "The Boar's Head"), ("publicroom", "1"), ("enablelogging", "1")],
        )
        .await;
    romeo.create("crypt", "Romeo", &[("publicroom", "0"), ("enablelogging", "1")]).await;
    romeo.create("quiet", "Romeo", &[("publicroom", "1")]).await;

    let mut juliet = Client::connect(s, JULIET).await;
    juliet.join("tavern", "Juliet", None).await;
    let mut mercutio = Client::connect(s, MERCUTIO).await;
    mercutio.join("tavern", "Mercutio", None).await;

    romeo.say("tavern", "m1", "<body>Good morrow &amp; welcome</body>").await;
    juliet.say("tavern", "m2", "<body>/me waves</body>").await;
    juliet.say("tavern", "m3", "<subject>Ale tonight</subject>").await;
    mercutio.say("tavern", "m4", "<body>A plague o' both your houses</body>").await;
    romeo
        .iq_ok(&format!(
            "<iq type='set' id='{{id}}' to='{}'><query xmlns='{NS_MUC_ADMIN}'>\
             <item nick='Mercutio' role='none'><reason>Brawling</reason></item></query></iq>",
            room_jid("tavern")
        ))
        .await;
    juliet.send("<presence type='unavailable' to='tavern@conference.localhost/Juliet'/>").await;
    romeo.say("crypt", "c1", "<body>Hidden words</body>").await;
    romeo.say("quiet", "q1", "<body>Unlogged words</body>").await;

    let mut files = Vec::new();
    let data = s.p.data_dir();
    files_under(&data, &data, &mut files);
    files.retain(|(p, _)| p.contains("muc_log"));

    // The day's store: `muc_log/<yymmdd>`, which 0.12's datamanager writes as the
    // folder `muc_log%2f<yymmdd>`.
    let day = files
        .iter()
        .find_map(|(p, _)| p.split('/').find_map(|c| c.strip_prefix("muc_log%2f")))
        .unwrap_or_else(|| panic!("no log files: {:?}", files.iter().map(|(p, _)| p).collect::<Vec<_>>()));
    let today = format!("20{}-{}-{}", &day[0..2], &day[2..4], &day[4..6]);
    let mut pages = Vec::new();
    for path in [
        "/muc_log/".to_owned(),
        "/muc_log/tavern/".to_owned(),
        format!("/muc_log/tavern/{today}/"),
        "/muc_log/crypt/".to_owned(),
        "/muc_log/quiet/".to_owned(),
        "/muc_log/nowhere/".to_owned(),
    ] {
        let r = get(s.http_port, &path).await;
        pages.push((path, r.status, r.body));
    }
    for c in [romeo, juliet, mercutio] {
        c.close().await;
    }
    Found { files, pages }
}

/// What stock writes and serves.
fn check_muc_log(f: &Found, context: &str) {
    let all = |what: &str| {
        format!(
            "{context}: {what}\n{}",
            f.normalised().iter().map(|(h, c)| format!("== {h}\n{c}\n")).collect::<String>()
        )
    };
    // The tavern's day file: joins (but not the owner's, made before logging was on),
    // messages and the subject with the sender's room JID, the kick as the owner's
    // request, the leave.
    let tavern = f.file("/tavern.dat").unwrap_or_else(|| panic!("{}", all("no tavern.dat")));
    let entries: Vec<String> = log_entries(tavern).iter().map(|e| normalise(e)).collect();
    let want = [
        "<presence from='tavern@conference.localhost/Juliet' xml:lang='en'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        "<presence from='tavern@conference.localhost/Mercutio' xml:lang='en'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
        "<message from='tavern@conference.localhost/Romeo' id='m1' type='groupchat' xml:lang='en'><body>Good morrow &amp; welcome</body></message>",
        "<message from='tavern@conference.localhost/Juliet' id='m2' type='groupchat' xml:lang='en'><body>/me waves</body></message>",
        "<message from='tavern@conference.localhost/Juliet' id='m3' type='groupchat' xml:lang='en'><subject>Ale tonight</subject></message>",
        "<message from='tavern@conference.localhost/Mercutio' id='m4' type='groupchat' xml:lang='en'><body>A plague o' both your houses</body></message>",
        "<iq id='t4' to='tavern@conference.localhost/Mercutio' type='set' xml:lang='en'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='Mercutio' role='none'><reason>Brawling</reason></item></query></iq>",
        "<presence from='tavern@conference.localhost/Juliet' type='unavailable' xml:lang='en'/>",
    ]
    .map(|e| format!("<stanza time='<time>'>{e}</stanza>"));
    assert_eq!(entries, want, "{}", all("tavern's log"));
    // Nothing of the hidden room, nor of the room without logging.
    assert!(f.file("/crypt.dat").is_none() && f.file("/quiet.dat").is_none(), "{}", all("logged too much"));

    // The room list: the logged room only.
    let (status, list) = f.page("/muc_log/");
    assert_eq!(status, 200, "{}", all("room list"));
    assert!(list.contains("<a href=\"tavern/\">tavern</a>"), "{}", all("tavern not listed"));
    assert!(!list.contains("crypt") && !list.contains("quiet"), "{}", all("other rooms listed"));
    // The room's page: its JID and the room list (its calendar of days stays empty on
    // 0.12: the module looks for day folders `muc_log/<yymmdd>`, which 0.12's
    // datamanager writes as `muc_log%2f<yymmdd>`).
    let (status, room) = f.page("/muc_log/tavern/");
    assert_eq!(status, 200, "{}", all("tavern's page"));
    assert!(
        room.contains("<div id=\"roomjid\">tavern@conference.localhost</div>"),
        "{}",
        all("tavern's page")
    );
    assert!(
        room.contains("<div id=\"roomList\"><a href=\"../tavern/\">tavern</a>"),
        "{}",
        all("tavern's page")
    );
    // The day: what was said, with joins, the subject, the kick and its reason, the leave.
    let day_path = f
        .pages
        .iter()
        .map(|(p, _, _)| p.as_str())
        .find(|p| p.starts_with("/muc_log/tavern/20"))
        .unwrap_or("?");
    let (status, day) = f.page(day_path);
    assert_eq!(status, 200, "{}", all("tavern's day"));
    let lines: Vec<&str> = [
        "*** Juliet has joined the room",
        "*** Mercutio has joined the room",
        "<span class=\"muc_msg_nick\">&lt;Romeo&gt;</span> Good morrow & welcome<br />",
        "<span class=\"muc_msg_me\">*Juliet waves</span>",
        "*** Juliet changed the title to \"Ale tonight\"",
        "<span class=\"muc_msg_nick\">&lt;Mercutio&gt;</span> A plague o' both your houses<br />",
        "*** Mercutio got kicked, the reason was \"Brawling\"",
        "*** Juliet has left the room",
    ]
    .to_vec();
    in_order(day, &lines, &|w| all(&format!("the day's page {w}")));
    // Hidden or unlogged rooms have no logs; unknown rooms do not exist.
    for (path, reason) in [
        ("/muc_log/crypt/", "404 Not Found: There&apos;re no logs for this room."),
        ("/muc_log/quiet/", "404 Not Found: There&apos;re no logs for this room."),
        ("/muc_log/nowhere/", "404 Not Found: Room doesn&apos;t exist."),
    ] {
        let (status, body) = f.page(path);
        assert_eq!((status, page_text(body).as_str()), (404, reason), "{}", all(path));
    }
}

/// mod_muc_log and mod_muc_log_http (0.12 only: not in 13's package).
#[tokio::test]
async fn muc_log_files_and_muc_log_http_pages() {
    let version = Version::V0_12;
    let mut found = Vec::new();
    for module in [Module::Stock, Module::Rs] {
        let s = start(version, module, &["muc_log", "muc_log_http"]).await;
        let f = muc_log_scenario(&s).await;
        check_log(&s.p, &format!("{} on {}", module.name(), version.label()));
        found.push(f);
    }
    check_muc_log(&found[0], "stock muc on 0.12");
    same_as_stock(&found[0], &found[1], "muc_log on 0.12");
}

/// muc_rs's files and pages are stock's, with times, dates and ids masked.
fn same_as_stock(stock: &Found, rs: &Found, context: &str) {
    let text = |f: &Found| f.normalised().iter().map(|(h, c)| format!("== {h}\n{c}\n")).collect::<String>();
    let (a, b) = (text(stock), text(rs));
    assert!(a == b, "{context}: muc_rs differs from stock:\n{}", first_difference(&a, &b));
}

// ---------------------------------------------------------------------------------------
// mod_http_muc_log (both versions' prosody-modules), on mod_muc_mam's archive

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// The value of the `muc#roominfo_logs` field of a room's disco#info, if any.
async fn logs_field(c: &mut Client, room: &str) -> Option<String> {
    let info = c
        .iq_ok(&format!(
            "<iq type='get' id='{{id}}' to='{}'><query xmlns='{NS_DISCO_INFO}'/></iq>",
            room_jid(room)
        ))
        .await;
    let form = info.get_child("query", NS_DISCO_INFO)?.get_child("x", NS_DATA)?;
    let field =
        form.children().find(|f| f.name() == "field" && f.attr("var") == Some("muc#roominfo_logs"))?;
    field.children().find(|v| v.name() == "value").map(|v| v.text())
}

/// tavern: public, open, named, described: messages, `/me`, a subject, a correction.
/// vault: public, members-only. locked: public, with a password. crypt: hidden.
async fn http_muc_log_scenario(s: &Server) -> (Found, Vec<(String, Option<String>)>) {
    let mut romeo = Client::connect(s, ROMEO).await;
    romeo
        .create(
            "tavern",
            "Romeo",
            &[
                ("roomname", "The Boar's Head"),
                ("roomdesc", "Ale & gossip"),
                ("publicroom", "1"),
                ("persistentroom", "1"),
            ],
        )
        .await;
    romeo
        .create("vault", "Romeo", &[("roomname", "The Vault"), ("publicroom", "1"), ("membersonly", "1")])
        .await;
    romeo
        .create(
            "locked",
            "Romeo",
            &[
                ("roomname", "Locked"),
                ("publicroom", "1"),
                ("passwordprotectedroom", "1"),
                ("roomsecret", "s3cret"),
            ],
        )
        .await;
    romeo.create("crypt", "Romeo", &[("roomname", "The Crypt"), ("publicroom", "0")]).await;

    let mut juliet = Client::connect(s, JULIET).await;
    juliet.join("tavern", "Juliet", None).await;
    romeo.say("tavern", "m1", "<body>Good morrow &amp; welcome</body>").await;
    juliet.say("tavern", "m2", "<body>/me waves</body>").await;
    juliet.say("tavern", "m3", "<subject>Ale tonight</subject>").await;
    juliet.say("tavern", "m4", "<body>Wherefore art thou</body>").await;
    juliet
        .say(
            "tavern",
            "m5",
            "<body>Where art thou</body><replace xmlns='urn:xmpp:message-correct:0' id='m4'/>",
        )
        .await;
    romeo.say("vault", "v1", "<body>Gold</body>").await;
    romeo.say("locked", "l1", "<body>Secrets</body>").await;
    romeo.say("crypt", "c1", "<body>Hidden words</body>").await;

    // What disco#info tells: the log's address, for open rooms only.
    let mut fields = Vec::new();
    for room in ["tavern", "vault", "locked", "crypt"] {
        let field = logs_field(&mut juliet, room).await;
        fields.push((room.to_owned(), field));
    }

    let latest = get(s.http_port, "/muc_log/tavern/latest").await;
    let today = latest.header("location").unwrap_or("2000-01-01").to_owned();
    let mut pages = vec![("/muc_log/tavern/latest".to_owned(), latest.status, format!("Location: {today}"))];
    for path in [
        "/muc_log/".to_owned(),
        "/muc_log/tavern/".to_owned(),
        format!("/muc_log/tavern/{today}"),
        "/muc_log/tavern".to_owned(),
        "/muc_log/vault/".to_owned(),
        format!("/muc_log/vault/{today}"),
        "/muc_log/locked/".to_owned(),
        "/muc_log/crypt/".to_owned(),
        format!("/muc_log/crypt/{today}"),
        "/muc_log/nowhere/".to_owned(),
    ] {
        let r = get(s.http_port, &path).await;
        let body = match r.header("location") {
            Some(l) => format!("Location: {l}"),
            None => r.body,
        };
        pages.push((path, r.status, body));
    }
    romeo.close().await;
    juliet.close().await;
    (Found { files: Vec::new(), pages }, fields)
}

/// Panics unless `text` has each of `parts`, in this order.
fn in_order(text: &str, parts: &[&str], what: &dyn Fn(&str) -> String) {
    let mut at = 0;
    for part in parts {
        match text[at..].find(part) {
            Some(i) => at += i + part.len(),
            None => panic!("{}", what(&format!("lacks (in this order) {part:?}"))),
        }
    }
}

/// What stock serves.
fn check_http_muc_log(f: &Found, fields: &[(String, Option<String>)], port: u16, context: &str) {
    let all = |what: &str| {
        format!(
            "{context}: {what}\ndisco#info fields: {fields:?}\n{}",
            f.normalised().iter().map(|(h, c)| format!("== {h}\n{c}\n")).collect::<String>()
        )
    };
    // disco#info gives the logs' address of the open rooms only, and it is served.
    let url = |room: &str| Some(format!("http://{MUC_DOMAIN}:{port}/muc_log/{room}/"));
    let want = [("tavern", url("tavern")), ("vault", None), ("locked", None), ("crypt", url("crypt"))]
        .map(|(r, u)| (r.to_owned(), u));
    assert_eq!(fields, &want[..], "{}", all("muc#roominfo_logs"));
    assert_eq!(f.page("/muc_log/tavern/").0, 200, "{}", all("/muc_log/tavern/"));

    // `latest` goes to today's page.
    let (status, location) = f.page("/muc_log/tavern/latest");
    assert_eq!((status, normalise(location).as_str()), (303, "Location: <date>"), "{}", all("latest"));
    let today = location.trim_start_matches("Location: ");
    let (status, tavern) = f.page("/muc_log/tavern");
    assert_eq!((status, tavern), (303, "Location: tavern/"), "{}", all("/muc_log/tavern"));

    // The room list: the rooms that are not hidden (those with a description first),
    // members-only and password-protected ones included.
    let (status, list) = f.page("/muc_log/");
    assert_eq!(status, 200, "{}", all("room list"));
    in_order(
        list,
        &[
            "<dt lang=\"en\" class=\"name\"><a href=\"tavern/\">The Boar&apos;s Head</a></dt>",
            "<dd lang=\"en\" class=\"description\">Ale &amp; gossip</dd>",
            "<a href=\"locked/\">Locked</a>",
            "<a href=\"vault/\">The Vault</a>",
        ],
        &|w| all(&format!("room list {w}")),
    );
    assert!(!list.contains("crypt"), "{}", all("the hidden room is listed"));

    // The calendar links today; the day has the messages, `/me` as a verb, the
    // correction (the first version struck out), and no subject change (the archive
    // does not keep it).
    let (status, calendar) = f.page("/muc_log/tavern/");
    assert_eq!(status, 200, "{}", all("calendar"));
    let day = today.rsplit('-').next().unwrap_or_default().trim_start_matches('0');
    assert!(
        calendar.contains(&format!("<a href=\"{today}\"><span>{day}</span></a>")),
        "{}",
        all("no link to today in the calendar")
    );
    let (status, log) = f.page(&format!("/muc_log/tavern/{today}"));
    assert_eq!(status, 200, "{}", all("today's page"));
    in_order(
        log,
        &[
            "<title>The Boar&apos;s Head - ",
            "<b class=\"nick\">Romeo</b>",
            "<p lang=\"en\" class=\"body\">Good morrow &amp; welcome</p>",
            "<b class=\"nick\">Juliet</b>\n<em class=\"verb\">waves</em>",
            "<li class=\"message groupchat edited\"",
            "<del>Wherefore art thou</del>",
            "<p lang=\"en\" class=\"body\">Where art thou <a href=\"#",
        ],
        &|w| all(&format!("today's page {w}")),
    );
    assert!(!log.contains("Ale tonight"), "{}", all("subject shown"));

    // Members-only and password-protected rooms: forbidden; unknown rooms: not found;
    // the hidden room's logs are served to whoever has the address.
    for (path, status) in [
        ("/muc_log/vault/".to_owned(), 403),
        (format!("/muc_log/vault/{today}"), 403),
        ("/muc_log/locked/".to_owned(), 403),
        ("/muc_log/nowhere/".to_owned(), 404),
        ("/muc_log/crypt/".to_owned(), 200),
    ] {
        assert_eq!(f.page(&path).0, status, "{}", all(&path));
    }
    let (status, crypt) = f.page(&format!("/muc_log/crypt/{today}"));
    assert_eq!(status, 200, "{}", all("the hidden room's day"));
    assert!(
        crypt.contains("<p lang=\"en\" class=\"body\">Hidden words</p>"),
        "{}",
        all("the hidden room's day")
    );
}

#[tokio::test]
async fn http_muc_log_pages() {
    for version in Version::ALL {
        let mut found = Vec::new();
        for module in [Module::Stock, Module::Rs] {
            let context = format!("{} on {}", module.name(), version.label());
            let s = start(version, module, &["muc_mam", "http_muc_log"]).await;
            let (f, fields) = http_muc_log_scenario(&s).await;
            check_log(&s.p, &context);
            if module == Module::Stock {
                check_http_muc_log(&f, &fields, s.http_port, &context);
            }
            let port = format!(":{}/", s.http_port);
            let fields: Vec<_> =
                fields.into_iter().map(|(r, u)| (r, u.map(|u| u.replace(&port, ":<port>/")))).collect();
            found.push((f, fields));
        }
        let context = format!("http_muc_log on {}", version.label());
        assert_eq!(found[0].1, found[1].1, "{context}: disco#info's muc#roominfo_logs, stock then muc_rs");
        same_as_stock(&found[0].0, &found[1].0, &context);
    }
}
