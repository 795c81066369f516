//! The audit: once the workers are done, [`gather`] waits for every id to
//! settle and collects the recorder's answers beside the ledger's facts as
//! [`Evidence`]; [`check`], a pure function, compares them and names the
//! ids behind each broken promise.

use crate::violation::{self, AuditRule};
use crate::workload::{BadRevoke, Ledger, Outcomes, WAIT_LIMIT};
use async_tasks_recorder::{StateCounts, TaskState};
use async_tasks_recorder_harness::backend::Backend;
use async_tasks_recorder_harness::protocol::Id;
use std::collections::BTreeSet;
use std::fmt;
use tokio::time::Instant;

/// A broken promise of the storm, naming its ids.
pub type Violation = violation::Violation<Rule, Id>;

/// A state an id can be listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed {
    Working,
    Success,
    Failed,
}

impl Listed {
    pub const ALL: [Listed; 3] = [Listed::Working, Listed::Success, Listed::Failed];

    pub fn state(self) -> TaskState {
        match self {
            Listed::Working => TaskState::Working,
            Listed::Success => TaskState::Success,
            Listed::Failed => TaskState::Failed,
        }
    }
}

impl fmt::Display for Listed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.state())
    }
}

/// What the recorder answered after the run, beside what the ledger saw.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The queried state of each id after the drain (index = id); `None`
    /// where the query failed.
    pub states: Vec<Option<TaskState>>,
    /// Side effects of each id's current epoch.
    pub effects: Vec<u32>,
    /// Completed revokes whose epoch did not have exactly one side effect.
    pub bad_revokes: Vec<BadRevoke>,
    /// Ids whose wait did not resolve within the drain's time limit.
    pub wedged: Vec<Id>,
    /// Ids whose wait during the run did not resolve in time.
    pub hung_waits: Vec<Id>,
    /// Listings of Working, Success and Failed (in [`Listed::ALL`] order);
    /// `None` where the call failed.
    pub listings: [Option<Vec<Id>>; 3],
    /// The recorder's counts per state.
    pub counts: Option<StateCounts>,
    /// The recorder's number of recorded ids.
    pub recorded: Option<usize>,
    /// The tally of the run.
    pub outcomes: Outcomes,
    /// Ids of calls that failed with a backend error (the first ones).
    pub error_ids: Vec<Id>,
    /// Worker tasks that ended with a panic or were cancelled.
    pub crashed_workers: usize,
}

/// A broken promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A revoke found more than one side effect in the epoch it closed.
    DoubleSuccessAtRevoke,
    /// A revoke closed an epoch with no side effect: the recorder read
    /// `Success` for a task that did not succeed.
    RevokedWithoutEffect,
    DoubleSuccess,
    SuccessWithoutEffect,
    EffectWithoutSuccess,
    Wedged,
    HungWait,
    WorkingAfterDrain,
    ListingDiffers(Listed),
    CountDiffers {
        state: Listed,
        counted: usize,
        queried: usize,
    },
    RecordedDiffers {
        recorded: usize,
        queried: usize,
    },
    LaunchesUnaccounted {
        accepted: u64,
        ended: u64,
    },
    /// A launch can only be refused by a running task or a success.
    LaunchRefusedOther {
        count: u64,
    },
    BackendErrors {
        count: u64,
    },
    WorkersCrashed {
        count: usize,
    },
}

