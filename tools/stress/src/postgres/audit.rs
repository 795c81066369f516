//! The audit of a postgres run, read from the database once every worker
//! process has ended: [`gather`] sweeps past the longest lease and reads
//! what the rules need, most of them as SQL checks that return the ids
//! breaking them; [`check`], a pure function, adds what the workers
//! acknowledged and compares listings with point queries. Each broken
//! rule is a [`Violation`] of a [`PgRule`] naming its ids.

use super::IDS_SHOWN;
use super::database::{COORDINATOR_APP, connect, recorder};
use super::message::{Acked, Arrival, StaleFinish, TaskResult};
use crate::violation::{AuditRule, Violation};
use async_tasks_recorder_pg::TaskState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Duration;
use tokio_postgres::Client;

/// Most ids the audit reads one by one.
const POINT_QUERIES: u64 = 20_000;

/// The stored states the audit reads, through the pg crate's one mapping
/// of phases to stored codes.
mod stored {
    use async_tasks_recorder_pg::{Phase, TaskState, phase_of, state_codes};

    /// `state IN (…)` of the rows whose epoch has its success: `Success`,
    /// or a revoke of it under way.
    pub fn succeeded_codes() -> String {
        state_codes(&[Phase::Success, Phase::Revoking])
    }

    /// `state IN (…)` of the rows under a lease: `Working` or `Revoking`.
    pub fn leased_codes() -> String {
        state_codes(&[Phase::Working, Phase::Revoking])
    }

    /// Whether a stored code reads `Success`.
    pub fn succeeded(code: i16) -> bool {
        phase_of(code).state() == TaskState::Success
    }
}

/// A broken rule of the postgres run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgRule {
    /// More than one ledger row for one id and epoch: the fence let a
    /// second success through.
    TwoEffectsInOneEpoch,
    SuccessWithoutLedgerRow,
    EffectWithoutSuccess,
    RevokedEpochWithoutEffect,
    LiveAfterSweep,
    /// A success a worker acknowledged (after its commit) is not in the
    /// database: lost in a crash, say.
    AcknowledgedSuccessLost,
    /// Two successes acknowledged in one epoch of one id, under different
    /// fences: the second was granted by a primary that never received the
    /// first (an asynchronous promotion).
    AcknowledgedTwiceInOneEpoch,
    /// A fence acknowledged for two attempts, or fences of one id that do
    /// not rise with its epochs: the sequence handed a value out again.
    FenceReissued,
    /// A success's finish answered `Stale` within one lease of its claim.
    LiveLeaseTakenOver,
    ListingsDisagree,
    /// A fault asked for was never injected or never bit, or the run
    /// acknowledged no success.
    FaultNotExercised,
}

impl AuditRule for PgRule {
    fn id(&self) -> &'static str {
        match self {
            PgRule::TwoEffectsInOneEpoch => "two_effects_in_one_epoch",
            PgRule::SuccessWithoutLedgerRow => "success_without_ledger_row",
            PgRule::EffectWithoutSuccess => "effect_without_success",
            PgRule::RevokedEpochWithoutEffect => "revoked_epoch_without_effect",
            PgRule::LiveAfterSweep => "live_after_sweep",
            PgRule::AcknowledgedSuccessLost => "acknowledged_success_lost",
            PgRule::AcknowledgedTwiceInOneEpoch => "acknowledged_twice_in_one_epoch",
            PgRule::FenceReissued => "fence_reissued",
            PgRule::LiveLeaseTakenOver => "live_lease_taken_over",
            PgRule::ListingsDisagree => "listings_disagree",
            PgRule::FaultNotExercised => "fault_not_exercised",
        }
    }
}

