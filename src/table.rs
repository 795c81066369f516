//! The table: one map entry per id that is not `NotFound`, holding its
//! [`Phase`] and, while it is `Working`, the [`Signal`] its waiters sleep on.
//!
//! # The algorithm
//! Every mutating operation is one call of [`spec::step`](crate::spec::step)
//! inside the map's exclusive section for that key ([`Table::apply`]). Reads
//! take the shared section ([`Table::phase`]). scc orders all sections on one
//! key, so each operation takes effect at one instant inside its call: its
//! linearization point (proofs/P5-linearizable.md). `NotFound` is the
//! absence of an entry, so a revoke that completes removes the entry and a
//! never-seen id costs nothing.
//!
//! # Why one map and a scan, not one set per state
//! The published 2.x recorder keeps five sets and touches three to five of
//! them on every launch, each its own lock and hash. Listing one state is
//! rare (a retry sweep); launches and queries are the hot path. So the table
//! keeps one entry per id, a launch costs exactly what a raw map costs for
//! the same states (insert, then update), and a listing walks the map once,
//! bucket by bucket (about 2 ns per entry; 10^6 entries in a few ms, see the
//! `listing` benchmark). The listing is weakly consistent, as defined in
//! proofs/P8-listing-weakly-consistent.md.

use crate::signal::Signal;
use crate::spec::{self, Op, Phase, Response, TaskState};
use crate::sync::{Arc, Entry, Equivalent, HashMap};
use std::hash::{BuildHasher, Hash};

/// What the table stores for an id that is not `NotFound`.
#[derive(Debug)]
struct Record {
    phase: Phase,
    /// Present only while `Working` and only once somebody waits.
    waiters: Option<Arc<Signal>>,
}

/// The state of every id.
pub(crate) struct Table<K, S: BuildHasher> {
    map: HashMap<K, Record, S>,
}

/// A `Working` id's signal, or the state that made waiting unnecessary.
pub(crate) enum WaitOn {
    Done(TaskState),
    Signal(Arc<Signal>),
}

impl<K, S> Table<K, S>
where
    K: Eq + Hash,
    S: BuildHasher,
{
    pub(crate) fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        Table {
            map: HashMap::with_capacity_and_hasher(capacity, hasher),
        }
    }

    /// Applies `op` to `id`: the linearization point of every mutating
    /// operation. When the id leaves `Working`, its waiters are woken after
    /// the entry's lock is released.
    pub(crate) fn apply(&self, id: K, op: Op) -> Response {
        let (response, waiters) = match self.map.entry_sync(id) {
            Entry::Vacant(vacant) => {
                let (next, response) = spec::step(Phase::NotFound, op);
                if next != Phase::NotFound {
                    vacant.insert_entry(Record {
                        phase: next,
                        waiters: None,
                    });
                }
                (response, None)
            }
            Entry::Occupied(mut occupied) => {
                let record = occupied.get_mut();
                let (next, response) = spec::step(record.phase, op);
                record.phase = next;
                let waiters = if next == Phase::Working {
                    None
                } else {
                    record.waiters.take()
                };
                if next == Phase::NotFound {
                    let _removed = occupied.remove();
                }
                (response, waiters)
            }
        };
        if let Some(signal) = waiters {
            signal.fire();
        }
        response
    }

    /// The id's phase, read under the shared lock of its entry.
    pub(crate) fn phase<Q>(&self, id: &Q) -> Phase
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.map
            .read_sync(id, |_, record| record.phase)
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
        self.map
            .update_sync(id, |_, record| match record.phase {
                Phase::Working => {
                    WaitOn::Signal(record.waiters.get_or_insert_with(Default::default).clone())
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
        self.map.iter_sync(|id, record| {
            if record.phase.state() == state {
                visit(id);
            }
            true
        });
    }

    /// Counts ids per state in one pass: `[working, success, failed]`.
    pub(crate) fn counts(&self) -> [usize; 3] {
        let mut counts = [0; 3];
        self.map.iter_sync(|_, record| {
            match record.phase.state() {
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
        self.map.len()
    }
}

impl<K, S> std::fmt::Debug for Table<K, S>
where
    K: Eq + Hash + std::fmt::Debug,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        self.map.iter_sync(|id, record| {
            map.entry(id, &record.phase.state());
            true
        });
        map.finish()
    }
}
