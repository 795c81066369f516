//! The report of a postgres run: one [`PostgresReport`], made of the parts
//! every report shares ([`Throughput`], [`Percentiles`], [`Verdict`]) and
//! the run's own figures; serialised once on stdout, and rendered for
//! people on stderr when the run failed.

use super::IDS_SHOWN;
use super::audit::{Evidence, PgViolation};
use super::faults::{Faults, Injected};
use super::message::{Counts, PgOp};
use super::totals::Totals;
use crate::options::{BackendKind, Options, Sabotage};
use crate::report::{Percentiles, Throughput, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Latency of one operation across every process, in µs, with its errors.
#[derive(Serialize, Debug)]
pub struct OpLatency {
    #[serde(flatten)]
    pub percentiles: Percentiles,
    pub errors: u64,
}

/// The time to recover from one database crash.
#[derive(Serialize, Debug)]
pub struct Recovery {
    /// `pg_ctl stop -m immediate` and `pg_ctl start -w`.
    pub restart_ms: u64,
    /// From the crash to the first success acknowledged after the restart.
    pub first_success_after_crash_ms: Option<u64>,
}

/// One promotion of the standby.
#[derive(Serialize, Debug)]
pub struct Promotion {
    /// From the primary's death to the standby's promotion.
    pub promote_ms: u64,
    /// From the primary's death to the old primary following the new one.
    pub rejoin_ms: u64,
    /// From the primary's death to the first success acknowledged after it.
    pub first_success_after_ms: Option<u64>,
    /// Successes acknowledged before the primary died; each must be found
    /// after (the audit's `acknowledged_success_lost` names those that are not).
    pub acknowledged_before: usize,
}

/// What the fault injector did.
#[derive(Serialize, Debug)]
pub struct FaultCounts {
    #[serde(flatten)]
    pub injected: Injected,
    pub crashes: usize,
    pub recoveries: Vec<Recovery>,
    pub failovers: Vec<Promotion>,
}

/// The audit's own figures.
#[derive(Serialize, Debug)]
pub struct AuditFigures {
    pub seconds: f64,
    pub rows: u64,
    pub ledger_rows: u64,
    pub point_queries: u64,
    pub swept_at_end: u64,
}

/// Everything a postgres run prints at its end. `.ci/faults.sh` reads
/// `faults`, `zombie_stale_finishes`, `passed` and the violations' `rule`
/// ids and `ids`.
#[derive(Serialize, Debug)]
pub struct PostgresReport {
    pub backend: BackendKind,
    pub processes: u64,
    pub workers_per_process: u64,
    pub ids: u64,
    pub lease_ms: u64,
    pub sabotage: Option<Sabotage>,
    /// Operations are every timed call of every process.
    #[serde(flatten)]
    pub throughput: Throughput,
    /// From the start to the report, database start and audit included.
    pub wall_seconds: f64,
    pub latencies: BTreeMap<PgOp, OpLatency>,
    pub counters: Counts,
    pub successes_acknowledged: usize,
    /// Of them, acknowledged before the last database crash.
    pub acknowledged_before_last_crash: usize,
    pub stale_finishes: usize,
    /// `Stale` finishes of a zombie after it woke.
    pub zombie_stale_finishes: usize,
    pub faults: FaultCounts,
    /// The faults asked for that never happened or never bit.
    pub unmet_faults: Vec<String>,
    pub fault_errors: Vec<String>,
    pub first_worker_error: Option<String>,
    pub audit: AuditFigures,
    #[serde(flatten)]
    pub verdict: Verdict<i64>,
}

/// What the report is made of.
pub struct Facts<'a> {
    pub options: &'a Options,
    pub began: Instant,
    pub run_time: Duration,
    pub audit_time: Duration,
    pub totals: &'a Totals,
    pub faults: &'a Faults,
    pub zombie_stale_finishes: usize,
    pub unmet_faults: Vec<String>,
    pub evidence: &'a Evidence,
    pub violations: &'a [PgViolation],
}

