//! The one mapping between a [`Phase`] and the `smallint` that stores it.
//! Every statement, every state the crate decodes, and every test or audit
//! that reads the table directly spells a state through this mapping,
//! never as a number.

use async_tasks_recorder::spec::{Phase, TaskState};

/// Every phase, in the order of its stored code.
pub(crate) const PHASES: [Phase; 5] = [
    Phase::NotFound,
    Phase::Working,
    Phase::Failed,
    Phase::Success,
    Phase::Revoking,
];

/// The code the `state` column stores for `phase`: the discriminant of
/// [`Phase`]. `NotFound` is stored for a revoked row, kept so that its
/// epoch stays monotone.
pub const fn state_code(phase: Phase) -> i16 {
    match phase {
        Phase::NotFound => 0,
        Phase::Working => 1,
        Phase::Failed => 2,
        Phase::Success => 3,
        Phase::Revoking => 4,
    }
}

/// The phase a stored `code` stands for. The table's `CHECK` admits only
/// the codes of [`state_code`]; anything else reads as `NotFound`.
pub fn phase_of(code: i16) -> Phase {
    PHASES
        .into_iter()
        .find(|&phase| state_code(phase) == code)
        .unwrap_or(Phase::NotFound)
}

/// The codes of `phases`, comma-separated, for `state IN (…)`.
pub fn state_codes(phases: &[Phase]) -> String {
    let codes: Vec<String> = phases.iter().map(|&p| state_code(p).to_string()).collect();
    codes.join(", ")
}

/// The stored phases that read as `state`, in code order: `Success` is
/// stored as `Success` or, while a revoke runs, `Revoking`.
pub(crate) fn phases_read_as(state: TaskState) -> impl Iterator<Item = Phase> {
    PHASES
        .into_iter()
        .filter(move |phase| phase.state() == state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_has_its_own_code_and_decodes_back() {
        for (index, phase) in PHASES.into_iter().enumerate() {
            assert_eq!(state_code(phase), phase as i16);
            assert_eq!(state_code(phase), index as i16);
            assert_eq!(phase_of(state_code(phase)), phase);
        }
        assert_eq!(phase_of(-1), Phase::NotFound);
    }

    #[test]
    fn success_is_read_from_success_and_revoking_rows() {
        let success: Vec<Phase> = phases_read_as(TaskState::Success).collect();
        assert_eq!(success, [Phase::Success, Phase::Revoking]);
        let (s, r) = (state_code(Phase::Success), state_code(Phase::Revoking));
        assert_eq!(state_codes(&success), format!("{s}, {r}"));
    }
}
