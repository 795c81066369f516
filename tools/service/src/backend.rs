//! What the routes ask of a recorder, whichever holds the truth: the
//! in-memory one (`memory`) or PostgreSQL (`postgres`). The answers are the
//! service's own types, so the routes, the page and the metrics are written
//! once for both.

use async_tasks_recorder::TaskState;
use std::future::Future;
use std::time::Duration;

/// What a client sees of one payment.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Payment {
    /// The payment's id, as the client named it.
    pub id: String,
    /// Its state now (a payment being revoked still reads `Success`).
    pub state: TaskState,
    /// Completed revokes of the id: `(id, epoch)` names one payment.
    pub epoch: u64,
    /// The fence of the latest attempt, once there was one.
    pub fence: Option<u64>,
}

/// What a start (`PUT`) did.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Started {
    /// A new attempt runs: the id is `Working` under this epoch and fence.
    Started(Payment),
    /// An attempt is already running.
    Refused(Payment),
    /// The id is already paid in its epoch.
    Paid(Payment),
}

/// What a revoke (`DELETE`) did.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Revoked {
    /// The payment was refunded: the id is `NotFound` in the next epoch.
    Revoked(Payment),
    /// The id is not paid, or another revoke of it is running.
    Refused(Payment),
}

/// Ids per state, the page's and the metrics' headline.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Counts {
    /// Ids whose attempt runs.
    pub working: u64,
    /// Paid ids.
    pub success: u64,
    /// Ids whose last attempt failed.
    pub failed: u64,
}

impl Counts {
    /// The count of `state` (0 for `NotFound`, which is not recorded).
    pub fn get(&self, state: TaskState) -> u64 {
        match state {
            TaskState::Working => self.working,
            TaskState::Success => self.success,
            TaskState::Failed => self.failed,
            TaskState::NotFound => 0,
        }
    }
}

/// One page of a listing: ids in order, and the cursor of the next page
/// (the recorders' own pages).
pub type Page = async_tasks_recorder::Page<String>;

/// A recorder that could not answer (the database is unreachable, say).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct BackendError {
    /// What went wrong, for the client and the log.
    pub message: String,
    /// Whether a write was sent and may have applied.
    pub in_doubt: bool,
}

impl From<async_tasks_recorder_pg::Error> for BackendError {
    fn from(e: async_tasks_recorder_pg::Error) -> Self {
        BackendError {
            in_doubt: e.is_in_doubt(),
            message: e.to_string(),
        }
    }
}

/// The simulated payment: how long it takes and how often it fails.
#[derive(Clone, Copy, Debug)]
pub struct Work {
    /// How long an attempt runs before it pays.
    pub delay: Duration,
    /// The share of attempts that fail, in `[0, 1]`.
    pub fail_rate: f64,
}

impl Work {
    /// Whether this attempt fails.
    pub fn fails(&self) -> bool {
        self.fail_rate > 0.0 && fastrand::f64() < self.fail_rate
    }
}

/// The recorder behind the routes. Every call answers, or says why not;
/// none of them waits longer than its recorder's own bounds.
pub trait Backend: Send + Sync + 'static {
    /// `memory` or `postgres`, for the page and the metrics.
    fn name(&self) -> &'static str;

    /// Starts paying `id` in the background, unless an attempt runs or the
    /// id is paid.
    fn start(&self, id: String) -> impl Future<Output = Result<Started, BackendError>> + Send;

    /// The payment `id` now.
    fn read(&self, id: &str) -> impl Future<Output = Result<Payment, BackendError>> + Send;

    /// Resolves once `id` is not `Working`, with its state then.
    fn wait(&self, id: &str) -> impl Future<Output = Result<TaskState, BackendError>> + Send;

    /// Refunds a paid `id`: a compensating ledger row, and a new epoch.
    fn revoke(&self, id: String) -> impl Future<Output = Result<Revoked, BackendError>> + Send;

    /// Ids per state.
    fn counts(&self) -> impl Future<Output = Result<Counts, BackendError>> + Send;

    /// The ids in `state` after `after` (from the first if empty), at most
    /// `limit` of them, in order: one keyset page of the recorder's own.
    fn list_page(
        &self,
        state: TaskState,
        after: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Page, BackendError>> + Send;
}