impl AuditRule for Rule {
    fn id(&self) -> &'static str {
        match self {
            Rule::DoubleSuccessAtRevoke => "double_success_at_revoke",
            Rule::RevokedWithoutEffect => "revoked_without_effect",
            Rule::DoubleSuccess => "double_success",
            Rule::SuccessWithoutEffect => "success_without_effect",
            Rule::EffectWithoutSuccess => "effect_without_success",
            Rule::Wedged => "wedged",
            Rule::HungWait => "hung_wait",
            Rule::WorkingAfterDrain => "working_after_drain",
            Rule::ListingDiffers(_) => "listing_differs",
            Rule::CountDiffers { .. } => "count_differs",
            Rule::RecordedDiffers { .. } => "recorded_differs",
            Rule::LaunchesUnaccounted { .. } => "launches_unaccounted",
            Rule::LaunchRefusedOther { .. } => "launch_refused_other",
            Rule::BackendErrors { .. } => "backend_errors",
            Rule::WorkersCrashed { .. } => "workers_crashed",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = WAIT_LIMIT.as_secs();
        match *self {
            Rule::DoubleSuccessAtRevoke => {
                write!(f, "more than one success in one epoch (at revoke)")
            }
            Rule::RevokedWithoutEffect => write!(f, "revoked a success that had no side effect"),
            Rule::DoubleSuccess => write!(f, "more than one success in the current epoch"),
            Rule::SuccessWithoutEffect => write!(f, "reads Success without a side effect"),
            Rule::EffectWithoutSuccess => {
                write!(f, "side effect done but does not read Success")
            }
            Rule::Wedged => write!(f, "left Working (wait did not resolve in {limit} s)"),
            Rule::HungWait => write!(f, "wait during the run did not resolve in {limit} s"),
            Rule::WorkingAfterDrain => write!(f, "reads Working after the drain"),
            Rule::ListingDiffers(state) => write!(f, "listing of {state} differs from queries"),
            Rule::CountDiffers {
                state,
                counted,
                queried,
            } => write!(f, "count of {state} is {counted}, queries find {queried}"),
            Rule::RecordedDiffers { recorded, queried } => {
                write!(f, "{recorded} ids recorded, queries find {queried}")
            }
            Rule::LaunchesUnaccounted { accepted, ended } => write!(
                f,
                "{accepted} launches accepted, {ended} tasks ended (ok + failed + panicked + cancelled)"
            ),
            Rule::LaunchRefusedOther { count } => {
                write!(f, "{count} launches refused with Failed or NotFound")
            }
            Rule::BackendErrors { count } => write!(f, "{count} backend calls failed"),
            Rule::WorkersCrashed { count } => write!(f, "{count} workers crashed"),
        }
    }
}

/// Waits for every id to settle, within one shared time limit, then asks
/// the recorder for each id's state, the listings and the counts.
pub async fn gather<B: Backend>(backend: &B, ledger: &Ledger, crashed_workers: usize) -> Evidence {
    let ids = ledger.ids();
    // One limit for the whole drain: a recorder that wedges many ids fails
    // the audit in seconds, not in seconds per id.
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut wedged = Vec::new();
    for id in 0..ids {
        match tokio::time::timeout_at(deadline, backend.wait(id)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => ledger.backend_error(Some(id), error),
            Err(_) => wedged.push(id),
        }
    }
    let mut states = Vec::with_capacity(usize::try_from(ids).unwrap_or(0));
    for id in 0..ids {
        states.push(match backend.query(id).await {
            Ok(state) => Some(state),
            Err(error) => {
                ledger.backend_error(Some(id), error);
                None
            }
        });
    }
    let mut listings = [None, None, None];
    for (slot, listed) in listings.iter_mut().zip(Listed::ALL) {
        match backend.list(listed.state()).await {
            Ok(ids) => *slot = Some(ids),
            Err(error) => ledger.backend_error(None, error),
        }
    }
    let counts = backend
        .state_counts()
        .await
        .map_err(|error| ledger.backend_error(None, error))
        .ok();
    let recorded = backend
        .recorded()
        .await
        .map_err(|error| ledger.backend_error(None, error))
        .ok();
    Evidence {
        states,
        effects: ledger.effects(),
        bad_revokes: ledger.bad_revokes(),
        wedged,
        hung_waits: ledger.hung_waits(),
        listings,
        counts,
        recorded,
        outcomes: ledger.tally.snapshot(),
        error_ids: ledger.errors().0,
        crashed_workers,
    }
}

