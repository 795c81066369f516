//! The catalogue of known-bad statements: each a defect that a check must
//! catch, naming its reason. A bad statement is formatted by the same
//! function as the good one, from the same guard fragments, with one guard
//! removed or weakened, so a rewrite of the good statement cannot leave a
//! bite testing text that no longer exists.

use super::{
    CODES, Statements, claim, claim_guard, claim_lapsed_by, finish, finish_state_guard, now, read,
    state_codes,
};
use async_tasks_recorder::spec::Phase;

/// One defect of one statement, for the bite tests and the stress run's
/// sabotage.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum KnownBad {
    /// The finish ignores its fence: a zombie's finish matches the row of
    /// the attempt that replaced it.
    FinishWithoutFence,
    /// The finish ignores its fence and takes any settled or working row:
    /// a zombie's finish overwrites a newer outcome, success included.
    FinishWithoutFenceInAnyState,
    /// The claim judges a lease by the replica's clock (`$4`), not the
    /// database's: a replica whose clock runs ahead steals a live lease.
    ClaimByClientClock,
    /// The claim has lost its guard: neither its read nor its write
    /// refuses, so it takes any id, `Working` and `Success` ones included.
    ClaimWithoutGuard,
    /// The claim's write has lost its guard and trusts the read before it:
    /// a read made stale by a claim that commits in between grants the id
    /// a second time.
    ClaimTrustsItsRead,
    /// The read computes expiry from the clock instead of reporting the
    /// stored state: a reader sees `Failed`, then a late `Success`.
    ReadComputesExpiry,
}

/// Stands in for the fence guard: keeps `$2` typed, matches any fence.
const ANY_FENCE: &str = "$2::int8 IS NOT NULL";

/// Stands in for the claim's database clock: the client clock parameter.
const CLIENT_CLOCK: &str = "$4";

impl KnownBad {
    /// Every defect in the catalogue.
    pub const ALL: [KnownBad; 6] = [
        KnownBad::FinishWithoutFence,
        KnownBad::FinishWithoutFenceInAnyState,
        KnownBad::ClaimByClientClock,
        KnownBad::ClaimWithoutGuard,
        KnownBad::ClaimTrustsItsRead,
        KnownBad::ReadComputesExpiry,
    ];
}

impl Statements {
    /// These statements with `defect`: only the statement it names changes.
    pub fn known_bad(mut self, defect: KnownBad) -> Statements {
        let t = &self.table;
        match defect {
            KnownBad::FinishWithoutFence => {
                self.finish = finish(t, &finish_state_guard(), ANY_FENCE);
            }
            KnownBad::FinishWithoutFenceInAnyState => {
                let phases = [Phase::Working, Phase::Failed, Phase::Success];
                let settled_or_working = format!("state IN ({})", state_codes(&phases));
                self.finish = finish(t, &settled_or_working, ANY_FENCE);
            }
            // The read judges leases by the database clock, so a claim
            // that trusts the client's must not be refused by it first.
            KnownBad::ClaimByClientClock => {
                self.claim = claim(t, &claim_guard(&claim_lapsed_by(CLIENT_CLOCK)));
                self.claim_reads_client_clock = true;
                self.claim_ignores_read = true;
            }
            KnownBad::ClaimWithoutGuard => {
                self.claim = claim(t, "");
                self.claim_ignores_read = true;
            }
            KnownBad::ClaimTrustsItsRead => self.claim = claim(t, ""),
            KnownBad::ReadComputesExpiry => {
                let computed = format!(
                    "CASE WHEN state = {} AND lease_until <= {} THEN {}::smallint ELSE state END",
                    CODES.working,
                    now(2),
                    CODES.failed
                );
                self.read = read(t, &computed);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FENCE_IS_CURRENT, STORED_STATE};
    use super::*;

    /// The statements by name, to compare one defect's set with the good one.
    fn by_name(sql: &Statements) -> [(&'static str, &str); 16] {
        [
            ("schema", &sql.schema),
            ("claim_new", &sql.claim_new),
            ("claim", &sql.claim),
            ("finish", &sql.finish),
            ("renew", &sql.renew),
            ("revoke_begin", &sql.revoke_begin),
            ("revoke_end", &sql.revoke_end),
            ("read", &sql.read),
            ("expire_one", &sql.expire_one),
            ("abandon", &sql.abandon),
            ("confirm", &sql.confirm),
            ("sweep", &sql.sweep),
            ("list", &sql.list),
            ("page_first", &sql.page_first),
            ("page_after", &sql.page_after),
            ("count", &sql.count),
        ]
    }

    /// The statement `defect` changes, and the guard text the good one has
    /// and the bad one must not.
    fn target(defect: KnownBad) -> (&'static str, String) {
        match defect {
            KnownBad::FinishWithoutFence => ("finish", format!("AND {FENCE_IS_CURRENT}")),
            KnownBad::FinishWithoutFenceInAnyState => (
                "finish",
                format!("AND {} AND {FENCE_IS_CURRENT}", finish_state_guard()),
            ),
            KnownBad::ClaimByClientClock => ("claim", claim_lapsed_by(&now(3))),
            KnownBad::ClaimWithoutGuard | KnownBad::ClaimTrustsItsRead => {
                ("claim", claim_guard(&claim_lapsed_by(&now(3))))
            }
            KnownBad::ReadComputesExpiry => ("read", format!("SELECT {STORED_STATE},")),
        }
    }

    #[test]
    fn each_defect_changes_exactly_the_statement_it_names_and_removes_its_guard() {
        let good = Statements::new("tasks", "bigint");
        for defect in KnownBad::ALL {
            let bad = good.clone().known_bad(defect);
            let (name, guard) = target(defect);
            for ((statement, good_text), (_, bad_text)) in
                by_name(&good).into_iter().zip(by_name(&bad))
            {
                if statement == name {
                    assert!(
                        good_text.contains(&guard),
                        "{defect:?}: good {name} lacks {guard:?}"
                    );
                    assert!(
                        !bad_text.contains(&guard),
                        "{defect:?}: bad {name} keeps {guard:?}"
                    );
                } else {
                    assert_eq!(good_text, bad_text, "{defect:?} changed {statement}");
                }
            }
        }
    }

    #[test]
    fn a_finish_without_the_fence_still_binds_the_fence_parameter() {
        for defect in [
            KnownBad::FinishWithoutFence,
            KnownBad::FinishWithoutFenceInAnyState,
        ] {
            let bad = Statements::new("tasks", "bigint").known_bad(defect);
            assert!(bad.finish.contains(ANY_FENCE), "{}", bad.finish);
        }
    }

    #[test]
    fn the_client_clock_claim_reads_the_client_clock() {
        let bad = Statements::new("tasks", "bigint").known_bad(KnownBad::ClaimByClientClock);
        assert!(
            bad.claim.contains(&format!("<= {CLIENT_CLOCK}")),
            "{}",
            bad.claim
        );
    }

    #[test]
    fn only_a_claim_without_its_guards_skips_the_reads_refusal() {
        for defect in KnownBad::ALL {
            let bad = Statements::new("tasks", "bigint").known_bad(defect);
            let skips = matches!(
                defect,
                KnownBad::ClaimWithoutGuard | KnownBad::ClaimByClientClock
            );
            assert_eq!(bad.claim_ignores_read, skips, "{defect:?}");
        }
    }
}
