//! muc-bench: runs the benchmark scenarios against stock mod_muc and muc_rs (and the two
//! floor modules in tools/bench-floor), each on a fresh Prosody with the
//! same config, alternating modules over the repetitions; prints the table and writes CSV
//! and an SVG chart. With `--ejabberd`, the same scenarios run on a fresh ejabberd node
//! instead, with ejabberd's own mod_muc ("stock") or muc_rs's mod_muc_rs on
//! `conference.localhost`, measuring the node's CPU and memory the same way.
//!
//! ```text
//! muc-bench --plugin-dir build/bench/plugin [--quick] [--reps N] [--version 0.12|13]
//!           [--gc incremental,generational] [--scenarios join,fanout,rooms,churn]
//!           [--no-floors] [--component-modules muc_mam,..] [--out build/bench]
//!           [--perf-dir DIR] [--lua-profile-dir DIR] [--size key=value ...]
//! muc-bench --ejabberd [--module-dir build/ejabberd/mod_muc_rs] [--quick] [--reps N]
//!           [--scenarios join,fanout,rooms,churn] [--out build/bench/ejabberd]
//!           [--no-floors] [--size key=value ...]
//! ```
//! The ejabberd target (24.12, as `muc_harness::ejabberd` starts it: mnesia in a temp dir,
//! c2s on loopback, no shaper, logs at warning) registers an account per client. Stock
//! mod_muc gets room limits above anything a scenario reaches
//! (`bench::server::EJABBERD_STOCK_OPTIONS`); mod_muc_rs gets what the Prosody target gives
//! both modules: no room locking and a room cache no scenario fills, and mod_muc's
//! `max_users` (which it honours) above anything a scenario reaches. Its floor is
//! `tools/bench-floor/mod_bench_floor.erl` (compiled into the output dir): the same
//! stanzas to the same recipients, a process per room, no MUC logic. GC settings,
//! component modules and the profilers are the Prosody target's only.
//! `--component-modules` enables Prosody modules on the MUC component of every module
//! under test (`modules_enabled` in its section), e.g. `muc_mam`, which archives into the
//! memory storage and stamps every message with a stanza-id (fan-out checks that every
//! delivery has one). It skips the floors: they do no MUC logic for such modules to act
//! on, and a module that depends on `muc` would load stock mod_muc beside them.
//! Size keys: join_n, fanout_n, senders, messages, body, sender_window, rooms,
//! rooms_clients, churn_cycles, churn_stay, churn_clients, window, timeout (seconds).

#[path = "../bench/mod.rs"]
mod bench;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench::report::{self, Run, Setting, FLOOR, FLOOR_CLONE, FLOOR_INPLACE, RS, STOCK};
use bench::scenario::{self, Probe, Scenario, Sizes};
use bench::server::{BenchServer, EjabberdBench, Gc};
use muc_harness::ejabberd::Muc;
use muc_harness::prosody::{repo_root, Install, Version};

struct Cli {
    /// The ejabberd target, with muc_rs's module from this dir.
    ejabberd: Option<PathBuf>,
    /// With the ejabberd target: muc_rs on one node against a two-node cluster.
    cluster: bool,
    /// With the ejabberd target: mod_mam on both nodes, every room archived.
    mam: bool,
    plugin_dir: PathBuf,
    floor_dir: PathBuf,
    out: Option<PathBuf>,
    reps: u32,
    versions: Vec<Version>,
    gcs: Vec<Gc>,
    scenarios: Vec<Scenario>,
    floors: bool,
    /// Extra modules on the MUC component, on every module under test.
    component_modules: Vec<String>,
    sizes: Sizes,
    perf_dir: Option<PathBuf>,
    lua_profile_dir: Option<PathBuf>,
}

