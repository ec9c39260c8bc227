//! One benchmark server: a fresh Prosody (via `muc_harness::prosody`) with the module under
//! test on `conference.localhost`, switched to warn-level logs once it listens, or a fresh
//! ejabberd node (via `muc_harness::ejabberd`) with mod_muc_rs or its own mod_muc there;
//! and read-outs of its CPU time and memory from `/proc`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use muc_harness::ejabberd::{ClusterNode, Ejabberd, Extras, Muc};
use muc_harness::prosody::{Install, Prosody, ServerConfig};
use muc_harness::{err, Result};

/// Lua garbage collector setting, the same for every module in a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gc {
    Incremental,
    Generational,
}

impl Gc {
    pub fn label(self) -> &'static str {
        match self {
            Gc::Incremental => "incremental",
            Gc::Generational => "generational",
        }
    }
    pub fn parse(s: &str) -> Option<Gc> {
        match s {
            "incremental" | "inc" => Some(Gc::Incremental),
            "generational" | "gen" => Some(Gc::Generational),
            _ => None,
        }
    }
}

pub struct BenchServer {
    pub prosody: Prosody,
    pub pid: i32,
}

/// What a scenario needs of the server under test, Prosody or ejabberd.
pub struct Target {
    /// Each server process: its client address and the pid whose CPU time and memory are
    /// measured. One, but for a cluster, whose nodes the clients are spread over.
    pub nodes: Vec<(SocketAddr, i32)>,
    /// Where Prosody's mod_bench_heap writes its samples (none on ejabberd).
    pub heap_file: Option<PathBuf>,
}

/// Snapshot of a process's CPU time and memory.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

impl BenchServer {
    pub async fn start(
        install: &Install,
        module: &str,
        plugin_paths: Vec<PathBuf>,
        gc: Gc,
        component_extra: Vec<String>,
    ) -> Result<BenchServer> {
        let mut global_extra = Vec::new();
        if gc == Gc::Generational {
            global_extra.push("gc = { mode = \"generational\" }".to_owned());
        }
        let config = ServerConfig {
            muc_module: module.to_owned(),
            plugin_paths,
            global_extra,
            component_extra,
            storage: "memory".into(),
            debug_log: false,
        };
        BenchServer::start_with(install, config).await
    }

