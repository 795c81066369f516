//! The subject side of the model test: the subject, the gated attempts and
//! revokes it runs, and its pending waiters.

use super::mismatch::{Kind, expect};
use super::reference::{Launcher, Phases};
use crate::bounded::Watchdog;
use crate::protocol::End;
use crate::protocol::Id;
use crate::subject::{Subject, spawn_until_started};
use crate::support::task_panic;
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::Response;
use std::collections::HashMap;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How a gate ends a gated future.
#[derive(Debug)]
enum Release {
    Ok,
    Err,
    Panic,
}

/// A future that ends as its gate says.
fn gated() -> (
    oneshot::Sender<Release>,
    impl Future<Output = Result<(), ()>> + Send + 'static,
) {
    let (gate, released) = oneshot::channel();
    let future = async move {
        match released.await {
            Ok(Release::Ok) => Ok(()),
            Ok(Release::Err) | Err(_) => Err(()),
            Ok(Release::Panic) => task_panic(),
        }
    };
    (gate, future)
}

/// A running gated task or revoke, alone on its runtime.
pub(super) struct Running {
    runtime: Runtime,
    gate: oneshot::Sender<Release>,
}

impl Running {
    /// Ends the future as `end` says; returns once everything it spawned ended.
    pub(super) fn end(self, end: End) {
        let release = match end {
            End::Ok => Release::Ok,
            End::Err => Release::Err,
            End::Panic => Release::Panic,
            // Shutting the runtime down drops the future part-way.
            End::Cancel => return drop(self),
        };
        self.gate.send(release).expect("the gated future is alive");
        self.runtime.block_on(async {
            let metrics = tokio::runtime::Handle::current().metrics();
            // Bounded in time, not in yields: a backend's finish may be a
            // round trip to a database.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while metrics.num_alive_tasks() != 0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "a released task did not end within 10 s"
                );
                tokio::task::yield_now().await;
            }
        });
    }
}

pub(super) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// The system under test, and what it has running.
pub struct Sut<S> {
    pub(super) subject: S,
    /// The reference phases before the step being applied.
    pub(super) before: Phases,
    /// The running attempt of each `Working` id.
    pub(super) attempts: HashMap<Id, Running>,
    /// The running revoke of each `Revoking` id.
    pub(super) revokes: HashMap<Id, Running>,
    /// Pending waiters, driven on their own runtime.
    pub(super) waiters_runtime: Runtime,
    /// Each pending waiter's id and task.
    pub(super) waiters: Vec<(Id, JoinHandle<TaskState>)>,
    /// A sequence runs in milliseconds. A `wait` that spins instead of
    /// sleeping never returns to `check_waiters`, and no timer on its runtime
    /// can fire; this ends the run instead.
    pub(super) _watchdog: Watchdog,
}

impl<S: Subject> Sut<S> {
    pub(super) fn launch(&mut self, id: Id, launcher: Launcher) -> Response {
        let (gate, task) = gated();
        let runtime = runtime();
        let subject = self.subject.clone();
        let launched = runtime.block_on(async move {
            match launcher {
                Launcher::Spawned => subject.launch(id, task).await,
                Launcher::Block => {
                    spawn_until_started(
                        move |task| async move { subject.launch_block(id, task).await },
                        task,
                    )
                    .await
                }
            }
        });
        match launched {
            Ok(()) => {
                self.attempts.insert(id, Running { runtime, gate });
                Response::Accepted
            }
            Err(state) => Response::LaunchRefused(state),
        }
    }

    pub(super) fn begin_revoke(&mut self, id: Id) -> Response {
        let (gate, revoke) = gated();
        let runtime = runtime();
        let subject = self.subject.clone();
        let begun = runtime.block_on(spawn_until_started(
            move |revoke| async move { subject.revoke_block(id, revoke).await },
            revoke,
        ));
        match begun {
            Ok(()) => {
                self.revokes.insert(id, Running { runtime, gate });
                Response::Accepted
            }
            Err(refusal) => Response::RevokeRefused(refusal),
        }
    }

    /// Lets every woken waiter run, then checks each against `phases`: a
    /// waiter has returned exactly when its id is not `Working`, with the
    /// id's state.
    pub(super) fn check_waiters(&mut self, phases: &Phases) {
        let waiters = &self.waiters;
        self.waiters_runtime.block_on(async {
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
            // A polling backend gets its stated latency, and no more.
            let deadline = tokio::time::Instant::now() + S::WAKE_LATENCY;
            while waiters.iter().any(|(id, waiter)| {
                !waiter.is_finished() && phases[*id as usize].state() != TaskState::Working
            }) && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        for (id, waiter) in std::mem::take(&mut self.waiters) {
            let state = phases[id as usize].state();
            if waiter.is_finished() {
                let returned = self.waiters_runtime.block_on(waiter);
                expect(Kind::Other, returned.is_ok(), || {
                    format!("wait({id}) panicked: {returned:?}")
                });
                let returned = returned.expect("checked above");
                expect(Kind::WaitReturned, returned == state, || {
                    format!("wait({id}) returned {returned:?}, the id is {state:?}")
                });
            } else {
                expect(Kind::WaitAsleep, state == TaskState::Working, || {
                    format!("wait({id}) still pending though the id is {state:?}")
                });
                self.waiters.push((id, waiter));
            }
        }
    }
}
