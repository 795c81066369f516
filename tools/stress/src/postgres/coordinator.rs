//! The coordinator of a postgres run: it installs a fresh schema, starts
//! the worker processes, injects faults on schedule while merging what the
//! workers say, waits for them to end, audits the database and prints the
//! report.

use super::DEFAULT_SECS;
use super::audit::PgViolation;
use super::audit::{self, PgRule};
use super::database::{COORDINATOR_APP, Database};
use super::faults::{Injector, Targets};
use super::report::{Facts, PostgresReport};
use super::timeline::{self, Mark, Timeline};
use super::totals::Totals;
use super::workers::Workers;
use crate::options::Options;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often the coordinator reads messages and checks the fault schedule.
const TICK: Duration = Duration::from_millis(50);
/// How often it prints its progress (not with `--json`).
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs the coordinator; the exit code says whether the audit passed.
pub fn run(runtime: &tokio::runtime::Runtime, options: Options) -> Result<ExitCode, String> {
    let began = Instant::now();
    let database = Database::open(&options)?;
    if (options.crash_every.is_some() || options.failover_every.is_some())
        && database.cluster().is_none()
    {
        return Err(
            "--crash-every and --failover-every need the run's own cluster (no --database-url)"
                .into(),
        );
    }
    let lease = Duration::from_millis(options.lease_ms);
    let admin = database.admin_config(COORDINATOR_APP)?;
    runtime.block_on(database.fresh_recorder(COORDINATOR_APP, lease, true))?;
    let seconds = options.duration.unwrap_or(DEFAULT_SECS);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut workers = Workers::start(&options, &database.url, seconds)?;
    let mut totals = Totals::default();
    let start = Instant::now();
    let mut injector = Injector::new(&options, start);
    let targets = Targets {
        runtime,
        admin: &admin,
        database: &database,
    };
    let mut progress = Progress::new(start, options.json);
    // Operations done by each moment, for the timeline.
    let mut operations = vec![(Duration::ZERO, 0)];
    while Instant::now() < deadline {
        std::thread::sleep(TICK);
        workers.arrived().for_each(|arrival| totals.take(arrival));
        let now = Instant::now();
        operations.push((now - start, totals.operations()));
        let remaining = deadline.saturating_duration_since(now).as_secs_f64();
        injector.tick(now, remaining, &mut workers, &targets)?;
        progress.tick(now, &totals, &injector);
    }
    let run_time = start.elapsed();
    // Workers stop at the deadline; a zombie's tasks end about a lease later.
    let grace = Instant::now() + lease * 4 + Duration::from_secs(15);
    let stragglers = workers.wait_until(grace);
    workers
        .drain()
        .into_iter()
        .for_each(|arrival| totals.take(arrival));

    let audit_began = Instant::now();
    let evidence = runtime.block_on(audit::gather(&database.direct, &admin, lease, options.ids))?;
    let audit_time = audit_began.elapsed();
    let mut violations = audit::check(&evidence, &totals.acked, &totals.stale, lease);
    let zombie_stale_finishes = totals.zombie_stale_finishes();
    let mut unmet_faults = injector.unmet(zombie_stale_finishes);
    if stragglers > 0 {
        let error = format!("{stragglers} worker processes did not end in time");
        injector.done.errors.push(error);
    }
    if totals.acked.is_empty() {
        unmet_faults.push("no success acknowledged: the run exercised nothing".into());
    }
    if !unmet_faults.is_empty() {
        violations.push(PgViolation::total(PgRule::FaultNotExercised));
    }
    let report = PostgresReport::new(Facts {
        options: &options,
        began,
        run_time,
        audit_time,
        totals: &totals,
        faults: &injector.done,
        zombie_stale_finishes,
        unmet_faults,
        evidence: &evidence,
        violations: &violations,
    });
    if let Some(path) = &options.timeline {
        let timeline = Timeline {
            run: run_time,
            operations: &operations,
            successes: &totals
                .acked
                .iter()
                .map(|a| a.at.saturating_duration_since(start))
                .collect::<Vec<_>>(),
            marks: &injector
                .done
                .marks
                .iter()
                .map(|(at, fault)| Mark {
                    at: at.saturating_duration_since(start),
                    fault,
                })
                .collect::<Vec<_>>(),
            title: format!(
                "Fault run: {} processes, {} s, {} operations, passed: {}",
                options.processes,
                run_time.as_secs(),
                totals.operations(),
                report.verdict.passed
            ),
        };
        std::fs::write(path, timeline::svg(&timeline)?)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let _ = std::io::stdout().write_all(report.json(options.json).as_bytes());
    let _ = std::io::stderr().write_all(report.failure_text().as_bytes());
    drop(database);
    Ok(if report.verdict.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The progress lines on stderr (none with `--json`).
struct Progress {
    start: Instant,
    next: Option<Instant>,
}

impl Progress {
    fn new(start: Instant, quiet: bool) -> Progress {
        let next = (!quiet).then_some(start + PROGRESS_EVERY);
        Progress { start, next }
    }

    /// Says how far the run got, once every [`PROGRESS_EVERY`].
    fn tick(&mut self, now: Instant, totals: &Totals, injector: &Injector) {
        match self.next {
            Some(next) if now >= next => self.next = Some(now + PROGRESS_EVERY),
            _ => return,
        }
        let f = &injector.done.injected;
        eprintln!(
            "{:>5.1}s  {} operations, {} successes acknowledged, faults: {} kills, {} zombies, {} terminations, {} crashes",
            self.start.elapsed().as_secs_f64(),
            totals.operations(),
            totals.acked.len(),
            f.kills,
            f.zombies,
            f.terminations,
            injector.done.crashes.len()
        );
    }
}
