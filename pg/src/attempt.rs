//! A granted attempt: its [`Lease`], the renewal loop that keeps the lease,
//! the fenced finish (in autocommit with in-doubt resolution, or inside the
//! caller's transaction), and the drop guard that finishes an abandoned
//! attempt with `Err`.

use crate::bounds::Limits;
use crate::bounds::millis;
use crate::db::{Db, Holding, Key, with_setting};
use crate::error::Error;
use crate::switches::Mutant;
use crate::trace::{call, on_lease, traced};
use async_tasks_recorder::spec::{Epoch, Fence, Outcome, Phase};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::Transaction;
use tokio_util::sync::CancellationToken;

/// What a fenced finish did.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Finish {
    /// The fence was current: the id is now `Success` or `Failed`.
    Applied,
    /// The fence was not current (the lease ran out and the id was expired
    /// or taken over), or this attempt was already finished: nothing
    /// changed. (An in-doubt finish is answered `Applied` when the row
    /// holds this attempt's fence in the state the finish would leave,
    /// whoever wrote it, the sweep included; `Stale` only when the row
    /// proves no send applied; [`Error::InDoubt`] otherwise.)
    Stale,
}

impl Finish {
    fn of(applied: bool) -> Finish {
        if applied {
            Finish::Applied
        } else {
            Finish::Stale
        }
    }
}

/// The token a task runs under: `(id, epoch, fence)`, and whether the
/// lease was lost. Clones share the lost flag.
pub struct Lease<K> {
    inner: Arc<LeaseInner<K>>,
}

impl<K> Clone for Lease<K> {
    fn clone(&self) -> Self {
        Lease {
            inner: self.inner.clone(),
        }
    }
}

impl<K: std::fmt::Debug> std::fmt::Debug for Lease<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.inner.id)
            .field("epoch", &self.inner.epoch)
            .field("fence", &self.inner.fence)
            .field("lost", &self.is_lost())
            .finish()
    }
}

struct LeaseInner<K> {
    id: K,
    epoch: Epoch,
    fence: Fence,
    /// What the attempt holds, for resolving its finish.
    holding: Holding,
    /// Cancelled when the lease is lost.
    lost: CancellationToken,
    /// Set by the first finish (or drop): later ones are `Stale`.
    settled: AtomicBool,
}

impl<K> Lease<K> {
    /// The task id.
    pub fn id(&self) -> &K {
        &self.inner.id
    }
    /// The revoke epoch the attempt runs in: `(id, epoch)` is an idempotency key.
    pub fn epoch(&self) -> Epoch {
        self.inner.epoch
    }
    /// The fencing token: greater than every token issued for this id
    /// before (the fence sequence is `CACHE 1`, which `install` checks).
    pub fn fence(&self) -> Fence {
        self.inner.fence
    }
    /// Whether a renewal was refused, or a whole lease period has passed
    /// since the send of the latest grant or renewal the database
    /// acknowledged (however long the renewal in flight hangs): the
    /// database lease may have lapsed, and the finish will likely be
    /// `Stale`.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.is_cancelled()
    }
    /// Resolves when the lease is lost.
    pub async fn lost(&self) {
        self.inner.lost.cancelled().await
    }

    /// What the attempt holds.
    pub(crate) fn holding(&self) -> Holding {
        self.inner.holding
    }
}

/// An accepted claim or revoke: its lease is renewed in the background
/// until it is finished or dropped. Dropping it unfinished finishes it with
/// `Err` in the background (if a runtime is running), so the id does not
/// wait for its lease to run out.
pub struct Attempt<K: Key> {
    db: Arc<Db>,
    lease: Lease<K>,
    holding: Holding,
    stop_renewal: CancellationToken,
}

impl<K: Key> Attempt<K> {
    /// The attempt a grant of `holding` returned, with its renewal loop
    /// started on the current runtime. `sent` is when the grant was sent:
    /// its lease can have started no earlier.
    pub(crate) fn start(
        db: Arc<Db>,
        id: K,
        epoch: Epoch,
        fence: Fence,
        holding: Holding,
        sent: Instant,
    ) -> Attempt<K> {
        let lease = Lease {
            inner: Arc::new(LeaseInner {
                id,
                epoch,
                fence,
                holding,
                lost: CancellationToken::new(),
                settled: AtomicBool::new(false),
            }),
        };
        // A grant answered a whole lease after its send may already have
        // lapsed: lost before the caller first looks, not once the renewal
        // task first runs.
        if Instant::now() >= sent + db.lease() {
            lease.inner.lost.cancel();
        }
        let stop = CancellationToken::new();
        tokio::spawn(renew_loop(db.clone(), lease.clone(), stop.clone(), sent));
        Attempt {
            db,
            lease,
            holding,
            stop_renewal: stop,
        }
    }

