//! The six properties a concurrent run must keep, checked at quiescence, and
//! the typed report of the one it broke.

use super::actors::Run;
use super::wakes::Wakes;
use crate::history::{History, at_most_once_per_epoch};
use crate::linearizability::check_all;
use crate::operation::{Operation, StepSpec};
use crate::protocol::Id;
use crate::subject::Subject;
use async_tasks_recorder::{StateCounts, TaskState};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The property a run broke, numbered as in the module documentation.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Property {
    /// 1. At most one successful side effect per id and revoke epoch, and a
    ///    revoke's only after a success.
    OneSuccessPerEpoch,
    /// 2. `Success` exactly when the current epoch has its successful side effect.
    SuccessIffEpochSucceeded,
    /// 3. No id left `Working` once every task has ended.
    NoneLeftWorking,
    /// 4. Listings and counts agree with queries.
    ListingsAgree,
    /// 5. No `wait` left asleep: no lost wake-up.
    NoLostWakeup,
    /// 6. Each id's history is linearizable against `spec::step`.
    Linearizable,
    /// Not a property of the subject: an actor of the run panicked outside
    /// the tasks, which the run does not expect of any subject.
    ActorFailed,
}

/// A broken property and what showed it.
#[derive(Clone, Debug)]
pub struct Violation {
    pub property: Property,
    pub detail: String,
}

impl Violation {
    pub(super) fn new(property: Property, detail: impl Into<String>) -> Self {
        Violation {
            property,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.property, self.detail)
    }
}

/// An observer of the run: its id, its wake-up bookkeeping, its task.
pub(super) type Observer = (Id, Arc<Wakes>, JoinHandle<()>);

/// Properties 3, 1 and 2, id by id: queries each id (logging the query) and
/// returns the states read, indexed by id.
pub(super) fn final_states<S: Subject>(
    run: &Run<S>,
    ids: &[Id],
) -> Result<Vec<TaskState>, Violation> {
    let mut states = Vec::new();
    for &id in ids {
        let invoked = run.history.now();
        let state = run.subject.query(id);
        run.history
            .record(id, Operation::Query(state), invoked, run.history.now());
        states.push(state);
        // 3. Nothing is left `Working`.
        if state == TaskState::Working {
            return Err(Violation::new(
                Property::NoneLeftWorking,
                format!("id {id} is left Working after every task ended"),
            ));
        }
        // 1 and 2. At most once per epoch; `Success` iff the epoch succeeded.
        let succeeded = at_most_once_per_epoch(&run.history.effects_of(id))
            .map_err(|e| Violation::new(Property::OneSuccessPerEpoch, format!("id {id}: {e}")))?;
        if succeeded != (state == TaskState::Success) {
            return Err(Violation::new(
                Property::SuccessIffEpochSucceeded,
                format!(
                    "id {id} reads {state:?} but its epoch has {} success: {:?}",
                    if succeeded { "a" } else { "no" },
                    run.history.effects_of(id)
                ),
            ));
        }
    }
    Ok(states)
}

/// Property 4: listings and counts agree with the queries' `states`.
pub(super) fn listings_agree<S: Subject>(
    subject: &S,
    ids: &[Id],
    states: &[TaskState],
) -> Result<(), Violation> {
    let mut counts = StateCounts::default();
    for state in [TaskState::Working, TaskState::Success, TaskState::Failed] {
        let mut listed = subject.list(state);
        listed.sort_unstable();
        let queried: Vec<Id> = ids
            .iter()
            .copied()
            .filter(|&id| states[id as usize] == state)
            .collect();
        if listed != queried {
            return Err(Violation::new(
                Property::ListingsAgree,
                format!("list({state:?}) = {listed:?}, queries say {queried:?}"),
            ));
        }
        if subject.count(state) != listed.len() {
            return Err(Violation::new(
                Property::ListingsAgree,
                format!(
                    "count({state:?}) = {}, list({state:?}) = {listed:?}",
                    subject.count(state)
                ),
            ));
        }
        match state {
            TaskState::Working => counts.working = listed.len(),
            TaskState::Success => counts.success = listed.len(),
            _ => counts.failed = listed.len(),
        }
    }
    if subject.counts() != counts {
        return Err(Violation::new(
            Property::ListingsAgree,
            format!("counts {:?}, listings say {counts:?}", subject.counts()),
        ));
    }
    Ok(())
}

/// Property 5: no waiter sleeps forever. A waiter asleep inside `wait` with
/// nothing left to wake it is stuck. tokio defers the wake-up of a task that
/// yields until its worker is between tasks, so a yielding wait looks asleep
/// for a moment: only a waiter that stays asleep, unpolled, across `STILL`
/// checks counts as stuck. Returns once every observer has ended.
pub(super) async fn no_waiter_asleep<S: Subject>(
    subject: &S,
    observers: &[Observer],
) -> Result<(), Violation> {
    const STILL: u32 = 100;
    let mut asleep = None;
    let mut checks = 0;
    while !observers.iter().all(|(_, _, handle)| handle.is_finished()) {
        let now = observers.iter().find_map(|(id, wakes, handle)| {
            let stuck = !handle.is_finished()
                && wakes.waiting.load(Ordering::SeqCst)
                && wakes.asleep.load(Ordering::SeqCst);
            stuck.then(|| (*id, wakes.polls.load(Ordering::SeqCst)))
        });
        checks = if now.is_some() && now == asleep {
            checks + 1
        } else {
            0
        };
        asleep = now;
        if let (Some((id, _)), STILL) = (asleep, checks) {
            let state = subject.query(id);
            return Err(Violation::new(
                Property::NoLostWakeup,
                format!("a wait on id {id} sleeps forever; the id is {state:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Property 6: each id's history is linearizable against `spec::step`.
pub(super) fn linearizable(history: &History) -> Result<(), Violation> {
    check_all(&StepSpec, &history.events()).map_err(|(id, violation)| {
        Violation::new(
            Property::Linearizable,
            format!("id {id} is not linearizable:\n{violation}"),
        )
    })
}
