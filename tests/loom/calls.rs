//! The calls every loom model makes: each protocol operation, noted in the
//! trace when it begins and with what it answers, and the tasks, setups and
//! checks the models share.

use super::loom_blocking::block_on;
use super::loom_harness::{Trace, violation};
use super::protocols::{Id, Protocol};
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::RevokeRefusal;
use async_tasks_recorder_harness::support::poll_once;
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What `Protocol::launch_block` answers: the task's output, or the refusal.
pub(super) type LaunchAnswer = Result<Result<(), ()>, TaskState>;

/// What `Protocol::revoke_block` answers: the revoke's output, or the refusal.
pub(super) type Revoked = Result<Result<(), ()>, RevokeRefusal>;

/// The id every model works on.
pub(super) const ID: Id = 1;

/// The state a task's output leads to.
pub(super) fn state_after(output: Result<(), ()>) -> TaskState {
    match output {
        Ok(()) => TaskState::Success,
        Err(()) => TaskState::Failed,
    }
}

/// Launches `task` on `id` and runs it in place, noting when the call begins
/// and what it answers.
pub(super) fn launch<P: Protocol>(
    protocol: &P,
    trace: &Trace,
    thread: &str,
    id: Id,
    task: impl Future<Output = Result<(), ()>> + Send,
) -> LaunchAnswer {
    noted(trace, thread, "launch", id, || {
        protocol.launch_block(id, task)
    })
}

/// Revokes `id` with `compensation`, noting when the call begins and what it
/// answers.
pub(super) fn revoke<P: Protocol>(
    protocol: &P,
    trace: &Trace,
    thread: &str,
    id: Id,
    compensation: impl Future<Output = Result<(), ()>> + Send,
) -> Revoked {
    noted(trace, thread, "revoke", id, || {
        protocol.revoke_block(id, compensation)
    })
}

/// Queries `id`, noting when the call begins and what it answers.
pub(super) fn query<P: Protocol>(protocol: &P, trace: &Trace, thread: &str, id: Id) -> TaskState {
    trace.note(thread, format_args!("query {id} begins"));
    let state = protocol.query(id);
    trace.note(thread, format_args!("query {id} -> {state:?}"));
    state
}

/// Waits on `id`, noting when the call begins and what it answers.
pub(super) fn wait<P: Protocol>(protocol: &P, trace: &Trace, thread: &str, id: Id) -> TaskState {
    noted(trace, thread, "wait", id, || protocol.wait(id))
}

/// Makes the call of `operation` on `id` and runs it in place, noting when
/// it begins and what it answers: the shape of every blocking call above.
fn noted<F>(
    trace: &Trace,
    thread: &str,
    operation: &str,
    id: Id,
    call: impl FnOnce() -> F,
) -> F::Output
where
    F: Future,
    F::Output: Debug,
{
    trace.note(thread, format_args!("{operation} {id} begins"));
    let answer = block_on(call());
    trace.note(thread, format_args!("{operation} {id} -> {answer:?}"));
    answer
}

/// A task that is pending on its first poll and ends with `output` on the
/// next, so a model can hold an id `Working` and finish it from another thread.
pub(super) struct YieldOnce {
    output: Result<(), ()>,
    yielded: bool,
}

impl YieldOnce {
    pub(super) fn new(output: Result<(), ()>) -> Self {
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
pub(super) fn owned_launch<P, F>(
    protocol: &P,
    id: Id,
    task: F,
) -> Pin<Box<impl Future<Output = LaunchAnswer> + use<P, F>>>
where
    P: Protocol,
    F: Future<Output = Result<(), ()>> + Send + 'static,
{
    let protocol = protocol.clone();
    Box::pin(async move { protocol.launch_block(id, task).await })
}

/// A fresh protocol in which `ID` has succeeded: the setup of every model
/// that starts from a `Success` id. Fails the model unless the launch
/// answered `Ok(Ok(()))`.
pub(super) fn succeeded<P: Protocol + Default>(trace: &Trace) -> P {
    let protocol = P::default();
    let first = launch(&protocol, trace, "setup", ID, async { Ok(()) });
    if first != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{}: the first launch answered {first:?}", P::NAME),
        );
    }
    protocol
}

/// A launch of a fresh `id`, accepted and polled once: its task, pending,
/// holds the id `Working`, and ends with `output` when the returned launch
/// is polled again (in another thread, say). Fails the model if the first
/// poll did not leave the task pending.
pub(super) fn pending_launch<P: Protocol>(
    protocol: &P,
    trace: &Trace,
    id: Id,
    output: Result<(), ()>,
) -> Pin<Box<impl Future<Output = LaunchAnswer> + use<P>>> {
    let mut launching = owned_launch(protocol, id, YieldOnce::new(output));
    if poll_once(launching.as_mut()).is_ready() {
        violation(
            trace,
            format_args!("{}: a launch of a fresh id did not run its task", P::NAME),
        );
    }
    launching
}

/// Checks that an observer's reads of one id walk forward along `timeline`,
/// the only order of states the spec allows for the model's operations
/// (skipping states is fine: reads are samples).
pub(super) fn check_reads_follow(
    trace: &Trace,
    name: &str,
    reads: &[TaskState],
    timeline: &[TaskState],
) {
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

/// A flag between model threads, initially down.
pub(super) fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}
