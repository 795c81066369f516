//! A launch-fail-retry storm on one recorder, then an audit of its promises.
//!
//! ```text
//! cargo run --release -p stress -- [--ids N] [--launches N] [--workers N]
//!     [--fail-rate P] [--panic-rate P] [--cancel-rate P] [--duration SECS]
//!     [--seed S] [--json]
//! ```
//!
//! Workers pick random ids and launch (spawned or in place), query, revoke
//! and wait. Tasks fail, panic or are cancelled at the given rates; a task
//! that returns `Ok` first performs its side effect, counted per id and per
//! revoke epoch. At the end, every id is waited for and the audit checks:
//! - at most one side effect per id per epoch, and exactly one for each id
//!   that reads `Success` (none for the others);
//! - no id is left `Working`;
//! - listings and counts agree with per-id queries;
//! - every accepted launch ended exactly once (ok + failed + panicked +
//!   cancelled), and no launch was refused with `Failed` or `NotFound`.
//!
//! Exits with 1 naming the offending ids on any violation, and with 2 on a
//! bad option. The op sequence of each worker is reproducible from
//! `--seed`; the interleaving is not.
//!
//! With `--backend postgres`, `--processes` worker processes share one
//! PostgreSQL database (a throwaway cluster unless `--database-url` is
//! given), faults are injected on request (`--kill-every`, `--zombie-every`,
//! `--terminate-every`, `--crash-every`) and the audit is read from the
//! database: see [`postgres`].
//!
//! The run drives the harness's `Backend` trait (the recorder operations as
//! async calls that may fail), which every in-memory subject implements.
//! Modules: [`options`] (the command line and its ranges), [`workload`] (the
//! storm and its ledger), [`audit`] (the invariant checks), [`violation`]
//! (what every audit reports), [`report`], [`postgres`] (the multi-process
//! run with its faults).

mod audit;
mod options;
mod postgres;
mod report;
mod violation;
mod workload;

use crate::audit::Evidence;
use crate::options::{BackendKind, Options};
use crate::report::{Facts, Report, Setup};
use crate::violation::Violation;
use crate::workload::{Finished, Ledger};
use async_tasks_recorder::AsyncTasksRecorder;
use async_tasks_recorder_harness::backend::Backend;
use indicatif::ProgressBar;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    if let Some(code) = postgres::run_as_worker() {
        return code;
    }
    let options = Options::from_args();
    if options.backend == BackendKind::Postgres && !postgres::in_process(&options) {
        return postgres::main(options);
    }
    in_process(options)
}

/// A multi-threaded runtime with `threads` threads, timers and I/O; on
/// failure, says why and gives the exit code.
fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("cannot start the runtime with {threads} threads: {error}");
            ExitCode::FAILURE
        })
}

