//! The storm: workers pick random ids and launch (spawned, in place, or in
//! place and then abandoned), query, revoke and wait, against any
//! [`Backend`]. What the tasks did is kept in a [`Ledger`] beside the
//! recorder, so the audit can compare the recorder's answers with the facts.

use crate::options::Options;
use async_tasks_recorder::TaskState;
use async_tasks_recorder::sync::lock;
use async_tasks_recorder_harness::backend::{Backend, Launched, Revoked};
use async_tasks_recorder_harness::protocol::Id;
use async_tasks_recorder_harness::support::{CatchUnwind, task_panic};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

/// How long one wait may take before it counts as hung. Tasks only yield
/// once, so a wait lasting this long means a lost wake-up.
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Backend errors whose ids are kept for the report; the rest are counted.
const ERRORS_KEPT: usize = 1000;

/// Keeps every panic but the deliberate ones (`task_panic`) on stderr.
pub use async_tasks_recorder_harness::support::quiet_task_panics as silence_deliberate_panics;

/// What a launched task will do.
#[derive(Clone, Copy, Debug)]
enum Plan {
    Succeed,
    Fail,
    Panic,
}

/// The operations timed separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimedCall {
    Launch,
    LaunchBlock,
    Query,
    Revoke,
    Wait,
}

impl TimedCall {
    pub const ALL: [TimedCall; 5] = [
        TimedCall::Launch,
        TimedCall::LaunchBlock,
        TimedCall::Query,
        TimedCall::Revoke,
        TimedCall::Wait,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TimedCall::Launch => "launch",
            TimedCall::LaunchBlock => "launch_block",
            TimedCall::Query => "query",
            TimedCall::Revoke => "revoke",
            TimedCall::Wait => "wait",
        }
    }
}

/// Counters of what happened, shared by all workers and tasks.
#[derive(Default)]
pub struct Tally {
    attempts: AtomicU64,
    accepted: AtomicU64,
    refused_working: AtomicU64,
    refused_success: AtomicU64,
    refused_other: AtomicU64,
    abandoned: AtomicU64,
    tasks_ok: AtomicU64,
    tasks_failed: AtomicU64,
    tasks_panicked: AtomicU64,
    cancelled: AtomicU64,
    queries: AtomicU64,
    revokes_done: AtomicU64,
    revokes_failed: AtomicU64,
    revokes_refused: AtomicU64,
    waits: AtomicU64,
    backend_errors: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Tally {
    /// Launch attempts so far, for the progress bar.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Outcomes {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Outcomes {
            launch_attempts: get(&self.attempts),
            accepted: get(&self.accepted),
            refused_working: get(&self.refused_working),
            refused_success: get(&self.refused_success),
            refused_other: get(&self.refused_other),
            abandoned: get(&self.abandoned),
            tasks_ok: get(&self.tasks_ok),
            tasks_failed: get(&self.tasks_failed),
            tasks_panicked: get(&self.tasks_panicked),
            cancelled: get(&self.cancelled),
            queries: get(&self.queries),
            revokes_done: get(&self.revokes_done),
            revokes_failed: get(&self.revokes_failed),
            revokes_refused: get(&self.revokes_refused),
            waits: get(&self.waits),
            backend_errors: get(&self.backend_errors),
        }
    }

    fn refused(&self, state: TaskState) {
        match state {
            TaskState::Working => add(&self.refused_working),
            TaskState::Success => add(&self.refused_success),
            _ => add(&self.refused_other),
        }
    }
}

/// The tally at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub launch_attempts: u64,
    /// Launches the recorder accepted.
    pub accepted: u64,
    pub refused_working: u64,
    pub refused_success: u64,
    /// Refused with `Failed` or `NotFound`: never right for a launch.
    pub refused_other: u64,
    /// `launch_block` futures dropped before the recorder answered and
    /// before the task began: neither accepted nor refused.
    pub abandoned: u64,
    pub tasks_ok: u64,
    pub tasks_failed: u64,
    pub tasks_panicked: u64,
    /// Accepted `launch_block` futures dropped mid-task.
    pub cancelled: u64,
    pub queries: u64,
    pub revokes_done: u64,
    pub revokes_failed: u64,
    pub revokes_refused: u64,
    pub waits: u64,
    pub backend_errors: u64,
}

