//! The async shell: the public [`AsyncTasksRecorder`], spawning, and the
//! drop guard that settles every accepted launch or revoke exactly once.
//!
//! # No wedged ids
//! An accepted launch or revoke creates a [`Settle`] guard that owns the id's
//! `Working` (or `Revoking`) phase. The guard's `Drop` applies the finishing
//! operation, so the phase is left however the future ends: by returning,
//! by panicking (unwinding drops the guard), by being dropped by a cancelled
//! caller, or by being dropped when the runtime shuts down. A future that
//! did not return counts as `Err` (proofs/P6-no-wedged-id.md). A
//! refused launch or revoke creates no guard and, by the spec, changes nothing.
//! The guard catches panics of foreign code on its way (the key's `Hash`, a
//! waiter's waker), so it neither skips the finish nor aborts the process
//! when the task is already panicking.

use crate::page::{Page, PagedListing};
use crate::signal::Signal;
use crate::spec::{Op, Outcome, Response, RevokeRefusal, TaskState};
use crate::sync::{Arc, DefaultHashBuilder};
use crate::table::{Table, WaitOn};
use std::borrow::Borrow;
use std::collections::{BTreeSet, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// Records the state of keyed async tasks.
///
/// Clones share one record. See the crate documentation for the semantics.
///
/// # Panics in foreign code
/// - **Keys.** As with [`std::collections::HashMap`], `Hash` and `Eq` of `K`,
///   the hasher `S`, and `K`'s `Drop` must not panic; the map underneath
///   (`scc`) makes the same demand for its own consistency. Outside that
///   contract the recorder stays memory-safe and never aborts the process
///   from its drop guard, and it tolerates a passing panic: if hashing or
///   comparing the key panics when an attempt finishes, the finish is
///   retried (three attempts in all), so the id still leaves `Working`, and
///   then the panic continues (see below). A key whose `Hash` or `Eq` panics
///   on every attempt leaves its id `Working`. A panic in `K::clone` reaches
///   the caller of the operation that cloned and changes nothing.
/// - **Wakers.** A waiter's waker that panics when the finish wakes it
///   cannot keep the other waiters asleep: every waker is woken, each under
///   `catch_unwind`.
/// - **Where the panic goes.** Once the id's new state is recorded and every
///   waiter woken, the first such panic continues in the code that finished
///   the attempt: the spawned task of [`launch`](Self::launch) (tokio catches
///   it), or the caller of [`launch_block`](Self::launch_block) or
///   [`revoke_task_block`](Self::revoke_task_block). If that thread is already
///   unwinding (the task itself panicked), the panic hook has reported the
///   second panic and the task's own panic continues alone: raising another
///   panic there would abort the process.
pub struct AsyncTasksRecorder<K, S: BuildHasher = DefaultHashBuilder> {
    table: Arc<Table<K, S>>,
}

/// Why [`AsyncTasksRecorder::revoke_task_block`] did not revoke.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum RevokeFailReason<Fut, E> {
    /// The id is not `Success`; the revoke future is given back unrun.
    NotSuccess(Fut),
    /// Another revoke of the id is running; the revoke future is given back unrun.
    Revoking(Fut),
    /// The revoke future returned this error; the id stays `Success`.
    RevokeTaskError(E),
}

/// How many ids are in each state, counted in one pass.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, Hash)]
pub struct StateCounts {
    /// Ids whose task is running.
    pub working: usize,
    /// Ids that succeeded in their current epoch (revoking ones included).
    pub success: usize,
    /// Ids whose last attempt failed.
    pub failed: usize,
}

impl StateCounts {
    /// The count for `state`; `NotFound` ids are not recorded, so 0.
    pub fn get(&self, state: TaskState) -> usize {
        match state {
            TaskState::Working => self.working,
            TaskState::Success => self.success,
            TaskState::Failed => self.failed,
            TaskState::NotFound => 0,
        }
    }
}

