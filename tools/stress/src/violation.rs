//! What every audit reports: a broken rule and the ids that broke it. The
//! in-memory audit ([`crate::audit`]) and the PostgreSQL run's audit have
//! rules of their own; each rule has a stable id ([`AuditRule::id`]) that
//! the JSON report carries beside its text, for scripts to match.

use std::fmt;

/// A rule as reports name it: [`id`](AuditRule::id) for scripts, the
/// `Display` text for people.
pub trait AuditRule: fmt::Display {
    /// The rule's stable id: snake_case, one per kind of broken promise,
    /// never changed once given (scripts match on it).
    fn id(&self) -> &'static str;
}

/// One kind of broken promise and the ids that broke it, in ascending order
/// (none for the rules about totals): a rule `R` of one audit, naming ids
/// `I` of its recorder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation<R, I> {
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
    fn a_violation_names_its_ids_sorted_once_and_none_without_ids() {
        let named = Violation::named("double", vec![7, 3, 7]);
        assert_eq!(named.map(|v| v.ids), Some(vec![3, 7]));
        assert_eq!(Violation::<_, u32>::named("wedged", vec![]), None);
        assert!(Violation::<_, u32>::total("hung").ids.is_empty());
    }
}