    /// The lease to hand to the task.
    pub fn lease(&self) -> &Lease<K> {
        &self.lease
    }

    /// Runs `body` in place with this attempt's lease, then finishes the
    /// attempt with its output's outcome: the tail that a launch and a
    /// revoke run in place share once their claim is granted.
    pub(crate) async fn run<F, Fut, R, E>(self, body: F) -> (Result<R, E>, Result<Finish, Error>)
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let output = body(self.lease.clone()).await;
        let finish = self.finish(Outcome::of(&output)).await;
        (output, finish)
    }

    /// Stops the renewal; `true` for the first caller only, who sends the
    /// finish.
    fn take(&self) -> bool {
        self.stop_renewal.cancel();
        !self.lease.inner.settled.swap(true, Ordering::AcqRel)
    }

    /// The fenced finish statement of this attempt, in `tx` if given.
    async fn send_finish(
        &self,
        outcome: Outcome,
        tx: Option<&Transaction<'_>>,
    ) -> Result<bool, Error> {
        let lease = &self.lease;
        (self.db)
            .finish(lease.id(), lease.fence(), self.holding, outcome, tx)
            .await
    }

    /// The fenced finish: `Applied` if this attempt's fence was still
    /// current, `Stale` if not.
    ///
    /// A send that leaves the finish in doubt (the connection broke, or
    /// the reply did not come within the bound) is resolved by re-reading
    /// the row on another connection: the finish is sent again only while
    /// the row still shows this attempt holding the id, and a resend that
    /// matches nothing is answered by the row too, since the earlier send
    /// may have applied late. At most five sends; what the row cannot
    /// settle is [`Error::InDoubt`], never a guess.
    ///
    /// The finish runs as a task of its own: a caller that drops this
    /// future does not cut it short, so the attempt is settled all the
    /// same.
    pub async fn finish(self, outcome: Outcome) -> Result<Finish, Error> {
        let span = call!(DEBUG, "finish", self.lease.id());
        on_lease(&span, &self.lease);
        traced(span, detached(self.finish_here(outcome))).await
    }

    /// [`finish`](Self::finish), run by the caller's own task.
    async fn finish_here(self, outcome: Outcome) -> Result<Finish, Error> {
        if !self.take() {
            return Ok(Finish::Stale);
        }
        finish_rounds(&self.db, &self.lease, outcome).await
    }

    /// The fenced finish inside the caller's transaction `tx`, so the
    /// task's own writes in `tx` commit with it. Commit `tx` only on
    /// `Applied`. On `Stale`, or on an error, `tx` is aborted before this
    /// returns: its writes cannot commit, and a `COMMIT` rolls them back
    /// (roll it back or drop it). An error is in doubt only if that abort
    /// could not be confirmed. The row stays locked by `tx` until it ends,
    /// so competing claims wait for the outcome (up to the lock bound).
    ///
    /// If `tx` rolls back after an `Applied` finish (or its `COMMIT`
    /// fails), the attempt is settled `Failed` (a revoke's, `Success`) in
    /// the background as soon as `tx` has ended, so the id can be launched
    /// again without waiting for its lease to run out.
    ///
    /// A `COMMIT` whose reply is lost leaves the success in doubt: read the
    /// row ([`PgRecorder::read`](crate::PgRecorder::read)). Its
    /// `success_fence` equal to this lease's fence proves the commit; the
    /// lease's epoch with another or no success fence proves it did not.
    ///
    /// A process that freezes before it ends `tx` (a stop signal, a long
    /// pause, a lost network) therefore blocks every claim of the id for as
    /// long as the server keeps its session. Give the connection of `tx`
    /// [`end_idle_transactions`] of about one lease: the server then ends
    /// the frozen session, the finish and the writes roll back together,
    /// and the id is taken over once its lease has run out.
    pub async fn finish_in(self, tx: &Transaction<'_>, outcome: Outcome) -> Result<Finish, Error> {
        let span = call!(DEBUG, "finish_in", self.lease.id());
        on_lease(&span, &self.lease);
        let finished = async {
            if !self.take() {
                return Ok(Finish::Stale);
            }
            let sent = self.send_finish(outcome, Some(tx)).await;
            if !matches!(sent, Ok(false)) {
                settle_after_rollback(self.db.clone(), self.lease.clone());
            }
            let aborted = match &sent {
                Ok(true) => return Ok(Finish::Applied),
                _ => abort(tx, self.db.limits()).await,
            };
            match (sent, aborted) {
                (Ok(_), Ok(())) => Ok(Finish::Stale),
                (Ok(_), Err(e)) => Err(e),
                (Err(e), Ok(())) => Err(e),
                (Err(e), Err(_)) => Err(e.after_sending(self.holding.finish_name())),
            }
        };
        traced(span, finished).await
    }
}

