//! What every audit reports: a broken rule and the ids that broke it. The
//! in-memory audit ([`crate::audit`]) and the PostgreSQL run's audit have
//! rules of their own; each rule has a stable id ([`AuditRule::id`]) that
//! the JSON report carries beside its text, for scripts to match.

use crate::audit::Rule;
use async_tasks_recorder_harness::protocol::Id;
use std::fmt;

/// A rule as reports name it: [`id`](AuditRule::id) for scripts, the
/// `Display` text for people.
pub trait AuditRule: fmt::Display {
    /// The rule's stable id: snake_case, one per kind of broken promise,
    /// never changed once given (scripts match on it).
    fn id(&self) -> &'static str;
}

/// One kind of broken promise and the ids that broke it, in ascending order
/// (none for the rules about totals); by default a rule of the in-memory
/// audit and an id of the storm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation<R = Rule, I = Id> {
    pub rule: R,
    pub ids: Vec<I>,
}

impl<R, I: Ord> Violation<R, I> {
    /// The violation of a per-id rule by `ids` (sorted, each once), or
    /// none if no id broke it.
    pub fn named(rule: R, mut ids: Vec<I>) -> Option<Self> {
        if ids.is_empty() {
            return None;
        }
        ids.sort_unstable();
        ids.dedup();
        Some(Violation { rule, ids })
    }

    /// A violation of a rule about totals, which names no id.
    pub fn total(rule: R) -> Self {
        Violation {
            rule,
            ids: Vec::new(),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::audit::Listed;
    use std::collections::HashSet;

    /// Each of `rules` has an id of its own, in snake_case.
    pub fn assert_distinct_snake_case_ids(rules: &[&dyn AuditRule]) {
        let ids: HashSet<&str> = rules.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), rules.len(), "{ids:?}");
        for id in ids {
            let snake = id
                .split('_')
                .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()));
            assert!(snake, "{id}");
        }
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

    #[test]
    fn a_violation_names_its_ids_sorted_once_and_none_without_ids() {
        let named = Violation::named(Rule::DoubleSuccess, vec![7, 3, 7]);
        assert_eq!(named.map(|v| v.ids), Some(vec![3, 7]));
        assert_eq!(Violation::<Rule, Id>::named(Rule::Wedged, vec![]), None);
        assert!(Violation::<Rule, Id>::total(Rule::HungWait).ids.is_empty());
    }
}
