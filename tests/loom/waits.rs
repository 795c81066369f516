//! Loom models of waits: waiters against the finish that wakes them, and a
//! wait dropped during the finish (model 6).

use super::calls::{ID, LaunchAnswer, pending_launch, query, state_after, wait};
use super::loom_blocking::{Held, block_on};
use super::loom_harness::{Trace, violation};
use super::protocols::Protocol;
use async_tasks_recorder::TaskState;
use async_tasks_recorder_harness::support::poll_once;
use loom::thread;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

// ---------------------------------------------------------------------------
// Model 6: wait ‖ finish
// ---------------------------------------------------------------------------

/// The setup of both wait models: `ID` held `Working` by a pending launch
/// ([`pending_launch`]), and the finisher thread that resumes its task,
/// which ends with `output`. The finisher answers what the launch answered.
fn working_with_finisher<P: Protocol>(
    protocol: &P,
    trace: &Trace,
    output: Result<(), ()>,
) -> thread::JoinHandle<LaunchAnswer> {
    let launching = pending_launch(protocol, trace, ID, output);
    trace.note("setup", "launch accepted, task pending");
    let trace = trace.clone();
    thread::spawn(move || {
        trace.note("F", "resumes the task");
        let launched = block_on(launching);
        trace.note("F", format_args!("task ended, launch -> {launched:?}"));
        launched
    })
}

/// An id is `Working`; one thread finishes its task with `output` while
/// `waiters` threads (1 or 2, the main thread first) wait on it. Every waiter
/// wakes with the final state (a lost wake-up leaves one asleep: loom reports
/// the deadlock). Afterwards, a wait on the settled id and on a never-launched
/// id is ready at the first poll.
pub(super) fn wait_and_finish<P: Protocol + Default>(
    trace: &Trace,
    output: Result<(), ()>,
    waiters: usize,
) {
    // Held: a lost wake-up makes loom panic in a waiting thread (see loom_blocking).
    let protocol = Held::new(P::default());
    let name = P::NAME;
    let last = state_after(output);
    let finisher = working_with_finisher(&*protocol, trace, output);
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
pub(super) struct Counted;

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
pub(super) fn cancelled_wait_and_finish<P: Protocol + Default>(trace: &Trace) {
    let protocol = Held::new(P::default());
    let name = P::NAME;
    let finisher = working_with_finisher(&*protocol, trace, Ok(()));
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
