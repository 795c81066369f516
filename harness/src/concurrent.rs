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

use crate::bounded::{BOUND, WATCHDOG, Watchdog};
use crate::history::{Effect, History, at_most_once_per_epoch};
use crate::linearizability::check_all;
use crate::operation::{Operation, StepSpec};
use crate::protocol::Id;
use crate::subject::Subject;
use crate::support::{self, CatchUnwind, lock, task_panic};
use async_tasks_recorder::spec::{Outcome, Response};
use async_tasks_recorder::{StateCounts, TaskState};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// The property a run broke, numbered as in the module documentation.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Property {
    /// 1. At most one successful side effect per id and revoke epoch, and a
    ///    revoke's only after a success.
    OneSuccessPerEpoch,
    /// 2. `Success` exactly when the current epoch has its successful side effect.
    SuccessIffEpochSucceeded,
    /// 3. No id left `Working` once every task has ended.
    NoneLeftWorking,
    /// 4. Listings and counts agree with queries.
    ListingsAgree,
    /// 5. No `wait` left asleep: no lost wake-up.
    NoLostWakeup,
    /// 6. Each id's history is linearizable against `spec::step`.
    Linearizable,
    /// Not a property of the subject: an actor of the run panicked outside
    /// the tasks, which the run does not expect of any subject.
    ActorFailed,
}

/// A broken property and what showed it.
#[derive(Clone, Debug)]
pub struct Violation {
    pub property: Property,
    pub detail: String,
}

impl Violation {
    fn new(property: Property, detail: impl Into<String>) -> Self {
        Violation {
            property,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.property, self.detail)
    }
}

/// Tasks that may also panic or be cancelled part-way.
pub const ABRUPT: Endings = Endings {
    abrupt: true,
    succeed: true,
};
/// Tasks that only return `Ok` or `Err`.
pub const GRACEFUL: Endings = Endings {
    abrupt: false,
    succeed: true,
};
/// Tasks that only return `Err`: with no success to count, a defect can
/// show only in the histories and the final states.
pub const FAILING: Endings = Endings {
    abrupt: false,
    succeed: false,
};

/// A pause between or inside operations.
#[derive(Clone, Copy, Debug)]
pub enum Pause {
    None,
    /// Yields to the scheduler this many times.
    Yield(u8),
    /// Sleeps this many milliseconds.
    Sleep(u8),
}

impl Pause {
    async fn run(self) {
        match self {
            Pause::None => {}
            Pause::Yield(times) => {
                for _ in 0..times {
                    tokio::task::yield_now().await;
                }
            }
            Pause::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms.into())).await,
        }
    }
}

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum End {
    Ok,
    Err,
    Panic,
    /// The caller drops `launch_block` part-way (only for `launch_block`).
    Cancel,
}

#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    pause: Pause,
    /// `launch` when true, `launch_block` otherwise.
    spawned: bool,
    work: Pause,
    end: End,
}