impl Outcomes {
    /// Every operation the workers issued.
    pub fn operations(&self) -> u64 {
        self.launch_attempts
            + self.queries
            + self.revokes_done
            + self.revokes_failed
            + self.revokes_refused
            + self.waits
    }

    /// Accepted launches that came to an end, one way or another.
    pub fn ended(&self) -> u64 {
        self.tasks_ok + self.tasks_failed + self.tasks_panicked + self.cancelled
    }
}

/// A completed revoke whose epoch did not have exactly one side effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRevoke {
    pub id: Id,
    pub epoch: u32,
    pub effects: u32,
}

/// The facts beside the recorder, shared by all workers and tasks.
pub struct Ledger {
    /// Side effects of the current revoke epoch, per id.
    effects: Vec<AtomicU32>,
    /// Revoke epoch per id.
    epochs: Vec<AtomicU32>,
    pub tally: Tally,
    bad_revokes: Mutex<Vec<BadRevoke>>,
    /// Ids whose `wait` did not resolve within [`WAIT_LIMIT`].
    hung_waits: Mutex<Vec<Id>>,
    /// The first backend errors (with the id, for a call on one id), and
    /// the first error's text.
    errors: Mutex<(Vec<Option<Id>>, Option<String>)>,
}

impl Ledger {
    pub fn new(ids: u64) -> Self {
        Self {
            effects: (0..ids).map(|_| AtomicU32::new(0)).collect(),
            epochs: (0..ids).map(|_| AtomicU32::new(0)).collect(),
            tally: Tally::default(),
            bad_revokes: Mutex::new(Vec::new()),
            hung_waits: Mutex::new(Vec::new()),
            errors: Mutex::new((Vec::new(), None)),
        }
    }

    /// Side effects of the current epoch of every id, read once all is quiet.
    pub fn effects(&self) -> Vec<u32> {
        self.effects
            .iter()
            .map(|e| e.load(Ordering::SeqCst))
            .collect()
    }

    pub fn bad_revokes(&self) -> Vec<BadRevoke> {
        lock(&self.bad_revokes).clone()
    }

    pub fn hung_waits(&self) -> Vec<Id> {
        lock(&self.hung_waits).clone()
    }

    /// The ids of the first backend errors and the first error's text.
    pub fn errors(&self) -> (Vec<Id>, Option<String>) {
        let errors = lock(&self.errors);
        (
            errors.0.iter().flatten().copied().collect(),
            errors.1.clone(),
        )
    }

    /// The number of ids in the ledger: `--ids`, which the options cap at
    /// 10^8, well inside an [`Id`].
    pub fn ids(&self) -> Id {
        Id::try_from(self.effects.len()).unwrap_or(Id::MAX)
    }

    /// Counts a failed backend call, on `id` if it concerned one.
    pub fn backend_error(&self, id: Option<Id>, error: impl Display) {
        add(&self.tally.backend_errors);
        let mut errors = lock(&self.errors);
        if errors.0.len() < ERRORS_KEPT {
            errors.0.push(id);
        }
        errors.1.get_or_insert_with(|| error.to_string());
    }

    pub fn hung_wait(&self, id: Id) {
        lock(&self.hung_waits).push(id);
    }

    fn slot(&self, id: Id) -> usize {
        // Ids are drawn below `--ids`, which is the ledger's length.
        id as usize
    }
}

/// Latency histograms of one worker, in nanoseconds.
pub type Latencies = BTreeMap<TimedCall, Histogram<u64>>;

