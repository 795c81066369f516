//! The system under test of the proptest properties: the real recorder with
//! its whole API, or any `Protocol` (the known-bad ones, the mutants), with
//! the operations it lacks built from the ones it has.

use crate::protocol::{Id, Protocol};
use crate::support::{CatchUnwind, lock, poll_once};
use async_tasks_recorder::spec::RevokeRefusal;
use async_tasks_recorder::{AsyncTasksRecorder, StateCounts, TaskState};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use tokio::sync::oneshot;

/// What the properties drive: a [`Protocol`], plus the operations only the
/// real recorder has natively. Tasks and revokes return `Result<(), ()>`.
pub trait Subject: Protocol {
    /// Starts `task` on the current runtime; resolves once it is accepted or refused.
    fn launch<F>(&self, id: Id, task: F) -> impl Future<Output = Result<(), TaskState>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send + 'static;

    fn query_quick(&self, id: Id) -> TaskState;

    fn counts(&self) -> StateCounts;

    /// The count of one state; the recorder's own `count_tasks`, which for
    /// `Failed` walks the failed-id index rather than the table.
    fn count(&self, state: TaskState) -> usize {
        self.counts().get(state)
    }

    /// How many ids are recorded (not `NotFound`): by default the sum of
    /// the counts; the real recorder asks its table.
    fn recorded(&self) -> usize {
        let counts = self.counts();
        counts.working + counts.success + counts.failed
    }
}

/// The real recorder: its own `launch`, quick query and counts.
impl Subject for AsyncTasksRecorder<Id> {
    async fn launch<F>(&self, id: Id, task: F) -> Result<(), TaskState>
    where
        F: Future<Output = Result<(), ()>> + Send + 'static,
    {
        AsyncTasksRecorder::launch(self, id, task)
            .await
            .map_err(|(state, _)| state)
    }

    fn query_quick(&self, id: Id) -> TaskState {
        // The quick query is async only for API symmetry; it never waits.
        poll_ready(self.query_task_state_quick(&id))
    }

    fn counts(&self) -> StateCounts {
        self.state_counts()
    }

    fn count(&self, state: TaskState) -> usize {
        self.count_tasks(state)
    }

    fn recorded(&self) -> usize {
        self.len()
    }
}

/// A `Protocol` seen as a `Subject`: `launch` spawns `launch_block`, the
/// quick query maps the query as the 2.x contract does, counts are listing
/// lengths.
#[derive(Clone, Default)]
pub struct Via<P>(pub P);

impl<P: Protocol> Protocol for Via<P> {
    const NAME: &'static str = P::NAME;
    const WAKE_LATENCY: std::time::Duration = P::WAKE_LATENCY;

    fn launch_block<F>(
        &self,
        id: Id,
        task: F,
    ) -> impl Future<Output = Result<Result<(), ()>, TaskState>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        self.0.launch_block(id, task)
    }

    fn query(&self, id: Id) -> TaskState {
        self.0.query(id)
    }

    fn revoke_block<F>(
        &self,
        id: Id,
        revoke: F,
    ) -> impl Future<Output = Result<Result<(), ()>, RevokeRefusal>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send,
    {
        self.0.revoke_block(id, revoke)
    }

    fn wait(&self, id: Id) -> impl Future<Output = TaskState> + Send {
        self.0.wait(id)
    }

    fn list(&self, state: TaskState) -> Vec<Id> {
        self.0.list(state)
    }
}

impl<P: Protocol> Subject for Via<P> {
    fn launch<F>(&self, id: Id, task: F) -> impl Future<Output = Result<(), TaskState>> + Send
    where
        F: Future<Output = Result<(), ()>> + Send + 'static,
    {
        let protocol = self.0.clone();
        spawn_until_started(
            move |task| async move { protocol.launch_block(id, task).await },
            task,
        )
    }

    fn query_quick(&self, id: Id) -> TaskState {
        match self.0.query(id) {
            TaskState::NotFound => TaskState::Working,
            state => state,
        }
    }

    fn counts(&self) -> StateCounts {
        StateCounts {
            working: self.0.list(TaskState::Working).len(),
            success: self.0.list(TaskState::Success).len(),
            failed: self.0.list(TaskState::Failed).len(),
        }
    }
}

/// Spawns `run(task')` on the current runtime, where `task'` is `task` that
/// reports its first poll. Resolves `Ok` at that first poll (the launch or
/// revoke was accepted), or `Err(e)` when `run` returns `Err(e)` first (it was
/// refused). What `run` returns later, panics included, is dropped.
pub fn spawn_until_started<F, R, Fut, T, E>(
    run: R,
    task: F,
) -> impl Future<Output = Result<(), E>> + Send + 'static
where
    F: Future<Output = Result<(), ()>> + Send + 'static,
    R: FnOnce(Pin<Box<dyn Future<Output = Result<(), ()>> + Send>>) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
    E: Send + 'static,
{
    let (report, accepted) = oneshot::channel();
    let report = Arc::new(Mutex::new(Some(report)));
    let started = {
        let report = report.clone();
        async move {
            send(&report, Ok(()));
            task.await
        }
    };
    let running = run(Box::pin(started));
    async move {
        tokio::spawn(async move {
            if let Ok(Err(refused)) = CatchUnwind::new(running).await {
                send(&report, Err(refused));
            }
        });
        accepted
            .await
            .unwrap_or_else(|_| panic!("the spawned call ended before accepting or refusing"))
    }
}

/// Where [`spawn_until_started`] reports to; taken by the first report.
type Report<E> = Arc<Mutex<Option<oneshot::Sender<Result<(), E>>>>>;

fn send<E>(report: &Report<E>, result: Result<(), E>) {
    let sender = lock(report).take();
    if let Some(sender) = sender {
        let _ = sender.send(result);
    }
}

/// Polls a future that never waits, once.
fn poll_ready<F: Future>(future: F) -> F::Output {
    match poll_once(std::pin::pin!(future)) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a query waited"),
    }
}
