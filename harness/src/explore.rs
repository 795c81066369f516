//! An explicit-state model checker: breadth-first search of every state a
//! [`Model`] can reach, checking each named [`Property`] in every state.
//!
//! Breadth first, so the counterexample reported for a property is a
//! shortest one: the trace of actions from an initial state to the first
//! state where it fails. Exploration is bounded by the model's own scope
//! (its budgets of actions) and by `max_states`, past which the check
//! reports that it did not finish rather than a pass.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::hash::Hash;

/// A transition system small enough to explore exhaustively.
pub trait Model {
    /// A whole state of the system.
    type State: Clone + Eq + Hash + Debug;
    /// What moves it from one state to the next, as shown in a trace.
    type Action: Clone + Debug;

    /// The initial states.
    fn init(&self) -> Vec<Self::State>;
    /// Every action enabled in `state`, each with the state it leads to.
    fn next(&self, state: &Self::State) -> Vec<(Self::Action, Self::State)>;
    /// The properties that must hold in every reachable state.
    fn properties(&self) -> Vec<Property<Self>>;
}

/// A named invariant of a model's states.
pub struct Property<M: Model + ?Sized> {
    /// Its name in reports.
    pub name: &'static str,
    /// Whether it holds in a state.
    pub holds: fn(&M, &M::State) -> bool,
}

/// A property's shortest counterexample.
#[derive(Debug)]
pub struct Counterexample<M: Model> {
    /// The property that failed.
    pub property: &'static str,
    /// The initial state it starts from.
    pub init: M::State,
    /// Each action with the state it led to; the last state is the first
    /// one where the property fails.
    pub steps: Vec<Step<M>>,
}

/// One step of a trace: an action and the state it led to.
pub type Step<M> = (<M as Model>::Action, <M as Model>::State);

/// Every state reached, with the index of its parent and the action from
/// it (none for an initial state).
type Reached<M> = Vec<(<M as Model>::State, Option<(usize, <M as Model>::Action)>)>;

impl<M: Model> Counterexample<M> {
    /// The trace, one step per line.
    pub fn show(&self) -> String {
        let mut out = format!(
            "{} fails after {} steps\n  {:?}\n",
            self.property,
            self.steps.len(),
            self.init
        );
        for (action, state) in &self.steps {
            out.push_str(&format!("  -- {action:?} -->\n  {state:?}\n"));
        }
        out
    }
}

/// What a check found.
#[derive(Debug)]
pub struct Report<M: Model> {
    /// Distinct states reached.
    pub states: usize,
    /// Transitions followed.
    pub transitions: usize,
    /// Whether every reachable state was explored (false: `max_states` was
    /// reached first, and the absence of counterexamples proves nothing
    /// beyond the states seen).
    pub complete: bool,
    /// The first counterexample of each property that failed.
    pub counterexamples: Vec<Counterexample<M>>,
}

impl<M: Model> Report<M> {
    /// The counterexample of `property`, if it failed.
    pub fn counterexample(&self, property: &str) -> Option<&Counterexample<M>> {
        self.counterexamples.iter().find(|c| c.property == property)
    }

    /// Whether the whole state space was explored and every property held.
    pub fn holds(&self) -> bool {
        self.complete && self.counterexamples.is_empty()
    }
}

/// Explores every state of `model` reachable within its scope, up to
/// `max_states`, checking every property in each.
pub fn check<M: Model>(model: &M, max_states: usize) -> Report<M> {
    let properties = model.properties();
    let mut search = Search::<M> {
        reached: Vec::new(),
        seen: HashMap::new(),
        queue: VecDeque::new(),
        max_states,
        complete: true,
    };
    let mut counterexamples: Vec<Counterexample<M>> = Vec::new();
    let mut transitions = 0;
    for state in model.init() {
        search.visit(state, None);
    }
    while let Some(index) = search.queue.pop_front() {
        let state = search.reached[index].0.clone();
        for property in &properties {
            let known = counterexamples.iter().any(|c| c.property == property.name);
            if !known && !(property.holds)(model, &state) {
                let (init, steps) = search.trace(index);
                counterexamples.push(Counterexample {
                    property: property.name,
                    init,
                    steps,
                });
            }
        }
        for (action, next) in model.next(&state) {
            transitions += 1;
            search.visit(next, Some((index, action)));
        }
    }
    Report {
        states: search.reached.len(),
        transitions,
        complete: search.complete,
        counterexamples,
    }
}

/// The breadth-first search's frontier and what it has reached.
struct Search<M: Model> {
    reached: Reached<M>,
    seen: HashMap<M::State, usize>,
    queue: VecDeque<usize>,
    max_states: usize,
    complete: bool,
}

impl<M: Model> Search<M> {
    /// Queues `state`, reached from `parent`, unless it was reached before
    /// (or the bound is reached: then the search is incomplete).
    fn visit(&mut self, state: M::State, parent: Option<(usize, M::Action)>) {
        if self.seen.contains_key(&state) {
            return;
        }
        if self.reached.len() >= self.max_states {
            self.complete = false;
            return;
        }
        let index = self.reached.len();
        self.seen.insert(state.clone(), index);
        self.reached.push((state, parent));
        self.queue.push_back(index);
    }

    /// The path from an initial state to state `index`.
    fn trace(&self, mut index: usize) -> (M::State, Vec<Step<M>>) {
        let mut steps = Vec::new();
        while let Some((parent, action)) = &self.reached[index].1 {
            steps.push((action.clone(), self.reached[index].0.clone()));
            index = *parent;
        }
        steps.reverse();
        (self.reached[index].0.clone(), steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter that may step by one or two up to a bound; "never 3" fails.
    struct Counter;

    impl Model for Counter {
        type State = u8;
        type Action = u8;
        fn init(&self) -> Vec<u8> {
            vec![0]
        }
        fn next(&self, state: &u8) -> Vec<(u8, u8)> {
            [1, 2]
                .into_iter()
                .filter(|step| state + step <= 6)
                .map(|step| (step, state + step))
                .collect()
        }
        fn properties(&self) -> Vec<Property<Self>> {
            vec![
                Property {
                    name: "never three",
                    holds: |_, s| *s != 3,
                },
                Property {
                    name: "at most six",
                    holds: |_, s| *s <= 6,
                },
            ]
        }
    }

    #[test]
    fn a_failing_property_gets_a_shortest_trace_and_a_holding_one_none() {
        let report = check(&Counter, 100);
        assert!(report.complete);
        assert_eq!(report.states, 7);
        let found = report
            .counterexample("never three")
            .expect("3 is reachable");
        assert_eq!(found.steps.len(), 2, "{}", found.show());
        assert!(report.counterexample("at most six").is_none());
        assert!(!report.holds());
    }

    #[test]
    fn a_check_cut_short_by_its_state_bound_does_not_hold() {
        let report = check(&Counter, 3);
        assert!(!report.complete);
        assert!(!report.holds());
    }
}
