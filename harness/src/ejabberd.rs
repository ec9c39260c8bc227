//! A throw-away ejabberd (24.12, Debian's bookworm-backports package) serving
//! `conference.localhost` with muc_rs's ejabberd module or ejabberd's own mod_muc, in its
//! own temp dir: mnesia in the dir, the accounts the scripts use; no Erlang distribution
//! (no epmd) unless it is a node of a cluster on loopback ([`ClusterNode`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::prosody::{indent, repo_root, tail};
use crate::{err, Result};

/// Accounts the scripts log in as (Prosody's test config accepts any; ejabberd needs them).
const ACCOUNTS: &[&str] = &["romeo", "juliet", "mercutio", "benvolio", "mallory", "admin", "user", "user2"];
pub const PASSWORD: &str = "password";
const READY: &str = "MUC_HARNESS READY";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the ejabberd module is installed (`make install-ejabberd DESTDIR=build/ejabberd`).
pub fn default_module_dir() -> PathBuf {
    std::env::var_os("MUC_RS_EJABBERD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build/ejabberd/mod_muc_rs"))
}

/// Which MUC module serves `conference.localhost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Muc {
    /// muc_rs's module, from a dir with `ebin/` and `priv/` (`make install-ejabberd`).
    MucRs(PathBuf),
    /// ejabberd's own mod_muc: the side-by-side reference.
    Stock,
    /// muc_rs's module installed by ejabberd's contrib mechanism (`install_contrib_modules`)
    /// from the package `make ejabberd-contrib` made in this dir (with `sources/mod_muc_rs`),
    /// configured by the package's own `conf/mod_muc_rs.yml`.
    Contrib(PathBuf),
    /// The benchmark's floor (`tools/bench-floor/mod_bench_floor.erl`), from a dir with
    /// `ebin/`: MUC traffic with no MUC logic, for the benchmark only.
    Floor(PathBuf),
}

impl Muc {
    /// muc_rs's module where `make install-ejabberd` put it.
    pub fn muc_rs() -> Muc {
        Muc::MucRs(default_module_dir())
    }

    /// Its name in results, as the Prosody runs name the modules (`muc` is stock's).
    pub fn label(&self) -> &'static str {
        match self {
            Muc::MucRs(_) | Muc::Contrib(_) => "muc_rs",
            Muc::Stock => "muc",
            Muc::Floor(_) => "bench_floor",
        }
    }

    fn module_name(&self) -> &'static str {
        match self {
            Muc::MucRs(_) | Muc::Contrib(_) => "mod_muc_rs",
            Muc::Stock => "mod_muc",
            Muc::Floor(_) => "mod_bench_floor",
        }
    }
}

/// Settings most runs leave alone: more accounts and quieter logs (the benchmark), a
/// cluster node (the cluster test and benchmark).
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Accounts registered besides the fixed ones, with the same [`PASSWORD`].
    pub accounts: Vec<String>,
    /// ejabberd's `loglevel` (`info` when `None`), e.g. `warning` to keep logging out of
    /// the measurements.
    pub loglevel: Option<String>,
    /// A node of a cluster on loopback (Erlang distribution on 127.0.0.1), not a lone node.
    pub cluster: Option<ClusterNode>,
    /// Top-level lines for the harness's `ejabberd.yml` (e.g. a SQL server's `sql_*`).
    pub global: Option<String>,
    /// Lines of `modules:` besides the MUC's and the harness's own (e.g. `mod_mam: {}`).
    pub modules: Vec<String>,
    /// A whole `ejabberd.yml` instead of the harness's own, with [`C2S_PORT`] where the
    /// clients' port goes: its modules, the MUC module's options included, are its own.
    pub config: Option<String>,
    /// ejabberd's HTTP API (`mod_http_api` at `/api`, open to loopback) and web admin
    /// (`/admin`, for `admin@localhost`) on a port of their own: [`Ejabberd::api`],
    /// [`Ejabberd::web_admin`].
    pub http_api: bool,
    /// Dirs of compiled Erlang modules besides the MUC module's (test modules of our own,
    /// listed in `modules`).
    pub code_paths: Vec<PathBuf>,
}

