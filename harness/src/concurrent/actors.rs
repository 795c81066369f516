//! The actors of a concurrent run: launchers, revokers and observers of one
//! id, each logging its operations and side effects to the run's history.

use super::schedule::{Attempt, Pause, Read, Revoke};
use super::wakes::Wakes;
use crate::history::{Effect, History};
use crate::operation::Operation;
use crate::protocol::End;
use crate::protocol::Id;
use crate::subject::Subject;
use crate::support::{CatchUnwind, lock, task_panic};
use async_tasks_recorder::spec::{Outcome, Response};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One run's shared log and subject.
pub(super) struct Run<S> {
    pub(super) subject: S,
    pub(super) history: History,
    /// Finish events of spawned attempts: id, outcome, and the task's end
    /// (their invocation). They return at quiescence, the first moment the
    /// run knows that they applied.
    pub(super) spawned_finishes: Mutex<Vec<(Id, Outcome, Arc<AtomicU64>)>>,
}

impl<S: Subject> Run<S> {
    /// The attempt's task: logs its start and end, and its side effect.
    fn task(
        self: &Arc<Self>,
        id: Id,
        attempt: Attempt,
        started: Arc<AtomicU64>,
        ended: Arc<AtomicU64>,
    ) -> impl Future<Output = Result<(), ()>> + Send + 'static {
        let run = self.clone();
        async move {
            started.store(run.history.now(), Ordering::SeqCst);
            attempt.work.run().await;
            if attempt.end == End::Cancel {
                std::future::pending::<()>().await;
            }
            if attempt.end == End::Ok {
                run.history.effect(id, Effect::Succeeded);
            }
            ended.store(run.history.now(), Ordering::SeqCst);
            match attempt.end {
                End::Ok => Ok(()),
                End::Panic => task_panic(),
                _ => Err(()),
            }
        }
    }

    pub(super) async fn launcher(self: Arc<Self>, id: Id, attempts: Vec<Attempt>) {
        for attempt in attempts {
            attempt.pause.run().await;
            let started = Arc::new(AtomicU64::new(u64::MAX));
            let ended = Arc::new(AtomicU64::new(u64::MAX));
            let task = self.task(id, attempt, started.clone(), ended.clone());
            let history = &self.history;
            let invoked = history.now();
            if attempt.spawned {
                let launched = self.subject.launch(id, task).await;
                let returned = history.now();
                let response = match launched {
                    Ok(()) => {
                        let outcome = if attempt.end == End::Ok {
                            Outcome::Ok
                        } else {
                            Outcome::Err
                        };
                        lock(&self.spawned_finishes).push((id, outcome, ended.clone()));
                        Response::Accepted
                    }
                    Err(state) => Response::LaunchRefused(state),
                };
                history.record(id, Operation::Launch(response), invoked, returned);
                continue;
            }
            let mut launch = Box::pin(CatchUnwind::new(self.subject.launch_block(id, task)));
            let output = tokio::select! {
                biased;
                output = &mut launch => Some(output),
                _ = attempt.work.run(), if attempt.end == End::Cancel => None,
            };
            let output = match output {
                Some(output) => output,
                None => {
                    // Still running its task (or never started): cancel.
                    let dropping = history.now();
                    drop(launch);
                    let dropped = history.now();
                    let start = started.load(Ordering::SeqCst);
                    if start == u64::MAX {
                        // The launch never returned nor ran the task: it was
                        // refused or not yet decided; nothing is known.
                        continue;
                    }
                    history.record(id, Operation::Launch(Response::Accepted), invoked, start);
                    history.record(id, Operation::Finish(Outcome::Err), dropping, dropped);
                    continue;
                }
            };
            let returned = history.now();
            let start = started.load(Ordering::SeqCst);
            match output {
                Ok(Err(state)) => {
                    history.record(
                        id,
                        Operation::Launch(Response::LaunchRefused(state)),
                        invoked,
                        returned,
                    );
                }
                Ok(Ok(result)) => {
                    history.record(id, Operation::Launch(Response::Accepted), invoked, start);
                    let outcome = Outcome::of(&result);
                    history.record(
                        id,
                        Operation::Finish(outcome),
                        ended.load(Ordering::SeqCst),
                        returned,
                    );
                }
                Err(_panic) => {
                    history.record(id, Operation::Launch(Response::Accepted), invoked, start);
                    history.record(
                        id,
                        Operation::Finish(Outcome::Err),
                        ended.load(Ordering::SeqCst),
                        returned,
                    );
                }
            }
        }
    }
}

impl<S: Subject> Run<S> {
    pub(super) async fn revoker(self: Arc<Self>, id: Id, revokes: Vec<Revoke>) {
        for revoke in revokes {
            revoke.pause.run().await;
            let history = &self.history;
            let started = Arc::new(AtomicU64::new(u64::MAX));
            let ended = Arc::new(AtomicU64::new(u64::MAX));
            let future = {
                let run = self.clone();
                let (started, ended) = (started.clone(), ended.clone());
                async move {
                    started.store(run.history.now(), Ordering::SeqCst);
                    revoke.work.run().await;
                    if revoke.ok {
                        run.history.effect(id, Effect::Revoked);
                    }
                    ended.store(run.history.now(), Ordering::SeqCst);
                    if revoke.ok { Ok(()) } else { Err(()) }
                }
            };
            let invoked = history.now();
            let revoked = self.subject.revoke_block(id, future).await;
            let returned = history.now();
            let start = started.load(Ordering::SeqCst);
            match revoked {
                Err(reason) if start == u64::MAX => {
                    let refused = Operation::BeginRevoke(Response::RevokeRefused(reason));
                    history.record(id, refused, invoked, returned);
                }
                result => {
                    let outcome = if result == Ok(Ok(())) {
                        Outcome::Ok
                    } else {
                        Outcome::Err
                    };
                    history.record(
                        id,
                        Operation::BeginRevoke(Response::Accepted),
                        invoked,
                        start,
                    );
                    let end = ended.load(Ordering::SeqCst);
                    history.record(id, Operation::FinishRevoke(outcome), end, returned);
                }
            }
        }
    }

    pub(super) async fn observer(
        self: Arc<Self>,
        id: Id,
        reads: Vec<(Pause, Read)>,
        wakes: Arc<Wakes>,
    ) {
        for (pause, read) in reads {
            pause.run().await;
            let history = &self.history;
            let invoked = history.now();
            let operation = match read {
                Read::Query => Operation::Query(self.subject.query(id)),
                Read::QuickQuery => Operation::QuickQuery(self.subject.query_quick(id)),
                Read::Wait => {
                    wakes.waiting.store(true, Ordering::SeqCst);
                    let state = self.subject.wait(id).await;
                    wakes.waiting.store(false, Ordering::SeqCst);
                    Operation::Wait(state)
                }
            };
            history.record(id, operation, invoked, history.now());
        }
    }
}
