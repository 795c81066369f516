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
//!   cancelled).
//!
//! Exits with 1 naming the offending ids on any violation. The op sequence
//! of each worker is reproducible from `--seed`; the interleaving is not.

use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, TaskState};
use clap::Parser;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Options of the storm.
#[derive(Parser, Debug, Clone)]
#[command(about = "A launch-fail-retry storm on AsyncTasksRecorder, then an invariant audit.")]
struct Options {
    /// Distinct task ids.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    ids: u64,
    /// Launch attempts in total (queries, revokes and waits come on top).
    #[arg(long, default_value_t = 1_000_000)]
    launches: u64,
    /// Concurrent worker tasks.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=4096))]
    workers: u64,
    /// Runtime threads [default: available parallelism].
    #[arg(long)]
    threads: Option<usize>,
    /// Share of tasks returning `Err`.
    #[arg(long, default_value_t = 0.30, value_parser = rate)]
    fail_rate: f64,
    /// Share of tasks that panic.
    #[arg(long, default_value_t = 0.02, value_parser = rate)]
    panic_rate: f64,
    /// Share of launches whose caller drops the `launch_block` future mid-task.
    #[arg(long, default_value_t = 0.02, value_parser = rate)]
    cancel_rate: f64,
    /// Queries per launch attempt.
    #[arg(long, default_value_t = 1.0, value_parser = ratio)]
    queries: f64,
    /// Revokes per launch attempt (they reopen succeeded ids to launches).
    #[arg(long, default_value_t = 0.25, value_parser = ratio)]
    revokes: f64,
    /// Share of revoke futures returning `Err` (the id stays `Success`).
    #[arg(long, default_value_t = 0.10, value_parser = rate)]
    revoke_fail_rate: f64,
    /// Waits per launch attempt.
    #[arg(long, default_value_t = 0.02, value_parser = ratio)]
    waits: f64,
    /// Stop launching after this many seconds, even if launches remain.
    #[arg(long)]
    duration: Option<f64>,
    /// Seed of every worker's operation sequence.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the result as JSON on stdout, without a progress bar.
    #[arg(long)]
    json: bool,
    /// Make failing tasks perform the side effect too, as a recorder that
    /// mistook a failure for a success would: the audit must report it.
    #[arg(long, hide = true)]
    sabotage: bool,
}

fn rate(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not within 0..=1"))
    }
}

fn ratio(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{value} is not a finite, non-negative number"))
    }
}

/// The payload of the panics this run causes on purpose.
struct DeliberatePanic;

/// What a launched task will do.
#[derive(Clone, Copy, Debug)]
enum Plan {
    Succeed,
    Fail,
    Panic,
}

/// The operations timed separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Launch,
    LaunchBlock,
    Query,
    Revoke,
    Wait,
}

impl Op {
    const ALL: [Op; 5] = [Op::Launch, Op::LaunchBlock, Op::Query, Op::Revoke, Op::Wait];
    fn name(self) -> &'static str {
        match self {
            Op::Launch => "launch",
            Op::LaunchBlock => "launch_block",
            Op::Query => "query",
            Op::Revoke => "revoke",
            Op::Wait => "wait",
        }
    }
}

/// Counters of what happened, shared by all workers and tasks.
#[derive(Default)]
struct Tally {
    attempts: AtomicU64,
    accepted: AtomicU64,
    refused_working: AtomicU64,
    refused_success: AtomicU64,
    refused_other: AtomicU64,
    tasks_ok: AtomicU64,
    tasks_failed: AtomicU64,
    tasks_panicked: AtomicU64,
    cancelled: AtomicU64,
    queries: AtomicU64,
    revokes_done: AtomicU64,
    revokes_failed: AtomicU64,
    revokes_refused: AtomicU64,
    waits: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    fn json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "launch_attempts": get(&self.attempts),
            "accepted": get(&self.accepted),
            "refused_working": get(&self.refused_working),
            "refused_success": get(&self.refused_success),
            "refused_other": get(&self.refused_other),
            "tasks_ok": get(&self.tasks_ok),
            "tasks_failed": get(&self.tasks_failed),
            "tasks_panicked": get(&self.tasks_panicked),
            "cancelled": get(&self.cancelled),
            "queries": get(&self.queries),
            "revokes_done": get(&self.revokes_done),
            "revokes_failed": get(&self.revokes_failed),
            "revokes_refused": get(&self.revokes_refused),
            "waits": get(&self.waits),
        })
    }
}

