//! The calls every loom model makes: each protocol operation, noted in the
//! trace when it begins and with what it answers, and the tasks and checks
//! the models share.

use super::loom_blocking::block_on;
use super::loom_harness::{Trace, violation};
use super::protocols::{Id, Protocol};
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::RevokeRefusal;
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
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
pub(super) fn launch<P, F>(
    protocol: &P,
    trace: &Trace,
    thread: &str,
    id: Id,
    task: F,
) -> LaunchAnswer
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
pub(super) fn revoke<P, F>(
    protocol: &P,
    trace: &Trace,
    thread: &str,
    id: Id,
    compensation: F,
) -> Revoked
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
pub(super) fn query<P: Protocol>(protocol: &P, trace: &Trace, thread: &str, id: Id) -> TaskState {
    trace.note(thread, format_args!("query {id} begins"));
    let state = protocol.query(id);
    trace.note(thread, format_args!("query {id} -> {state:?}"));
    state
}

/// Waits on `id`, noting when the call begins and what it answers.
pub(super) fn wait<P: Protocol>(protocol: &P, trace: &Trace, thread: &str, id: Id) -> TaskState {
    trace.note(thread, format_args!("wait {id} begins"));
    let state = block_on(protocol.wait(id));
    trace.note(thread, format_args!("wait {id} -> {state:?}"));
    state
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
