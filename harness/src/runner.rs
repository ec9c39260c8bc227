//! Runs one parsed script against one freshly started Prosody and judges it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use minidom::Element;

use crate::matcher;
use crate::prosody::{self, indent, Install, Prosody, ServerConfig};
use crate::script::{self, Action, ActionKind, Script};
use crate::xml;
use crate::xmpp::{ConnectOptions, Connection, Traffic};
use crate::Result;

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How long `receives:` waits for a matching stanza.
    pub receive_timeout: Duration,
    /// How long `receives: nothing` watches.
    pub nothing_wait: Duration,
    /// Limit for connecting, disconnecting and each hidden sync ping.
    pub io_timeout: Duration,
    /// Limit for the whole script.
    pub run_timeout: Duration,
    /// Put the full traffic log into failure reports.
    pub verbose: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            receive_timeout: Duration::from_secs(3),
            nothing_wait: Duration::from_secs(1),
            io_timeout: Duration::from_secs(10),
            run_timeout: Duration::from_secs(180),
            verbose: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The script's expectations were not met (or Prosody's log shows a problem).
    Fail,
    /// The run could not be carried out: Prosody did not start, a client could not connect...
    Error,
}

#[derive(Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    pub duration: Duration,
    /// Why it failed; empty on a pass.
    pub report: String,
    /// Prosody's whole log and config, and the clients' traffic, for `--keep-logs`.
    pub prosody_log: String,
    pub prosody_config: String,
    pub traffic: String,
}

impl Outcome {
    /// A pass, until the run says otherwise.
    pub fn passed() -> Outcome {
        Outcome {
            verdict: Verdict::Pass,
            duration: Duration::ZERO,
            report: String::new(),
            prosody_log: String::new(),
            prosody_config: String::new(),
            traffic: String::new(),
        }
    }
}

/// Runs `script` on a fresh Prosody; script header tags add to `server`'s config. The
/// test modules of `spec/modules` (modules that drive a room the way other modules do,
/// through the mod_muc API) and the version's community modules come last in
/// `plugin_paths`, so that scripts can enable them.
pub async fn run(script: &Script, install: &Install, server: &ServerConfig, opts: &RunOptions) -> Outcome {
    let started = Instant::now();
    let mut config = server.clone();
    config.plugin_paths.push(prosody::repo_root().join("spec/modules"));
    config.plugin_paths.extend(install.community_modules());
    config.global_extra.extend(script.config_lines());
    config.component_extra.extend(script.component_config_lines());
    let mut outcome = Outcome::passed();

    let mut prosody = match Prosody::start(install, config).await {
        Ok(p) => p,
        Err(e) => {
            outcome.verdict = Verdict::Error;
            outcome.report = format!("Prosody did not start: {e}");
            outcome.duration = started.elapsed();
            return outcome;
        }
    };

    let (result, traffic) = run_session(script, opts, prosody.c2s_addr()).await;
    prosody.kill().await;

    let log = prosody.read_log();
    let mut report = String::new();
    match result {
        Ok(()) => {}
        Err(f) => {
            outcome.verdict = f.verdict;
            report.push_str(&f.report);
        }
    }
    if let Err(e) = prosody::check_version(&log, install.version) {
        outcome.verdict = Verdict::Error;
        let _ = writeln!(report, "{e}");
    }
    let problems = prosody::unexpected_log_problems(&log, &script.expected_log_errors());
    if !problems.is_empty() {
        if outcome.verdict == Verdict::Pass {
            outcome.verdict = Verdict::Fail;
        }
        let _ =
            writeln!(report, "Prosody's log has tracebacks or muc errors:\n{}", indent(&problems.join("\n")));
    }
    if outcome.verdict != Verdict::Pass {
        let _ = writeln!(report, "Prosody log (last 25 lines):\n{}", indent(&prosody::tail(&log, 25)));
        if opts.verbose {
            let _ = writeln!(report, "Traffic:\n{}", indent(&traffic));
        }
    }
    outcome.report = report;
    outcome.prosody_config = std::fs::read_to_string(prosody.config_path()).unwrap_or_default();
    outcome.prosody_log = log;
    outcome.traffic = traffic;
    outcome.duration = started.elapsed();
    outcome
}