fn usage() -> &'static str {
    "usage: muc-bench [--plugin-dir DIR] [--quick] [--reps N] [--version 0.12|13[,..]] \
     [--gc incremental,generational] [--scenarios join,fanout,rooms,churn] [--no-floors] \
     [--component-modules NAME[,..]] [--out DIR] [--perf-dir DIR] [--lua-profile-dir DIR] \
     [--size key=value ...]\n\
     \x20      muc-bench --ejabberd [--cluster] [--module-dir DIR] [--quick] [--reps N] \
     [--scenarios join,fanout,rooms,churn] [--no-floors] [--mam] [--out DIR] [--size key=value ...]\n\
     --mam: with --ejabberd, mod_mam on stock and mod_muc_rs alike, every room archived \
     (default_room_options mam: true; the floor is skipped)\n\
     --cluster: muc_rs on one ejabberd node against two clustered nodes (clients spread \
     over them), as throughput and each node's CPU; results in build/bench/ejabberd\n\
     --component-modules muc_mam: modules enabled on the MUC component of stock and muc_rs \
     alike (the floors are skipped)\n\
     --ejabberd: stock mod_muc and mod_muc_rs (from --module-dir, default \
     build/ejabberd/mod_muc_rs), and the floor (tools/bench-floor/mod_bench_floor.erl), on \
     ejabberd instead of Prosody; results in build/bench/ejabberd"
}

