//! Medians, spread and paired ratios over the repetitions; the table on stdout, CSV files
//! and an SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::scenario::{Measured, Scenario};
use super::server::Gc;

pub const STOCK: &str = "muc";
pub const RS: &str = "muc_rs";
pub const FLOOR_CLONE: &str = "bench_floor_clone";
pub const FLOOR_INPLACE: &str = "bench_floor_inplace";
/// ejabberd's floor (`tools/bench-floor/mod_bench_floor.erl`).
pub const FLOOR: &str = "bench_floor";

pub fn module_label(module: &str) -> &str {
    match module {
        STOCK => "stock",
        FLOOR_CLONE => "floor-clone",
        FLOOR_INPLACE => "floor-inplace",
        FLOOR => "floor",
        other => other,
    }
}

/// The server a run was on: Prosody (a version and a GC setting) or ejabberd (a version).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Setting {
    pub server: &'static str,
    pub gc: Option<Gc>,
    pub version: String,
}

impl Setting {
    pub fn prosody(version: &str, gc: Gc) -> Setting {
        Setting { server: "Prosody", gc: Some(gc), version: version.to_owned() }
    }

    pub fn ejabberd(version: &str) -> Setting {
        Setting { server: "ejabberd", gc: None, version: version.to_owned() }
    }

    /// "Prosody 0.12, gc incremental", "ejabberd 24.12".
    pub fn label(&self) -> String {
        match self.gc {
            Some(gc) => format!("{} {}, gc {}", self.server, self.version, gc.label()),
            None => format!("{} {}", self.server, self.version),
        }
    }

    /// The CSV columns server,gc,version.
    fn csv(&self) -> String {
        format!("{},{},{}", self.server, self.gc.map(Gc::label).unwrap_or(""), self.version)
    }
}

#[derive(Clone, Debug)]
pub struct Run {
    pub scenario: Scenario,
    pub setting: Setting,
    pub rep: u32,
    pub module: String,
    pub result: Result<Measured, String>,
}

/// A figure derived from a run, with its display unit.
pub struct Figure {
    pub name: &'static str,
    pub get: fn(Scenario, &Measured) -> Option<f64>,
}

fn cpu_scale(s: Scenario) -> f64 {
    if s == Scenario::Fanout {
        1e6
    } else {
        1e3
    }
}

pub fn cpu_unit_label(s: Scenario) -> String {
    let u = if s == Scenario::Fanout { "µs" } else { "ms" };
    format!("CPU {u}/{}", s.unit())
}

fn pct(lat: &[u32], p: f64) -> Option<f64> {
    if lat.is_empty() {
        return None;
    }
    let mut v = lat.to_vec();
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    Some(v[i] as f64 / 1000.0)
}

pub fn cpu_per_unit(s: Scenario, m: &Measured) -> Option<f64> {
    (m.units > 0).then(|| m.cpu_s / m.units as f64 * cpu_scale(s))
}

pub const FIGURES: &[Figure] = &[
    Figure { name: "cpu/unit", get: cpu_per_unit },
    Figure { name: "cpu s", get: |_, m| Some(m.cpu_s) },
    Figure { name: "wall s", get: |_, m| Some(m.wall_s) },
    Figure { name: "deliveries/s", get: |_, m| (m.wall_s > 0.0).then(|| m.deliveries as f64 / m.wall_s) },
    Figure { name: "latency p50 ms", get: |_, m| pct(&m.latencies, 0.5) },
    Figure { name: "latency p99 ms", get: |_, m| pct(&m.latencies, 0.99) },
    Figure { name: "peak RSS MB", get: |_, m| Some(m.after.hwm_kb as f64 / 1024.0) },
    Figure { name: "final RSS MB", get: |_, m| Some(m.after.rss_kb as f64 / 1024.0) },
    // Memory per room two ways: RSS growth (what the system sees, garbage included, so it
    // depends on where the GC was in its cycle) and malloc's bytes in use after full GCs
    // (what the rooms keep).
    Figure {
        name: "RSS B/unit",
        get: |s, m| {
            (s == Scenario::Rooms && m.units > 0)
                .then(|| (m.after.rss_kb as f64 - m.before.rss_kb as f64) * 1024.0 / m.units as f64)
        },
    },
    Figure {
        name: "retained B/unit",
        get: |_, m| {
            let (before, after) = m.heap?;
            (m.units > 0).then(|| (after.in_use as f64 - before.in_use as f64) / m.units as f64)
        },
    },
    Figure {
        name: "of it Lua B/unit",
        get: |_, m| {
            let (before, after) = m.heap?;
            (m.units > 0).then(|| (after.lua as f64 - before.lua as f64) / m.units as f64)
        },
    },
    Figure { name: "tool CPU s", get: |_, m| Some(m.tool_cpu_s) },
];