/// Runs the script's actions against the server at `addr`: the result and the traffic.
async fn run_session(
    script: &Script,
    opts: &RunOptions,
    addr: SocketAddr,
) -> (std::result::Result<(), Failure>, String) {
    let mut session = Session {
        script,
        opts,
        addr,
        clients: HashMap::new(),
        captured: HashMap::new(),
        finished_traffic: Vec::new(),
    };
    let result = match tokio::time::timeout(opts.run_timeout, session.run_actions()).await {
        Ok(r) => r,
        Err(_) => Err(Failure::error(format!("the script did not finish within {:?}", opts.run_timeout))),
    };
    (result, session.traffic_log())
}

/// Runs `script` on a fresh ejabberd with `muc` on `conference.localhost`, the script's
/// component options translated (the caller skips scripts whose options do not translate,
/// see [`crate::ejabberd::module_options_for`]).
pub async fn run_on_ejabberd(script: &Script, muc: &crate::ejabberd::Muc, opts: &RunOptions) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::passed();
    let options = crate::ejabberd::module_options_for(
        muc,
        &script.component_config_lines(),
        &script.ejabberd_room_options(),
    );
    let modules = crate::ejabberd::modules_for(muc, script.ejabberd_modules());
    let extras = crate::ejabberd::Extras { modules, ..Default::default() };
    let started_server = match options {
        Ok(options) => crate::ejabberd::Ejabberd::start_with_extras(muc, &options, extras).await,
        Err(why) => Err(crate::err!("{why}")),
    };
    let mut server = match started_server {
        Ok(server) => server,
        Err(e) => {
            outcome.verdict = Verdict::Error;
            outcome.report = format!("ejabberd did not start: {e}");
            outcome.duration = started.elapsed();
            return outcome;
        }
    };
    let (result, traffic) = run_session(script, opts, server.c2s_addr()).await;
    server.kill().await;
    let log = server.read_log();
    let mut report = String::new();
    if let Err(f) = result {
        outcome.verdict = f.verdict;
        report.push_str(&f.report);
    }
    let problems = crate::ejabberd::log_problems(&log);
    if !problems.is_empty() {
        if outcome.verdict == Verdict::Pass {
            outcome.verdict = Verdict::Fail;
        }
        let _ = writeln!(report, "ejabberd's log has MUC errors:\n{}", indent(&problems.join("\n")));
    }
    if outcome.verdict != Verdict::Pass {
        let _ = writeln!(report, "ejabberd log (last 25 lines):\n{}", indent(&prosody::tail(&log, 25)));
        if opts.verbose {
            let _ = writeln!(report, "Traffic:\n{}", indent(&traffic));
        }
    }
    outcome.report = report;
    outcome.prosody_log = log;
    outcome.traffic = traffic;
    outcome.duration = started.elapsed();
    outcome
}

/// Why a script stopped: its verdict and a report for a person.
pub(crate) struct Failure {
    pub(crate) verdict: Verdict,
    pub(crate) report: String,
}

impl Failure {
    pub(crate) fn fail(report: String) -> Self {
        Failure { verdict: Verdict::Fail, report }
    }

    pub(crate) fn error(report: String) -> Self {
        Failure { verdict: Verdict::Error, report }
    }

    /// The failure of `action`, the report starting with where and what it was.
    pub(crate) fn at(mut self, action: &Action) -> Self {
        self.report = format!("line {}: {}\n{}", action.line, describe(action), self.report);
        self
    }

    /// `receives:` found no stanza like `expected`; `misses` are those that came instead,
    /// each with why it did not match, and `ending` says how the wait ended.
    pub(crate) fn unmatched(expected: &Element, misses: &[(Element, String)], ending: &str) -> Self {
        let mut report = format!("expected:\n{}\n", indent(&xml::to_string(expected)));
        if misses.is_empty() {
            report.push_str("received: nothing\n");
        } else {
            let _ = writeln!(report, "received {} stanza(s), none matched:", misses.len());
            for (i, (st, why)) in misses.iter().enumerate() {
                let _ = writeln!(report, "  {}. {}\n     why: {why}", i + 1, xml::to_string(st));
            }
        }
        let _ = writeln!(report, "{ending}");
        Failure::fail(report)
    }