impl fmt::Display for PgRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PgRule::TwoEffectsInOneEpoch => {
                "two side effects in one epoch (ledger rows per id and epoch > 1)"
            }
            PgRule::SuccessWithoutLedgerRow => {
                "Success without its epoch's ledger row (fence of the success)"
            }
            PgRule::EffectWithoutSuccess => {
                "side effect committed but the id is not Success in that epoch"
            }
            PgRule::RevokedEpochWithoutEffect => "revoked epoch without its side effect",
            PgRule::LiveAfterSweep => {
                "Working or Revoking after the sweep ran past the longest lease"
            }
            PgRule::AcknowledgedSuccessLost => "acknowledged success lost",
            PgRule::AcknowledgedTwiceInOneEpoch => {
                "two successes acknowledged in one epoch, under different fences"
            }
            PgRule::FenceReissued => {
                "a fence acknowledged twice, or fences of an id not rising with its epochs"
            }
            PgRule::LiveLeaseTakenOver => {
                "a live lease was taken over: a finish answered Stale within one lease of its claim"
            }
            PgRule::ListingsDisagree => "listings or counts disagree with point queries",
            PgRule::FaultNotExercised => "fault flag set but never injected or never bit",
        })
    }
}

/// A violation of the postgres run, naming the database's ids.
pub type PgViolation = Violation<PgRule, i64>;

/// The rules checked in SQL, each a query of the ids that break it.
fn sql_checks() -> [(PgRule, String); 5] {
    let (succeeded, leased) = (stored::succeeded_codes(), stored::leased_codes());
    [
        (
            PgRule::TwoEffectsInOneEpoch,
            "SELECT id FROM stress_ledger GROUP BY id, epoch HAVING count(*) > 1".into(),
        ),
        (
            PgRule::SuccessWithoutLedgerRow,
            format!(
                "SELECT t.id FROM stress_tasks t WHERE t.state IN ({succeeded}) AND NOT EXISTS
                   (SELECT 1 FROM stress_ledger l WHERE l.id = t.id AND l.epoch = t.epoch
                    AND l.fence = t.success_fence)"
            ),
        ),
        (
            PgRule::EffectWithoutSuccess,
            format!(
                "SELECT l.id FROM stress_ledger l JOIN stress_tasks t ON t.id = l.id
                 WHERE l.epoch > t.epoch OR (l.epoch = t.epoch AND (t.state NOT IN ({succeeded})
                   OR t.success_fence IS DISTINCT FROM l.fence))"
            ),
        ),
        (
            PgRule::RevokedEpochWithoutEffect,
            "SELECT t.id FROM stress_tasks t, generate_series(0, t.epoch - 1) e
             WHERE NOT EXISTS (SELECT 1 FROM stress_ledger l WHERE l.id = t.id AND l.epoch = e)"
                .into(),
        ),
        (
            PgRule::LiveAfterSweep,
            format!("SELECT id FROM stress_tasks WHERE state IN ({leased})"),
        ),
    ]
}

/// One row of the recorder's table, as the audit reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskRow {
    /// The stored state code.
    pub state: i16,
    pub epoch: i64,
    pub success_fence: Option<i64>,
}

/// A listing of one state beside the count of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub state: TaskState,
    pub ids: Vec<i64>,
    pub counted: u64,
}

/// What the audit read from the database.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The ids each SQL check found, in [`sql_checks`] order.
    pub found: Vec<(PgRule, Vec<i64>)>,
    /// Every ledger row, as `(id, epoch, fence)`.
    pub ledger: HashSet<(i64, i64, i64)>,
    /// Every row of the recorder's table, by id.
    pub tasks: HashMap<i64, TaskRow>,
    /// The state of each of the first ids, read one by one.
    pub point_reads: Vec<(i64, TaskState)>,
    /// Working, Failed and Success, each listed and counted.
    pub listings: Vec<Listing>,
    /// Rows the final sweep moved.
    pub swept: u64,
}

