//! The shared harness (`async_tasks_recorder_harness`) run against the
//! PostgreSQL backend: the same sequential model test and the same
//! concurrent schedules, with the same linearizability checker, that check
//! the in-memory recorder.
//!
//! The adapter keeps every database call on one background runtime of its
//! own, so the pool's connection tasks and the lease renewals never count as
//! the harness's tasks, and a harness runtime that is shut down part-way (a
//! cancelled attempt) does not take connections with it. The claim and the
//! finish block their caller until the database answers, so a cancelled
//! caller cannot drop them half-way, and an attempt whose future is dropped
//! or panics settles `Err` before the drop returns: the in-memory recorder's
//! claim and guard behave the same way. (A real caller cancelled during a
//! claim has its grant seen through by a task of its own, which settles the
//! attempt `Err` in the background, `answers.rs`; the harness's quiescence
//! check would count that short while as left `Working`.) Leases are long (60 s), so no lease
//! lapses during a case: with no lapse, `spec::fenced_step` with the
//! holder's own fence is `spec::step` (spec test
//! `fenced_step_delegates_to_step`), which is what the harness
//! checks against. Lapses, takeovers and stale finishes are checked in
//! `leases.rs` and `model.rs`.

mod common;

use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::{Outcome, RevokeRefusal};
use async_tasks_recorder_harness::concurrent::{ABRUPT, check_schedule, schedule, wait_storm};
use async_tasks_recorder_harness::protocol::{Id, Protocol};
use async_tasks_recorder_harness::sequential::{self, Kind};
use async_tasks_recorder_harness::subject::Via;
use async_tasks_recorder_harness::support::cases;
use async_tasks_recorder::{Page, PagedListing};
use async_tasks_recorder_pg::{Attempt, Config, Error, KnownBad, PgRecorder, Statements};
use proptest::test_runner::{Config as Cases, TestRunner};
use std::future::Future;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// The runtime that owns every connection and renewal of every adapter.
fn background() -> &'static Runtime {
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
fn blocking<T: Send + 'static>(
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
const POLL: Duration = Duration::from_millis(2);

/// A fresh recorder on its own table, seen through the harness's trait.
/// `GUARDED = false` is the known-bad variant whose claim has lost its
/// `WHERE`: it claims any id, `Success` and `Working` ones included.
#[derive(Clone)]
struct Pg<const GUARDED: bool = true>(PgRecorder<i64>);

impl<const GUARDED: bool> Default for Pg<GUARDED> {
    fn default() -> Self {
        let settings = Config {
            lease: Duration::from_secs(60),
            wait_poll_max: POLL,
            pool_size: 4,
            ..Config::default()
        };
        let mut sql = Statements::new(&common::table("harness"), "bigint");
        if !GUARDED {
            sql = sql.known_bad(KnownBad::ClaimWithoutGuard);
        }
        Pg(blocking("install a table".into(), async move {
            common::with_statements(sql, settings).await
        }))
    }
}

/// An accepted attempt that settles before its caller moves on: `Ok`/`Err`
/// by the future's output through [`settle`](Self::settle), or `Err` when
/// dropped first (a panic or a cancelled caller), before the drop returns.
struct SettlingAttempt(Option<Attempt<i64>>);

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

impl<const GUARDED: bool> Protocol for Pg<GUARDED> {
    const NAME: &'static str = if GUARDED {
        "PgRecorder"
    } else {
        "PgRecorder with an unguarded claim"
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
impl<const GUARDED: bool> PagedListing<Id> for Pg<GUARDED> {
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

#[test]
fn postgres_agrees_with_the_spec_after_every_step() {
    sequential::check::<Via<Pg>>(cases(24));
}

#[test]
fn postgres_keeps_every_property_in_concurrent_schedules() {
    let config = Cases {
        cases: cases(8),
        failure_persistence: None,
        ..Cases::default()
    };
    TestRunner::new(config)
        .run(&schedule(ABRUPT), |schedule| {
            check_schedule::<Via<Pg>>(&schedule).map_err(|violation| {
                proptest::test_runner::TestCaseError::fail(violation.to_string())
            })
        })
        .unwrap();
}

#[test]
fn postgres_keeps_every_property_in_wait_storms() {
    let config = Cases {
        cases: cases(4),
        failure_persistence: None,
        ..Cases::default()
    };
    TestRunner::new(config)
        .run(&wait_storm(), |schedule| {
            check_schedule::<Via<Pg>>(&schedule).map_err(|violation| {
                proptest::test_runner::TestCaseError::fail(violation.to_string())
            })
        })
        .unwrap();
}

/// The shared paging check (the in-memory recorder passes it too):
/// keyset pages of 3 through the `(state, id)` index while ids enter and
/// leave `Failed` between pages, each page exactly the one the rows then
/// give, every id failed throughout returned once, and a `Revoking` row
/// listed as `Success`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pages_every_id_once_as_ids_come_and_go() {
    let recorder = Pg::<true>::default();
    async_tasks_recorder_harness::paging::check(&recorder)
        .await
        .unwrap_or_else(|why| panic!("{why}"));
}

#[test]
fn the_shared_model_test_catches_an_unguarded_claim_on_postgres() {
    let found = sequential::counterexample::<Via<Pg<false>>>();
    assert_eq!(found.mismatch.kind, Kind::Response, "{}", found.mismatch);
}