/// The rounds of an autocommit finish of `lease` (see [`Attempt::finish`]):
/// the caller's finish and the drop guard's alike.
async fn finish_rounds<K: Key>(
    db: &Db,
    lease: &Lease<K>,
    outcome: Outcome,
) -> Result<Finish, Error> {
    let write = lease.holding().finish_name();
    // The latest send that may have applied, and the latest error that
    // proves its send did not.
    let mut doubt: Option<Error> = None;
    let mut last: Option<Error> = None;
    for round in 0..5u32 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(20 << round)).await;
        }
        if doubt.is_some() {
            match resolve(db, lease, lease.holding(), outcome).await {
                Ok(Resolution::Finished(done)) => return Ok(done),
                Ok(Resolution::Unapplied) | Err(_) => {}
                Ok(Resolution::Unprovable) => return Err(in_doubt(write, doubt)),
            }
        }
        match db
            .finish(lease.id(), lease.fence(), lease.holding(), outcome, None)
            .await
        {
            Ok(true) => return Ok(Finish::Applied),
            Ok(false) if doubt.is_none() => return Ok(Finish::Stale),
            // A resend matched nothing: an earlier send may have
            // applied after all, so only the row can answer. (Once a
            // fence guard is false it never turns true again, so the
            // row cannot show this attempt holding the id any more.)
            Ok(false) if db.switches.mutant(Mutant::ResentFinishStale) => {
                return Ok(Finish::Stale);
            }
            Ok(false) => {
                return match resolve(db, lease, lease.holding(), outcome).await {
                    Ok(Resolution::Finished(done)) => Ok(done),
                    _ => Err(in_doubt(write, doubt)),
                };
            }
            Err(e) => match e.after_sending(write) {
                e if e.is_in_doubt() => doubt = Some(e),
                // The server refused it with an ERROR and nothing
                // earlier is in doubt: a definite answer. (A wait on
                // the row's lock past the bound is tried again: the
                // lock's holder may let go, and an answer now would
                // leave the id held until its lease runs out.)
                e if e.rolled_back() && doubt.is_none() && !e.waited_past_the_lock_bound() => {
                    return Err(e);
                }
                // Never sent (no connection), or refused while an
                // earlier send is in doubt: another round.
                e => last = Some(e),
            },
        }
    }
    // The rounds are spent: one last read may still prove what a send in
    // doubt did.
    if doubt.is_some()
        && let Ok(Resolution::Finished(done)) = resolve(db, lease, lease.holding(), outcome).await
    {
        return Ok(done);
    }
    Err(match doubt {
        Some(doubt) => doubt,
        None => last.unwrap_or_else(|| in_doubt(write, None)),
    })
}

/// An [`Error::InDoubt`] of `write`, cut short by `cause` if known.
fn in_doubt(write: &'static str, cause: Option<Error>) -> Error {
    match cause {
        Some(e) if e.is_in_doubt() => e,
        cause => Error::InDoubt {
            write,
            cause: cause.map(Box::new),
        },
    }
}

