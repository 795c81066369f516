//! A linearizability checker for one id's history, against `spec::step`.
//!
//! Wing & Gong's search with Lowe's memoization: repeatedly pick an
//! operation that no other pending operation precedes in real time, apply it
//! to the spec, backtrack when the observed answer is impossible there, and
//! never revisit a (set of linearized operations, phase) pair. Histories are
//! checked per id: ids share nothing in the spec, and linearizability is
//! compositional (Herlihy & Wing), so a history is linearizable exactly when
//! each id's sub-history is.

use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::{self, Op, Outcome, Phase, Response};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// One operation on an id, with what its caller observed.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Operation {
    /// A launch, accepted or refused.
    Launch(Response),
    /// The attempt that owned `Working` ended; the recorder never refuses it.
    Finish(Outcome),
    /// A revoke's start, accepted or refused.
    BeginRevoke(Response),
    /// The revoke that owned `Revoking` ended.
    FinishRevoke(Outcome),
    /// `query_task_state` returned this.
    Query(TaskState),
    /// `query_task_state_quick` returned this.
    QuickQuery(TaskState),
    /// `wait` returned this.
    Wait(TaskState),
}

impl Operation {
    /// The phase after this operation takes effect in `phase`, or `None` when
    /// the spec could not have answered what the caller observed.
    pub fn apply(self, phase: Phase) -> Option<Phase> {
        let answered = |op, seen| {
            let (next, response) = spec::step(phase, op);
            (response == seen).then_some(next)
        };
        let read = |ok: bool| ok.then_some(phase);
        match self {
            Operation::Launch(seen) => answered(Op::Launch, seen),
            Operation::Finish(outcome) => answered(Op::Finish(outcome), Response::Accepted),
            Operation::BeginRevoke(seen) => answered(Op::BeginRevoke, seen),
            Operation::FinishRevoke(outcome) => {
                answered(Op::FinishRevoke(outcome), Response::Accepted)
            }
            Operation::Query(state) => read(phase.state() == state),
            Operation::QuickQuery(state) => read(phase.quick_state() == state),
            Operation::Wait(state) => read(state != TaskState::Working && phase.state() == state),
        }
    }
}

/// An operation with the clock readings taken just before its call and just
/// after its return. Readings come from one counter and are all distinct.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct Event {
    pub operation: Operation,
    pub invoked: u64,
    pub returned: u64,
}

impl Event {
    pub fn new(operation: Operation, invoked: u64, returned: u64) -> Self {
        Event {
            operation,
            invoked,
            returned,
        }
    }
}

/// A history with no linearization, and the longest prefix the search built.
#[derive(Clone, Debug)]
pub struct Violation {
    pub events: Vec<Event>,
    pub longest_prefix: Vec<usize>,
}

impl fmt::Display for Violation {
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
                "| {lin} | {} | {} | {:?} |",
                event.invoked, event.returned, event.operation
            )?;
        }
        Ok(())
    }
}

/// Checks one id's history from `NotFound`; returns a linearization (indices
/// into `events`) or the violation.
pub fn check(events: &[Event]) -> Result<Vec<usize>, Violation> {
    let mut search = Search {
        events,
        done: vec![0; events.len().div_ceil(64)],
        order: Vec::with_capacity(events.len()),
        longest: Vec::new(),
        seen: HashSet::new(),
    };
    if search.extend(Phase::NotFound) {
        Ok(search.order)
    } else {
        Err(Violation {
            events: events.to_vec(),
            longest_prefix: search.longest,
        })
    }
}

/// Checks every id's history; the first violation found, with its id.
pub fn check_all<K: Ord + Copy>(events: &[(K, Event)]) -> Result<(), (K, Violation)> {
    let mut per_id: BTreeMap<K, Vec<Event>> = BTreeMap::new();
    for &(id, event) in events {
        per_id.entry(id).or_default().push(event);
    }
    for (id, history) in per_id {
        check(&history).map_err(|violation| (id, violation))?;
    }
    Ok(())
}

struct Search<'a> {
    events: &'a [Event],
    /// Bitset of linearized events.
    done: Vec<u64>,
    order: Vec<usize>,
    longest: Vec<usize>,
    /// (linearized set, phase) pairs already known to lead nowhere.
    seen: HashSet<(Vec<u64>, Phase)>,
}

impl Search<'_> {
    fn is_done(&self, i: usize) -> bool {
        self.done[i / 64] & (1 << (i % 64)) != 0
    }

    fn flip(&mut self, i: usize) {
        self.done[i / 64] ^= 1 << (i % 64);
    }

    /// Whether the events not yet linearized can be, starting from `phase`.
    fn extend(&mut self, phase: Phase) -> bool {
        if self.order.len() == self.events.len() {
            return true;
        }
        if !self.seen.insert((self.done.clone(), phase)) {
            return false;
        }
        // An event may go next only if no pending event returned before it
        // was invoked.
        let first_return = (0..self.events.len())
            .filter(|&i| !self.is_done(i))
            .map(|i| self.events[i].returned)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.events.len() {
            if self.is_done(i) || self.events[i].invoked > first_return {
                continue;
            }
            let Some(next) = self.events[i].operation.apply(phase) else {
                continue;
            };
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
        false
    }
}