#[derive(Clone, Copy, Debug, Default)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

pub fn spread(values: &[f64]) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Some(Spread { median, min: v[0], max: v[n - 1], n })
}

type Group = (Scenario, Setting);

fn groups(runs: &[Run]) -> BTreeMap<Group, Vec<&Run>> {
    let mut g: BTreeMap<Group, Vec<&Run>> = BTreeMap::new();
    for r in runs {
        g.entry((r.scenario, r.setting.clone())).or_default().push(r);
    }
    g
}

fn values(runs: &[&Run], module: &str, fig: &Figure) -> Vec<f64> {
    runs.iter()
        .filter(|r| r.module == module)
        .filter_map(|r| r.result.as_ref().ok().and_then(|m| (fig.get)(r.scenario, m)))
        .collect()
}

/// Ratios a/b of the same repetition.
fn paired(runs: &[&Run], a: &str, b: &str, fig: &Figure) -> Vec<f64> {
    let by_rep = |module: &str| {
        runs.iter()
            .filter(|r| r.module == module)
            .filter_map(|r| r.result.as_ref().ok().and_then(|m| (fig.get)(r.scenario, m)).map(|v| (r.rep, v)))
            .collect::<BTreeMap<u32, f64>>()
    };
    let (x, y) = (by_rep(a), by_rep(b));
    x.iter().filter_map(|(rep, va)| y.get(rep).filter(|vb| **vb > 0.0).map(|vb| va / vb)).collect()
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_spread(s: Option<Spread>) -> String {
    match s {
        Some(s) => format!("{} [{}–{}]", fmt_num(s.median), fmt_num(s.min), fmt_num(s.max)),
        None => "—".into(),
    }
}

fn failures(runs: &[&Run], module: &str) -> usize {
    runs.iter().filter(|r| r.module == module && r.result.is_err()).count()
}

pub fn table(runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Medians over repetitions, [min–max]; ratio = median of paired (same repetition) muc_rs/stock."
    );
    for ((scenario, setting), rs) in groups(runs) {
        let _ =
            writeln!(out, "\n== {} ({}), {} ==", scenario.label(), cpu_unit_label(scenario), setting.label());
        let _ =
            writeln!(out, "{:<16} {:>28} {:>28} {:>24}", "figure", "stock", "muc_rs", "ratio muc_rs/stock");
        for fig in FIGURES {
            let (a, b) = (spread(&values(&rs, STOCK, fig)), spread(&values(&rs, RS, fig)));
            if a.is_none() && b.is_none() {
                continue;
            }
            let name = if fig.name == "cpu/unit" { cpu_unit_label(scenario) } else { fig.name.to_owned() };
            let _ = writeln!(
                out,
                "{:<16} {:>28} {:>28} {:>24}",
                name,
                fmt_spread(a),
                fmt_spread(b),
                fmt_spread(spread(&paired(&rs, RS, STOCK, fig)))
            );
        }
        for m in [STOCK, RS, FLOOR_CLONE, FLOOR_INPLACE, FLOOR] {
            let f = failures(&rs, m);
            if f > 0 {
                let _ = writeln!(out, "FAILED: {} run(s) of {}", f, module_label(m));
                for r in rs.iter().filter(|r| r.module == m) {
                    if let Err(e) = &r.result {
                        let _ = writeln!(out, "  rep {}: {}", r.rep, e.lines().next().unwrap_or(""));
                    }
                }
            }
        }
        let floors: Vec<&str> = [FLOOR_CLONE, FLOOR_INPLACE, FLOOR]
            .into_iter()
            .filter(|f| rs.iter().any(|r| r.module == *f))
            .collect();
        if !floors.is_empty() {
            // CPU per unit, and for many rooms memory per room too.
            let floored = |f: &&Figure| {
                f.name == "cpu/unit" || (scenario == Scenario::Rooms && f.name.ends_with(" B/unit"))
            };
            let measured = |f: &&Figure| [STOCK, RS].iter().any(|m| spread(&values(&rs, m, f)).is_some());
            for fig in FIGURES.iter().filter(floored).filter(measured) {
                let label =
                    if fig.name == "cpu/unit" { cpu_unit_label(scenario) } else { fig.name.to_owned() };
                let _ = writeln!(out, "-- floors: {} {label} --", rs[0].setting.server);
                for m in [STOCK, RS].into_iter().chain(floors.iter().copied()) {
                    let _ = writeln!(
                        out,
                        "{:<16} {:>28}",
                        module_label(m),
                        fmt_spread(spread(&values(&rs, m, fig)))
                    );
                }
                for (a, b) in [RS, STOCK].into_iter().flat_map(|a| floors.iter().map(move |f| (a, *f))) {
                    let _ = writeln!(
                        out,
                        "{:<34} {:>24}",
                        format!("{} ÷ {}", module_label(a), module_label(b)),
                        fmt_spread(spread(&paired(&rs, a, b, fig)))
                    );
                }
            }
        }
    }
    out
}

