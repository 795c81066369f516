//! The operations every checker drives, behind one trait, so that each
//! checker (loom models, proptest properties, the linearizability checker)
//! runs unchanged against the real recorder, against another backend, and
//! against the known-bad protocols and mutants it must catch.

use async_tasks_recorder::sync::DefaultHashBuilder;
use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, TaskState};
use std::future::Future;

/// Task ids in the checkers.
pub type Id = u32;

/// Why a revoke did not happen, without the future.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum RevokeError {
    NotSuccess,
    Revoking,
    TaskError,
}

/// The operations the checkers drive. Tasks and revokes return `Result<(), ()>`.
pub trait Protocol: Clone + Send + Sync + 'static {
    /// A name for reports.
    const NAME: &'static str;

    /// Runs `task` in place if the launch is accepted.
    fn launch_block<F>(
        &self,
        id: Id,
        task: F,
    ) -> impl Future<Output = Result<Result<(), ()>, TaskState>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send;

    /// The linearizable query.
    fn query(&self, id: Id) -> TaskState;

    /// Runs `revoke` in place if the revoke is accepted.
    fn revoke_block<F>(
        &self,
        id: Id,
        revoke: F,
    ) -> impl Future<Output = Result<(), RevokeError>> + Send
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

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<(), RevokeError>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        self.revoke_task_block(id, revoke)
            .await
            .map_err(|reason| match reason {
                RevokeFailReason::NotSuccess(_) => RevokeError::NotSuccess,
                RevokeFailReason::Revoking(_) => RevokeError::Revoking,
                RevokeFailReason::RevokeTaskError(()) => RevokeError::TaskError,
            })
    }

    async fn wait(&self, id: Id) -> TaskState {
        AsyncTasksRecorder::wait(self, &id).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.list_tasks(state)
    }
}
