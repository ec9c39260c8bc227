//! The four scenarios, each run against one fresh server (Prosody or an ejabberd node):
//! connect the clients, set the scene (not measured), then measure the server's CPU, wall
//! time, memory and the load tool's own CPU over the scenario's work, and check that every
//! client got every stanza it should.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::client::{
    connect_many, groupchat_xml, join_xml, leave_xml, now_us, Client, Event, EventKind, Nick, Totals,
};
use super::server::{self_cpu, ProcSample, Target};
use muc_harness::{err, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    Join,
    Fanout,
    Rooms,
    Churn,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [Scenario::Join, Scenario::Fanout, Scenario::Rooms, Scenario::Churn];

    pub fn label(self) -> &'static str {
        match self {
            Scenario::Join => "join",
            Scenario::Fanout => "fanout",
            Scenario::Rooms => "rooms",
            Scenario::Churn => "churn",
        }
    }

    /// What "per unit" means in the CPU and memory figures.
    pub fn unit(self) -> &'static str {
        match self {
            Scenario::Join => "join",
            Scenario::Fanout => "delivery",
            Scenario::Rooms => "room",
            Scenario::Churn => "cycle",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.label() == s)
    }

    /// How many clients (`u0`, `u1`, ...) the scenario connects.
    pub fn clients(self, sizes: &Sizes) -> u32 {
        match self {
            Scenario::Join => sizes.join_n,
            Scenario::Fanout => sizes.fanout_n,
            Scenario::Rooms => sizes.rooms_clients.max(2) & !1,
            Scenario::Churn => sizes.churn_stay + sizes.churn_clients.max(1),
        }
    }
}

/// Sizes of the scenarios.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub join_n: u32,
    pub fanout_n: u32,
    pub senders: u32,
    pub messages: u32,
    pub body: usize,
    /// Messages in flight per sender (each waits for its echoes).
    pub sender_window: u32,
    pub rooms: u32,
    pub rooms_clients: u32,
    pub churn_cycles: u32,
    pub churn_stay: u32,
    pub churn_clients: u32,
    /// Joins (or join/leave cycles) in flight at once.
    pub window: usize,
    pub timeout: Duration,
}

impl Sizes {
    /// The scenarios, with half the messages and churn cycles of its counts (the
    /// per-unit figures depend on room sizes, not on how often the work is repeated) so
    /// that 5 repetitions × 2 GC settings fit in about a quarter of an hour on 2 cores.
    /// `--size messages=100 --size churn_cycles=2000` gives the counts.
    pub fn full() -> Sizes {
        Sizes {
            join_n: 500,
            fanout_n: 200,
            senders: 10,
            messages: 50,
            body: 100,
            sender_window: 1,
            rooms: 2000,
            rooms_clients: 200,
            churn_cycles: 1000,
            churn_stay: 50,
            churn_clients: 10,
            window: 10,
            timeout: Duration::from_secs(300),
        }
    }

    pub fn quick() -> Sizes {
        Sizes {
            join_n: 100,
            fanout_n: 50,
            senders: 5,
            messages: 20,
            rooms: 200,
            rooms_clients: 40,
            churn_cycles: 200,
            churn_stay: 20,
            churn_clients: 5,
            timeout: Duration::from_secs(60),
            ..Sizes::full()
        }
    }
}

/// The figures of one run.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub units: u64,
    pub deliveries: u64,
    pub cpu_s: f64,
    pub wall_s: f64,
    pub tool_cpu_s: f64,
    /// Latencies in µs (fan-out: send→receive at the observer; join-like: join→self-presence).
    pub latencies: Vec<u32>,
    /// Summed over a cluster's nodes.
    pub before: ProcSample,
    pub after: ProcSample,
    /// Each node's CPU seconds over the measured part.
    pub node_cpu_s: Vec<f64>,
    /// Memory in use after full GCs, before and after (many rooms only).
    pub heap: Option<(HeapSample, HeapSample)>,
    /// Deliveries of the scenario's messages that carried a stanza-id (fan-out only).
    pub stanza_ids: u64,
}

/// What tools/bench-floor/mod_bench_heap.lua reads after two full Lua GCs.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapSample {
    /// Bytes malloc holds in use: Lua's heap and any library's (muc_rs's Rust heap).
    pub in_use: u64,
    pub lua: u64,
}

struct Mark {
    at: Instant,
    proc: ProcSample,
    tool: f64,
    totals: [u64; 5],
    /// Each node's own sample (`proc` is their sum).
    nodes: Vec<ProcSample>,
}