pub fn runs_csv(runs: &[Run]) -> String {
    let mut out = String::from(
        "scenario,server,gc,version,rep,module,ok,units,deliveries,cpu_s,cpu_per_unit,cpu_unit,wall_s,deliveries_per_s,\
         latency_p50_ms,latency_p99_ms,rss_peak_kb,rss_final_kb,rss_before_kb,rss_per_unit_b,retained_per_unit_b,lua_retained_per_unit_b,tool_cpu_s,failure\n",
    );
    for r in runs {
        let _ = write!(out, "{},{},{},{},", r.scenario.label(), r.setting.csv(), r.rep, r.module);
        match &r.result {
            Ok(m) => {
                let f =
                    |i: usize| (FIGURES[i].get)(r.scenario, m).map(|v| format!("{v:.6}")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "true,{},{},{:.3},{},{},{:.3},{},{},{},{},{},{},{},{},{},{:.3},",
                    m.units,
                    m.deliveries,
                    m.cpu_s,
                    f(0),
                    cpu_unit_label(r.scenario).trim_start_matches("CPU "),
                    m.wall_s,
                    f(3),
                    f(4),
                    f(5),
                    m.after.hwm_kb,
                    m.after.rss_kb,
                    m.before.rss_kb,
                    f(8),
                    f(9),
                    f(10),
                    m.tool_cpu_s
                );
            }
            Err(e) => {
                let _ = writeln!(out, "false,,,,,,,,,,,,,,,,,\"{}\"", e.replace('"', "'").replace('\n', " "));
            }
        }
    }
    out
}

pub fn summary_csv(runs: &[Run]) -> String {
    let mut out =
        String::from("scenario,server,gc,version,figure,module,median,min,max,n,paired_ratio_to_stock\n");
    for ((scenario, setting), rs) in groups(runs) {
        for fig in FIGURES {
            for m in [STOCK, RS, FLOOR_CLONE, FLOOR_INPLACE] {
                let Some(s) = spread(&values(&rs, m, fig)) else { continue };
                let ratio = spread(&paired(&rs, m, STOCK, fig))
                    .map(|r| format!("{:.4}", r.median))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{},{},{},{},{:.6},{:.6},{:.6},{},{ratio}",
                    scenario.label(),
                    setting.csv(),
                    fig.name,
                    module_label(m),
                    s.median,
                    s.min,
                    s.max,
                    s.n
                );
            }
        }
    }
    out
}