/// Everything the workers share.
struct World {
    recorder: AsyncTasksRecorder<u64>,
    /// Side effects of the current revoke epoch, per id.
    effects: Vec<AtomicU32>,
    /// Revoke epoch per id.
    epochs: Vec<AtomicU32>,
    tally: Tally,
    /// (id, epoch, side effects) seen by a revoke whose epoch had not
    /// exactly one success.
    revoke_violations: Mutex<Vec<(u64, u32, u32)>>,
    /// Ids whose `wait` did not resolve in time.
    hung_waits: Mutex<Vec<u64>>,
    /// See `Options::sabotage`.
    sabotage: bool,
}

/// Latency histograms of one worker, in nanoseconds.
type Latencies = BTreeMap<Op, Histogram<u64>>;

fn new_latencies() -> Latencies {
    Op::ALL
        .iter()
        .map(|op| {
            let histogram = Histogram::new_with_bounds(1, 600_000_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
            (*op, histogram)
        })
        .collect()
}

/// The task of one launch: it yields once (so `Working` is observable and a
/// cancelled caller drops it there), then does as planned. Success performs
/// the side effect just before returning, with no await in between.
async fn task(world: Arc<World>, id: u64, plan: Plan) -> Result<(), ()> {
    tokio::task::yield_now().await;
    match plan {
        Plan::Succeed => {
            world.effects[id as usize].fetch_add(1, Ordering::SeqCst);
            Tally::add(&world.tally.tasks_ok);
            Ok(())
        }
        Plan::Fail => {
            if world.sabotage {
                world.effects[id as usize].fetch_add(1, Ordering::SeqCst);
            }
            Tally::add(&world.tally.tasks_failed);
            Err(())
        }
        Plan::Panic => {
            Tally::add(&world.tally.tasks_panicked);
            std::panic::panic_any(DeliberatePanic)
        }
    }
}

/// Turns a panic inside `launch_block` into a value, so the worker goes on.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// Polls `fut` once and drops it: a caller that gives up mid-task.
async fn poll_once_then_drop<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

fn record_refusal(tally: &Tally, state: TaskState) {
    match state {
        TaskState::Working => Tally::add(&tally.refused_working),
        TaskState::Success => Tally::add(&tally.refused_success),
        _ => Tally::add(&tally.refused_other),
    }
}

async fn launch_op(
    world: &Arc<World>,
    options: &Options,
    rng: &mut fastrand::Rng,
    latencies: &mut Latencies,
) {
    let id = rng.u64(0..options.ids);
    let roll = rng.f64();
    let plan = if roll < options.panic_rate {
        Plan::Panic
    } else if roll < options.panic_rate + options.fail_rate {
        Plan::Fail
    } else {
        Plan::Succeed
    };
    let cancel = rng.f64() < options.cancel_rate;
    let spawn = !cancel && rng.bool();
    let tally = &world.tally;
    Tally::add(&tally.attempts);
    let began = Instant::now();
    let op = if spawn {
        match world
            .recorder
            .launch(id, task(world.clone(), id, plan))
            .await
        {
            Ok(()) => Tally::add(&tally.accepted),
            Err((state, _)) => record_refusal(tally, state),
        }
        Op::Launch
    } else if cancel {
        match poll_once_then_drop(
            world
                .recorder
                .launch_block(id, task(world.clone(), id, plan)),
        )
        .await
        {
            Poll::Pending => {
                Tally::add(&tally.accepted);
                Tally::add(&tally.cancelled);
            }
            Poll::Ready(Ok(_)) => Tally::add(&tally.accepted),
            Poll::Ready(Err((state, _))) => record_refusal(tally, state),
        }
        Op::LaunchBlock
    } else {
        let launched = CatchUnwind(Box::pin(
            world
                .recorder
                .launch_block(id, task(world.clone(), id, plan)),
        ));
        match launched.await {
            Ok(Ok(_)) | Err(_) => Tally::add(&tally.accepted),
            Ok(Err((state, _))) => record_refusal(tally, state),
        }
        Op::LaunchBlock
    };
    record(latencies, op, began);
}

async fn revoke_op(
    world: &Arc<World>,
    options: &Options,
    rng: &mut fastrand::Rng,
    latencies: &mut Latencies,
) {
    let id = rng.u64(0..options.ids);
    let fails = rng.f64() < options.revoke_fail_rate;
    let inner = world.clone();
    let revoke = async move {
        tokio::task::yield_now().await;
        if fails {
            return Err(());
        }
        // No launch can run while the id is revoking: the epoch's effects are final.
        let slot = id as usize;
        let effects = inner.effects[slot].swap(0, Ordering::SeqCst);
        let epoch = inner.epochs[slot].fetch_add(1, Ordering::SeqCst);
        if effects != 1 {
            lock(&inner.revoke_violations).push((id, epoch, effects));
        }
        Ok(())
    };
    let began = Instant::now();
    match world.recorder.revoke_task_block(id, revoke).await {
        Ok(()) => Tally::add(&world.tally.revokes_done),
        Err(RevokeFailReason::RevokeTaskError(())) => Tally::add(&world.tally.revokes_failed),
        Err(_) => Tally::add(&world.tally.revokes_refused),
    }
    record(latencies, Op::Revoke, began);
}

async fn worker(
    world: Arc<World>,
    options: Arc<Options>,
    index: u64,
    launches: u64,
    deadline: Option<Instant>,
) -> Latencies {
    let mut rng =
        fastrand::Rng::with_seed(options.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut latencies = new_latencies();
    let extra = options.queries + options.revokes + options.waits;
    let mut launched = 0;
    while launched < launches {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let pick = rng.f64() * (1.0 + extra);
        if pick < 1.0 {
            launch_op(&world, &options, &mut rng, &mut latencies).await;
            launched += 1;
        } else if pick < 1.0 + options.queries {
            let id = rng.u64(0..options.ids);
            let began = Instant::now();
            std::hint::black_box(world.recorder.query_task_state(&id).await);
            record(&mut latencies, Op::Query, began);
            Tally::add(&world.tally.queries);
        } else if pick < 1.0 + options.queries + options.revokes {
            revoke_op(&world, &options, &mut rng, &mut latencies).await;
        } else {
            let id = rng.u64(0..options.ids);
            let began = Instant::now();
            if tokio::time::timeout(Duration::from_secs(10), world.recorder.wait(&id))
                .await
                .is_err()
            {
                lock(&world.hung_waits).push(id);
            }
            record(&mut latencies, Op::Wait, began);
            Tally::add(&world.tally.waits);
        }
    }
    latencies
}

fn record(latencies: &mut Latencies, op: Op, began: Instant) {
    let nanos = u64::try_from(began.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    if let Some(histogram) = latencies.get_mut(&op) {
        histogram.saturating_record(nanos);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One kind of broken promise and the ids that broke it.
struct Violation {
    rule: &'static str,
    ids: Vec<u64>,
}

/// Waits for every id to settle, then checks the promises.
async fn audit(
    world: &World,
    options: &Options,
) -> (Vec<Violation>, BTreeMap<&'static str, usize>) {
    let mut violations = Vec::new();
    let mut wedged = Vec::new();
    for id in 0..options.ids {
        if tokio::time::timeout(Duration::from_secs(10), world.recorder.wait(&id))
            .await
            .is_err()
        {
            wedged.push(id);
        }
    }
    let mut by_query: std::collections::HashMap<TaskState, BTreeSet<u64>> =
        std::collections::HashMap::new();
    let (mut double, mut lost, mut phantom) = (Vec::new(), Vec::new(), Vec::new());
    for id in 0..options.ids {
        let state = world.recorder.query_task_state(&id).await;
        let effects = world.effects[id as usize].load(Ordering::SeqCst);
        if effects > 1 {
            double.push(id);
        } else if state == TaskState::Success && effects == 0 {
            lost.push(id);
        } else if state != TaskState::Success && effects == 1 {
            phantom.push(id);
        }
        if state != TaskState::NotFound {
            by_query.entry(state).or_default().insert(id);
        }
    }
    let revoked_bad = lock(&world.revoke_violations).clone();
    let mut push = |rule, ids: Vec<u64>| {
        if !ids.is_empty() {
            violations.push(Violation { rule, ids });
        }
    };
    push(
        "more than one success in one epoch (at revoke)",
        revoked_bad
            .iter()
            .filter(|v| v.2 > 1)
            .map(|v| v.0)
            .collect(),
    );
    push(
        "revoked a success that had no side effect",
        revoked_bad
            .iter()
            .filter(|v| v.2 == 0)
            .map(|v| v.0)
            .collect(),
    );
    push("more than one success in the current epoch", double);
    push("reads Success without a side effect", lost);
    push("side effect done but does not read Success", phantom);
    push("left Working (wait did not resolve in 10 s)", wedged);
    push(
        "wait during the run did not resolve in 10 s",
        lock(&world.hung_waits).clone(),
    );
    let still_working = by_query
        .get(&TaskState::Working)
        .cloned()
        .unwrap_or_default();
    push(
        "reads Working after the drain",
        still_working.into_iter().collect(),
    );

    let counts = world.recorder.state_counts();
    let mut listed = BTreeMap::new();
    for state in [TaskState::Working, TaskState::Success, TaskState::Failed] {
        let listing: BTreeSet<u64> = world.recorder.list_tasks(state).into_iter().collect();
        let queried = by_query.get(&state).cloned().unwrap_or_default();
        let differ: Vec<u64> = listing.symmetric_difference(&queried).copied().collect();
        push(
            match state {
                TaskState::Working => "listing of Working differs from queries",
                TaskState::Success => "listing of Success differs from queries",
                _ => "listing of Failed differs from queries",
            },
            differ,
        );
        if counts.get(state) != queried.len() {
            push(
                match state {
                    TaskState::Working => "count of Working differs from queries",
                    TaskState::Success => "count of Success differs from queries",
                    _ => "count of Failed differs from queries",
                },
                queried.iter().take(1).copied().collect(),
            );
        }
        listed.insert(
            match state {
                TaskState::Working => "working",
                TaskState::Success => "success",
                _ => "failed",
            },
            listing.len(),
        );
    }
    let recorded: usize = by_query.values().map(BTreeSet::len).sum();
    if world.recorder.len() != recorded {
        violations.push(Violation {
            rule: "len() differs from the ids queries find recorded",
            ids: Vec::new(),
        });
    }
    let t = &world.tally;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let ended =
        get(&t.tasks_ok) + get(&t.tasks_failed) + get(&t.tasks_panicked) + get(&t.cancelled);
    if ended != get(&t.accepted) {
        violations.push(Violation {
            rule: "accepted launches differ from tasks ended (ok + failed + panicked + cancelled)",
            ids: Vec::new(),
        });
    }
    (violations, listed)
}

fn percentiles(histogram: &Histogram<u64>) -> serde_json::Value {
    let us = |v: u64| (v as f64 / 1e3 * 100.0).round() / 100.0;
    json!({
        "count": histogram.len(),
        "p50_us": us(histogram.value_at_quantile(0.50)),
        "p90_us": us(histogram.value_at_quantile(0.90)),
        "p99_us": us(histogram.value_at_quantile(0.99)),
        "p999_us": us(histogram.value_at_quantile(0.999)),
        "max_us": us(histogram.max()),
    })
}

fn silence_deliberate_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<DeliberatePanic>() {
            default(info);
        }
    }));
}

fn main() -> ExitCode {
    let options = Options::parse();
    silence_deliberate_panics();
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(options, threads))
}

