//! Records the execution state of keyed async tasks.
//!
//! Hand the recorder a unique `task_id` and a future returning
//! `Result<R, E>`; it runs the future and answers, at any moment, whether the
//! id is [`NotFound`](TaskState::NotFound), [`Working`](TaskState::Working),
//! [`Success`](TaskState::Success) or [`Failed`](TaskState::Failed).
//!
//! - An id succeeds at most once per revoke epoch, whatever the number of
//!   concurrent launchers.
//! - A failed id may be launched again; a task that panics, is cancelled, or
//!   is dropped at runtime shutdown ends `Failed`, never stuck `Working`.
//! - A succeeded id may be revoked (back to `NotFound`) by a compensating
//!   future.
//! - Launches, queries, revokes and waits are linearizable;
//!   [`wait`](AsyncTasksRecorder::wait) sleeps until the id leaves `Working`
//!   with no lost wake-up.
//! - Listings by state are weakly consistent walks of one table; failed ids
//!   are also indexed, so listing them costs time in proportion to them.
//!   [`PagedListing`] lists in keyset pages, one trait for every backend.
//!
//! ```
//! use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let recorder = AsyncTasksRecorder::new();
//! recorder.launch("upload-1", async { Ok::<_, ()>(42) }).await.ok();
//! assert_eq!(recorder.wait("upload-1").await, TaskState::Success);
//! let again = recorder.launch("upload-1", async { Ok::<_, ()>(43) }).await;
//! assert!(matches!(again, Err((TaskState::Success, _))));
//! # }
//! ```
//!
//! # Modules
//! - [`spec`]: the sequential state machine, the single source of truth.
//! - `sync`: the shim through which every primitive is named, so that loom
//!   can check the real code.
//! - `table`: one map entry per id, each mutation one [`spec::step`] under
//!   the entry's lock.
//! - `recorder`: the async shell, with the guard that settles every launch.
//!
//! The correctness argument, proposition by proposition, is in `proofs/`.

#![warn(missing_docs)]

mod page;
mod recorder;
#[doc(hidden)]
pub mod signal;
pub mod spec;
#[doc(hidden)]
pub mod sync;
mod table;

/// The README's examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use page::{Page, PagedListing};
pub use recorder::{AsyncTasksRecorder, RevokeFailReason, StateCounts};
/// The drop guard that settles every accepted launch and revoke, for the
/// test mutants built on the same shim.
#[doc(hidden)]
pub use recorder::{Finishes, Settle};
pub use spec::TaskState;
