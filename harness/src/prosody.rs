//! Prosody under test: finding an install, writing a self-contained config, starting it in a
//! fresh temp dir, stopping it, and reading its log.
//!
//! A started Prosody never outlives the harness: it is killed on drop, and the child gets
//! `PR_SET_PDEATHSIG` so that even a harness killed by a signal takes it along. (The death
//! signal follows the spawning *thread*: spawn from a thread that lives as long as the test,
//! e.g. a current-thread runtime or a runtime worker.)

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::{err, Result};

pub const DOMAIN: &str = "localhost";
pub const MUC_DOMAIN: &str = "conference.localhost";
/// The server's admin (`admins` in the config): a service admin of the MUC too.
pub const ADMIN: &str = "admin@localhost";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V0_12,
    V13,
}

impl Version {
    pub const ALL: [Version; 2] = [Version::V0_12, Version::V13];

    pub fn label(self) -> &'static str {
        match self {
            Version::V0_12 => "0.12",
            Version::V13 => "13",
        }
    }

    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "0.12" | "012" => Some(Version::V0_12),
            "13" | "13.0" => Some(Version::V13),
            _ => None,
        }
    }

    /// Start of the version string Prosody logs at startup.
    fn log_prefix(self) -> &'static str {
        match self {
            Version::V0_12 => "0.12.",
            Version::V13 => "13.",
        }
    }

    /// Environment variable that overrides the executable.
    pub fn env_var(self) -> &'static str {
        match self {
            Version::V0_12 => "MUC_HARNESS_PROSODY_0_12",
            Version::V13 => "MUC_HARNESS_PROSODY_13",
        }
    }
}

/// The repository root (the harness crate's parent folder).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

/// A Prosody executable of a known version.
#[derive(Clone, Debug)]
pub struct Install {
    pub version: Version,
    pub executable: PathBuf,
}

impl Install {
    /// Default locations: 0.12 is the system `/usr/bin/prosody`; 13 is the launcher that
    /// `tools/install-deps.sh` writes into `<repo>/.deps/prosody-13/bin/prosody`. The
    /// version's env var (see [`Version::env_var`]) overrides either.
    pub fn discover(version: Version) -> Result<Install> {
        let executable = match std::env::var_os(version.env_var()) {
            Some(p) => PathBuf::from(p),
            None => match version {
                Version::V0_12 => PathBuf::from("/usr/bin/prosody"),
                Version::V13 => repo_root().join(".deps/prosody-13/bin/prosody"),
            },
        };
        Install::at(version, executable)
    }

    pub fn at(version: Version, executable: PathBuf) -> Result<Install> {
        if !executable.is_file() {
            return Err(err!(
                "Prosody {} not found at {} (run tools/install-deps.sh, or set {})",
                version.label(),
                executable.display(),
                version.env_var()
            ));
        }
        Ok(Install { version, executable })
    }

    /// The folder of the version's community modules (Debian's `prosody-modules`, as
    /// `tools/install-deps.sh` installs it), if it is there: bookworm's package puts them
    /// beside 0.12's own modules, bookworm-backports' is unpacked into
    /// `<repo>/.deps/prosody-13-modules`.
    pub fn community_modules(&self) -> Option<PathBuf> {
        let dir = match self.version {
            Version::V0_12 => PathBuf::from("/usr/lib/prosody/modules"),
            Version::V13 => repo_root().join(".deps/prosody-13-modules/usr/lib/prosody/modules"),
        };
        dir.is_dir().then_some(dir)
    }
}

/// What goes into the generated config.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Module of the `conference.localhost` component: `muc` or `muc_rs`.
    pub muc_module: String,
    /// Absolute folders for `plugin_paths`.
    pub plugin_paths: Vec<PathBuf>,
    /// Extra Lua lines in the global section.
    pub global_extra: Vec<String>,
    /// Extra Lua lines inside the component section.
    pub component_extra: Vec<String>,
    /// `memory` for speed; `internal` or `sql` for persistence tests.
    pub storage: String,
    pub debug_log: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            muc_module: "muc".into(),
            plugin_paths: Vec::new(),
            global_extra: Vec::new(),
            component_extra: Vec::new(),
            storage: "memory".into(),
            debug_log: false,
        }
    }
}

