//! `summary.md`: the targets with their reasons, then every table of the run.

use crate::read::Run;
use crate::targets::{Limit, Target, check, targets};
use bench_report::{CONTENTION_THREADS, Contestant, Group, Keys, Mix, ScaleWorkload, Workload};
use std::fmt::Write as _;

/// What the summary says about where and when it was measured.
pub struct Context<'a> {
    /// CPU, cores, memory, OS.
    pub machine: &'a str,
    /// YYYY-MM-DD.
    pub date: &'a str,
    /// Logical cores available, if known.
    pub cores: Option<usize>,
    /// (distribution, plot file) pairs, in order.
    pub plots: &'a [(Keys, String)],
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

/// "With N cores, …" or nothing when the core count is unknown.
fn oversubscribed(cores: Option<usize>) -> String {
    match cores {
        Some(n) => format!(
            " This machine has {n} logical cores: contention points with more than {n} \
             threads are oversubscribed."
        ),
        None => String::new(),
    }
}

pub fn summary(run: &Run, context: &Context<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmark summary\n");
    let _ = writeln!(s, "- Machine: {}", context.machine);
    let _ = writeln!(s, "- Date: {} (UTC)", context.date);
    let _ = writeln!(
        s,
        "- Mode: {} (`BENCH_QUICK=1` is the smoke configuration)",
        run.mode.as_str()
    );
    let _ = writeln!(
        s,
        "- Absolute times depend on the machine and on other load, so every figure is \
         compared with the others of the same run, and each figure is criterion's median, \
         which a few samples spoiled by other load do not move.{}\n",
        oversubscribed(context.cores)
    );
    let _ = writeln!(
        s,
        "Contestants: this crate (`ours`), the floor (`raw scc map`: a \
         `scc::HashMap<u64, u8>` doing insert `Working` + update for a launch, one read \
         for a query), `async_tasks_recorder` 2.0.2, `async_tasks_state_map` 1.0.1, and \
         a hand-written `Mutex<HashMap>` recorder. All are driven by the same one-poll \
         executor.\n"
    );
    targets_section(&mut s, run);
    single_section(&mut s, run);
    contention_section(&mut s, run, context);
    scale_section(&mut s, run);
    let _ = writeln!(s, "## Plots\n");
    for (keys, file) in context.plots {
        let _ = writeln!(s, "- {}: [{file}]({file})", keys.as_str());
    }
    s
}

fn targets_section(s: &mut String, run: &Run) {
    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(
        s,
        "The two ratio targets compare this crate with the raw scc map of the same run, \
         so they hold or fail on any machine; the listing target is a time, because its \
         point is that listing failed ids must not walk the whole table.\n"
    );
    let _ = writeln!(
        s,
        "| Target | limit | ours | 2.0.2 for reference | met | why this limit |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|:---:|---|");
    for (target, applies) in targets(run.mode) {
        let Target {
            what,
            group,
            limit,
            why,
        } = target;
        let get = |c: Contestant| run.get(group, c, None);
        let shown = |v: f64| match limit {
            Limit::TimesRaw(_) => format!("{v:.2}×"),
            Limit::Nanos(_) => ns(Some(v)),
        };
        let limit_text = match limit {
            Limit::TimesRaw(l) => format!("≤ {l}× raw"),
            Limit::Nanos(l) => format!("≤ {}", ns(Some(l))),
        };
        let (ours, v2, met) = if applies {
            let v2_get = |c: Contestant| match c {
                Contestant::Ours => get(Contestant::V2),
                other => get(other),
            };
            match check(&target, get) {
                Some((v, met)) => (
                    shown(v),
                    check(&target, v2_get).map_or("–".into(), |(v, _)| shown(v)),
                    if met { "yes" } else { "no" },
                ),
                None => ("–".into(), "–".into(), "–"),
            }
        } else {
            (
                format!(
                    "not measured: a {} run lists among {} ids",
                    run.mode.as_str(),
                    run.mode.listing_ids()
                ),
                "–".into(),
                "–",
            )
        };
        let _ = writeln!(
            s,
            "| {what} | {limit_text} | {ours} | {v2} | {met} | {why} |"
        );
    }
    let _ = writeln!(s);
}

fn header(s: &mut String, first: &str, contestants: &[Contestant], extra: &[&str]) {
    let _ = write!(s, "| {first} |");
    for c in contestants {
        let _ = write!(s, " {} |", c.label());
    }
    for label in extra {
        let _ = write!(s, " {label} |");
    }
    let _ = write!(s, "\n|---|");
    for _ in 0..contestants.len() + extra.len() {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s);
}

/// One row: a cell per contestant in table order, then ours ÷ raw and
/// ours ÷ 2.0.2. For costs (`inverse` false) the ratio is of times, below 1
/// is faster; for throughput (`inverse` true) it is of operations per
/// second, above 1 is faster.
fn row(
    s: &mut String,
    first: &str,
    values: &[Option<f64>],
    cell: fn(Option<f64>) -> String,
    inverse: bool,
) {
    let _ = write!(s, "| {first} |");
    for v in values {
        let _ = write!(s, " {} |", cell(*v));
    }
    let ours = values[0];
    let (raw, v2) = (values[1], values[2]);
    if inverse {
        let _ = writeln!(s, " {} | {} |", ratio(raw, ours), ratio(v2, ours));
    } else {
        let _ = writeln!(s, " {} | {} |", ratio(ours, raw), ratio(ours, v2));
    }
}

