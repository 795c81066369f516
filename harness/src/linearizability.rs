//! A linearizability checker for one object's history, generic over the
//! sequential model it is checked against.
//!
//! Wing & Gong's search with Lowe's memoization: repeatedly pick an
//! operation that no other pending operation precedes in real time, apply it
//! to the model, backtrack when the observed answer is impossible there, and
//! never revisit a (set of linearized operations, model state) pair.
//! Histories are checked per id: ids share nothing in the spec, and
//! linearizability is compositional (Herlihy & Wing), so a history is
//! linearizable exactly when each id's sub-history is.
//!
//! Two models use it: [`StepSpec`](crate::operation::StepSpec), the
//! harness's operations against `spec::step`, and the PostgreSQL backend's
//! operations against `spec::fenced_step` (`pg/tests/model.rs`), where a
//! lease may lapse before any operation.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::Hash;

/// A sequential specification of one object, as the search consumes it.
pub trait Model {
    /// The object's state; the memo keys on it, so it must be small and exact.
    type State: Copy + Eq + Hash;

    /// One operation with what its caller observed (its arguments and its
    /// answer).
    type Operation: Clone + fmt::Debug;

    /// The state before any operation.
    fn initial(&self) -> Self::State;

    /// Every state the operation may leave behind when it takes effect in
    /// `state` and answers as observed: none when the model could not have
    /// answered so, more than one where the model is nondeterministic (a
    /// lease that may or may not lapse first).
    fn apply(
        &self,
        state: Self::State,
        operation: &Self::Operation,
    ) -> impl IntoIterator<Item = Self::State>;
}

/// An operation with the clock readings taken just before its call and just
/// after its return. Any totally ordered stamp will do: the harness uses one
/// shared counter, whose readings are all distinct; a backend may use the
/// time since its run began.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct Event<O, S = u64> {
    pub operation: O,
    pub invoked: S,
    pub returned: S,
}

impl<O, S> Event<O, S> {
    pub fn new(operation: O, invoked: S, returned: S) -> Self {
        Event {
            operation,
            invoked,
            returned,
        }
    }
}

/// A history with no linearization, and the longest prefix the search built.
#[derive(Clone, Debug)]
pub struct Violation<O, S = u64> {
    pub events: Vec<Event<O, S>>,
    /// Indices into `events`, in the order the search linearized them.
    pub longest_prefix: Vec<usize>,
}

impl<O: fmt::Debug, S: Ord + Copy + fmt::Debug> fmt::Display for Violation<O, S> {
    /// The history as a step table, ordered by invocation; `lin` is the
    /// position in the longest linearizable prefix found, `-` for the rest.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut order: Vec<usize> = (0..self.events.len()).collect();
        order.sort_by_key(|&i| self.events[i].invoked);
        writeln!(f, "| lin | invoked | returned | operation |")?;
        writeln!(f, "|-----|---------|----------|-----------|")?;
        for i in order {
            let event = &self.events[i];
            let lin = self
                .longest_prefix
                .iter()
                .position(|&j| j == i)
                .map_or("-".to_string(), |p| p.to_string());
            writeln!(
                f,
                "| {lin} | {:?} | {:?} | {:?} |",
                event.invoked, event.returned, event.operation
            )?;
        }
        Ok(())
    }
}

/// Checks one object's history from `model`'s initial state; returns a
/// linearization (indices into `events`) or the violation.
pub fn check<M: Model, S: Ord + Copy>(
    model: &M,
    events: &[Event<M::Operation, S>],
) -> Result<Vec<usize>, Violation<M::Operation, S>> {
    let mut search = Search {
        model,
        events,
        done: vec![0; events.len().div_ceil(64)],
        order: Vec::with_capacity(events.len()),
        longest: Vec::new(),
        seen: HashSet::new(),
    };
    if search.extend(model.initial()) {
        Ok(search.order)
    } else {
        Err(Violation {
            events: events.to_vec(),
            longest_prefix: search.longest,
        })
    }
}

/// Checks every id's history; the first violation found, with its id.
pub fn check_all<M: Model, K: Ord + Copy, S: Ord + Copy>(
    model: &M,
    events: &[(K, Event<M::Operation, S>)],
) -> Result<(), (K, Violation<M::Operation, S>)> {
    let mut per_id: BTreeMap<K, Vec<Event<M::Operation, S>>> = BTreeMap::new();
    for (id, event) in events {
        per_id.entry(*id).or_default().push(event.clone());
    }
    for (id, history) in per_id {
        check(model, &history).map_err(|violation| (id, violation))?;
    }
    Ok(())
}

struct Search<'a, M: Model, S> {
    model: &'a M,
    events: &'a [Event<M::Operation, S>],
    /// Bitset of linearized events.
    done: Vec<u64>,
    order: Vec<usize>,
    longest: Vec<usize>,
    /// (linearized set, state) pairs already known to lead nowhere.
    seen: HashSet<(Vec<u64>, M::State)>,
}

impl<M: Model, S: Ord + Copy> Search<'_, M, S> {
    fn is_done(&self, i: usize) -> bool {
        self.done[i / 64] & (1 << (i % 64)) != 0
    }

    fn flip(&mut self, i: usize) {
        self.done[i / 64] ^= 1 << (i % 64);
    }

    /// Whether the events not yet linearized can be, starting from `state`.
    fn extend(&mut self, state: M::State) -> bool {
        if self.order.len() == self.events.len() {
            return true;
        }
        if !self.seen.insert((self.done.clone(), state)) {
            return false;
        }
        let (model, events) = (self.model, self.events);
        // An event may go next only if no pending event returned before it
        // was invoked.
        let first_return = (0..events.len())
            .filter(|&i| !self.is_done(i))
            .map(|i| events[i].returned)
            .min()
            .expect("an event is pending");
        for (i, event) in events.iter().enumerate() {
            if self.is_done(i) || event.invoked > first_return {
                continue;
            }
            for next in model.apply(state, &event.operation) {
                self.flip(i);
                self.order.push(i);
                if self.order.len() > self.longest.len() {
                    self.longest = self.order.clone();
                }
                if self.extend(next) {
                    return true;
                }
                self.order.pop();
                self.flip(i);
            }
        }
        false
    }
}
