//! The run on PostgreSQL (`--backend postgres`): `--processes` worker
//! processes (this binary, re-executed with its options in
//! [`workers::WORKER_OPTIONS`]) share one database while the coordinator
//! injects faults, then the coordinator audits what the database holds.
//! With one process and no fault, the in-memory run's storm and audit run
//! on one PostgreSQL recorder in this process instead ([`fresh_recorder`]).
//!
//! Every successful task writes its side effect, a ledger row
//! `(id, epoch, fence)`, in the same transaction as its fenced finish
//! ([`Attempt::finish_in`](async_tasks_recorder_pg::Attempt::finish_in))
//! and commits only if the finish was applied. The ledger's key is
//! `(id, fence)`, not `(id, epoch)`: a unique `(id, epoch)` would turn a
//! zombie's double side effect into a constraint error and hide it from
//! the audit; here only the fence protects it.
//!
//! Modules: [`coordinator`] (the run's wiring), [`workers`] (starting
//! worker processes and reading their messages), [`worker`] (a worker
//! process's loops) and its [`counters`], [`message`] (the contract
//! between the two), [`totals`] (the messages merged), [`faults`] (the
//! fault injector), [`sabotage`] (the known-bad protocols), [`database`]
//! (connections and schema), [`audit`] and [`report`]; [`backend`] is the
//! recorder as the harness's `Backend`, for the in-process storm.

mod audit;
mod backend;
mod coordinator;
mod counters;
mod database;
mod faults;
mod message;
mod report;
mod sabotage;
mod timeline;
mod totals;
mod worker;
mod workers;

use crate::options::Options;
use async_tasks_recorder_pg::PgRecorder;
pub use backend::Postgres;
use database::Database;
use std::process::ExitCode;
use std::time::Duration;

/// Length of a postgres run without `--duration`.
const DEFAULT_SECS: f64 = 20.0;
/// Ids named per violation.
const IDS_SHOWN: usize = 20;
/// The runtime threads of the coordinator and of each worker process.
const THREADS: usize = 2;
/// The `application_name` of the in-process run's connections.
const IN_PROCESS_APP: &str = "stress-in-process";

/// Whether the run is the in-process storm: one process and no fault.
pub fn in_process(options: &Options) -> bool {
    options.processes == 1 && !faults_asked(options)
}

/// Whether any fault flag was given.
fn faults_asked(options: &Options) -> bool {
    options.kill_every.is_some()
        || options.zombie_every.is_some()
        || options.terminate_every.is_some()
        || options.crash_every.is_some()
        || options.failover_every.is_some()
        || options.sabotage.is_some()
}

/// The coordinator of a multi-process run.
pub fn main(options: Options) -> ExitCode {
    entered(|runtime| coordinator::run(runtime, options))
}

/// Runs this process as a worker process if the coordinator started it
/// as one; `None` if it did not.
pub fn run_as_worker() -> Option<ExitCode> {
    let options = workers::worker_options()?;
    Some(entered(|runtime| runtime.block_on(worker::run(options?))))
}

/// `run` on a fresh runtime; an error is printed and fails the process.
fn entered(run: impl FnOnce(&tokio::runtime::Runtime) -> Result<ExitCode, String>) -> ExitCode {
    let runtime = match crate::runtime::start(THREADS) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match run(&runtime) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("postgres run: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A recorder on a fresh table of the given database or of a new
/// throwaway cluster (returned, so that it lives as long as the run).
pub async fn fresh_recorder(options: &Options) -> Result<(Database, PgRecorder<i64>), String> {
    let database = Database::open(options)?;
    let lease = Duration::from_millis(options.lease_ms);
    let recorder = database
        .fresh_recorder(IN_PROCESS_APP, lease, false)
        .await?;
    Ok((database, recorder))
}
