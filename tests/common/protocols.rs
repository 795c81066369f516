//! Known-bad recorder protocols behind the harness's `Protocol` trait, which
//! every checker must catch.
//!
//! The bad protocols are written against the crate's sync shim, so under the
//! `--cfg loom` loom explores them exactly as it explores the recorder:
//! - [`ThreeSets`]: async_tasks_recorder 0.2.2. A query can read `Working`
//!   and later `NotFound`.
//! - [`AllSet202`]: async_tasks_recorder 2.0.2. A launch refused for
//!   `Success` leaves the id in `working`: it reads `Working` forever. A
//!   refused revoke leaves it in `revoking`: no revoke ever goes through.
//! - [`KeepsWakers`]: the recorder with a `wait` whose wakers outlive it
//!   until the attempt ends, as before dropping a wait removed its waker.
//!
//! They model the published crates (and the old waker leak) as they are. The
//! mutants of our own protocol, each one defect away from it, are
//! `tests/common/mutants.rs`.
#![allow(dead_code)]
#[allow(unused_imports)]
pub use async_tasks_recorder_harness::protocol::{Id, Protocol, recorder};

use async_tasks_recorder::AsyncTasksRecorder;
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::RevokeRefusal;
use async_tasks_recorder::sync::{Arc, DefaultHashBuilder, HashMap, Mutex, lock};
use std::future::Future;
use std::task::Waker;

type Set = HashMap<Id, (), DefaultHashBuilder>;

fn insert(set: &Set, id: Id) -> bool {
    set.insert_sync(id, ()).is_ok()
}

fn remove(set: &Set, id: Id) {
    set.remove_sync(&id);
}

fn listed(set: &Set) -> Vec<Id> {
    let mut ids = Vec::new();
    set.iter_sync(|id, _| {
        ids.push(*id);
        true
    });
    ids
}

/// Resolves once `query` stops reading `Working`, yielding between reads.
/// The set protocols have no notification of their own.
async fn poll_until_done(query: impl Fn() -> TaskState) -> TaskState {
    loop {
        let state = query();
        if state != TaskState::Working {
            return state;
        }
        yield_now().await;
    }
}

/// Gives other threads a turn: loom's yield under loom, the runtime's otherwise.
pub async fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    tokio::task::yield_now().await;
}

/// The three sets both published set protocols share, and the tail of
/// their launch: run, record the outcome, leave `working`.
#[derive(Default)]
struct StateSets {
    working: Set,
    success: Set,
    failed: Set,
}

impl StateSets {
    async fn run_and_record<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        remove(&self.failed, id);
        let output = task.await;
        if output.is_ok() {
            insert(&self.success, id);
        } else {
            insert(&self.failed, id);
        }
        remove(&self.working, id);
        Ok(output)
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        match state {
            TaskState::Working => listed(&self.working),
            TaskState::Success => listed(&self.success),
            TaskState::Failed => listed(&self.failed),
            TaskState::NotFound => Vec::new(),
        }
    }
}

/// async_tasks_recorder 0.2.2: three sets, no `all` set, no revoke.
#[derive(Clone, Default)]
pub struct ThreeSets {
    sets: Arc<StateSets>,
}

impl Protocol for ThreeSets {
    const NAME: &'static str = "async_tasks_recorder 0.2.2 (three sets)";

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        let sets = &self.sets;
        if !insert(&sets.working, id) {
            return Err(TaskState::Working);
        }
        if sets.success.contains_sync(&id) {
            remove(&sets.working, id);
            return Err(TaskState::Success);
        }
        sets.run_and_record(id, task).await
    }

    fn query(&self, id: Id) -> TaskState {
        let sets = &self.sets;
        if sets.success.contains_sync(&id) {
            TaskState::Success
        } else if sets.failed.contains_sync(&id) {
            TaskState::Failed
        } else if sets.working.contains_sync(&id) {
            TaskState::Working
        } else {
            TaskState::NotFound
        }
    }

    async fn revoke_block<F>(&self, _id: Id, _revoke: F) -> Result<Result<(), ()>, RevokeRefusal>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        Err(RevokeRefusal::NotSuccess)
    }

    async fn wait(&self, id: Id) -> TaskState {
        poll_until_done(|| self.query(id)).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.sets.list(state)
    }
}