/// Every broken promise in `evidence`, each rule once with its ids.
pub fn check(evidence: &Evidence) -> Vec<Violation> {
    let mut violations = Vec::new();
    let revoked = |pick: fn(u32) -> bool| -> Vec<Id> {
        evidence
            .bad_revokes
            .iter()
            .filter(|r| pick(r.effects))
            .map(|r| r.id)
            .collect()
    };
    named(
        &mut violations,
        Rule::DoubleSuccessAtRevoke,
        revoked(|e| e > 1),
    );
    named(
        &mut violations,
        Rule::RevokedWithoutEffect,
        revoked(|e| e == 0),
    );

    let (mut double, mut lost, mut phantom) = (Vec::new(), Vec::new(), Vec::new());
    // The ids queries find in each listed state, in `Listed::ALL` order.
    let mut queried: [BTreeSet<Id>; 3] = Default::default();
    let mut unknown = 0;
    for (id, state) in (0..).zip(&evidence.states) {
        let effects = evidence.effects.get(id as usize).copied().unwrap_or(0);
        let Some(state) = *state else {
            unknown += 1;
            continue;
        };
        if effects > 1 {
            double.push(id);
        } else if state == TaskState::Success && effects == 0 {
            lost.push(id);
        } else if state != TaskState::Success && effects == 1 {
            phantom.push(id);
        }
        if let Some(listed) = Listed::ALL.iter().position(|l| l.state() == state) {
            queried[listed].insert(id);
        }
    }
    named(&mut violations, Rule::DoubleSuccess, double);
    named(&mut violations, Rule::SuccessWithoutEffect, lost);
    named(&mut violations, Rule::EffectWithoutSuccess, phantom);
    named(&mut violations, Rule::Wedged, evidence.wedged.clone());
    named(&mut violations, Rule::HungWait, evidence.hung_waits.clone());
    let working = queried[0].iter().copied().collect();
    named(&mut violations, Rule::WorkingAfterDrain, working);

    for (index, listed) in Listed::ALL.into_iter().enumerate() {
        if let Some(listing) = &evidence.listings[index] {
            let set: BTreeSet<Id> = listing.iter().copied().collect();
            let mut differ: Vec<Id> = set.symmetric_difference(&queried[index]).copied().collect();
            if set.len() != listing.len() {
                // Listed more than once.
                let mut seen = BTreeSet::new();
                differ.extend(listing.iter().filter(|id| !seen.insert(**id)));
            }
            named(&mut violations, Rule::ListingDiffers(listed), differ);
        }
        // Totals are compared only when every id's state is known.
        if let Some(counts) = evidence.counts
            && unknown == 0
            && counts.get(listed.state()) != queried[index].len()
        {
            let rule = Rule::CountDiffers {
                state: listed,
                counted: counts.get(listed.state()),
                queried: queried[index].len(),
            };
            total(&mut violations, rule);
        }
    }
    let queried_recorded: usize = queried.iter().map(BTreeSet::len).sum();
    if let Some(recorded) = evidence.recorded
        && unknown == 0
        && recorded != queried_recorded
    {
        let rule = Rule::RecordedDiffers {
            recorded,
            queried: queried_recorded,
        };
        total(&mut violations, rule);
    }

    let outcomes = &evidence.outcomes;
    if outcomes.accepted != outcomes.ended() {
        let rule = Rule::LaunchesUnaccounted {
            accepted: outcomes.accepted,
            ended: outcomes.ended(),
        };
        total(&mut violations, rule);
    }
    if outcomes.refused_other > 0 {
        let rule = Rule::LaunchRefusedOther {
            count: outcomes.refused_other,
        };
        total(&mut violations, rule);
    }
    if outcomes.backend_errors > 0 {
        let mut ids = evidence.error_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        let rule = Rule::BackendErrors {
            count: outcomes.backend_errors,
        };
        violations.push(Violation { rule, ids });
    }
    if evidence.crashed_workers > 0 {
        let rule = Rule::WorkersCrashed {
            count: evidence.crashed_workers,
        };
        total(&mut violations, rule);
    }
    violations
}

/// Adds a violation of a per-id rule, if any id broke it.
fn named(violations: &mut Vec<Violation>, rule: Rule, ids: Vec<Id>) {
    violations.extend(Violation::named(rule, ids));
}

/// Adds a violation of a rule about totals, which names no id.
fn total(violations: &mut Vec<Violation>, rule: Rule) {
    violations.push(Violation::total(rule));
}

#[cfg(test)]
mod tests;
