//! The operations the workload and the audit drive, as a trait: the
//! in-memory [`AsyncTasksRecorder`] implements it here, and a recorder kept
//! elsewhere (a database, say) can implement it and run the same storm and
//! the same audit. Every method is async and may fail, as a call over a
//! connection can; the in-memory recorder never fails.

use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, StateCounts, TaskState};
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;

/// The id type of the storm.
pub type Id = u64;

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

impl Backend for AsyncTasksRecorder<Id> {
    type Error = Infallible;

    async fn launch<F>(&self, id: Id, task: F) -> Result<Launched, Infallible>
    where
        F: Future<Output = Result<(), ()>> + Send + 'static,
    {
        Ok(match AsyncTasksRecorder::launch(self, id, task).await {
            Ok(()) => Launched::Accepted,
            Err((state, _)) => Launched::Refused(state),
        })
    }

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Launched, Infallible>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        Ok(
            match AsyncTasksRecorder::launch_block(self, id, task).await {
                Ok(_) => Launched::Accepted,
                Err((state, _)) => Launched::Refused(state),
            },
        )
    }

    async fn query(&self, id: Id) -> Result<TaskState, Infallible> {
        Ok(self.query_task_state(&id).await)
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Revoked, Infallible>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        Ok(match self.revoke_task_block(id, revoke).await {
            Ok(()) => Revoked::Done,
            Err(RevokeFailReason::RevokeTaskError(())) => Revoked::RevokeFailed,
            Err(RevokeFailReason::NotSuccess(_) | RevokeFailReason::Revoking(_)) => {
                Revoked::Refused
            }
        })
    }

    async fn wait(&self, id: Id) -> Result<TaskState, Infallible> {
        Ok(AsyncTasksRecorder::wait(self, &id).await)
    }

    async fn state_counts(&self) -> Result<StateCounts, Infallible> {
        Ok(AsyncTasksRecorder::state_counts(self))
    }

    async fn list(&self, state: TaskState) -> Result<Vec<Id>, Infallible> {
        Ok(self.list_tasks(state))
    }

    async fn recorded(&self) -> Result<usize, Infallible> {
        Ok(AsyncTasksRecorder::len(self))
    }
}

/// The PostgreSQL recorder behind the same trait, so the in-process storm
/// and its audit run on it too (`--backend postgres --processes 1`).
pub struct Postgres(pub async_tasks_recorder_pg::PgRecorder<i64>);

fn pg_id(id: Id) -> Result<i64, String> {
    i64::try_from(id).map_err(|_| format!("id {id} does not fit a bigint"))
}

impl Backend for Postgres {
    type Error = String;

    async fn launch<F>(&self, id: Id, task: F) -> Result<Launched, String>
    where
        F: Future<Output = Result<(), ()>> + Send + 'static,
    {
        use async_tasks_recorder_pg::Refused;
        match self.0.launch(pg_id(id)?, |_| task).await {
            Ok(_) => Ok(Launched::Accepted),
            Err(Refused::By(refusal)) => Ok(Launched::Refused(refusal.state())),
            Err(Refused::Error(e)) => Err(format!("launch {id}: {e}")),
        }
    }

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Launched, String>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        use async_tasks_recorder_pg::Refused;
        match self.0.launch_block(pg_id(id)?, |_| task).await {
            Ok((_, Ok(_))) => Ok(Launched::Accepted),
            Ok((_, Err(e))) => Err(format!("finish of {id}: {e}")),
            Err(Refused::By(refusal)) => Ok(Launched::Refused(refusal.state())),
            Err(Refused::Error(e)) => Err(format!("launch {id}: {e}")),
        }
    }

    async fn query(&self, id: Id) -> Result<TaskState, String> {
        self.0.query(&pg_id(id)?).await.map_err(|e| e.to_string())
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Revoked, String>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        use async_tasks_recorder_pg::{Finish, Refused};
        match self.0.revoke(pg_id(id)?, |_| revoke).await {
            Ok((Ok(()), Ok(Finish::Applied))) => Ok(Revoked::Done),
            Ok((Err(()), Ok(Finish::Applied))) => Ok(Revoked::RevokeFailed),
            Ok((_, Ok(Finish::Stale))) => Err(format!("revoke of {id} answered Stale")),
            Ok((_, Err(e))) => Err(format!("revoke of {id}: {e}")),
            Err(Refused::By(_)) => Ok(Revoked::Refused),
            Err(Refused::Error(e)) => Err(format!("revoke {id}: {e}")),
        }
    }

    async fn wait(&self, id: Id) -> Result<TaskState, String> {
        self.0.wait(&pg_id(id)?).await.map_err(|e| e.to_string())
    }

    async fn state_counts(&self) -> Result<StateCounts, String> {
        let count = |state| async move {
            self.0
                .count(state)
                .await
                .map(|n| n as usize)
                .map_err(|e| e.to_string())
        };
        Ok(StateCounts {
            working: count(TaskState::Working).await?,
            success: count(TaskState::Success).await?,
            failed: count(TaskState::Failed).await?,
        })
    }

    async fn list(&self, state: TaskState) -> Result<Vec<Id>, String> {
        let ids = self.0.list(state).await.map_err(|e| e.to_string())?;
        Ok(ids.into_iter().map(|id| id as Id).collect())
    }

    async fn recorded(&self) -> Result<usize, String> {
        let counts = self.state_counts().await?;
        Ok(counts.working + counts.success + counts.failed)
    }
}
