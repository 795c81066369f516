//! One family of mutants of the recorder's protocol, each with one seeded
//! defect that the checkers must catch.
//!
//! Every member is [`Mutant`] over a [`Steps`] type. The shared base,
//! [`Base`], is `src/table.rs` rebuilt on the crate's own shim (scc's map,
//! the crate's `Signal`, and under `--cfg loom` their loom builds), and every
//! accepted launch and revoke is settled by the crate's real drop guard,
//! [`Settle`]. `Steps` names the steps a mutant may change; each default
//! method is the real step, and each mutant overrides exactly one, so the
//! seeded defect is the only one. [`Faithful`] overrides none: the checkers
//! run it too, and must pass it, or a bite proves nothing.
//!
//! - [`SplitLaunch`]: the launch checks the phase, then claims `Working` in a
//!   second section, from the phase it read.
//! - [`LostWakeup`]: `wait` reads `Working`, then registers on the signal in
//!   a second section without checking the phase again.
//! - [`FailedRevokeRemoves`]: a finished revoke removes the id's entry
//!   whatever its outcome, so a revoke that failed forgets the success.
//! - [`UnlockedFailedIndex`], [`StaleFailedIndex`]: the failed-id index
//!   written outside the entry section, or never emptied.
#![allow(dead_code)]

use super::protocols::{Id, Protocol, yield_now};
use async_tasks_recorder::Finishes;
use async_tasks_recorder::Settle;
use async_tasks_recorder::TaskState;
use async_tasks_recorder::signal::Signal;
use async_tasks_recorder::spec::{self, Op, Outcome, Phase, Response, RevokeRefusal};
use async_tasks_recorder::sync::{Arc, DefaultHashBuilder, HashMap};
use scc::hash_map::Entry;
use std::future::Future;
use std::marker::PhantomData;

/// What the base stores for an id that is not `NotFound`, as in `src/table.rs`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    phase: Phase,
    /// Whether `waiters` holds a signal for this id; only while `Working`.
    waited: bool,
}

/// `src/table.rs` on the shim: one entry per recorded id, the signal of
/// each waited-on `Working` id, and an index of the `Failed` ids, kept
/// inside the id's entry section in the same lock order (`phases` entry,
/// then the others). As in `src/table.rs:Table::for_each_in`, a listing of
/// `Failed` walks the index and one of `Working` or `Success` walks the
/// entries.
#[derive(Default)]
pub struct Base {
    phases: HashMap<Id, Slot, DefaultHashBuilder>,
    waiters: HashMap<Id, Arc<Signal>, DefaultHashBuilder>,
    /// The ids whose phase is `Failed` (`src/table.rs`'s `failed`).
    failed: HashMap<Id, (), DefaultHashBuilder>,
}

/// The steps of the protocol a mutant may change. Each default is the real
/// step; a mutant overrides exactly one.
pub trait Steps: Send + Sync + 'static {
    /// A name for reports.
    const NAME: &'static str;

    /// The launch transition: `Ok` when this caller now owns `Working`.
    fn launch(base: &Base, id: Id) -> impl Future<Output = Result<(), TaskState>> + Send {
        std::future::ready(base.launch::<Self>(id))
    }

    /// Resolves once the id is not `Working`, with its state then.
    fn wait(base: &Base, id: Id) -> impl Future<Output = TaskState> + Send {
        base.wait::<Self>(id)
    }

    /// Keeps the failed-id index in step with a transition `from` → `to`,
    /// inside the id's entry section.
    fn index(base: &Base, id: Id, from: Phase, to: Phase) {
        base.index_failed(id, from, to);
    }

    /// Whether the section that applied `op` and left the phase `to` removes
    /// the id's entry. `NotFound` is the absence of an entry, so the real
    /// step removes it exactly then: after a completed revoke
    /// (`src/table.rs:Table::update`).
    fn removes_entry(_op: Op, to: Phase) -> bool {
        to == Phase::NotFound
    }

    /// Runs after the id's entry section is released, with the transition
    /// the section made. The real protocol does nothing there.
    fn after_section(_base: &Base, _id: Id, _from: Phase, _to: Phase) {}
}

impl Base {
    /// Applies `op` to `id` in one section of its entry, as
    /// `src/table.rs:Table::apply` does, and fires the signal of a waited-on
    /// `Working` period that ends, after the section.
    fn apply<M: Steps + ?Sized>(&self, id: Id, op: Op) -> Response {
        let (response, signal) = self.in_section::<M>(id, op, |phase| phase);
        if let Some(signal) = signal {
            if let Err(panic) = signal.fire() {
                std::panic::resume_unwind(panic);
            }
        }
        response
    }