#[derive(Clone, Copy, Debug)]
pub struct Revoke {
    pause: Pause,
    work: Pause,
    ok: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Read {
    Query,
    QuickQuery,
    Wait,
}

#[derive(Clone, Debug)]
pub struct Actors {
    launchers: Vec<Vec<Attempt>>,
    revokers: Vec<Vec<Revoke>>,
    observers: Vec<Vec<(Pause, Read)>>,
}

/// What each id of a run does; id `i` is `schedule[i]`.
pub type Schedule = Vec<Actors>;

/// Which endings the tasks may have.
#[derive(Clone, Copy, Debug)]
pub struct Endings {
    abrupt: bool,
    succeed: bool,
}

fn pause() -> impl Strategy<Value = Pause> {
    prop_oneof![
        2 => Just(Pause::None),
        3 => (1u8..4).prop_map(Pause::Yield),
        2 => (1u8..3).prop_map(Pause::Sleep),
    ]
}

fn attempt(endings: Endings) -> impl Strategy<Value = Attempt> {
    let end = if endings.abrupt {
        prop_oneof![
            3 => Just(End::Ok),
            3 => Just(End::Err),
            1 => Just(End::Panic),
            1 => Just(End::Cancel),
        ]
        .boxed()
    } else if endings.succeed {
        prop_oneof![Just(End::Ok), Just(End::Err)].boxed()
    } else {
        Just(End::Err).boxed()
    };
    (pause(), any::<bool>(), pause(), end).prop_map(|(pause, spawned, work, end)| Attempt {
        pause,
        // A spawned task cannot be cancelled by its caller.
        spawned: spawned && end != End::Cancel,
        work,
        end,
    })
}

fn revoke() -> impl Strategy<Value = Revoke> {
    (pause(), pause(), prop::bool::weighted(0.7)).prop_map(|(pause, work, ok)| Revoke {
        pause,
        work,
        ok,
    })
}

fn read() -> impl Strategy<Value = (Pause, Read)> {
    let kind = prop_oneof![
        2 => Just(Read::Query),
        1 => Just(Read::QuickQuery),
        2 => Just(Read::Wait),
    ];
    (pause(), kind)
}

pub fn schedule(endings: Endings) -> impl Strategy<Value = Schedule> {
    use proptest::collection::vec;
    let actors = (
        vec(vec(attempt(endings), 1..4), 1..4),
        vec(vec(revoke(), 1..3), 0..3),
        vec(vec(read(), 1..5), 0..3),
    )
        .prop_map(|(launchers, revokers, observers)| Actors {
            launchers,
            revokers,
            observers,
        });
    vec(actors, 1..4)
}

/// Schedules that crowd waits around each id's last finish: one launcher
/// with quick attempts, and observers that call `wait` back to back. A wait
/// that reads `Working` just before the last finish and registers just after
/// it is lost for good; any later finish would still wake it.
pub fn wait_storm() -> impl Strategy<Value = Schedule> {
    use proptest::collection::vec;
    let quick = prop_oneof![Just(Pause::None), Just(Pause::Yield(1))];
    let attempt = (quick.clone(), quick, any::<bool>()).prop_map(|(pause, work, ok)| Attempt {
        pause,
        spawned: false,
        work,
        end: if ok { End::Ok } else { End::Err },
    });
    let waits = vec(Just((Pause::None, Read::Wait)), 20..40);
    (vec(attempt, 1..4), vec(waits, 2..4)).prop_map(|(attempts, observers)| {
        vec![Actors {
            launchers: vec![attempts],
            revokers: Vec::new(),
            observers,
        }]
    })
}

/// The schedule as a table: one row per actor, its steps in order.
pub fn table(schedule: &Schedule) -> String {
    let pause = |p: Pause| match p {
        Pause::None => String::new(),
        Pause::Yield(n) => format!("yield {n}; "),
        Pause::Sleep(ms) => format!("sleep {ms}ms; "),
    };
    let mut rows = String::from("| id | actor | steps |\n|----|-------|-------|\n");
    for (id, actors) in schedule.iter().enumerate() {
        for attempts in &actors.launchers {
            let steps: Vec<String> = attempts
                .iter()
                .map(|a| {
                    let call = if a.spawned { "launch" } else { "launch_block" };
                    format!(
                        "{}{call}(task: {}{:?})",
                        pause(a.pause),
                        pause(a.work),
                        a.end
                    )
                })
                .collect();
            rows += &format!("| {id} | launcher | {} |\n", steps.join(", "));
        }
        for revokes in &actors.revokers {
            let steps: Vec<String> = revokes
                .iter()
                .map(|r| {
                    let end = if r.ok { "Ok" } else { "Err" };
                    format!(
                        "{}revoke_block(revoke: {}{end})",
                        pause(r.pause),
                        pause(r.work)
                    )
                })
                .collect();
            rows += &format!("| {id} | revoker | {} |\n", steps.join(", "));
        }
        for reads in &actors.observers {
            let steps: Vec<String> = reads
                .iter()
                .map(|&(p, read)| format!("{}{read:?}", pause(p)))
                .collect();
            rows += &format!("| {id} | observer | {} |\n", steps.join(", "));
        }
    }
    rows
}

/// A future's wake-up bookkeeping: after quiescence, a `wait` that returned
/// `Pending` and was never woken since can never be woken again.
#[derive(Default)]
struct Wakes {
    woken: AtomicBool,
    /// Polled, returned `Pending`, not woken since.
    asleep: AtomicBool,
    /// Inside a `wait` call.
    waiting: AtomicBool,
    /// Polls so far.
    polls: AtomicU64,
}

struct Flag {
    wakes: Arc<Wakes>,
    waker: Waker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.woken.store(true, Ordering::SeqCst);
        self.wakes.asleep.store(false, Ordering::SeqCst);
        self.waker.wake_by_ref();
    }
}

