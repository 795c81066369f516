//! The operations every checker drives, behind one trait, so that each
//! checker (loom models, proptest properties, the linearizability checker)
//! runs unchanged against the real recorder, against another backend, and
//! against the known-bad protocols and mutants it must catch.

use async_tasks_recorder::spec::RevokeRefusal;
use async_tasks_recorder::sync::DefaultHashBuilder;
use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, TaskState};
use std::future::Future;
use std::time::Duration;

/// Task ids in the checkers.
pub type Id = u32;

/// How a task or a revoke that a checker hands the protocol ends.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum End {
    Ok,
    Err,
    /// The task panics (no checker makes a revoke panic).
    Panic,
    /// Dropped part-way: its caller drops `launch_block` (the concurrent
    /// schedules), or a runtime shutdown drops it (the model test).
    Cancel,
}

/// The operations the checkers drive. Tasks and revokes return `Result<(), ()>`.
pub trait Protocol: Clone + Send + Sync + 'static {
    /// A name for reports.
    const NAME: &'static str;

    /// How long a `wait` may take to return once its id has left `Working`.
    /// Zero for a protocol that wakes its waiters in the finishing call (the
    /// in-memory recorder); a backend that polls states its polling bound.
    /// The sequential model test grants a waiter this long, and no longer,
    /// before it calls the wait lost.
    const WAKE_LATENCY: Duration = Duration::ZERO;

    /// Runs `task` in place if the launch is accepted: the task's output, or
    /// the state that refused the launch.
    fn launch_block<F>(
        &self,
        id: Id,
        task: F,
    ) -> impl Future<Output = Result<Result<(), ()>, TaskState>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send;

    /// The linearizable query.
    fn query(&self, id: Id) -> TaskState;

    /// Runs `revoke` in place if the revoke is accepted: the revoke's
    /// output, or why the spec refused it. Shaped as
    /// [`launch_block`](Self::launch_block)'s answer.
    fn revoke_block<F>(
        &self,
        id: Id,
        revoke: F,
    ) -> impl Future<Output = Result<Result<(), ()>, RevokeRefusal>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send;

    /// Resolves once the id is not `Working`.
    fn wait(&self, id: Id) -> impl Future<Output = TaskState> + Send;

    /// The ids in `state`.
    fn list(&self, state: TaskState) -> Vec<Id>;
}

/// A fresh recorder with a hasher that scc accepts under loom.
pub fn recorder() -> AsyncTasksRecorder<Id> {
    AsyncTasksRecorder::with_capacity_and_hasher(0, DefaultHashBuilder::default())
}

impl Protocol for AsyncTasksRecorder<Id> {
    const NAME: &'static str = "AsyncTasksRecorder";

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        AsyncTasksRecorder::launch_block(self, id, task)
            .await
            .map_err(|(state, _)| state)
    }

    fn query(&self, id: Id) -> TaskState {
        self.query_task_state_sync(&id)
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Result<(), ()>, RevokeRefusal>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        match self.revoke_task_block(id, revoke).await {
            Ok(()) => Ok(Ok(())),
            Err(RevokeFailReason::RevokeTaskError(())) => Ok(Err(())),
            Err(RevokeFailReason::NotSuccess(_)) => Err(RevokeRefusal::NotSuccess),
            Err(RevokeFailReason::Revoking(_)) => Err(RevokeRefusal::Revoking),
        }
    }

    async fn wait(&self, id: Id) -> TaskState {
        AsyncTasksRecorder::wait(self, &id).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.list_tasks(state)
    }
}
