//! Turns criterion's output into `benches/results/summary.md` and one SVG
//! plot of throughput against threads per key distribution.
//!
//! ```text
//! cargo bench                                   # or BENCH_QUICK=1 cargo bench
//! cargo run --release -p bench-report    # [-- --criterion DIR --out DIR]
//! ```
//!
//! It reads every `<criterion>/**/new/{benchmark,estimates}.json`, takes the
//! median (robust to the samples a shared machine spoils; each sample's
//! fixed cost is negligible since every bench thread is spawned once per
//! point) as ns per operation, and gives each
//! workload as a ratio to the raw scc map and to `async_tasks_recorder`
//! 2.0.2, all figures coming from one run.

use clap::Parser;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Contestant names as the benches spell them, in table order, with labels.
const CONTESTANTS: [(&str, &str); 5] = [
    ("ours", "ours"),
    ("raw_scc", "raw scc map"),
    ("v2.0.2", "2.0.2"),
    ("state_map", "state_map 1.0.1"),
    ("mutex_map", "Mutex<HashMap>"),
];
const OURS: &str = "ours";
const RAW: &str = "raw_scc";
const V2: &str = "v2.0.2";

/// Writes the benchmark summary and plots from criterion's output.
#[derive(Parser)]
struct Options {
    /// Criterion's output directory [default: $CARGO_TARGET_DIR/criterion or target/criterion].
    #[arg(long)]
    criterion: Option<PathBuf>,
    /// Where summary.md and the plots go.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
}

/// One measured benchmark.
#[derive(Clone, Debug)]
struct Measure {
    group: String,
    contestant: String,
    parameter: Option<u64>,
    /// Nanoseconds per operation.
    ns: f64,
}

/// Measures of one group: ns per operation by contestant, then parameter.
type ByContestant = BTreeMap<String, BTreeMap<Option<u64>, f64>>;
/// Measures keyed by group.
type Table = BTreeMap<String, ByContestant>;
/// One distribution's groups: (mix, measures).
type Mixes<'a> = Vec<(String, &'a ByContestant)>;