/// Lua string literal.
fn lua_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

impl ServerConfig {
    /// The config file's text for a server living in `dir` and listening on `port`.
    pub fn render(&self, dir: &Path, port: u16) -> String {
        let path = |name: &str| lua_str(&dir.join(name).to_string_lossy());
        let plugin_paths =
            self.plugin_paths.iter().map(|p| lua_str(&p.to_string_lossy())).collect::<Vec<_>>().join(", ");
        let level = if self.debug_log { "debug" } else { "info" };
        let mut c = format!(
            r#"-- Generated by muc_harness: a self-contained Prosody for one test run.
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
s2s_direct_tls_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
component_ports = {{ }}
run_as_root = true
daemonize = false
pidfile = {pidfile}
data_path = {data}
certificates = {certs}
log = {{ {{ levels = {{ min = "{level}" }}, to = "file", filename = {log} }} }}
authentication = "insecure"
insecure_open_authentication = "Yes please, I know what I'm doing!"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
storage = {storage}
modules_enabled = {{ "roster", "saslauth", "disco", "ping", "posix" }}
plugin_paths = {{ {plugin_paths} }}
admins = {{ {admin} }}
"#,
            pidfile = path("prosody.pid"),
            data = path("data"),
            certs = path("certs"),
            log = path("prosody.log"),
            storage = lua_str(&self.storage),
            admin = lua_str(ADMIN),
        );
        for line in &self.global_extra {
            c.push_str(line);
            c.push('\n');
        }
        c.push_str(&format!(
            "\nVirtualHost {}\n\nComponent {} {}\n",
            lua_str(DOMAIN),
            lua_str(MUC_DOMAIN),
            lua_str(&self.muc_module)
        ));
        for line in &self.component_extra {
            c.push('\t');
            c.push_str(line);
            c.push('\n');
        }
        c
    }
}