    /// Starts a server with the given config (`debug_log` must be off: logs go to warn).
    pub async fn start_with(install: &Install, config: ServerConfig) -> Result<BenchServer> {
        let prosody = Prosody::start(install, config).await?;
        let pid = std::fs::read_to_string(prosody.dir().join("prosody.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .or(prosody.pid().map(|p| p as i32))
            .ok_or_else(|| err!("no pid for Prosody"))?;
        let server = BenchServer { prosody, pid };
        server.quiet_logs().await?;
        Ok(server)
    }

    /// The harness writes an info-level config (it waits for an info line to know Prosody
    /// listens). Once the main loop runs (a stream opens; mod_posix sets its signal handlers
    /// from a timer), rewrite the level to warn and reload with SIGHUP, which reloads config
    /// and logging on 0.12 and 13; the "Received SIGHUP" line, still at info, confirms it.
    async fn quiet_logs(&self) -> Result<()> {
        let addr = self.prosody.c2s_addr();
        let probe = async {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>").await?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while memchr::memmem::find(&buf, b"</stream:features>").is_none() {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Ok::<_, std::io::Error>(())
        };
        tokio::time::timeout(Duration::from_secs(10), probe)
            .await
            .map_err(|_| err!("Prosody did not open a stream"))?
            .map_err(|e| err!("Prosody did not open a stream: {e}"))?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let path = self.prosody.config_path();
        let text = std::fs::read_to_string(&path)?;
        let quiet = text.replace("levels = { min = \"info\" }", "levels = { min = \"warn\" }");
        if quiet == text {
            return Err(err!("cannot find the log level in {}", path.display()));
        }
        std::fs::write(&path, quiet)?;
        // SAFETY: plain syscall on the pid of the Prosody we started.
        unsafe {
            libc::kill(self.pid, libc::SIGHUP);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self.prosody.read_log().contains("Received SIGHUP") {
            if std::time::Instant::now() > deadline {
                return Err(err!("Prosody did not reload its config on SIGHUP"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }

    pub fn target(&self) -> Target {
        Target {
            nodes: vec![(self.prosody.c2s_addr(), self.pid)],
            heap_file: Some(self.prosody.dir().join("data/bench_heap.txt")),
        }
    }

    pub async fn stop(mut self) -> String {
        let problems = muc_harness::prosody::log_problems(&self.prosody.read_log()).join("\n");
        self.prosody.kill().await;
        problems
    }
}

/// Room limits of ejabberd's mod_muc above anything a scenario reaches (its defaults: 200
/// occupants per room, 100 rooms per user, fewer presences broadcast past 1000 occupants),
/// so that stock is never throttled. Its rooms are not locked on creation and have no cache
/// (each is an Erlang process), and its shapers and minimum intervals default to none.
pub const EJABBERD_STOCK_OPTIONS: &str = "max_users: 1000000, max_users_presence: 1000000, \
     max_user_conferences: 1000000, default_room_options: {max_users: 1000000}";

/// muc_rs's module set as the Prosody target sets the component: rooms not locked on
/// creation, a room cache no scenario fills (the default, 100, would put rooms away into
/// mnesia during "many rooms"), and no occupant limit a scenario reaches (mod_muc's
/// `max_users`, 200 by default, which it honours).
pub const EJABBERD_MUC_RS_OPTIONS: &str =
    "muc_room_locking: false, muc_room_cache_size: 1000000, max_users: 1000000";

/// Fresh ejabberd nodes (one, or a cluster on loopback) with `muc` on `conference.localhost`,
/// accounts `u0`..`u<accounts-1>` and warning-level logs.
pub struct EjabberdBench {
    /// Each node with the pid of its emulator.
    pub nodes: Vec<(Ejabberd, i32)>,
}

impl EjabberdBench {
    /// One node; with `mam`, mod_mam archives every room (as ejabberd's default config has
    /// it).
    pub async fn start(muc: &Muc, accounts: u32, mam: bool) -> Result<EjabberdBench> {
        Self::start_nodes(muc, accounts, 1, mam).await
    }

    /// `count` nodes; from two on, clustered (the first registers the accounts).
    pub async fn start_cluster(muc: &Muc, accounts: u32, count: usize) -> Result<EjabberdBench> {
        Self::start_nodes(muc, accounts, count, false).await
    }

    async fn start_nodes(muc: &Muc, accounts: u32, count: usize, mam: bool) -> Result<EjabberdBench> {
        let mut options = match muc {
            Muc::Stock => EJABBERD_STOCK_OPTIONS,
            Muc::MucRs(_) | Muc::Contrib(_) => EJABBERD_MUC_RS_OPTIONS,
            Muc::Floor(_) => "",
        }
        .to_owned();
        if mam {
            options = match muc {
                Muc::Stock => {
                    options.replace("default_room_options: {", "default_room_options: {mam: true, ")
                }
                _ => format!("{options}, default_room_options: {{mam: true}}"),
            };
        }
        let cluster: Vec<Option<ClusterNode>> = match count {
            1 => vec![None],
            n => ClusterNode::cluster(n).into_iter().map(Some).collect(),
        };
        let mut nodes = Vec::new();
        for node in cluster {
            let extras = Extras {
                accounts: (0..accounts).map(|i| format!("u{i}")).collect(),
                loglevel: Some("warning".into()),
                cluster: node,
                modules: if mam { vec!["mod_mam: {}".to_owned()] } else { Vec::new() },
                ..Extras::default()
            };
            let ejabberd = Ejabberd::start_with_extras(muc, &options, extras).await?;
            let pid = ejabberd.pid().ok_or_else(|| err!("no pid for ejabberd"))? as i32;
            // erl execs the emulator, so the child is the node itself (all its schedulers
            // and dirty schedulers, where the NIF runs, are threads of it).
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if !comm.trim().starts_with("beam") {
                return Err(err!("pid {pid} is {:?}, not the Erlang emulator", comm.trim()));
            }
            nodes.push((ejabberd, pid));
        }
        Ok(EjabberdBench { nodes })
    }

    pub fn target(&self) -> Target {
        Target {
            nodes: self.nodes.iter().map(|(node, pid)| (node.c2s_addr(), *pid)).collect(),
            heap_file: None,
        }
    }

    /// Stops the nodes; returns the error and critical lines of their logs (any module's).
    pub async fn stop(self) -> String {
        // Every log is read before any node stops: the others would log its loss.
        let logs: Vec<String> = self.nodes.iter().map(|(node, _)| node.read_log()).collect();
        for (mut node, _) in self.nodes {
            node.kill().await;
        }
        let problem = |l: &&str| l.contains("[error]") || l.contains("[critical]");
        logs.iter().flat_map(|log| log.lines().filter(problem)).collect::<Vec<_>>().join("\n")
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime+stime from /proc/PID/stat; VmRSS and VmHWM from /proc/PID/status.
pub fn proc_sample(pid: i32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| err!("cannot read /proc/{pid}/stat: {e}"))?;
    let after = stat.rsplit_once(')').map(|(_, a)| a).ok_or_else(|| err!("bad /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; field 3 (state) is the first after the ')'.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let cpu_s = (ticks(11) + ticks(12)) as f64 / clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample { cpu_s, rss_kb: kb("VmRSS:"), hwm_kb: kb("VmHWM:") })
}

/// CPU seconds (user+system) of this process, all threads.
pub fn self_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// The version of the ejabberd that `muc_harness::ejabberd` runs (the one in its
/// ERL_LIBS, /usr/lib/x86_64-linux-gnu), from its `ejabberd.app` without the Debian
/// revision ("24.12-3~bpo12+1" is "24.12").
pub fn ejabberd_version() -> Result<String> {
    let libs = std::path::Path::new("/usr/lib/x86_64-linux-gnu");
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(libs)?.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("ejabberd-") {
            continue;
        }
        let Ok(app) = std::fs::read_to_string(entry.path().join("ebin/ejabberd.app")) else { continue };
        let vsn = app.split_once("{vsn,").and_then(|(_, rest)| rest.split('"').nth(1));
        if let Some(v) = vsn {
            versions.push(v.split('-').next().unwrap_or(v).to_owned());
        }
    }
    versions.sort();
    versions.dedup();
    match versions.as_slice() {
        [v] => Ok(v.clone()),
        [] => Err(err!("no ejabberd in {} (tools/install-deps.sh installs it)", libs.display())),
        many => Err(err!("more than one ejabberd in {}: {}", libs.display(), many.join(", "))),
    }
}