/// Bar chart: the server's CPU per unit of work, each module relative to stock's median
/// (= 1), with min–max whiskers, one group per scenario and setting (version, GC).
pub fn svg(runs: &[Run], title: &str) -> String {
    let fig = &FIGURES[0];
    let colors = [(STOCK, "#8c8c8c"), (RS, "#d9622b"), (FLOOR_CLONE, "#6a9fd4"), (FLOOR_INPLACE, "#2f6ea8")];
    let gs: Vec<_> = groups(runs).into_iter().collect();
    let bar_w = 22.0;
    let group_w = bar_w * 4.0 + 40.0;
    let (left, top, plot_h) = (60.0, 50.0, 300.0);
    let width = left + group_w * gs.len().max(1) as f64 + 20.0;
    let height = top + plot_h + 110.0;
    let mut ymax: f64 = 1.2;
    let mut bars = Vec::new();
    for (gi, ((scenario, setting), rs)) in gs.iter().enumerate() {
        let Some(base) = spread(&values(rs, STOCK, fig)).map(|s| s.median).filter(|b| *b > 0.0) else {
            continue;
        };
        let mut x = left + gi as f64 * group_w + 20.0;
        for (m, color) in colors {
            if let Some(s) = spread(&values(rs, m, fig)) {
                ymax = ymax.max(s.max / base);
                bars.push((x, s.median / base, s.min / base, s.max / base, color, m.to_owned()));
                x += bar_w;
            }
        }
        let abs = spread(&values(rs, STOCK, fig)).map(|s| fmt_num(s.median)).unwrap_or_default();
        bars.push((
            left + gi as f64 * group_w + 20.0,
            f64::NAN,
            0.0,
            0.0,
            "",
            format!(
                "{}|{} {}|stock {} {}",
                scenario.label(),
                setting.gc.map_or(setting.server, Gc::label),
                setting.version,
                abs,
                cpu_unit_label(*scenario)
            ),
        ));
    }
    let ymax = (ymax * 10.0).ceil() / 10.0;
    let y = |v: f64| top + plot_h - v / ymax * plot_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0}' height='{height:.0}' font-family='sans-serif' font-size='11'>"
    );
    let _ = writeln!(s, "<rect width='100%' height='100%' fill='white'/>");
    let _ = writeln!(s, "<text x='{left}' y='20' font-size='14'>{}</text>", xml_escape(title));
    let _ = writeln!(
        s,
        "<text x='{left}' y='36'>Server CPU per unit of work relative to stock mod_muc (median, min–max); lower is better</text>"
    );
    let mut t = 0.0;
    while t <= ymax + 1e-9 {
        let _ = writeln!(
            s,
            "<line x1='{left}' x2='{:.0}' y1='{:.1}' y2='{:.1}' stroke='#eee'/><text x='{:.0}' y='{:.1}' text-anchor='end'>{t:.1}</text>",
            width - 20.0,
            y(t),
            y(t),
            left - 5.0,
            y(t) + 4.0
        );
        t += if ymax > 3.0 { 0.5 } else { 0.2 };
    }
    let _ = writeln!(
        s,
        "<line x1='{left}' x2='{:.0}' y1='{:.1}' y2='{:.1}' stroke='black' stroke-dasharray='4 3'/>",
        width - 20.0,
        y(1.0),
        y(1.0)
    );
    for (x, med, lo, hi, color, label) in bars {
        if med.is_nan() {
            for (i, line) in label.split('|').enumerate() {
                let _ = writeln!(
                    s,
                    "<text x='{x:.0}' y='{:.0}'>{}</text>",
                    top + plot_h + 16.0 + 13.0 * i as f64,
                    xml_escape(line)
                );
            }
            continue;
        }
        let _ = writeln!(
            s,
            "<rect x='{x:.1}' y='{:.1}' width='{:.1}' height='{:.1}' fill='{color}'><title>{}: {:.3}</title></rect>",
            y(med),
            bar_w - 3.0,
            y(0.0) - y(med),
            module_label(&label),
            med
        );
        let cx = x + (bar_w - 3.0) / 2.0;
        let _ = writeln!(
            s,
            "<line x1='{cx:.1}' x2='{cx:.1}' y1='{:.1}' y2='{:.1}' stroke='black'/>",
            y(lo),
            y(hi)
        );
        let _ = writeln!(
            s,
            "<text x='{cx:.1}' y='{:.1}' text-anchor='middle' font-size='9'>{med:.2}</text>",
            y(hi) - 3.0
        );
    }
    let mut lx = left;
    for (m, color) in colors {
        let _ = writeln!(
            s,
            "<rect x='{lx:.0}' y='{:.0}' width='10' height='10' fill='{color}'/><text x='{:.0}' y='{:.0}'>{}</text>",
            height - 22.0,
            lx + 14.0,
            height - 13.0,
            module_label(m)
        );
        lx += 110.0;
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;")
}

pub fn write_outputs(dir: &Path, runs: &[Run], title: &str) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("runs.csv", runs_csv(runs)),
        ("summary.csv", summary_csv(runs)),
        ("chart.svg", svg(runs, title)),
        ("table.txt", table(runs)),
    ];
    let mut paths = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        paths.push(p);
    }
    Ok(paths)
}
