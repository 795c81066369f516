//! The known-bad protocols of `--sabotage`, which the audit must catch:
//! every statement a sabotaged run changes is changed here, and only here.

use crate::options::Sabotage;
use async_tasks_recorder_pg::{KnownBad, Statements};
use std::time::Duration;

/// The recorder's table.
pub const TASKS: &str = "stress_tasks";

/// The statements, made known-bad as `sabotage` asks, from the pg crate's
/// catalogue of known-bad statements.
pub fn statements(sabotage: Option<Sabotage>) -> Statements {
    let sql = Statements::new(TASKS, "bigint");
    match sabotage {
        None => sql,
        Some(Sabotage::Unfenced) => sql.known_bad(KnownBad::FinishWithoutFenceInAnyState),
        Some(Sabotage::ClientClock) => sql.known_bad(KnownBad::ClaimByClientClock),
    }
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
        let good = statements(None);
        let unfenced = statements(Some(Sabotage::Unfenced));
        assert_ne!(good.finish, unfenced.finish);
        assert!(
            !unfenced.finish.contains("fence = $2"),
            "{}",
            unfenced.finish
        );
        assert_eq!(good.claim, unfenced.claim);
        let clock = statements(Some(Sabotage::ClientClock));
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
