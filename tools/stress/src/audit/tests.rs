//! The audit's bites: each test feeds [`check`](super::check) a ledger or
//! a recorder's answers with one known fault and asserts the rule and the
//! ids it names.

use super::*;
use crate::violation::AuditRule;
use crate::violation::tests::assert_distinct_snake_case_ids;
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

#[test]
fn every_rule_of_the_storm_has_its_own_snake_case_id() {
    let rules = [
        Rule::DoubleSuccessAtRevoke,
        Rule::RevokedWithoutEffect,
        Rule::DoubleSuccess,
        Rule::SuccessWithoutEffect,
        Rule::EffectWithoutSuccess,
        Rule::Wedged,
        Rule::HungWait,
        Rule::WorkingAfterDrain,
        Rule::ListingDiffers(Listed::Success),
        Rule::CountDiffers {
            state: Listed::Failed,
            counted: 3,
            queried: 2,
        },
        Rule::RecordedDiffers {
            recorded: 7,
            queried: 6,
        },
        Rule::LaunchesUnaccounted {
            accepted: 7,
            ended: 6,
        },
        Rule::LaunchRefusedOther { count: 2 },
        Rule::BackendErrors { count: 1 },
        Rule::WorkersCrashed { count: 1 },
    ];
    let rules: Vec<&dyn AuditRule> = rules.iter().map(|r| r as &dyn AuditRule).collect();
    assert_distinct_snake_case_ids(&rules);
}