/// Where a whole config ([`Extras::config`]) has the port of the listener clients use.
pub const C2S_PORT: &str = "@C2S_PORT@";

/// One node of an ejabberd cluster on this machine.
#[derive(Debug, Clone, Default)]
pub struct ClusterNode {
    /// Its Erlang node name, `name@127.0.0.1`.
    pub name: String,
    pub cookie: String,
    /// The node it joins when it first starts (its mnesia schema remembers the cluster
    /// across restarts); `None` for the first node, which registers the accounts.
    pub joins: Option<String>,
}

impl ClusterNode {
    /// Names for `count` nodes of one cluster, unique to this process and call; the first
    /// is the one the others join.
    pub fn cluster(count: usize) -> Vec<ClusterNode> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CLUSTERS: AtomicU32 = AtomicU32::new(0);
        let id = format!("{}_{}", std::process::id(), CLUSTERS.fetch_add(1, Ordering::Relaxed));
        let name = |i: usize| format!("muc{id}_{i}@127.0.0.1");
        (0..count)
            .map(|i| ClusterNode {
                name: name(i),
                cookie: format!("muc_harness_{id}"),
                joins: (i > 0).then(|| name(0)),
            })
            .collect()
    }
}

pub struct Ejabberd {
    muc: Muc,
    extras: Extras,
    /// Extra options of the MUC module, as YAML flow-mapping entries (`key: value, ...`).
    module_options: String,
    dir: tempfile::TempDir,
    port: u16,
    /// The HTTP API's port ([`Extras::http_api`]).
    http_port: u16,
    child: Option<Child>,
}

impl Ejabberd {
    /// Starts ejabberd with muc_rs's module from `module_dir` (with `ebin/` and `priv/`).
    pub async fn start(module_dir: &Path) -> Result<Ejabberd> {
        Self::start_with(&Muc::MucRs(module_dir.to_owned()), "").await
    }

    /// Starts ejabberd with `muc` on `conference.localhost` and extra options for it
    /// (`key: value, ...`).
    pub async fn start_with(muc: &Muc, module_options: &str) -> Result<Ejabberd> {
        Self::start_with_extras(muc, module_options, Extras::default()).await
    }

    /// [`Ejabberd::start_with`] with more accounts or another log level.
    pub async fn start_with_extras(muc: &Muc, module_options: &str, extras: Extras) -> Result<Ejabberd> {
        if let Muc::MucRs(module_dir) = muc {
            if !module_dir.join("ebin/mod_muc_rs.beam").exists() {
                return Err(err!("no ejabberd module at {} (make install-ejabberd)", module_dir.display()));
            }
        }
        let dir = tempfile::Builder::new().prefix("muc-harness-ejabberd-").tempdir()?;
        if let Muc::Contrib(contrib_dir) = muc {
            // ejabberd installs into the contrib dir: a copy of the package, not the build's.
            let package = contrib_dir.join("sources/mod_muc_rs");
            if !package.join("mod_muc_rs.spec").exists() {
                return Err(err!("no contrib package at {} (make ejabberd-contrib)", package.display()));
            }
            copy_dir(&package, &dir.path().join("contrib/sources/mod_muc_rs"))?;
        }
        let mut server = Ejabberd {
            muc: muc.clone(),
            extras,
            module_options: module_options.to_owned(),
            dir,
            port: 0,
            http_port: 0,
            child: None,
        };
        server.launch().await?;
        Ok(server)
    }

    pub fn c2s_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The OS process id of the node (for the benchmark's CPU and memory readings).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The node's own dir (its config, database and logs): for files a command reads.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("ejabberd.log")
    }

