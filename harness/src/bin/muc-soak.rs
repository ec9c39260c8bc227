//! muc-soak: thousands of joins, messages, private messages, nick changes, presence updates
//! and leaves against a real Prosody, round after round, checking that every stanza arrives
//! exactly once, that no error stanza or traceback shows up, that every room is destroyed
//! once empty, and that Prosody's memory after a full Lua GC comes back to where it was
//! after a warm-up round.
//!
//! ```text
//! muc-soak [--plugin-dir build/soak/plugin] [--version 0.12|13] [--modules muc_rs,muc]
//!          [--rounds 20] [--warmup 1] [--clients 200] [--rooms 20] [--rooms-per-client 2]
//!          [--messages 2] [--max-growth-mb 3] [--max-growth-pct 10] [--max-lua-growth-kb 256]
//!          [--timeout 600]
//! ```
//!
//! Each module runs on its own fresh Prosody (memory storage, logs at warn), one after the
//! other, with the same clients and load; the figures are printed side by side. The load
//! client is the benchmark's (harness/src/bench/client.rs): it counts deliveries with byte
//! scans and records which (room, nick) presences and which (sender, seq) messages arrived.
//! A control client asks tools/soak/mod_soak_gc.lua for full Lua collections and reads
//! the room list with disco#items. Ends with `1 passed, 0 failed` or `0 passed, 1 failed`.

#[allow(dead_code)]
#[path = "../bench/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../bench/server.rs"]
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use client::{join_xml, leave_xml, room_jid, Client, Event, EventKind, Nick, Received, Totals};
use muc_harness::prosody::{repo_root, Install, ServerConfig, Version, DOMAIN, MUC_DOMAIN};
use muc_harness::xmpp::{ConnectOptions, Connection};
use muc_harness::{err, Result};
use server::{proc_sample, BenchServer, ProcSample};

const NS_SOAK: &str = "urn:muc-rs:soak";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// Sequence numbers of private messages start here (group messages use slot × M + k).
const PM_BASE: u32 = 1_000_000;

struct Cli {
    plugin_dir: PathBuf,
    soak_dir: PathBuf,
    version: Version,
    modules: Vec<String>,
    rounds: u32,
    warmup: u32,
    clients: u32,
    rooms: u32,
    rooms_per_client: u32,
    messages: u32,
    max_growth_kb: u64,
    max_growth_pct: f64,
    max_lua_growth_kb: f64,
    timeout: Duration,
}

fn usage() -> &'static str {
    "usage: muc-soak [--plugin-dir DIR] [--version 0.12|13] [--modules muc_rs,muc] [--rounds N] \
     [--warmup N] [--clients N] [--rooms N] [--rooms-per-client N] [--messages N] \
     [--max-growth-mb MB] [--max-growth-pct P] [--max-lua-growth-kb KB] [--timeout S]"
}

