//! Test-only mutants of the recorder's protocol, each with one seeded defect
//! that a proptest property must catch. Both share a plain mutex-guarded
//! table that applies `spec::step` and settles every launch and revoke from a
//! drop guard, so the seeded defect is the only one.
#![allow(dead_code)]

use super::protocols::{Id, Protocol, RevokeError};
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::{self, Op, Outcome, Phase, Response, RevokeRefusal};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Table {
    phases: Mutex<HashMap<Id, Phase>>,
    /// A failed-id index as `src/table.rs` keeps one, with the seeded defect
    /// of [`StaleFailedIndex`]: an id is added when it enters `Failed` and
    /// never removed. Only that mutant lists from it.
    failed: Mutex<HashSet<Id>>,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, HashMap<Id, Phase>> {
        self.phases.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply(&self, id: Id, op: Op) -> Response {
        let mut phases = self.lock();
        let phase = phases.get(&id).copied().unwrap_or(Phase::NotFound);
        let (next, response) = spec::step(phase, op);
        if next == Phase::Failed && phase != Phase::Failed {
            // MUTANT (read by `StaleFailedIndex` only): nothing removes it.
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id);
        }
        if next == Phase::NotFound {
            phases.remove(&id);
        } else {
            phases.insert(id, next);
        }
        response
    }

    fn phase(&self, id: Id) -> Phase {
        self.lock().get(&id).copied().unwrap_or(Phase::NotFound)
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.lock()
            .iter()
            .filter(|(_, phase)| phase.state() == state)
            .map(|(id, _)| *id)
            .collect()
    }

    async fn wait(&self, id: Id) -> TaskState {
        loop {
            let state = self.phase(id).state();
            if state != TaskState::Working {
                return state;
            }
            tokio::task::yield_now().await;
        }
    }

    async fn revoke_block<F>(
        &self,
        id: Id,
        revoke: F,
        revoked: impl FnOnce(),
    ) -> Result<(), RevokeError>
    where
        F: Future<Output = Result<(), ()>>,
    {
        match self.apply(id, Op::BeginRevoke) {
            Response::Accepted => {}
            Response::RevokeRefused(RevokeRefusal::Revoking) => return Err(RevokeError::Revoking),
            _ => return Err(RevokeError::NotSuccess),
        }
        let settle = Settle::new(self, id, Op::FinishRevoke);
        let output = revoke.await;
        settle.settle(Outcome::of(&output));
        if output.is_ok() {
            revoked();
        }
        output.map_err(|()| RevokeError::TaskError)
    }
}

/// Applies the finishing operation when dropped: `Err` unless settled.
struct Settle<'a> {
    table: &'a Table,
    id: Id,
    finish: fn(Outcome) -> Op,
    outcome: Outcome,
}

impl<'a> Settle<'a> {
    fn new(table: &'a Table, id: Id, finish: fn(Outcome) -> Op) -> Self {
        Settle {
            table,
            id,
            finish,
            outcome: Outcome::Err,
        }
    }

    fn settle(mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.table.apply(self.id, (self.finish)(self.outcome));
    }
}

/// Mutant: a launch reads the phase and claims `Working` in two separate
/// critical sections, so two launchers can both claim one epoch.
#[derive(Clone, Default)]
pub struct SplitLaunch {
    table: Arc<Table>,
}

impl Protocol for SplitLaunch {
    const NAME: &'static str = "mutant: launch checks, then claims";

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        let phase = self.table.phase(id);
        if let (_, Response::LaunchRefused(state)) = spec::step(phase, Op::Launch) {
            return Err(state);
        }
        // MUTANT: the claim is a blind write in a second critical section,
        // after an await that lets another launcher check too.
        tokio::task::yield_now().await;
        self.table.lock().insert(id, Phase::Working);
        let settle = Settle::new(&self.table, id, Op::Finish);
        let output = task.await;
        settle.settle(Outcome::of(&output));
        Ok(output)
    }

    fn query(&self, id: Id) -> TaskState {
        self.table.phase(id).state()
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<(), RevokeError>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        self.table.revoke_block(id, revoke, || {}).await
    }

    async fn wait(&self, id: Id) -> TaskState {
        self.table.wait(id).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.table.list(state)
    }
}

/// Mutant: successes are also indexed for listing, and a completed revoke
/// forgets to take the id out of that index.
#[derive(Clone, Default)]
pub struct StaleSuccessList {
    table: Arc<Table>,
    succeeded: Arc<Mutex<HashSet<Id>>>,
}

impl Protocol for StaleSuccessList {
    const NAME: &'static str = "mutant: revoke leaves the id listed as Success";

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        if let Response::LaunchRefused(state) = self.table.apply(id, Op::Launch) {
            return Err(state);
        }
        let settle = Settle::new(&self.table, id, Op::Finish);
        let output = task.await;
        if output.is_ok() {
            self.succeeded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id);
        }
        settle.settle(Outcome::of(&output));
        Ok(output)
    }

    fn query(&self, id: Id) -> TaskState {
        self.table.phase(id).state()
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<(), RevokeError>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        // MUTANT: nothing removes `id` from `succeeded` once revoked.
        self.table.revoke_block(id, revoke, || {}).await
    }

    async fn wait(&self, id: Id) -> TaskState {
        self.table.wait(id).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        match state {
            TaskState::Success => self
                .succeeded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .copied()
                .collect(),
            state => self.table.list(state),
        }
    }
}

/// Mutant: failed ids are indexed for listing, as the recorder does, but a
/// relaunch from `Failed` forgets to take the id out of the index.
#[derive(Clone, Default)]
pub struct StaleFailedIndex {
    table: Arc<Table>,
}

impl Protocol for StaleFailedIndex {
    const NAME: &'static str = "mutant: a relaunch leaves the id listed as Failed";

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        if let Response::LaunchRefused(state) = self.table.apply(id, Op::Launch) {
            return Err(state);
        }
        let settle = Settle::new(&self.table, id, Op::Finish);
        let output = task.await;
        settle.settle(Outcome::of(&output));
        Ok(output)
    }

    fn query(&self, id: Id) -> TaskState {
        self.table.phase(id).state()
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<(), RevokeError>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        self.table.revoke_block(id, revoke, || {}).await
    }

    async fn wait(&self, id: Id) -> TaskState {
        self.table.wait(id).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        match state {
            TaskState::Failed => self
                .table
                .failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .copied()
                .collect(),
            state => self.table.list(state),
        }
    }
}