    pub fn read_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The log once it has a line containing `needle` (ejabberd's logger writes in batches),
    /// or the whole log as the error after `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> std::result::Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let log = self.read_log();
            if log.contains(needle) {
                return Ok(log);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(log);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Calls `module:function` with `args` (an Erlang list, e.g. `[muc_rs_room, read_only]`)
    /// in the node, which must be a [`ClusterNode`] (the only kind with Erlang
    /// distribution); the result as Erlang prints it on one line, e.g. `{atomic,ok}`. The
    /// call comes from a hidden node on loopback, so the node's `nodes()` (the cluster
    /// mod_muc_rs sees) does not change.
    pub async fn rpc(&self, module: &str, function: &str, args: &str) -> Result<String> {
        let (node, mut erl) = self.hidden_node("rpc")?;
        let eval = format!(
            "R = rpc:call('{}', {module}, {function}, {args}, 10000), io:format(\"~0p~n\", [R]), halt().",
            node.name
        );
        let output = erl.args(["-eval", &eval]).output();
        let output = tokio::time::timeout(Duration::from_secs(30), output)
            .await
            .map_err(|_| err!("rpc {module}:{function}{args} did not finish"))??;
        let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.status.success() || printed.is_empty() || printed.starts_with("{badrpc,") {
            return Err(err!(
                "rpc {module}:{function}{args} failed ({}): {printed}\n{}",
                output.status,
                indent(String::from_utf8_lossy(&output.stderr).trim())
            ));
        }
        Ok(printed)
    }

    /// `ejabberdctl ARGS...` on the node, which must be a [`ClusterNode`]: the exit status
    /// and what it printed (stdout, then stderr). As ejabberdctl runs it: a hidden node
    /// that starts `ejabberd_ctl` with the node's name and the arguments.
    pub async fn ctl(&self, args: &[&str]) -> Result<(i32, String)> {
        let (node, mut erl) = self.hidden_node("ejabberdctl")?;
        let output = erl
            .args(["-eval", &format!("net_kernel:connect_node('{}')", node.name)])
            .args(["-s", "ejabberd_ctl", "-extra", &node.name])
            .args(args)
            .env("ERL_LIBS", "/usr/lib/x86_64-linux-gnu")
            .output();
        let output = tokio::time::timeout(Duration::from_secs(60), output)
            .await
            .map_err(|_| err!("ejabberdctl {args:?} did not finish"))??;
        let printed =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Ok((output.status.code().unwrap_or(-1), printed))
    }

    /// A POST of `body` (JSON) to the HTTP API's `/api/<command>` ([`Extras::http_api`]):
    /// the status code and the body of the answer.
    pub async fn api(&self, command: &str, body: &str) -> Result<(u16, String)> {
        let request = format!(
            "POST /api/{command} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        self.http(&request).await
    }

    /// A page of the web admin (`/admin/<path>`, on the HTTP API's port), as the account
    /// `admin@localhost`: the status code and the page.
    pub async fn web_admin(&self, path: &str) -> Result<(u16, String)> {
        use base64::Engine;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("admin@localhost:{PASSWORD}"));
        let request = format!(
            "GET /admin/{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {credentials}\r\n\
             Connection: close\r\n\r\n"
        );
        self.http(&request).await
    }

    /// One request to the node's HTTP listener ([`Extras::http_api`]): the status code and
    /// the body of the answer.
    async fn http(&self, request: &str) -> Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if !self.extras.http_api {
            return Err(err!("no HTTP listener on this node (Extras::http_api)"));
        }
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.http_port)).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
            .await
            .map_err(|_| err!("no HTTP answer to {request}"))??;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| err!("not HTTP: {answer}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| err!("no status in {head}"))?;
        Ok((status, body.to_owned()))
    }