impl PostgresReport {
    pub fn new(facts: Facts<'_>) -> Self {
        let Facts {
            options,
            totals,
            faults,
            ..
        } = facts;
        let ms = |d: Duration| d.as_millis() as u64;
        // Time to recover: from each crash to the first success acknowledged after it.
        let recoveries = faults
            .crashes
            .iter()
            .map(|crash| {
                let first = totals
                    .acked
                    .iter()
                    .map(|a| a.at)
                    .filter(|at| *at > crash.at + crash.restart)
                    .min();
                Recovery {
                    restart_ms: ms(crash.restart),
                    first_success_after_crash_ms: first.map(|f| ms(f - crash.at)),
                }
            })
            .collect();
        let first_after = |at: Instant| totals.acked.iter().map(|a| a.at).filter(|t| *t > at).min();
        let failovers = faults
            .failovers
            .iter()
            .map(|f| Promotion {
                promote_ms: ms(f.promote),
                rejoin_ms: ms(f.rejoin),
                first_success_after_ms: first_after(f.at + f.promote).map(|t| ms(t - f.at)),
                acknowledged_before: totals.acked.iter().filter(|a| a.at < f.at).count(),
            })
            .collect();
        let acknowledged_before_last_crash = faults
            .crashes
            .last()
            .map(|crash| totals.acked.iter().filter(|a| a.at < crash.at).count())
            .unwrap_or(0);
        let latencies = totals
            .ops
            .iter()
            .map(|(op, t)| {
                let percentiles = Percentiles {
                    count: t.count,
                    ..Percentiles::of_micros(&t.micros)
                };
                let errors = t.errors;
                (
                    *op,
                    OpLatency {
                        percentiles,
                        errors,
                    },
                )
            })
            .collect();
        let vouched = faults.errors.is_empty();
        PostgresReport {
            backend: BackendKind::Postgres,
            processes: options.processes,
            workers_per_process: options.workers,
            ids: options.ids,
            lease_ms: options.lease_ms,
            sabotage: options.sabotage,
            throughput: Throughput::new(totals.operations(), facts.run_time),
            wall_seconds: facts.began.elapsed().as_secs_f64(),
            latencies,
            counters: totals.counts,
            successes_acknowledged: totals.acked.len(),
            acknowledged_before_last_crash,
            stale_finishes: totals.stale.len(),
            zombie_stale_finishes: facts.zombie_stale_finishes,
            faults: FaultCounts {
                injected: faults.injected,
                crashes: faults.crashes.len(),
                recoveries,
                failovers,
            },
            unmet_faults: facts.unmet_faults,
            fault_errors: faults.errors.clone(),
            first_worker_error: totals.first_error.clone(),
            audit: AuditFigures {
                seconds: facts.audit_time.as_secs_f64(),
                rows: facts.evidence.tasks.len() as u64,
                ledger_rows: facts.evidence.ledger.len() as u64,
                point_queries: facts.evidence.point_reads.len() as u64,
                swept_at_end: facts.evidence.swept,
            },
            verdict: Verdict::new(facts.violations, IDS_SHOWN, vouched),
        }
    }

    /// The report as JSON, with a final newline: one line with `--json`,
    /// pretty otherwise.
    pub fn json(&self, one_line: bool) -> String {
        let text = if one_line {
            serde_json::to_string(self)
        } else {
            serde_json::to_string_pretty(self)
        };
        // Every field is a plain number, string or list.
        text.unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}")) + "\n"
    }

    /// Why the run failed, for people; empty if it passed.
    pub fn failure_text(&self) -> String {
        if self.verdict.passed {
            return String::new();
        }
        let mut err = String::from("AUDIT FAILED\n");
        for violation in &self.verdict.violations {
            let _ = writeln!(
                err,
                "  {}: {} ids: {}",
                violation.text,
                violation.count,
                violation.ids_shown(IDS_SHOWN)
            );
        }
        for e in &self.fault_errors {
            let _ = writeln!(err, "  fault injector: {e}");
        }
        for u in &self.unmet_faults {
            let _ = writeln!(err, "  not exercised: {u}");
        }
        err
    }
}
