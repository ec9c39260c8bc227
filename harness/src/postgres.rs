//! A throwaway PostgreSQL server for storage tests: `initdb` into a temp dir, `postgres` on
//! a free loopback port as the `postgres` user (via `runuser`), one database for Prosody.
//! Needs root and the `postgresql` package (tools/install-deps.sh installs it).
//!
//! The server never outlives the harness: [`Postgres::stop`] shuts it down (fast mode), drop
//! kills it, and `setpriv --pdeathsig` ties it to its `runuser`, which itself gets
//! `PR_SET_PDEATHSIG` from the harness thread that spawned it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::{err, Result};

/// Database created for Prosody.
pub const DATABASE: &str = "prosody";
/// Superuser (trust authentication on loopback: no password).
pub const USER: &str = "postgres";
/// Overrides the folder with `initdb`, `postgres` and `createdb`.
pub const BIN_ENV: &str = "MUC_HARNESS_POSTGRES_BIN";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const PORT_TRIES: usize = 5;

pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with a `postgres` in it.
pub fn find_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(BIN_ENV) {
        let p = PathBuf::from(p);
        return if p.join("postgres").is_file() {
            Ok(p)
        } else {
            Err(err!("{BIN_ENV}={} has no postgres executable", p.display()))
        };
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| err!("PostgreSQL not found in /usr/lib/postgresql ({e}); run tools/install-deps.sh"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| err!("no PostgreSQL server in /usr/lib/postgresql; run tools/install-deps.sh"))
}

/// uid and gid of a user.
fn user_ids(name: &str) -> Result<(u32, u32)> {
    let cname = std::ffi::CString::new(name).map_err(|_| err!("bad user name {name:?}"))?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy the ids at once.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return Err(err!("no user {name:?} (is the postgresql package installed?)"));
    }
    // SAFETY: non-null result of getpwnam.
    let pw = unsafe { &*pw };
    Ok((pw.pw_uid, pw.pw_gid))
}

impl Postgres {
    /// initdb, start on a free loopback port, create [`DATABASE`].
    pub async fn start() -> Result<Postgres> {
        let bin = find_bin()?;
        let (uid, gid) = user_ids(USER)?;
        let dir = tempfile::Builder::new()
            .prefix("muc-harness-pg-")
            .tempdir()
            .map_err(|e| err!("cannot create a temp dir: {e}"))?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .map_err(|e| err!("cannot hand {} to {USER}: {e}", dir.path().display()))?;
        let mut pg = Postgres { bin, dir, port: 0, child: None };
        let data = pg.data_path();
        pg.run_as_postgres(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                USER.as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        )
        .await?;
        let mut last_err = None;
        for _ in 0..PORT_TRIES {
            match pg.launch(crate::prosody::free_port()?).await {
                Ok(()) => {
                    pg.create_database(DATABASE).await?;
                    return Ok(pg);
                }
                Err(e) => {
                    pg.kill().await;
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| err!("PostgreSQL did not start")))
    }

    fn data_path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Prosody's `sql = { ... }` setting for [`DATABASE`] on this server.
    pub fn prosody_sql(&self) -> String {
        self.prosody_sql_for(DATABASE)
    }

    /// Prosody's `sql = { ... }` setting for a database on this server.
    pub fn prosody_sql_for(&self, database: &str) -> String {
        format!(
            "sql = {{ driver = \"PostgreSQL\", database = \"{database}\", username = \"{USER}\", \
             host = \"127.0.0.1\", port = {} }}",
            self.port
        )
    }

    /// Creates another (empty) database.
    pub async fn create_database(&self, name: &str) -> Result<()> {
        self.run_client("createdb", &[name]).await.map(drop)
    }

    /// Pid of the postmaster, from its pid file.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data_path().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok().filter(|&pid| pid > 1)
    }

    /// Runs a client tool (createdb, psql) on this server over loopback, as `USER`.
    async fn run_client(&self, tool: &str, args: &[&str]) -> Result<String> {
        let port = self.port.to_string();
        let connection = ["-h", "127.0.0.1", "-p", &port, "-U", USER];
        let all: Vec<&std::ffi::OsStr> = connection.iter().chain(args).map(std::ffi::OsStr::new).collect();
        self.run_as_postgres(tool, &all).await
    }

    /// One of the server's tools as the postgres user, waiting for it; an error with its
    /// output if it fails.
    async fn run_as_postgres(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
        let out = Command::new("runuser")
            .args(["-u", USER, "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| err!("cannot run runuser {tool}: {e}"))?;
        if !out.status.success() {
            return Err(err!(
                "{tool} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs one SQL statement with `psql` in a database; its rows, unaligned (`|` between
    /// columns), one a line.
    pub async fn query(&self, database: &str, sql: &str) -> Result<String> {
        self.run_client("psql", &["-d", database, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]).await
    }

    /// Stops the server (fast mode) and starts it again on the same data and port: for tests
    /// of a storage that goes away and comes back.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        self.launch(self.port).await
    }

    async fn launch(&mut self, port: u16) -> Result<()> {
        self.port = port;
        let log_offset = std::fs::metadata(self.log_path()).map(|m| m.len()).unwrap_or(0);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path())?;
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", USER, "--", "setpriv", "--pdeathsig", "KILL"])
            .arg(self.bin.join("postgres"))
            .arg("-D")
            .arg(self.data_path())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=20"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; the closure touches no shared state.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().map_err(|e| err!("cannot run runuser postgres: {e}"))?);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = std::fs::read(self.log_path()).unwrap_or_default();
            let log = String::from_utf8_lossy(&log[(log_offset as usize).min(log.len())..]).into_owned();
            if log.contains("database system is ready to accept connections") {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(err!("postgres exited during startup ({status}):\n{log}"));
                }
            }
            if Instant::now() > deadline {
                return Err(err!("postgres did not start within {START_TIMEOUT:?}:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fast shutdown (SIGINT to the postmaster), SIGKILL if it takes longer than 10 s.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.postmaster_pid() {
            // SAFETY: plain syscall on the postmaster we started.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
        if let Some(child) = self.child.as_mut() {
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_ok() {
                self.child = None;
            }
        }
        self.kill().await;
    }

    /// Whether a postmaster of this server is still alive.
    pub fn running(&self) -> bool {
        // SAFETY: signal 0 only checks for existence.
        self.postmaster_pid().is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0) || self.child.is_some()
    }

    async fn kill(&mut self) {
        self.kill_now();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
    }

    fn kill_now(&self) {
        if self.child.is_none() {
            return; // a stale pid file may name a recycled pid
        }
        if let Some(pid) = self.postmaster_pid() {
            // SAFETY: plain syscall on the postmaster we started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            // SAFETY: plain syscall on the runuser we started.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill_now();
    }
}
