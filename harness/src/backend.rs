//! The async, fallible face of a recorder: what the stress run's storm and
//! audit drive, where every call may fail as a call over a connection can.
//!
//! Every [`Subject`] is a [`Backend`] that never fails, so the in-memory
//! recorder, the known-bad protocols and the mutants are adapted once, as
//! subjects, and run the storm unchanged. A recorder kept elsewhere
//! implements [`Backend`] itself, where it is driven: the PostgreSQL
//! recorder's adapter is the stress run's (`tools/stress/src/postgres/backend.rs`),
//! so this crate never builds a database client.

use crate::protocol::Id;
use crate::subject::Subject;
use async_tasks_recorder::{StateCounts, TaskState};
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;

/// The recorder's answer to a launch whose future ran to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launched {
    /// Accepted; the task ran (in place) or was started (spawned).
    Accepted,
    /// Refused, with the state that refused it; the task did not run.
    Refused(TaskState),
}

/// The recorder's answer to a revoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The revoke future returned `Ok`: the id is `NotFound`, in a new epoch.
    Done,
    /// The revoke future returned `Err`: the id stays `Success`.
    RevokeFailed,
    /// Not `Success`, or another revoke was running: nothing ran.
    Refused,
}

/// A recorder the stress run can drive.
///
/// Tasks and revokes are the workload's own futures returning
/// `Result<(), ()>`; a task may panic, and `launch_block` then lets the
/// panic continue into its caller.
pub trait Backend: Send + Sync + 'static {
    /// Why a call failed (a lost connection, say): not an answer of the
    /// recorder, so the audit reports it and cannot vouch for the run.
    type Error: Display + Send + 'static;

    /// Starts `task` under `id` in the background if the launch is accepted.
    fn launch<F>(
        &self,
        id: Id,
        task: F,
    ) -> impl Future<Output = Result<Launched, Self::Error>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send + 'static;

    /// Runs `task` under `id` in place if the launch is accepted. Dropping
    /// the returned future mid-task must settle the attempt as failed.
    fn launch_block<F>(
        &self,
        id: Id,
        task: F,
    ) -> impl Future<Output = Result<Launched, Self::Error>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send;

    /// The linearizable query.
    fn query(&self, id: Id) -> impl Future<Output = Result<TaskState, Self::Error>> + Send;

    /// Runs `revoke` in place if `id` is `Success` and no revoke is running.
    fn revoke_block<F>(
        &self,
        id: Id,
        revoke: F,
    ) -> impl Future<Output = Result<Revoked, Self::Error>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send;

    /// Resolves once `id` is not `Working`, with its state then.
    fn wait(&self, id: Id) -> impl Future<Output = Result<TaskState, Self::Error>> + Send;

    /// How many ids are in each state.
    fn state_counts(&self) -> impl Future<Output = Result<StateCounts, Self::Error>> + Send;

    /// The ids in `state`, each once.
    fn list(&self, state: TaskState) -> impl Future<Output = Result<Vec<Id>, Self::Error>> + Send;

    /// How many ids are recorded (not `NotFound`).
    fn recorded(&self) -> impl Future<Output = Result<usize, Self::Error>> + Send;
}

/// Every subject, in memory: its answers, none of them an error.
impl<S: Subject> Backend for S {
    type Error = Infallible;

    async fn launch<F>(&self, id: Id, task: F) -> Result<Launched, Infallible>
    where
        F: Future<Output = Result<(), ()>> + Send + 'static,
    {
        Ok(Launched::of(Subject::launch(self, id, task).await))
    }

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Launched, Infallible>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        Ok(Launched::of(self.launch_block(id, task).await))
    }

    async fn query(&self, id: Id) -> Result<TaskState, Infallible> {
        Ok(self.query(id))
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Revoked, Infallible>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        Ok(match self.revoke_block(id, revoke).await {
            Ok(Ok(())) => Revoked::Done,
            Ok(Err(())) => Revoked::RevokeFailed,
            Err(_) => Revoked::Refused,
        })
    }

    async fn wait(&self, id: Id) -> Result<TaskState, Infallible> {
        Ok(self.wait(id).await)
    }

    async fn state_counts(&self) -> Result<StateCounts, Infallible> {
        Ok(self.counts())
    }

    async fn list(&self, state: TaskState) -> Result<Vec<Id>, Infallible> {
        Ok(self.list(state))
    }

    async fn recorded(&self) -> Result<usize, Infallible> {
        Ok(Subject::recorded(self))
    }
}

impl Launched {
    /// A launch's answer, whatever the task returned.
    fn of<T>(answer: Result<T, TaskState>) -> Self {
        match answer {
            Ok(_) => Launched::Accepted,
            Err(state) => Launched::Refused(state),
        }
    }
}