    /// Applies `op` inside the id's entry section to the phase `read` makes
    /// of the stored one (the stored phase itself, but for a mutant that
    /// acts on an earlier reading), writes the next phase (removing the
    /// entry where [`Steps::removes_entry`] says), and takes the signal when
    /// a waited-on `Working` period ends.
    fn in_section<M: Steps + ?Sized>(
        &self,
        id: Id,
        op: Op,
        read: impl FnOnce(Phase) -> Phase,
    ) -> (Response, Option<Arc<Signal>>) {
        let mut moved = None;
        let apply = |slot: &mut Slot| {
            let from = slot.phase;
            let (next, response) = spec::step(read(from), op);
            moved = Some((from, next));
            slot.phase = next;
            M::index(self, id, from, next);
            let signal = if slot.waited && next != Phase::Working {
                slot.waited = false;
                self.waiters.remove_sync(&id).map(|(_, signal)| signal)
            } else {
                None
            };
            (response, signal)
        };
        let done = match self.phases.entry_sync(id) {
            Entry::Occupied(mut entry) => {
                let done = apply(entry.get_mut());
                if M::removes_entry(op, entry.get().phase) {
                    let _ = entry.remove_entry();
                }
                done
            }
            Entry::Vacant(entry) => {
                let mut slot = Slot {
                    phase: Phase::NotFound,
                    waited: false,
                };
                let done = apply(&mut slot);
                if !M::removes_entry(op, slot.phase) {
                    entry.insert_entry(slot);
                }
                done
            }
        };
        if let Some((from, to)) = moved {
            M::after_section(self, id, from, to);
        }
        done
    }

    fn launch<M: Steps + ?Sized>(&self, id: Id) -> Result<(), TaskState> {
        match self.apply::<M>(id, Op::Launch) {
            Response::LaunchRefused(state) => Err(state),
            _ => Ok(()),
        }
    }

    fn phase(&self, id: Id) -> Phase {
        self.phases
            .read_sync(&id, |_, slot| slot.phase)
            .unwrap_or(Phase::NotFound)
    }

    /// `src/table.rs:Table::wait_on` and the recorder's `wait`: registers
    /// only inside a section that sees `Working`.
    async fn wait<M: Steps + ?Sized>(&self, id: Id) -> TaskState {
        loop {
            let state = self.phase(id).state();
            if state != TaskState::Working {
                return state;
            }
            let signal = self.phases.update_sync(&id, |id, slot| match slot.phase {
                Phase::Working => {
                    slot.waited = true;
                    let signal = self.waiters.entry_sync(*id).or_default();
                    Ok(signal.get().clone())
                }
                phase => Err(phase.state()),
            });
            match signal {
                Some(Ok(signal)) => Signal::fired(signal).await,
                Some(Err(state)) => return state,
                None => return TaskState::NotFound,
            }
        }
    }

    /// The real failed-id index step: `src/table.rs:Table::step_slot`.
    fn index_failed(&self, id: Id, from: Phase, to: Phase) {
        Self::follow(&self.failed, id, from == Phase::Failed, to == Phase::Failed);
    }

    /// Adds `id` to `index` when it enters the indexed state, removes it
    /// when it leaves.
    fn follow(index: &HashMap<Id, (), DefaultHashBuilder>, id: Id, was: bool, is: bool) {
        match (was, is) {
            (false, true) => {
                let _ = index.insert_sync(id, ());
            }
            (true, false) => {
                index.remove_sync(&id);
            }
            _ => {}
        }
    }

    /// `src/table.rs:Table::for_each_in`: `Failed` from its index, `Working`
    /// and `Success` from a walk of the entries.
    fn list(&self, state: TaskState) -> Vec<Id> {
        let mut ids = Vec::new();
        match state {
            TaskState::NotFound => {}
            TaskState::Failed => {
                self.failed.iter_sync(|id, ()| {
                    ids.push(*id);
                    true
                });
            }
            TaskState::Working | TaskState::Success => {
                self.phases.iter_sync(|id, slot| {
                    if slot.phase.state() == state {
                        ids.push(*id);
                    }
                    true
                });
            }
        }
        ids
    }
}

/// A member of the family: the base with the steps of `M`.
pub struct Mutant<M> {
    base: Arc<Base>,
    steps: PhantomData<fn() -> M>,
}

impl<M> Clone for Mutant<M> {
    fn clone(&self) -> Self {
        Mutant {
            base: self.base.clone(),
            steps: PhantomData,
        }
    }
}

impl<M> Default for Mutant<M> {
    fn default() -> Self {
        Mutant {
            base: Arc::default(),
            steps: PhantomData,
        }
    }
}

/// The drop guard's finishing section: the base's, with `M`'s steps.
impl<M: Steps> Finishes<Id> for Mutant<M> {
    fn finish(&self, id: &Id, op: Op) -> Option<Arc<Signal>> {
        self.base.in_section::<M>(*id, op, |phase| phase).1
    }
}

