//! The five recorders measured side by side, each behind [`Contestant`].
//!
//! - [`Ours`]: this crate.
//! - [`V2`]: the published `async_tasks_recorder` 2.0.2 (five scc 2 sets).
//! - [`StateMap`]: `async_tasks_state_map` 1.0.1 (one scc 2 map of states).
//! - [`RawMap`]: the floor, a `scc::HashMap<u64, u8>` doing the least work
//!   that records the same states: insert `Working` then update for a
//!   launch, one read for a query.
//! - [`MutexMap`]: what a user writes by hand, a `Mutex<HashMap>` plus a
//!   `Notify` for waiters.

use super::{FAILED, NOT_FOUND, REVOKING, SUCCESS, WORKING, drive, task};
use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
use bench_report::Contestant as Name;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a `launch_block` did.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Launch {
    /// Accepted and ran; `true` when the task returned `Ok`.
    Ran(bool),
    /// Refused because the id was in this state.
    Refused(u8),
}

/// One recorder under test. Every method runs its futures with [`drive`],
/// the same driver for everybody.
pub trait Contestant: Send + Sync + 'static {
    /// Which contestant this is, as the report knows it.
    const ID: Name;
    /// The name used in bench ids.
    const NAME: &'static str = Self::ID.as_str();
    fn new() -> Self;
    /// `launch_block` of a task that returns `Ok` iff `ok`.
    fn launch_block(&self, id: u64, ok: bool) -> Launch;
    /// Spawns a task on the current tokio runtime; the task bumps `done`.
    fn launch_spawn(&self, id: u64, done: &Arc<AtomicUsize>) -> bool;
    /// The id's state code.
    fn query(&self, id: u64) -> u8;
    /// Revokes a succeeded id with a revoke future that returns `Ok`.
    fn revoke(&self, id: u64) -> bool;
    /// The ids now `Failed`.
    fn list_failed(&self) -> Vec<u64>;
    /// Waits until the id is not `Working`; `None` if there is no such call.
    fn wait(&self, id: u64) -> Option<u8>;
}

fn code(state: TaskState) -> u8 {
    match state {
        TaskState::NotFound => NOT_FOUND,
        TaskState::Working => WORKING,
        TaskState::Success => SUCCESS,
        TaskState::Failed => FAILED,
    }
}

/// This crate.
pub struct Ours(AsyncTasksRecorder<u64>);

impl Contestant for Ours {
    const ID: Name = Name::Ours;
    fn new() -> Self {
        Ours(AsyncTasksRecorder::new())
    }
    fn launch_block(&self, id: u64, ok: bool) -> Launch {
        match drive(self.0.launch_block(id, task(ok))) {
            Ok(out) => Launch::Ran(out.is_ok()),
            Err((state, _)) => Launch::Refused(code(state)),
        }
    }
    fn launch_spawn(&self, id: u64, done: &Arc<AtomicUsize>) -> bool {
        let done = done.clone();
        drive(self.0.launch(id, async move {
            done.fetch_add(1, Ordering::Relaxed);
            Ok::<(), ()>(())
        }))
        .is_ok()
    }
    fn query(&self, id: u64) -> u8 {
        code(drive(self.0.query_task_state(&id)))
    }
    fn revoke(&self, id: u64) -> bool {
        drive(self.0.revoke_task_block(id, task(true))).is_ok()
    }
    fn list_failed(&self) -> Vec<u64> {
        self.0.list_tasks(TaskState::Failed)
    }
    fn wait(&self, id: u64) -> Option<u8> {
        Some(code(drive(self.0.wait(&id))))
    }
}

/// The published 2.0.2.
pub struct V2(async_tasks_recorder_v2::AsyncTasksRecorder<u64>);

fn code_v2(state: async_tasks_recorder_v2::TaskState) -> u8 {
    use async_tasks_recorder_v2::TaskState as S;
    match state {
        S::NotFound => NOT_FOUND,
        S::Working => WORKING,
        S::Success => SUCCESS,
        S::Failed => FAILED,
    }
}