impl<K> AsyncTasksRecorder<K, DefaultHashBuilder>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    /// An empty recorder.
    pub fn new() -> Self {
        Self::with_capacity_and_hasher(0, DefaultHashBuilder::default())
    }
}

impl<K> Default for AsyncTasksRecorder<K, DefaultHashBuilder>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, S: BuildHasher> Clone for AsyncTasksRecorder<K, S> {
    /// Another handle on the same record.
    fn clone(&self) -> Self {
        AsyncTasksRecorder {
            table: self.table.clone(),
        }
    }
}

impl<K, S> std::fmt::Debug for AsyncTasksRecorder<K, S>
where
    K: Eq + Hash + std::fmt::Debug,
    S: BuildHasher,
{
    /// Every recorded id with its state, walked like a listing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncTasksRecorder")
            .field("tasks", &*self.table)
            .finish()
    }
}

impl<K, S> AsyncTasksRecorder<K, S>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// An empty recorder with room for `capacity` ids, hashing with `hasher`.
    pub fn with_capacity_and_hasher(capacity: usize, hasher: S) -> Self {
        AsyncTasksRecorder {
            table: Arc::new(Table::with_capacity_and_hasher(capacity, hasher)),
        }
    }

    /// Starts `task` under `task_id` on the current tokio runtime.
    ///
    /// - `Ok(())`: the id was `NotFound` or `Failed` and is now `Working`;
    ///   every later query reads `Working` or a later state. The task's
    ///   output decides `Success` or `Failed`; a panic, or the runtime
    ///   dropping the task at shutdown, makes it `Failed`.
    /// - `Err((Working, task))` or `Err((Success, task))`: refused, nothing
    ///   changed, the future is given back unrun.
    /// - Called outside a tokio runtime, nothing can run the task: it is
    ///   refused with the id's current state (`NotFound` or `Failed`, or the
    ///   refusing state) and nothing changes.
    pub async fn launch<Fut, R, E>(&self, task_id: K, task: Fut) -> Result<(), (TaskState, Fut)>
    where
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err((self.query_task_state_sync(&task_id), task));
        };
        if let Err(state) = self.begin(task_id.clone()) {
            return Err((state, task));
        }
        let attempt = Settle::new(self.table.clone(), task_id, Op::Finish);
        runtime.spawn(async move {
            let output = task.await;
            attempt.settle(Outcome::of(&output));
        });
        Ok(())
    }

    /// Runs `task` under `task_id` in place and returns its output.
    ///
    /// Accepts and refuses exactly as [`launch`](Self::launch) does. If the
    /// caller drops this future before the task ends, the id becomes
    /// `Failed`. If the task panics, the id becomes `Failed` and the panic
    /// continues into the caller.
    ///
    /// If a waiter's waker panics when the finish wakes it (or the key's
    /// `Hash` panics once there), the id is still recorded with the task's
    /// outcome and every waiter woken; then that panic continues into the
    /// caller in place of the output, which is dropped. The recorded state
    /// (`Success` or `Failed`) still tells the outcome (see "Panics in
    /// foreign code" on [`AsyncTasksRecorder`]).
    pub async fn launch_block<Fut, R, E>(
        &self,
        task_id: K,
        task: Fut,
    ) -> Result<Result<R, E>, (TaskState, Fut)>
    where
        Fut: Future<Output = Result<R, E>>,
    {
        if let Err(state) = self.begin(task_id.clone()) {
            return Err((state, task));
        }
        let attempt = Settle::new(&*self.table, task_id, Op::Finish);
        let output = task.await;
        attempt.settle(Outcome::of(&output));
        Ok(output)
    }

    /// The id's state: linearizable, a single read of its entry.
    pub async fn query_task_state<Q>(&self, task_id: &Q) -> TaskState
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.query_task_state_sync(task_id)
    }

    /// [`query_task_state`](Self::query_task_state) without `async`: the
    /// read never waits for a task.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "trace", name = "query", skip_all, ret)
    )]
    pub fn query_task_state_sync<Q>(&self, task_id: &Q) -> TaskState
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.table.phase(task_id).state()
    }

    /// The 2.x quick query: `Success` or `Failed` as recorded, `Working`
    /// otherwise, including for ids never launched.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "trace", name = "query_quick", skip_all, ret)
    )]
    pub async fn query_task_state_quick<Q>(&self, task_id: &Q) -> TaskState
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.table.phase(task_id).quick_state()
    }

    /// Runs `revoke` to undo the success of `task_id`; exclusive, and at
    /// most once per epoch (proofs/P9-revoke-exclusive.md).
    ///
    /// Only a `Success` id with no revoke running is revoked. While `revoke`
    /// runs, the id reads `Success` and launches are refused with `Success`.
    /// - `Ok(r)`: `revoke` returned `Ok(r)`; the id is `NotFound`, a new
    ///   epoch in which it may succeed once more.
    /// - `Err(RevokeTaskError(e))`: `revoke` returned `Err(e)`; the id stays
    ///   `Success` and may be revoked again. So does a `revoke` that panics
    ///   (the panic continues into the caller) or whose caller drops it.
    /// - `Err(NotSuccess(revoke))`, `Err(Revoking(revoke))`: refused,
    ///   nothing changed.
    pub async fn revoke_task_block<Fut, R, E>(
        &self,
        task_id: K,
        revoke: Fut,
    ) -> Result<R, RevokeFailReason<Fut, E>>
    where
        Fut: Future<Output = Result<R, E>>,
    {
        match self.table.apply(task_id.clone(), Op::BeginRevoke) {
            Response::Accepted => {}
            Response::RevokeRefused(RevokeRefusal::Revoking) => {
                return Err(RevokeFailReason::Revoking(revoke));
            }
            // The spec answers `BeginRevoke` with nothing else
            // (spec test `begin_revoke_is_accepted_or_refused`).
            _ => return Err(RevokeFailReason::NotSuccess(revoke)),
        }
        let revoking = Settle::new(&*self.table, task_id, Op::FinishRevoke);
        let output = revoke.await;
        revoking.settle(Outcome::of(&output));
        output.map_err(RevokeFailReason::RevokeTaskError)
    }

    /// Resolves once the id is not `Working`, with its state then.
    ///
    /// Returns at once for an id that is not `Working`. Sleeps on the id's
    /// one-shot signal otherwise; no polling, no lost wake-up
    /// (proofs/P7-wait-no-lost-wakeup.md). If the id is launched
    /// again before this waiter runs, it waits for that attempt too.
    ///
    /// Dropping the future (a `timeout` or `select!` around it) removes its
    /// waker from the id's signal: the memory held is bounded by the waits
    /// pending now, however many were cancelled.
    ///
    /// A task must not wait on its own id: its id stays `Working` until the
    /// task ends, so the wait never resolves and the task never ends (a
    /// `launch_block` that does so never returns). Nothing detects this.
    /// Cancelling the task ends the id `Failed`: dropping the `launch_block`
    /// future, or, for a spawned task, shutting its runtime down.
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "trace", name = "wait", skip_all, ret)
    )]
    pub async fn wait<Q>(&self, task_id: &Q) -> TaskState
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        loop {
            match self.table.wait_on(task_id) {
                WaitOn::Done(state) => return state,
                WaitOn::Signal(signal) => Signal::fired(signal).await,
            }
        }
    }

    /// The ids now in `state` (empty for `NotFound`), each once.
    ///
    /// Weakly consistent (proofs/P8-listing-weakly-consistent.md): every id
    /// listed was in `state` at some moment during the call, and every id
    /// that stayed in `state` throughout the call is listed. `Failed` ids are
    /// kept in an index of their own, so listing them costs time in
    /// proportion to the failed ids alone. Listing `Working` or `Success`
    /// walks the whole table, a few nanoseconds per recorded id, and blocks
    /// its thread; for tables of 10^7 ids, call it from `spawn_blocking`.
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "trace", name = "list", skip_all, fields(state = ?state)))]
    pub fn list_tasks(&self, state: TaskState) -> Vec<K> {
        let mut ids = Vec::new();
        self.table.for_each_in(state, |id| ids.push(id.clone()));
        // scc may visit an entry twice when another thread resizes the map
        // during the walk, so repeats are dropped: one hash per id, into a
        // set sized once, rather than two hashes and a growing set of owned
        // ids, which dominated the walk of the failed-id index.
        let mut seen = HashSet::with_capacity(ids.len());
        let first: Vec<bool> = ids.iter().map(|id| seen.insert(id)).collect();
        drop(seen);
        let mut first = first.into_iter();
        ids.retain(|_| first.next().unwrap_or(false));
        ids
    }

    /// How many ids are in `state`: one walk, as weakly consistent as
    /// [`list_tasks`](Self::list_tasks), and as cheap: `Failed` walks only
    /// the failed ids. An id may be counted twice if another thread resizes
    /// the walked map during the walk; at quiescence the count is exact.
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "trace", name = "count", skip_all, fields(state = ?state), ret))]
    pub fn count_tasks(&self, state: TaskState) -> usize {
        self.table.count(state)
    }

    /// The count of every state in one walk, with the caveat of
    /// [`count_tasks`](Self::count_tasks).
    #[cfg_attr(
        feature = "tracing",
        tracing::instrument(level = "trace", name = "counts", skip_all, ret)
    )]
    pub fn state_counts(&self) -> StateCounts {
        let [working, success, failed] = self.table.counts();
        StateCounts {
            working,
            success,
            failed,
        }
    }

    /// Number of recorded ids (those not `NotFound`).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no id is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The launch transition: `Ok` when this caller now owns `Working`. Only
    /// an owner runs its task, which is why an id succeeds at most once per
    /// epoch (proofs/P1-at-most-one-success.md) and reads as launched from
    /// here on (proofs/P4-read-your-launch.md).
    #[inline]
    fn begin(&self, task_id: K) -> Result<(), TaskState> {
        match self.table.apply(task_id, Op::Launch) {
            Response::LaunchRefused(state) => Err(state),
            // The spec answers `Launch` with nothing else
            // (spec test `launch_is_accepted_or_refused`).
            _ => Ok(()),
        }
    }
}