fn parse_cli() -> std::result::Result<Cli, String> {
    let root = repo_root();
    let mut cli = Cli {
        plugin_dir: root.join("build/soak/plugin"),
        soak_dir: root.join("tools/soak"),
        version: Version::V0_12,
        modules: vec!["muc_rs".into(), "muc".into()],
        rounds: 20,
        warmup: 1,
        clients: 200,
        rooms: 20,
        rooms_per_client: 2,
        messages: 2,
        max_growth_kb: 3 * 1024,
        max_growth_pct: 10.0,
        max_lua_growth_kb: 256.0,
        timeout: Duration::from_secs(600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value\n{}", usage()));
        let num = |v: String| v.parse::<u32>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--plugin-dir" => cli.plugin_dir = muc_harness::absolute_path(val()?),
            "--soak-dir" => cli.soak_dir = muc_harness::absolute_path(val()?),
            "--version" => cli.version = Version::parse(&val()?).ok_or("--version: 0.12 or 13")?,
            "--modules" => {
                cli.modules = val()?.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect();
                if cli.modules.is_empty() || cli.modules.iter().any(|m| m != "muc" && m != "muc_rs") {
                    return Err("--modules: muc_rs, muc or muc_rs,muc".into());
                }
            }
            "--rounds" => cli.rounds = num(val()?)?,
            "--warmup" => cli.warmup = num(val()?)?,
            "--clients" => cli.clients = num(val()?)?,
            "--rooms" => cli.rooms = num(val()?)?,
            "--rooms-per-client" => cli.rooms_per_client = num(val()?)?,
            "--messages" => cli.messages = num(val()?)?,
            "--max-growth-mb" => {
                let mb: f64 = val()?.parse().map_err(|e| format!("{a}: {e}"))?;
                cli.max_growth_kb = (mb * 1024.0) as u64;
            }
            "--max-growth-pct" => cli.max_growth_pct = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--max-lua-growth-kb" => {
                cli.max_lua_growth_kb = val()?.parse().map_err(|e| format!("{a}: {e}"))?
            }
            "--timeout" => cli.timeout = Duration::from_secs(num(val()?)? as u64),
            "-h" | "--help" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if cli.rounds == 0 || cli.warmup == 0 || cli.clients == 0 || cli.rooms == 0 || cli.rooms_per_client == 0 {
        return Err("--rounds, --warmup, --clients, --rooms and --rooms-per-client must be at least 1".into());
    }
    cli.rooms_per_client = cli.rooms_per_client.min(cli.rooms);
    Ok(cli)
}

/// Who is in which room. Client `i` joins rooms `(i + k·stride) mod R`, k < J, stride R/J:
/// with the defaults, 20 rooms of 20 occupants each, every client in two rooms.
struct Plan {
    rooms_of: Vec<Vec<u32>>,
    occupants: Vec<Vec<u32>>,
    messages: u32,
}

impl Plan {
    fn new(cli: &Cli) -> Plan {
        let (c, r, j) = (cli.clients, cli.rooms, cli.rooms_per_client);
        let stride = (r / j).max(1);
        let mut rooms_of = Vec::new();
        let mut occupants = vec![Vec::new(); r as usize];
        for i in 0..c {
            let mut mine: Vec<u32> = Vec::new();
            for k in 0..j {
                let room = (i + k * stride) % r;
                if !mine.contains(&room) {
                    mine.push(room);
                    occupants[room as usize].push(i);
                }
            }
            rooms_of.push(mine);
        }
        Plan { rooms_of, occupants, messages: cli.messages }
    }

    fn slot(&self, client: u32, room: u32) -> u32 {
        self.rooms_of[client as usize].iter().position(|&r| r == room).expect("client in room") as u32
    }

    fn live_rooms(&self) -> usize {
        self.occupants.iter().filter(|o| !o.is_empty()).count()
    }

    fn joins(&self) -> u64 {
        self.occupants.iter().map(|o| o.len() as u64).sum()
    }

    /// The occupant after `client` in `room`, to whom it sends a private message.
    fn next_in(&self, room: u32, client: u32) -> Option<u32> {
        let occ = &self.occupants[room as usize];
        if occ.len() < 2 {
            return None;
        }
        let at = occ.iter().position(|&c| c == client)?;
        Some(occ[(at + 1) % occ.len()])
    }

    fn prev_in(&self, room: u32, client: u32) -> Option<u32> {
        let occ = &self.occupants[room as usize];
        if occ.len() < 2 {
            return None;
        }
        let at = occ.iter().position(|&c| c == client)?;
        Some(occ[(at + occ.len() - 1) % occ.len()])
    }

    /// Expected totals per phase: [available, unavailable, marked messages, other messages].
    fn expect(&self, phase: Phase) -> [u64; 4] {
        let mut t = [0u64; 4];
        for occ in &self.occupants {
            let n = occ.len() as u64;
            match phase {
                // Each joiner sees those present and itself; those present see it: n² in all,
                // plus the room subject (an empty one) to each joiner.
                Phase::Join => {
                    t[0] += n * n;
                    t[3] += n;
                }
                Phase::Status => t[0] += n * n,
                Phase::Groupchat => t[2] += n * n * self.messages as u64,
                Phase::Private => t[2] += if n >= 2 { n } else { 0 },
                // Unavailable (303) from the old nick and available from the new, to all.
                Phase::Nick => {
                    t[0] += n * n;
                    t[1] += n * n;
                }
                // The k-th to leave is seen by the n-k+1 still there (itself included).
                Phase::Leave => t[1] += n * (n + 1) / 2,
            }
        }
        t
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Join,
    Status,
    Groupchat,
    Private,
    Nick,
    Leave,
}

impl Phase {
    const ALL: [Phase; 6] =
        [Phase::Join, Phase::Status, Phase::Groupchat, Phase::Private, Phase::Nick, Phase::Leave];

    fn label(self) -> &'static str {
        match self {
            Phase::Join => "joins",
            Phase::Status => "presence updates",
            Phase::Groupchat => "group messages",
            Phase::Private => "private messages",
            Phase::Nick => "nick changes",
            Phase::Leave => "leaves",
        }
    }
}

/// Marker body for a private message (the load client counts it like a group message).
fn private_xml(room: u32, to: Nick, sender: u32, seq: u32) -> String {
    format!(
        "<message to='{}/{to}' type='chat' id='p{sender}.{seq}'><body>~bm{sender}.{seq}.{}~ psst</body></message>",
        room_jid(room),
        client::now_us()
    )
}

fn status_xml(room: u32, nick: Nick, round: u32) -> String {
    format!(
        "<presence to='{}/{nick}'><show>away</show><status>round {round}</status></presence>",
        room_jid(room)
    )
}

/// A nick change (XEP-0045 §7.6): plain presence to the new nick. (With the MUC `<x/>`,
/// as in a join, both modules also resend the occupant list and the subject.)
fn nick_xml(room: u32, nick: Nick) -> String {
    format!("<presence to='{}/{nick}'/>", room_jid(room))
}

fn groupchat_xml(room: u32, sender: u32, seq: u32) -> String {
    client::groupchat_xml(room, sender, seq, 60)
}

/// Figures of one round.
#[derive(Clone, Debug, Default)]
struct Round {
    wall_s: f64,
    cpu_s: f64,
    deliveries: u64,
    /// After the round and a full GC.
    proc: ProcSample,
    lua_kb: f64,
    /// Lua heap before that GC (garbage included).
    lua_before_kb: f64,
    /// Lua heap (after a full GC) and RSS while every room is full, after the messages.
    full_lua_kb: f64,
    full_rss_kb: u64,
}

/// Figures of one module's run.
#[derive(Default)]
struct Outcome {
    module: String,
    warmup: Vec<Round>,
    rounds: Vec<Round>,
    baseline: ProcSample,
    baseline_lua_kb: f64,
    /// RSS after connecting the clients, before any room existed.
    connected_rss_kb: u64,
    peak_rss_kb: u64,
    sent: u64,
    joins: u64,
    warn_lines: Vec<String>,
    failures: Vec<String>,
}

struct Soak<'a> {
    plan: &'a Plan,
    pid: i32,
    totals: Arc<Totals>,
    rx: mpsc::UnboundedReceiver<Event>,
    clients: Vec<Client>,
    ctl: Connection,
    ctl_seq: u64,
    deadline: Instant,
    sent: u64,
}

