//! muc-diff: the differential permission test. For every room kind × actor (affiliation, role
//! or absent) × target (affiliation, role or absent, or the actor itself) × muc#admin change
//! (each affiliation by JID, each role by nick), the same request goes to stock mod_muc and to
//! muc_rs, each on its own Prosody of the same version. The iq reply (type, error type and
//! condition) and every stanza from the room that each party received until a ping round
//! trip must be identical after normalisation (see `diff/normal.rs`).
//!
//! The cases are generated (`diff/cases.rs`): the full product in the default (open,
//! semi-anonymous) room; in moderated, members-only and non-anonymous rooms every actor and
//! target kind in the role it joins with (targets also absent); and the other addressing forms
//! (affiliation by nick, role by JID) over the open room's default roles. `--full` takes the
//! full product everywhere (about four times as long). Actors and targets include the room's
//! only owner (its creator), a service admin (`admins`, owner of every room per
//! `component_admins_as_room_owners`, on by default here; `--admins-not-owners` turns it off)
//! and, for the actor, an outcast.
//!
//! ```text
//! muc-diff [--plugin-dir DIR] [--version 0.12|13[,..]] [--variants open,moderated,...]
//!          [--full] [--jobs N] [--timeout SECONDS] [--limit N] [--filter TEXT] [--dump]
//!          [--admins-not-owners] [--config LUA-LINE] [--other-module MODULE] [--other-config LUA-LINE]
//! ```
//! Prints one `FAIL` line per case where the modules differ, the case count, and a closing
//! `N passed, M failed` line; exits non-zero on any mismatch.
//!
//! Control run (must fail, proving the comparison sees differences): compare stock with stock
//! whose service admins are not owners: `--other-module muc --other-config
//! "component_admins_as_room_owners = false" --filter "target=service-admin/absent"`.

#[path = "../diff/mod.rs"]
mod diff;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diff::cases::{self, Case, Variant};
use diff::normal::Outcome;
use diff::run::Worker;
use muc_harness::prosody::{self, repo_root, Install, Prosody, ServerConfig, Version};

struct Cli {
    plugin_dir: PathBuf,
    versions: Vec<Version>,
    variants: Vec<Variant>,
    jobs: usize,
    timeout: Duration,
    limit: Option<usize>,
    filter: Option<String>,
    dump: bool,
    full: bool,
    /// The module compared with stock (muc_rs; `muc` for a control run).
    other_module: String,
    /// Extra component config lines for the compared module's server only.
    other_config: Vec<String>,
    /// Extra component config lines for both servers (after the defaults, so they win).
    config: Vec<String>,
    /// `component_admins_as_room_owners` on both servers.
    admins_owners: bool,
}

fn usage() -> &'static str {
    "usage: muc-diff [--plugin-dir DIR] [--version 0.12|13[,..]] \
     [--variants open,moderated,members-only,non-anonymous] [--jobs N] [--timeout SECONDS] \
     [--full] [--limit N] [--filter TEXT] [--dump] [--admins-not-owners] [--config LINE] [--other-module MODULE] [--other-config LINE]"
}

