//! Concurrent launch-fail-retry schedules on a two-worker tokio runtime,
//! for any [`Subject`].
//!
//! Per id, several launchers retry attempts that succeed, fail, panic or are
//! cancelled, with small pauses, while revokers and observers (queries, quick
//! queries, waits) run alongside. Every task and revoke logs its own side
//! effect; every operation logs its invocation and response on one global
//! counter. At quiescence the run must satisfy:
//! 1. at most one successful side effect per id and revoke epoch;
//! 2. `Success` exactly when the current epoch has its successful side effect;
//! 3. no id left `Working`;
//! 4. listings and counts agree with queries;
//! 5. no `wait` left asleep (a lost wake-up);
//! 6. each id's history is linearizable against `spec::step`.
//!
//! Rooms: [`schedule`](mod@schedule) (what the actors do, and its strategies), `actors`
//! (the launchers, revokers and observers that do it), `wakes` (which
//! waiters nothing will wake) and [`properties`] (the checks at quiescence).

mod actors;
pub mod properties;
pub mod schedule;
mod wakes;

pub use crate::protocol::End;
pub use properties::{Property, Violation};
pub use schedule::{
    ABRUPT, Actors, Attempt, Endings, FAILING, GRACEFUL, Pause, Read, Revoke, Schedule, schedule,
    table, wait_storm,
};

use crate::bounded::{BOUND, WATCHDOG, Watchdog};
use crate::history::History;
use crate::operation::Operation;
use crate::protocol::Id;
use crate::subject::Subject;
use crate::support::{self, lock};
use actors::Run;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wakes::{Alive, Tracked, Wakes};

/// Runs `schedule` against a fresh `S` and checks the six properties, for
/// a proptest property.
pub fn run_schedule<S: Subject + Default>(schedule: &Schedule) -> Result<(), TestCaseError> {
    check_schedule::<S>(schedule).map_err(|violation| TestCaseError::fail(violation.to_string()))
}

/// Runs `schedule` against a fresh `S`; the first property it broke, if any.
pub fn check_schedule<S: Subject + Default>(schedule: &Schedule) -> Result<(), Violation> {
    support::quiet_task_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a multi-thread runtime");
    let run = Arc::new(Run {
        subject: S::default(),
        history: History::default(),
        spawned_finishes: Mutex::new(Vec::new()),
    });
    // A schedule runs in milliseconds; a stuck one fails within seconds,
    // naming its ids, through the timer, or through the watchdog when
    // spinning actors starve the timer.
    let ids = schedule.len();
    let _watchdog = Watchdog::arm(
        WATCHDOG,
        format!("a schedule over ids 0..{ids} still running; the runtime is starved"),
    );
    let verdict = runtime
        .block_on(async { tokio::time::timeout(BOUND, check_run(run.clone(), schedule)).await })
        .unwrap_or_else(|_| {
            // A run stuck on the timer is something left waiting forever.
            Err(Violation::new(
                Property::NoLostWakeup,
                format!(
                    "a schedule over ids 0..{ids} still running after {} s: an id is wedged \
                     or a wait was never woken",
                    BOUND.as_secs()
                ),
            ))
        });
    // Shutting down drops whatever is stuck (a lost waiter, a spinning wait).
    runtime.shutdown_background();
    verdict
}

/// Starts every actor of `schedule`, waits for quiescence, then checks the
/// six properties: the final states (3, then 1 and 2), the listings (4), the
/// waiters (5), the histories (6).
async fn check_run<S: Subject>(run: Arc<Run<S>>, schedule: &Schedule) -> Result<(), Violation> {
    let ids: Vec<Id> = (0..schedule.len() as Id).collect();
    let mut mutators = Vec::new();
    let mut observers = Vec::new();
    let observing = Arc::new(AtomicUsize::new(0));
    for (&id, actors) in ids.iter().zip(schedule) {
        for reads in &actors.observers {
            let wakes = Arc::new(Wakes::default());
            observing.fetch_add(1, Ordering::SeqCst);
            let alive = Alive(observing.clone());
            let observer = Tracked {
                future: Box::pin(run.clone().observer(id, reads.clone(), wakes.clone())),
                wakes: wakes.clone(),
            };
            let handle = tokio::spawn(async move {
                let _alive = alive;
                observer.await
            });
            observers.push((id, wakes, handle));
        }
        for attempts in &actors.launchers {
            mutators.push(tokio::spawn(run.clone().launcher(id, attempts.clone())));
        }
        for revokes in &actors.revokers {
            mutators.push(tokio::spawn(run.clone().revoker(id, revokes.clone())));
        }
    }
    for mutator in mutators {
        mutator
            .await
            .map_err(|e| Violation::new(Property::ActorFailed, format!("an actor failed: {e}")))?;
    }
    // Quiescence: every task still alive is an observer, so every spawned
    // attempt, its drop guard included, has ended.
    let metrics = tokio::runtime::Handle::current().metrics();
    while metrics.num_alive_tasks() != observing.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let quiescent = run.history.now();
    for (id, outcome, ended) in lock(&run.spawned_finishes).drain(..) {
        let ended = ended.load(Ordering::SeqCst);
        run.history
            .record(id, Operation::Finish(outcome), ended, quiescent);
    }

    let states = properties::final_states(&run, &ids)?;
    properties::listings_agree(&run.subject, &ids, &states)?;
    properties::no_waiter_asleep(&run.subject, &observers).await?;
    properties::linearizable(&run.history)
}

/// A shrunk schedule that broke a property.
#[derive(Debug)]
pub struct Counterexample {
    /// The property the shrunk schedule broke, and how.
    pub violation: Violation,
    pub schedule: Schedule,
    /// The subject's name, the violation and the schedule as a table.
    pub report: String,
}

/// Runs schedules against `S` until one fails; returns the shrunk schedule
/// and the property it broke. A failure depends on thread timing, so each
/// candidate runs a few times while shrinking, and counts as failing if
/// any run fails; the property reported is the one the shrunk schedule
/// broke in its failing run.
pub fn counterexample<S, T>(schedules: T, cases: u32) -> Counterexample
where
    S: Subject + Default,
    T: Strategy<Value = Schedule>,
{
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    // The typed violation of every failing candidate, by its schedule:
    // proptest keeps only a string.
    let broken: Mutex<HashMap<String, Violation>> = Mutex::default();
    let result = support::quietly(|| {
        runner.run(&schedules, |s| {
            (0..4).try_for_each(|_| {
                check_schedule::<S>(&s).map_err(|violation| {
                    let reason = TestCaseError::fail(violation.to_string());
                    lock(&broken).insert(format!("{s:?}"), violation);
                    reason
                })
            })
        })
    });
    match result {
        Err(TestError::Fail(_, schedule)) => {
            let violation = lock(&broken)
                .remove(&format!("{schedule:?}"))
                .expect("the shrunk schedule failed, so its violation was kept");
            let report = format!("{}: {violation}\n{}", S::NAME, table(&schedule));
            eprintln!("{report}");
            Counterexample {
                violation,
                schedule,
                report,
            }
        }
        other => panic!("{}: no schedule broke a property: {other:?}", S::NAME),
    }
}