fn single_section(s: &mut String, run: &Run) {
    let _ = writeln!(s, "## Single-thread costs (ns per operation)\n");
    header(
        s,
        "Workload",
        &Contestant::ALL,
        &["ours ÷ raw", "ours ÷ 2.0.2"],
    );
    let mut groups: Vec<Group> = Workload::ALL.into_iter().map(Group::Single).collect();
    groups.push(run.mode.listing());
    for group in groups {
        let values: Vec<Option<f64>> = Contestant::ALL
            .into_iter()
            .map(|c| run.get(group, c, None))
            .collect();
        let name = group.id();
        let name = name.strip_prefix("single/").unwrap_or(&name);
        row(s, name, &values, ns, false);
    }
    let _ = writeln!(s);
}

fn contention_section(s: &mut String, run: &Run, context: &Context<'_>) {
    let _ = writeln!(s, "## Contention (millions of operations per second)\n");
    let _ = writeln!(
        s,
        "A write is a `launch_block` failing 30% of the time, retried at once (up to 4 \
         attempts); a launch refused with `Success` revokes the id instead.{} 2.0.2's \
         figures on hot and small key sets flatter it: a launch it refuses because the id \
         succeeded leaves the id in its working set, so the id reads `Working` for good \
         and every later write is a cheap refusal instead of a revoke and a relaunch.\n",
        oversubscribed(context.cores)
    );
    for keys in Keys::ALL {
        let _ = writeln!(s, "### {}\n", keys.as_str());
        header(
            s,
            "Mix, threads",
            &Contestant::ALL,
            &["ours ÷ raw", "ours ÷ 2.0.2"],
        );
        for mix in Mix::ALL {
            for t in CONTENTION_THREADS {
                let values: Vec<Option<f64>> = Contestant::ALL
                    .into_iter()
                    .map(|c| run.get(Group::Contention(keys, mix), c, Some(t)))
                    .collect();
                row(s, &format!("{}, {t}", mix.as_str()), &values, mops, true);
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "Ratios in this section are throughput ratios (ours ÷ other): above 1 means ours is faster.\n"
    );
}

fn scale_section(s: &mut String, run: &Run) {
    let _ = writeln!(s, "## Scale\n");
    for (title, workload) in [
        (
            "Query of a recorded id (ns per operation)",
            ScaleWorkload::QueryHit,
        ),
        (
            "`launch_block` of a fresh id (ns per operation)",
            ScaleWorkload::LaunchBlockFresh,
        ),
    ] {
        let _ = writeln!(s, "### {title}\n");
        header(
            s,
            "Table ids",
            &Contestant::ALL,
            &["ours ÷ raw", "ours ÷ 2.0.2"],
        );
        for &n in run.mode.scale_sizes() {
            let values: Vec<Option<f64>> = Contestant::ALL
                .into_iter()
                .map(|c| run.get(Group::Scale(workload), c, Some(n)))
                .collect();
            row(s, &n.to_string(), &values, ns, false);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "### Heap bytes per recorded id\n");
    header(
        s,
        "Table ids",
        &Contestant::ALL,
        &["ours ÷ raw", "ours ÷ 2.0.2"],
    );
    for &n in run.mode.scale_sizes() {
        let values: Vec<Option<f64>> = Contestant::ALL
            .into_iter()
            .map(|c| run.memory.get(&(c, n)).copied())
            .collect();
        row(
            s,
            &n.to_string(),
            &values,
            |v| v.map_or("–".into(), |v| format!("{v:.1}")),
            false,
        );
    }
    let _ = writeln!(
        s,
        "\nLive heap growth while filling the table, divided by its ids; it includes \
         garbage that the maps' epoch-based reclamation had not yet freed.\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{read_run, tests::fake_run};

    fn fake_summary(cores: Option<usize>) -> String {
        let dir = tempfile::tempdir().unwrap();
        fake_run(dir.path(), None);
        let run = read_run(dir.path()).unwrap();
        summary(
            &run,
            &Context {
                machine: "Test CPU, 3 logical cores available",
                date: "2026-01-02",
                cores,
                plots: &[(Keys::HotId, "throughput_hot_id.svg".to_string())],
            },
        )
    }

    #[test]
    fn the_summary_states_targets_with_reasons_and_the_cores_it_read() {
        let s = fake_summary(Some(3));
        assert!(
            s.contains("- Machine: Test CPU, 3 logical cores available"),
            "{s}"
        );
        assert!(s.contains("more than 3 threads are oversubscribed"), "{s}");
        assert!(!s.contains("2 cores"), "{s}");
        // The fake raw map is 2× ours: ratios 0.50×, both ratio targets met.
        assert!(
            s.contains("| `launch_block` of a fresh id ÷ raw insert + update, 10^5 ids | ≤ 1.3× raw | 0.50× | 1.50× | yes | a launch makes"),
            "{s}"
        );
        assert!(s.contains("| ≤ 1.2× raw | 0.50× |"), "{s}");
        assert!(
            s.contains("| ≤ 50.0 µs | not measured: a quick run lists among 100000 ids |"),
            "{s}"
        );
        assert!(
            s.contains("| listing/failed_1000_of_1e5 | 10.0 | 20.0 | 30.0 |"),
            "{s}"
        );
        assert!(s.contains("- hot_id: [throughput_hot_id.svg](throughput_hot_id.svg)"));
    }

    #[test]
    fn an_unknown_core_count_is_not_guessed() {
        let s = fake_summary(None);
        assert!(!s.contains("oversubscribed"), "{s}");
    }
}