    /// A hidden Erlang node on loopback, with the node's cookie, to run `erl` for `what`
    /// (`rpc`, `ejabberdctl`): the node ([`Extras::cluster`], the only kind with Erlang
    /// distribution) and the command, without its `-eval` or `-s`.
    fn hidden_node(&self, what: &str) -> Result<(&ClusterNode, Command)> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CALLS: AtomicU32 = AtomicU32::new(0);
        let node =
            self.extras.cluster.as_ref().ok_or_else(|| err!("{what} to a node without distribution"))?;
        let helper =
            format!("muc_rpc{}_{}@127.0.0.1", std::process::id(), CALLS.fetch_add(1, Ordering::Relaxed));
        let mut erl = Command::new("erl");
        erl.args(["-noinput", "-hidden", "-name", &helper, "-setcookie", &node.cookie])
            .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        Ok((node, erl))
    }

    /// `kill -9`: what mnesia had not written is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// A clean stop (`init:stop()`, as `ejabberdctl stop` does: modules write what they keep
    /// for a stop), then a start on the same mnesia dir. The node must be a [`ClusterNode`].
    pub async fn restart(&mut self) -> Result<()> {
        self.rpc("init", "stop", "[]").await?;
        if let Some(mut child) = self.child.take() {
            tokio::time::timeout(Duration::from_secs(60), child.wait())
                .await
                .map_err(|_| err!("ejabberd did not stop within a minute"))??;
        }
        self.launch().await
    }

    /// Stops the node as `ejabberdctl stop` would (SIGTERM: ejabberd stops its modules and
    /// mnesia closes its files), then starts it on the same mnesia dir with `muc` serving
    /// `conference.localhost` and `module_options` for it: an admin switching between
    /// mod_muc and mod_muc_rs.
    pub async fn switch_to(&mut self, muc: &Muc, module_options: &str) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: a signal to our own child, which we have not waited for yet.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(err!("ejabberd did not stop within 30 s of SIGTERM"));
            }
        }
        self.muc = muc.clone();
        self.module_options = module_options.to_owned();
        self.launch().await
    }

    /// `kill -9`, then a start on the same mnesia dir.
    pub async fn crash_restart(&mut self) -> Result<()> {
        self.kill().await;
        self.launch().await
    }

    async fn launch(&mut self) -> Result<()> {
        let mut last = None;
        for _ in 0..5 {
            self.port = crate::prosody::free_port()?;
            if self.extras.http_api {
                self.http_port = crate::prosody::free_port()?;
            }
            match self.launch_on_port().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.kill().await;
                    let taken = e.to_string().contains("eaddrinuse");
                    last = Some(e);
                    if !taken {
                        break;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| err!("no free port")))
    }

    async fn launch_on_port(&mut self) -> Result<()> {
        let dir = self.dir.path();
        let config = match &self.extras.config {
            Some(config) => config.replace(C2S_PORT, &self.port.to_string()),
            None => config(self.port, self.http_port, &self.muc, &self.module_options, &self.extras),
        };
        std::fs::write(dir.join("ejabberd.yml"), config)?;
        let console_path = dir.join("console.log");
        std::fs::write(&console_path, "")?;
        let console = std::fs::OpenOptions::new().append(true).open(&console_path)?;
        // One list comprehension: hundreds of accounts stay well within an argument's size.
        let users: Vec<String> = ACCOUNTS
            .iter()
            .copied()
            .chain(self.extras.accounts.iter().map(String::as_str))
            .map(|u| format!("<<\"{u}\">>"))
            .collect();
        let register = format!(
            "[ejabberd_auth:try_register(U, <<\"localhost\">>, <<\"{PASSWORD}\">>) || U <- [{}]]",
            users.join(", ")
        );
        // A node joining a cluster gets the accounts with the rest of the database; it
        // joins once: its schema remembers the cluster when it starts again.
        let setup = match self.extras.cluster.as_mut().and_then(|node| node.joins.take()) {
            Some(first) => format!("pong = net_adm:ping('{first}'), ok = ejabberd_cluster:join('{first}')"),
            None => register,
        };
        let eval = format!("{setup}, io:format(\"{READY}~n\").");
        let mut cmd = Command::new("erl");
        cmd.args(["-noinput", "-noshell", "+K", "true", "-smp", "auto"]);
        if let Some(node) = &self.extras.cluster {
            cmd.args(["-name", &node.name, "-setcookie", &node.cookie])
                .args(["-kernel", "inet_dist_use_interface", "{127,0,0,1}"])
                .env("ERL_EPMD_ADDRESS", "127.0.0.1");
        }
        if let Muc::MucRs(module_dir) | Muc::Floor(module_dir) = &self.muc {
            cmd.arg("-pa").arg(module_dir.join("ebin"));
        }
        for dir in &self.extras.code_paths {
            cmd.arg("-pa").arg(dir);
        }
        cmd.arg("-mnesia")
            .arg("dir")
            .arg(format!("\"{}\"", dir.join("db").display()))
            .args(["-s", "ejabberd", "-eval", &eval])
            .env("ERL_LIBS", "/usr/lib/x86_64-linux-gnu")
            .env("EJABBERD_CONFIG_PATH", dir.join("ejabberd.yml"))
            .env("EJABBERD_LOG_PATH", self.log_path())
            .env("CONTRIB_MODULES_PATH", dir.join("contrib"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; the closure touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().map_err(|e| err!("cannot run erl (is ejabberd installed?): {e}"))?);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let console = std::fs::read_to_string(&console_path).unwrap_or_default();
            if console.contains(READY) {
                return Ok(());
            }
            let log = self.read_log();
            if log.contains("eaddrinuse") {
                return Err(err!("eaddrinuse: port {} taken", self.port));
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(err!(
                        "ejabberd exited during startup ({status})\n{}\n{}",
                        indent(console.trim()),
                        indent(&tail(&log, 20))
                    ));
                }
            }
            if Instant::now() > deadline {
                return Err(err!(
                    "ejabberd did not start within {START_TIMEOUT:?}\n{}",
                    indent(&tail(&log, 20))
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Log lines that make a run fail: errors and crashes of the MUC module (muc_rs's or stock's).
pub fn log_problems(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            (l.contains("[error]") || l.contains("[critical]"))
                && (l.contains("muc_rs") || l.contains("mod_muc"))
        })
        .map(str::to_owned)
        .collect()
}

fn config(port: u16, http_port: u16, muc: &Muc, module_options: &str, extras: &Extras) -> String {
    let loglevel = extras.loglevel.as_deref().unwrap_or("info");
    let mut global = extras.global.as_deref().map(|lines| format!("{lines}\n")).unwrap_or_default();
    let modules: String = extras.modules.iter().map(|line| format!("  {line}\n")).collect();
    let mut http = String::new();
    if extras.http_api {
        http = format!(
            "  - {{port: {http_port}, ip: \"127.0.0.1\", module: ejabberd_http, \
             request_handlers: {{/api: mod_http_api, /admin: ejabberd_web_admin}}}}\n"
        );
        global.push_str("api_permissions:\n  loopback:\n    who: {ip: 127.0.0.1/8}\n    what: \"*\"\n");
    }
    // (who may use the web admin)
    let configure = if extras.http_api { "  configure: {allow: admin}\n" } else { "" };
    let module = muc.module_name();
    let module_options =
        if module_options.is_empty() { String::new() } else { format!(", {module_options}") };
    // A contrib module is configured by its package, once ejabberd has installed it.
    let (contrib, module_line) = match muc {
        Muc::Contrib(_) => {
            ("allow_contrib_modules: true\ninstall_contrib_modules: [mod_muc_rs]\n", String::new())
        }
        // (the floor takes no MUC options)
        Muc::Floor(_) => ("", format!("  {module}: {{host: \"conference.localhost\"}}\n")),
        _ => (
            "",
            format!(
                "  {module}: {{host: \"conference.localhost\", access_admin: muc_admin{module_options}}}\n"
            ),
        ),
    };
    format!(
        r#"# Generated by muc_harness: a self-contained ejabberd for one test run.
loglevel: {loglevel}
log_rotate_count: 0
hosts: [localhost]
certfiles: []
listen:
  - {{port: {port}, ip: "127.0.0.1", module: ejabberd_c2s, max_stanza_size: 262144, shaper: none,
     access: c2s, starttls_required: false}}
{http}auth_method: internal
auth_password_format: plain
acl:
  admin: {{user: ["admin@localhost"]}}
access_rules:
  c2s: {{allow: all}}
  muc_admin: {{allow: admin}}
{configure}shaper_rules: {{max_user_sessions: 10}}
{global}{contrib}modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
{modules}{module_line}"#
    )
}

/// ejabberd modules that declare a hard dependency on mod_muc (ejabberd refuses to start
/// with them and without mod_muc) and whose work mod_muc_rs does itself: its room commands
/// (mod_muc_admin's) and occupant ids (mod_muc_occupantid's, the core's `muc_occupant_id`).
pub const REPLACED_BY_MOD_MUC_RS: &[&str] = &["mod_muc_admin", "mod_muc_occupantid"];

/// A script's lines of `modules:` for `muc`: for mod_muc_rs without those it replaces, as
/// its README tells users to leave them out.
pub fn modules_for(muc: &Muc, lines: Vec<String>) -> Vec<String> {
    let replaced = |line: &String| {
        matches!(muc, Muc::MucRs(_) | Muc::Contrib(_))
            && REPLACED_BY_MOD_MUC_RS.iter().any(|module| line.starts_with(&format!("{module}:")))
    };
    lines.into_iter().filter(|line| !replaced(line)).collect()
}

/// New rooms as Prosody makes them, where ejabberd's mod_muc defaults differ (its rooms are
/// public and let anyone change the subject): the scripts are written against Prosody's
/// defaults, and both ejabberd modules take mod_muc's `default_room_options`.
const PROSODY_ROOM_DEFAULTS: &str = "public: false, allow_change_subj: false";

/// A script's Prosody component options as options of `muc`'s ejabberd module (YAML
/// flow-mapping entries), or why they have no meaning there. Access rules replace
/// `restrict_room_creation`; muc_rs's module takes its own options by their Prosody names;
/// Prosody modules (`modules_enabled`) and stock-only options do not translate. New rooms
/// get Prosody's defaults ([`PROSODY_ROOM_DEFAULTS`]) and `room_options` (keys of
/// `default_room_options`, as `mam: true`).
pub fn module_options_for(
    muc: &Muc,
    component_config_lines: &[String],
    room_options: &[String],
) -> std::result::Result<String, String> {
    let room_options = std::iter::once(PROSODY_ROOM_DEFAULTS).chain(room_options.iter().map(String::as_str));
    let mut options =
        vec![format!("default_room_options: {{{}}}", room_options.collect::<Vec<_>>().join(", "))];
    for line in component_config_lines {
        let (name, value) = line
            .split_once('=')
            .map(|(n, v)| (n.trim(), v.trim()))
            .ok_or_else(|| format!("`{line}` is not an option"))?;
        let option = match (name, value) {
            ("modules_enabled", _) => return Err("uses Prosody modules".to_owned()),
            ("restrict_room_creation", "true") => "access_create: muc_admin".to_owned(),
            // Both modules make access_admin's users (always set: muc_admin) owners of
            // every room.
            ("component_admins_as_room_owners", "true") => continue,
            // Both modules have MucSub, always on (rooms allow it by their options).
            ("muc_mucsub", "true") => continue,
            (
                "muc_room_lock_timeout"
                | "muc_max_rooms"
                | "muc_registration_include_form"
                | "enforce_registered_nickname"
                | "allow_unaffiliated_register",
                _,
            ) if matches!(muc, Muc::MucRs(_)) => format!("{name}: {value}"),
            _ => return Err(format!("`{line}` has no {} option", muc.module_name())),
        };
        options.push(option);
    }
    Ok(options.join(", "))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
