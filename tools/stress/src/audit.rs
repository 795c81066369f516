//! The audit: once the workers are done, [`gather`] waits for every id to
//! settle and collects the recorder's answers beside the ledger's facts as
//! [`Evidence`]; [`check`], a pure function, compares them and names the
//! ids behind each broken promise.

use crate::backend::{Backend, Id};
use crate::workload::{BadRevoke, Ledger, Outcomes, WAIT_LIMIT};
use async_tasks_recorder::{StateCounts, TaskState};
use std::collections::BTreeSet;
use std::fmt;
use tokio::time::Instant;

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

/// One kind of broken promise and the ids that broke it, in ascending order
/// (none for the rules about totals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub ids: Vec<Id>,
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
fn named(violations: &mut Vec<Violation>, rule: Rule, mut ids: Vec<Id>) {
    if !ids.is_empty() {
        ids.sort_unstable();
        ids.dedup();
        violations.push(Violation { rule, ids });
    }
}

/// Adds a violation of a rule about totals, which names no id.
fn total(violations: &mut Vec<Violation>, rule: Rule) {
    violations.push(Violation {
        rule,
        ids: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::{Failed, NotFound, Success, Working};

    /// A consistent record of a quiet run: one success per `Success` id,
    /// listings, counts and the tally derived from the states.
    fn consistent(states: &[TaskState]) -> Evidence {
        let ids_in = |wanted: TaskState| -> Vec<Id> {
            (0..)
                .zip(states)
                .filter(|(_, s)| **s == wanted)
                .map(|(id, _)| id)
                .collect()
        };
        let count = |wanted| ids_in(wanted).len();
        let successes = count(Success) as u64;
        let failures = count(Failed) as u64;
        Evidence {
            states: states.iter().copied().map(Some).collect(),
            effects: states.iter().map(|s| u32::from(*s == Success)).collect(),
            listings: [
                Some(ids_in(Working)),
                Some(ids_in(Success)),
                Some(ids_in(Failed)),
            ],
            counts: Some(StateCounts {
                working: count(Working),
                success: count(Success),
                failed: count(Failed),
            }),
            recorded: Some(states.iter().filter(|s| **s != NotFound).count()),
            outcomes: Outcomes {
                launch_attempts: successes + failures,
                accepted: successes + failures,
                tasks_ok: successes,
                tasks_failed: failures,
                ..Outcomes::default()
            },
            ..Evidence::default()
        }
    }

    fn sample() -> Vec<TaskState> {
        vec![
            Success, Failed, NotFound, Success, Failed, Success, NotFound, Success,
        ]
    }

    /// The rules reported, with their ids.
    fn found(evidence: &Evidence) -> Vec<(Rule, Vec<Id>)> {
        check(evidence)
            .into_iter()
            .map(|v| (v.rule, v.ids))
            .collect()
    }

    #[test]
    fn a_consistent_ledger_passes() {
        assert_eq!(found(&consistent(&sample())), []);
        assert_eq!(found(&consistent(&[])), []);
    }

    #[test]
    fn a_double_success_in_one_epoch_is_reported_with_its_id() {
        let mut evidence = consistent(&sample());
        evidence.effects[3] = 2;
        assert_eq!(found(&evidence), [(Rule::DoubleSuccess, vec![3])]);
    }

    #[test]
    fn a_double_success_found_by_a_revoke_is_reported_with_its_id() {
        let mut evidence = consistent(&sample());
        evidence.bad_revokes = vec![BadRevoke {
            id: 6,
            epoch: 2,
            effects: 2,
        }];
        assert_eq!(found(&evidence), [(Rule::DoubleSuccessAtRevoke, vec![6])]);
    }

    #[test]
    fn a_revoked_success_without_its_effect_is_reported_with_its_id() {
        let mut evidence = consistent(&sample());
        evidence.bad_revokes = vec![BadRevoke {
            id: 2,
            epoch: 0,
            effects: 0,
        }];
        assert_eq!(found(&evidence), [(Rule::RevokedWithoutEffect, vec![2])]);
    }

    #[test]
    fn a_success_without_its_effect_is_reported_with_its_ids() {
        let mut evidence = consistent(&sample());
        evidence.effects[5] = 0;
        evidence.effects[0] = 0;
        assert_eq!(found(&evidence), [(Rule::SuccessWithoutEffect, vec![0, 5])]);
    }

    #[test]
    fn an_effect_without_success_is_reported_with_its_id() {
        let mut evidence = consistent(&sample());
        evidence.effects[4] = 1;
        assert_eq!(found(&evidence), [(Rule::EffectWithoutSuccess, vec![4])]);
    }

    #[test]
    fn an_id_left_working_is_reported_as_wedged_and_working() {
        let mut states = sample();
        states[6] = Working;
        let mut evidence = consistent(&states);
        evidence.wedged = vec![6];
        // A task that never ended is accepted but not ended.
        evidence.outcomes.accepted += 1;
        evidence.outcomes.launch_attempts += 1;
        assert_eq!(
            found(&evidence),
            [
                (Rule::Wedged, vec![6]),
                (Rule::WorkingAfterDrain, vec![6]),
                (
                    Rule::LaunchesUnaccounted {
                        accepted: 7,
                        ended: 6
                    },
                    vec![]
                ),
            ]
        );
    }

    #[test]
    fn a_hung_wait_during_the_run_is_reported_with_its_id() {
        let mut evidence = consistent(&sample());
        evidence.hung_waits = vec![7, 1, 7];
        assert_eq!(found(&evidence), [(Rule::HungWait, vec![1, 7])]);
    }

    #[test]
    fn a_listing_disagreeing_with_queries_names_missing_and_extra_ids() {
        let mut evidence = consistent(&sample());
        // Success is 0, 3, 5, 7: drop 3, add the failed id 4.
        evidence.listings[1] = Some(vec![0, 5, 7, 4]);
        assert_eq!(
            found(&evidence),
            [(Rule::ListingDiffers(Listed::Success), vec![3, 4])]
        );
    }

    #[test]
    fn an_id_listed_twice_is_reported() {
        let mut evidence = consistent(&sample());
        evidence.listings[2] = Some(vec![1, 4, 1]);
        assert_eq!(
            found(&evidence),
            [(Rule::ListingDiffers(Listed::Failed), vec![1])]
        );
    }

    #[test]
    fn a_count_disagreeing_with_queries_is_reported_with_both_numbers() {
        let mut evidence = consistent(&sample());
        if let Some(counts) = &mut evidence.counts {
            counts.failed = 3;
        }
        assert_eq!(
            found(&evidence),
            [(
                Rule::CountDiffers {
                    state: Listed::Failed,
                    counted: 3,
                    queried: 2
                },
                vec![]
            )]
        );
    }

    #[test]
    fn a_recorded_total_disagreeing_with_queries_is_reported() {
        let mut evidence = consistent(&sample());
        evidence.recorded = Some(7);
        assert_eq!(
            found(&evidence),
            [(
                Rule::RecordedDiffers {
                    recorded: 7,
                    queried: 6
                },
                vec![]
            )]
        );
    }

    #[test]
    fn a_launch_refused_with_failed_is_reported() {
        let mut evidence = consistent(&sample());
        evidence.outcomes.refused_other = 2;
        assert_eq!(
            found(&evidence),
            [(Rule::LaunchRefusedOther { count: 2 }, vec![])]
        );
    }

    #[test]
    fn backend_errors_are_reported_with_their_ids_and_unknown_states_skipped() {
        let mut evidence = consistent(&sample());
        // The query of id 3 failed: no per-id or total check may guess it.
        evidence.states[3] = None;
        evidence.outcomes.backend_errors = 1;
        evidence.error_ids = vec![3];
        assert_eq!(
            found(&evidence),
            [
                (Rule::ListingDiffers(Listed::Success), vec![3]),
                (Rule::BackendErrors { count: 1 }, vec![3]),
            ]
        );
    }

    #[test]
    fn a_crashed_worker_is_reported() {
        let mut evidence = consistent(&sample());
        evidence.crashed_workers = 1;
        assert_eq!(
            found(&evidence),
            [(Rule::WorkersCrashed { count: 1 }, vec![])]
        );
    }

    #[test]
    fn every_broken_rule_is_reported_once() {
        let mut evidence = consistent(&sample());
        evidence.effects[3] = 2;
        evidence.effects[7] = 3;
        evidence.effects[1] = 1;
        evidence.hung_waits = vec![2];
        let rules: Vec<Rule> = check(&evidence).into_iter().map(|v| v.rule).collect();
        assert_eq!(
            rules,
            [
                Rule::DoubleSuccess,
                Rule::EffectWithoutSuccess,
                Rule::HungWait
            ]
        );
        assert_eq!(check(&evidence)[0].ids, [3, 7]);
    }
}