/// The storm and its audit in this process: on the in-memory recorder, or
/// on one PostgreSQL recorder (`--backend postgres` with one process and
/// no fault).
fn in_process(options: Options) -> ExitCode {
    workload::silence_deliberate_panics();
    let threads = options.threads();
    let runtime = match runtime(threads) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let (outcome, database) = match options.backend {
        BackendKind::Memory => {
            let outcome = storm_on(&runtime, AsyncTasksRecorder::new(), &options);
            (outcome, None)
        }
        BackendKind::Postgres => {
            let (database, recorder) = match runtime.block_on(postgres::fresh_recorder(&options)) {
                Ok(found) => found,
                Err(error) => {
                    eprintln!("postgres: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let outcome = storm_on(&runtime, postgres::Postgres(recorder), &options);
            (outcome, Some(database))
        }
    };
    // The recorder's connections close before its database stops.
    drop(runtime);
    drop(database);
    finish(options, threads, outcome)
}

/// The storm and its audit on `backend`, with the progress bar.
fn storm_on<B: Backend>(
    runtime: &tokio::runtime::Runtime,
    backend: B,
    options: &Options,
) -> Outcome {
    let progress = report::progress_bar(options);
    runtime.block_on(storm(Arc::new(backend), options.clone(), progress))
}

/// Prints the report of `outcome`; the exit code says whether it passed.
fn finish(options: Options, threads: usize, outcome: Outcome) -> ExitCode {
    let json = options.json;
    let report = Report::new(Facts {
        setup: Setup { options, threads },
        run_time: outcome.finished.run_time,
        audit_time: outcome.audit_time,
        latencies: &outcome.finished.latencies,
        evidence: &outcome.evidence,
        first_backend_error: outcome.first_backend_error,
        violations: &outcome.violations,
    });

    // Written without `println!`, which panics when stdout is a closed pipe.
    let (out, err) = if json {
        (report.json(), String::new())
    } else {
        report.human()
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stderr().write_all(err.as_bytes());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A finished storm and its audit.
struct Outcome {
    finished: Finished,
    audit_time: Duration,
    evidence: Evidence,
    violations: Vec<Violation>,
    first_backend_error: Option<String>,
}

/// Runs the storm on `backend`, then audits it.
async fn storm<B: Backend>(backend: Arc<B>, options: Options, progress: ProgressBar) -> Outcome {
    let ledger = Arc::new(Ledger::new(options.ids));
    let finished =
        workload::run(backend.clone(), ledger.clone(), Arc::new(options), progress).await;
    let audit_began = Instant::now();
    let evidence = audit::gather(&*backend, &ledger, finished.crashed_workers).await;
    let violations = audit::check(&evidence);
    let audit_time = audit_began.elapsed();
    Outcome {
        finished,
        audit_time,
        evidence,
        violations,
        first_backend_error: ledger.errors().1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Rule;
    use async_tasks_recorder::{StateCounts, TaskState};
    use async_tasks_recorder_harness::backend::{Launched, Revoked};
    use async_tasks_recorder_harness::protocol::Id;
    use clap::Parser;
    use std::convert::Infallible;
    use std::future::Future;

    /// A bound on every storm here: a broken recorder fails, never hangs.
    const LIMIT: Duration = Duration::from_secs(60);

    fn small(extra: &[&str]) -> Options {
        let args = [
            "stress",
            "--ids",
            "200",
            "--launches",
            "5000",
            "--seed",
            "7",
        ];
        Options::try_parse_from(args.iter().chain(extra)).expect("valid options")
    }

    async fn bounded<B: Backend>(backend: B, options: Options) -> Outcome {
        tokio::time::timeout(
            LIMIT,
            storm(Arc::new(backend), options, ProgressBar::hidden()),
        )
        .await
        .expect("the storm and its audit end within the limit")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_storm_on_the_recorder_passes_its_audit() {
        workload::silence_deliberate_panics();
        let outcome = bounded(AsyncTasksRecorder::new(), small(&[])).await;
        assert_eq!(outcome.violations, []);
        let outcomes = outcome.evidence.outcomes;
        assert_eq!(outcomes.launch_attempts, 5000);
        // The storm did what it is for: successes, failures, panics, revokes.
        assert!(outcomes.tasks_ok > 0 && outcomes.tasks_failed > 0);
        assert!(outcomes.tasks_panicked > 0 && outcomes.revokes_done > 0);
    }

    /// A recorder that mistakes a failed task for a success: it records
    /// `Success` for every task that returns, whatever it returned.
    struct FailureAsSuccess(AsyncTasksRecorder<Id>);

    impl FailureAsSuccess {
        async fn as_success<F>(task: F) -> Result<(), ()>
        where
            F: Future<Output = Result<(), ()>>,
        {
            let _ = task.await;
            Ok(())
        }
    }

    impl Backend for FailureAsSuccess {
        type Error = Infallible;

        fn launch<F>(
            &self,
            id: Id,
            task: F,
        ) -> impl Future<Output = Result<Launched, Infallible>> + Send
        where
            F: Future<Output = Result<(), ()>> + Send + 'static,
        {
            Backend::launch(&self.0, id, Self::as_success(task))
        }

        fn launch_block<F>(
            &self,
            id: Id,
            task: F,
        ) -> impl Future<Output = Result<Launched, Infallible>> + Send
        where
            F: Future<Output = Result<(), ()>> + Send,
        {
            Backend::launch_block(&self.0, id, Self::as_success(task))
        }

        fn query(&self, id: Id) -> impl Future<Output = Result<TaskState, Infallible>> + Send {
            self.0.query(id)
        }

        fn revoke_block<F>(
            &self,
            id: Id,
            revoke: F,
        ) -> impl Future<Output = Result<Revoked, Infallible>> + Send
        where
            F: Future<Output = Result<(), ()>> + Send,
        {
            self.0.revoke_block(id, revoke)
        }

        fn wait(&self, id: Id) -> impl Future<Output = Result<TaskState, Infallible>> + Send {
            Backend::wait(&self.0, id)
        }

        fn state_counts(&self) -> impl Future<Output = Result<StateCounts, Infallible>> + Send {
            Backend::state_counts(&self.0)
        }

        fn list(
            &self,
            state: TaskState,
        ) -> impl Future<Output = Result<Vec<Id>, Infallible>> + Send {
            self.0.list(state)
        }

        fn recorded(&self) -> impl Future<Output = Result<usize, Infallible>> + Send {
            self.0.recorded()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recorder_that_takes_failures_for_successes_is_caught_by_id() {
        workload::silence_deliberate_panics();
        let outcome = bounded(FailureAsSuccess(AsyncTasksRecorder::new()), small(&[])).await;
        let lost = outcome
            .violations
            .iter()
            .find(|v| v.rule == Rule::SuccessWithoutEffect)
            .expect("ids reading Success without a side effect are reported");
        assert!(!lost.ids.is_empty());
        for id in &lost.ids {
            let slot = *id as usize;
            assert_eq!(outcome.evidence.states[slot], Some(TaskState::Success));
            assert_eq!(outcome.evidence.effects[slot], 0, "id {id}");
        }
        assert!(
            outcome
                .violations
                .iter()
                .any(|v| v.rule == Rule::RevokedWithoutEffect),
            "revokes closing an epoch with no effect are reported too: {:?}",
            outcome.violations
        );
    }
}