/// After a finish inside a caller's transaction that may commit, settles
/// the attempt if that transaction rolls back instead: every pause, read
/// the row; while it still shows this attempt holding the id, try to
/// settle it with a statement that skips a locked row, so it never waits
/// on the open transaction and never overrides it (a row no transaction
/// holds any more, still held by this fence, is one whose finish rolled
/// back). Stops once the row shows anything else, or after one lease:
/// the lease has run out by then, and the sweep settles the row.
fn settle_after_rollback<K: Key>(db: Arc<Db>, lease: Lease<K>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let period = db.lease();
        let pause = (period / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let until = Instant::now() + period;
        while Instant::now() < until {
            tokio::time::sleep(pause).await;
            let Ok(now) = db.read(lease.id()).await else {
                continue;
            };
            let held =
                now.fence == lease.fence() && matches!(now.phase, Phase::Working | Phase::Revoking);
            if !held || matches!(db.abandon(lease.id(), lease.fence()).await, Ok(true)) {
                return;
            }
        }
    });
}
/// Runs `call` as a task of its own and waits for it: a caller that drops
/// this future does not cut `call` short (a claim or a finish in flight is
/// seen through). A panic in `call` continues in the caller; a runtime
/// shut down under it is [`Error::NoRuntime`].
pub(crate) async fn detached<T: Send + 'static>(
    call: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    match tokio::spawn(call).await {
        Ok(answer) => answer,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(Error::NoRuntime),
    }
}

/// Aborts the caller's transaction after a stale or failed finish, so
/// that a caller who commits anyway commits nothing: the raised error puts
/// `tx` in the failed state, where the server answers `COMMIT` with a
/// rollback. A transaction the server already failed answers `25P02`,
/// which proves the same. Waits for the answer up to the reply bound.
async fn abort(tx: &Transaction<'_>, limits: &Limits) -> Result<(), Error> {
    const RAISE: &str = "DO $$ BEGIN RAISE EXCEPTION USING
        MESSAGE = 'the fenced finish did not apply: this transaction cannot commit',
        ERRCODE = 'P0001'; END $$";
    let raised = limits
        .reply_within(async { Ok(tx.batch_execute(RAISE).await) })
        .await?
        .map_err(Error::from);
    match raised {
        // The answers that prove the transaction aborted.
        Err(Error::Db(e))
            if e.as_db_error()
                .is_some_and(|db| matches!(db.code().code(), "P0001" | "25P02")) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
        Ok(()) => Err(Error::Schema(
            "the statement that aborts a stale finish's transaction did not raise".into(),
        )),
    }
}

impl<K: Key> Drop for Attempt<K> {
    fn drop(&mut self) {
        if !self.take() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (db, lease) = (self.db.clone(), self.lease.clone());
        runtime.spawn(async move {
            let _ = finish_rounds(&db, &lease, Outcome::Err).await;
        });
    }
}

/// What the row proves of a finish whose send is in doubt.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Resolution {
    /// The row proves what the finish did.
    Finished(Finish),
    /// The row still shows this attempt holding the id: the finish has not
    /// applied, and may be sent again.
    Unapplied,
    /// The row can no longer tell: the id moved to a later epoch.
    Unprovable,
}

impl Resolution {
    /// What the row proved of a finish of `holding`: its answer, `None` if
    /// the row still shows the attempt holding the id (the finish has not
    /// applied), [`Error::InDoubt`] if the row can no longer tell.
    pub(crate) fn proved(self, holding: Holding) -> Result<Option<Finish>, Error> {
        match self {
            Resolution::Finished(done) => Ok(Some(done)),
            Resolution::Unapplied => Ok(None),
            Resolution::Unprovable => Err(in_doubt(holding.finish_name(), None)),
        }
    }
}