pub fn new_latencies() -> Latencies {
    TimedCall::ALL
        .iter()
        .map(|op| {
            let histogram = Histogram::new_with_bounds(1, 600_000_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
            (*op, histogram)
        })
        .collect()
}

fn record(latencies: &mut Latencies, op: TimedCall, began: Instant) {
    let nanos = u64::try_from(began.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    if let Some(histogram) = latencies.get_mut(&op) {
        histogram.saturating_record(nanos);
    }
}

/// The task of one launch: it yields once (so `Working` is observable and a
/// cancelled caller drops it there), then does as planned. Success performs
/// the side effect just before returning, with no await in between.
/// `began`, if given, is set on the first poll: a dropped `launch_block`
/// was accepted exactly if its task began.
async fn task(
    ledger: Arc<Ledger>,
    id: Id,
    plan: Plan,
    began: Option<&AtomicBool>,
) -> Result<(), ()> {
    if let Some(began) = began {
        began.store(true, Ordering::Relaxed);
    }
    tokio::task::yield_now().await;
    match plan {
        Plan::Succeed => {
            ledger.effects[ledger.slot(id)].fetch_add(1, Ordering::SeqCst);
            add(&ledger.tally.tasks_ok);
            Ok(())
        }
        Plan::Fail => {
            add(&ledger.tally.tasks_failed);
            Err(())
        }
        Plan::Panic => {
            add(&ledger.tally.tasks_panicked);
            task_panic()
        }
    }
}

/// The revoke of one id: it yields once, then fails as drawn, or closes
/// the epoch. No launch runs while the id is revoking, so the epoch's
/// effects are final: exactly one is expected.
async fn revoke(ledger: Arc<Ledger>, id: Id, fails: bool) -> Result<(), ()> {
    tokio::task::yield_now().await;
    if fails {
        return Err(());
    }
    let slot = ledger.slot(id);
    let effects = ledger.effects[slot].swap(0, Ordering::SeqCst);
    let epoch = ledger.epochs[slot].fetch_add(1, Ordering::SeqCst);
    if effects != 1 {
        lock(&ledger.bad_revokes).push(BadRevoke { id, epoch, effects });
    }
    Ok(())
}

/// Polls `fut` once and drops it: a caller that gives up mid-task.
async fn poll_once_then_drop<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// One worker's view: the backend, the ledger and the options.
struct Worker<B> {
    backend: Arc<B>,
    ledger: Arc<Ledger>,
    options: Arc<Options>,
    rng: fastrand::Rng,
    latencies: Latencies,
}

impl<B: Backend> Worker<B> {
    fn tally(&self) -> &Tally {
        &self.ledger.tally
    }

    fn answered(&self, id: Id, answer: Result<Launched, B::Error>) {
        match answer {
            Ok(Launched::Accepted) => add(&self.tally().accepted),
            Ok(Launched::Refused(state)) => self.tally().refused(state),
            Err(error) => self.ledger.backend_error(Some(id), error),
        }
    }

    async fn launch(&mut self) {
        let id = self.rng.u32(0..self.ledger.ids());
        let roll = self.rng.f64();
        let plan = if roll < self.options.panic_rate {
            Plan::Panic
        } else if roll < self.options.panic_rate + self.options.fail_rate {
            Plan::Fail
        } else {
            Plan::Succeed
        };
        let cancel = self.rng.f64() < self.options.cancel_rate;
        let spawn = !cancel && self.rng.bool();
        add(&self.tally().attempts);
        let ledger = self.ledger.clone();
        let began = Instant::now();
        let op = if spawn {
            let answer = self.backend.launch(id, task(ledger, id, plan, None)).await;
            self.answered(id, answer);
            TimedCall::Launch
        } else if cancel {
            let task_began = AtomicBool::new(false);
            let task = task(ledger, id, plan, Some(&task_began));
            match poll_once_then_drop(self.backend.launch_block(id, task)).await {
                Poll::Pending if task_began.load(Ordering::Relaxed) => {
                    add(&self.tally().accepted);
                    add(&self.tally().cancelled);
                }
                Poll::Pending => add(&self.tally().abandoned),
                Poll::Ready(answer) => self.answered(id, answer),
            }
            TimedCall::LaunchBlock
        } else {
            let task = task(ledger, id, plan, None);
            let launched = CatchUnwind::new(self.backend.launch_block(id, task));
            match launched.await {
                Ok(answer) => self.answered(id, answer),
                // The task's panic came through: the launch was accepted.
                Err(_) => add(&self.tally().accepted),
            }
            TimedCall::LaunchBlock
        };
        record(&mut self.latencies, op, began);
    }

    async fn query(&mut self) {
        let id = self.rng.u32(0..self.ledger.ids());
        let began = Instant::now();
        let answer = self.backend.query(id).await;
        record(&mut self.latencies, TimedCall::Query, began);
        match answer {
            Ok(state) => {
                std::hint::black_box(state);
                add(&self.tally().queries);
            }
            Err(error) => self.ledger.backend_error(Some(id), error),
        }
    }

    async fn revoke(&mut self) {
        let id = self.rng.u32(0..self.ledger.ids());
        let fails = self.rng.f64() < self.options.revoke_fail_rate;
        let revoke = revoke(self.ledger.clone(), id, fails);
        let began = Instant::now();
        let answer = self.backend.revoke_block(id, revoke).await;
        record(&mut self.latencies, TimedCall::Revoke, began);
        let tally = self.tally();
        match answer {
            Ok(Revoked::Done) => add(&tally.revokes_done),
            Ok(Revoked::RevokeFailed) => add(&tally.revokes_failed),
            Ok(Revoked::Refused) => add(&tally.revokes_refused),
            Err(error) => self.ledger.backend_error(Some(id), error),
        }
    }

    async fn wait(&mut self) {
        let id = self.rng.u32(0..self.ledger.ids());
        let began = Instant::now();
        let answer = tokio::time::timeout(WAIT_LIMIT, self.backend.wait(id)).await;
        record(&mut self.latencies, TimedCall::Wait, began);
        match answer {
            Ok(Ok(_)) => add(&self.tally().waits),
            Ok(Err(error)) => self.ledger.backend_error(Some(id), error),
            Err(_) => {
                self.ledger.hung_wait(id);
                add(&self.tally().waits);
            }
        }
    }

    /// Issues `launches` launch attempts, with queries, revokes and waits
    /// drawn in between at their rates, until done or past `deadline`.
    async fn run(mut self, launches: u64, deadline: Option<Instant>) -> Latencies {
        let options = self.options.clone();
        let extra = options.queries + options.revokes + options.waits;
        let mut launched = 0;
        while launched < launches {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let pick = self.rng.f64() * (1.0 + extra);
            if pick < 1.0 {
                self.launch().await;
                launched += 1;
            } else if pick < 1.0 + options.queries {
                self.query().await;
            } else if pick < 1.0 + options.queries + options.revokes {
                self.revoke().await;
            } else {
                self.wait().await;
            }
        }
        self.latencies
    }
}

/// What the workers left behind.
pub struct Finished {
    pub latencies: Latencies,
    pub crashed_workers: usize,
    pub run_time: Duration,
}

/// Runs the storm: `--workers` workers share `--launches` launch attempts,
/// until done or `--duration` has passed. The progress bar follows the
/// launch attempts and the counts per state.
pub async fn run<B: Backend>(
    backend: Arc<B>,
    ledger: Arc<Ledger>,
    options: Arc<Options>,
    progress: ProgressBar,
) -> Finished {
    let began = Instant::now();
    let deadline = options
        .duration
        .map(|secs| began + Duration::from_secs_f64(secs));
    let ticker = {
        let (backend, ledger, progress) = (backend.clone(), ledger.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                progress.set_position(ledger.tally.attempts());
                if let Ok(counts) = backend.state_counts().await {
                    progress.set_message(format!(
                        "working {} success {} failed {}",
                        counts.working, counts.success, counts.failed
                    ));
                }
            }
        })
    };
    let workers: Vec<_> = (0..options.workers)
        .map(|index| {
            let share = options.launches / options.workers
                + u64::from(index < options.launches % options.workers);
            let worker = Worker {
                backend: backend.clone(),
                ledger: ledger.clone(),
                options: options.clone(),
                rng: fastrand::Rng::with_seed(
                    options.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                ),
                latencies: new_latencies(),
            };
            tokio::spawn(worker.run(share, deadline))
        })
        .collect();
    let mut latencies = new_latencies();
    let mut crashed_workers = 0;
    for handle in workers {
        match handle.await {
            Ok(worker_latencies) => {
                for (op, histogram) in worker_latencies {
                    if let Some(total) = latencies.get_mut(&op) {
                        let _ = total.add(&histogram);
                    }
                }
            }
            Err(_) => crashed_workers += 1,
        }
    }
    let run_time = began.elapsed();
    ticker.abort();
    progress.finish_and_clear();
    Finished {
        latencies,
        crashed_workers,
        run_time,
    }
}