fn main() -> ExitCode {
    let options = Options::parse();
    let criterion = options.criterion.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("criterion")
    });
    let mut measures = Vec::new();
    if let Err(error) = collect(&criterion, &mut measures) {
        eprintln!("cannot read {}: {error}", criterion.display());
        return ExitCode::FAILURE;
    }
    if measures.is_empty() {
        eprintln!(
            "no criterion results under {}; run `cargo bench` first",
            criterion.display()
        );
        return ExitCode::FAILURE;
    }
    let mut table = Table::new();
    for m in measures {
        table
            .entry(m.group)
            .or_default()
            .entry(m.contestant)
            .or_default()
            .insert(m.parameter, m.ns);
    }
    let memory = read_memory(&criterion.join("scale_memory.json"));
    let mode = std::fs::read_to_string(criterion.join("bench_mode.txt"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());

    if let Err(error) = std::fs::create_dir_all(&options.out) {
        eprintln!("cannot create {}: {error}", options.out.display());
        return ExitCode::FAILURE;
    }
    let plots = match write_plots(&table, &options.out) {
        Ok(plots) => plots,
        Err(error) => {
            eprintln!("cannot write plots: {error}");
            return ExitCode::FAILURE;
        }
    };
    let summary = summary(&table, &memory, &mode, &plots);
    let path = options.out.join("summary.md");
    if let Err(error) = std::fs::write(&path, summary) {
        eprintln!("cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {} and {} plots", path.display(), plots.len());
    ExitCode::SUCCESS
}

/// Walks `dir` for criterion's `new/benchmark.json` + `new/estimates.json`.
fn collect(dir: &Path, out: &mut Vec<Measure>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(m) = read_measure(&path) {
                out.push(m);
            }
        } else if path
            .file_name()
            .is_none_or(|n| n != "base" && n != "change" && n != "report")
        {
            collect(&path, out)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn read_measure(new: &Path) -> Option<Measure> {
    let benchmark = read_json(&new.join("benchmark.json"))?;
    let estimates = read_json(&new.join("estimates.json"))?;
    let ns = ["median", "mean"]
        .iter()
        .find_map(|k| estimates.get(k)?.get("point_estimate")?.as_f64())?;
    Some(Measure {
        group: benchmark.get("group_id")?.as_str()?.to_string(),
        contestant: benchmark.get("function_id")?.as_str()?.to_string(),
        parameter: benchmark
            .get("value_str")
            .and_then(Value::as_str)
            .and_then(|v| v.parse().ok()),
        ns,
    })
}

/// (contestant, ids) -> bytes per id.
fn read_memory(path: &Path) -> BTreeMap<(String, u64), f64> {
    let mut memory = BTreeMap::new();
    if let Some(Value::Array(rows)) = read_json(path) {
        for row in rows {
            if let (Some(name), Some(ids), Some(bytes)) = (
                row.get("contestant").and_then(Value::as_str),
                row.get("ids").and_then(Value::as_u64),
                row.get("bytes_per_id").and_then(Value::as_f64),
            ) {
                memory.insert((name.to_string(), ids), bytes);
            }
        }
    }
    memory
}

fn get(table: &Table, group: &str, contestant: &str, parameter: Option<u64>) -> Option<f64> {
    table.get(group)?.get(contestant)?.get(&parameter).copied()
}

/// Nanoseconds as a table cell; long times get an explicit unit.
fn ns(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 1e6 => format!("{:.2} ms", v / 1e6),
        Some(v) if v >= 1e4 => format!("{:.1} µs", v / 1e3),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "–".to_string(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".to_string(),
    }
}

/// Millions of operations per second from ns per operation.
fn mops(value: Option<f64>) -> String {
    value.map_or("–".to_string(), |v| format!("{:.2}", 1e3 / v))
}

fn summary(
    table: &Table,
    memory: &BTreeMap<(String, u64), f64>,
    mode: &str,
    plots: &[(String, String)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmark summary\n");
    let _ = writeln!(s, "- Machine: {}", machine());
    let _ = writeln!(s, "- Date: {} (UTC)", today());
    let _ = writeln!(
        s,
        "- Mode: {mode} (`BENCH_QUICK=1` is the smoke configuration)"
    );
    let _ = writeln!(
        s,
        "- The machine is shared: absolute times are noisy, so every figure is compared \
         with the others of the same run, and each figure is criterion's median, which a \
         few samples spoiled by other load do not move. With 2 cores, every contention \
         point beyond 2 threads is oversubscribed.\n"
    );
    let _ = writeln!(
        s,
        "Contestants: this crate (`ours`), the floor (`raw scc map`: a \
         `scc::HashMap<u64, u8>` doing insert `Working` + update for a launch, one read \
         for a query), `async_tasks_recorder` 2.0.2, `async_tasks_state_map` 1.0.1, and \
         a hand-written `Mutex<HashMap>` recorder. All are driven by the same one-poll \
         executor.\n"
    );

    let listing = table
        .keys()
        .filter(|g| g.starts_with("listing/"))
        .max()
        .cloned();
    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| Target | ours | limit | 2.0.2 for reference | met |");
    let _ = writeln!(s, "|---|---:|---:|---:|:---:|");
    for (label, group, limit) in [
        (
            "`launch_block` ÷ raw insert+update, 10^5 fresh ids",
            "single/launch_block_fresh",
            1.3,
        ),
        (
            "`query_task_state` ÷ raw read, 10^5 ids",
            "single/query_hit",
            1.2,
        ),
    ] {
        let ours = get(table, group, OURS, None);
        let raw = get(table, group, RAW, None);
        let v2 = get(table, group, V2, None);
        let met = match (ours, raw) {
            (Some(o), Some(r)) => {
                if o / r <= limit {
                    "yes"
                } else {
                    "no"
                }
            }
            _ => "–",
        };
        let _ = writeln!(
            s,
            "| {label} | {} | ≤ {limit}× | {} | {met} |",
            ratio(ours, raw),
            ratio(v2, raw)
        );
    }
    if let Some(group) = &listing {
        // The failed ids have an index of their own: the listing is timed
        // against a bound in proportion to them, not to the table.
        let us = |c| get(table, group, c, None).map(|v| v / 1e3);
        let ours = us(OURS);
        let _ = writeln!(
            s,
            "| listing 1,000 failed ids ({}) | {} | ≤ 50 µs | {} | {} |",
            group.trim_start_matches("listing/"),
            ours.map_or("–".into(), |v| format!("{v:.1} µs")),
            us(V2).map_or("–".into(), |v| format!("{v:.1} µs")),
            ours.map_or("–", |v| if v <= 50.0 { "yes" } else { "no" }),
        );
    }

    let _ = writeln!(s, "\n## Single-thread costs (ns per operation)\n");
    header(&mut s, "Workload", &["ours ÷ raw", "ours ÷ 2.0.2"]);
    let mut groups: Vec<&String> = table.keys().filter(|g| g.starts_with("single/")).collect();
    groups.extend(listing.iter());
    for group in groups {
        let row: Vec<Option<f64>> = CONTESTANTS
            .iter()
            .map(|(c, _)| get(table, group, c, None))
            .collect();
        let _ = write!(s, "| {} |", group.trim_start_matches("single/"));
        for v in &row {
            let _ = write!(s, " {} |", ns(*v));
        }
        let _ = writeln!(
            s,
            " {} | {} |",
            ratio(row[0], row[1]),
            ratio(row[0], row[2])
        );
    }

    let _ = writeln!(s, "\n## Contention (millions of operations per second)\n");
    let _ = writeln!(
        s,
        "A write is a `launch_block` failing 30% of the time, retried at once (up to 4 \
         attempts); a launch refused with `Success` revokes the id instead. Threads beyond \
         2 are oversubscribed. 2.0.2's figures on hot and small key sets flatter it: a \
         launch it refuses because the id succeeded leaves the id in its working set, \
         so the id reads `Working` for good and every later write is a cheap refusal \
         instead of a revoke and a relaunch.\n"
    );
    for (distribution, _) in plots {
        let _ = writeln!(s, "### {distribution}\n");
        header(&mut s, "Mix, threads", &["ours ÷ raw", "ours ÷ 2.0.2"]);
        for (group, by_contestant) in table.range(format!("contention/{distribution}/")..) {
            let Some(mix) = group.strip_prefix(&format!("contention/{distribution}/")) else {
                break;
            };
            let threads: std::collections::BTreeSet<u64> = by_contestant
                .values()
                .flat_map(|p| p.keys().flatten().copied())
                .collect();
            for t in threads {
                let row: Vec<Option<f64>> = CONTESTANTS
                    .iter()
                    .map(|(c, _)| get(table, group, c, Some(t)))
                    .collect();
                let _ = write!(s, "| {mix}, {t} |");
                for v in &row {
                    let _ = write!(s, " {} |", mops(*v));
                }
                // Throughput ratios: higher is better for ours.
                let _ = writeln!(
                    s,
                    " {} | {} |",
                    ratio(row[1], row[0]),
                    ratio(row[2], row[0])
                );
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "Ratios in this section are throughput ratios (ours ÷ other): above 1 means ours is faster.\n"
    );

    let _ = writeln!(s, "## Scale\n");
    for (title, group) in [
        (
            "Query of a recorded id (ns per operation)",
            "scale/query_hit",
        ),
        (
            "`launch_block` of a fresh id (ns per operation)",
            "scale/launch_block_fresh",
        ),
    ] {
        let _ = writeln!(s, "### {title}\n");
        header(&mut s, "Table ids", &["ours ÷ raw", "ours ÷ 2.0.2"]);
        let sizes: std::collections::BTreeSet<u64> = table
            .get(group)
            .map(|by| {
                by.values()
                    .flat_map(|p| p.keys().flatten().copied())
                    .collect()
            })
            .unwrap_or_default();
        for n in sizes {
            let row: Vec<Option<f64>> = CONTESTANTS
                .iter()
                .map(|(c, _)| get(table, group, c, Some(n)))
                .collect();
            let _ = write!(s, "| {n} |");
            for v in &row {
                let _ = write!(s, " {} |", ns(*v));
            }
            let _ = writeln!(
                s,
                " {} | {} |",
                ratio(row[0], row[1]),
                ratio(row[0], row[2])
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "### Heap bytes per recorded id\n");
    header(&mut s, "Table ids", &["ours ÷ raw", "ours ÷ 2.0.2"]);
    let sizes: std::collections::BTreeSet<u64> = memory.keys().map(|(_, n)| *n).collect();
    for n in sizes {
        let row: Vec<Option<f64>> = CONTESTANTS
            .iter()
            .map(|(c, _)| memory.get(&(c.to_string(), n)).copied())
            .collect();
        let _ = write!(s, "| {n} |");
        for v in &row {
            let _ = write!(s, " {} |", v.map_or("–".into(), |v| format!("{v:.1}")));
        }
        let _ = writeln!(
            s,
            " {} | {} |",
            ratio(row[0], row[1]),
            ratio(row[0], row[2])
        );
    }
    let _ = writeln!(
        s,
        "\nLive heap growth while filling the table, divided by its ids; it includes \
         garbage that the maps' epoch-based reclamation had not yet freed.\n"
    );

    let _ = writeln!(s, "## Plots\n");
    for (distribution, file) in plots {
        let _ = writeln!(s, "- {distribution}: [{file}]({file})");
    }
    s
}

fn header(s: &mut String, first: &str, extra: &[&str]) {
    let _ = write!(s, "| {first} |");
    for (_, label) in CONTESTANTS {
        let _ = write!(s, " {label} |");
    }
    for label in extra {
        let _ = write!(s, " {label} |");
    }
    let _ = write!(s, "\n|---|");
    for _ in 0..CONTESTANTS.len() + extra.len() {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s);
}

/// CPU model, logical cores and memory, from /proc where available.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let kb: u64 = info
                .lines()
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!(", {} GiB RAM", kb / (1024 * 1024)))
        })
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} logical cores available{memory}, {}",
        std::env::consts::OS
    )
}

/// Today's date in UTC as YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// One SVG per key distribution: throughput against threads, a line per
/// contestant, solid for the 90/10 mix and dashed for 50/50.
fn write_plots(table: &Table, out: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut by_distribution: BTreeMap<String, Mixes<'_>> = BTreeMap::new();
    for (group, by_contestant) in table {
        let mut parts = group.splitn(3, '/');
        if let (Some("contention"), Some(distribution), Some(mix)) =
            (parts.next(), parts.next(), parts.next())
        {
            by_distribution
                .entry(distribution.to_string())
                .or_default()
                .push((mix.to_string(), by_contestant));
        }
    }
    let mut plots = Vec::new();
    for (distribution, mixes) in by_distribution {
        let file = format!("throughput_{distribution}.svg");
        std::fs::write(out.join(&file), svg(&distribution, &mixes))?;
        plots.push((distribution, file));
    }
    Ok(plots)
}

fn svg(distribution: &str, mixes: &Mixes<'_>) -> String {
    const COLORS: [&str; 5] = ["#d62728", "#7f7f7f", "#1f77b4", "#2ca02c", "#9467bd"];
    const DASHES: [&str; 2] = ["", "6,4"];
    let (width, height) = (760.0, 440.0);
    let (left, right, top, bottom) = (70.0, 200.0, 40.0, 50.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;

    let mut threads: Vec<u64> = mixes
        .iter()
        .flat_map(|(_, by)| by.values().flat_map(|p| p.keys().flatten().copied()))
        .collect();
    threads.sort_unstable();
    threads.dedup();
    let max_mops = mixes
        .iter()
        .flat_map(|(_, by)| by.values().flat_map(|p| p.values()))
        .map(|ns| 1e3 / ns)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let y_max = nice_ceiling(max_mops);
    let last = threads.len().saturating_sub(1).max(1) as f64;
    let x_of = |i: usize| left + plot_w * i as f64 / last;
    let y_of = |mops: f64| top + plot_h * (1.0 - mops / y_max);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">Throughput vs threads, keys {distribution} (2 cores)</text>"#,
        left + plot_w / 2.0
    );
    // Shade the oversubscribed part: more threads than the 2 cores.
    if let Some(i) = threads.iter().position(|&t| t == 2)
        && i + 1 < threads.len()
    {
        let x = x_of(i);
        let _ = writeln!(
            s,
            r##"<rect x="{x:.1}" y="{top}" width="{:.1}" height="{plot_h}" fill="#f2f2f2"/><text x="{:.1}" y="{:.1}" fill="#888">oversubscribed (&gt; 2 cores)</text>"##,
            left + plot_w - x,
            x + 6.0,
            top + 14.0
        );
    }
    // Axes, grid and ticks.
    for k in 0..=5 {
        let v = y_max * k as f64 / 5.0;
        let y = y_of(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            trim_float(v)
        );
    }
    for (i, t) in threads.iter().enumerate() {
        let x = x_of(i);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{t}</text>"##,
            top + plot_h,
            top + plot_h + 5.0,
            top + plot_h + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline points="{left},{top} {left},{:.1} {:.1},{:.1}" fill="none" stroke="#333"/>"##,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">threads</text>"#,
        left + plot_w / 2.0,
        height - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">million operations / s</text>"#,
        top + plot_h / 2.0
    );
    // Lines and legend.
    let mut legend_y = top + 10.0;
    for (m, (mix, by_contestant)) in mixes.iter().enumerate() {
        let dash = DASHES[m % DASHES.len()];
        for (c, (name, label)) in CONTESTANTS.iter().enumerate() {
            let Some(points) = by_contestant.get(*name) else {
                continue;
            };
            let coords: Vec<String> = threads
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    points
                        .get(&Some(*t))
                        .map(|ns| format!("{:.1},{:.1}", x_of(i), y_of(1e3 / ns)))
                })
                .collect();
            let color = COLORS[c % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
                coords.join(" ")
            );
            for point in &coords {
                let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>"#);
            }
            let lx = left + plot_w + 15.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{:.1}" y="{:.1}">{} {mix}</text>"#,
                lx + 28.0,
                lx + 34.0,
                legend_y + 4.0,
                escape(label)
            );
            legend_y += 18.0;
        }
    }
    let _ = writeln!(s, "</svg>");
    s
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