pub struct Ctx {
    /// Every node's client address and pid (one but for a cluster): client `uN` connects
    /// to node `N mod nodes`; the probe and mod_bench_heap's signal go to the first.
    addrs: Vec<SocketAddr>,
    pids: Vec<i32>,
    totals: Arc<Totals>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    clients: Vec<Client>,
    deadline: Instant,
    /// Where mod_bench_heap writes its samples (Prosody only).
    heap_file: Option<PathBuf>,
}

impl Ctx {
    /// The start of the measured part: starts the probe (if any), then reads the counters.
    fn begin(&self, probe: &mut Option<&mut dyn Probe>) -> Result<Mark> {
        if let Some(p) = probe.as_mut() {
            p.start(self.pids[0]);
        }
        self.mark()
    }

    /// The end of the measured part: reads the counters, then stops the probe.
    fn finish(&self, probe: &mut Option<&mut dyn Probe>) -> Result<Mark> {
        let end = self.mark();
        if let Some(p) = probe.as_mut() {
            p.stop();
        }
        end
    }

    fn mark(&self) -> Result<Mark> {
        let nodes =
            self.pids.iter().map(|&pid| super::server::proc_sample(pid)).collect::<Result<Vec<_>>>()?;
        let proc = nodes.iter().fold(ProcSample::default(), |sum, n| ProcSample {
            cpu_s: sum.cpu_s + n.cpu_s,
            rss_kb: sum.rss_kb + n.rss_kb,
            hwm_kb: sum.hwm_kb + n.hwm_kb,
        });
        Ok(Mark { at: Instant::now(), proc, nodes, tool: self_cpu(), totals: self.totals.snapshot() })
    }

    fn measured(&self, start: &Mark, end: &Mark, units: u64, latencies: Vec<u32>) -> Measured {
        let d = |i: usize| end.totals[i] - start.totals[i];
        Measured {
            units,
            deliveries: d(0) + d(1) + d(2),
            cpu_s: end.proc.cpu_s - start.proc.cpu_s,
            wall_s: (end.at - start.at).as_secs_f64(),
            tool_cpu_s: end.tool - start.tool,
            latencies,
            before: start.proc,
            after: end.proc,
            node_cpu_s: end.nodes.iter().zip(&start.nodes).map(|(e, s)| e.cpu_s - s.cpu_s).collect(),
            heap: None,
            stanza_ids: 0,
        }
    }