/// Wraps a future to keep [`Wakes`] up to date.
struct Tracked<F> {
    future: Pin<Box<F>>,
    wakes: Arc<Wakes>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let wakes = self.wakes.clone();
        wakes.polls.fetch_add(1, Ordering::SeqCst);
        wakes.woken.store(false, Ordering::SeqCst);
        wakes.asleep.store(false, Ordering::SeqCst);
        let waker = Waker::from(Arc::new(Flag {
            wakes: wakes.clone(),
            waker: cx.waker().clone(),
        }));
        let poll = self.future.as_mut().poll(&mut Context::from_waker(&waker));
        if poll.is_pending() && !wakes.woken.load(Ordering::SeqCst) {
            wakes.asleep.store(true, Ordering::SeqCst);
            // A wake between the load and the store above re-checks here.
            if wakes.woken.load(Ordering::SeqCst) {
                wakes.asleep.store(false, Ordering::SeqCst);
            }
        }
        poll
    }
}

/// One run's shared log and subject.
struct Run<S> {
    subject: S,
    history: History,
    /// Finish events of spawned attempts: id, outcome, and the task's end
    /// (their invocation). They return at quiescence, the first moment the
    /// run knows that they applied.
    spawned_finishes: Mutex<Vec<(Id, Outcome, Arc<AtomicU64>)>>,
}

