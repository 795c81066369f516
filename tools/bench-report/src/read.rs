//! Reads a criterion run into typed measures and checks that it holds every
//! point the benches of its mode produce.
//!
//! Criterion's directory keeps every group it ever measured, so a quick run
//! after a full one leaves the full run's larger tables beside it. Only the
//! points the recorded mode produces are read; any of them missing is an
//! error naming the contestant, the group and the bench that makes it.

use bench_report::{
    Contestant, Group, Keys, MEMORY_FILE, MODE_FILE, MemoryRow, Mix, Mode, ScaleWorkload, Workload,
    read_memory,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Nanoseconds per operation by contestant, then parameter (threads or
/// table ids; `None` for groups without one).
pub type ByContestant = BTreeMap<Contestant, BTreeMap<Option<u64>, f64>>;

/// One criterion run, as the report uses it.
#[derive(Debug)]
pub struct Run {
    pub mode: Mode,
    pub groups: BTreeMap<Group, ByContestant>,
    /// Bytes per recorded id by (contestant, table ids).
    pub memory: BTreeMap<(Contestant, u64), f64>,
    /// Criterion results under names no bench of this version writes
    /// (left by older versions of the benches); not read.
    pub ignored: BTreeSet<String>,
}

impl Run {
    /// ns per operation of `contestant` in `group` at `parameter`.
    pub fn get(&self, group: Group, contestant: Contestant, parameter: Option<u64>) -> Option<f64> {
        self.groups
            .get(&group)?
            .get(&contestant)?
            .get(&parameter)
            .copied()
    }
}

/// The groups a run in `mode` writes, with the parameters of each point.
pub fn expected(mode: Mode) -> Vec<(Group, Vec<Option<u64>>)> {
    let mut groups: Vec<(Group, Vec<Option<u64>>)> = Workload::ALL
        .into_iter()
        .map(|w| (Group::Single(w), vec![None]))
        .collect();
    groups.push((mode.listing(), vec![None]));
    for keys in Keys::ALL {
        for mix in Mix::ALL {
            let threads = bench_report::CONTENTION_THREADS.map(Some).to_vec();
            groups.push((Group::Contention(keys, mix), threads));
        }
    }
    for w in ScaleWorkload::ALL {
        let sizes = mode.scale_sizes().iter().map(|&n| Some(n)).collect();
        groups.push((Group::Scale(w), sizes));
    }
    groups
}

/// The bench binary that writes `group`, for error messages.
fn bench_of(group: Group) -> &'static str {
    match group {
        Group::Single(_) | Group::Listing { .. } => "single",
        Group::Contention(..) => "contention",
        Group::Scale(_) => "scale",
    }
}

/// Reads the run in criterion's directory `dir`.
pub fn read_run(dir: &Path) -> Result<Run, String> {
    let mode_path = dir.join(MODE_FILE);
    let mode_text = std::fs::read_to_string(&mode_path).map_err(|e| {
        format!(
            "{}: {e}; run `cargo bench` (or `BENCH_QUICK=1 cargo bench`) first",
            mode_path.display()
        )
    })?;
    let mode = Mode::parse(&mode_text).ok_or_else(|| {
        format!(
            "{}: `{}` is neither `quick` nor `full`",
            mode_path.display(),
            mode_text.trim()
        )
    })?;

    let mut found = Vec::new();
    collect(dir, &mut found).map_err(|e| format!("{}: {e}", dir.display()))?;
    let wanted = expected(mode);
    let mut groups: BTreeMap<Group, ByContestant> = BTreeMap::new();
    let mut ignored = BTreeSet::new();
    for raw in found {
        let group = Group::parse(&raw.group).ok();
        let contestant = Contestant::parse(&raw.contestant);
        let params = group.and_then(|g| wanted.iter().find(|(w, _)| *w == g));
        match (group, contestant, params) {
            (Some(group), Some(contestant), Some((_, params)))
                if params.contains(&raw.parameter) =>
            {
                groups
                    .entry(group)
                    .or_default()
                    .entry(contestant)
                    .or_default()
                    .insert(raw.parameter, raw.ns);
            }
            // A point of another mode (a table size only the full run has).
            (Some(_), Some(_), _) => {}
            _ => {
                ignored.insert(format!("{}/{}", raw.group, raw.contestant));
            }
        }
    }

    let mut missing = Vec::new();
    for (group, params) in &wanted {
        for contestant in group.contestants() {
            let have = groups.get(group).and_then(|by| by.get(&contestant));
            let absent: Vec<String> = params
                .iter()
                .filter(|p| !have.is_some_and(|h| h.contains_key(p)))
                .map(|p| p.map_or("its one point".to_string(), |p| format!("parameter {p}")))
                .collect();
            if !absent.is_empty() {
                missing.push(format!(
                    "contestant `{contestant}` in group `{group}` ({}) — written by `cargo bench --bench {}`",
                    absent.join(", "),
                    bench_of(*group)
                ));
            }
        }
    }

    let memory_path = dir.join(MEMORY_FILE);
    let rows: Vec<MemoryRow> = read_memory(&memory_path)
        .map_err(|e| format!("{e}; the memory file is written by `cargo bench --bench scale`"))?;
    let memory: BTreeMap<(Contestant, u64), f64> = rows
        .into_iter()
        .map(|r| ((r.contestant, r.ids), r.bytes_per_id))
        .collect();
    for contestant in Contestant::ALL {
        for &ids in mode.scale_sizes() {
            if !memory.contains_key(&(contestant, ids)) {
                missing.push(format!(
                    "contestant `{contestant}` at {ids} ids in {MEMORY_FILE} — written by `cargo bench --bench scale`"
                ));
            }
        }
    }

    if !missing.is_empty() {
        return Err(format!(
            "the {} run in {} lacks {} result(s):\n  {}",
            mode.as_str(),
            dir.display(),
            missing.len(),
            missing.join("\n  ")
        ));
    }
    Ok(Run {
        mode,
        groups,
        memory,
        ignored,
    })
}

/// One criterion result as written, before its names are checked.
#[derive(Debug)]
struct RawMeasure {
    group: String,
    contestant: String,
    parameter: Option<u64>,
    ns: f64,
}

/// Walks `dir` for criterion's `new/benchmark.json` + `new/estimates.json`.
fn collect(dir: &Path, out: &mut Vec<RawMeasure>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "new" {
            let measure = read_measure(&path).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            out.push(measure);
        } else if !matches!(name, "base" | "change" | "report") {
            collect(&path, out)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_measure(new: &Path) -> Result<RawMeasure, String> {
    let benchmark = read_json(&new.join("benchmark.json"))?;
    let estimates = read_json(&new.join("estimates.json"))?;
    let field = |name: &str| {
        benchmark
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("benchmark.json has no string `{name}`"))
    };
    // The median resists the samples that other load on a shared machine spoils.
    let ns = estimates
        .get("median")
        .and_then(|m| m.get("point_estimate"))
        .and_then(Value::as_f64)
        .ok_or("estimates.json has no median point_estimate")?;
    let parameter = match benchmark.get("value_str") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("benchmark.json: value_str {v} is not a count"))?,
        ),
    };
    Ok(RawMeasure {
        group: field("group_id")?,
        contestant: field("function_id")?,
        parameter,
        ns,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Writes one result the way criterion lays it out.
    fn write_result(dir: &Path, group: &str, contestant: &str, parameter: Option<u64>, ns: f64) {
        let mut path: PathBuf = dir.join(group).join(contestant);
        if let Some(p) = parameter {
            path = path.join(p.to_string());
        }
        let new = path.join("new");
        std::fs::create_dir_all(&new).unwrap();
        let value_str = parameter.map_or(Value::Null, |p| Value::String(p.to_string()));
        let benchmark = serde_json::json!({
            "group_id": group,
            "function_id": contestant,
            "value_str": value_str,
        });
        std::fs::write(new.join("benchmark.json"), benchmark.to_string()).unwrap();
        let estimates = serde_json::json!({
            "mean": {"point_estimate": ns * 2.0},
            "median": {"point_estimate": ns},
        });
        std::fs::write(new.join("estimates.json"), estimates.to_string()).unwrap();
    }

    /// A complete quick run, each contestant `k + 1` times slower than
    /// `ours` (its index in table order), with `skip` left out.
    pub fn fake_run(dir: &Path, skip: Option<(Group, Contestant)>) {
        std::fs::write(dir.join(MODE_FILE), "quick\n").unwrap();
        for (group, params) in expected(Mode::Quick) {
            for (k, contestant) in group.contestants().into_iter().enumerate() {
                if skip == Some((group, contestant)) {
                    continue;
                }
                for &p in &params {
                    let ns = 10.0 * (k + 1) as f64 * p.unwrap_or(1) as f64;
                    write_result(dir, &group.id(), contestant.as_str(), p, ns);
                }
            }
        }
        let rows: Vec<MemoryRow> = Contestant::ALL
            .into_iter()
            .flat_map(|contestant| {
                Mode::Quick.scale_sizes().iter().map(move |&ids| MemoryRow {
                    contestant,
                    ids,
                    bytes_per_id: 20.0,
                })
            })
            .collect();
        std::fs::write(dir.join(MEMORY_FILE), serde_json::to_string(&rows).unwrap()).unwrap();
    }

    #[test]
    fn a_complete_fake_run_is_read_with_its_medians() {
        let dir = tempfile::tempdir().unwrap();
        fake_run(dir.path(), None);
        // Leftovers of a full run and of an older bench name must not be read.
        write_result(dir.path(), "scale/query_hit", "ours", Some(10_000_000), 1.0);
        write_result(dir.path(), "single/query_fast", "ours", None, 1.0);
        let run = read_run(dir.path()).unwrap();
        assert_eq!(run.mode, Mode::Quick);
        let hit = Group::Single(Workload::QueryHit);
        assert_eq!(run.get(hit, Contestant::Ours, None), Some(10.0));
        assert_eq!(run.get(hit, Contestant::V2, None), Some(30.0));
        let scale = Group::Scale(ScaleWorkload::QueryHit);
        assert_eq!(run.groups[&scale][&Contestant::Ours].len(), 2);
        assert_eq!(run.get(scale, Contestant::Ours, Some(10_000_000)), None);
        assert_eq!(run.memory.len(), 10);
        assert_eq!(
            run.ignored,
            BTreeSet::from(["single/query_fast/ours".to_string()])
        );
    }

    #[test]
    fn a_missing_contestant_is_an_error_naming_it_and_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let group = Group::Contention(Keys::HotId, Mix::Q50W50);
        fake_run(dir.path(), Some((group, Contestant::StateMap)));
        let error = read_run(dir.path()).unwrap_err();
        assert!(
            error.contains(
                "contestant `state_map` in group `contention/hot_id/q50_w50` \
                 (parameter 1, parameter 2, parameter 4, parameter 8, parameter 16) \
                 — written by `cargo bench --bench contention`"
            ),
            "{error}"
        );
        assert!(error.contains("lacks 1 result(s)"), "{error}");
    }

    #[test]
    fn a_missing_memory_row_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fake_run(dir.path(), None);
        let rows = vec![MemoryRow {
            contestant: Contestant::Ours,
            ids: 1_000,
            bytes_per_id: 20.0,
        }];
        let path = dir.path().join(MEMORY_FILE);
        std::fs::write(&path, serde_json::to_string(&rows).unwrap()).unwrap();
        let error = read_run(dir.path()).unwrap_err();
        assert!(
            error.contains("contestant `raw_scc` at 1000 ids in scale_memory.json"),
            "{error}"
        );
        assert!(error.contains("contestant `ours` at 100000 ids"), "{error}");
        assert!(!error.contains("contestant `ours` at 1000 ids"), "{error}");
    }

    #[test]
    fn a_run_without_its_mode_file_says_to_run_the_benches() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_run(dir.path()).unwrap_err();
        assert!(error.contains("bench_mode.txt"), "{error}");
        assert!(error.contains("run `cargo bench`"), "{error}");
    }

    #[test]
    fn a_result_without_a_median_is_an_error_naming_its_file() {
        let dir = tempfile::tempdir().unwrap();
        fake_run(dir.path(), None);
        let new = dir.path().join("single/revoke/ours/new");
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":1}}"#,
        )
        .unwrap();
        let error = read_run(dir.path()).unwrap_err();
        assert!(error.contains("single/revoke/ours/new"), "{error}");
        assert!(error.contains("no median"), "{error}");
    }
}
