//! The sequential model test: random operation sequences over a few ids,
//! applied to a subject and to `spec::step`; every response, every id's state
//! and every woken `wait` must agree after every step.
//!
//! Each launch or revoke runs a gated future on its own current-thread
//! runtime, so a step ends a task exactly when the model says so: the gate
//! makes it return `Ok` or `Err` or panic, and dropping the runtime cancels it
//! part-way, as a runtime shutdown would.

use crate::bounded::{WATCHDOG, Watchdog};
use crate::protocol::Id;
use crate::subject::{Subject, spawn_until_started};
use crate::support::{self, task_panic};
use async_tasks_recorder::spec::{self, Op, Outcome, Phase, Response};
use async_tasks_recorder::{StateCounts, TaskState};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What disagreed with the spec.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Kind {
    /// A launch or a revoke answered otherwise than `spec::step`.
    Response,
    /// A query read another state than the spec's.
    Query,
    /// A quick query read another state than the spec's.
    QuickQuery,
    /// A listing differs from the ids the spec has in that state.
    Listing,
    /// The counts differ from the spec's.
    Counts,
    /// A woken `wait` returned another state than the id's.
    WaitReturned,
    /// A `wait` is still pending though the id is not `Working`.
    WaitAsleep,
    /// After a step, an id's state is not the spec's.
    State,
    /// Something else failed: the subject panicked where it must not, or
    /// a released task never ended.
    Other,
}

/// A disagreement with the spec: its kind, and the message the model
/// test failed with.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub kind: Kind,
    pub detail: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

thread_local! {
    /// The mismatch this thread's model test last failed with.
    static LAST: RefCell<Option<Mismatch>> = const { RefCell::new(None) };
}

/// Fails the model test with a mismatch of `kind` unless `agrees`.
#[track_caller]
fn expect(kind: Kind, agrees: bool, detail: impl FnOnce() -> String) {
    if !agrees {
        let detail = detail();
        LAST.set(Some(Mismatch {
            kind,
            detail: detail.clone(),
        }));
        panic!("{kind:?}: {detail}");
    }
}

/// Ids `0..IDS`.
pub const IDS: usize = 3;

/// How an accepted launch runs its task.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Launcher {
    /// `launch`: spawned by the recorder.
    Spawned,
    /// `launch_block`, itself in a spawned task.
    Block,
}

/// How a running task or revoke ends.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum End {
    Ok,
    Err,
    /// The task panics (not generated for revokes).
    Panic,
    /// Dropped part-way by a runtime shutdown.
    Cancel,
}

impl End {
    fn outcome(self) -> Outcome {
        if self == End::Ok {
            Outcome::Ok
        } else {
            Outcome::Err
        }
    }
}

/// One step of a sequence.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Step {
    Launch(Id, Launcher),
    /// Ends the id's running attempt.
    End(Id, End),
    /// Starts a gated revoke.
    BeginRevoke(Id),
    /// Ends the id's running revoke.
    EndRevoke(Id, End),
    Query(Id),
    QuickQuery(Id),
    /// Waits; on a `Working` id the waiter stays pending until a later step.
    Wait(Id),
    List(TaskState),
    Counts,
}

/// The reference: one `Phase` per id, moved by `spec::step` alone.
pub struct Spec;

pub type Phases = [Phase; IDS];

fn id() -> impl Strategy<Value = Id> {
    0..IDS as Id
}

fn one_of(ids: Vec<Id>) -> impl Strategy<Value = Id> {
    proptest::sample::select(ids)
}

fn ids_in(phases: &Phases, phase: Phase) -> Vec<Id> {
    (0..IDS as Id)
        .filter(|&id| phases[id as usize] == phase)
        .collect()
}

impl ReferenceStateMachine for Spec {
    type State = Phases;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Phases> {
        Just([Phase::NotFound; IDS]).boxed()
    }