impl Contestant for V2 {
    const ID: Name = Name::V2;
    fn new() -> Self {
        V2(async_tasks_recorder_v2::AsyncTasksRecorder::new())
    }
    fn launch_block(&self, id: u64, ok: bool) -> Launch {
        match drive(self.0.launch_block(id, task(ok))) {
            // 2.0.2 does not hand the output back; the task's result is `ok`.
            Ok(()) => Launch::Ran(ok),
            Err((state, _)) => Launch::Refused(code_v2(state)),
        }
    }
    fn launch_spawn(&self, id: u64, done: &Arc<AtomicUsize>) -> bool {
        let done = done.clone();
        drive(self.0.launch(id, async move {
            done.fetch_add(1, Ordering::Relaxed);
            Ok::<(), ()>(())
        }))
        .is_ok()
    }
    fn query(&self, id: u64) -> u8 {
        code_v2(drive(self.0.query_task_state(&id)))
    }
    fn revoke(&self, id: u64) -> bool {
        drive(self.0.revoke_task_block(id, task(true))).is_ok()
    }
    fn list_failed(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        self.0.get_failed_tasks_ref().scan(|id| ids.push(*id));
        ids
    }
    fn wait(&self, _id: u64) -> Option<u8> {
        None
    }
}

/// `async_tasks_state_map` 1.0.1.
pub struct StateMap(async_tasks_state_map::AsyncTasksRecorder<u64>);

fn code_state_map(state: &async_tasks_state_map::TaskState) -> u8 {
    use async_tasks_state_map::TaskState as S;
    match state {
        S::NotFound => NOT_FOUND,
        S::Working => WORKING,
        S::Success => SUCCESS,
        S::Failed => FAILED,
        S::Revoking => REVOKING,
    }
}

impl Contestant for StateMap {
    const ID: Name = Name::StateMap;
    fn new() -> Self {
        StateMap(async_tasks_state_map::AsyncTasksRecorder::new())
    }
    fn launch_block(&self, id: u64, ok: bool) -> Launch {
        match drive(self.0.launch_block(id, task(ok))) {
            Ok(out) => Launch::Ran(out.is_ok()),
            Err((state, _)) => Launch::Refused(code_state_map(&state)),
        }
    }
    fn launch_spawn(&self, id: u64, done: &Arc<AtomicUsize>) -> bool {
        let done = done.clone();
        drive(self.0.launch(id, async move {
            done.fetch_add(1, Ordering::Relaxed);
            Ok::<(), ()>(())
        }))
        .is_ok()
    }
    fn query(&self, id: u64) -> u8 {
        code_state_map(&drive(self.0.query_task_state(&id)))
    }
    fn revoke(&self, id: u64) -> bool {
        matches!(drive(self.0.revoke_task_block(&id, task(true))), Ok(Ok(())))
    }
    fn list_failed(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        self.0.get_recorder_ref().scan(|id, state| {
            if *state == async_tasks_state_map::TaskState::Failed {
                ids.push(*id);
            }
        });
        ids
    }
    fn wait(&self, _id: u64) -> Option<u8> {
        None
    }
}

/// The floor: a raw scc map of state codes.
pub struct RawMap(Arc<scc::HashMap<u64, u8>>);

impl RawMap {
    /// Claims `id` for an attempt: insert `Working`, or turn `Failed` into
    /// `Working`. A fresh id costs exactly one insert.
    fn claim(&self, id: u64) -> Result<(), u8> {
        if self.0.insert_sync(id, WORKING).is_ok() {
            return Ok(());
        }
        let seen = self.0.update_sync(&id, |_, state| {
            let seen = *state;
            if seen == FAILED {
                *state = WORKING;
            }
            seen
        });
        match seen {
            Some(FAILED) => Ok(()),
            Some(REVOKING) => Err(SUCCESS),
            Some(state) => Err(state),
            None => Err(NOT_FOUND),
        }
    }

    fn settle(map: &scc::HashMap<u64, u8>, id: u64, ok: bool) {
        map.update_sync(&id, |_, state| *state = if ok { SUCCESS } else { FAILED });
    }
}