fn parse_cli() -> Result<Cli, String> {
    let root = repo_root();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    args.retain(|a| a != "--quick");
    let mut cli = Cli {
        cluster: false,
        mam: false,
        ejabberd: None,
        plugin_dir: root.join("build/bench/plugin"),
        floor_dir: root.join("tools/bench-floor"),
        out: None,
        reps: if quick { 2 } else { 5 },
        versions: vec![Version::V0_12],
        gcs: vec![Gc::Incremental, Gc::Generational],
        scenarios: Scenario::ALL.to_vec(),
        floors: true,
        component_modules: Vec::new(),
        sizes: if quick { Sizes::quick() } else { Sizes::full() },
        perf_dir: None,
        lua_profile_dir: None,
    };
    let mut it = args.into_iter();
    let mut module_dir = None;
    let mut ejabberd = false;
    // Options given that only the Prosody target has.
    let mut given_prosody_only = Vec::new();
    while let Some(a) = it.next() {
        let prosody_only =
            ["--plugin-dir", "--perf-dir", "--lua-profile-dir", "--component-modules", "--version", "--gc"];
        if prosody_only.contains(&a.as_str()) {
            given_prosody_only.push(a.clone());
        }
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value\n{}", usage()));
        match a.as_str() {
            "--ejabberd" => ejabberd = true,
            "--cluster" => cli.cluster = true,
            "--mam" => cli.mam = true,
            "--module-dir" => module_dir = Some(muc_harness::absolute_path(val()?)),
            "--plugin-dir" => cli.plugin_dir = muc_harness::absolute_path(val()?),
            "--floor-dir" => cli.floor_dir = muc_harness::absolute_path(val()?),
            "--out" => cli.out = Some(muc_harness::absolute_path(val()?)),
            "--perf-dir" => cli.perf_dir = Some(muc_harness::absolute_path(val()?)),
            "--lua-profile-dir" => cli.lua_profile_dir = Some(muc_harness::absolute_path(val()?)),
            "--reps" => cli.reps = val()?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--no-floors" => cli.floors = false,
            "--component-modules" => {
                let is_name =
                    |m: &str| m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                cli.component_modules = list(&val()?, |m| is_name(m).then(|| m.to_owned()))
                    .ok_or("--component-modules: module names, comma-separated")?;
            }
            "--version" => {
                cli.versions = list(&val()?, Version::parse).ok_or("--version: 0.12 or 13")?;
            }
            "--gc" => cli.gcs = list(&val()?, Gc::parse).ok_or("--gc: incremental or generational")?,
            "--scenarios" => {
                cli.scenarios =
                    list(&val()?, Scenario::parse).ok_or("--scenarios: join,fanout,rooms,churn")?;
            }
            "--size" => set_size(&mut cli.sizes, &val()?)?,
            "-h" | "--help" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    if cli.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    match (ejabberd, module_dir) {
        (true, dir) => {
            if !given_prosody_only.is_empty() {
                return Err(format!("{}: not with --ejabberd (Prosody only)", given_prosody_only.join(", ")));
            }
            cli.ejabberd = Some(dir.unwrap_or_else(muc_harness::ejabberd::default_module_dir));
        }
        (false, Some(_)) => return Err("--module-dir: only with --ejabberd".into()),
        (false, None) if cli.cluster => return Err("--cluster: only with --ejabberd".into()),
        (false, None) if cli.mam => return Err("--mam: only with --ejabberd".into()),
        (false, None) => {}
    }
    if cli.mam && cli.floors {
        eprintln!("muc-bench: --mam: no floor (it archives nothing)");
        cli.floors = false;
    }
    if !cli.component_modules.is_empty() && cli.floors {
        eprintln!("muc-bench: --component-modules: no floors (they do no MUC logic for modules to act on)");
        cli.floors = false;
    }
    Ok(cli)
}

fn list<T>(s: &str, f: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    s.split(',').filter(|x| !x.is_empty()).map(f).collect()
}

fn set_size(sizes: &mut Sizes, kv: &str) -> Result<(), String> {
    let (k, v) = kv.split_once('=').ok_or_else(|| format!("--size {kv}: expected key=value"))?;
    let n: u64 = v.parse().map_err(|e| format!("--size {kv}: {e}"))?;
    let n32 = u32::try_from(n).map_err(|_| format!("--size {kv}: too big"))?;
    match k {
        "join_n" => sizes.join_n = n32,
        "fanout_n" => sizes.fanout_n = n32,
        "senders" => sizes.senders = n32,
        "messages" => sizes.messages = n32,
        "body" => sizes.body = n as usize,
        "sender_window" => sizes.sender_window = n32.max(1),
        "rooms" => sizes.rooms = n32,
        "rooms_clients" => sizes.rooms_clients = n32,
        "churn_cycles" => sizes.churn_cycles = n32,
        "churn_stay" => sizes.churn_stay = n32,
        "churn_clients" => sizes.churn_clients = n32,
        "window" => sizes.window = (n as usize).max(1),
        "timeout" => sizes.timeout = Duration::from_secs(n),
        _ => return Err(format!("--size: unknown key {k}")),
    }
    Ok(())
}

/// `perf record` attached to Prosody during the measured part of a run.
struct Perf {
    file: PathBuf,
    child: Option<std::process::Child>,
}

/// The Lua sampling profile of tools/bench-floor/mod_bench_luaprof.lua, which SIGUSR1
/// starts and stops; it writes `file`.
struct LuaProfile {
    file: PathBuf,
    pid: Option<i32>,
}

impl Probe for LuaProfile {
    fn start(&mut self, pid: i32) {
        let _ = std::fs::remove_file(&self.file);
        self.pid = Some(pid);
        // SAFETY: plain syscall on the pid of the Prosody we started.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }
    }

    fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        // SAFETY: as above.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.file.is_file() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        match self.file.is_file() {
            true => eprintln!("muc-bench: Lua profile in {}", self.file.display()),
            false => eprintln!("muc-bench: no Lua profile in {}", self.file.display()),
        }
    }
}

/// The probes of one run, started and stopped together.
impl Probe for Vec<Box<dyn Probe>> {
    fn start(&mut self, pid: i32) {
        self.iter_mut().for_each(|p| p.start(pid));
    }

    fn stop(&mut self) {
        self.iter_mut().for_each(|p| p.stop());
    }
}