    fn transitions(phases: &Phases) -> BoxedStrategy<Step> {
        let launcher = prop_oneof![Just(Launcher::Spawned), Just(Launcher::Block)];
        let state = prop_oneof![
            Just(TaskState::Working),
            Just(TaskState::Success),
            Just(TaskState::Failed),
            Just(TaskState::NotFound),
        ];
        let mut steps: Vec<(u32, BoxedStrategy<Step>)> = vec![
            (
                5,
                (id(), launcher)
                    .prop_map(|(id, l)| Step::Launch(id, l))
                    .boxed(),
            ),
            (3, id().prop_map(Step::BeginRevoke).boxed()),
            (2, id().prop_map(Step::Query).boxed()),
            (1, id().prop_map(Step::QuickQuery).boxed()),
            (2, id().prop_map(Step::Wait).boxed()),
            (1, state.prop_map(Step::List).boxed()),
            (1, Just(Step::Counts).boxed()),
        ];
        let working = ids_in(phases, Phase::Working);
        if !working.is_empty() {
            let end = prop_oneof![
                3 => Just(End::Ok),
                2 => Just(End::Err),
                1 => Just(End::Panic),
                1 => Just(End::Cancel),
            ];
            steps.push((
                8,
                (one_of(working), end)
                    .prop_map(|(id, end)| Step::End(id, end))
                    .boxed(),
            ));
        }
        let revoking = ids_in(phases, Phase::Revoking);
        if !revoking.is_empty() {
            let end = prop_oneof![
                2 => Just(End::Ok),
                1 => Just(End::Err),
                1 => Just(End::Cancel),
            ];
            steps.push((
                6,
                (one_of(revoking), end)
                    .prop_map(|(id, end)| Step::EndRevoke(id, end))
                    .boxed(),
            ));
        }
        Union::new_weighted(steps).boxed()
    }

    fn apply(mut phases: Phases, step: &Step) -> Phases {
        let (id, op) = match *step {
            Step::Launch(id, _) => (id, Op::Launch),
            Step::End(id, end) => (id, Op::Finish(end.outcome())),
            Step::BeginRevoke(id) => (id, Op::BeginRevoke),
            Step::EndRevoke(id, end) => (id, Op::FinishRevoke(end.outcome())),
            _ => return phases,
        };
        let phase = &mut phases[id as usize];
        *phase = spec::step(*phase, op).0;
        phases
    }

    fn preconditions(phases: &Phases, step: &Step) -> bool {
        match *step {
            Step::End(id, _) => phases[id as usize] == Phase::Working,
            Step::EndRevoke(id, _) => phases[id as usize] == Phase::Revoking,
            _ => true,
        }
    }
}

/// How a gate ends a gated future.
#[derive(Debug)]
enum Release {
    Ok,
    Err,
    Panic,
}

/// A future that ends as its gate says.
fn gated() -> (
    oneshot::Sender<Release>,
    impl Future<Output = Result<(), ()>> + Send + 'static,
) {
    let (gate, released) = oneshot::channel();
    let future = async move {
        match released.await {
            Ok(Release::Ok) => Ok(()),
            Ok(Release::Err) | Err(_) => Err(()),
            Ok(Release::Panic) => task_panic(),
        }
    };
    (gate, future)
}

/// A running gated task or revoke, alone on its runtime.
struct Running {
    runtime: Runtime,
    gate: oneshot::Sender<Release>,
}

impl Running {
    /// Ends the future as `end` says; returns once everything it spawned ended.
    fn end(self, end: End) {
        let release = match end {
            End::Ok => Release::Ok,
            End::Err => Release::Err,
            End::Panic => Release::Panic,
            // Shutting the runtime down drops the future part-way.
            End::Cancel => return drop(self),
        };
        self.gate.send(release).expect("the gated future is alive");
        self.runtime.block_on(async {
            let metrics = tokio::runtime::Handle::current().metrics();
            // Bounded in time, not in yields: a backend's finish may be a
            // round trip to a database.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while metrics.num_alive_tasks() != 0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "a released task did not end within 10 s"
                );
                tokio::task::yield_now().await;
            }
        });
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// The system under test, and what it has running.
pub struct Sut<S> {
    subject: S,
    /// The reference phases before the step being applied.
    before: Phases,
    attempts: HashMap<Id, Running>,
    revokes: HashMap<Id, Running>,
    /// Pending waiters, driven on their own runtime.
    waiters_runtime: Runtime,
    waiters: Vec<(Id, JoinHandle<TaskState>)>,
    /// A sequence runs in milliseconds. A `wait` that spins instead of
    /// sleeping never returns to `check_waiters`, and no timer on its runtime
    /// can fire; this ends the run instead.
    _watchdog: Watchdog,
}

impl<S: Subject> Sut<S> {
    fn launch(&mut self, id: Id, launcher: Launcher) -> Response {
        let (gate, task) = gated();
        let runtime = runtime();
        let subject = self.subject.clone();
        let launched = runtime.block_on(async move {
            match launcher {
                Launcher::Spawned => subject.launch(id, task).await,
                Launcher::Block => {
                    spawn_until_started(
                        move |task| async move { subject.launch_block(id, task).await },
                        task,
                    )
                    .await
                }
            }
        });
        match launched {
            Ok(()) => {
                self.attempts.insert(id, Running { runtime, gate });
                Response::Accepted
            }
            Err(state) => Response::LaunchRefused(state),
        }
    }

