//! A worker process: `--workers` loops of random operations on one shared
//! recorder until the deadline, each success's side effect written in the
//! transaction of its fenced finish. What it does goes to the coordinator
//! as [`Message`]s on stdout; the coordinator's [`Order`]s come on stdin.

use super::DEFAULT_SECS;
use super::counters::Counters;
use super::database::{WORKER_APP, connect, ledger_config, recorder};
use super::message::{Acked, Message, Order, PgOp, StaleFinish, TaskResult};
use super::sabotage::client_clock_skew;
use crate::options::Options;
use async_tasks_recorder::sync::lock;
use async_tasks_recorder_pg::{Attempt, Finish, Outcome, PgRecorder, Refused, TaskState};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// How often a worker sends its counters.
const STATS_EVERY: Duration = Duration::from_secs(1);
/// After the loops end, time for the background finishes of dropped
/// attempts to go out before the last `stats`.
const SETTLE: Duration = Duration::from_millis(200);
/// Pause after an operation that failed (a lost connection, say).
const BACKOFF: Duration = Duration::from_millis(50);

/// What the loops of one worker process share.
struct WorkerProcess {
    slot: u64,
    recorder: PgRecorder<i64>,
    ledger_config: tokio_postgres::Config,
    ids: u64,
    fail_rate: f64,
    deadline: Instant,
    ops_per_loop: u64,
    counters: Mutex<Counters>,
    /// A freeze ordered and not yet begun: the next loop granted a claim
    /// takes it.
    freeze: Mutex<Option<Duration>>,
}

/// Runs worker process `options.worker` with the options the coordinator
/// handed it (its `duration` is the time left in the run).
pub async fn run(options: Options) -> Result<ExitCode, String> {
    let slot = options.worker.ok_or("a worker needs its slot")?;
    let url = options
        .database_url
        .clone()
        .ok_or("a worker needs --database-url")?;
    let lease = Duration::from_millis(options.lease_ms);
    let recorder = recorder(&url, WORKER_APP, lease, options.sabotage, options.pooler)?;
    if let Some(skew) = client_clock_skew(options.sabotage, slot, lease) {
        recorder.skew_client_clock(skew);
    }
    let loops = options.workers.max(1);
    let total_loops = loops * options.processes;
    let worker = Arc::new(WorkerProcess {
        slot,
        recorder,
        ledger_config: ledger_config(&url, lease, options.pooler)?,
        ids: options.ids,
        fail_rate: options.fail_rate,
        deadline: Instant::now()
            + Duration::from_secs_f64(options.duration.unwrap_or(DEFAULT_SECS)),
        ops_per_loop: (options.launches / total_loops).max(1),
        counters: Mutex::new(Counters::default()),
        freeze: Mutex::new(None),
    });
    take_orders(worker.clone());
    let reporter = {
        let worker = worker.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(STATS_EVERY).await;
                worker.send_stats();
            }
        })
    };
    let mut loops_running = Vec::new();
    for n in 0..loops {
        let seed = options.seed ^ (slot << 32) ^ n ^ u64::from(std::process::id());
        loops_running.push(tokio::spawn(work_loop(worker.clone(), seed)));
    }
    for running in loops_running {
        let _ = running.await;
    }
    reporter.abort();
    tokio::time::sleep(SETTLE).await;
    worker.send_stats();
    Ok(ExitCode::SUCCESS)
}

/// Reads the coordinator's orders from stdin, on a thread of its own,
/// until the coordinator closes it.
fn take_orders(worker: Arc<WorkerProcess>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if let Some(Order::Freeze { ms }) = Order::parse(&line) {
                *lock(&worker.freeze) = Some(Duration::from_millis(ms));
            }
        }
    });
}

/// Stops this whole process (every loop, every renewal task) with SIGSTOP
/// for `length`, then says it woke. A stopped process cannot wake itself:
/// a shell started for it sends the SIGCONT.
async fn freeze(length: Duration) -> Result<(), String> {
    let pid = std::process::id().to_string();
    let seconds = format!("{:.3}", length.as_secs_f64());
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", r#"kill -STOP "$0"; sleep "$1"; kill -CONT "$0""#])
            .args([pid, seconds])
            .status()
    })
    .await
    .map_err(|e| format!("freeze: {e}"))?
    .map_err(|e| format!("freeze: {e}"))?;
    Message::Woke.send();
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "freeze: the shell that froze this process said {status}"
        ))
    }
}

