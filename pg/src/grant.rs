//! The one path that grants an attempt, for a claim and a revoke begin
//! alike: send the guarded statement; on a row, the attempt holds the id;
//! on none, read the row, and either refuse by its state or, if the row
//! changed in between so that the guard would now admit it, try again.

use crate::attempt::{Attempt, detached};
use crate::db::{Db, Holding, Key, Stored};
use crate::error::Error;
use crate::refusal::{LaunchRefusal, RevokeRefusal};
use async_tasks_recorder::spec::Phase;
use std::sync::Arc;
use tokio::time::Instant;

/// Tries before a grant gives up with [`Error::Contended`] (as it does
/// once the statement bound has passed since its first try).
const TRIES: usize = 64;

/// A refusal of a grant: which attempt the grant makes, and how the row
/// read after the guarded statement matched nothing decides the refusal.
pub(crate) trait Refusal: Sized {
    /// What the granted attempt holds.
    const HOLDING: Holding;
    /// The refusal `now` calls for, or `None` if the guard would admit the
    /// row (it moved on after the statement), so the grant is retried.
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
/// The grant runs as a task of its own, so a caller dropped while the
/// guarded statement is in flight cannot leave a granted row without its
/// attempt: the task sees the grant through, and an attempt nobody takes is
/// dropped, which settles it `Failed` at once instead of after its lease.
pub(crate) async fn grant<K: Key, Why: Refusal + Send + 'static>(
    db: &Arc<Db>,
    id: K,
) -> Result<Result<Attempt<K>, Why>, Error> {
    detached(grant_here(db.clone(), id)).await
}

/// [`grant`], run by the caller's own task.
///
/// A refusal is decided by a fresh read after the guarded statement matched
/// nothing; if that read shows a row the guard admits (the holder finished
/// or its lease ran out in between), the grant is retried.
async fn grant_here<K: Key, Why: Refusal>(
    db: Arc<Db>,
    id: K,
) -> Result<Result<Attempt<K>, Why>, Error> {
    let until = Instant::now() + db.limits().statement;
    for _ in 0..TRIES {
        let sent = Instant::now();
        let granted = match db.grant(&id, Why::HOLDING).await {
            Ok(granted) => granted,
            // The row stayed locked past the lock bound (its holder is in
            // the middle of a finish inside its own transaction, or
            // frozen there): the statement rolled back, and the committed
            // row decides the refusal. A row the guard would admit is not
            // waited for again: the error says why.
            Err(e) if e.waited_past_the_lock_bound() => {
                return match Why::of(&db.read(&id).await?) {
                    Some(why) => Ok(Err(why)),
                    None => Err(e),
                };
            }
            Err(e) => return Err(e.after_sending(Why::HOLDING.grant_name())),
        };
        if let Some((epoch, fence)) = granted {
            let attempt = Attempt::start(db.clone(), id, epoch, fence, Why::HOLDING, sent);
            return Ok(Ok(attempt));
        }
        if let Some(why) = Why::of(&db.read(&id).await?) {
            return Ok(Err(why));
        }
        if Instant::now() >= until {
            break;
        }
    }
    Err(Error::Contended)
}