    fn begin_revoke(&mut self, id: Id) -> Response {
        let (gate, revoke) = gated();
        let runtime = runtime();
        let subject = self.subject.clone();
        let begun = runtime.block_on(spawn_until_started(
            move |revoke| async move { subject.revoke_block(id, revoke).await },
            revoke,
        ));
        match begun {
            Ok(()) => {
                self.revokes.insert(id, Running { runtime, gate });
                Response::Accepted
            }
            Err(refusal) => Response::RevokeRefused(refusal),
        }
    }

    /// Lets every woken waiter run, then checks each against `phases`: a
    /// waiter has returned exactly when its id is not `Working`, with the
    /// id's state.
    fn check_waiters(&mut self, phases: &Phases) {
        let waiters = &self.waiters;
        self.waiters_runtime.block_on(async {
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
            // A polling backend gets its stated latency, and no more.
            let deadline = tokio::time::Instant::now() + S::WAKE_LATENCY;
            while waiters.iter().any(|(id, waiter)| {
                !waiter.is_finished() && phases[*id as usize].state() != TaskState::Working
            }) && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        for (id, waiter) in std::mem::take(&mut self.waiters) {
            let state = phases[id as usize].state();
            if waiter.is_finished() {
                let returned = self.waiters_runtime.block_on(waiter);
                expect(Kind::Other, returned.is_ok(), || {
                    format!("wait({id}) panicked: {returned:?}")
                });
                let returned = returned.expect("checked above");
                expect(Kind::WaitReturned, returned == state, || {
                    format!("wait({id}) returned {returned:?}, the id is {state:?}")
                });
            } else {
                expect(Kind::WaitAsleep, state == TaskState::Working, || {
                    format!("wait({id}) still pending though the id is {state:?}")
                });
                self.waiters.push((id, waiter));
            }
        }
    }
}

/// The model test, for any subject.
pub struct Model<S>(PhantomData<S>);

impl<S: Subject + Default> StateMachineTest for Model<S> {
    type SystemUnderTest = Sut<S>;
    type Reference = Spec;

    fn init_test(phases: &Phases) -> Sut<S> {
        support::quiet_task_panics();
        Sut {
            subject: S::default(),
            before: *phases,
            attempts: HashMap::new(),
            revokes: HashMap::new(),
            waiters_runtime: runtime(),
            waiters: Vec::new(),
            _watchdog: Watchdog::arm(
                WATCHDOG,
                format!("a model sequence over ids 0..{IDS} still running: a wait spins"),
            ),
        }
    }

    fn apply(mut sut: Sut<S>, after: &Phases, step: Step) -> Sut<S> {
        let before = sut.before;
        let expected = |id: Id, op| spec::step(before[id as usize], op).1;
        match step {
            Step::Launch(id, launcher) => {
                let response = sut.launch(id, launcher);
                let spec = expected(id, Op::Launch);
                expect(Kind::Response, response == spec, || {
                    format!("{step:?} answered {response:?}, the spec {spec:?}")
                });
            }
            Step::End(id, end) => {
                let attempt = sut.attempts.remove(&id).expect("an attempt runs");
                attempt.end(end);
            }
            Step::BeginRevoke(id) => {
                let response = sut.begin_revoke(id);
                let spec = expected(id, Op::BeginRevoke);
                expect(Kind::Response, response == spec, || {
                    format!("{step:?} answered {response:?}, the spec {spec:?}")
                });
            }
            Step::EndRevoke(id, end) => {
                let revoke = sut.revokes.remove(&id).expect("a revoke runs");
                revoke.end(end);
            }
            Step::Query(id) => {
                let state = sut.subject.query(id);
                let spec = before[id as usize].state();
                expect(Kind::Query, state == spec, || {
                    format!("{step:?} read {state:?}, the spec {spec:?}")
                });
            }
            Step::QuickQuery(id) => {
                let state = sut.subject.query_quick(id);
                let spec = before[id as usize].quick_state();
                expect(Kind::QuickQuery, state == spec, || {
                    format!("{step:?} read {state:?}, the spec {spec:?}")
                });
            }
            Step::Wait(id) => {
                let subject = sut.subject.clone();
                let waiter = sut
                    .waiters_runtime
                    .spawn(async move { subject.wait(id).await });
                sut.waiters.push((id, waiter));
            }
            Step::List(state) => {
                let mut listed = sut.subject.list(state);
                listed.sort_unstable();
                let expected: Vec<Id> = if state == TaskState::NotFound {
                    Vec::new()
                } else {
                    (0..IDS as Id)
                        .filter(|&id| before[id as usize].state() == state)
                        .collect()
                };
                expect(Kind::Listing, listed == expected, || {
                    format!("{step:?} listed {listed:?}, the spec {expected:?}")
                });
            }
            Step::Counts => {
                let count = |state| before.iter().filter(|p| p.state() == state).count();
                let expected = StateCounts {
                    working: count(TaskState::Working),
                    success: count(TaskState::Success),
                    failed: count(TaskState::Failed),
                };
                let counts = sut.subject.counts();
                expect(Kind::Counts, counts == expected, || {
                    format!("{step:?} counted {counts:?}, the spec {expected:?}")
                });
                for state in [TaskState::Working, TaskState::Success, TaskState::Failed] {
                    let count = sut.subject.count(state);
                    expect(Kind::Counts, count == expected.get(state), || {
                        format!(
                            "{step:?}: count({state:?}) is {count}, the spec {}",
                            expected.get(state)
                        )
                    });
                }
            }
        }
        sut.check_waiters(after);
        sut.before = *after;
        sut
    }

    fn check_invariants(sut: &Sut<S>, phases: &Phases) {
        for id in 0..IDS as Id {
            let state = sut.subject.query(id);
            let spec = phases[id as usize].state();
            expect(Kind::State, state == spec, || {
                format!("after the step, id {id} reads {state:?}, the spec {spec:?}")
            });
        }
        // The failed ids, listed and counted from their own index, after
        // every step: the retry sweep's view must follow every transition
        // into and out of `Failed`.
        let mut failed = sut.subject.list(TaskState::Failed);
        failed.sort_unstable();
        let expected = ids_in(phases, Phase::Failed);
        expect(Kind::Listing, failed == expected, || {
            format!("after the step, list(Failed) is {failed:?}, the spec {expected:?}")
        });
        let count = sut.subject.count(TaskState::Failed);
        expect(Kind::Counts, count == expected.len(), || {
            format!(
                "after the step, count(Failed) is {count}, the spec {}",
                expected.len()
            )
        });
    }

    fn teardown(mut sut: Sut<S>, _: Phases) {
        for (_, running) in sut.attempts.drain().chain(sut.revokes.drain()) {
            running.end(End::Cancel);
        }
    }
}

/// Steps per sequence.
pub const STEPS: std::ops::Range<usize> = 1..40;

/// A shrunk sequence the subject disagreed with the spec on.
#[derive(Debug)]
pub struct Counterexample {
    /// The first disagreement of the shrunk sequence.
    pub mismatch: Mismatch,
    pub steps: Vec<Step>,
    /// The subject's name, the mismatch and the steps as a table.
    pub report: String,
}

/// Runs the model test against `S`, which must fail; returns the shrunk
/// sequence and its first mismatch with the spec.
pub fn counterexample<S: Subject + Default>() -> Counterexample {
    let config = Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config.clone(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    // The typed mismatch of every failing candidate, by its steps: proptest
    // keeps only a string.
    let broken: Mutex<HashMap<String, Mismatch>> = Mutex::default();
    let result = support::quietly(|| {
        runner.run(
            &Spec::sequential_strategy(STEPS),
            |(phases, steps, seen)| {
                let key = format!("{steps:?}");
                LAST.take();
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    Model::<S>::test_sequential(config.clone(), phases, steps, seen)
                }));
                if let Err(panic) = ran {
                    let mismatch = LAST.take().unwrap_or_else(|| Mismatch {
                        kind: Kind::Other,
                        detail: support::panic_message(&*panic),
                    });
                    support::lock(&broken).insert(key, mismatch);
                    resume_unwind(panic);
                }
                Ok(())
            },
        )
    });
    match result {
        Err(TestError::Fail(_, (_, steps, _))) => {
            let mismatch = support::lock(&broken)
                .remove(&format!("{steps:?}"))
                .expect("the shrunk sequence failed, so its mismatch was kept");
            let mut report = format!("{} — {mismatch}\n| # | step |\n|---|------|\n", S::NAME);
            for (i, step) in steps.iter().enumerate() {
                report += &format!("| {} | {step:?} |\n", i + 1);
            }
            eprintln!("{report}");
            Counterexample {
                mismatch,
                steps,
                report,
            }
        }
        other => panic!(
            "{}: the model test found no counterexample: {other:?}",
            S::NAME
        ),
    }
}

/// Runs `cases` random sequences against a fresh `S` each; panics with the
/// shrunk sequence on the first disagreement with the spec.
pub fn check<S: Subject + Default>(cases: u32) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    runner
        .run(
            &Spec::sequential_strategy(STEPS),
            |(phases, steps, seen)| {
                Model::<S>::test_sequential(config.clone(), phases, steps, seen);
                Ok(())
            },
        )
        .unwrap_or_else(|error| panic!("{}: {error}", S::NAME));
}
