//! The table: one map entry per id that is not `NotFound`, holding its
//! [`Phase`], and a second map holding the [`Signal`] of each `Working` id
//! that somebody waits on.
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
//! # Why one map and a scan, not one set per state
//! The published 2.x recorder keeps five sets and touches three to five of
//! them on every launch, each its own lock and hash. Listing one state is
//! rare (a retry sweep); launches and queries are the hot path. So the table
//! keeps one entry per id, a launch costs what a raw map costs for the same
//! states (insert, then update), and a listing walks the map once, bucket by
//! bucket (a few nanoseconds per entry; see the `listing` benchmark). The
//! listing is weakly consistent, as defined in
//! proofs/P8-listing-weakly-consistent.md.

use crate::signal::Signal;
use crate::spec::{self, Op, Phase, Response, TaskState};
use crate::sync::{Arc, DefaultHashBuilder, Equivalent, HashMap};
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
        }
    }

    /// Applies `op` to `id`. The exclusive section in which `spec::step`
    /// runs is the linearization point of every mutating operation. When the
    /// id leaves a waited-on `Working` period, its waiters are woken after
    /// the entry's lock is released.
    #[inline]
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

    /// Runs `step` on a held slot, and takes the id's signal when it leaves
    /// a waited-on `Working` period.
    #[inline(always)]
    fn step_slot(&self, id: &K, slot: &mut Slot, op: Op) -> (Response, Option<Arc<Signal>>) {
        let (next, response) = spec::step(slot.phase, op);
        // The removal hashes and compares the key, foreign code that may
        // panic; it comes before any write, so a panic leaves the slot as it was.
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

    /// Calls `visit` on every id whose state is `state`, bucket by bucket.
    pub(crate) fn for_each_in(&self, state: TaskState, mut visit: impl FnMut(&K)) {
        if state == TaskState::NotFound {
            return;
        }
        self.phases.iter_sync(|id, slot| {
            if slot.phase.state() == state {
                visit(id);
            }
            true
        });
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