/// async_tasks_recorder 2.0.2: five sets, as published.
#[derive(Clone, Default)]
pub struct AllSet202 {
    sets: Arc<(StateSets, Set, Set)>,
}

impl AllSet202 {
    fn states(&self) -> &StateSets {
        &self.sets.0
    }
    fn all(&self) -> &Set {
        &self.sets.1
    }
    fn revoking(&self) -> &Set {
        &self.sets.2
    }
}

impl Protocol for AllSet202 {
    const NAME: &'static str = "async_tasks_recorder 2.0.2 (five sets)";

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        let sets = self.states();
        if !insert(&sets.working, id) {
            return Err(TaskState::Working);
        }
        insert(self.all(), id);
        if sets.success.contains_sync(&id) {
            // The published wedge: `working` keeps the id.
            return Err(TaskState::Success);
        }
        sets.run_and_record(id, task).await
    }

    fn query(&self, id: Id) -> TaskState {
        let sets = self.states();
        if !self.all().contains_sync(&id) {
            TaskState::NotFound
        } else if sets.working.contains_sync(&id) {
            TaskState::Working
        } else if sets.success.contains_sync(&id) {
            TaskState::Success
        } else if sets.failed.contains_sync(&id) {
            TaskState::Failed
        } else if self.all().contains_sync(&id) {
            TaskState::Working
        } else {
            TaskState::NotFound
        }
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Result<(), ()>, RevokeRefusal>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        if !insert(self.revoking(), id) {
            return Err(RevokeRefusal::Revoking);
        }
        if !self.states().success.contains_sync(&id) {
            // The published wedge: `revoking` keeps the id.
            return Err(RevokeRefusal::NotSuccess);
        }
        match revoke.await {
            Err(()) => {
                remove(self.revoking(), id);
                Ok(Err(()))
            }
            Ok(()) => {
                remove(self.all(), id);
                remove(&self.states().success, id);
                remove(self.revoking(), id);
                Ok(Ok(()))
            }
        }
    }

    async fn wait(&self, id: Id) -> TaskState {
        poll_until_done(|| self.query(id)).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.states().list(state)
    }
}

/// The recorder with the waker leak of its first `wait`: every waker a wait
/// is polled with stays registered until an attempt ends, even after the
/// wait was dropped (the latch kept one slot per started wait, and only the
/// firing emptied the list).
#[derive(Clone)]
pub struct KeepsWakers {
    recorder: AsyncTasksRecorder<Id>,
    kept: Arc<Mutex<Vec<Waker>>>,
}

impl Default for KeepsWakers {
    fn default() -> Self {
        KeepsWakers {
            recorder: recorder(),
            kept: Arc::default(),
        }
    }
}

impl Protocol for KeepsWakers {
    const NAME: &'static str = "wait that keeps the wakers of dropped waits";

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        let launched = Protocol::launch_block(&self.recorder, id, task).await;
        // The attempt ended: the firing takes the list and wakes it.
        let kept = std::mem::take(&mut *lock(&self.kept));
        kept.into_iter().for_each(Waker::wake);
        launched
    }

    fn query(&self, id: Id) -> TaskState {
        self.recorder.query(id)
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Result<(), ()>, RevokeRefusal>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        self.recorder.revoke_block(id, revoke).await
    }

    async fn wait(&self, id: Id) -> TaskState {
        let mut wait = std::pin::pin!(Protocol::wait(&self.recorder, id));
        std::future::poll_fn(|cx| {
            let polled = wait.as_mut().poll(cx);
            if polled.is_pending() {
                // MUTANT: a clone of the waker outlives the wait.
                lock(&self.kept).push(cx.waker().clone());
            }
            polled
        })
        .await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.recorder.list(state)
    }
}