    /// `receives: nothing`, but these stanzas were kept unread.
    pub(crate) fn unexpected<'a>(kept: impl ExactSizeIterator<Item = &'a Element>) -> Self {
        let mut report = format!("expected nothing, but {} stanza(s) arrived:\n", kept.len());
        for (i, st) in kept.enumerate() {
            let _ = writeln!(report, "  {}. {}", i + 1, xml::to_string(st));
        }
        Failure::fail(report)
    }
}

#[derive(Default)]
struct ClientState {
    conn: Option<Connection>,
    /// Kept after a disconnect so that variables still resolve.
    full_jid: Option<String>,
}

struct Session<'a> {
    script: &'a Script,
    opts: &'a RunOptions,
    addr: SocketAddr,
    clients: HashMap<String, ClientState>,
    /// Values kept by `{scansion:capture:NAME}` in received stanzas, for `${NAME}`.
    captured: HashMap<String, String>,
    /// Traffic of connections already closed, with the client's name.
    finished_traffic: Vec<(String, Traffic)>,
}

impl Session<'_> {
    async fn run_actions(&mut self) -> std::result::Result<(), Failure> {
        for action in &self.script.actions {
            self.run_action(action).await.map_err(|f| f.at(action))?;
        }
        Ok(())
    }

    async fn run_action(&mut self, action: &Action) -> std::result::Result<(), Failure> {
        let name = action.client.as_str();
        match &action.kind {
            ActionKind::Connect => self.connect(name).await,
            ActionKind::Disconnect => {
                let timeout = self.opts.io_timeout;
                let conn = self.conn(name)?;
                let r = conn.close(timeout).await;
                self.retire(name);
                r.map_err(|e| Failure::fail(format!("{e}\n")))
            }
            ActionKind::Send(elements) => {
                let expanded = self.expand_all(elements)?;
                let timeout = self.opts.io_timeout;
                let conn = self.conn(name)?;
                for el in &expanded {
                    conn.send(el).await.map_err(|e| Failure::fail(format!("{e}\n")))?;
                }
                // Let the server finish with it before the script moves on.
                conn.sync(timeout).await.map_err(|e| Failure::fail(format!("{e}\n")))
            }
            ActionKind::Receive(elements) => {
                let expanded = self.expand_all(elements)?;
                let timeout = self.opts.receive_timeout;
                let conn = self.conn(name)?;
                let mut captured = Vec::new();
                for el in &expanded {
                    captured.extend(receive(conn, el, timeout).await?);
                }
                self.captured.extend(captured);
                Ok(())
            }
            ActionKind::ReceiveNothing => {
                let until = Instant::now() + self.opts.nothing_wait;
                let timeout = self.opts.io_timeout;
                let conn = self.conn(name)?;
                // The ping flushes anything already on its way; then watch the rest of the time.
                conn.sync(timeout).await.map_err(|e| Failure::fail(format!("{e}\n")))?;
                tokio::time::sleep_until(until.into()).await;
                let kept = conn.kept();
                if kept.is_empty() {
                    return Ok(());
                }
                Err(Failure::unexpected(kept.iter()))
            }
        }
    }

    async fn connect(&mut self, name: &str) -> std::result::Result<(), Failure> {
        let def = self.script.client(name).ok_or_else(|| Failure::error(format!("no client {name:?}\n")))?;
        if self.clients.get(name).is_some_and(|c| c.conn.is_some()) {
            return Err(Failure::error(format!("{name} is already connected\n")));
        }
        let addr = match (&def.connect_host, def.connect_port) {
            (None, None) => self.addr,
            (host, port) => {
                let host = host.as_deref().unwrap_or("127.0.0.1");
                let port = port.unwrap_or(self.addr.port());
                tokio::net::lookup_host((host, port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| Failure::error(format!("cannot resolve {host}:{port}\n")))?
            }
        };
        let opts = ConnectOptions {
            addr,
            jid: def.jid.clone(),
            password: def.password.clone(),
            resource: def.resource.clone(),
            timeout: self.opts.io_timeout,
            record_traffic: true,
        };
        let conn = Connection::connect(&opts).await.map_err(|e| Failure::error(format!("{e}\n")))?;
        let state = self.clients.entry(name.to_owned()).or_default();
        state.full_jid = Some(conn.jid().to_string());
        state.conn = Some(conn);
        Ok(())
    }

    fn conn(&mut self, name: &str) -> std::result::Result<&mut Connection, Failure> {
        self.clients
            .get_mut(name)
            .and_then(|c| c.conn.as_mut())
            .ok_or_else(|| Failure::error(format!("{name} is not connected\n")))
    }

    /// Moves a closed connection's traffic aside and drops it.
    fn retire(&mut self, name: &str) {
        if let Some(mut conn) = self.clients.get_mut(name).and_then(|c| c.conn.take()) {
            conn.pump();
            self.finished_traffic.extend(conn.traffic().iter().map(|t| (name.to_owned(), t.clone())));
        }
    }

    /// The block's stanzas, their variables expanded (see [`lookup`]).
    fn expand_all(&self, elements: &[Element]) -> std::result::Result<Vec<Element>, Failure> {
        let full_jid = |name: &str| self.clients.get(name)?.full_jid.clone();
        expand_all(elements, &|var| lookup(self.script, &self.captured, &full_jid, var))
    }

    /// All clients' traffic, in time order.
    fn traffic_log(&mut self) -> String {
        let names: Vec<String> = self.clients.keys().cloned().collect();
        for name in names {
            self.retire(&name);
        }
        let mut all = std::mem::take(&mut self.finished_traffic);
        all.sort_by_key(|(_, t)| t.at);
        let t0 = all.first().map(|(_, t)| t.at);
        all.iter()
            .map(|(name, t)| {
                let ms = t0.map(|t0| t.at.duration_since(t0).as_millis()).unwrap_or(0);
                let dir = if t.incoming { "<<" } else { ">>" };
                format!("{ms:>6}ms {name} {dir} {}", t.xml)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The value of a script variable. `Name's JID` is the configured bare JID (usable before
/// Name connects); `Name's full JID` is the one bound at connect (`full_jid`); other names
/// are values `captured` by `{scansion:capture:NAME}` in an earlier `receives:`.
pub(crate) fn lookup(
    script: &Script,
    captured: &HashMap<String, String>,
    full_jid: &dyn Fn(&str) -> Option<String>,
    var: &str,
) -> Option<String> {
    if let Some(value) = captured.get(var) {
        return Some(value.clone());
    }
    let (name, what) = var.rsplit_once("'s ")?;
    match what {
        "JID" => {
            let jid = &script.client(name)?.jid;
            Some(jid.split('/').next().unwrap_or(jid).to_owned())
        }
        "full JID" => full_jid(name),
        _ => None,
    }
}

/// A block's stanzas with their variables expanded (see [`lookup`]).
pub(crate) fn expand_all(
    elements: &[Element],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Vec<Element>, Failure> {
    elements
        .iter()
        .map(|el| script::expand(el, lookup))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| Failure::error(format!("{e} (is that client connected yet, or the value captured?)\n")))
}

fn describe(action: &Action) -> String {
    let verb = match action.kind {
        ActionKind::Connect => "connects",
        ActionKind::Disconnect => "disconnects",
        ActionKind::Send(_) => "sends:",
        ActionKind::Receive(_) => "receives:",
        ActionKind::ReceiveNothing => "receives: nothing",
    };
    format!("{} {verb}", action.client)
}

/// Takes kept stanzas oldest first until one matches; the ones before it are dropped.
/// Returns the values the matching stanza gave to `{scansion:capture:NAME}`.
async fn receive(
    conn: &mut Connection,
    expected: &Element,
    timeout: Duration,
) -> std::result::Result<matcher::Captures, Failure> {
    let deadline = Instant::now() + timeout;
    let mut misses: Vec<(Element, String)> = Vec::new();
    let ending = loop {
        match conn.next_stanza(deadline).await {
            Ok(Some(st)) => match matcher::check_capturing(expected, &st) {
                Ok(captures) => return Ok(captures),
                Err(why) => misses.push((st, why)),
            },
            Ok(None) => break format!("nothing else arrived within {timeout:?}"),
            Err(e) => break format!("the stream ended: {e}"),
        }
    };
    Err(Failure::unmatched(expected, &misses, &ending))
}