impl<S: Subject> Run<S> {
    /// The attempt's task: logs its start and end, and its side effect.
    fn task(
        self: &Arc<Self>,
        id: Id,
        attempt: Attempt,
        started: Arc<AtomicU64>,
        ended: Arc<AtomicU64>,
    ) -> impl Future<Output = Result<(), ()>> + Send + 'static {
        let run = self.clone();
        async move {
            started.store(run.history.now(), Ordering::SeqCst);
            attempt.work.run().await;
            if attempt.end == End::Cancel {
                std::future::pending::<()>().await;
            }
            if attempt.end == End::Ok {
                run.history.effect(id, Effect::Succeeded);
            }
            ended.store(run.history.now(), Ordering::SeqCst);
            match attempt.end {
                End::Ok => Ok(()),
                End::Panic => task_panic(),
                _ => Err(()),
            }
        }
    }

    async fn launcher(self: Arc<Self>, id: Id, attempts: Vec<Attempt>) {
        for attempt in attempts {
            attempt.pause.run().await;
            let started = Arc::new(AtomicU64::new(u64::MAX));
            let ended = Arc::new(AtomicU64::new(u64::MAX));
            let task = self.task(id, attempt, started.clone(), ended.clone());
            let history = &self.history;
            let invoked = history.now();
            if attempt.spawned {
                let launched = self.subject.launch(id, task).await;
                let returned = history.now();
                let response = match launched {
                    Ok(()) => {
                        let outcome = if attempt.end == End::Ok {
                            Outcome::Ok
                        } else {
                            Outcome::Err
                        };
                        lock(&self.spawned_finishes).push((id, outcome, ended.clone()));
                        Response::Accepted
                    }
                    Err(state) => Response::LaunchRefused(state),
                };
                history.record(id, Operation::Launch(response), invoked, returned);
                continue;
            }
            let mut launch = Box::pin(CatchUnwind::new(self.subject.launch_block(id, task)));
            let output = tokio::select! {
                biased;
                output = &mut launch => Some(output),
                _ = attempt.work.run(), if attempt.end == End::Cancel => None,
            };
            let output = match output {
                Some(output) => output,
                None => {
                    // Still running its task (or never started): cancel.
                    let dropping = history.now();
                    drop(launch);
                    let dropped = history.now();
                    let start = started.load(Ordering::SeqCst);
                    if start == u64::MAX {
                        // The launch never returned nor ran the task: it was
                        // refused or not yet decided; nothing is known.
                        continue;
                    }
                    history.record(id, Operation::Launch(Response::Accepted), invoked, start);
                    history.record(id, Operation::Finish(Outcome::Err), dropping, dropped);
                    continue;
                }
            };
            let returned = history.now();
            let start = started.load(Ordering::SeqCst);
            match output {
                Ok(Err(state)) => {
                    history.record(
                        id,
                        Operation::Launch(Response::LaunchRefused(state)),
                        invoked,
                        returned,
                    );
                }
                Ok(Ok(result)) => {
                    history.record(id, Operation::Launch(Response::Accepted), invoked, start);
                    let outcome = Outcome::of(&result);
                    history.record(
                        id,
                        Operation::Finish(outcome),
                        ended.load(Ordering::SeqCst),
                        returned,
                    );
                }
                Err(_panic) => {
                    history.record(id, Operation::Launch(Response::Accepted), invoked, start);
                    history.record(
                        id,
                        Operation::Finish(Outcome::Err),
                        ended.load(Ordering::SeqCst),
                        returned,
                    );
                }
            }
        }
    }
}

impl<S: Subject> Run<S> {
    async fn revoker(self: Arc<Self>, id: Id, revokes: Vec<Revoke>) {
        for revoke in revokes {
            revoke.pause.run().await;
            let history = &self.history;
            let started = Arc::new(AtomicU64::new(u64::MAX));
            let ended = Arc::new(AtomicU64::new(u64::MAX));
            let future = {
                let run = self.clone();
                let (started, ended) = (started.clone(), ended.clone());
                async move {
                    started.store(run.history.now(), Ordering::SeqCst);
                    revoke.work.run().await;
                    if revoke.ok {
                        run.history.effect(id, Effect::Revoked);
                    }
                    ended.store(run.history.now(), Ordering::SeqCst);
                    if revoke.ok { Ok(()) } else { Err(()) }
                }
            };
            let invoked = history.now();
            let revoked = self.subject.revoke_block(id, future).await;
            let returned = history.now();
            let start = started.load(Ordering::SeqCst);
            match revoked {
                Err(reason) if start == u64::MAX => {
                    let refused = Operation::BeginRevoke(Response::RevokeRefused(reason));
                    history.record(id, refused, invoked, returned);
                }
                result => {
                    let outcome = if result == Ok(Ok(())) {
                        Outcome::Ok
                    } else {
                        Outcome::Err
                    };
                    history.record(
                        id,
                        Operation::BeginRevoke(Response::Accepted),
                        invoked,
                        start,
                    );
                    let end = ended.load(Ordering::SeqCst);
                    history.record(id, Operation::FinishRevoke(outcome), end, returned);
                }
            }
        }
    }

    async fn observer(self: Arc<Self>, id: Id, reads: Vec<(Pause, Read)>, wakes: Arc<Wakes>) {
        for (pause, read) in reads {
            pause.run().await;
            let history = &self.history;
            let invoked = history.now();
            let operation = match read {
                Read::Query => Operation::Query(self.subject.query(id)),
                Read::QuickQuery => Operation::QuickQuery(self.subject.query_quick(id)),
                Read::Wait => {
                    wakes.waiting.store(true, Ordering::SeqCst);
                    let state = self.subject.wait(id).await;
                    wakes.waiting.store(false, Ordering::SeqCst);
                    Operation::Wait(state)
                }
            };
            history.record(id, operation, invoked, history.now());
        }
    }
}

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

