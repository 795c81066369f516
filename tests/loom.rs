//! Loom models of the recorder's own code, scc's loom build included, and
//! bite tests that run the same models against known-bad protocols.
//!
//! Every model is one generic function over [`Protocol`]: the `#[test]`s at
//! the bottom run it on the recorder, where every interleaving within the
//! preemption bound must pass, and on the protocols of
//! `tests/common/protocols.rs`, where loom must report the violation.
//!
//! Run with `.ci/loom.sh`, or `RUSTFLAGS="--cfg loom -C debug-assertions" cargo test --release --test loom`.
//! Without `--cfg loom` this file compiles to nothing (scc's loom build
//! panics outside a model, so a plain `cargo test` must not build it);
//! `.ci/loom.sh` counts the tests and explorations that ran, so an empty run
//! cannot pass.
#![cfg(loom)]

#[path = "common/loom_blocking.rs"]
mod loom_blocking;
#[path = "common/loom_harness.rs"]
mod loom_harness;
#[path = "common/mutants.rs"]
mod mutants;
#[path = "common/protocols.rs"]
mod protocols;

use async_tasks_recorder::spec::RevokeRefusal;
use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
use async_tasks_recorder_harness::support::{TaskPanic, poll_once, quiet_task_panics, task_panic};
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use loom::thread;
use loom_blocking::{Held, block_on};
use loom_harness::{Trace, expect_violation, explore, violation};
use mutants::{FailedRevokeRemoves, Faithful, LostWakeup, SplitLaunch, UnlockedFailedIndex};
use protocols::{AllSet202, Id, KeepsWakers, Protocol, ThreeSets};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

type Recorder = AsyncTasksRecorder<Id>;

/// What `Protocol::launch_block` answers: the task's output, or the refusal.
type Launched = Result<Result<(), ()>, TaskState>;

/// What `Protocol::revoke_block` answers: the revoke's output, or the refusal.
type Revoked = Result<Result<(), ()>, RevokeRefusal>;

/// The id every model works on.
const ID: Id = 1;

/// The preemption bound of two-thread models: one more than the usual 2,
/// since every two-thread model explores its bound-3 space in under 40 s.
/// `LOOM_MAX_PREEMPTIONS` overrides it, and [`BOUND_3_THREADS`], for deeper
/// local runs.
const BOUND: usize = 3;

/// The preemption bound of three-thread models. An operation on scc under
/// loom is dozens of atomic steps, so a third thread at bound 2 costs
/// hundreds of thousands to millions of interleavings (1 to over 5 minutes)
/// per model. Each three-thread model has a two-thread twin at [`BOUND`].
const BOUND_3_THREADS: usize = 1;

/// The bound of the bite tests: each violation needs at most two preemptions.
const BITE_BOUND: usize = 2;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The state a task's output leads to.
fn state_after(output: Result<(), ()>) -> TaskState {
    match output {
        Ok(()) => TaskState::Success,
        Err(()) => TaskState::Failed,
    }
}

/// Launches `task` on `id` and runs it in place, noting when the call begins
/// and what it answers.
fn launch<P, F>(protocol: &P, trace: &Trace, thread: &str, id: Id, task: F) -> Launched
where
    P: Protocol,
    F: Future<Output = Result<(), ()>> + Send,
{
    trace.note(thread, format_args!("launch {id} begins"));
    let launched = block_on(protocol.launch_block(id, task));
    trace.note(thread, format_args!("launch {id} -> {launched:?}"));
    launched
}

/// Revokes `id` with `compensation`, noting when the call begins and what it
/// answers.
fn revoke<P, F>(protocol: &P, trace: &Trace, thread: &str, id: Id, compensation: F) -> Revoked
where
    P: Protocol,
    F: Future<Output = Result<(), ()>> + Send,
{
    trace.note(thread, format_args!("revoke {id} begins"));
    let revoked = block_on(protocol.revoke_block(id, compensation));
    trace.note(thread, format_args!("revoke {id} -> {revoked:?}"));
    revoked
}

/// Queries `id`, noting when the call begins and what it answers.
fn query<P: Protocol>(protocol: &P, trace: &Trace, thread: &str, id: Id) -> TaskState {
    trace.note(thread, format_args!("query {id} begins"));
    let state = protocol.query(id);
    trace.note(thread, format_args!("query {id} -> {state:?}"));
    state
}

/// Waits on `id`, noting when the call begins and what it answers.
fn wait<P: Protocol>(protocol: &P, trace: &Trace, thread: &str, id: Id) -> TaskState {
    trace.note(thread, format_args!("wait {id} begins"));
    let state = block_on(protocol.wait(id));
    trace.note(thread, format_args!("wait {id} -> {state:?}"));
    state
}

/// A task that is pending on its first poll and ends with `output` on the
/// next, so a model can hold an id `Working` and finish it from another thread.
struct YieldOnce {
    output: Result<(), ()>,
    yielded: bool,
}

impl YieldOnce {
    fn new(output: Result<(), ()>) -> Self {
        YieldOnce {
            output,
            yielded: false,
        }
    }
}

