//! The one path that grants an attempt, for a claim and a revoke begin
//! alike: read the row; refuse by its state, or, if the read finds the id
//! grantable, send the guarded write; on a row, the attempt holds the id;
//! on none, the row moved on after the read, and it is read again.
//!
//! A refusal is therefore one read: no row lock, no WAL, no wait behind a
//! writer holding the row. Only an id the read finds grantable pays for the
//! write, and the write keeps every guard inside it, so a read made stale
//! by a concurrent write can cost a try, never grant (P10, "Refusals").

use crate::attempt::{Attempt, detached};
use crate::db::{Db, Holding, Key, Stored};
use crate::error::Error;
use crate::refusal::{LaunchRefusal, RevokeRefusal};
use crate::switches::Mutant;
use async_tasks_recorder::spec::Phase;
use std::sync::Arc;
use tokio::time::Instant;

/// Tries before a grant gives up with [`Error::Contended`] (as it does
/// once the statement bound has passed since its first try).
const TRIES: usize = 64;

/// A refusal of a grant: which attempt the grant makes, and how a read of
/// the row decides the refusal.
pub(crate) trait Refusal: Sized {
    /// What the granted attempt holds.
    const HOLDING: Holding;
    /// The refusal `now` calls for, or `None` if the write's guard admits
    /// the row as read (the two must agree: `grant.rs` tests).
    fn of(now: &Stored) -> Option<Self>;
}

impl Refusal for LaunchRefusal {
    const HOLDING: Holding = Holding::Work;
    fn of(now: &Stored) -> Option<Self> {
        match now.phase {
            Phase::Working if !now.lapsed => Some(LaunchRefusal::Working),
            Phase::Success | Phase::Revoking => Some(LaunchRefusal::Success),
            _ => None,
        }
    }
}

impl Refusal for RevokeRefusal {
    const HOLDING: Holding = Holding::Revoke;
    fn of(now: &Stored) -> Option<Self> {
        match now.phase {
            Phase::Revoking if !now.lapsed => Some(RevokeRefusal::Revoking),
            Phase::NotFound | Phase::Working | Phase::Failed => Some(RevokeRefusal::NotSuccess),
            _ => None,
        }
    }
}

/// Grants `id` an attempt holding what `Why` grants, or refuses it.
///
/// The read that refuses runs in the caller's task: a caller dropped then
/// leaves nothing behind. The write runs as a task of its own, so a caller
/// dropped while it is in flight cannot leave a granted row without its
/// attempt: the task sees the grant through, and an attempt nobody takes is
/// dropped, which settles it `Failed` at once instead of after its lease.
pub(crate) async fn grant<K: Key, Why: Refusal + Send + 'static>(
    db: &Arc<Db>,
    id: K,
) -> Result<Result<Attempt<K>, Why>, Error> {
    let until = Instant::now() + db.limits().statement;
    let mut skip_refusal = db.claim_ignores_read() && Why::HOLDING == Holding::Work;
    for _ in 0..TRIES {
        let now = db.read_row(&id).await?;
        let refusal = Why::of(&now.unwrap_or(Stored::ABSENT));
        match refusal {
            Some(why) if !skip_refusal => return Ok(Err(why)),
            _ => skip_refusal = false,
        }
        let write = write(db.clone(), id.clone(), now.is_none());
        let written = match db.switches.mutant(Mutant::GrantInCallersTask) {
            true => write.await?,
            false => detached(write).await?,
        };
        match written {
            Written::Granted(attempt) => return Ok(Ok(attempt)),
            Written::Refused(why) => return Ok(Err(why)),
            Written::Moved => {}
        }
        if Instant::now() >= until {
            break;
        }
    }
    Err(Error::Contended)
}

/// What the guarded write of a grant did.
enum Written<K: Key, Why> {
    /// It granted the id.
    Granted(Attempt<K>),
    /// It waited past the lock bound, and the committed row refuses.
    Refused(Why),
    /// Its guard admitted no row: the row moved on after the read.
    Moved,
}

/// The guarded write of a grant of `id`, whose row the read found (or, if
/// `absent`, did not).
async fn write<K: Key, Why: Refusal>(
    db: Arc<Db>,
    id: K,
    absent: bool,
) -> Result<Written<K, Why>, Error> {
    let sent = Instant::now();
    match db.grant(&id, Why::HOLDING, absent).await {
        Ok(Some((epoch, fence))) => {
            let attempt = Attempt::start(db.clone(), id, epoch, fence, Why::HOLDING, sent);
            Ok(Written::Granted(attempt))
        }
        Ok(None) => Ok(Written::Moved),
        // The row stayed locked past the lock bound (its holder is in the
        // middle of a finish inside its own transaction, or frozen there):
        // the statement rolled back, and the committed row decides the
        // refusal. A row the guard would admit is not waited for again:
        // the error says why.
        Err(e) if e.waited_past_the_lock_bound() => match Why::of(&db.read(&id).await?) {
            Some(why) => Ok(Written::Refused(why)),
            None => Err(e),
        },
        Err(e) => Err(e.after_sending(Why::HOLDING.grant_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tasks_recorder::spec::{FencedOp, FencedResponse, Record, Response, fenced_step};

    /// Every stored record a read can return: each phase, and each leased
    /// one lapsed or not.
    fn every_record() -> impl Iterator<Item = (Stored, Record)> {
        let phases = [
            Phase::NotFound,
            Phase::Working,
            Phase::Failed,
            Phase::Success,
            Phase::Revoking,
        ];
        phases.into_iter().flat_map(|phase| {
            let leased = matches!(phase, Phase::Working | Phase::Revoking);
            [false, true]
                .into_iter()
                .filter(move |&lapsed| leased || !lapsed)
                .map(move |lapsed| {
                    let stored = Stored {
                        phase,
                        epoch: 0,
                        fence: 1,
                        success_fence: None,
                        lapsed,
                    };
                    let record = Record {
                        phase,
                        epoch: 0,
                        fence: 1,
                        lapsed,
                    };
                    (stored, record)
                })
        })
    }

    /// The read refuses exactly where the fenced spec refuses, with the
    /// same answer, so a grant the read lets through is one the spec
    /// accepts in the state read (the write's guard then decides on the
    /// row as it is).
    #[test]
    fn the_reads_refusals_are_the_fenced_specs() {
        for (stored, record) in every_record() {
            let launch = match fenced_step(record, FencedOp::Launch { fence: 2 }).1 {
                FencedResponse::Step(Response::Accepted) => None,
                FencedResponse::Step(Response::LaunchRefused(state)) => Some(state),
                other => panic!("{record:?}: launch answered {other:?}"),
            };
            let read = <LaunchRefusal as Refusal>::of(&stored).map(LaunchRefusal::state);
            assert_eq!(read, launch, "launch of {stored:?}");
            let revoke = match fenced_step(record, FencedOp::BeginRevoke { fence: 2 }).1 {
                FencedResponse::Step(Response::Accepted) => None,
                FencedResponse::Step(Response::RevokeRefused(why)) => Some(why),
                other => panic!("{record:?}: revoke answered {other:?}"),
            };
            assert_eq!(
                <RevokeRefusal as Refusal>::of(&stored),
                revoke,
                "revoke of {stored:?}"
            );
        }
    }
}
