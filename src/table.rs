//! The table: one map entry per id that is not `NotFound`, holding its
//! [`Phase`]; a second map holding the [`Signal`] of each `Working` id that
//! somebody waits on; and a set of the `Failed` ids, for listing them.
//!
//! # The algorithm
//! Every mutating operation is one call of [`spec::step`](crate::spec::step)
//! inside the map's exclusive section for that key ([`Table::apply`], and
//! [`Table::finish`] for the drop guard's finishing operations). Reads
//! take the shared section ([`Table::phase`]). scc orders all sections on one
//! key, so each operation takes effect at one instant inside its call: its
//! linearization point (proofs/P5-linearizable.md). `NotFound` is the
//! absence of an entry, so a revoke that completes removes the entry and a
//! never-seen id costs nothing.
//!
//! # Waiters
//! A slot is two bytes, the phase and a `waited` flag, so the hot path costs
//! what a raw `HashMap<K, u8>` costs. The signals live in `waiters`, touched
//! only by `wait` and by the transition that ends a waited-on `Working`
//! period, and only while the id's entry in `phases` is held: the flag and
//! the presence of a signal change together, always in the order
//! `phases` entry, then `waiters` entry, so the two locks cannot deadlock.
//! A waiter registers under the entry lock only if the phase is `Working`;
//! the transition out of `Working` takes the signal under the same lock and
//! fires it after releasing it (proofs/P7-wait-no-lost-wakeup.md).
//!
//! # Why one map and a scan, plus one index for `Failed`
//! The published 2.x recorder keeps five sets and touches three to five of
//! them on every launch, each its own lock and hash. Launches and queries
//! are the hot path, so the table keeps one entry per id, and a launch that
//! succeeds costs what a raw map costs for the same states (insert, then
//! update). Listing `Working` or `Success` walks the map once, bucket by
//! bucket (a few nanoseconds per entry; see the `listing` benchmark).
//!
//! `Failed` is the state that gets listed, by retry sweeps, and usually a
//! few ids among many; so its ids are also kept in `failed`, and listing or
//! counting them walks only that set. Only the two transitions that enter
//! or leave `Failed` touch it (`Finish(Err)` enters; a `Launch` accepted
//! from `Failed` is the only way out, by [`spec::step`]), and only under the
//! id's entry in `phases`, in the order `phases` entry, then `failed` entry,
//! as for `waiters`. So an id is in `failed` exactly when its phase is
//! `Failed`, except inside that section, where the set changes at one
//! instant: that instant is the transition's linearization point. No flag is
//! needed: the phase before and after `step` says whether to touch the set.
//! A launch from `NotFound`, a success, a query and a revoke never touch it.
//! Both listings are weakly consistent, as defined in
//! proofs/P8-listing-weakly-consistent.md.

use crate::signal::Signal;
use crate::spec::{self, Op, Phase, Response, TaskState};
use crate::sync::{Arc, DefaultHashBuilder, Equivalent, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

/// What the table stores for an id that is not `NotFound`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    phase: Phase,
    /// Whether `waiters` holds a signal for this id; only while `Working`.
    waited: bool,
}

impl Slot {
    fn new(phase: Phase) -> Self {
        Slot {
            phase,
            waited: false,
        }
    }
}

/// The state of every id.
pub(crate) struct Table<K, S: BuildHasher> {
    phases: HashMap<K, Slot, S>,
    /// Rarely touched, so it keeps the default hasher and `S` need not be `Clone`.
    waiters: HashMap<K, Arc<Signal>, DefaultHashBuilder>,
    /// The ids whose phase is `Failed`; changed only in their `phases`
    /// section. Also the default hasher, for the same reasons.
    failed: HashSet<K, DefaultHashBuilder>,
}

/// A `Working` id's signal, or the state that made waiting unnecessary.
pub(crate) enum WaitOn {
    Done(TaskState),
    Signal(Arc<Signal>),
}