/// One loop of operations, bounded by the deadline and a count.
async fn work_loop(w: Arc<WorkerProcess>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ledger: Option<Client> = None;
    let mut working: Vec<i64> = Vec::new();
    for _ in 0..w.ops_per_loop {
        if Instant::now() >= w.deadline {
            break;
        }
        let random_id = rng.u64(0..w.ids) as i64;
        let roll = rng.f64();
        let began = Instant::now();
        let ok = if roll < 0.03 {
            let swept = w.recorder.sweep(100).await;
            w.record(PgOp::Sweep, began, swept.map(|_| ()))
        } else if roll < 0.10 {
            let listed = w.recorder.list(TaskState::Working).await;
            let result = listed.map(|ids| working = ids);
            w.record(PgOp::List, began, result)
        } else if roll < 0.20 {
            let read = w.recorder.query(&random_id).await;
            w.record(PgOp::Query, began, read.map(|_| ()))
        } else if roll < 0.26 {
            w.revoke(&mut rng, random_id).await
        } else {
            // Prefer ids listed as working: lapsed ones are taken over.
            let id = match working.pop() {
                Some(id) if rng.f64() < 0.5 => id,
                _ => random_id,
            };
            w.launch(&mut rng, &mut ledger, id).await
        };
        if !ok {
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

impl WorkerProcess {
    fn send_stats(&self) {
        let stats = lock(&self.counters).take();
        Message::Stats(stats).send();
    }

    /// Times one call of `op` and keeps its error; returns whether it
    /// succeeded.
    fn record<E: std::fmt::Display>(
        &self,
        op: PgOp,
        began: Instant,
        result: Result<(), E>,
    ) -> bool {
        let mut counters = lock(&self.counters);
        counters.record(op, began, result.is_ok());
        if let Err(e) = &result {
            counters.error(format!("{}: {e}", op.name()));
        }
        result.is_ok()
    }

    /// A call that answered (even by a refusal): no error to keep.
    fn answered(&self, op: PgOp, began: Instant) -> bool {
        self.record::<String>(op, began, Ok(()))
    }

    async fn revoke(&self, rng: &mut fastrand::Rng, id: i64) -> bool {
        let fail = rng.f64() < 0.1;
        let began = Instant::now();
        let result = self
            .recorder
            .revoke(id, |_| async move { if fail { Err(()) } else { Ok(()) } })
            .await;
        match result {
            Ok((_, Ok(_))) => {
                lock(&self.counters).counts.revokes += 1;
                self.answered(PgOp::Revoke, began)
            }
            Ok((_, Err(e))) => self.record(PgOp::Revoke, began, Err(e)),
            Err(Refused::Error(e)) => self.record(PgOp::Revoke, began, Err(e)),
            Err(_) => self.answered(PgOp::Revoke, began),
        }
    }

    async fn launch(&self, rng: &mut fastrand::Rng, ledger: &mut Option<Client>, id: i64) -> bool {
        let began = Instant::now();
        let attempt = match self.recorder.claim(id).await {
            Err(e) => return self.record(PgOp::Claim, began, Err(e)),
            Ok(Err(_)) => {
                lock(&self.counters).counts.refused += 1;
                return self.answered(PgOp::Claim, began);
            }
            Ok(Ok(attempt)) => {
                self.answered(PgOp::Claim, began);
                attempt
            }
        };
        let ordered = lock(&self.freeze).take();
        if let Some(length) = ordered {
            // A zombie: frozen holding this fresh attempt past its lease.
            if let Err(e) = freeze(length).await {
                lock(&self.counters).error(e);
            }
            // A termination round most likely ended its ledger connection
            // meanwhile; the zombie's finish must reach the database.
            *ledger = None;
        }
        // The task's work.
        tokio::time::sleep(Duration::from_millis(rng.u64(5..=50))).await;
        let task = if rng.f64() < self.fail_rate {
            TaskResult::Failure
        } else {
            TaskResult::Success
        };
        let (epoch, fence) = (attempt.lease().epoch(), attempt.lease().fence());
        let finishing = Instant::now();
        let finished = match task {
            TaskResult::Failure => attempt
                .finish(Outcome::Err)
                .await
                .map_err(|e| e.to_string()),
            TaskResult::Success => self.fenced_success(ledger, attempt, id).await,
        };
        let elapsed = began.elapsed();
        let mut counters = lock(&self.counters);
        let said = match finished {
            Ok(Finish::Applied) => match task {
                TaskResult::Failure => {
                    counters.counts.failures += 1;
                    None
                }
                TaskResult::Success => {
                    counters.counts.successes += 1;
                    Some(Message::Acked(Acked {
                        id,
                        epoch: epoch as i64,
                        fence: fence as i64,
                    }))
                }
            },
            Ok(Finish::Stale) => {
                counters.counts.stale += 1;
                if task == TaskResult::Success {
                    counters.counts.rejected_writes += 1;
                }
                Some(Message::Stale(StaleFinish {
                    id,
                    fence: fence as i64,
                    ms_since_claim: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                    task,
                }))
            }
            Err(e) => {
                drop(counters);
                return self.record(PgOp::Finish, finishing, Err(e));
            }
        };
        counters.record(PgOp::Finish, finishing, true);
        drop(counters);
        if let Some(message) = said {
            message.send();
        }
        true
    }

    /// The side effect and the fenced finish in one transaction, committed
    /// only if the finish was applied.
    async fn fenced_success(
        &self,
        ledger: &mut Option<Client>,
        attempt: Attempt<i64>,
        id: i64,
    ) -> Result<Finish, String> {
        if ledger.as_ref().is_none_or(|c| c.is_closed()) {
            // A reconnect replaces a connection that broke (not the first one).
            let replacing = ledger.is_some();
            let fresh = connect(&self.ledger_config).await?;
            *ledger = Some(fresh);
            if replacing {
                lock(&self.counters).counts.reconnects += 1;
            }
        }
        let client = ledger.as_mut().ok_or("no ledger connection")?;
        let (epoch, fence) = (
            attempt.lease().epoch() as i64,
            attempt.lease().fence() as i64,
        );
        let slot = self.slot as i64;
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        // Unnamed, so that it runs behind a pooler in transaction mode too.
        let int8 = tokio_postgres::types::Type::INT8;
        tx.execute_typed(
            "INSERT INTO stress_ledger (id, epoch, fence, process) VALUES ($1, $2, $3, $4)",
            &[
                (&id, int8.clone()),
                (&epoch, int8.clone()),
                (&fence, int8.clone()),
                (&slot, int8),
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
        let finish = attempt
            .finish_in(&tx, Outcome::Ok)
            .await
            .map_err(|e| e.to_string())?;
        match finish {
            Finish::Applied => tx.commit().await.map_err(|e| e.to_string())?,
            Finish::Stale => tx.rollback().await.map_err(|e| e.to_string())?,
        }
        Ok(finish)
    }
}