/// How many times a drop guard tries its finishing section when the key's
/// `Hash` or `Eq` (or the hasher) panics in it. A panicking section writes
/// nothing (`table.rs:Table::step_slot`), so a retry is safe; the bound keeps
/// a key that always panics from looping forever in a destructor.
const SETTLE_ATTEMPTS: usize = 3;

impl<K, S> AsyncTasksRecorder<K, S>
where
    K: Eq + Hash + Ord + Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    /// One page of the ids in `state`: up to `limit` of them (0 is taken
    /// as 1) in ascending order, each greater than `after` if given. Pass
    /// the page's [`next`](Page::next) as the next `after`; a walk returns
    /// every id that stays in `state` throughout exactly once (see
    /// [`PagedListing`]).
    ///
    /// Each page is one walk, as weakly consistent as
    /// [`list_tasks`](Self::list_tasks) and over the same ids (the failed-id
    /// index for `Failed`, the table otherwise), keeping only the `limit`
    /// smallest ids after `after`: its memory is the page's, whatever the
    /// number of ids in `state`.
    pub fn list_page(&self, state: TaskState, after: Option<&K>, limit: usize) -> Page<K> {
        let limit = limit.max(1);
        let mut smallest = BTreeSet::new();
        self.table.for_each_in(state, |id| {
            if after.is_some_and(|after| id <= after) {
                return;
            }
            // A full page takes only an id below its largest; a visit
            // repeated by a concurrent resize is kept once.
            let full = smallest.len() >= limit;
            if full && smallest.last().is_some_and(|last| id >= last) {
                return;
            }
            if smallest.insert(id.clone()) && smallest.len() > limit {
                smallest.pop_last();
            }
        });
        Page::of(smallest.into_iter().collect(), limit)
    }
}