impl<K, S> Table<K, S>
where
    K: Eq + Hash + Clone,
    S: BuildHasher,
{
    pub(crate) fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Table {
            phases: HashMap::with_capacity_and_hasher(capacity, hasher),
            waiters: HashMap::default(),
            failed: HashSet::default(),
        }
    }

    /// Applies `op` to `id`. The exclusive section in which `spec::step`
    /// runs is the linearization point of every mutating operation. When the
    /// id leaves a waited-on `Working` period, its waiters are woken after
    /// the entry's lock is released.
    #[inline]
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", name = "step", skip_all, fields(op = ?op), ret))]
    pub(crate) fn apply(&self, id: K, op: Op) -> Response {
        let (response, waiters) = match op {
            Op::Launch => self.launch(id),
            _ => self.update(&id, op),
        };
        if let Some(signal) = waiters {
            // Only a `Finish` leaves `Working`, and it goes through `finish`.
            if let Err(panic) = signal.fire() {
                std::panic::resume_unwind(panic);
            }
        }
        response
    }

    /// Applies a finishing operation (`Finish`, `FinishRevoke`) to `id`, in
    /// the same exclusive section as [`apply`](Self::apply), and returns the
    /// signal to fire if the id left a waited-on `Working` period. The
    /// caller, the drop guard, fires it. If the key's `Hash` or `Eq` panics,
    /// nothing was written and the call may be repeated.
    #[inline]
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "debug", name = "step", skip_all, fields(op = ?op)))]
    pub(crate) fn finish(&self, id: &K, op: Op) -> Option<Arc<Signal>> {
        self.update(id, op).1
    }

    /// `Launch`, the only operation that can create an entry. A fresh id,
    /// the common case, costs one insert, as in a raw map; a recorded one one
    /// update. An insert that finds the id, or an update that finds it gone,
    /// has no effect, and the loop retries: each retry means a concurrent
    /// operation on the id took effect (lock-free, not wait-free).
    #[inline]
    fn launch(&self, mut id: K) -> (Response, Option<Arc<Signal>>) {
        let (fresh, accepted) = spec::step(Phase::NotFound, Op::Launch);
        loop {
            match self.phases.insert_sync(id, Slot::new(fresh)) {
                Ok(()) => return (accepted, None),
                Err((back, _)) => id = back,
            }
            let updated = self
                .phases
                .update_sync(&id, |id, slot| self.step_slot(id, slot, Op::Launch));
            if let Some(done) = updated {
                return done;
            }
        }
    }

    /// Every operation but `Launch`: none of them leaves `NotFound` (spec
    /// test `only_launch_leaves_not_found`), so an absent id needs no entry.
    /// Only a finished revoke can make an id `NotFound` and so remove its
    /// entry; the others take the cheaper in-place update.
    #[inline]
    fn update(&self, id: &K, op: Op) -> (Response, Option<Arc<Signal>>) {
        let done = if let Op::FinishRevoke(_) = op {
            let mut done = None;
            self.phases.remove_if_sync(id, |slot| {
                done = Some(self.step_slot(id, slot, op));
                slot.phase == Phase::NotFound
            });
            done
        } else {
            self.phases
                .update_sync(id, |id, slot| self.step_slot(id, slot, op))
        };
        done.unwrap_or((spec::step(Phase::NotFound, op).1, None))
    }

    /// Runs `step` on a held slot, keeps `failed` in step with it, and takes
    /// the id's signal when it leaves a waited-on `Working` period.
    #[inline(always)]
    fn step_slot(&self, id: &K, slot: &mut Slot, op: Op) -> (Response, Option<Arc<Signal>>) {
        let (next, response) = spec::step(slot.phase, op);
        // The index and the removal hash and compare the key, foreign code
        // that may panic. Both come before any write to the slot, and both
        // are idempotent, so a panic leaves the slot as it was and a retry
        // of the section redoes them.
        let was_failed = slot.phase == Phase::Failed;
        if was_failed != (next == Phase::Failed) {
            self.index_failed(id, !was_failed);
        }
        let waiters = if slot.waited && next != Phase::Working {
            let signal = self.waiters.remove_sync(id).map(|(_, signal)| signal);
            slot.waited = false;
            signal
        } else {
            None
        };
        slot.phase = next;
        (response, waiters)
    }

    /// Adds `id` to `failed` (it enters `Failed`) or removes it (it leaves).
    /// Called only under the id's `phases` entry, so the set and the phase
    /// agree outside that section. Out of line: the success path never
    /// comes here.
    #[cold]
    #[inline(never)]
    fn index_failed(&self, id: &K, enters: bool) {
        if enters {
            let _ = self.failed.insert_sync(id.clone());
        } else {
            self.failed.remove_sync(id);
        }
    }

    /// The id's phase, read under the shared lock of its entry.
    #[inline]
    pub(crate) fn phase<Q>(&self, id: &Q) -> Phase
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.phases
            .read_sync(id, |_, slot| slot.phase)
            .unwrap_or(Phase::NotFound)
    }

    /// The signal to sleep on if `id` is `Working`, else its state. Handing
    /// the signal out under the entry lock, while `apply` takes it back under
    /// the same lock, is what rules out a lost wake-up.
    pub(crate) fn wait_on<Q>(&self, id: &Q) -> WaitOn
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let state = self.phase(id).state();
        if state != TaskState::Working {
            return WaitOn::Done(state);
        }
        self.phases
            .update_sync(id, |id, slot| match slot.phase {
                Phase::Working => {
                    // Clone, hash and compare (foreign code) before the flag
                    // is set, so a panic leaves the slot as it was.
                    let signal = self.waiters.entry_sync(id.clone()).or_default();
                    slot.waited = true;
                    WaitOn::Signal(signal.get().clone())
                }
                phase => WaitOn::Done(phase.state()),
            })
            .unwrap_or(WaitOn::Done(TaskState::NotFound))
    }

    /// Calls `visit` on every id whose state is `state`, bucket by bucket:
    /// of `failed` for `Failed` (time in proportion to the failed ids), of
    /// the whole table otherwise.
    pub(crate) fn for_each_in(&self, state: TaskState, mut visit: impl FnMut(&K)) {
        match state {
            TaskState::NotFound => return,
            TaskState::Failed => {
                self.failed.iter_sync(|id| {
                    visit(id);
                    true
                });
                return;
            }
            TaskState::Working | TaskState::Success => {}
        }
        self.phases.iter_sync(|id, slot| {
            if slot.phase.state() == state {
                visit(id);
            }
            true
        });
    }

    /// Counts the ids in `state` with one walk, of `failed` alone for
    /// `Failed`. A visit repeated by a concurrent resize counts twice.
    pub(crate) fn count(&self, state: TaskState) -> usize {
        let mut count = 0;
        self.for_each_in(state, |_| count += 1);
        count
    }

    /// Counts ids per state in one pass: `[working, success, failed]`.
    pub(crate) fn counts(&self) -> [usize; 3] {
        let mut counts = [0; 3];
        self.phases.iter_sync(|_, slot| {
            match slot.phase.state() {
                TaskState::Working => counts[0] += 1,
                TaskState::Success => counts[1] += 1,
                TaskState::Failed => counts[2] += 1,
                TaskState::NotFound => {}
            }
            true
        });
        counts
    }

    /// Number of ids not `NotFound`.
    pub(crate) fn len(&self) -> usize {
        self.phases.len()
    }
}