async fn ids_of(client: &Client, sql: &str) -> Result<Vec<i64>, String> {
    let rows = client.query(sql, &[]).await.map_err(|e| e.to_string())?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Sweeps past the longest lease, then reads the evidence of `ids` ids.
pub async fn gather(
    url: &str,
    admin: &tokio_postgres::Config,
    lease: Duration,
    ids: u64,
) -> Result<Evidence, String> {
    let client = connect(admin).await?;
    let recorder = recorder(url, COORDINATOR_APP, lease, None, false)?;
    // Past the longest lease no worker renews anything: the sweep must
    // leave no row Working or Revoking.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let mut swept = 0;
    for _ in 0..1000 {
        let moved = recorder.sweep(1000).await.map_err(|e| e.to_string())?;
        if moved.is_empty() {
            break;
        }
        swept += moved.len() as u64;
    }
    let mut found = Vec::new();
    for (rule, sql) in sql_checks() {
        found.push((rule, ids_of(&client, &sql).await?));
    }
    let query =
        |sql: &'static str| async { client.query(sql, &[]).await.map_err(|e| e.to_string()) };
    let ledger = query("SELECT id, epoch, fence FROM stress_ledger")
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let tasks = query("SELECT id, state, epoch, success_fence FROM stress_tasks")
        .await?
        .iter()
        .map(|r| {
            let row = TaskRow {
                state: r.get(1),
                epoch: r.get(2),
                success_fence: r.get(3),
            };
            (r.get(0), row)
        })
        .collect();
    let mut point_reads = Vec::new();
    for id in 0..ids.min(POINT_QUERIES) as i64 {
        point_reads.push((id, recorder.query(&id).await.map_err(|e| e.to_string())?));
    }
    let mut listings = Vec::new();
    for state in [TaskState::Working, TaskState::Failed, TaskState::Success] {
        let ids = recorder.list(state).await.map_err(|e| e.to_string())?;
        let counted = recorder.count(state).await.map_err(|e| e.to_string())?;
        listings.push(Listing {
            state,
            ids,
            counted,
        });
    }
    Ok(Evidence {
        found,
        ledger,
        tasks,
        point_reads,
        listings,
        swept,
    })
}

/// Every broken rule in `evidence`, given what the workers said: the
/// successes they acknowledged and the finishes answered `Stale`.
pub fn check(
    evidence: &Evidence,
    acked: &[Arrival<Acked>],
    stale: &[Arrival<StaleFinish>],
    lease: Duration,
) -> Vec<PgViolation> {
    let mut violations: Vec<PgViolation> = evidence
        .found
        .iter()
        .filter_map(|(rule, ids)| Violation::named(*rule, ids.clone()))
        .collect();
    // Acknowledged successes (committed, some before a crash) must all be there.
    let lost = acked
        .iter()
        .map(|a| a.message)
        .filter(|Acked { id, epoch, fence }| {
            let row_ok = match evidence.tasks.get(id) {
                Some(row) if row.epoch > *epoch => true,
                Some(row) => {
                    row.epoch == *epoch
                        && stored::succeeded(row.state)
                        && row.success_fence == Some(*fence)
                }
                None => false,
            };
            !row_ok || !evidence.ledger.contains(&(*id, *epoch, *fence))
        })
        .map(|a| a.id)
        .collect();
    violations.extend(Violation::named(PgRule::AcknowledgedSuccessLost, lost));
    violations.extend(Violation::named(
        PgRule::AcknowledgedTwiceInOneEpoch,
        acknowledged_twice(acked),
    ));
    violations.extend(Violation::named(
        PgRule::FenceReissued,
        reissued_fences(acked),
    ));
    let live_stale = stale
        .iter()
        .map(|s| s.message)
        .filter(|s| {
            s.task == TaskResult::Success && u128::from(s.ms_since_claim) < lease.as_millis()
        })
        .map(|s| s.id)
        .collect();
    violations.extend(Violation::named(PgRule::LiveLeaseTakenOver, live_stale));
    violations.extend(Violation::named(
        PgRule::ListingsDisagree,
        listings_disagreeing(evidence),
    ));
    violations
}

/// Ids with two successes acknowledged in one epoch under different fences.
fn acknowledged_twice(acked: &[Arrival<Acked>]) -> Vec<i64> {
    let mut fences: BTreeMap<(i64, i64), BTreeSet<i64>> = BTreeMap::new();
    for a in acked {
        let Acked { id, epoch, fence } = a.message;
        fences.entry((id, epoch)).or_default().insert(fence);
    }
    let ids: BTreeSet<i64> = fences
        .into_iter()
        .filter(|(_, fences)| fences.len() > 1)
        .map(|((id, _), _)| id)
        .collect();
    ids.into_iter().collect()
}

/// Ids whose acknowledged fence another acknowledged success also holds,
/// or whose fences do not rise with their epochs.
fn reissued_fences(acked: &[Arrival<Acked>]) -> Vec<i64> {
    let mut holders: BTreeMap<i64, BTreeSet<(i64, i64)>> = BTreeMap::new();
    let mut by_id: BTreeMap<i64, BTreeMap<i64, BTreeSet<i64>>> = BTreeMap::new();
    for a in acked {
        let Acked { id, epoch, fence } = a.message;
        holders.entry(fence).or_default().insert((id, epoch));
        by_id
            .entry(id)
            .or_default()
            .entry(epoch)
            .or_default()
            .insert(fence);
    }
    let mut ids: BTreeSet<i64> = holders
        .values()
        .filter(|held| held.len() > 1)
        .flat_map(|held| held.iter().map(|(id, _)| *id))
        .collect();
    for (id, epochs) in by_id {
        let mut highest = i64::MIN;
        for fences in epochs.values() {
            let (Some(&low), Some(&high)) = (fences.first(), fences.last()) else {
                continue;
            };
            if low <= highest {
                ids.insert(id);
            }
            highest = highest.max(high);
        }
    }
    ids.into_iter().collect()
}

/// Ids whose point query and listings disagree, and the first ids of a
/// listing whose count differs from its length.
fn listings_disagreeing(evidence: &Evidence) -> Vec<i64> {
    let mut disagree = Vec::new();
    for listing in &evidence.listings {
        if listing.counted != listing.ids.len() as u64 {
            disagree.extend(listing.ids.iter().take(IDS_SHOWN).copied());
        }
        let listed: HashSet<i64> = listing.ids.iter().copied().collect();
        for (id, got) in &evidence.point_reads {
            if (*got == listing.state) != listed.contains(id) {
                disagree.push(*id);
            }
        }
    }
    disagree
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::message::Incarnation;
    use async_tasks_recorder_pg::{Phase, state_code};
    use std::time::Instant;

    const LEASE: Duration = Duration::from_millis(1500);

    fn arrived<M>(message: M) -> Arrival<M> {
        Arrival {
            from: Incarnation {
                slot: 0,
                generation: 0,
            },
            at: Instant::now(),
            message,
        }
    }

    fn acked(id: i64, epoch: i64, fence: i64) -> Arrival<Acked> {
        arrived(Acked { id, epoch, fence })
    }

    fn stale(id: i64, ms_since_claim: u64, task: TaskResult) -> Arrival<StaleFinish> {
        arrived(StaleFinish {
            id,
            fence: 1,
            ms_since_claim,
            task,
        })
    }

    /// Id 0 `Success` in epoch 1 (fence 7; epoch 0's success has fence 3),
    /// id 1 `Failed`, id 2 never claimed; the listings and counts agree.
    fn consistent() -> Evidence {
        let row = |state, epoch, success_fence| TaskRow {
            state,
            epoch,
            success_fence,
        };
        let listing = |state, ids: Vec<i64>| Listing {
            state,
            counted: ids.len() as u64,
            ids,
        };
        Evidence {
            found: sql_checks().map(|(rule, _)| (rule, Vec::new())).to_vec(),
            ledger: HashSet::from([(0, 0, 3), (0, 1, 7)]),
            tasks: HashMap::from([
                (0, row(state_code(Phase::Success), 1, Some(7))),
                (1, row(state_code(Phase::Failed), 0, None)),
            ]),
            point_reads: vec![
                (0, TaskState::Success),
                (1, TaskState::Failed),
                (2, TaskState::NotFound),
            ],
            listings: vec![
                listing(TaskState::Working, vec![]),
                listing(TaskState::Failed, vec![1]),
                listing(TaskState::Success, vec![0]),
            ],
            swept: 0,
        }
    }

    fn found(violations: Vec<PgViolation>) -> Vec<(PgRule, Vec<i64>)> {
        violations.into_iter().map(|v| (v.rule, v.ids)).collect()
    }

    #[test]
    fn a_consistent_database_passes() {
        let acks = [acked(0, 0, 3), acked(0, 1, 7)];
        let stales = [
            stale(0, 2000, TaskResult::Success),
            stale(1, 10, TaskResult::Failure),
        ];
        assert_eq!(found(check(&consistent(), &acks, &stales, LEASE)), []);
    }

    #[test]
    fn what_a_sql_check_finds_is_reported_sorted_once() {
        let mut evidence = consistent();
        evidence.found[0].1 = vec![9, 4, 9];
        assert_eq!(
            found(check(&evidence, &[], &[], LEASE)),
            [(PgRule::TwoEffectsInOneEpoch, vec![4, 9])]
        );
    }

    #[test]
    fn an_acknowledged_success_missing_from_the_database_is_named() {
        let mut evidence = consistent();
        evidence.ledger.remove(&(0, 1, 7));
        // Id 0's epoch 1 lost its ledger row; id 2 was never stored.
        let acks = [acked(0, 1, 7), acked(2, 0, 5), acked(0, 0, 3)];
        assert_eq!(
            found(check(&evidence, &acks, &[], LEASE)),
            [(PgRule::AcknowledgedSuccessLost, vec![0, 2])]
        );
    }

    #[test]
    fn two_successes_acknowledged_in_one_epoch_and_a_reissued_fence_are_named() {
        let evidence = consistent();
        // Id 0 and id 2 both acknowledged under fence 7: drawn twice.
        // Id 0 also has two fences in epoch 1. Id 1's later epoch has a
        // smaller fence than its earlier one.
        let acks = [
            acked(0, 1, 7),
            acked(0, 1, 9),
            acked(2, 0, 7),
            acked(1, 0, 6),
            acked(1, 1, 4),
        ];
        let violations = check(&evidence, &acks, &[], LEASE);
        let named: Vec<_> = found(violations)
            .into_iter()
            .filter(|(rule, _)| {
                matches!(
                    rule,
                    PgRule::AcknowledgedTwiceInOneEpoch | PgRule::FenceReissued
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                (PgRule::AcknowledgedTwiceInOneEpoch, vec![0]),
                (PgRule::FenceReissued, vec![0, 1, 2]),
            ]
        );
    }

    #[test]
    fn an_acknowledged_success_its_row_does_not_hold_is_named() {
        let mut evidence = consistent();
        evidence.ledger.insert((1, 0, 4));
        evidence.ledger.insert((0, 1, 8));
        // Id 1 reads Failed in the epoch of its acknowledged success; id 0
        // holds another fence's success.
        let acks = [acked(1, 0, 4), acked(0, 1, 8)];
        assert_eq!(
            found(check(&evidence, &acks, &[], LEASE)),
            [(PgRule::AcknowledgedSuccessLost, vec![0, 1])]
        );
    }

    #[test]
    fn a_success_answered_stale_within_its_lease_is_named_and_a_failure_is_not() {
        let stales = [
            stale(5, 1499, TaskResult::Success),
            stale(6, 1500, TaskResult::Success),
            stale(7, 10, TaskResult::Failure),
        ];
        assert_eq!(
            found(check(&consistent(), &[], &stales, LEASE)),
            [(PgRule::LiveLeaseTakenOver, vec![5])]
        );
    }

    #[test]
    fn a_listing_that_differs_from_point_queries_names_the_ids() {
        let mut evidence = consistent();
        // Failed lists id 2 (NotFound) and not id 1; Success counts 2 rows.
        evidence.listings[1].ids = vec![2];
        evidence.listings[2].counted = 2;
        assert_eq!(
            found(check(&evidence, &[], &[], LEASE)),
            [(PgRule::ListingsDisagree, vec![0, 1, 2])]
        );
    }

    #[test]
    fn every_rule_has_its_own_snake_case_id() {
        let rules = [
            PgRule::TwoEffectsInOneEpoch,
            PgRule::SuccessWithoutLedgerRow,
            PgRule::EffectWithoutSuccess,
            PgRule::RevokedEpochWithoutEffect,
            PgRule::LiveAfterSweep,
            PgRule::AcknowledgedSuccessLost,
            PgRule::AcknowledgedTwiceInOneEpoch,
            PgRule::FenceReissued,
            PgRule::LiveLeaseTakenOver,
            PgRule::ListingsDisagree,
            PgRule::FaultNotExercised,
        ];
        let rules: Vec<&dyn AuditRule> = rules.iter().map(|r| r as &dyn AuditRule).collect();
        crate::violation::tests::assert_distinct_snake_case_ids(&rules);
    }
}