/// A running (or stopped) Prosody in its own temp dir.
pub struct Prosody {
    install: Install,
    config: ServerConfig,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

const START_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_TRIES: usize = 5;

impl Prosody {
    /// Starts Prosody in a fresh temp dir and waits until its c2s port listens.
    pub async fn start(install: &Install, config: ServerConfig) -> Result<Prosody> {
        let dir = tempfile::Builder::new()
            .prefix("muc-harness-")
            .tempdir()
            .map_err(|e| err!("cannot create a temp dir: {e}"))?;
        for sub in ["data", "certs"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        let mut p = Prosody { install: install.clone(), config, dir, port: 0, child: None };
        p.launch().await?;
        Ok(p)
    }

    /// (Re)launches the process with the stored config; retries with another port when the
    /// chosen one was taken in the meantime.
    async fn launch(&mut self) -> Result<()> {
        let mut last_err = None;
        for _ in 0..PORT_TRIES {
            self.port = free_port()?;
            match self.launch_on_port().await {
                Ok(()) => return Ok(()),
                Err(Launch::PortTaken) => {
                    self.kill().await;
                    last_err = Some(err!("port {} was taken", self.port));
                }
                Err(Launch::Failed(e)) => {
                    self.kill().await;
                    return Err(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| err!("no free port")))
    }

    async fn launch_on_port(&mut self) -> std::result::Result<(), Launch> {
        let dir = self.dir.path().to_owned();
        std::fs::write(self.config_path(), self.config.render(&dir, self.port))
            .map_err(|e| Launch::Failed(e.into()))?;
        // A restart appends to the same log; readiness is judged on what comes after.
        let log_offset = std::fs::metadata(self.log_path()).map(|m| m.len()).unwrap_or(0);
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("console.log"))
            .map_err(|e| Launch::Failed(e.into()))?;
        let mut cmd = Command::new(&self.install.executable);
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("-F")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(console.try_clone().map_err(|e| Launch::Failed(e.into()))?)
            .stderr(console)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; the closure touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| Launch::Failed(err!("cannot run {}: {e}", self.install.executable.display())))?;
        self.child = Some(child);

        let ready = format!("Activated service 'c2s' on [127.0.0.1]:{}", self.port);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = self.read_log_from(log_offset);
            if log.contains(&ready) {
                return Ok(());
            }
            if log.contains("Failed to open server port") {
                return Err(Launch::PortTaken);
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(Launch::Failed(err!(
                        "Prosody exited during startup ({status})\n{}",
                        self.startup_output()
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(Launch::Failed(err!(
                    "Prosody did not listen on port {} within {:?}\n{}",
                    self.port,
                    START_TIMEOUT,
                    self.startup_output()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn startup_output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        let console = read("console.log").unwrap_or_default();
        let config = read("prosody.cfg.lua").unwrap_or_default();
        format!(
            "console output:\n{}\nlog tail:\n{}\nconfig:\n{}",
            indent(console.trim()),
            indent(&self.log_tail(20)),
            indent(config.trim_end())
        )
    }

    pub fn version(&self) -> Version {
        self.install.version
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn c2s_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prosody.cfg.lua")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prosody.log")
    }

    /// Process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub fn read_log(&self) -> String {
        self.read_log_from(0)
    }

    fn read_log_from(&self, offset: u64) -> String {
        let bytes = std::fs::read(self.log_path()).unwrap_or_default();
        let start = (offset as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.read_log(), lines)
    }

    /// Kills Prosody at once (fine with memory storage) and reaps it.
    pub async fn kill(&mut self) {
        self.signal_pids(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
    }

    /// Graceful stop: SIGTERM, then SIGKILL after `grace`. Use before reading persisted data.
    pub async fn stop(&mut self, grace: Duration) {
        self.signal_pids(libc::SIGTERM);
        if let Some(child) = self.child.as_mut() {
            if tokio::time::timeout(grace, child.wait()).await.is_ok() {
                self.child = None;
            }
        }
        self.kill().await;
    }

    /// Stops gracefully and starts again with the same dir, data and config (new port).
    pub async fn restart(&mut self) -> Result<()> {
        self.stop(Duration::from_secs(5)).await;
        self.launch().await
    }

    /// Stops gracefully and starts again on the same data dir with another config (e.g. the
    /// component module switched between `muc` and `muc_rs`, or another storage).
    pub async fn restart_with(&mut self, config: ServerConfig) -> Result<()> {
        self.stop(Duration::from_secs(5)).await;
        self.config = config;
        self.launch().await
    }

    /// `kill -9`, then starts again on the same data dir and config: what was not in storage
    /// at the moment of the kill is gone.
    pub async fn crash_restart(&mut self) -> Result<()> {
        self.kill().await;
        self.launch().await
    }

    /// The config the server runs with (or will run with on its next start).
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Prosody's `data_path` (where `storage = "internal"` keeps its files).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Signals the child and, if it differs, the pid in Prosody's own pidfile.
    fn signal_pids(&self, sig: libc::c_int) {
        let mut pids = Vec::new();
        if let Some(pid) = self.pid() {
            pids.push(pid as i32);
        }
        if let Ok(text) = std::fs::read_to_string(self.dir.path().join("prosody.pid")) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if pid > 1 && !pids.contains(&pid) && self.child.is_some() {
                    pids.push(pid);
                }
            }
        }
        for pid in pids {
            // SAFETY: plain syscall on a pid we started.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        // kill_on_drop covers the child; this also covers a pidfile pid that differs.
        self.signal_pids(libc::SIGKILL);
    }
}

enum Launch {
    PortTaken,
    Failed(crate::Error),
}

/// A port that was free a moment ago (Prosody binds it right after).
/// A loopback TCP port nobody listens on (now).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Log lines that make a run fail whatever the script says: Lua tracebacks anywhere, and
/// `error`-level lines that mention muc.
pub fn log_problems(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| {
            let lower = line.to_ascii_lowercase();
            let level = line.split('\t').nth(1).map(str::trim);
            lower.contains("traceback") || (level == Some("error") && lower.contains("muc"))
        })
        .map(str::to_owned)
        .collect()
}

/// [`log_problems`] less the entries (a line and the traceback lines under it) that contain
/// one of `expected`; and each of `expected` that no entry contains.
pub fn unexpected_log_problems(log: &str, expected: &[String]) -> Vec<String> {
    let mut kept = String::new();
    let mut seen = vec![false; expected.len()];
    let mut skipping = false;
    for line in log.lines() {
        // Continuation lines (a traceback's) start with white space; entries with a date.
        if !line.starts_with(char::is_whitespace) && !line.starts_with("stack traceback") {
            let hit = expected.iter().position(|text| line.contains(text.as_str()));
            if let Some(i) = hit {
                seen[i] = true;
            }
            skipping = hit.is_some();
        }
        if !skipping {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let mut problems = log_problems(&kept);
    for (text, seen) in expected.iter().zip(seen) {
        if !seen {
            problems.push(format!("no log entry contains the expected error {text:?}"));
        }
    }
    problems
}

/// Checks the version Prosody announced at startup.
pub fn check_version(log: &str, version: Version) -> Result<()> {
    let marker = "Hello and welcome to Prosody version ";
    match log.lines().find_map(|l| l.split_once(marker).map(|(_, v)| v.trim())) {
        Some(v) if v.starts_with(version.log_prefix()) => Ok(()),
        Some(v) => Err(err!("expected Prosody {}, but the log says it is {v}", version.label())),
        None => Err(err!("Prosody's log has no startup banner")),
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_problems_finds_tracebacks_and_muc_errors() {
        let log = "Nov 24 01:29:06 startup\tinfo\tHello and welcome to Prosody version 0.12.3\n\
            Nov 24 01:29:07 conference.localhost:muc_rs\terror\tbad room\n\
            Nov 24 01:29:07 certmanager\terror\tno certificate\n\
            Nov 24 01:29:07 c2s1\twarn\tsomething\n\
            stack traceback:\n";
        let p = log_problems(log);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("muc_rs"));
        assert!(check_version(log, Version::V0_12).is_ok());
        assert!(check_version(log, Version::V13).is_err());
    }

    #[test]
    fn expected_log_errors_are_left_out_with_their_tracebacks() {
        let log = "Nov 24 01:29:07 c2s1\terror\tTraceback[c2s]: mod_x.lua:8: boom\n\
            \tstack traceback:\n\
            \t[C]: in function 'error'\n\
            Nov 24 01:29:07 conference.localhost:muc_rs\terror\tbad room\n";
        let p = unexpected_log_problems(log, &["boom".to_owned()]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("bad room"));
        let p = unexpected_log_problems(log, &["bang".to_owned()]);
        assert!(p.iter().any(|l| l.contains("\"bang\"")), "{p:?}");
    }

    #[test]
    fn config_has_component_and_extras() {
        let cfg = ServerConfig {
            muc_module: "muc_rs".into(),
            plugin_paths: vec!["/x/build/plugin".into()],
            global_extra: vec!["muc_room_locking = false".into()],
            component_extra: vec!["max_history_messages = 5".into()],
            ..Default::default()
        };
        let text = cfg.render(Path::new("/tmp/d"), 5999);
        assert!(text.contains("c2s_ports = { 5999 }"));
        assert!(text.contains("plugin_paths = { \"/x/build/plugin\" }"));
        assert!(text.contains("muc_room_locking = false\n\nVirtualHost \"localhost\""));
        assert!(text.ends_with("Component \"conference.localhost\" \"muc_rs\"\n\tmax_history_messages = 5\n"));
    }
}
