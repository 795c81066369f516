//! The harness's adapter for the PostgreSQL recorder, shared by the
//! binaries that run the harness's checks: direct (`harness.rs`) and
//! behind PgBouncer (`pgbouncer.rs`).
//!
//! The adapter keeps every database call on one background runtime of its
//! own, so the pool's connection tasks and the lease renewals never count as
//! the harness's tasks, and a harness runtime that is shut down part-way (a
//! cancelled attempt) does not take connections with it. The claim and the
//! finish block their caller until the database answers, so a cancelled
//! caller cannot drop them half-way, and an attempt whose future is dropped
//! or panics settles `Err` before the drop returns: the in-memory recorder's
//! claim and guard behave the same way.

use async_tasks_recorder::spec::{Outcome, RevokeRefusal};
use async_tasks_recorder::{Page, PagedListing, TaskState};
use async_tasks_recorder_harness::protocol::{Id, Protocol};
use async_tasks_recorder_pg::{Attempt, Config, Error, KnownBad, PgRecorder, Statements};
use std::future::Future;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// The runtime that owns every connection and renewal of every adapter.
pub fn background() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a background runtime")
    })
}

/// Runs `future` on the background runtime and blocks for its output, for
/// the harness's synchronous reads and for settling in `Drop`. Bounded: a
/// hung database fails the case naming `what`.
pub fn blocking<T: Send + 'static>(
    what: String,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    let (send, receive) = mpsc::channel();
    background().spawn(async move {
        let _ = send.send(future.await);
    });
    receive
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no answer from PostgreSQL within 30 s: {what}"))
}

/// Polls of `wait` at most this far apart.
pub const POLL: Duration = Duration::from_millis(2);

/// A fresh recorder on its own table, seen through the harness's trait.
/// `GUARDED = false` is the known-bad variant whose claim has lost its
/// `WHERE`: it claims any id, `Success` and `Working` ones included.
/// `POOLED = true` reaches the cluster through the binary's PgBouncer in
/// transaction mode ([`super::pooler`]), with [`Config::pooler`] set.
#[derive(Clone)]
pub struct Pg<const GUARDED: bool = true, const POOLED: bool = false>(pub PgRecorder<i64>);

impl<const GUARDED: bool, const POOLED: bool> Default for Pg<GUARDED, POOLED> {
    fn default() -> Self {
        let settings = Config {
            lease: Duration::from_secs(60),
            wait_poll_max: POLL,
            pool_size: 4,
            pooler: POOLED,
            ..Config::default()
        };
        let mut sql = Statements::new(&super::table("harness"), "bigint");
        if !GUARDED {
            sql = sql.known_bad(KnownBad::ClaimWithoutGuard);
        }
        let config = if POOLED {
            super::pooler().config(super::POOLED_DATABASE)
        } else {
            super::cluster().config("postgres")
        };
        Pg(blocking("install a table".into(), async move {
            super::with_statements_on(config, sql, settings).await
        }))
    }
}

/// An accepted attempt that settles before its caller moves on: `Ok`/`Err`
/// by the future's output through [`settle`](Self::settle), or `Err` when
/// dropped first (a panic or a cancelled caller), before the drop returns.
pub struct SettlingAttempt(Option<Attempt<i64>>);

impl SettlingAttempt {
    fn settle(mut self, outcome: Outcome) {
        let attempt = self.0.take().expect("settled once");
        let id = *attempt.lease().id();
        blocking(format!("finish {id}"), attempt.finish(outcome))
            .unwrap_or_else(|e| panic!("finish of {id}: {e}"));
    }
}

impl Drop for SettlingAttempt {
    fn drop(&mut self) {
        if let Some(attempt) = self.0.take() {
            let id = *attempt.lease().id();
            let _ = blocking(format!("settle {id} as Err"), attempt.finish(Outcome::Err));
        }
    }
}

impl<const GUARDED: bool, const POOLED: bool> Protocol for Pg<GUARDED, POOLED> {
    const NAME: &'static str = match (GUARDED, POOLED) {
        (true, false) => "PgRecorder",
        (true, true) => "PgRecorder behind PgBouncer",
        (false, _) => "PgRecorder with an unguarded claim",
    };
    const WAKE_LATENCY: Duration = Duration::from_secs(5);

    async fn launch_block<F>(&self, id: Id, task: F) -> Result<Result<(), ()>, TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        let recorder = self.0.clone();
        let claim = blocking(format!("claim {id}"), async move {
            recorder.claim(id.into()).await
        });
        let attempt = match claim {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(refused)) => return Err(refused.state()),
            Err(e) => panic!("claim of {id}: {e}"),
        };
        let attempt = SettlingAttempt(Some(attempt));
        let output = task.await;
        attempt.settle(Outcome::of(&output));
        Ok(output)
    }

    fn query(&self, id: Id) -> TaskState {
        let recorder = self.0.clone();
        blocking(format!("query {id}"), async move {
            recorder.query(&id.into()).await
        })
        .unwrap_or_else(|e| panic!("query of {id}: {e}"))
    }

    async fn revoke_block<F>(&self, id: Id, revoke: F) -> Result<Result<(), ()>, RevokeRefusal>
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        let recorder = self.0.clone();
        let begin = blocking(format!("revoke {id}"), async move {
            recorder.revoke_begin(id.into()).await
        });
        let attempt = match begin {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(refusal)) => return Err(refusal),
            Err(e) => panic!("revoke of {id}: {e}"),
        };
        let attempt = SettlingAttempt(Some(attempt));
        let output = revoke.await;
        attempt.settle(Outcome::of(&output));
        Ok(output)
    }

    async fn wait(&self, id: Id) -> TaskState {
        let recorder = self.0.clone();
        let waited = background().spawn(async move { recorder.wait(&id.into()).await });
        waited
            .await
            .unwrap_or_else(|e| panic!("wait on {id}: {e}"))
            .unwrap_or_else(|e| panic!("wait on {id}: {e}"))
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        let recorder = self.0.clone();
        blocking(format!("list {state:?}"), async move {
            recorder.list(state).await
        })
        .unwrap_or_else(|e| panic!("list {state:?}: {e}"))
        .into_iter()
        .map(|id| Id::try_from(id).expect("the harness's ids fit in u32"))
        .collect()
    }
}

/// The recorder's pages and counts, on the ids the harness uses.
impl<const GUARDED: bool, const POOLED: bool> PagedListing<Id> for Pg<GUARDED, POOLED> {
    type Error = Error;

    async fn list_page(
        &self,
        state: TaskState,
        after: Option<&Id>,
        limit: usize,
    ) -> Result<Page<Id>, Error> {
        let recorder = self.0.clone();
        let after = after.map(|&id| i64::from(id));
        let page = blocking(format!("a page of {state:?} after {after:?}"), async move {
            recorder.list_page(state, after.as_ref(), limit).await
        })?;
        let id = |id: i64| Id::try_from(id).expect("the harness's ids fit in u32");
        Ok(Page {
            ids: page.ids.into_iter().map(id).collect(),
            next: page.next.map(id),
        })
    }

    async fn count(&self, state: TaskState) -> Result<u64, Error> {
        let recorder = self.0.clone();
        blocking(format!("count {state:?}"), async move {
            recorder.count(state).await
        })
    }
}
