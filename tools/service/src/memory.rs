//! The in-memory backend: one process's [`AsyncTasksRecorder`], with the
//! ledger in memory too. The recorder keeps no epochs or fences, so this
//! backend counts them beside it: an epoch per id (bumped by the refund,
//! while the id still reads `Success` and refuses launches, so no launch
//! can read a stale one), and one fence counter for the process.

use crate::backend::{Backend, BackendError, Counts, Page, Payment, Revoked, Started, Work};
use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, TaskState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One side effect: a payment or its refund.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Entry {
    /// The payment of `(id, epoch)`.
    Pay,
    /// The refund that ended `(id, epoch)`.
    Refund,
}

/// A ledger row.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct LedgerRow {
    /// The payment's id.
    pub id: String,
    /// The epoch it was paid (or refunded) in.
    pub epoch: u64,
    /// The fence of the attempt that wrote it.
    pub fence: u64,
    /// Payment or refund.
    pub entry: Entry,
}

/// An id's epoch and the fence of its latest attempt.
#[derive(Clone, Copy, Debug, Default)]
struct Marks {
    epoch: u64,
    fence: u64,
}

/// What the background attempts share with the backend.
#[derive(Default)]
struct Books {
    marks: Mutex<HashMap<String, Marks>>,
    ledger: Mutex<Vec<LedgerRow>>,
    fences: AtomicU64,
}

impl Books {
    fn next_fence(&self) -> u64 {
        self.fences.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn marks(&self, id: &str) -> Marks {
        lock(&self.marks).get(id).copied().unwrap_or_default()
    }
}

/// A poisoned lock holds plain data still worth reading.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The in-memory backend.
pub struct Memory {
    recorder: AsyncTasksRecorder<String>,
    books: Arc<Books>,
    work: Work,
}

impl Memory {
    /// An empty recorder and ledger whose attempts do `work`.
    pub fn new(work: Work) -> Memory {
        Memory {
            recorder: AsyncTasksRecorder::new(),
            books: Arc::default(),
            work,
        }
    }

    /// Every ledger row so far, in the order written.
    pub fn ledger(&self) -> Vec<LedgerRow> {
        lock(&self.books.ledger).clone()
    }

    fn payment(&self, id: &str, state: TaskState) -> Payment {
        let marks = self.books.marks(id);
        Payment {
            id: id.to_string(),
            state,
            epoch: marks.epoch,
            fence: (marks.fence > 0).then_some(marks.fence),
        }
    }
}

impl Backend for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn start(&self, id: String) -> Result<Started, BackendError> {
        let fence = self.books.next_fence();
        let (books, work, paid) = (self.books.clone(), self.work, id.clone());
        // The ledger row is pushed in the same poll as the `Ok` that the
        // recorder's finish records: nothing can come between them.
        let attempt = async move {
            tokio::time::sleep(work.delay).await;
            if work.fails() {
                return Err(());
            }
            let epoch = books.marks(&paid).epoch;
            lock(&books.ledger).push(LedgerRow {
                id: paid,
                epoch,
                fence,
                entry: Entry::Pay,
            });
            Ok(())
        };
        match self.recorder.launch(id.clone(), attempt).await {
            Ok(()) => {
                let mut marks = lock(&self.books.marks);
                let marks = marks.entry(id.clone()).or_default();
                marks.fence = marks.fence.max(fence);
                let epoch = marks.epoch;
                Ok(Started::Started(Payment {
                    id,
                    state: TaskState::Working,
                    epoch,
                    fence: Some(fence),
                }))
            }
            Err((TaskState::Success, _)) => {
                Ok(Started::Paid(self.payment(&id, TaskState::Success)))
            }
            Err((state, _)) => Ok(Started::Refused(self.payment(&id, state))),
        }
    }

    async fn read(&self, id: &str) -> Result<Payment, BackendError> {
        let state = self.recorder.query_task_state(id).await;
        Ok(self.payment(id, state))
    }

    async fn wait(&self, id: &str) -> Result<TaskState, BackendError> {
        Ok(self.recorder.wait(id).await)
    }

    async fn revoke(&self, id: String) -> Result<Revoked, BackendError> {
        let fence = self.books.next_fence();
        let books = self.books.clone();
        let refunded = id.clone();
        // Runs while the id reads `Success` and refuses launches, so the
        // epoch moves on before any launch of the next epoch can read it.
        let refund = async move {
            let mut marks = lock(&books.marks);
            let marks = marks.entry(refunded.clone()).or_default();
            lock(&books.ledger).push(LedgerRow {
                id: refunded,
                epoch: marks.epoch,
                fence,
                entry: Entry::Refund,
            });
            marks.epoch += 1;
            marks.fence = fence;
            Ok::<_, ()>(())
        };
        match self.recorder.revoke_task_block(id.clone(), refund).await {
            Ok(()) => Ok(Revoked::Revoked(self.payment(&id, TaskState::NotFound))),
            Err(RevokeFailReason::Revoking(_)) => {
                Ok(Revoked::Refused(self.payment(&id, TaskState::Success)))
            }
            Err(RevokeFailReason::NotSuccess(_) | RevokeFailReason::RevokeTaskError(())) => {
                let state = self.recorder.query_task_state(&id).await;
                Ok(Revoked::Refused(self.payment(&id, state)))
            }
        }
    }

    async fn list_page(
        &self,
        state: TaskState,
        after: &str,
        limit: usize,
    ) -> Result<Page, BackendError> {
        let after = (!after.is_empty()).then(|| after.to_owned());
        Ok(self.recorder.list_page(state, after.as_ref(), limit))
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        let counts = self.recorder.state_counts();
        Ok(Counts {
            working: counts.working as u64,
            success: counts.success as u64,
            failed: counts.failed as u64,
        })
    }
}