impl Contestant for RawMap {
    const ID: Name = Name::RawScc;
    fn new() -> Self {
        RawMap(Arc::new(scc::HashMap::new()))
    }
    fn launch_block(&self, id: u64, ok: bool) -> Launch {
        drive(async {
            if let Err(state) = self.claim(id) {
                return Launch::Refused(state);
            }
            let ran_ok = task(ok).await.is_ok();
            RawMap::settle(&self.0, id, ran_ok);
            Launch::Ran(ran_ok)
        })
    }
    fn launch_spawn(&self, id: u64, done: &Arc<AtomicUsize>) -> bool {
        if self.claim(id).is_err() {
            return false;
        }
        let (map, done) = (self.0.clone(), done.clone());
        tokio::spawn(async move {
            done.fetch_add(1, Ordering::Relaxed);
            RawMap::settle(&map, id, true);
        });
        true
    }
    fn query(&self, id: u64) -> u8 {
        drive(async { self.0.read_sync(&id, |_, state| *state) }).unwrap_or(NOT_FOUND)
    }
    fn revoke(&self, id: u64) -> bool {
        drive(async {
            let claimed = self.0.update_sync(&id, |_, state| {
                let ok = *state == SUCCESS;
                if ok {
                    *state = REVOKING;
                }
                ok
            });
            if claimed != Some(true) {
                return false;
            }
            let ran_ok = task(true).await.is_ok();
            if ran_ok {
                self.0.remove_sync(&id);
            }
            ran_ok
        })
    }
    fn list_failed(&self) -> Vec<u64> {
        let mut ids = Vec::new();
        self.0.iter_sync(|id, state| {
            if *state == FAILED {
                ids.push(*id);
            }
            true
        });
        ids
    }
    fn wait(&self, id: u64) -> Option<u8> {
        // The floor of waiting on a finished id: one read.
        Some(self.query(id))
    }
}

/// A hand-written recorder: one `Mutex<HashMap>` and one `Notify` that wakes
/// every waiter whenever any task ends.
pub struct MutexMap(Arc<MutexInner>);

pub struct MutexInner {
    states: Mutex<HashMap<u64, u8>>,
    ended: tokio::sync::Notify,
}

impl MutexInner {
    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u8>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn claim(&self, id: u64) -> Result<(), u8> {
        let mut states = self.states();
        let state = states.entry(id).or_insert(NOT_FOUND);
        match *state {
            NOT_FOUND | FAILED => {
                *state = WORKING;
                Ok(())
            }
            REVOKING => Err(SUCCESS),
            other => Err(other),
        }
    }

    fn settle(&self, id: u64, ok: bool) {
        self.states().insert(id, if ok { SUCCESS } else { FAILED });
        self.ended.notify_waiters();
    }
}

impl Contestant for MutexMap {
    const ID: Name = Name::MutexMap;
    fn new() -> Self {
        MutexMap(Arc::new(MutexInner {
            states: Mutex::new(HashMap::new()),
            ended: tokio::sync::Notify::new(),
        }))
    }
    fn launch_block(&self, id: u64, ok: bool) -> Launch {
        drive(async {
            if let Err(state) = self.0.claim(id) {
                return Launch::Refused(state);
            }
            let ran_ok = task(ok).await.is_ok();
            self.0.settle(id, ran_ok);
            Launch::Ran(ran_ok)
        })
    }
    fn launch_spawn(&self, id: u64, done: &Arc<AtomicUsize>) -> bool {
        if self.0.claim(id).is_err() {
            return false;
        }
        let (inner, done) = (self.0.clone(), done.clone());
        tokio::spawn(async move {
            done.fetch_add(1, Ordering::Relaxed);
            inner.settle(id, true);
        });
        true
    }
    fn query(&self, id: u64) -> u8 {
        drive(async { self.0.states().get(&id).copied() })
            .map_or(NOT_FOUND, |s| if s == REVOKING { SUCCESS } else { s })
    }
    fn revoke(&self, id: u64) -> bool {
        drive(async {
            {
                let mut states = self.0.states();
                match states.get_mut(&id) {
                    Some(state) if *state == SUCCESS => *state = REVOKING,
                    _ => return false,
                }
            }
            let ran_ok = task(true).await.is_ok();
            let mut states = self.0.states();
            if ran_ok {
                states.remove(&id);
            } else {
                states.insert(id, SUCCESS);
            }
            ran_ok
        })
    }
    fn list_failed(&self) -> Vec<u64> {
        let states = self.0.states();
        states
            .iter()
            .filter(|(_, state)| **state == FAILED)
            .map(|(id, _)| *id)
            .collect()
    }
    fn wait(&self, id: u64) -> Option<u8> {
        Some(drive(async {
            loop {
                let ended = self.0.ended.notified();
                let mut ended = std::pin::pin!(ended);
                ended.as_mut().enable();
                let state = self.query(id);
                if state != WORKING {
                    return state;
                }
                ended.await;
            }
        }))
    }
}