impl Soak<'_> {
    fn counts(&self) -> [u64; 4] {
        let s = self.totals.snapshot();
        [s[0], s[1], s[2], s[3]]
    }

    fn drain_events(&mut self) -> Result<()> {
        while let Ok(ev) = self.rx.try_recv() {
            match ev.kind {
                EventKind::Error(text) => {
                    return Err(err!("LOST: u{} got an error stanza: {text}", ev.client))
                }
                EventKind::Closed(why) => return Err(err!("LOST: u{}'s stream ended: {why}", ev.client)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Sends each client's stanzas in one write.
    async fn send_all(&mut self, per_client: Vec<String>, stanzas: u64) -> Result<()> {
        for (i, xml) in per_client.into_iter().enumerate() {
            if !xml.is_empty() {
                self.clients[i].send(&xml).await?;
            }
        }
        self.sent += stanzas;
        Ok(())
    }

    /// Waits until every count reaches `want`; fails on an error stanza, a closed stream, a
    /// stall (nothing new for 10 s while something is missing) or the deadline.
    async fn wait_for(&mut self, what: &str, want: [u64; 4]) -> Result<()> {
        const STALL: Duration = Duration::from_secs(10);
        let mut last = (self.counts(), Instant::now());
        loop {
            self.drain_events()?;
            let t = self.counts();
            if t.iter().zip(want.iter()).all(|(got, want)| got >= want) {
                return Ok(());
            }
            if t != last.0 {
                last = (t, Instant::now());
            }
            if Instant::now() > self.deadline || last.1.elapsed() > STALL {
                return Err(err!(
                    "LOST: stalled waiting for {what}: available {}/{}, unavailable {}/{}, messages {}/{}, other messages {}/{}",
                    t[0],
                    want[0],
                    t[1],
                    want[1],
                    t[2],
                    want[2],
                    t[3],
                    want[3]
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn ctl_iq(&mut self, to: &str, payload: &str) -> Result<minidom::Element> {
        self.ctl_seq += 1;
        let id = format!("soak{}", self.ctl_seq);
        self.ctl.send_raw(&format!("<iq type='get' to='{to}' id='{id}'>{payload}</iq>")).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let el = self
                .ctl
                .next_stanza(deadline)
                .await?
                .ok_or_else(|| err!("no answer from {to} to {payload}"))?;
            if el.name() == "iq" && el.attr("id") == Some(id.as_str()) {
                if el.attr("type") != Some("result") {
                    return Err(err!("{to} answered {payload} with {}", muc_harness::xml::to_string(&el)));
                }
                return Ok(el);
            }
        }
    }

    /// Two full Lua collections in Prosody; (heap before, heap after) in KiB.
    async fn gc(&mut self) -> Result<(f64, f64)> {
        let el = self.ctl_iq(DOMAIN, &format!("<gc xmlns='{NS_SOAK}'/>")).await?;
        let gc = el.get_child("gc", NS_SOAK).ok_or_else(|| err!("GC reply without <gc/>"))?;
        let kb = |a: &str| gc.attr(a).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
        Ok((kb("before"), kb("after")))
    }

    async fn room_count(&mut self) -> Result<usize> {
        let el = self.ctl_iq(MUC_DOMAIN, &format!("<query xmlns='{NS_DISCO_ITEMS}'/>")).await?;
        let q =
            el.get_child("query", NS_DISCO_ITEMS).ok_or_else(|| err!("disco#items reply without query"))?;
        Ok(q.children().filter(|c| c.name() == "item").count())
    }

    /// Full GC, then Prosody's CPU and memory.
    async fn settle_and_sample(&mut self) -> Result<(ProcSample, f64, f64)> {
        let (before, after) = self.gc().await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok((proc_sample(self.pid)?, before, after))
    }

    async fn round(&mut self, round: u32) -> Result<Round> {
        let plan = self.plan;
        let m = plan.messages;
        for c in &self.clients {
            *c.received.lock().unwrap() = Received::default();
        }
        let start_counts = self.counts();
        let start_proc = proc_sample(self.pid)?;
        let started = Instant::now();
        let mut want = start_counts;
        let mut full = (0.0, 0);
        let n_clients = self.clients.len();
        for phase in Phase::ALL {
            let mut per_client = vec![String::new(); n_clients];
            let mut stanzas = 0u64;
            for (i, rooms) in plan.rooms_of.iter().enumerate() {
                let i = i as u32;
                let out = &mut per_client[i as usize];
                for (slot, &room) in rooms.iter().enumerate() {
                    let slot = slot as u32;
                    match phase {
                        Phase::Join => out.push_str(&join_xml(room, Nick::n(i))),
                        Phase::Status => out.push_str(&status_xml(room, Nick::n(i), round)),
                        Phase::Groupchat => {
                            for k in 0..m {
                                out.push_str(&groupchat_xml(room, i, slot * m + k));
                            }
                            stanzas += m as u64 - 1;
                        }
                        Phase::Private => match plan.next_in(room, i) {
                            Some(to) => out.push_str(&private_xml(room, Nick::n(to), i, PM_BASE + slot)),
                            None => continue,
                        },
                        Phase::Nick => out.push_str(&nick_xml(room, Nick::c(i))),
                        Phase::Leave => out.push_str(&leave_xml(room, Nick::c(i))),
                    }
                    stanzas += 1;
                }
            }
            self.send_all(per_client, stanzas).await?;
            let add = plan.expect(phase);
            for (w, a) in want.iter_mut().zip(add) {
                *w += a;
            }
            self.wait_for(phase.label(), want).await?;
            if phase == Phase::Private {
                let (proc, _, lua) = self.settle_and_sample().await?;
                full = (lua, proc.rss_kb);
            }
            if phase == Phase::Join {
                let rooms = self.room_count().await?;
                if rooms != plan.live_rooms() {
                    return Err(err!(
                        "LOST: {rooms} rooms listed after the joins, want {}",
                        plan.live_rooms()
                    ));
                }
            }
        }
        // Anything late (duplicates, extra stanzas) has arrived once the server answers a
        // ping from the control client and a moment has passed.
        self.ctl.sync(Duration::from_secs(30)).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.drain_events()?;
        let got = self.counts();
        let wall_s = started.elapsed().as_secs_f64();
        let end_cpu = proc_sample(self.pid)?.cpu_s;
        if got != want {
            let d = |i: usize| got[i] as i64 - want[i] as i64;
            return Err(err!(
                "LOST: round {round} counts differ from the expected ones: available {:+}, unavailable {:+}, \
                 messages {:+}, other messages {:+}",
                d(0),
                d(1),
                d(2),
                d(3)
            ));
        }
        self.check_each_client(round)?;
        let rooms = self.room_count().await?;
        if rooms != 0 {
            return Err(err!("LOST: {rooms} rooms still listed after everyone left (round {round})"));
        }
        let (proc, lua_before_kb, lua_kb) = self.settle_and_sample().await?;
        let deliveries = got.iter().zip(start_counts).map(|(g, s)| g - s).sum();
        Ok(Round {
            wall_s,
            cpu_s: end_cpu - start_proc.cpu_s,
            deliveries,
            proc,
            lua_kb,
            lua_before_kb,
            full_lua_kb: full.0,
            full_rss_kb: full.1,
        })
    }

    /// Every client saw each co-occupant join, change nick and (before it) the ones it must,
    /// got every group message of its rooms and its private messages, each exactly once.
    fn check_each_client(&self, round: u32) -> Result<()> {
        let plan = self.plan;
        let m = plan.messages;
        for c in &self.clients {
            let i = c.idx;
            let r = c.received.lock().unwrap();
            let mut want_marked = 0u64;
            for &room in &plan.rooms_of[i as usize] {
                for &j in &plan.occupants[room as usize] {
                    if !r.saw_available(room, Nick::n(j)) {
                        return Err(err!("LOST: u{i} never saw u{j} join r{room} (round {round})"));
                    }
                    if !r.saw_unavailable(room, Nick::n(j)) || !r.saw_available(room, Nick::c(j)) {
                        return Err(err!("LOST: u{i} missed u{j}'s nick change in r{room} (round {round})"));
                    }
                    let slot = plan.slot(j, room);
                    for k in 0..m {
                        if !r.saw_message(j, slot * m + k) {
                            return Err(err!(
                                "LOST: u{i} missed group message {k} of u{j} in r{room} (round {round})"
                            ));
                        }
                    }
                    want_marked += m as u64;
                }
                if !r.saw_unavailable(room, Nick::c(i)) {
                    return Err(err!("LOST: u{i} got no reply to its leave of r{room} (round {round})"));
                }
                if let Some(from) = plan.prev_in(room, i) {
                    if !r.saw_message(from, PM_BASE + plan.slot(from, room)) {
                        return Err(err!("LOST: u{i} missed the private message of u{from} in r{room}"));
                    }
                    want_marked += 1;
                }
            }
            if r.duplicates > 0 || r.marked.len() as u64 != want_marked || !r.errors.is_empty() {
                return Err(err!(
                    "LOST: u{i} got {} distinct messages (want {want_marked}), {} duplicates, {} errors (round {round})",
                    r.marked.len(),
                    r.duplicates,
                    r.errors.len()
                ));
            }
        }
        Ok(())
    }
}

/// Log lines that fail the run (tracebacks and anything at error level), and warnings.
fn log_failures(log: &str) -> (Vec<String>, Vec<String>) {
    let mut bad = Vec::new();
    let mut warns = Vec::new();
    for line in log.lines() {
        let level = line.split('\t').nth(1).map(str::trim);
        if line.to_ascii_lowercase().contains("traceback") || level == Some("error") {
            bad.push(line.to_owned());
        } else if level == Some("warn") {
            warns.push(line.to_owned());
        }
    }
    (bad, warns)
}

async fn run_module(cli: &Cli, install: &Install, plan: &Plan, module: &str) -> Outcome {
    let mut out = Outcome { module: module.to_owned(), ..Default::default() };
    let config = ServerConfig {
        muc_module: module.to_owned(),
        plugin_paths: vec![cli.plugin_dir.clone(), cli.soak_dir.clone()],
        global_extra: Vec::new(),
        // The last two lines go back into the VirtualHost's section and add the GC helper
        // there (a host's modules_enabled adds to the global list; a second global one
        // would draw a "Duplicate option" warning).
        component_extra: vec![
            "muc_room_locking = false".into(),
            "muc_room_default_public = true".into(),
            format!("VirtualHost \"{DOMAIN}\""),
            "modules_enabled = { \"soak_gc\" }".into(),
        ],
        storage: "memory".into(),
        debug_log: false,
    };
    let server = match BenchServer::start_with(install, config).await {
        Ok(s) => s,
        Err(e) => {
            out.failures.push(format!("cannot start Prosody: {e}"));
            return out;
        }
    };
    let result = drive(cli, &server, plan, &mut out).await;
    if let Err(e) = result {
        out.failures.push(e.to_string());
    }
    let (bad, warns) = log_failures(&server.prosody.read_log());
    out.warn_lines = warns;
    if !bad.is_empty() {
        let shown: Vec<&str> = bad.iter().take(10).map(String::as_str).collect();
        out.failures.push(format!(
            "{} error/traceback lines in Prosody's log:\n  {}",
            bad.len(),
            shown.join("\n  ")
        ));
    }
    server.stop().await;
    out
}

async fn drive(cli: &Cli, server: &BenchServer, plan: &Plan, out: &mut Outcome) -> Result<()> {
    let addr = server.prosody.c2s_addr();
    let totals = Arc::new(Totals::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let clients = client::connect_many(&[addr], 0, cli.clients, &totals, &tx).await?;
    let ctl = Connection::connect(&ConnectOptions {
        addr,
        jid: format!("soakctl@{DOMAIN}"),
        password: "pw".into(),
        resource: Some("ctl".into()),
        timeout: Duration::from_secs(30),
        record_traffic: false,
    })
    .await?;
    let mut soak = Soak {
        plan,
        pid: server.pid,
        totals,
        rx,
        clients,
        ctl,
        ctl_seq: 0,
        deadline: Instant::now() + cli.timeout,
        sent: 0,
    };
    let (connected, _, _) = soak.settle_and_sample().await?;
    out.connected_rss_kb = connected.rss_kb;
    let total = cli.warmup + cli.rounds;
    for n in 0..total {
        let r = soak.round(n).await.map_err(|e| err!("round {}: {e}", n + 1))?;
        let warm = n < cli.warmup;
        eprintln!(
            "  {} {:>3}/{}: {:>6.2} s, Prosody CPU {:>5.2} s, {:>7} stanzas delivered, RSS {:>7.2} MiB, Lua heap {:>6.0} KiB ({:.0} before GC){}",
            module_label(&out.module),
            n + 1,
            total,
            r.wall_s,
            r.cpu_s,
            r.deliveries,
            r.proc.rss_kb as f64 / 1024.0,
            r.lua_kb,
            r.lua_before_kb,
            if warm { " (warm-up)" } else { "" }
        );
        if warm {
            out.baseline = r.proc;
            out.baseline_lua_kb = r.lua_kb;
            out.warmup.push(r);
        } else {
            out.rounds.push(r);
        }
    }
    out.sent = soak.sent;
    out.joins = plan.joins() * total as u64;
    out.peak_rss_kb = proc_sample(server.pid)?.hwm_kb;
    Ok(())
}

fn module_label(module: &str) -> &str {
    match module {
        "muc" => "stock",
        other => other,
    }
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Memory verdict: growth of RSS and of the Lua heap, final (after the last round and GC)
/// against the baseline (after the warm-up round and GC).
fn memory_failures(cli: &Cli, o: &Outcome) -> Vec<String> {
    let mut f = Vec::new();
    let Some(last) = o.rounds.last() else { return f };
    let growth = last.proc.rss_kb as i64 - o.baseline.rss_kb as i64;
    let limit = cli.max_growth_kb.max((o.baseline.rss_kb as f64 * cli.max_growth_pct / 100.0) as u64);
    if growth > limit as i64 {
        f.push(format!(
            "MEMORY: RSS grew by {:.2} MiB over the baseline of {:.2} MiB (limit {:.2} MiB)",
            growth as f64 / 1024.0,
            mib(o.baseline.rss_kb),
            mib(limit)
        ));
    }
    let lua = last.lua_kb - o.baseline_lua_kb;
    if lua > cli.max_lua_growth_kb {
        f.push(format!(
            "MEMORY: the Lua heap grew by {lua:.0} KiB over the baseline of {:.0} KiB (limit {:.0} KiB)",
            o.baseline_lua_kb, cli.max_lua_growth_kb
        ));
    }
    f
}

fn print_report(cli: &Cli, outcomes: &[Outcome]) {
    let labels: Vec<&str> = outcomes.iter().map(|o| module_label(&o.module)).collect();
    println!();
    println!(
        "== soak: Prosody {}, {} rounds after {} warm-up, {} clients, {} rooms, {} rooms per client, {} messages per occupant and room ==",
        cli.version.label(),
        cli.rounds,
        cli.warmup,
        cli.clients,
        cli.rooms,
        cli.rooms_per_client,
        cli.messages
    );
    // Per-round RSS and Lua heap after GC, modules side by side.
    let mut head = format!("{:>6}", "round");
    for l in &labels {
        head.push_str(&format!(
            " {:>14} {:>14} {:>9}",
            format!("{l} RSS MiB"),
            format!("{l} Lua KiB"),
            "CPU s"
        ));
    }
    println!("{head}");
    let rows = outcomes.iter().map(|o| o.warmup.len() + o.rounds.len()).max().unwrap_or(0);
    for n in 0..rows {
        let mut line = format!(
            "{:>6}",
            if n < cli.warmup as usize {
                format!("w{}", n + 1)
            } else {
                (n + 1 - cli.warmup as usize).to_string()
            }
        );
        for o in outcomes {
            let r = o.warmup.iter().chain(o.rounds.iter()).nth(n);
            match r {
                Some(r) => line.push_str(&format!(
                    " {:>14.2} {:>14.0} {:>9.2}",
                    mib(r.proc.rss_kb),
                    r.lua_kb,
                    r.cpu_s
                )),
                None => line.push_str(&format!(" {:>14} {:>14} {:>9}", "-", "-", "-")),
            }
        }
        println!("{line}");
    }
    println!();
    let mut head = format!("{:<40}", "figure");
    for l in &labels {
        head.push_str(&format!(" {l:>16}"));
    }
    println!("{head}");
    let row = |name: &str, f: &dyn Fn(&Outcome) -> String| {
        let mut line = format!("{name:<40}");
        for o in outcomes {
            line.push_str(&format!(" {:>16}", if o.rounds.is_empty() { "-".into() } else { f(o) }));
        }
        println!("{line}");
    };
    let last = |o: &Outcome| o.rounds.last().cloned().unwrap_or_default();
    let growth = |o: &Outcome| last(o).proc.rss_kb as i64 - o.baseline.rss_kb as i64;
    let cpu = |o: &Outcome| o.rounds.iter().map(|r| r.cpu_s).sum::<f64>();
    let del = |o: &Outcome| o.rounds.iter().map(|r| r.deliveries).sum::<u64>();
    row("RSS with clients connected, no rooms MiB", &|o| format!("{:.2}", mib(o.connected_rss_kb)));
    row("baseline RSS (after warm-up + GC) MiB", &|o| format!("{:.2}", mib(o.baseline.rss_kb)));
    row("final RSS (after last round + GC) MiB", &|o| format!("{:.2}", mib(last(o).proc.rss_kb)));
    row("RSS growth MiB", &|o| format!("{:+.2}", growth(o) as f64 / 1024.0));
    row("RSS growth %", &|o| format!("{:+.2}", growth(o) as f64 * 100.0 / o.baseline.rss_kb.max(1) as f64));
    row("max RSS after GC over rounds MiB", &|o| {
        format!("{:.2}", mib(o.rounds.iter().map(|r| r.proc.rss_kb).max().unwrap_or(0)))
    });
    row("peak RSS (VmHWM) MiB", &|o| format!("{:.2}", mib(o.peak_rss_kb)));
    row("Lua heap with rooms full - after, KiB", &|o| {
        let n = o.rounds.len() as f64;
        format!("{:.0}", o.rounds.iter().map(|r| r.full_lua_kb - r.lua_kb).sum::<f64>() / n)
    });
    row("RSS with rooms full - after, MiB", &|o| {
        let n = o.rounds.len() as f64;
        format!(
            "{:.2}",
            o.rounds.iter().map(|r| r.full_rss_kb as f64 - r.proc.rss_kb as f64).sum::<f64>() / n / 1024.0
        )
    });
    row("baseline Lua heap KiB", &|o| format!("{:.0}", o.baseline_lua_kb));
    row("final Lua heap KiB", &|o| format!("{:.0}", last(o).lua_kb));
    row("Lua heap growth KiB", &|o| format!("{:+.0}", last(o).lua_kb - o.baseline_lua_kb));
    row("Prosody CPU over the rounds s", &|o| format!("{:.2}", cpu(o)));
    row("wall time over the rounds s", &|o| format!("{:.2}", o.rounds.iter().map(|r| r.wall_s).sum::<f64>()));
    row("stanzas delivered (rounds)", &|o| del(o).to_string());
    row("Prosody CPU µs per delivery", &|o| format!("{:.1}", cpu(o) * 1e6 / del(o).max(1) as f64));
    row("stanzas delivered (incl. warm-up)", &|o| {
        (del(o) + o.warmup.iter().map(|r| r.deliveries).sum::<u64>()).to_string()
    });
    row("stanzas sent by clients (incl. warm-up)", &|o| o.sent.to_string());
    row("joins (incl. warm-up)", &|o| o.joins.to_string());
    row("warn lines in Prosody's log", &|o| o.warn_lines.len().to_string());
    for o in outcomes {
        for w in o.warn_lines.iter().take(5) {
            println!("  {} warns: {w}", module_label(&o.module));
        }
    }
}

fn main() -> ExitCode {
    muc_harness::run_tool(parse_cli, run)
}

async fn run(cli: Cli) -> ExitCode {
    if cli.modules.iter().any(|m| m == "muc_rs") && !cli.plugin_dir.join("muc_rs.so").is_file() {
        eprintln!("muc-soak: no muc_rs.so in {} (make soak assembles it)", cli.plugin_dir.display());
        return ExitCode::from(2);
    }
    if !cli.soak_dir.join("mod_soak_gc.lua").is_file() {
        eprintln!("muc-soak: no mod_soak_gc.lua in {}", cli.soak_dir.display());
        return ExitCode::from(2);
    }
    let install = match Install::discover(cli.version) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("muc-soak: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = Plan::new(&cli);
    let began = Instant::now();
    let mut outcomes = Vec::new();
    for module in &cli.modules {
        eprintln!("muc-soak: {} on Prosody {}", module_label(module), cli.version.label());
        let mut o = run_module(&cli, &install, &plan, module).await;
        let mem = memory_failures(&cli, &o);
        o.failures.extend(mem);
        outcomes.push(o);
    }
    print_report(&cli, &outcomes);
    println!();
    let mut failed = false;
    for o in &outcomes {
        if o.failures.is_empty() {
            println!("{}: ok", module_label(&o.module));
        }
        for f in &o.failures {
            failed = true;
            println!("{}: FAIL {f}", module_label(&o.module));
        }
    }
    println!("soak took {:.0} s", began.elapsed().as_secs_f64());
    if failed {
        println!("0 passed, 1 failed");
        ExitCode::FAILURE
    } else {
        println!("1 passed, 0 failed");
        ExitCode::SUCCESS
    }
}