/// Resolves a finish whose send is in doubt by reading the row with the
/// finisher's fence (see [`Attempt::finish`]). Identity is proved by the
/// fence the row keeps, never inferred from the row having moved on: a
/// success keeps its finisher's fence in `success_fence`, a revoke end
/// keeps its fence on the `NotFound` row it leaves. An `Applied` answer
/// waits for the confirming write ([`Db::confirm`]): what a promotion
/// could lose is never acknowledged.
pub(crate) async fn resolve<K: Key>(
    db: &Db,
    lease: &Lease<K>,
    holding: Holding,
    outcome: Outcome,
) -> Result<Resolution, Error> {
    let now = db.read(lease.id()).await?;
    let mine = lease.fence();
    let applied = match (holding, outcome) {
        (Holding::Work, _) if now.fence == mine && now.phase == Phase::Working => {
            return Ok(Resolution::Unapplied);
        }
        (Holding::Revoke, _) if now.fence == mine && now.phase == Phase::Revoking => {
            return Ok(Resolution::Unapplied);
        }
        (Holding::Work, Outcome::Ok) => {
            if now.success_fence == Some(mine) {
                true
            } else if now.epoch == lease.epoch() {
                false
            } else if db.switches.mutant(Mutant::ResolvedByEpoch) {
                true
            } else {
                return Ok(Resolution::Unprovable);
            }
        }
        // An `Err` end leaves the fence it carried in its ending state; a
        // row that has moved on since (to a later grant) no longer tells
        // whether it was this end, the sweep, or nothing: in doubt.
        (Holding::Work, Outcome::Err) => {
            if now.fence == mine && now.phase == Phase::Failed {
                true
            } else {
                return Ok(Resolution::Unprovable);
            }
        }
        // An ended epoch proves which revoke ended it only while its row is
        // still the `NotFound` that end left: a revoke end keeps the row's
        // fence, and one end per epoch applies. Later grants overwrite the
        // fence, and then the row proves nothing: in doubt.
        (Holding::Revoke, Outcome::Ok) => {
            if now.epoch == lease.epoch() {
                false
            } else if now.epoch == lease.epoch() + 1 && now.phase == Phase::NotFound {
                now.fence == mine
            } else {
                return Ok(Resolution::Unprovable);
            }
        }
        (Holding::Revoke, Outcome::Err) => {
            if now.fence == mine && now.phase == Phase::Success {
                true
            } else {
                return Ok(Resolution::Unprovable);
            }
        }
    };
    // The row read may be a commit whose synchronous wait was cancelled:
    // visible here, but not yet on the standby a promotion would make the
    // truth. A write of the resolver's own, once committed, proves it is.
    if applied {
        db.confirm(lease.id()).await?;
    }
    Ok(Resolution::Finished(Finish::of(applied)))
}

/// Renews `lease` every third of the lease period until `stop`, and marks
/// it lost when a renewal is refused, or once a whole lease period has
/// passed since the send of the latest grant or renewal the database
/// acknowledged: by then the database lease can have lapsed, whatever the
/// renewal in flight is doing (stuck behind a row lock, or on a connection
/// that neither answers nor resets). The clock starts at the send, never
/// at the reply, since the database set the lease somewhere in between.
async fn renew_loop<K: Key>(db: Arc<Db>, lease: Lease<K>, stop: CancellationToken, sent: Instant) {
    let period = db.lease();
    let lost = &lease.inner.lost;
    let mut acknowledged = match db.switches.mutant(Mutant::LeaseClockFromReply) {
        true => Instant::now(),
        false => sent,
    };
    loop {
        let lapse = acknowledged + period;
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(lapse), if !lost.is_cancelled() => {
                lost.cancel();
                continue;
            }
            _ = tokio::time::sleep(period / 3) => {}
        }
        if !db.switches.renewing() {
            continue;
        }
        let sent = Instant::now();
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(lapse), if !lost.is_cancelled() => lost.cancel(),
            renewed = db.renew(lease.id(), lease.fence()) => match renewed {
                Ok(true) if db.switches.mutant(Mutant::LeaseClockFromReply) => {
                    acknowledged = Instant::now();
                }
                Ok(true) => acknowledged = sent,
                Ok(false) => {
                    lost.cancel();
                    return;
                }
                Err(_) => {}
            }
        }
    }
}

/// Makes the server end a session of `config` that stays idle inside a
/// transaction for `after` (PostgreSQL's
/// `idle_in_transaction_session_timeout`), keeping the options already set.
/// `after` is rounded up to 1 ms, since 0 would turn the timeout off, and
/// capped at the setting's largest value. See [`Attempt::finish_in`].
pub fn end_idle_transactions(
    config: &mut tokio_postgres::Config,
    after: Duration,
) -> &mut tokio_postgres::Config {
    with_setting(
        config,
        &format!("-c idle_in_transaction_session_timeout={}", millis(after)),
    )
}
