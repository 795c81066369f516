//! Why a launch or a revoke did not run: each call's refusal type names
//! only the refusals that call can meet.

use crate::error::Error;
use async_tasks_recorder::spec::TaskState;

pub use async_tasks_recorder::spec::RevokeRefusal;

/// Why a claim (a launch) was refused: the id's state then.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum LaunchRefusal {
    /// Another attempt holds a live lease on the id.
    Working,
    /// The id succeeded in this epoch (a revoke of it may be running).
    Success,
}

impl LaunchRefusal {
    /// The state the refusal reports.
    pub const fn state(self) -> TaskState {
        match self {
            LaunchRefusal::Working => TaskState::Working,
            LaunchRefusal::Success => TaskState::Success,
        }
    }
}

/// Why a launch ([`LaunchRefusal`]) or a revoke ([`RevokeRefusal`]) did
/// not run its future.
#[derive(Debug)]
pub enum Refused<Why> {
    /// Refused by the id's state.
    By(Why),
    /// The database could not be asked.
    Error(Error),
}

impl<Why> From<Error> for Refused<Why> {
    fn from(e: Error) -> Self {
        Refused::Error(e)
    }
}

impl<Why: std::fmt::Debug> std::fmt::Display for Refused<Why> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::By(why) => write!(f, "refused: {why:?}"),
            Refused::Error(e) => e.fmt(f),
        }
    }
}