async fn run(options: Options, threads: usize) -> ExitCode {
    let options = Arc::new(options);
    let world = Arc::new(World {
        recorder: AsyncTasksRecorder::new(),
        effects: (0..options.ids).map(|_| AtomicU32::new(0)).collect(),
        epochs: (0..options.ids).map(|_| AtomicU32::new(0)).collect(),
        tally: Tally::default(),
        revoke_violations: Mutex::new(Vec::new()),
        hung_waits: Mutex::new(Vec::new()),
        sabotage: options.sabotage,
    });
    let progress = if options.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(options.launches);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} launches {per_sec} | {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    };

    let began = Instant::now();
    let deadline = options
        .duration
        .map(|secs| began + Duration::from_secs_f64(secs.max(0.0)));
    let ticker = {
        let (world, progress) = (world.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let counts = world.recorder.state_counts();
                progress.set_position(world.tally.attempts.load(Ordering::Relaxed));
                progress.set_message(format!(
                    "working {} success {} failed {}",
                    counts.working, counts.success, counts.failed
                ));
            }
        })
    };
    let workers: Vec<_> = (0..options.workers)
        .map(|index| {
            let share = options.launches / options.workers
                + u64::from(index < options.launches % options.workers);
            tokio::spawn(worker(
                world.clone(),
                options.clone(),
                index,
                share,
                deadline,
            ))
        })
        .collect();
    let mut latencies = new_latencies();
    let mut crashed = 0;
    for handle in workers {
        match handle.await {
            Ok(worker_latencies) => {
                for (op, histogram) in worker_latencies {
                    if let Some(total) = latencies.get_mut(&op) {
                        let _ = total.add(&histogram);
                    }
                }
            }
            Err(_) => crashed += 1,
        }
    }
    let run_time = began.elapsed();
    ticker.abort();
    progress.finish_and_clear();

    let audit_began = Instant::now();
    let (mut violations, listed) = audit(&world, &options).await;
    let audit_time = audit_began.elapsed();
    if crashed > 0 {
        violations.push(Violation {
            rule: "a worker crashed",
            ids: Vec::new(),
        });
    }

    let tally = &world.tally;
    let ops = tally.attempts.load(Ordering::Relaxed)
        + tally.queries.load(Ordering::Relaxed)
        + tally.revokes_done.load(Ordering::Relaxed)
        + tally.revokes_failed.load(Ordering::Relaxed)
        + tally.revokes_refused.load(Ordering::Relaxed)
        + tally.waits.load(Ordering::Relaxed);
    let secs = run_time.as_secs_f64().max(1e-9);
    let report = json!({
        "options": {
            "ids": options.ids, "launches": options.launches, "workers": options.workers,
            "threads": threads, "fail_rate": options.fail_rate, "panic_rate": options.panic_rate,
            "cancel_rate": options.cancel_rate, "queries": options.queries, "revokes": options.revokes,
            "revoke_fail_rate": options.revoke_fail_rate, "waits": options.waits,
            "duration": options.duration, "seed": options.seed,
        },
        "run_seconds": (secs * 1e3).round() / 1e3,
        "audit_seconds": (audit_time.as_secs_f64() * 1e3).round() / 1e3,
        "operations": ops,
        "ops_per_second": (ops as f64 / secs).round() as u64,
        "launches_per_second": (tally.attempts.load(Ordering::Relaxed) as f64 / secs).round() as u64,
        "outcomes": tally.json(),
        "final_states": listed,
        "latency": Op::ALL.iter().filter_map(|op| latencies.get(op).map(|h| (op.name(), percentiles(h)))).collect::<BTreeMap<_, _>>(),
        "violations": violations.iter().map(|v| json!({"rule": v.rule, "count": v.ids.len(), "ids": v.ids.iter().take(50).collect::<Vec<_>>()})).collect::<Vec<_>>(),
    });

    // Written without `println!`, which panics when stdout is a closed pipe.
    let (out, err) = if options.json {
        (format!("{report:#}\n"), String::new())
    } else {
        human(&report, &violations)
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stderr().write_all(err.as_bytes());
    if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The human-readable report for stdout, and the violations for stderr.
fn human(report: &serde_json::Value, violations: &[Violation]) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    let v = |path: &str| {
        report
            .pointer(path)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let _ = writeln!(
        out,
        "{} operations ({} launch attempts) in {} s: {} ops/s, {} launches/s",
        v("/operations"),
        v("/outcomes/launch_attempts"),
        v("/run_seconds"),
        v("/ops_per_second"),
        v("/launches_per_second")
    );
    if let Some(outcomes) = report.get("outcomes").and_then(|o| o.as_object()) {
        let line: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "outcomes: {}", line.join(", "));
    }
    let _ = writeln!(
        out,
        "final states: working {}, success {}, failed {} (audit {} s)",
        v("/final_states/working"),
        v("/final_states/success"),
        v("/final_states/failed"),
        v("/audit_seconds")
    );
    let _ = writeln!(
        out,
        "latency (µs)    count      p50      p90      p99    p99.9      max"
    );
    for op in Op::ALL {
        // Rendered first: a JSON value's `Display` ignores width and alignment.
        let l = |k: &str| v(&format!("/latency/{}/{k}", op.name())).to_string();
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            op.name(),
            l("count"),
            l("p50_us"),
            l("p90_us"),
            l("p99_us"),
            l("p999_us"),
            l("max_us")
        );
    }
    if violations.is_empty() {
        let _ = writeln!(out, "audit: all invariants hold");
    } else {
        for violation in violations {
            let shown: Vec<String> = violation.ids.iter().take(20).map(u64::to_string).collect();
            let _ = writeln!(
                err,
                "VIOLATION: {} ({} ids){}{}",
                violation.rule,
                violation.ids.len(),
                if shown.is_empty() { "" } else { ": " },
                shown.join(", ")
            );
        }
    }
    (out, err)
}