impl Probe for Perf {
    fn start(&mut self, pid: i32) {
        let child = std::process::Command::new("perf")
            .args(["record", "-q", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
            .arg(&self.file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(c) => {
                self.child = Some(c);
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => eprintln!("muc-bench: cannot run perf: {e}"),
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling the perf process we started.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGINT);
            }
            let _ = c.wait();
            eprintln!("muc-bench: perf profile in {}", self.file.display());
        }
    }
}

fn main() -> ExitCode {
    muc_harness::run_tool(parse_cli, run)
}

async fn run(cli: Cli) -> ExitCode {
    if let Some(module_dir) = &cli.ejabberd {
        if cli.cluster {
            return run_cluster(&cli, module_dir).await;
        }
        return run_ejabberd(&cli, module_dir).await;
    }
    if !cli.plugin_dir.join("muc_rs.so").is_file() {
        eprintln!(
            "muc-bench: no muc_rs.so in {} (make bench assembles it from the release build)",
            cli.plugin_dir.display()
        );
        return ExitCode::from(2);
    }
    let mut installs = Vec::new();
    for &v in &cli.versions {
        match Install::discover(v) {
            Ok(i) => installs.push(i),
            Err(e) => {
                eprintln!("muc-bench: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let plugin_paths = vec![cli.plugin_dir.clone(), cli.floor_dir.clone()];
    let mut component_extra =
        vec!["muc_room_locking = false".to_owned(), "muc_room_cache_size = 100000".to_owned()];
    if !cli.component_modules.is_empty() {
        let names: Vec<String> = cli.component_modules.iter().map(|m| format!("{m:?}")).collect();
        component_extra.push(format!("modules_enabled = {{ {} }}", names.join(", ")));
    }
    let archived = cli.component_modules.iter().any(|m| m == "muc_mam");
    let began = Instant::now();
    let mut runs: Vec<Run> = Vec::new();
    let total_runs: usize = cli.reps as usize
        * installs.len()
        * cli.gcs.len()
        * cli.scenarios.iter().map(|_| if cli.floors { 4 } else { 2 }).sum::<usize>();
    for rep in 0..cli.reps {
        for install in &installs {
            for &gc in &cli.gcs {
                for &scenario in &cli.scenarios {
                    let mut modules = vec![STOCK, RS];
                    if cli.floors {
                        modules.extend([FLOOR_CLONE, FLOOR_INPLACE]);
                    }
                    // Alternate which module goes first from one repetition to the next.
                    if rep % 2 == 1 {
                        modules.reverse();
                    }
                    for module in modules {
                        let started = Instant::now();
                        // Profiles of the first repetition, if asked for.
                        let profile_file = |dir: &PathBuf, ext: &str| {
                            let _ = std::fs::create_dir_all(dir);
                            dir.join(format!(
                                "{}-{}-{}-{}.{ext}",
                                scenario.label(),
                                report::module_label(module),
                                gc.label(),
                                install.version.label()
                            ))
                        };
                        let mut probes: Vec<Box<dyn Probe>> = Vec::new();
                        if let Some(d) = cli.perf_dir.as_ref().filter(|_| rep == 0) {
                            probes.push(Box::new(Perf { file: profile_file(d, "data"), child: None }));
                        }
                        let lua_profile =
                            cli.lua_profile_dir.as_ref().filter(|_| rep == 0).map(|d| profile_file(d, "txt"));
                        if let Some(file) = &lua_profile {
                            probes.push(Box::new(LuaProfile { file: file.clone(), pid: None }));
                        }
                        let result = run_one(
                            install,
                            module,
                            &plugin_paths,
                            gc,
                            &component_extra,
                            scenario,
                            &cli.sizes,
                            lua_profile.as_deref(),
                            (!probes.is_empty()).then_some(&mut probes as &mut dyn Probe),
                        )
                        .await
                        .and_then(|m| check_stanza_ids(scenario, archived, m));
                        probes.stop();
                        let status = run_status(scenario, &result);
                        runs.push(Run {
                            scenario,
                            setting: Setting::prosody(install.version.label(), gc),
                            rep,
                            module: module.to_owned(),
                            result,
                        });
                        eprintln!(
                            "[{}/{}] rep {} {} gc={} {} {}: {} ({:.0} s)",
                            runs.len(),
                            total_runs,
                            rep + 1,
                            install.version.label(),
                            gc.label(),
                            scenario.label(),
                            report::module_label(module),
                            status,
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            }
        }
    }
    let with = match cli.component_modules.is_empty() {
        true => String::new(),
        false => format!(", both with {}", cli.component_modules.join(", ")),
    };
    let servers = cli.versions.iter().map(|v| format!("Prosody {}", v.label())).collect::<Vec<_>>();
    let note = (!with.is_empty())
        .then(|| format!("Component modules on stock and muc_rs: {}", cli.component_modules.join(", ")));
    let out = cli.out.clone().unwrap_or_else(|| repo_root().join("build/bench"));
    finish(&out, &runs, &title(&with, cli.reps, &servers.join(", ")), note, began)
}

/// The ejabberd target: every scenario on a fresh node with stock mod_muc and with muc_rs's
/// module, which go first in turn from one repetition to the next.
async fn run_ejabberd(cli: &Cli, module_dir: &Path) -> ExitCode {
    if !module_dir.join("ebin/mod_muc_rs.beam").is_file() {
        eprintln!(
            "muc-bench: no mod_muc_rs.beam in {}/ebin (make install-ejabberd builds it)",
            module_dir.display()
        );
        return ExitCode::from(2);
    }
    let version = match bench::server::ejabberd_version() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("muc-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let setting = Setting::ejabberd(&version);
    let out = cli.out.clone().unwrap_or_else(|| repo_root().join("build/bench/ejabberd"));
    let floor = match cli.floors.then(|| build_floor(&cli.floor_dir, &out.join("floor"))).transpose() {
        Ok(floor) => floor,
        Err(e) => {
            eprintln!("muc-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let began = Instant::now();
    let mut runs: Vec<Run> = Vec::new();
    let mut modules = vec![STOCK, RS];
    if floor.is_some() {
        modules.push(FLOOR);
    }
    let total_runs = cli.reps as usize * cli.scenarios.len() * modules.len();
    for rep in 0..cli.reps {
        for &scenario in &cli.scenarios {
            // Each module goes first in turn.
            modules.rotate_left(1);
            for &module in &modules {
                let started = Instant::now();
                let muc = match (module, &floor) {
                    (RS, _) => Muc::MucRs(module_dir.to_owned()),
                    (FLOOR, Some(floor)) => Muc::Floor(floor.clone()),
                    _ => Muc::Stock,
                };
                let result = run_one_ejabberd(&muc, scenario, &cli.sizes, cli.mam).await;
                let status = run_status(scenario, &result);
                runs.push(Run { scenario, setting: setting.clone(), rep, module: module.to_owned(), result });
                eprintln!(
                    "[{}/{}] rep {} {} {} {}: {} ({:.0} s)",
                    runs.len(),
                    total_runs,
                    rep + 1,
                    setting.label(),
                    scenario.label(),
                    report::module_label(module),
                    status,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    let with = if cli.mam { " (mod_mam on both, every room archived)" } else { "" };
    finish(&out, &runs, &title(with, cli.reps, &setting.label()), None, began)
}

/// ejabberd's floor module compiled from `floor_dir` into `into/ebin`: the dir for
/// [`Muc::Floor`].
fn build_floor(floor_dir: &Path, into: &Path) -> Result<PathBuf, String> {
    let ebin = into.join("ebin");
    std::fs::create_dir_all(&ebin).map_err(|e| format!("cannot make {}: {e}", ebin.display()))?;
    let ejabberd = "/usr/lib/x86_64-linux-gnu/ejabberd-24.12";
    let output = std::process::Command::new("erlc")
        .arg("-pa")
        .arg(format!("{ejabberd}/ebin"))
        .arg("-I")
        .arg(format!("{ejabberd}/include"))
        .arg("-o")
        .arg(&ebin)
        .arg(floor_dir.join("mod_bench_floor.erl"))
        .env("ERL_LIBS", "/usr/lib/x86_64-linux-gnu")
        .output()
        .map_err(|e| format!("cannot run erlc: {e}"))?;
    if !output.status.success() {
        return Err(format!("the floor does not compile:\n{}", String::from_utf8_lossy(&output.stdout)));
    }
    Ok(into.to_owned())
}

/// muc_rs on one node and on a two-node cluster, alternating, the scenarios' clients spread
/// over the nodes (`uN` on node `N mod nodes`): throughput and each node's CPU.
async fn run_cluster(cli: &Cli, module_dir: &Path) -> ExitCode {
    let muc = Muc::MucRs(module_dir.to_owned());
    let mut results: Vec<(Scenario, usize, scenario::Measured)> = Vec::new();
    let mut failed = 0;
    for rep in 0..cli.reps {
        for &scenario in &cli.scenarios {
            let mut sizes_of_cluster = [1, 2];
            if rep % 2 == 1 {
                sizes_of_cluster.reverse();
            }
            for nodes in sizes_of_cluster {
                let started = Instant::now();
                let result = async {
                    let server = EjabberdBench::start_cluster(&muc, scenario.clients(&cli.sizes), nodes)
                        .await
                        .map_err(|e| e.to_string())?;
                    let result = scenario::run(scenario, &server.target(), &cli.sizes, None).await;
                    let problems = server.stop().await;
                    let m = result.map_err(|e| e.to_string())?;
                    if problems.is_empty() {
                        Ok(m)
                    } else {
                        Err(format!("errors in ejabberd's log:\n{problems}"))
                    }
                }
                .await;
                eprintln!(
                    "rep {} {} on {nodes} node(s): {} ({:.0} s)",
                    rep + 1,
                    scenario.label(),
                    run_status(scenario, &result),
                    started.elapsed().as_secs_f64()
                );
                match result {
                    Ok(m) => results.push((scenario, nodes, m)),
                    Err(_) => failed += 1,
                }
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let mut table = format!(
        "muc_rs on ejabberd: one node against a two-node cluster on this machine, medians of {} repetitions\n\
         {:<8} {:>5} {:>14} {:>12} {:>22}\n",
        cli.reps, "scenario", "nodes", "deliveries/s", "CPU s (sum)", "CPU s per node"
    );
    for &scenario in &cli.scenarios {
        for nodes in [1, 2] {
            let runs: Vec<&scenario::Measured> =
                results.iter().filter(|(s, n, _)| *s == scenario && *n == nodes).map(|(_, _, m)| m).collect();
            if runs.is_empty() {
                continue;
            }
            let rate = median(runs.iter().map(|m| m.deliveries as f64 / m.wall_s).collect());
            let cpu = median(runs.iter().map(|m| m.cpu_s).collect());
            let per_node: Vec<String> = (0..nodes)
                .map(|i| format!("{:.2}", median(runs.iter().map(|m| m.node_cpu_s[i]).collect())))
                .collect();
            table += &format!(
                "{:<8} {:>5} {:>14.0} {:>12.2} {:>22}\n",
                scenario.label(),
                nodes,
                rate,
                cpu,
                per_node.join(" + ")
            );
        }
    }
    print!("{table}");
    let out = cli.out.clone().unwrap_or_else(|| repo_root().join("build/bench/ejabberd"));
    let file = out.join("cluster.txt");
    if let Err(e) = std::fs::create_dir_all(&out).and_then(|()| std::fs::write(&file, &table)) {
        eprintln!("muc-bench: cannot write {}: {e}", file.display());
        return ExitCode::FAILURE;
    }
    println!("Written: {}\n{} runs, {failed} failed", file.display(), results.len() + failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run_one_ejabberd(
    muc: &Muc,
    scenario: Scenario,
    sizes: &Sizes,
    mam: bool,
) -> Result<scenario::Measured, String> {
    let server = EjabberdBench::start(muc, scenario.clients(sizes), mam).await.map_err(|e| e.to_string())?;
    let result = scenario::run(scenario, &server.target(), sizes, None).await;
    let problems = server.stop().await;
    let m = result.map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        return Err(format!("errors in ejabberd's log:\n{problems}"));
    }
    check_stanza_ids(scenario, mam, m)
}

/// The progress line's figures of one run, or its failure.
fn run_status(scenario: Scenario, result: &Result<scenario::Measured, String>) -> String {
    match result {
        Ok(m) => format!(
            "{} {:.2}, {:.1} s wall, tool CPU {:.2} s",
            report::cpu_unit_label(scenario),
            report::cpu_per_unit(scenario, m).unwrap_or(0.0),
            m.wall_s,
            m.tool_cpu_s
        ),
        Err(e) => format!("FAILED: {}", e.lines().next().unwrap_or("")),
    }
}

/// The chart's title: what was compared, on which machine and servers.
fn title(with: &str, reps: u32, servers: &str) -> String {
    format!(
        "muc_rs vs stock mod_muc{with} — {reps} reps, {} ({} cores), {servers}",
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    )
}

/// Prints the table (and `note`), writes the CSV files and the chart into `out`, and says
/// how many runs failed (which makes the exit status a failure).
fn finish(out: &Path, runs: &[Run], title: &str, note: Option<String>, began: Instant) -> ExitCode {
    let table = report::table(runs);
    println!("{table}");
    if let Some(note) = note {
        println!("{note}");
    }
    match report::write_outputs(out, runs, title) {
        Ok(paths) => {
            println!("Written:");
            for p in paths {
                println!("  {}", p.display());
            }
        }
        Err(e) => eprintln!("muc-bench: cannot write results to {}: {e}", out.display()),
    }
    let failed = runs.iter().filter(|r| r.result.is_err()).count();
    println!("{} runs in {:.0} s, {} failed", runs.len(), began.elapsed().as_secs_f64(), failed);
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// With an archive (muc_mam on the Prosody component, mod_mam on ejabberd), every delivery
/// of a fan-out message carries the stanza-id it stamps on what it archives: without it,
/// the archive did no work.
fn check_stanza_ids(
    scenario: Scenario,
    archived: bool,
    m: scenario::Measured,
) -> Result<scenario::Measured, String> {
    if archived && scenario == Scenario::Fanout && m.stanza_ids != m.units {
        return Err(format!(
            "NOT ARCHIVED: {} of {} deliveries carried the archive's stanza-id",
            m.stanza_ids, m.units
        ));
    }
    Ok(m)
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    install: &Install,
    module: &str,
    plugin_paths: &[PathBuf],
    gc: Gc,
    component_extra: &[String],
    scenario: Scenario,
    sizes: &Sizes,
    lua_profile: Option<&Path>,
    probe: Option<&mut dyn Probe>,
) -> Result<scenario::Measured, String> {
    // Helper modules (tools/bench-floor): mod_bench_heap samples the memory rooms keep,
    // mod_bench_luaprof profiles Lua.
    let mut helpers = Vec::new();
    if scenario == Scenario::Rooms {
        helpers.push("\"bench_heap\"");
    }
    let mut component_extra = component_extra.to_vec();
    if !helpers.is_empty() || lua_profile.is_some() {
        // The lines go back into the VirtualHost's section: a host's modules_enabled adds
        // to the global list, where a second one would draw a "Duplicate option" warning.
        component_extra.push(format!("VirtualHost \"{}\"", muc_harness::prosody::DOMAIN));
        if let Some(file) = lua_profile {
            helpers.push("\"bench_luaprof\"");
            component_extra.push(format!("bench_luaprof_file = {:?}", file.display().to_string()));
        }
        component_extra.push(format!("modules_enabled = {{ {} }}", helpers.join(", ")));
    }
    let server = BenchServer::start(install, module, plugin_paths.to_vec(), gc, component_extra)
        .await
        .map_err(|e| e.to_string())?;
    let result = scenario::run(scenario, &server.target(), sizes, probe).await;
    let problems = server.stop().await;
    let m = result.map_err(|e| e.to_string())?;
    if !problems.is_empty() {
        return Err(format!("errors in Prosody's log:\n{problems}"));
    }
    Ok(m)
}