/// Drops its observer count when the observer's future ends or is dropped,
/// always before the runtime stops counting the task as alive.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

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

    let mut states = Vec::new();
    for &id in &ids {
        let invoked = run.history.now();
        let state = run.subject.query(id);
        run.history
            .record(id, Operation::Query(state), invoked, run.history.now());
        states.push(state);
        // 3. Nothing is left `Working`.
        if state == TaskState::Working {
            return Err(Violation::new(
                Property::NoneLeftWorking,
                format!("id {id} is left Working after every task ended"),
            ));
        }
        // 1 and 2. At most once per epoch; `Success` iff the epoch succeeded.
        let succeeded = at_most_once_per_epoch(&run.history.effects_of(id))
            .map_err(|e| Violation::new(Property::OneSuccessPerEpoch, format!("id {id}: {e}")))?;
        if succeeded != (state == TaskState::Success) {
            return Err(Violation::new(
                Property::SuccessIffEpochSucceeded,
                format!(
                    "id {id} reads {state:?} but its epoch has {} success: {:?}",
                    if succeeded { "a" } else { "no" },
                    run.history.effects_of(id)
                ),
            ));
        }
    }
    // 4. Listings and counts agree with the queries.
    let mut counts = StateCounts::default();
    for state in [TaskState::Working, TaskState::Success, TaskState::Failed] {
        let mut listed = run.subject.list(state);
        listed.sort_unstable();
        let queried: Vec<Id> = ids
            .iter()
            .copied()
            .filter(|&id| states[id as usize] == state)
            .collect();
        if listed != queried {
            return Err(Violation::new(
                Property::ListingsAgree,
                format!("list({state:?}) = {listed:?}, queries say {queried:?}"),
            ));
        }
        if run.subject.count(state) != listed.len() {
            return Err(Violation::new(
                Property::ListingsAgree,
                format!(
                    "count({state:?}) = {}, list({state:?}) = {listed:?}",
                    run.subject.count(state)
                ),
            ));
        }
        match state {
            TaskState::Working => counts.working = listed.len(),
            TaskState::Success => counts.success = listed.len(),
            _ => counts.failed = listed.len(),
        }
    }
    if run.subject.counts() != counts {
        return Err(Violation::new(
            Property::ListingsAgree,
            format!("counts {:?}, listings say {counts:?}", run.subject.counts()),
        ));
    }
    // 5. No waiter sleeps forever. A waiter asleep inside `wait` with nothing
    // left to wake it is stuck. tokio defers the wake-up of a task that
    // yields until its worker is between tasks, so a yielding wait looks
    // asleep for a moment: only a waiter that stays asleep, unpolled, across
    // `STILL` checks counts as stuck.
    const STILL: u32 = 100;
    let mut asleep = None;
    let mut checks = 0;
    while !observers.iter().all(|(_, _, handle)| handle.is_finished()) {
        let now = observers.iter().find_map(|(id, wakes, handle)| {
            let stuck = !handle.is_finished()
                && wakes.waiting.load(Ordering::SeqCst)
                && wakes.asleep.load(Ordering::SeqCst);
            stuck.then(|| (*id, wakes.polls.load(Ordering::SeqCst)))
        });
        checks = if now.is_some() && now == asleep {
            checks + 1
        } else {
            0
        };
        asleep = now;
        if let (Some((id, _)), STILL) = (asleep, checks) {
            let state = run.subject.query(id);
            return Err(Violation::new(
                Property::NoLostWakeup,
                format!("a wait on id {id} sleeps forever; the id is {state:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // 6. Linearizability, per id.
    check_all(&StepSpec, &run.history.events()).map_err(|(id, violation)| {
        Violation::new(
            Property::Linearizable,
            format!("id {id} is not linearizable:\n{violation}"),
        )
    })
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