    /// Has mod_bench_heap collect garbage and report the memory in use (on SIGUSR2, which
    /// Prosody turns into an event), and waits for its new sample.
    async fn heap_sample(&self, heap_file: &Path) -> Result<HeapSample> {
        let read = || -> Option<(u64, HeapSample)> {
            let text = std::fs::read_to_string(heap_file).ok()?;
            let mut f = text.split_whitespace().map(|v| v.parse::<u64>().ok());
            let (seq, in_use, lua) = (f.next()??, f.next()??, f.next()??);
            Some((seq, HeapSample { in_use, lua }))
        };
        let last = read().map_or(0, |(seq, _)| seq);
        // SAFETY: plain syscall on the pid of the Prosody we started.
        unsafe {
            libc::kill(self.pids[0], libc::SIGUSR2);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match read() {
                Some((seq, sample)) if seq > last => return Ok(sample),
                _ if Instant::now() > deadline => {
                    return Err(err!("no heap sample in {} (mod_bench_heap)", heap_file.display()))
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Connects clients `u<from>`..`u<to-1>`, at most 50 handshakes at a time.
    async fn connect(&mut self, count: u32) -> Result<()> {
        let from = self.clients.len() as u32;
        let got = connect_many(&self.addrs, from, count, &self.totals, &self.tx).await?;
        self.clients.extend(got);
        Ok(())
    }

    fn check_event(ev: Event) -> Result<Option<Event>> {
        match ev.kind {
            EventKind::Error(text) => Err(err!("u{} got an error: {text}", ev.client)),
            EventKind::Closed(why) => Err(err!("u{}: {why}", ev.client)),
            _ => Ok(Some(ev)),
        }
    }

    async fn next_event(&mut self) -> Result<Event> {
        loop {
            let ev = tokio::time::timeout_at(self.deadline.into(), self.rx.recv())
                .await
                .map_err(|_| err!("timed out waiting for the server"))?
                .ok_or_else(|| err!("event channel closed"))?;
            if let Some(ev) = Self::check_event(ev)? {
                return Ok(ev);
            }
        }
    }

    /// Waits until the totals satisfy `done`, failing on error stanzas, closed streams, or
    /// the deadline (then saying what was missing).
    async fn wait_totals(&mut self, what: &str, done: impl Fn(&[u64; 5]) -> bool) -> Result<()> {
        // Nothing arriving for this long while something is missing: it will not come.
        const STALL: Duration = Duration::from_secs(5);
        let mut last = (self.totals.snapshot(), Instant::now());
        loop {
            while let Ok(ev) = self.rx.try_recv() {
                Self::check_event(ev)?;
            }
            let t = self.totals.snapshot();
            if done(&t) {
                return Ok(());
            }
            if t != last.0 {
                last = (t, Instant::now());
            }
            if Instant::now() > self.deadline || last.1.elapsed() > STALL {
                return Err(err!(
                    "INCOMPLETE: stalled or timed out waiting for {what} (available {}, unavailable {}, messages {})",
                    t[0],
                    t[1],
                    t[2]
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Runs join/leave sequences with at most `window` in flight. Each step waits for the
    /// client's own presence (status 110) in the room. Steps with no client use one taken
    /// from `free` for the whole op. Returns the step latencies in µs.
    async fn run_ops(
        &mut self,
        ops: Vec<Vec<Step>>,
        window: usize,
        mut free: VecDeque<u32>,
    ) -> Result<Vec<u32>> {
        let mut ops = ops.into_iter().peekable();
        let mut pending: Vec<Vec<Step>> = Vec::new();
        // (client, room) → (op slot, next step index, client taken from `free`, started µs)
        let mut inflight: InFlight = HashMap::new();
        let mut latencies = Vec::new();
        let mut exhausted = false;
        loop {
            while inflight.len() < window && !exhausted {
                let needs_free = match ops.peek() {
                    Some(steps) => steps.iter().any(|s| s.client.is_none()),
                    None => {
                        exhausted = true;
                        break;
                    }
                };
                if needs_free && free.is_empty() {
                    break;
                }
                let steps = ops.next().expect("peeked");
                let taken = if needs_free { free.pop_front() } else { None };
                let slot = pending.len();
                pending.push(steps);
                let key = self.start_step(&pending[slot][0], taken).await?;
                if inflight.insert(key, (slot, 1, taken, now_us())).is_some() {
                    return Err(err!("two operations at once for u{} in room {}", key.0, key.1));
                }
            }
            if inflight.is_empty() && exhausted {
                return Ok(latencies);
            }
            let ev = self.next_event().await?;
            let EventKind::SelfPresence { room, left } = ev.kind else { continue };
            let key = (ev.client, room);
            let Some(&(slot, step, taken, started)) = inflight.get(&key) else { continue };
            if pending[slot][step - 1].leave != left {
                continue;
            }
            inflight.remove(&key);
            latencies.push((now_us() - started).min(u32::MAX as u64) as u32);
            if step < pending[slot].len() {
                let key = self.start_step(&pending[slot][step], taken).await?;
                if inflight.insert(key, (slot, step + 1, taken, now_us())).is_some() {
                    return Err(err!("two operations at once for u{} in room {}", key.0, key.1));
                }
            } else {
                pending[slot].clear();
                if let Some(c) = taken {
                    free.push_back(c);
                }
            }
        }
    }

    async fn start_step(&mut self, step: &Step, taken: Option<u32>) -> Result<(u32, u32)> {
        let client = step.client.or(taken).ok_or_else(|| err!("step without a client"))?;
        let xml = if step.leave { leave_xml(step.room, step.nick) } else { join_xml(step.room, step.nick) };
        self.clients[client as usize].send(&xml).await?;
        Ok((client, step.room))
    }
}

/// (client, room) → (op slot, next step index, client taken from `free`, started µs).
type InFlight = HashMap<(u32, u32), (usize, usize, Option<u32>, u64)>;

#[derive(Clone, Debug)]
struct Step {
    client: Option<u32>,
    room: u32,
    nick: Nick,
    leave: bool,
}

fn join(client: u32, room: u32, nick: Nick) -> Step {
    Step { client: Some(client), room, nick, leave: false }
}

/// Hooks for an external profiler around the measured part.
pub trait Probe {
    fn start(&mut self, pid: i32);
    fn stop(&mut self);
}

/// Runs `scenario` against `server`.
pub async fn run(
    scenario: Scenario,
    server: &Target,
    sizes: &Sizes,
    mut probe: Option<&mut dyn Probe>,
) -> Result<Measured> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut ctx = Ctx {
        addrs: server.nodes.iter().map(|(addr, _)| *addr).collect(),
        pids: server.nodes.iter().map(|(_, pid)| *pid).collect(),
        totals: Arc::new(Totals::default()),
        tx,
        rx,
        clients: Vec::new(),
        deadline: Instant::now() + sizes.timeout,
        heap_file: server.heap_file.clone(),
    };
    let settle = Duration::from_millis(300);
    match scenario {
        Scenario::Join => {
            let n = sizes.join_n;
            ctx.connect(n).await?;
            tokio::time::sleep(settle).await;
            let start = ctx.begin(&mut probe)?;
            let ops = (0..n).map(|i| vec![join(i, 0, Nick::n(i))]).collect();
            let lat = ctx.run_ops(ops, sizes.window, VecDeque::new()).await?;
            let a0 = start.totals[0];
            let want = n as u64 * n as u64;
            ctx.wait_totals("every occupant's presence at every client", |t| t[0] - a0 >= want).await?;
            let end = ctx.finish(&mut probe)?;
            for c in &ctx.clients {
                let r = c.received.lock().unwrap();
                let missing = (0..n).filter(|&j| !r.saw_available(0, Nick::n(j))).count();
                if missing > 0 || r.available != n as u64 {
                    return Err(err!(
                        "INCOMPLETE: u{} got {} presences, {missing} occupants missing (want {n})",
                        c.idx,
                        r.available
                    ));
                }
            }
            Ok(ctx.measured(&start, &end, n as u64, lat))
        }
        Scenario::Fanout => {
            let (n, s, m) = (sizes.fanout_n, sizes.senders.min(sizes.fanout_n), sizes.messages);
            ctx.connect(n).await?;
            let ops = (0..n).map(|i| vec![join(i, 0, Nick::n(i))]).collect();
            ctx.run_ops(ops, sizes.window, VecDeque::new()).await?;
            let want = n as u64 * n as u64;
            ctx.wait_totals("the room to settle", |t| t[0] >= want).await?;
            for i in 0..s {
                ctx.clients[i as usize].role.lock().unwrap().sender = Some(i);
            }
            let observer = n - 1;
            ctx.clients[observer as usize].role.lock().unwrap().observer = true;
            tokio::time::sleep(settle).await;
            let start = ctx.begin(&mut probe)?;
            let mut sent = vec![0u32; s as usize];
            for i in 0..s {
                for _ in 0..sizes.sender_window.min(m) {
                    let xml = groupchat_xml(0, i, sent[i as usize], sizes.body);
                    ctx.clients[i as usize].send(&xml).await?;
                    sent[i as usize] += 1;
                }
            }
            let mut echoed = 0u64;
            while echoed < s as u64 * m as u64 {
                let ev = ctx.next_event().await?;
                if let EventKind::Echo = ev.kind {
                    echoed += 1;
                    let i = ev.client as usize;
                    if sent[i] < m {
                        let xml = groupchat_xml(0, i as u32, sent[i], sizes.body);
                        ctx.clients[i].send(&xml).await?;
                        sent[i] += 1;
                    }
                }
            }
            let m0 = start.totals[2];
            let want = n as u64 * s as u64 * m as u64;
            ctx.wait_totals("every message at every occupant", |t| t[2] - m0 >= want).await?;
            let end = ctx.finish(&mut probe)?;
            for c in &ctx.clients {
                let r = c.received.lock().unwrap();
                let missing =
                    (0..s).flat_map(|i| (0..m).map(move |q| (i, q))).filter(|&(i, q)| !r.saw_message(i, q));
                let missing = missing.count();
                if missing > 0 || r.duplicates > 0 {
                    return Err(err!(
                        "INCOMPLETE: u{} missed {missing} of {} messages ({} duplicates)",
                        c.idx,
                        s * m,
                        r.duplicates
                    ));
                }
            }
            let lat = std::mem::take(&mut ctx.clients[observer as usize].received.lock().unwrap().latencies);
            let mut m = ctx.measured(&start, &end, want, lat);
            m.stanza_ids = ctx.totals.stanza_ids.load(Ordering::Relaxed);
            Ok(m)
        }
        Scenario::Rooms => {
            let (r, p) = (sizes.rooms, scenario.clients(sizes));
            ctx.connect(p).await?;
            tokio::time::sleep(settle).await;
            // Memory in use after full GCs: Prosody's mod_bench_heap (ejabberd has none).
            let heap_before = match &ctx.heap_file {
                Some(f) => Some(ctx.heap_sample(f).await?),
                None => None,
            };
            let start = ctx.begin(&mut probe)?;
            let pair = |k: u32| ((2 * k) % p, (2 * k + 1) % p);
            let ops = (0..r)
                .map(|k| {
                    let (a, b) = pair(k);
                    vec![join(a, k, Nick::n(a)), join(b, k, Nick::n(b))]
                })
                .collect();
            let lat = ctx.run_ops(ops, sizes.window, VecDeque::new()).await?;
            let a0 = start.totals[0];
            let want = 4 * r as u64;
            ctx.wait_totals("both occupants' presences in every room", |t| t[0] - a0 >= want).await?;
            let end = ctx.finish(&mut probe)?;
            let mut rooms_of = vec![Vec::new(); p as usize];
            for k in 0..r {
                let (a, b) = pair(k);
                rooms_of[a as usize].push((k, b));
                rooms_of[b as usize].push((k, a));
            }
            for c in &ctx.clients {
                let rec = c.received.lock().unwrap();
                for &(k, other) in &rooms_of[c.idx as usize] {
                    if !rec.saw_available(k, Nick::n(c.idx)) || !rec.saw_available(k, Nick::n(other)) {
                        return Err(err!("INCOMPLETE: u{} lacks a presence in room r{k}", c.idx));
                    }
                }
            }
            let mut m = ctx.measured(&start, &end, r as u64, lat);
            if let (Some(before), Some(f)) = (heap_before, &ctx.heap_file) {
                m.heap = Some((before, ctx.heap_sample(f).await?));
            }
            Ok(m)
        }
        Scenario::Churn => {
            let (stay, k, cycles) = (sizes.churn_stay, sizes.churn_clients.max(1), sizes.churn_cycles);
            ctx.connect(stay + k).await?;
            let ops = (0..stay).map(|i| vec![join(i, 0, Nick::n(i))]).collect();
            ctx.run_ops(ops, sizes.window, VecDeque::new()).await?;
            let want = stay as u64 * stay as u64;
            ctx.wait_totals("the room to settle", |t| t[0] >= want).await?;
            tokio::time::sleep(settle).await;
            let start = ctx.begin(&mut probe)?;
            for c in &ctx.clients[stay as usize..] {
                c.role.lock().unwrap().tracked = false;
            }
            let ops = (0..cycles)
                .map(|j| {
                    let nick = Nick::c(j);
                    vec![
                        Step { client: None, room: 0, nick, leave: false },
                        Step { client: None, room: 0, nick, leave: true },
                    ]
                })
                .collect();
            let free = (stay..stay + k).collect();
            let totals = ctx.totals.clone();
            let (ta0, tu0) = (
                totals.tracked_available.load(Ordering::Relaxed),
                totals.tracked_unavailable.load(Ordering::Relaxed),
            );
            let lat = ctx.run_ops(ops, k as usize, free).await?;
            let (cy, st) = (cycles as u64, stay as u64);
            // Stayers (tracked) see every churner come and go; churners also see each other.
            ctx.wait_totals("every churn presence at the stayers", |_| {
                totals.tracked_available.load(Ordering::Relaxed) - ta0 >= cy * st
                    && totals.tracked_unavailable.load(Ordering::Relaxed) - tu0 >= cy * st
            })
            .await?;
            let end = ctx.finish(&mut probe)?;
            let mut roster = 0;
            for c in &ctx.clients {
                let rec = c.received.lock().unwrap();
                if c.idx < stay {
                    let missing = (0..cycles)
                        .filter(|&j| !rec.saw_available(0, Nick::c(j)) || !rec.saw_unavailable(0, Nick::c(j)))
                        .count();
                    if missing > 0 {
                        return Err(err!(
                            "INCOMPLETE: u{} missed the join or leave of {missing} churners",
                            c.idx
                        ));
                    }
                } else {
                    roster += rec.available_n;
                }
            }
            // Each churner join shows the stayers (its own presence is what ended the step).
            if roster != cy * st {
                return Err(err!("INCOMPLETE: churners got {roster} stayer presences (want {})", cy * st));
            }
            Ok(ctx.measured(&start, &end, cy, lat))
        }
    }
}