/// The in-memory recorder's pages and counts: its own
/// [`list_page`](AsyncTasksRecorder::list_page) and
/// [`count_tasks`](AsyncTasksRecorder::count_tasks), never an error.
impl<K, S> PagedListing<K> for AsyncTasksRecorder<K, S>
where
    K: Eq + Hash + Ord + Clone + Send + Sync + 'static,
    S: BuildHasher + Send + Sync + 'static,
{
    type Error = Infallible;

    fn list_page(
        &self,
        state: TaskState,
        after: Option<&K>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<K>, Infallible>> + Send {
        std::future::ready(Ok(AsyncTasksRecorder::list_page(self, state, after, limit)))
    }

    fn count(&self, state: TaskState) -> impl Future<Output = Result<u64, Infallible>> + Send {
        std::future::ready(Ok(self.count_tasks(state) as u64))
    }
}

/// What a [`Settle`] guard applies its finishing operation to: the table,
/// or a test's protocol built on the same shim, which thus settles through
/// this very guard.
#[doc(hidden)]
pub trait Finishes<K> {
    /// Applies `op`, a `Finish` or `FinishRevoke`, to `task_id`; returns the
    /// signal of the waiters to wake, which the guard fires.
    fn finish(&self, task_id: &K, op: Op) -> Option<Arc<Signal>>;
}

impl<K, S> Finishes<K> for Table<K, S>
where
    K: Eq + Hash + Clone,
    S: BuildHasher,
{
    #[inline]
    fn finish(&self, task_id: &K, op: Op) -> Option<Arc<Signal>> {
        Table::finish(self, task_id, op)
    }
}

/// Owns an accepted launch's `Working` phase or an accepted revoke's
/// `Revoking` phase, and settles it exactly once: with the future's outcome
/// through [`settle`](Settle::settle), or as `Err` when dropped unsettled.
#[doc(hidden)]
pub struct Settle<K, T>
where
    T: Deref<Target: Finishes<K>>,
{
    table: T,
    task_id: K,
    finish: fn(Outcome) -> Op,
    outcome: Outcome,
}

impl<K, T> Settle<K, T>
where
    T: Deref<Target: Finishes<K>>,
{
    /// Takes ownership of the phase an accepted `task_id` entered; `finish`
    /// builds the operation that ends it.
    #[inline]
    pub fn new(table: T, task_id: K, finish: fn(Outcome) -> Op) -> Self {
        Settle {
            table,
            task_id,
            finish,
            outcome: Outcome::Err,
        }
    }

    /// Settles with `outcome` (the drop does the work).
    #[inline]
    pub fn settle(mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl<K, T> Drop for Settle<K, T>
where
    T: Deref<Target: Finishes<K>>,
{
    /// Applies the finishing operation and wakes the id's waiters, and
    /// never unwinds before both are done: foreign code that panics on the
    /// way (the key's `Hash` or `Eq`, the hasher, a waiter's waker) is caught.
    /// A panicking section is retried, up to [`SETTLE_ATTEMPTS`]; every waker
    /// is woken. Then the first panic continues, unless this thread is
    /// already unwinding (the task panicked): raising a second panic there
    /// would abort the process, so the task's own panic continues alone.
    #[inline]
    fn drop(&mut self) {
        let op = (self.finish)(self.outcome);
        let mut first_panic = None;
        for _ in 0..SETTLE_ATTEMPTS {
            match catch_unwind(AssertUnwindSafe(|| self.table.finish(&self.task_id, op))) {
                Ok(waiters) => {
                    if let Some(Err(panic)) = waiters.map(|signal| signal.fire()) {
                        first_panic.get_or_insert(panic);
                    }
                    break;
                }
                Err(panic) => {
                    first_panic.get_or_insert(panic);
                }
            }
        }
        if let Some(panic) = first_panic {
            if !std::thread::panicking() {
                resume_unwind(panic);
            }
        }
    }
}