impl<K, S> std::fmt::Debug for Table<K, S>
where
    K: Eq + Hash + std::fmt::Debug,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        self.phases.iter_sync(|id, slot| {
            map.entry(id, &slot.phase.state());
            true
        });
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::{Op, Outcome, Phase, step};

    /// `step_slot` touches the failed-id index only when the phase enters or
    /// leaves `Failed`. That is correct only because `Finish(Err)` from
    /// `Working` is the one way in and an accepted `Launch` the one way out.
    #[test]
    fn failed_is_entered_only_by_finish_err_and_left_only_by_launch() {
        let phases = [
            Phase::NotFound,
            Phase::Working,
            Phase::Failed,
            Phase::Success,
            Phase::Revoking,
        ];
        let ops = [
            Op::Launch,
            Op::Finish(Outcome::Ok),
            Op::Finish(Outcome::Err),
            Op::BeginRevoke,
            Op::FinishRevoke(Outcome::Ok),
            Op::FinishRevoke(Outcome::Err),
        ];
        for phase in phases {
            for op in ops {
                let (next, _) = step(phase, op);
                match (phase == Phase::Failed, next == Phase::Failed) {
                    (false, true) => {
                        assert_eq!((phase, op), (Phase::Working, Op::Finish(Outcome::Err)))
                    }
                    (true, false) => assert_eq!(op, Op::Launch, "{phase:?} {op:?}"),
                    _ => {}
                }
            }
        }
    }
}
