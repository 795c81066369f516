//! Why a launch or a revoke did not run.

use crate::error::Error;
use async_tasks_recorder::spec::TaskState;

/// Why a launch or a revoke did not run its future.
#[derive(Debug)]
pub enum Refused {
    /// Refused by the id's state: `Working` or `Success` for a launch,
    /// `NotSuccess` / revoke running for a revoke (see [`RevokeRefused`]).
    State(TaskState),
    /// A revoke refusal.
    Revoke(RevokeRefused),
    /// The database could not be asked.
    Error(Error),
}

/// Why a revoke was refused.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum RevokeRefused {
    /// The id is not `Success`.
    NotSuccess,
    /// Another revoke of the id is running.
    Revoking,
}
