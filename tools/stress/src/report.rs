//! What the run prints: a progress bar while it runs, then one typed
//! [`Report`], rendered for people or as JSON (`--json`).

use crate::audit::{Evidence, Violation};
use crate::backend::Id;
use crate::options::Options;
use crate::workload::{Latencies, Op, Outcomes};
use async_tasks_recorder::TaskState;
use hdrhistogram::Histogram;
use indicatif::{HumanCount, ProgressBar, ProgressState, ProgressStyle};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// Ids listed per violation in the JSON report.
const JSON_IDS: usize = 50;
/// Ids listed per violation on stderr.
const HUMAN_IDS: usize = 20;

/// The live bar: launch attempts, their rate in whole launches per second,
/// and the recorder's counts per state. Hidden with `--json`.
pub fn progress_bar(options: &Options) -> ProgressBar {
    if options.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(options.launches);
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} launches {rate} | {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", HumanCount(whole(state.per_sec())));
        },
    )
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// A non-negative rate rounded to a whole number (0 if not finite).
fn whole(rate: f64) -> u64 {
    if rate.is_finite() && rate > 0.0 {
        rate.round() as u64
    } else {
        0
    }
}

/// The options as run, with the thread count resolved.
#[derive(Serialize, Debug)]
pub struct Setup {
    #[serde(flatten)]
    pub options: Options,
    pub threads: usize,
}

/// Latency percentiles of one operation, in microseconds.
#[derive(Serialize, Debug, Default, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        let us = |nanos: u64| (nanos as f64 / 10.0).round() / 100.0;
        Self {
            count: histogram.len(),
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// Latency of each operation.
#[derive(Serialize, Debug, Default)]
pub struct LatencyTable {
    pub launch: Percentiles,
    pub launch_block: Percentiles,
    pub query: Percentiles,
    pub revoke: Percentiles,
    pub wait: Percentiles,
}

impl LatencyTable {
    fn of(latencies: &Latencies) -> Self {
        let of = |op| latencies.get(&op).map(Percentiles::of).unwrap_or_default();
        Self {
            launch: of(Op::Launch),
            launch_block: of(Op::LaunchBlock),
            query: of(Op::Query),
            revoke: of(Op::Revoke),
            wait: of(Op::Wait),
        }
    }

    fn rows(&self) -> [(Op, &Percentiles); 5] {
        [
            (Op::Launch, &self.launch),
            (Op::LaunchBlock, &self.launch_block),
            (Op::Query, &self.query),
            (Op::Revoke, &self.revoke),
            (Op::Wait, &self.wait),
        ]
    }
}

/// How many ids queries find in each state after the drain.
#[derive(Serialize, Debug, Default, PartialEq, Eq)]
pub struct FinalStates {
    pub working: usize,
    pub success: usize,
    pub failed: usize,
}

impl FinalStates {
    fn of(evidence: &Evidence) -> Self {
        let count = |wanted| {
            evidence
                .states
                .iter()
                .filter(|s| **s == Some(wanted))
                .count()
        };
        Self {
            working: count(TaskState::Working),
            success: count(TaskState::Success),
            failed: count(TaskState::Failed),
        }
    }
}

/// One violation as reported: its rule, how many ids, the first ids.
#[derive(Serialize, Debug)]
pub struct ViolationReport {
    pub rule: String,
    pub count: usize,
    pub ids: Vec<Id>,
}

/// Everything the run prints at its end.
#[derive(Serialize, Debug)]
pub struct Report {
    pub options: Setup,
    pub run_seconds: f64,
    pub audit_seconds: f64,
    /// Launch attempts, queries, revokes and waits.
    pub operations: u64,
    pub ops_per_second: u64,
    pub launches_per_second: u64,
    pub outcomes: Outcomes,
    pub final_states: FinalStates,
    pub latency: LatencyTable,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_backend_error: Option<String>,
    pub violations: Vec<ViolationReport>,
}

/// What the report is made of.
pub struct Facts<'a> {
    pub setup: Setup,
    pub run_time: Duration,
    pub audit_time: Duration,
    pub latencies: &'a Latencies,
    pub evidence: &'a Evidence,
    pub first_backend_error: Option<String>,
    pub violations: &'a [Violation],
}