fn parse_cli() -> Result<Cli, String> {
    let mut cli = Cli {
        plugin_dir: repo_root().join("build/plugin"),
        versions: Version::ALL.to_vec(),
        variants: Variant::ALL.to_vec(),
        jobs: 4,
        timeout: Duration::from_secs(10),
        limit: None,
        filter: None,
        dump: false,
        full: false,
        other_module: RS.to_owned(),
        other_config: Vec::new(),
        config: Vec::new(),
        admins_owners: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value\n{}", usage()));
        match a.as_str() {
            "--plugin-dir" => {
                let p = PathBuf::from(val()?);
                cli.plugin_dir =
                    if p.is_absolute() { p } else { std::env::current_dir().unwrap_or_default().join(p) };
            }
            "--version" => {
                cli.versions = list(&val()?, Version::parse).ok_or("--version: 0.12 or 13")?;
            }
            "--variants" => {
                cli.variants = list(&val()?, Variant::parse)
                    .ok_or("--variants: open, moderated, members-only, non-anonymous")?;
            }
            "--jobs" => cli.jobs = val()?.parse::<usize>().map_err(|e| format!("--jobs: {e}"))?.max(1),
            "--timeout" => {
                cli.timeout = Duration::from_secs(val()?.parse().map_err(|e| format!("--timeout: {e}"))?)
            }
            "--limit" => cli.limit = Some(val()?.parse().map_err(|e| format!("--limit: {e}"))?),
            "--filter" => cli.filter = Some(val()?),
            "--dump" => cli.dump = true,
            "--full" => cli.full = true,
            "--other-module" => cli.other_module = val()?,
            "--other-config" => cli.other_config.push(val()?),
            "--config" => cli.config.push(val()?),
            "--admins-not-owners" => cli.admins_owners = false,
            "-h" | "--help" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if !cli.admins_owners {
        cli.config.push("component_admins_as_room_owners = false".to_owned());
    }
    Ok(cli)
}

fn list<T>(s: &str, f: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    s.split(',').filter(|x| !x.is_empty()).map(f).collect()
}

const STOCK: &str = "muc";
const RS: &str = "muc_rs";

type CaseResult = Result<Outcome, String>;

/// What one server run produced: a result per case (`None`: never run), and log problems.
struct ServerRun {
    results: Vec<Option<CaseResult>>,
    problems: Vec<String>,
    elapsed: Duration,
    /// Prosody's CPU time (user + system), in seconds.
    cpu: f64,
}

/// CPU seconds a process has used, from `/proc/PID/stat` (0 if unreadable).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf is a plain query.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

fn main() -> ExitCode {
    muc_harness::run_tool(parse_cli, async_main)
}

async fn async_main(cli: Cli) -> ExitCode {
    let mut cases = cases::generate(&cli.variants, cli.full, cli.admins_owners);
    if let Some(f) = &cli.filter {
        cases.retain(|c| c.to_string().contains(f.as_str()));
    }
    if let Some(n) = cli.limit {
        cases.truncate(n);
    }
    let cases = Arc::new(cases);
    let mut installs = Vec::new();
    for &v in &cli.versions {
        match Install::discover(v) {
            Ok(i) => installs.push(i),
            Err(e) => {
                eprintln!("muc-diff: {e}");
                println!("0 passed, 1 failed");
                return ExitCode::FAILURE;
            }
        }
    }
    let began = Instant::now();
    println!(
        "muc-diff: {} cases per version ({}), Prosody {}",
        cases.len(),
        cli.variants.iter().map(|v| v.label()).collect::<Vec<_>>().join(", "),
        cli.versions.iter().map(|v| v.label()).collect::<Vec<_>>().join(" and ")
    );

    // Every (version, side) server at once, each with its own workers.
    let other = if cli.other_module == RS && cli.other_config.is_empty() { RS } else { "other" };
    let other_config: Vec<String> = cli.config.iter().chain(&cli.other_config).cloned().collect();
    let sides =
        [(STOCK, STOCK.to_owned(), cli.config.clone()), (other, cli.other_module.clone(), other_config)];
    let mut set = tokio::task::JoinSet::new();
    for install in &installs {
        for (label, module, extra) in sides.clone() {
            let (install, cases, plugin_dir) = (install.clone(), cases.clone(), cli.plugin_dir.clone());
            let (jobs, timeout) = (cli.jobs, cli.timeout);
            set.spawn(async move {
                let r = run_server(&install, &module, extra, plugin_dir, cases, jobs, timeout).await;
                (install.version, label, r)
            });
        }
    }
    let mut runs: BTreeMap<(&str, &str), Result<ServerRun, String>> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let (version, module, r) = joined.expect("server task");
        match &r {
            Ok(run) => eprintln!(
                "muc-diff: Prosody {} {module}: {} cases in {:.1} s (Prosody CPU {:.1} s)",
                version.label(),
                run.results.iter().filter(|r| r.is_some()).count(),
                run.elapsed.as_secs_f64(),
                run.cpu
            ),
            Err(e) => eprintln!("muc-diff: Prosody {} {module}: {e}", version.label()),
        }
        runs.insert((version.label(), module), r);
    }

    let (mut passed, mut failed) = (0usize, 0usize);
    let mut classes: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for install in &installs {
        let v = install.version.label();
        let (stock, rs) = match (&runs[&(v, STOCK)], &runs[&(v, other)]) {
            (Ok(s), Ok(r)) => (s, r),
            (s, r) => {
                for (m, x) in [(STOCK, s), (other, r)] {
                    if let Err(e) = x {
                        println!("FAIL [{v}] {m} server: {e}");
                    }
                }
                failed += cases.len();
                continue;
            }
        };
        for (m, run) in [(STOCK, stock), (other, rs)] {
            for p in &run.problems {
                println!("FAIL [{v}] {m} log: {p}");
            }
            if !run.problems.is_empty() {
                failed += 1;
            }
        }
        for (i, case) in cases.iter().enumerate() {
            if cli.dump {
                if let Some(Ok(o)) = &stock.results[i] {
                    println!("CASE [{v}] #{i} {case}: {:?}", o.parts());
                }
            }
            match compare(&stock.results[i], &rs.results[i], other) {
                Ok(()) => passed += 1,
                Err(diffs) => {
                    failed += 1;
                    println!("FAIL [{v}] #{i} {case}: {}", diffs.join(" | "));
                    let class = format!("[{v}] {}", class_of(case, &diffs));
                    let e = classes.entry(class).or_insert((0, format!("#{i} {case}")));
                    e.0 += 1;
                }
            }
        }
    }
    if !classes.is_empty() {
        println!("mismatch classes (count, first case):");
        for (class, (n, first)) in &classes {
            println!("  {n:5}  {class}  e.g. {first}");
        }
    }
    println!(
        "muc-diff: {} cases × {} version(s) = {} comparisons in {:.0} s",
        cases.len(),
        installs.len(),
        cases.len() * installs.len(),
        began.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `Ok` when both modules produced the same outcome; else the differing parts, each as
/// `part: stock=... muc_rs=...`.
fn compare(stock: &Option<CaseResult>, rs: &Option<CaseResult>, other: &str) -> Result<(), Vec<String>> {
    match (stock, rs) {
        (Some(Ok(s)), Some(Ok(r))) if s == r => Ok(()),
        (Some(Ok(s)), Some(Ok(r))) => {
            let (sp, rp) = (s.parts(), r.parts());
            let mut keys: Vec<&String> = sp.keys().chain(rp.keys()).collect();
            keys.sort();
            keys.dedup();
            let none = String::from("(nothing)");
            Err(keys
                .into_iter()
                .filter(|k| sp.get(*k) != rp.get(*k))
                .map(|k| {
                    format!(
                        "{k}: stock={} {other}={}",
                        sp.get(k).unwrap_or(&none),
                        rp.get(k).unwrap_or(&none)
                    )
                })
                .collect())
        }
        (s, r) => {
            let show = |x: &Option<CaseResult>| match x {
                None => "not run".to_owned(),
                Some(Err(e)) => format!("error: {e}"),
                Some(Ok(o)) => format!("{:?}", o.parts()),
            };
            Err(vec![format!("stock: {} ; {other}: {}", show(s), show(r))])
        }
    }
}

/// A coarse class for the summary: the request kind and which parts differ.
fn class_of(case: &Case, diffs: &[String]) -> String {
    let parts: Vec<&str> = diffs.iter().map(|d| d.split(':').next().unwrap_or("")).collect();
    let change = if case.change.is_affiliation() { "affiliation" } else { "role" };
    let reply = diffs.iter().find(|d| d.starts_with("reply:")).cloned().unwrap_or_default();
    format!("{change} change; differs in {} {reply}", parts.join(","))
}

async fn run_server(
    install: &Install,
    module: &str,
    extra: Vec<String>,
    plugin_dir: PathBuf,
    cases: Arc<Vec<Case>>,
    jobs: usize,
    timeout: Duration,
) -> Result<ServerRun, String> {
    let config = ServerConfig {
        muc_module: module.to_owned(),
        plugin_paths: vec![plugin_dir],
        component_extra: vec![
            "muc_room_locking = false".to_owned(),
            "muc_room_cache_size = 100000".to_owned(),
            "component_admins_as_room_owners = true".to_owned(),
        ]
        .into_iter()
        .chain(extra)
        .collect(),
        ..Default::default()
    };
    let mut server = Prosody::start(install, config).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<Option<CaseResult>>>> = Arc::new(Mutex::new(vec![None; cases.len()]));
    let mut set = tokio::task::JoinSet::new();
    for id in 0..jobs {
        let (next, results, cases) = (next.clone(), results.clone(), cases.clone());
        let addr = server.c2s_addr();
        set.spawn(async move {
            let mut worker = Worker::connect(addr, id, timeout).await?;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases.len() {
                    return Ok(());
                }
                let r = worker.run(i, &cases[i]).await;
                results.lock().expect("results")[i] = Some(r);
                if !worker.alive() {
                    return Err(format!("worker {id}: a stream ended"));
                }
            }
        });
    }
    let mut worker_errors = Vec::new();
    while let Some(j) = set.join_next().await {
        if let Ok(Err(e)) = j {
            worker_errors.push(e);
        }
    }
    let elapsed = started.elapsed();
    let cpu = server.pid().map_or(0.0, cpu_seconds);
    let mut problems = prosody::log_problems(&server.read_log());
    problems.extend(worker_errors);
    server.kill().await;
    let results = std::mem::take(&mut *results.lock().expect("results"));
    Ok(ServerRun { results, problems, elapsed, cpu })
}
