//! What the run prints: a progress bar while it runs, then one typed
//! [`Report`], serialised once as JSON (`--json`) or rendered for people.
//! The parts every report shares ([`Throughput`], [`Percentiles`],
//! [`Verdict`] with its [`ViolationReport`]s) are used by the PostgreSQL
//! run's report too.

use crate::audit::{self, Evidence};
use crate::options::Options;
use crate::violation::{AuditRule, Violation};
use crate::workload::{Latencies, Outcomes, TimedCall};
use async_tasks_recorder::TaskState;
use async_tasks_recorder_harness::protocol::Id;
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
    /// Of a histogram in nanoseconds, rounded to hundredths of a µs.
    fn of(histogram: &Histogram<u64>) -> Self {
        Self::scaled(histogram, |nanos| (nanos as f64 / 10.0).round() / 100.0)
    }

    /// Of a histogram in whole microseconds.
    pub fn of_micros(histogram: &Histogram<u64>) -> Self {
        Self::scaled(histogram, |micros| micros as f64)
    }

    fn scaled(histogram: &Histogram<u64>, us: impl Fn(u64) -> f64) -> Self {
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
            launch: of(TimedCall::Launch),
            launch_block: of(TimedCall::LaunchBlock),
            query: of(TimedCall::Query),
            revoke: of(TimedCall::Revoke),
            wait: of(TimedCall::Wait),
        }
    }

    fn rows(&self) -> [(TimedCall, &Percentiles); 5] {
        [
            (TimedCall::Launch, &self.launch),
            (TimedCall::LaunchBlock, &self.launch_block),
            (TimedCall::Query, &self.query),
            (TimedCall::Revoke, &self.revoke),
            (TimedCall::Wait, &self.wait),
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

/// One violation as reported: its rule's stable id (what scripts match),
/// the rule as text, how many ids broke it, and the first of them.
#[derive(Serialize, Debug)]
pub struct ViolationReport<I = Id> {
    pub rule: &'static str,
    pub text: String,
    pub count: usize,
    pub ids: Vec<I>,
}

impl<I: Copy> ViolationReport<I> {
    /// `violation` with its first `shown` ids.
    pub fn of<R: AuditRule>(violation: &Violation<R, I>, shown: usize) -> Self {
        Self {
            rule: violation.rule.id(),
            text: violation.rule.to_string(),
            count: violation.ids.len(),
            ids: violation.ids.iter().take(shown).copied().collect(),
        }
    }
}

impl<I: std::fmt::Display> ViolationReport<I> {
    /// The first `shown` ids, comma-separated.
    pub fn ids_shown(&self, shown: usize) -> String {
        let ids: Vec<String> = self.ids.iter().take(shown).map(I::to_string).collect();
        ids.join(", ")
    }
}

/// How a run ends: the broken promises, and whether it passed (no
/// violation, and nothing else that keeps the run from vouching for them).
#[derive(Serialize, Debug)]
pub struct Verdict<I = Id> {
    pub violations: Vec<ViolationReport<I>>,
    pub passed: bool,
}

impl<I: Copy> Verdict<I> {
    /// Passed if no rule was broken and `vouched` holds; `shown` ids are
    /// kept per violation.
    pub fn new<R: AuditRule>(violations: &[Violation<R, I>], shown: usize, vouched: bool) -> Self {
        Self {
            passed: violations.is_empty() && vouched,
            violations: violations
                .iter()
                .map(|v| ViolationReport::of(v, shown))
                .collect(),
        }
    }
}

/// How much a run did and how fast.
#[derive(Serialize, Debug)]
pub struct Throughput {
    /// Rounded to the millisecond.
    pub run_seconds: f64,
    pub operations: u64,
    pub ops_per_second: u64,
}

impl Throughput {
    pub fn new(operations: u64, run_time: Duration) -> Self {
        Self {
            run_seconds: millis(run_time.as_secs_f64()),
            operations,
            ops_per_second: whole(operations as f64 / run_time.as_secs_f64().max(1e-9)),
        }
    }
}

/// Seconds rounded to the millisecond.
pub fn millis(secs: f64) -> f64 {
    (secs * 1e3).round() / 1e3
}

/// Everything the run prints at its end.
#[derive(Serialize, Debug)]
pub struct Report {
    pub options: Setup,
    /// Operations are launch attempts, queries, revokes and waits.
    #[serde(flatten)]
    pub throughput: Throughput,
    pub audit_seconds: f64,
    pub launches_per_second: u64,
    pub outcomes: Outcomes,
    pub final_states: FinalStates,
    pub latency: LatencyTable,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_backend_error: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What the report is made of.
pub struct Facts<'a> {
    pub setup: Setup,
    pub run_time: Duration,
    pub audit_time: Duration,
    pub latencies: &'a Latencies,
    pub evidence: &'a Evidence,
    pub first_backend_error: Option<String>,
    pub violations: &'a [audit::Violation],
}

impl Report {
    pub fn new(facts: Facts<'_>) -> Self {
        let outcomes = facts.evidence.outcomes;
        let secs = facts.run_time.as_secs_f64().max(1e-9);
        Self {
            options: facts.setup,
            throughput: Throughput::new(outcomes.operations(), facts.run_time),
            audit_seconds: millis(facts.audit_time.as_secs_f64()),
            launches_per_second: whole(outcomes.launch_attempts as f64 / secs),
            outcomes,
            final_states: FinalStates::of(facts.evidence),
            latency: LatencyTable::of(facts.latencies),
            first_backend_error: facts.first_backend_error,
            verdict: Verdict::new(facts.violations, JSON_IDS, true),
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict.passed
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
    pub fn human(&self) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        let o = &self.outcomes;
        let t = &self.throughput;
        let _ = writeln!(
            out,
            "{} operations ({} launch attempts) in {} s: {} ops/s, {} launches/s",
            t.operations,
            o.launch_attempts,
            t.run_seconds,
            t.ops_per_second,
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
        let violations = &self.verdict.violations;
        if violations.is_empty() {
            let _ = writeln!(out, "audit: all invariants hold");
        }
        for violation in violations {
            let _ = writeln!(
                err,
                "VIOLATION: {} ({} ids){}{}",
                violation.text,
                violation.count,
                if violation.ids.is_empty() { "" } else { ": " },
                violation.ids_shown(HUMAN_IDS)
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
    fn a_verdict_names_each_rule_by_id_and_text_with_its_first_ids() {
        use crate::audit::Rule;
        let lost = Violation::named(Rule::SuccessWithoutEffect, (0..60).collect());
        let violations: Vec<audit::Violation> = lost.into_iter().collect();
        let verdict = Verdict::new(&violations, JSON_IDS, true);
        assert!(!verdict.passed);
        let reported = &verdict.violations[0];
        assert_eq!(reported.rule, "success_without_effect");
        assert_eq!(reported.text, Rule::SuccessWithoutEffect.to_string());
        assert_eq!((reported.count, reported.ids.len()), (60, JSON_IDS));
        assert_eq!(reported.ids_shown(3), "0, 1, 2");
        let none: [audit::Violation; 0] = [];
        assert!(Verdict::new(&none, JSON_IDS, true).passed);
        assert!(!Verdict::new(&none, JSON_IDS, false).passed);
    }

    #[test]
    fn rates_are_whole_numbers() {
        assert_eq!(whole(454_808.396_9), 454_808);
        assert_eq!(whole(0.4), 0);
        assert_eq!(whole(f64::NAN), 0);
        assert_eq!(HumanCount(whole(454_808.6)).to_string(), "454,809");
    }
}