impl Future for YieldOnce {
    type Output = Result<(), ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.yielded {
            return Poll::Ready(this.output);
        }
        this.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A launch of `task` on `id` that owns its protocol handle, so that it can
/// start in one thread and finish in another.
fn owned_launch<P, F>(
    protocol: &P,
    id: Id,
    task: F,
) -> Pin<Box<impl Future<Output = Launched> + use<P, F>>>
where
    P: Protocol,
    F: Future<Output = Result<(), ()>> + Send + 'static,
{
    let protocol = protocol.clone();
    Box::pin(async move { protocol.launch_block(id, task).await })
}

/// Checks that an observer's reads of one id walk forward along `timeline`,
/// the only order of states the spec allows for the model's operations
/// (skipping states is fine: reads are samples).
fn check_reads_follow(trace: &Trace, name: &str, reads: &[TaskState], timeline: &[TaskState]) {
    let mut at = 0;
    for (n, &read) in reads.iter().enumerate() {
        match timeline[at..].iter().position(|&state| state == read) {
            Some(ahead) => at += ahead,
            None if n == 0 => violation(
                trace,
                format_args!("{name}: an observer read {read:?}, never a state of {timeline:?}"),
            ),
            None => violation(
                trace,
                format_args!(
                    "{name}: an observer read {:?}, then {read:?}: against the spec's order {timeline:?}",
                    reads[n - 1]
                ),
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// Model 1: concurrent launches of one id
// ---------------------------------------------------------------------------

/// `launchers` threads launch one id with tasks that succeed: exactly one
/// launch is accepted, the others are refused with `Working` or `Success`.
fn concurrent_launches<P: Protocol + Default>(trace: &Trace, launchers: usize) {
    let protocol = P::default();
    let others: Vec<_> = (1..launchers)
        .map(|n| {
            let (protocol, trace) = (protocol.clone(), trace.clone());
            thread::spawn(move || launch(&protocol, &trace, &format!("L{n}"), ID, async { Ok(()) }))
        })
        .collect();
    let mut results = vec![launch(&protocol, trace, "L0", ID, async { Ok(()) })];
    results.extend(others.into_iter().map(|other| other.join().unwrap()));

    let winners = results.iter().filter(|launched| launched.is_ok()).count();
    if winners != 1 {
        violation(
            trace,
            format_args!("{}: {winners} of {launchers} launches won", P::NAME),
        );
    }
    for launched in &results {
        if !matches!(
            launched,
            Ok(Ok(())) | Err(TaskState::Working | TaskState::Success)
        ) {
            violation(
                trace,
                format_args!("{}: a launch answered {launched:?}", P::NAME),
            );
        }
    }
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::Success {
        violation(
            trace,
            format_args!("{}: after every launch, the id reads {last:?}", P::NAME),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 2: launch ‖ finish ‖ query
// ---------------------------------------------------------------------------

/// One thread launches a task ending with `output` (launch and finish are two
/// steps, with the task between them) while an observer queries twice.
/// - The observer's reads follow NotFound → Working → the final state: never
///   back to `NotFound`, and only `Success` once `Success` was read.
/// - Once the launch is accepted (inside the task, and after it returned),
///   no query reads `NotFound`.
fn launch_finish_query<P: Protocol + Default>(trace: &Trace, output: Result<(), ()>) {
    let protocol = P::default();
    let observer = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || [0, 1].map(|_| query(&protocol, &trace, "O", ID)))
    };
    let accepted_read = Arc::new(std::sync::Mutex::new(None));
    let launched = {
        let (protocol_in_task, trace_in_task) = (protocol.clone(), trace.clone());
        let accepted_read = accepted_read.clone();
        launch(&protocol, trace, "L", ID, async move {
            let read = query(&protocol_in_task, &trace_in_task, "L (task)", ID);
            *accepted_read.lock().unwrap() = Some(read);
            output
        })
    };
    let after_return = query(&protocol, trace, "L", ID);
    let reads = observer.join().unwrap();

    let name = P::NAME;
    let last = state_after(output);
    check_reads_follow(
        trace,
        name,
        &reads,
        &[TaskState::NotFound, TaskState::Working, last],
    );
    if launched != Ok(output) {
        violation(
            trace,
            format_args!("{name}: the only launch answered {launched:?}"),
        );
    }
    let in_task = accepted_read.lock().unwrap().take();
    if in_task != Some(TaskState::Working) {
        violation(
            trace,
            format_args!("{name}: the accepted launch's task read {in_task:?}, not Working"),
        );
    }
    if after_return != last {
        violation(
            trace,
            format_args!("{name}: after the launch returned, the id reads {after_return:?}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 3: redundant launch on a Success id ‖ query
// ---------------------------------------------------------------------------

/// A launch on an id that already succeeded, while an observer queries: the
/// launch is refused with `Success` and every read, then and forever, is
/// `Success`.
fn redundant_launch<P: Protocol + Default>(trace: &Trace) {
    let protocol = P::default();
    let name = P::NAME;
    let first = launch(&protocol, trace, "setup", ID, async { Ok(()) });
    if first != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{name}: the first launch answered {first:?}"),
        );
    }
    let redundant = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || launch(&protocol, &trace, "L", ID, async { Ok(()) }))
    };
    let reads = [0, 1].map(|_| query(&protocol, trace, "O", ID));
    let redundant = redundant.join().unwrap();

    // First the state once nothing runs any more: no later step can change it.
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::Success {
        violation(
            trace,
            format_args!(
                "{name}: the id reads {last:?} forever after it succeeded: \
                 every operation has returned"
            ),
        );
    }
    if redundant != Err(TaskState::Success) {
        violation(
            trace,
            format_args!("{name}: a launch on a Success id answered {redundant:?}"),
        );
    }
    if let Some(read) = reads.iter().find(|&&read| read != TaskState::Success) {
        violation(
            trace,
            format_args!("{name}: the id read {read:?} after it succeeded"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 4: an abandoned launch ‖ a retrying launch
// ---------------------------------------------------------------------------

/// How the first launch's task ends without returning.
#[derive(Clone, Copy, Debug)]
enum Abandon {
    /// The launch future is polled once, its task pending, and dropped.
    Cancel,
    /// The task panics; the panic is caught around the launch.
    Panic,
}

/// One launch is abandoned (`how`) while another thread launches the same id
/// and, refused with `Working`, waits and retries. The abandoned attempt
/// ends `Failed` through the drop guard, so the retry is accepted and the id
/// ends `Success`: never wedged in `Working`.
fn abandoned_launch_and_retry<P: Protocol + Default>(trace: &Trace, how: Abandon) {
    let protocol = P::default();
    let name = P::NAME;
    let retrier = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || {
            // Two attempts always suffice: one abandoned launch can hold the
            // id only once. The third catches a wedge without looping forever.
            for _ in 0..3 {
                match launch(&protocol, &trace, "R", ID, async { Ok(()) }) {
                    Ok(Ok(())) => return,
                    Err(TaskState::Working) => {
                        wait(&protocol, &trace, "R", ID);
                    }
                    other => violation(
                        &trace,
                        format_args!("{name}: a retrying launch answered {other:?}"),
                    ),
                }
            }
            violation(
                &trace,
                format_args!("{name}: a retrying launch was refused three times"),
            );
        })
    };
    match how {
        Abandon::Cancel => {
            let mut launching = owned_launch(&protocol, ID, std::future::pending());
            match poll_once(launching.as_mut()) {
                Poll::Pending => trace.note("A", "launch accepted, task pending; dropped"),
                Poll::Ready(refused) => trace.note("A", format_args!("launch -> {refused:?}")),
            }
            drop(launching);
        }
        Abandon::Panic => {
            // The expected panics of every interleaving stay off stderr.
            quiet_task_panics();
            let launched = catch_unwind(AssertUnwindSafe(|| {
                block_on(protocol.launch_block(ID, async { task_panic() }))
            }));
            match launched {
                Ok(refused) => trace.note("A", format_args!("launch -> {refused:?}")),
                Err(payload) if payload.is::<TaskPanic>() => {
                    trace.note("A", "launch accepted, task panicked")
                }
                Err(payload) => resume_unwind(payload),
            }
        }
    }
    retrier.join().unwrap();
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::Success {
        violation(
            trace,
            format_args!(
                "{name}: after an abandoned launch ({how:?}) and a retry, the id reads {last:?}"
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 5: revoke ‖ launch ‖ query, and revoke ‖ revoke
// ---------------------------------------------------------------------------

/// Where model 5's launch runs.
#[derive(Clone, Copy, Debug)]
enum Launcher {
    /// In a thread of its own, beside the revoker and the observer.
    OwnThread,
    /// In the observer's thread, between its two queries.
    Observer,
}

/// A succeeded id is revoked while another thread launches it and an
/// observer queries.
/// - The revoke, the only one, is accepted.
/// - The launch is refused with `Success` unless it comes after the revoke
///   completed; an accepted launch's task runs only after the revoke's
///   compensation ran: one success per epoch.
/// - Reads follow Success → NotFound → Working → Success.
fn revoke_launch_query<P: Protocol + Default>(trace: &Trace, launcher: Launcher) {
    let protocol = P::default();
    let name = P::NAME;
    let first = launch(&protocol, trace, "setup", ID, async { Ok(()) });
    if first != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{name}: the first launch answered {first:?}"),
        );
    }
    let compensated = Arc::new(AtomicBool::new(false));
    let revoker = {
        let (protocol, trace, compensated) = (protocol.clone(), trace.clone(), compensated.clone());
        thread::spawn(move || {
            revoke(&protocol, &trace, "V", ID, async move {
                compensated.store(true, Release);
                Ok(())
            })
        })
    };
    let early_success = Arc::new(AtomicBool::new(false));
    let launch_once = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        let (compensated, early_success) = (compensated.clone(), early_success.clone());
        move || {
            launch(&protocol, &trace, "L", ID, async move {
                if !compensated.load(Acquire) {
                    early_success.store(true, Release);
                }
                Ok(())
            })
        }
    };
    let (reads, launched) = match launcher {
        Launcher::OwnThread => {
            let launching = thread::spawn(launch_once);
            let reads = [0, 1].map(|_| query(&protocol, trace, "O", ID));
            (reads, launching.join().unwrap())
        }
        Launcher::Observer => {
            let before = query(&protocol, trace, "O", ID);
            let launched = launch_once();
            ([before, query(&protocol, trace, "O", ID)], launched)
        }
    };
    let revoked = revoker.join().unwrap();

    if revoked != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{name}: the only revoke of a Success id answered {revoked:?}"),
        );
    }
    if !matches!(launched, Ok(Ok(())) | Err(TaskState::Success)) {
        violation(
            trace,
            format_args!("{name}: a launch during a revoke answered {launched:?}, not Success"),
        );
    }
    if early_success.load(Acquire) {
        violation(
            trace,
            format_args!(
                "{name}: a launch ran its task before the revoke's compensation: \
                 two successes in one epoch"
            ),
        );
    }
    check_reads_follow(
        trace,
        name,
        &reads,
        &[
            TaskState::Success,
            TaskState::NotFound,
            TaskState::Working,
            TaskState::Success,
        ],
    );
    let expected = if launched.is_ok() {
        TaskState::Success
    } else {
        TaskState::NotFound
    };
    let last = query(&protocol, trace, "main", ID);
    if last != expected {
        violation(
            trace,
            format_args!(
                "{name}: the id ends {last:?} after revoke {revoked:?}, launch {launched:?}"
            ),
        );
    }
}

/// Two threads revoke one succeeded id: exactly one revoke wins and runs its
/// compensation; the other is refused; the id ends `NotFound`.
fn concurrent_revokes<P: Protocol + Default>(trace: &Trace) {
    let protocol = P::default();
    let name = P::NAME;
    let first = launch(&protocol, trace, "setup", ID, async { Ok(()) });
    if first != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{name}: the first launch answered {first:?}"),
        );
    }
    let compensations = Arc::new(AtomicUsize::new(0));
    let counted_revoke =
        |protocol: &P, trace: &Trace, thread: &str, compensations: Arc<AtomicUsize>| {
            revoke(protocol, trace, thread, ID, async move {
                compensations.fetch_add(1, AcqRel);
                Ok(())
            })
        };
    let other = {
        let (protocol, trace, compensations) =
            (protocol.clone(), trace.clone(), compensations.clone());
        thread::spawn(move || counted_revoke(&protocol, &trace, "V1", compensations))
    };
    let results = [
        counted_revoke(&protocol, trace, "V0", compensations.clone()),
        other.join().unwrap(),
    ];

    let winners = results
        .iter()
        .filter(|&&revoked| revoked == Ok(Ok(())))
        .count();
    let ran = compensations.load(Acquire);
    if winners != 1 || ran != 1 {
        violation(
            trace,
            format_args!("{name}: {winners} of 2 revokes won and {ran} compensations ran"),
        );
    }
    if let Some(refused) = results.iter().find(|revoked| {
        !matches!(
            revoked,
            Ok(Ok(())) | Err(RevokeRefusal::Revoking | RevokeRefusal::NotSuccess)
        )
    }) {
        violation(
            trace,
            format_args!("{name}: a losing revoke answered {refused:?}"),
        );
    }
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::NotFound {
        violation(
            trace,
            format_args!("{name}: after a revoke won, the id reads {last:?}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 6: wait ‖ finish
// ---------------------------------------------------------------------------

/// An id is `Working`; one thread finishes its task with `output` while
/// `waiters` threads (1 or 2, the main thread first) wait on it. Every waiter
/// wakes with the final state (a lost wake-up leaves one asleep: loom reports
/// the deadlock). Afterwards, a wait on the settled id and on a never-launched
/// id is ready at the first poll.
fn wait_and_finish<P: Protocol + Default>(trace: &Trace, output: Result<(), ()>, waiters: usize) {
    // Held: a lost wake-up makes loom panic in a waiting thread (see loom_blocking).
    let protocol = Held::new(P::default());
    let name = P::NAME;
    let last = state_after(output);
    let mut launching = owned_launch(&*protocol, ID, YieldOnce::new(output));
    if poll_once(launching.as_mut()).is_ready() {
        violation(
            trace,
            format_args!("{name}: a launch of a fresh id did not run its task"),
        );
    }
    trace.note("setup", "launch accepted, task pending");
    let finisher = {
        let trace = trace.clone();
        thread::spawn(move || {
            trace.note("F", "resumes the task");
            let launched = block_on(launching);
            trace.note("F", format_args!("task ended, launch -> {launched:?}"));
            launched
        })
    };
    let others: Vec<_> = (1..waiters)
        .map(|n| {
            let (protocol, trace) = (Held::new(protocol.clone()), trace.clone());
            thread::spawn(move || wait(&*protocol, &trace, &format!("W{n}"), ID))
        })
        .collect();
    let mut woke = vec![wait(&*protocol, trace, "W0", ID)];
    woke.extend(others.into_iter().map(|other| other.join().unwrap()));
    let launched = finisher.join().unwrap();

    if launched != Ok(output) {
        violation(
            trace,
            format_args!("{name}: the finished launch answered {launched:?}"),
        );
    }
    if let Some(state) = woke.iter().find(|&&state| state != last) {
        violation(
            trace,
            format_args!("{name}: a waiter woke with {state:?}, not the final {last:?}"),
        );
    }
    for (id, expected) in [(ID, last), (ID + 1, TaskState::NotFound)] {
        let polled = poll_once(pin!(protocol.wait(id)));
        if polled != Poll::Ready(expected) {
            violation(
                trace,
                format_args!("{name}: a wait on a {expected:?} id polled {polled:?}, not ready"),
            );
        }
    }
}

/// A waker that does nothing; its `Arc` counts the clones alive.
struct Counted;

impl std::task::Wake for Counted {
    fn wake(self: std::sync::Arc<Self>) {}
}

/// An id is `Working`; one thread finishes its task while the main thread
/// polls a wait once (registering a counted waker), drops it, and then waits
/// for the end.
/// - Right after the drop, the waker is still held only if the finish has
///   taken it to wake it, so only once the id no longer reads `Working`.
/// - Once the finish returned, no clone of it is held.
/// - The second wait wakes with `Success` (a lost wake-up: loom's deadlock).
fn cancelled_wait_and_finish<P: Protocol + Default>(trace: &Trace) {
    let protocol = Held::new(P::default());
    let name = P::NAME;
    let mut launching = owned_launch(&*protocol, ID, YieldOnce::new(Ok(())));
    if poll_once(launching.as_mut()).is_ready() {
        violation(
            trace,
            format_args!("{name}: a launch of a fresh id did not run its task"),
        );
    }
    trace.note("setup", "launch accepted, task pending");
    let finisher = {
        let trace = trace.clone();
        thread::spawn(move || {
            trace.note("F", "resumes the task");
            let launched = block_on(launching);
            trace.note("F", format_args!("task ended, launch -> {launched:?}"));
            launched
        })
    };
    let counted = std::sync::Arc::new(Counted);
    let waker = Waker::from(counted.clone());
    // Clones of the waker beyond `counted` and `waker`.
    let held = || std::sync::Arc::strong_count(&counted) - 2;
    {
        let mut cancelled = pin!(protocol.wait(ID));
        let polled = cancelled.as_mut().poll(&mut Context::from_waker(&waker));
        trace.note("W", format_args!("wait polled once -> {polled:?}, dropped"));
    }
    let after_drop = held();
    let leaked = after_drop > 0 && query(&*protocol, trace, "W", ID) == TaskState::Working;
    let woke = wait(&*protocol, trace, "W", ID);
    // Violations are raised once every thread has ended: unwinding past a
    // live loom thread would abort the test process.
    let launched = finisher.join().unwrap();
    if leaked {
        violation(
            trace,
            format_args!("{name}: a dropped wait left {after_drop} waker(s) with the Working id"),
        );
    }
    if launched != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{name}: the finished launch answered {launched:?}"),
        );
    }
    if woke != TaskState::Success {
        violation(
            trace,
            format_args!("{name}: the wait after a cancelled one woke with {woke:?}"),
        );
    }
    let at_end = held();
    if at_end != 0 {
        violation(
            trace,
            format_args!("{name}: after the finish, {at_end} waker(s) of a dropped wait are held"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 7: listing ‖ transitions
// ---------------------------------------------------------------------------

/// One step of an id's path, bracketed by two flags: `may_start` is set
/// before the step can take effect, `done` after it certainly has.
struct Step {
    may_start: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

/// An id's states in order, and the steps between them.
struct Path {
    id: Id,
    states: Vec<TaskState>,
    steps: Vec<Step>,
}

impl Path {
    /// The index of the earliest state the id can be in from now on.
    fn earliest(&self) -> usize {
        self.steps
            .iter()
            .take_while(|step| step.done.load(Acquire))
            .count()
    }

    /// The index of the latest state the id can have reached by now.
    fn latest(&self) -> usize {
        self.steps
            .iter()
            .take_while(|step| step.may_start.load(Acquire))
            .count()
    }
}

fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// Ids in Success, Working and Failed; while a mover thread finishes the
/// `Working` one (Working → Success) and relaunches the `Failed` one
/// (Failed → Working → Success), the main thread lists each state. For every
/// listing and id: listed only in a state the id was in at some moment during
/// the listing, and listed whenever it stayed in the listed state throughout.
fn listing_during_transitions<P: Protocol + Default>(trace: &Trace) {
    let protocol = P::default();
    let name = P::NAME;
    let (stays, finishes, relaunches) = (1, 2, 3);
    let setup = [
        launch(&protocol, trace, "setup", stays, async { Ok(()) }),
        launch(&protocol, trace, "setup", relaunches, async { Err(()) }),
    ];
    if setup != [Ok(Ok(())), Ok(Err(()))] {
        violation(
            trace,
            format_args!("{name}: the setup launches answered {setup:?}"),
        );
    }
    let mut finishing = owned_launch(&protocol, finishes, YieldOnce::new(Ok(())));
    if poll_once(finishing.as_mut()).is_ready() {
        violation(
            trace,
            format_args!("{name}: a launch of a fresh id did not run its task"),
        );
    }

    let (finish_starts, finished) = (flag(), flag());
    let (relaunch_starts, relaunch_runs, relaunched) = (flag(), flag(), flag());
    let paths = [
        Path {
            id: stays,
            states: vec![TaskState::Success],
            steps: vec![],
        },
        Path {
            id: finishes,
            states: vec![TaskState::Working, TaskState::Success],
            steps: vec![Step {
                may_start: finish_starts.clone(),
                done: finished.clone(),
            }],
        },
        Path {
            id: relaunches,
            states: vec![TaskState::Failed, TaskState::Working, TaskState::Success],
            steps: vec![
                Step {
                    may_start: relaunch_starts.clone(),
                    done: relaunch_runs.clone(),
                },
                // The finish follows the task, which sets `relaunch_runs` last.
                Step {
                    may_start: relaunch_runs.clone(),
                    done: relaunched.clone(),
                },
            ],
        },
    ];
    let mover = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || {
            finish_starts.store(true, Release);
            trace.note("M", format_args!("resumes task {finishes}"));
            let finish = block_on(finishing);
            trace.note(
                "M",
                format_args!("task {finishes} ended, launch -> {finish:?}"),
            );
            finished.store(true, Release);
            relaunch_starts.store(true, Release);
            let relaunch = launch(&protocol, &trace, "M", relaunches, async move {
                relaunch_runs.store(true, Release);
                Ok(())
            });
            relaunched.store(true, Release);
            [finish, relaunch]
        })
    };
    for listed_state in [TaskState::Success, TaskState::Working, TaskState::Failed] {
        let earliest = paths.each_ref().map(Path::earliest);
        let listed = protocol.list(listed_state);
        trace.note("main", format_args!("list {listed_state:?} -> {listed:?}"));
        let latest = paths.each_ref().map(Path::latest);
        for (n, path) in paths.iter().enumerate() {
            let during = &path.states[earliest[n]..=latest[n]];
            let shown = listed.iter().filter(|&&id| id == path.id).count();
            if shown > 1 || (shown == 1 && !during.contains(&listed_state)) {
                violation(
                    trace,
                    format_args!(
                        "{name}: a listing of {listed_state:?} showed id {} {shown} time(s); \
                         during the listing it was only {during:?}",
                        path.id
                    ),
                );
            }
            if shown == 0 && during == [listed_state] {
                violation(
                    trace,
                    format_args!(
                        "{name}: a listing of {listed_state:?} missed id {}, which stayed \
                         {listed_state:?} throughout",
                        path.id
                    ),
                );
            }
        }
        if let Some(stranger) = listed.iter().find(|id| !paths.iter().any(|p| p.id == **id)) {
            violation(
                trace,
                format_args!("{name}: a listing showed id {stranger}, never launched"),
            );
        }
    }
    let launched = mover.join().unwrap();
    if launched != [Ok(Ok(())), Ok(Ok(()))] {
        violation(
            trace,
            format_args!("{name}: the finish and the relaunch answered {launched:?}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 8: failed listing ‖ launch-fail-relaunch
// ---------------------------------------------------------------------------

/// Checks one listing of `Failed` against the ids' paths: each id listed at
/// most once, only if it was `Failed` at some moment during the listing
/// (`earliest..=latest`), and always if it was `Failed` throughout.
fn check_failed_listing(
    trace: &Trace,
    name: &str,
    listed: &[Id],
    paths: &[Path],
    earliest: &[usize],
    latest: &[usize],
) {
    for (n, path) in paths.iter().enumerate() {
        let during = &path.states[earliest[n]..=latest[n]];
        let shown = listed.iter().filter(|&&id| id == path.id).count();
        if shown > 1 || (shown == 1 && !during.contains(&TaskState::Failed)) {
            violation(
                trace,
                format_args!(
                    "{name}: a listing of Failed showed id {} {shown} time(s); \
                     during the listing it was only {during:?}",
                    path.id
                ),
            );
        }
        if shown == 0 && during == [TaskState::Failed] {
            violation(
                trace,
                format_args!(
                    "{name}: a listing of Failed missed id {}, which stayed Failed throughout",
                    path.id
                ),
            );
        }
    }
    if let Some(stranger) = listed.iter().find(|id| !paths.iter().any(|p| p.id == **id)) {
        violation(
            trace,
            format_args!("{name}: a listing of Failed showed id {stranger}, never launched"),
        );
    }
}

/// The failed-id index under transitions into and out of `Failed`. One id
/// stays `Failed`; another is `Working`. A mover thread finishes it with
/// `Err` (Working → Failed), then relaunches it with a task that fails again
/// (Failed → Working → Failed). Meanwhile the main thread lists `Failed`
/// (weakly consistent, each id once), then relaunches the id with a task that
/// succeeds, waiting and retrying while it is `Working`, which races its
/// relaunch against the mover's finish and relaunch. Once every operation
/// has returned, `Failed` lists exactly the ids that read `Failed`.
fn failed_listing_during_relaunches<P: Protocol + Default>(trace: &Trace) {
    let protocol = P::default();
    let name = P::NAME;
    let (stays, cycles) = (1, 2);
    let setup = launch(&protocol, trace, "setup", stays, async { Err(()) });
    if setup != Ok(Err(())) {
        violation(
            trace,
            format_args!("{name}: the setup launch answered {setup:?}"),
        );
    }
    let mut finishing = owned_launch(&protocol, cycles, YieldOnce::new(Err(())));
    if poll_once(finishing.as_mut()).is_ready() {
        violation(
            trace,
            format_args!("{name}: a launch of a fresh id did not run its task"),
        );
    }

    let (finish_starts, finished) = (flag(), flag());
    let (relaunch_starts, relaunch_runs, relaunched) = (flag(), flag(), flag());
    let paths = [
        Path {
            id: stays,
            states: vec![TaskState::Failed],
            steps: vec![],
        },
        Path {
            id: cycles,
            states: vec![
                TaskState::Working,
                TaskState::Failed,
                TaskState::Working,
                TaskState::Failed,
            ],
            steps: vec![
                Step {
                    may_start: finish_starts.clone(),
                    done: finished.clone(),
                },
                Step {
                    may_start: relaunch_starts.clone(),
                    done: relaunch_runs.clone(),
                },
                Step {
                    may_start: relaunch_runs.clone(),
                    done: relaunched.clone(),
                },
            ],
        },
    ];
    let mover = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || {
            finish_starts.store(true, Release);
            trace.note("M", format_args!("resumes task {cycles}"));
            let finish = block_on(finishing);
            trace.note(
                "M",
                format_args!("task {cycles} ended, launch -> {finish:?}"),
            );
            finished.store(true, Release);
            relaunch_starts.store(true, Release);
            let relaunch = launch(&protocol, &trace, "M", cycles, async move {
                relaunch_runs.store(true, Release);
                Err(())
            });
            relaunched.store(true, Release);
            [finish, relaunch]
        })
    };

    // The listing runs before the main thread's own relaunch, so the paths
    // above are every step that can overlap it.
    let earliest = paths.each_ref().map(Path::earliest);
    let listed = protocol.list(TaskState::Failed);
    trace.note("main", format_args!("list Failed -> {listed:?}"));
    let latest = paths.each_ref().map(Path::latest);
    check_failed_listing(trace, name, &listed, &paths, &earliest, &latest);

    // Refused with `Working` at most twice: once for the first attempt, once
    // for the mover's relaunch. A fourth try would mean a wedged id.
    let mut retried = None;
    for _ in 0..4 {
        match launch(&protocol, trace, "main", cycles, async { Ok(()) }) {
            Ok(Ok(())) => {
                retried = Some(());
                break;
            }
            Err(TaskState::Working) => {
                wait(&protocol, trace, "main", cycles);
            }
            other => violation(
                trace,
                format_args!("{name}: the main thread's relaunch answered {other:?}"),
            ),
        }
    }
    if retried.is_none() {
        violation(
            trace,
            format_args!("{name}: a relaunch of id {cycles} was refused four times"),
        );
    }
    let [finish, relaunch] = mover.join().unwrap();
    if finish != Ok(Err(()))
        || !matches!(
            relaunch,
            Ok(Err(())) | Err(TaskState::Working | TaskState::Success)
        )
    {
        violation(
            trace,
            format_args!(
                "{name}: the mover's finish and relaunch answered {finish:?}, {relaunch:?}"
            ),
        );
    }

    // Quiescent: the listing must agree with the queries exactly.
    let mut listed = protocol.list(TaskState::Failed);
    listed.sort_unstable();
    trace.note("main", format_args!("at rest, list Failed -> {listed:?}"));
    let queried: Vec<Id> = [stays, cycles]
        .into_iter()
        .filter(|&id| query(&protocol, trace, "main", id) == TaskState::Failed)
        .collect();
    if listed != queried {
        violation(
            trace,
            format_args!(
                "{name}: once every operation returned, Failed lists {listed:?} \
                 but the queries say {queried:?}"
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// The recorder: every interleaving within the bound passes
// ---------------------------------------------------------------------------

#[test]
fn one_of_two_concurrent_launches_wins() {
    explore("1 two launches of one id", BOUND, |trace| {
        concurrent_launches::<Recorder>(trace, 2)
    });
}

#[test]
fn one_of_three_concurrent_launches_wins() {
    explore("1 three launches of one id", BOUND_3_THREADS, |trace| {
        concurrent_launches::<Recorder>(trace, 3)
    });
}

#[test]
fn queries_follow_a_launch_that_succeeds() {
    explore("2 launch-finish(Ok)-query", BOUND, |trace| {
        launch_finish_query::<Recorder>(trace, Ok(()))
    });
}

#[test]
fn queries_follow_a_launch_that_fails() {
    explore("2 launch-finish(Err)-query", BOUND, |trace| {
        launch_finish_query::<Recorder>(trace, Err(()))
    });
}

#[test]
fn a_redundant_launch_leaves_success_alone() {
    explore(
        "3 redundant launch-query",
        BOUND,
        redundant_launch::<Recorder>,
    );
}

#[test]
fn a_cancelled_launch_does_not_wedge_a_retry() {
    explore("4 cancelled launch-retry", BOUND, |trace| {
        abandoned_launch_and_retry::<Recorder>(trace, Abandon::Cancel)
    });
}

#[test]
fn a_panicking_task_does_not_wedge_a_retry() {
    explore("4 panicking task-retry", BOUND, |trace| {
        abandoned_launch_and_retry::<Recorder>(trace, Abandon::Panic)
    });
}

#[test]
fn a_revoke_and_a_launch_keep_one_success_per_epoch() {
    explore("5 revoke-(launch, query)", BOUND, |trace| {
        revoke_launch_query::<Recorder>(trace, Launcher::Observer)
    });
}

#[test]
fn a_revoke_a_launch_and_a_query_keep_one_success_per_epoch() {
    explore("5 revoke-launch-query", BOUND_3_THREADS, |trace| {
        revoke_launch_query::<Recorder>(trace, Launcher::OwnThread)
    });
}

#[test]
fn one_of_two_concurrent_revokes_wins() {
    explore("5 revoke-revoke", BOUND, concurrent_revokes::<Recorder>);
}

#[test]
fn every_waiter_wakes_with_success() {
    explore("6 wait-finish(Ok)", BOUND, |trace| {
        wait_and_finish::<Recorder>(trace, Ok(()), 1)
    });
}

#[test]
fn both_of_two_waiters_wake_with_success() {
    explore("6 two waits-finish(Ok)", BOUND_3_THREADS, |trace| {
        wait_and_finish::<Recorder>(trace, Ok(()), 2)
    });
}

#[test]
fn every_waiter_wakes_with_failure() {
    explore("6 wait-finish(Err)", BOUND, |trace| {
        wait_and_finish::<Recorder>(trace, Err(()), 1)
    });
}

#[test]
fn a_wait_cancelled_during_the_finish_leaves_no_waker() {
    explore(
        "6 cancelled wait-finish(Ok)",
        BOUND,
        cancelled_wait_and_finish::<Recorder>,
    );
}

#[test]
fn a_listing_during_transitions_is_weakly_consistent() {
    explore(
        "7 listing-transitions",
        BOUND,
        listing_during_transitions::<Recorder>,
    );
}

#[test]
fn a_failed_listing_during_relaunches_is_weakly_consistent() {
    explore(
        "9 failed listing-relaunches",
        BOUND,
        failed_listing_during_relaunches::<Recorder>,
    );
}

// ---------------------------------------------------------------------------
// The checker bites: the same models catch the known-bad protocols
// ---------------------------------------------------------------------------

#[test]
fn model_2_catches_0_2_2_reading_working_then_not_found() {
    let found = expect_violation("2 launch-finish(Ok)-query on 0.2.2", BITE_BOUND, |trace| {
        launch_finish_query::<ThreeSets>(trace, Ok(()))
    });
    assert!(
        found.contains("an observer read Working, then NotFound"),
        "{found}"
    );
}

#[test]
fn model_3_catches_2_0_2_reading_working_forever_after_success() {
    let found = expect_violation(
        "3 redundant launch-query on 2.0.2",
        BITE_BOUND,
        redundant_launch::<AllSet202>,
    );
    assert!(
        found.contains("reads Working forever after it succeeded"),
        "{found}"
    );
}

#[test]
fn model_6_catches_the_lost_wake_up_of_the_wait_mutant() {
    let found = expect_violation(
        "6 wait-finish(Ok) on the wait mutant",
        BITE_BOUND,
        |trace| wait_and_finish::<LostWakeup>(trace, Ok(()), 1),
    );
    assert!(found.starts_with("deadlock"), "{found}");
}

#[test]
fn model_6_catches_the_wakers_kept_by_dropped_waits() {
    let found = expect_violation(
        "6 cancelled wait-finish(Ok) on the waker-keeping wait",
        BITE_BOUND,
        cancelled_wait_and_finish::<KeepsWakers>,
    );
    assert!(
        found.contains("a dropped wait left 1 waker(s) with the Working id"),
        "{found}"
    );
}

#[test]
fn model_1_catches_two_winners_of_the_split_launch_mutant() {
    let found = expect_violation(
        "1 two launches of one id on the split-launch mutant",
        BITE_BOUND,
        |trace| concurrent_launches::<SplitLaunch>(trace, 2),
    );
    assert!(found.contains("2 of 2 launches won"), "{found}");
}

#[test]
fn model_8_catches_a_success_forgotten_by_the_failed_revoke_removal_mutant() {
    let found = expect_violation(
        "8 failed revoke-listing on the failed revoke removal mutant",
        BITE_BOUND,
        |trace| listing_during_a_revoke::<FailedRevokeRemoves>(trace, Err(())),
    );
    assert!(
        found.contains("the revoke failed, yet a listing of Success"),
        "{found}"
    );
}

// ---------------------------------------------------------------------------
// The mutants' base passes the models that bite its mutants, at their bound,
// so each bite is the seeded defect's and not the base's
// ---------------------------------------------------------------------------

#[test]
fn the_mutants_base_lets_one_of_two_launches_win() {
    explore(
        "1 two launches of one id on the mutants' base",
        BITE_BOUND,
        |trace| concurrent_launches::<Faithful>(trace, 2),
    );
}

#[test]
fn the_mutants_base_wakes_every_waiter() {
    explore(
        "6 wait-finish(Ok) on the mutants' base",
        BITE_BOUND,
        |trace| wait_and_finish::<Faithful>(trace, Ok(()), 1),
    );
}

#[test]
fn the_mutants_base_keeps_listing_a_success_whose_revoke_failed() {
    explore(
        "8 failed revoke-listing on the mutants' base",
        BITE_BOUND,
        |trace| listing_during_a_revoke::<Faithful>(trace, Err(())),
    );
}

// ---------------------------------------------------------------------------
// Model 8: revoke ‖ listing
// ---------------------------------------------------------------------------

/// A succeeded id is revoked, with a compensation that ends with
/// `compensation`, while the main thread lists `Success`.
/// - If the revoke succeeds: a listing that begins after the revoke completed
///   must not show the id; one during the revoke may. Once the revoke
///   returned, the id reads `NotFound` and no listing shows it.
/// - If the compensation fails, the id reads `Success` throughout
///   (`Revoking` reads `Success`), so every listing shows it, and it ends
///   `Success`.
fn listing_during_a_revoke<P: Protocol + Default>(trace: &Trace, compensation: Result<(), ()>) {
    let protocol = P::default();
    let name = P::NAME;
    let first = launch(&protocol, trace, "setup", ID, async { Ok(()) });
    if first != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{name}: the first launch answered {first:?}"),
        );
    }
    let revoked = flag();
    let revoker = {
        let (protocol, trace, revoked) = (protocol.clone(), trace.clone(), revoked.clone());
        thread::spawn(move || {
            let answer = revoke(&protocol, &trace, "V", ID, async move { compensation });
            revoked.store(true, Release);
            answer
        })
    };
    let check = |when: &str| {
        let completed = revoked.load(Acquire);
        let listed = protocol.list(TaskState::Success);
        trace.note("main", format_args!("list Success ({when}) -> {listed:?}"));
        if compensation.is_ok() && completed && listed.contains(&ID) {
            violation(
                trace,
                format_args!(
                    "{name}: after the revoke completed, a listing of Success shows id {ID}"
                ),
            );
        }
        if compensation.is_err() && !listed.contains(&ID) {
            violation(
                trace,
                format_args!(
                    "{name}: the revoke failed, yet a listing of Success ({when}) misses id {ID}"
                ),
            );
        }
        if listed.iter().any(|&id| id != ID) {
            violation(
                trace,
                format_args!("{name}: a listing of Success shows {listed:?}"),
            );
        }
    };
    check("during the revoke");
    let answer = revoker.join().unwrap();
    if answer != Ok(compensation) {
        violation(
            trace,
            format_args!("{name}: the only revoke of a Success id answered {answer:?}"),
        );
    }
    check("after the revoke");
    let last = query(&protocol, trace, "main", ID);
    let expected = if compensation.is_ok() {
        TaskState::NotFound
    } else {
        TaskState::Success
    };
    if last != expected {
        violation(
            trace,
            format_args!("{name}: after the revoke, the id reads {last:?}"),
        );
    }
}

#[test]
fn a_listing_during_a_revoke_is_weakly_consistent() {
    explore("8 revoke-listing", BOUND, |trace| {
        listing_during_a_revoke::<Recorder>(trace, Ok(()))
    });
}

#[test]
fn model_9_catches_a_failed_index_changed_outside_the_entry_lock() {
    let found = expect_violation(
        "9 failed listing-relaunches on the unlocked index",
        BITE_BOUND,
        failed_listing_during_relaunches::<UnlockedFailedIndex>,
    );
    assert!(
        found.contains("once every operation returned, Failed lists [1, 2]"),
        "{found}"
    );
}
