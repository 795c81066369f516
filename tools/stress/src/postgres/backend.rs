//! The PostgreSQL recorder as the harness's [`Backend`], so the in-process
//! storm and its audit run on it too (`--backend postgres --processes 1`).
//! Errors are the backend's own, as text naming the call and the id.

use async_tasks_recorder::{StateCounts, TaskState};
use async_tasks_recorder_harness::backend::{Backend, Launched, Revoked};
use async_tasks_recorder_harness::protocol::Id;
use async_tasks_recorder_pg::{Finish, PgRecorder, Refused};
use std::future::Future;

/// A [`PgRecorder`] on `bigint` ids, driven as a [`Backend`].
pub struct Postgres(pub PgRecorder<i64>);

impl Backend for Postgres {
    type Error = String;

    async fn launch<F>(&self, id: Id, task: F) -> Result<Launched, String>
    where
        F: Future<Output = Result<(), ()>> + Send + 'static,
    {
        match self.0.launch(id.into(), |_| task).await {
            Ok(_) => Ok(Launched::Accepted),
            Err(Refused::By(refusal)) => Ok(Launched::Refused(refusal.state())),
            Err(Refused::Error(e)) => Err(format!("launch {id}: {e}")),
        }
    }

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Launched, String>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        match self.0.launch_block(id.into(), |_| task).await {
            Ok((_, Ok(_))) => Ok(Launched::Accepted),
            Ok((_, Err(e))) => Err(format!("finish of {id}: {e}")),
            Err(Refused::By(refusal)) => Ok(Launched::Refused(refusal.state())),
            Err(Refused::Error(e)) => Err(format!("launch {id}: {e}")),
        }
    }

    async fn query(&self, id: Id) -> Result<TaskState, String> {
        self.0.query(&id.into()).await.map_err(|e| e.to_string())
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Revoked, String>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        match self.0.revoke(id.into(), |_| revoke).await {
            Ok((Ok(()), Ok(Finish::Applied))) => Ok(Revoked::Done),
            Ok((Err(()), Ok(Finish::Applied))) => Ok(Revoked::RevokeFailed),
            Ok((_, Ok(Finish::Stale))) => Err(format!("revoke of {id} answered Stale")),
            Ok((_, Err(e))) => Err(format!("revoke of {id}: {e}")),
            Err(Refused::By(_)) => Ok(Revoked::Refused),
            Err(Refused::Error(e)) => Err(format!("revoke {id}: {e}")),
        }
    }

    async fn wait(&self, id: Id) -> Result<TaskState, String> {
        self.0.wait(&id.into()).await.map_err(|e| e.to_string())
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
        ids.into_iter()
            .map(|id| Id::try_from(id).map_err(|_| format!("listed id {id} is not a task id")))
            .collect()
    }

    async fn recorded(&self) -> Result<usize, String> {
        let counts = self.state_counts().await?;
        Ok(counts.working + counts.success + counts.failed)
    }
}
