//! Records a concurrent run: every operation's invocation and response on one
//! global counter, and every side effect the tasks and revokes performed.

use crate::linearizability::Event;
use crate::operation::Operation;
use crate::protocol::Id;
use crate::support::lock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A side effect a task or a revoke performed just before returning `Ok`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Effect {
    /// A task succeeded.
    Succeeded,
    /// A revoke undid a success.
    Revoked,
}

/// The run's log. `SeqCst` on the counter makes its readings agree with real
/// time across threads, which is all a linearizability check needs.
#[derive(Debug, Default)]
pub struct History {
    clock: AtomicU64,
    /// Each completed operation, with the id it was on.
    events: Mutex<Vec<(Id, Event<Operation>)>>,
    /// Each side effect: (id, counter reading when it happened, effect).
    effects: Mutex<Vec<(Id, u64, Effect)>>,
}

impl History {
    /// A fresh reading of the global counter.
    pub fn now(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// Logs a completed operation.
    pub fn record(&self, id: Id, operation: Operation, invoked: u64, returned: u64) {
        lock(&self.events).push((id, Event::new(operation, invoked, returned)));
    }

    /// Logs a side effect, stamped now.
    pub fn effect(&self, id: Id, effect: Effect) {
        let at = self.now();
        lock(&self.effects).push((id, at, effect));
    }

    pub fn events(&self) -> Vec<(Id, Event<Operation>)> {
        lock(&self.events).clone()
    }

    /// One id's side effects in counter order.
    pub fn effects_of(&self, id: Id) -> Vec<Effect> {
        let mut effects: Vec<_> = lock(&self.effects)
            .iter()
            .filter(|(of, _, _)| *of == id)
            .map(|&(_, at, effect)| (at, effect))
            .collect();
        effects.sort_by_key(|&(at, _)| at);
        effects.into_iter().map(|(_, effect)| effect).collect()
    }
}

/// Checks that an id's side effects read `(Succeeded Revoked)* Succeeded?`:
/// at most one success per revoke epoch, and a revoke only of a success.
/// Returns whether the current epoch has its success.
pub fn at_most_once_per_epoch(effects: &[Effect]) -> Result<bool, String> {
    let mut succeeded = false;
    for (at, effect) in effects.iter().enumerate() {
        match (effect, succeeded) {
            (Effect::Succeeded, false) => succeeded = true,
            (Effect::Revoked, true) => succeeded = false,
            (Effect::Succeeded, true) => {
                return Err(format!(
                    "second success in one epoch at effect {at}: {effects:?}"
                ));
            }
            (Effect::Revoked, false) => {
                return Err(format!(
                    "revoke without a success at effect {at}: {effects:?}"
                ));
            }
        }
    }
    Ok(succeeded)
}
