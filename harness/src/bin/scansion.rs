//! `scansion`: runs .scs scripts against Prosody 0.12 and 13 with stock mod_muc and muc_rs,
//! on ejabberd, or in process against muc_rs's core (`--core`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use muc_harness::core_runner;
use muc_harness::ejabberd::Muc;
use muc_harness::prosody::{repo_root, Install, ServerConfig, Version};
use muc_harness::runner::{self, Outcome, RunOptions, Verdict};
use muc_harness::script::Script;
use tokio::sync::{mpsc, Mutex};

const USAGE: &str = "\
usage: scansion [OPTIONS] FILES_OR_DIRS...

Runs scansion scripts (.scs; a directory means every .scs in it) against a fresh Prosody
per script, version and MUC module. Default: the full matrix.

options:
  --prosody 0.12|13|all      Prosody versions (default all)
  --module muc|muc_rs|all    MUC component module (default all)
  --plugin-dir DIR           folder with mod_muc_rs.lua and muc_rs.so
                             (default $MUC_RS_PLUGIN_DIR or <repo>/build/plugin)
  --prosody-0.12 PATH        Prosody 0.12 executable (default $MUC_HARNESS_PROSODY_0_12
                             or /usr/bin/prosody)
  --prosody-13 PATH          Prosody 13 launcher (default $MUC_HARNESS_PROSODY_13 or
                             <repo>/.deps/prosody-13/bin/prosody)
  --config LINE              extra line for the config's global section (repeatable)
  --component-config LINE    extra line for the MUC component section (repeatable)
  --jobs N                   scripts run in parallel (default 2)
  --timeout SECS             how long `receives:` waits (default 3)
  --nothing-wait SECS        how long `receives: nothing` watches (default 1)
  --ejabberd                 run each script once on ejabberd 24.12 with muc_rs's module
                             (from $MUC_RS_EJABBERD_DIR or <repo>/build/ejabberd/mod_muc_rs,
                             made by make install-ejabberd) instead of the Prosody matrix;
                             component options are translated to the module's; scripts
                             with Prosody-only tags or options are skipped
  --ejabberd-stock           the same on ejabberd's own mod_muc (the side-by-side)
  --core                     run each script in process against muc_rs's core, as the
                             versions of --prosody configure it: no server, milliseconds
                             a script; scripts that need Prosody modules or config, or
                             say they need the server (## needs-server:), are not run
  --expect-fail              a script that fails counts as passed, and vice versa
  --known-failures FILE      scripts listed in FILE (a name per line, then why) are
                             expected to fail; one that passes fails the run, to keep
                             the list true
  --keep-logs DIR            keep Prosody's log and config and the traffic of every run
  -v, --verbose              debug-level Prosody logs, traffic in failure reports

Scripts can add config lines with header tags:
  ## config: muc_room_locking = false
  ## component-config: max_history_messages = 5
and be restricted to some Prosody versions (say, for a community module only one version's
prosody-modules package has); the other versions are skipped, neither passed nor failed:
  ## prosody: 13
  ## prosody: 0.12

An extension of this runner: in a `receives:` block, {scansion:capture:NAME} as an
attribute value (or an element's whole text) matches any value, as {scansion:any} does,
and keeps it; later actions use it as ${NAME}, e.g. to refer to a message's stanza-id:
  <stanza-id xmlns='urn:xmpp:sid:0' by='room@conference.localhost' id='{scansion:capture:m1}'/>
  ... <moderate xmlns='urn:xmpp:message-moderate:1' id='${m1}'> ...
";

struct Cli {
    versions: Vec<Version>,
    modules: Vec<String>,
    plugin_dir: PathBuf,
    executables: Vec<(Version, PathBuf)>,
    config: Vec<String>,
    component_config: Vec<String>,
    jobs: usize,
    opts: RunOptions,
    expect_fail: bool,
    /// Scripts expected to fail (`--known-failures`), by file name.
    known_failures: Vec<String>,
    /// Where the known-failures file is: its scripts are beside it.
    known_failures_dir: PathBuf,
    /// Run on ejabberd with this MUC instead of the Prosody matrix.
    ejabberd: Option<Muc>,
    /// Run in process against the core instead of the Prosody matrix.
    core: bool,
    keep_logs: Option<PathBuf>,
    files: Vec<PathBuf>,
}

fn parse_args(args: Vec<String>) -> Result<Cli, String> {
    let mut cli = Cli {
        versions: Version::ALL.to_vec(),
        modules: vec!["muc".into(), "muc_rs".into()],
        plugin_dir: std::env::var_os("MUC_RS_PLUGIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("build/plugin")),
        executables: Vec::new(),
        config: Vec::new(),
        component_config: Vec::new(),
        jobs: 2,
        opts: RunOptions::default(),
        expect_fail: false,
        known_failures: Vec::new(),
        known_failures_dir: PathBuf::new(),
        ejabberd: None,
        core: false,
        keep_logs: None,
        files: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let secs = |v: String, name: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|s| *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{name}: not a number of seconds: {v}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--prosody" => {
                let v = value("--prosody")?;
                cli.versions = match v.as_str() {
                    "all" => Version::ALL.to_vec(),
                    s => vec![Version::parse(s).ok_or_else(|| format!("unknown version {s}"))?],
                };
            }
            "--module" => {
                let v = value("--module")?;
                cli.modules = match v.as_str() {
                    "all" => vec!["muc".into(), "muc_rs".into()],
                    "muc" | "muc_rs" => vec![v],
                    s => return Err(format!("unknown module {s}")),
                };
            }
            "--plugin-dir" => cli.plugin_dir = PathBuf::from(value("--plugin-dir")?),
            "--prosody-0.12" => cli.executables.push((Version::V0_12, value("--prosody-0.12")?.into())),
            "--prosody-13" => cli.executables.push((Version::V13, value("--prosody-13")?.into())),
            "--config" => cli.config.push(value("--config")?),
            "--component-config" => cli.component_config.push(value("--component-config")?),
            "--jobs" | "-j" => {
                cli.jobs = value("--jobs")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--jobs needs a positive number")?
            }
            "--timeout" => cli.opts.receive_timeout = secs(value("--timeout")?, "--timeout")?,
            "--nothing-wait" => cli.opts.nothing_wait = secs(value("--nothing-wait")?, "--nothing-wait")?,
            "--expect-fail" => cli.expect_fail = true,
            "--ejabberd" => cli.ejabberd = Some(Muc::muc_rs()),
            "--ejabberd-stock" => cli.ejabberd = Some(Muc::Stock),
            "--core" => cli.core = true,
            "--known-failures" => {
                let path = value("--known-failures")?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                cli.known_failures = known_failures(&text);
                cli.known_failures_dir = Path::new(&path).parent().map(Path::to_owned).unwrap_or_default();
            }
            "--keep-logs" => cli.keep_logs = Some(value("--keep-logs")?.into()),
            "-v" | "--verbose" => cli.opts.verbose = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => cli.files.push(arg.into()),
        }
    }
    if cli.files.is_empty() {
        return Err("no scripts given".into());
    }
    Ok(cli)
}

/// The script names of a known-failures file: the first word of each line that is neither
/// empty nor a `#` comment.
fn known_failures(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Expands directories into their `.scs` files, sorted.
fn collect_scripts(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "scs"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

struct Job {
    script: Arc<Result<Script, String>>,
    path: PathBuf,
    version: Version,
    module: String,
    /// On ejabberd with this MUC, not on Prosody `version`.
    ejabberd: Option<Muc>,
    /// In process against the core configured as Prosody `version` would configure it.
    in_process: bool,
    /// Why the run is skipped (the script's `## prosody:` tag leaves this version out, or
    /// the script is not one the in-process tier can run).
    skip: Option<String>,
    /// A failure is what is expected of this run (`--expect-fail`, `--known-failures`).
    expect_fail: bool,
}

impl Job {
    /// The server the run is on, as results name it.
    fn server(&self) -> &'static str {
        if self.ejabberd.is_some() {
            "ejb"
        } else {
            self.version.label()
        }
    }
}

/// Why a script is not run on ejabberd, if it is not: it says so, it needs Prosody's
/// config or a Prosody 0.12 (rooms on ejabberd behave as on Prosody 13), or its component
/// options do not translate to `muc`'s ejabberd module.
fn ejabberd_skip_reason(script: &Result<Script, String>, muc: &Muc) -> Option<String> {
    let script = script.as_ref().ok()?;
    if let Some(why) = script.not_on_ejabberd() {
        return Some(why);
    }
    if !script.config_lines().is_empty() {
        return Some("script has Prosody config tags".to_owned());
    }
    if !script.runs_on(Version::V13) {
        return Some("script is for Prosody 0.12 only".to_owned());
    }
    muc_harness::ejabberd::module_options_for(
        muc,
        &script.component_config_lines(),
        &script.ejabberd_room_options(),
    )
    .err()
}

/// Why a script is not run in process on `version`, if it is not.
fn core_skip_reason(script: &Result<Script, String>, version: Version) -> Option<String> {
    skip_reason(script, version).or_else(|| {
        core_runner::not_in_tier(script.as_ref().ok()?, version).map(|r| format!("not in this tier: {r}"))
    })
}

/// Why a script is not run on `version`, if it is not.
fn skip_reason(script: &Result<Script, String>, version: Version) -> Option<String> {
    let script = script.as_ref().ok()?;
    if let Some(why) = script.ejabberd_only() {
        return Some(format!("ejabberd only: {why}"));
    }
    if script.runs_on(version) {
        return None;
    }
    let labels: Vec<&str> = script.versions().iter().map(|v| v.label()).collect();
    Some(format!("script is for {} only", labels.join(" and ")))
}

/// Why a script is not run on Prosody's stock `module`: it tests a feature beyond stock.
fn beyond_stock_skip(script: &Result<Script, String>, module: &str) -> Option<String> {
    let why = script.as_ref().ok()?.beyond_stock()?;
    (module == "muc").then(|| format!("beyond stock Prosody: {why}"))
}

struct Shared {
    installs: Vec<(Version, Result<Install, String>)>,
    server: ServerConfig,
    plugin_dir: PathBuf,
    opts: RunOptions,
}

/// Outcome of a run that could not be carried out.
fn setup_error(report: String) -> Outcome {
    Outcome {
        verdict: Verdict::Error,
        duration: Duration::ZERO,
        report,
        prosody_log: String::new(),
        prosody_config: String::new(),
        traffic: String::new(),
    }
}

async fn run_job(job: &Job, shared: &Shared) -> Outcome {
    let script = match job.script.as_ref() {
        Ok(s) => s,
        Err(e) => return setup_error(format!("cannot parse the script: {e}")),
    };
    if let Some(muc) = &job.ejabberd {
        return runner::run_on_ejabberd(script, muc, &shared.opts).await;
    }
    if job.in_process {
        return core_runner::run(script, job.version, &shared.opts);
    }
    let install = match shared.installs.iter().find(|(v, _)| *v == job.version) {
        Some((_, Ok(i))) => i,
        Some((_, Err(e))) => return setup_error(e.clone()),
        None => return setup_error("no such Prosody version".into()),
    };
    let mut server = shared.server.clone();
    server.muc_module = job.module.clone();
    if job.module == "muc_rs" {
        if !shared.plugin_dir.join("mod_muc_rs.lua").is_file() {
            return setup_error(format!(
                "{} has no mod_muc_rs.lua: build the plugin first, or pass --plugin-dir",
                shared.plugin_dir.display()
            ));
        }
        server.plugin_paths.push(shared.plugin_dir.clone());
    }
    runner::run(script, install, &server, &shared.opts).await
}

fn keep_logs(dir: &Path, job: &Job, outcome: &Outcome) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stem = job.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let base = format!("{stem}.{}.{}", job.server(), job.module);
    std::fs::write(dir.join(format!("{base}.log")), &outcome.prosody_log)?;
    std::fs::write(dir.join(format!("{base}.cfg.lua")), &outcome.prosody_config)?;
    std::fs::write(dir.join(format!("{base}.traffic.txt")), &outcome.traffic)?;
    Ok(())
}

/// PASS/FAIL after `--expect-fail`: only a real script failure counts as the expected one,
/// not a run that could not be carried out.
fn judged_pass(verdict: Verdict, expect_fail: bool) -> bool {
    matches!((verdict, expect_fail), (Verdict::Pass, false) | (Verdict::Fail, true))
}

/// Prints a run's result; `None` for a skipped run.
fn print_result(job: &Job, outcome: &Outcome) -> Option<bool> {
    let expect_fail = job.expect_fail;
    let name = job.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(reason) = &job.skip {
        println!("SKIP  {:<4}  {:<6}  {name} ({reason})", job.server(), job.module);
        return None;
    }
    let pass = judged_pass(outcome.verdict, expect_fail);
    let note = match (outcome.verdict, expect_fail) {
        (Verdict::Fail, true) => " (failed as expected)",
        (Verdict::Pass, true) => " (passed, but it should fail)",
        (Verdict::Error, _) => " (error)",
        _ => "",
    };
    // In process a run takes milliseconds.
    let took = match job.in_process {
        true => format!("{:.1}ms", outcome.duration.as_secs_f64() * 1000.0),
        false => format!("{:.1}s", outcome.duration.as_secs_f64()),
    };
    println!(
        "{}  {:<4}  {:<6}  {name} ({took}){note}",
        if pass { "PASS" } else { "FAIL" },
        job.server(),
        job.module
    );
    // Reports of expected failures are shown too (briefly), to see that they fail right.
    if !outcome.report.is_empty() && (!pass || expect_fail) {
        let report = if pass {
            outcome
                .report
                .lines()
                .take_while(|l| !l.starts_with("Prosody log"))
                .take(12)
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            outcome.report.trim_end().to_owned()
        };
        for line in report.lines() {
            println!("      {line}");
        }
    }
    Some(pass)
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

// One thread is plenty (the work is waiting on sockets), and Prosody's death signal is tied
// to the thread that spawned it, which must outlive the run.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1).collect()) {
        Ok(c) => c,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("scansion: {msg}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let files = match collect_scripts(&cli.files) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("scansion: no .scs files found");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("scansion: {e}");
            return ExitCode::from(2);
        }
    };

    let installs = cli
        .versions
        .iter()
        .map(|&v| {
            let found = match cli.executables.iter().rev().find(|(ev, _)| *ev == v) {
                Some((_, path)) => Install::at(v, path.clone()),
                None => Install::discover(v),
            };
            (v, found.map_err(|e| e.to_string()))
        })
        .collect();
    let shared = Arc::new(Shared {
        installs,
        server: ServerConfig {
            global_extra: cli.config.clone(),
            component_extra: cli.component_config.clone(),
            debug_log: cli.opts.verbose,
            ..ServerConfig::default()
        },
        plugin_dir: cli.plugin_dir.clone(),
        opts: cli.opts.clone(),
    });

    let mut jobs = Vec::new();
    for path in &files {
        let script = Arc::new(Script::from_file(path).map_err(|e| e.to_string()));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let expect_fail = cli.expect_fail || cli.known_failures.contains(&name);
        if let Some(muc) = &cli.ejabberd {
            jobs.push(Job {
                script: script.clone(),
                path: path.clone(),
                version: Version::V13,
                module: muc.label().into(),
                ejabberd: Some(muc.clone()),
                in_process: false,
                skip: ejabberd_skip_reason(&script, muc),
                expect_fail,
            });
            continue;
        }
        if cli.core {
            for &version in &cli.versions {
                jobs.push(Job {
                    script: script.clone(),
                    path: path.clone(),
                    version,
                    module: "core".into(),
                    ejabberd: None,
                    in_process: true,
                    skip: core_skip_reason(&script, version),
                    expect_fail,
                });
            }
            continue;
        }
        for &version in &cli.versions {
            for module in &cli.modules {
                jobs.push(Job {
                    script: script.clone(),
                    path: path.clone(),
                    version,
                    module: module.clone(),
                    ejabberd: None,
                    in_process: false,
                    skip: skip_reason(&script, version).or_else(|| beyond_stock_skip(&script, module)),
                    expect_fail,
                });
            }
        }
    }
    // A listed failure that cannot happen (no such script beside the list, or one this
    // target skips) is a stale list.
    let stale: Vec<&String> = cli
        .known_failures
        .iter()
        .filter(|name| {
            let given: Vec<&Job> =
                jobs.iter().filter(|j| j.path.file_name().is_some_and(|f| f == name.as_str())).collect();
            let exists = cli.known_failures_dir.join(name.as_str()).is_file();
            !exists || (!given.is_empty() && given.iter().all(|j| j.skip.is_some()))
        })
        .collect();
    if !stale.is_empty() {
        eprintln!("scansion: --known-failures lists scripts that do not run here: {stale:?}");
        return ExitCode::FAILURE;
    }
    let jobs = Arc::new(jobs);

    // Workers take jobs in order; results are printed in job order as they become ready.
    let next = Arc::new(Mutex::new(0usize));
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Outcome)>();
    for _ in 0..cli.jobs.min(jobs.len()) {
        let (jobs, shared, next, tx) = (jobs.clone(), shared.clone(), next.clone(), tx.clone());
        tokio::spawn(async move {
            loop {
                let i = {
                    let mut n = next.lock().await;
                    let i = *n;
                    *n += 1;
                    i
                };
                if i >= jobs.len() {
                    return;
                }
                // A task of its own, so that a panic becomes a failed run, not a lost one.
                if jobs[i].skip.is_some() {
                    if tx.send((i, setup_error(String::new()))).is_err() {
                        return;
                    }
                    continue;
                }
                let (j, sh) = (jobs.clone(), shared.clone());
                let outcome = tokio::spawn(async move { run_job(&j[i], &sh).await })
                    .await
                    .unwrap_or_else(|e| setup_error(format!("the runner panicked: {e}")));
                if tx.send((i, outcome)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);

    let collect = async {
        let mut ready: Vec<Option<Outcome>> = (0..jobs.len()).map(|_| None).collect();
        let (mut printed, mut passed, mut failed, mut skipped) = (0, 0, 0, 0);
        while let Some((i, outcome)) = rx.recv().await {
            if let (Some(dir), None) = (&cli.keep_logs, &jobs[i].skip) {
                if let Err(e) = keep_logs(dir, &jobs[i], &outcome) {
                    eprintln!("scansion: cannot keep logs in {}: {e}", dir.display());
                }
            }
            ready[i] = Some(outcome);
            while let Some(Some(outcome)) = ready.get(printed) {
                match print_result(&jobs[printed], outcome) {
                    Some(true) => passed += 1,
                    Some(false) => failed += 1,
                    None => skipped += 1,
                }
                ready[printed] = None;
                printed += 1;
            }
        }
        (printed, passed, failed, skipped)
    };
    // On a signal, returning drops the runtime and with it every run: Prosodies are killed
    // and temp dirs removed.
    let (printed, passed, failed, skipped) = tokio::select! {
        r = collect => r,
        sig = interrupted() => {
            eprintln!("scansion: {sig}, stopping");
            return ExitCode::from(130);
        }
    };
    if skipped > 0 {
        let why = if cli.core { "header tags, or not in this tier" } else { "header tags" };
        println!("{skipped} skipped ({why})");
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 && printed == jobs.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