impl Report {
    pub fn new(facts: Facts<'_>) -> Self {
        let outcomes = facts.evidence.outcomes;
        let secs = facts.run_time.as_secs_f64().max(1e-9);
        let millis = |secs: f64| (secs * 1e3).round() / 1e3;
        Self {
            options: facts.setup,
            run_seconds: millis(secs),
            audit_seconds: millis(facts.audit_time.as_secs_f64()),
            operations: outcomes.operations(),
            ops_per_second: whole(outcomes.operations() as f64 / secs),
            launches_per_second: whole(outcomes.launch_attempts as f64 / secs),
            outcomes,
            final_states: FinalStates::of(facts.evidence),
            latency: LatencyTable::of(facts.latencies),
            first_backend_error: facts.first_backend_error,
            violations: facts
                .violations
                .iter()
                .map(|v| ViolationReport {
                    rule: v.rule.to_string(),
                    count: v.ids.len(),
                    ids: v.ids.iter().take(JSON_IDS).copied().collect(),
                })
                .collect(),
        }
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The report as pretty JSON, with a final newline.
    pub fn json(&self) -> String {
        match serde_json::to_string_pretty(self) {
            Ok(text) => text + "\n",
            // Every field is a plain number, string or list.
            Err(error) => format!("{{\"error\": \"{error}\"}}\n"),
        }
    }

    /// The report for people: the figures for stdout, the violations for
    /// stderr.
    pub fn human(&self, violations: &[Violation]) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        let o = &self.outcomes;
        let _ = writeln!(
            out,
            "{} operations ({} launch attempts) in {} s: {} ops/s, {} launches/s",
            self.operations,
            o.launch_attempts,
            self.run_seconds,
            self.ops_per_second,
            self.launches_per_second
        );
        let _ = writeln!(
            out,
            "launches: accepted {}, refused working {}, refused success {}, refused other {}, abandoned {}",
            o.accepted, o.refused_working, o.refused_success, o.refused_other, o.abandoned
        );
        let _ = writeln!(
            out,
            "tasks: ok {}, failed {}, panicked {}, cancelled {}",
            o.tasks_ok, o.tasks_failed, o.tasks_panicked, o.cancelled
        );
        let _ = writeln!(
            out,
            "queries {}, revokes done {}, revokes failed {}, revokes refused {}, waits {}, backend errors {}",
            o.queries,
            o.revokes_done,
            o.revokes_failed,
            o.revokes_refused,
            o.waits,
            o.backend_errors
        );
        let f = &self.final_states;
        let _ = writeln!(
            out,
            "final states: working {}, success {}, failed {} (audit {} s)",
            f.working, f.success, f.failed, self.audit_seconds
        );
        let _ = writeln!(
            out,
            "latency (µs)    count      p50      p90      p99    p99.9      max"
        );
        for (op, p) in self.latency.rows() {
            let _ = writeln!(
                out,
                "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                op.name(),
                p.count,
                p.p50_us,
                p.p90_us,
                p.p99_us,
                p.p999_us,
                p.max_us
            );
        }
        if violations.is_empty() {
            let _ = writeln!(out, "audit: all invariants hold");
        }
        for violation in violations {
            let shown: Vec<String> = violation
                .ids
                .iter()
                .take(HUMAN_IDS)
                .map(u64::to_string)
                .collect();
            let _ = writeln!(
                err,
                "VIOLATION: {} ({} ids){}{}",
                violation.rule,
                violation.ids.len(),
                if shown.is_empty() { "" } else { ": " },
                shown.join(", ")
            );
        }
        if let Some(error) = &self.first_backend_error {
            let _ = writeln!(err, "first backend error: {error}");
        }
        (out, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_whole_numbers() {
        assert_eq!(whole(454_808.396_9), 454_808);
        assert_eq!(whole(0.4), 0);
        assert_eq!(whole(f64::NAN), 0);
        assert_eq!(HumanCount(whole(454_808.6)).to_string(), "454,809");
    }
}