impl<M: Steps> Protocol for Mutant<M> {
    const NAME: &'static str = M::NAME;

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        M::launch(&self.base, id).await?;
        let attempt = Settle::new(self, id, Op::Finish);
        let output = task.await;
        attempt.settle(Outcome::of(&output));
        Ok(output)
    }

    fn query(&self, id: Id) -> TaskState {
        self.base.phase(id).state()
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Result<(), ()>, RevokeRefusal>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        match self.base.apply::<M>(id, Op::BeginRevoke) {
            Response::Accepted => {}
            Response::RevokeRefused(refusal) => return Err(refusal),
            _ => return Err(RevokeRefusal::NotSuccess),
        }
        let revoking = Settle::new(self, id, Op::FinishRevoke);
        let output = revoke.await;
        revoking.settle(Outcome::of(&output));
        Ok(output)
    }

    async fn wait(&self, id: Id) -> TaskState {
        M::wait(&self.base, id).await
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.base.list(state)
    }
}

/// The base with every real step: the control of the family.
pub type Faithful = Mutant<Real>;

/// No step overridden.
pub struct Real;

impl Steps for Real {
    const NAME: &'static str = "the mutants' base, no step changed";
}

/// Mutant: a launch reads the phase and claims in two separate sections,
/// so two launchers can both claim one epoch.
pub type SplitLaunch = Mutant<SplitLaunchSteps>;

pub struct SplitLaunchSteps;

impl Steps for SplitLaunchSteps {
    const NAME: &'static str = "mutant: launch checks, then claims";

    async fn launch(base: &Base, id: Id) -> Result<(), TaskState> {
        let checked = base.phase(id);
        if let (_, Response::LaunchRefused(state)) = spec::step(checked, Op::Launch) {
            return Err(state);
        }
        // MUTANT: the claim is a second section, which applies the launch
        // to the phase read in the first, after a pause that lets another
        // launcher check too.
        yield_now().await;
        base.in_section::<Self>(id, Op::Launch, |_| checked);
        Ok(())
    }
}

/// Mutant: `wait` reads the phase and, if `Working`, registers on the signal
/// in a second section, after a pause, without checking the phase again. A
/// finish in between leaves it asleep.
pub type LostWakeup = Mutant<LostWakeupSteps>;

pub struct LostWakeupSteps;

impl Steps for LostWakeupSteps {
    const NAME: &'static str = "mutant: wait registers without re-checking";

    async fn wait(base: &Base, id: Id) -> TaskState {
        loop {
            let state = base.phase(id).state();
            if state != TaskState::Working {
                return state;
            }
            // MUTANT: registers in a second section, after a pause that
            // lets the attempt finish, without re-checking the phase.
            yield_now().await;
            let signal = base.phases.update_sync(&id, |id, slot| {
                slot.waited = true;
                base.waiters.entry_sync(*id).or_default().get().clone()
            });
            let Some(signal) = signal else {
                return TaskState::NotFound;
            };
            Signal::fired(signal).await;
        }
    }
}

/// Mutant: a finished revoke removes the id's entry whatever its outcome.
/// A revoke whose compensation failed returns the id to `Success`
/// (`FinishRevoke(Err)`), but the entry is gone: the id reads `NotFound`,
/// drops out of the listing of `Success`, and its epoch can succeed again.
pub type FailedRevokeRemoves = Mutant<FailedRevokeRemovesSteps>;

pub struct FailedRevokeRemovesSteps;

impl Steps for FailedRevokeRemovesSteps {
    const NAME: &'static str = "mutant: a failed revoke removes the id";

    fn removes_entry(op: Op, to: Phase) -> bool {
        // MUTANT: every finished revoke removes the entry, not only the one
        // that left the id `NotFound`.
        to == Phase::NotFound || matches!(op, Op::FinishRevoke(_))
    }
}

/// Mutant: the failed-id index follows the phase in a second section, after
/// the id's entry is released. A finish into `Failed` and a relaunch out of
/// it then race on the index: the relaunch's removal can run before the
/// finish's insertion, and the id stays listed as `Failed` for good.
pub type UnlockedFailedIndex = Mutant<UnlockedFailedIndexSteps>;

pub struct UnlockedFailedIndexSteps;

impl Steps for UnlockedFailedIndexSteps {
    const NAME: &'static str = "mutant: failed-id index changed outside the entry lock";

    fn index(_base: &Base, _id: Id, _from: Phase, _to: Phase) {}

    fn after_section(base: &Base, id: Id, from: Phase, to: Phase) {
        // MUTANT: the failed-id index is written outside the entry section.
        base.index_failed(id, from, to);
    }
}

/// Mutant: the failed-id index gains every id that fails and loses none, so
/// a relaunched id stays listed as `Failed`.
pub type StaleFailedIndex = Mutant<StaleFailedIndexSteps>;

pub struct StaleFailedIndexSteps;

impl Steps for StaleFailedIndexSteps {
    const NAME: &'static str = "mutant: a relaunch leaves the id listed as Failed";

    fn index(base: &Base, id: Id, from: Phase, to: Phase) {
        // MUTANT: nothing takes an id out of the failed-id index.
        if from != Phase::Failed && to == Phase::Failed {
            let _ = base.failed.insert_sync(id, ());
        }
    }
}
