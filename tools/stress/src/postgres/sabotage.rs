//! The known-bad protocols of `--sabotage`, which the audit must catch:
//! every statement a sabotaged run changes is changed here, and only here.

use crate::options::Sabotage;
use async_tasks_recorder_pg::Statements;
use std::time::Duration;

/// The recorder's table.
pub const TASKS: &str = "stress_tasks";
/// The fence guard of the finish statement, which the unfenced sabotage
/// replaces by one that takes any live state and ignores the fence.
const FINISH_GUARD: &str = "AND state = 1 AND fence = $2";
/// The lease guard of the claim statement, which the client-clock sabotage
/// replaces by a comparison with the client's clock (`$4`).
const CLAIM_GUARD: &str = "t.lease_until <= (clock_timestamp() + $3 * interval '1 microsecond')";

/// The statements, made known-bad as `sabotage` asks.
pub fn statements(sabotage: Option<Sabotage>) -> Result<Statements, String> {
    let mut sql = Statements::new(TASKS, "bigint");
    match sabotage {
        None => {}
        Some(Sabotage::Unfenced) => {
            if !sql.finish.contains(FINISH_GUARD) {
                return Err(format!("finish statement changed: {}", sql.finish));
            }
            sql.finish = sql.finish.replace(
                FINISH_GUARD,
                "AND state IN (1, 2, 3) AND $2::int8 IS NOT NULL",
            );
        }
        Some(Sabotage::ClientClock) => {
            if !sql.claim.contains(CLAIM_GUARD) {
                return Err(format!("claim statement changed: {}", sql.claim));
            }
            sql.claim = sql.claim.replace(CLAIM_GUARD, "t.lease_until <= $4");
        }
    }
    Ok(sql)
}

/// How far ahead the client clock of worker process `slot` runs: under the
/// client-clock sabotage, process 0's by twice the lease.
pub fn client_clock_skew(
    sabotage: Option<Sabotage>,
    slot: u64,
    lease: Duration,
) -> Option<Duration> {
    (sabotage == Some(Sabotage::ClientClock) && slot == 0).then_some(lease * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sabotage_changes_the_statement_it_names() {
        let good = statements(None).expect("good statements");
        let unfenced = statements(Some(Sabotage::Unfenced)).expect("the finish guard is found");
        assert_ne!(good.finish, unfenced.finish);
        assert!(
            !unfenced.finish.contains("fence = $2"),
            "{}",
            unfenced.finish
        );
        assert_eq!(good.claim, unfenced.claim);
        let clock = statements(Some(Sabotage::ClientClock)).expect("the claim guard is found");
        assert!(
            clock.claim.contains("t.lease_until <= $4"),
            "{}",
            clock.claim
        );
        assert_eq!(good.finish, clock.finish);
    }

    #[test]
    fn only_process_0_of_the_client_clock_sabotage_runs_ahead() {
        let lease = Duration::from_millis(500);
        let skew = |sabotage, slot| client_clock_skew(sabotage, slot, lease);
        assert_eq!(skew(Some(Sabotage::ClientClock), 0), Some(lease * 2));
        assert_eq!(skew(Some(Sabotage::ClientClock), 1), None);
        assert_eq!(skew(Some(Sabotage::Unfenced), 0), None);
        assert_eq!(skew(None, 0), None);
    }
}
