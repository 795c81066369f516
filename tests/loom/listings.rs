//! Loom models of listings: a listing against transitions of every state
//! (model 7), and a listing of `Failed` against relaunches (model 9).

use super::calls::{LaunchAnswer, flag, launch, pending_launch, query, wait};
use super::loom_blocking::block_on;
use super::loom_harness::{Trace, violation};
use super::protocols::{Id, Protocol};
use async_tasks_recorder::TaskState;
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::Ordering::{Acquire, Release};
use loom::thread;
use std::future::Future;
use std::iter;

// ---------------------------------------------------------------------------
// Model 7: listing ‖ transitions
// ---------------------------------------------------------------------------

/// One step of an id's path, bracketed by two flags: `may_start` is set
/// before the step can take effect, `done` after it certainly has.
pub(super) struct Step {
    may_start: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

/// An id's states in order, and the steps between them.
pub(super) struct Path {
    id: Id,
    states: Vec<TaskState>,
    steps: Vec<Step>,
}

impl Path {
    /// The index of the earliest state the id can be in from now on.
    fn earliest(&self) -> usize {
        self.steps
            .iter()
            .take_while(|step| step.done.load(Acquire))
            .count()
    }

    /// The index of the latest state the id can have reached by now.
    fn latest(&self) -> usize {
        self.steps
            .iter()
            .take_while(|step| step.may_start.load(Acquire))
            .count()
    }
}

/// Lists `listed_state` while the ids move along `paths`, and checks the
/// listing against them: each id listed at most once, only if it was in
/// `listed_state` at some moment during the listing (`earliest..=latest`,
/// read before and after the call), and always if it stayed in
/// `listed_state` throughout; no id off the paths.
fn list_along<P: Protocol>(protocol: &P, trace: &Trace, paths: &[Path], listed_state: TaskState) {
    let name = P::NAME;
    let earliest: Vec<usize> = paths.iter().map(Path::earliest).collect();
    let listed = protocol.list(listed_state);
    trace.note("main", format_args!("list {listed_state:?} -> {listed:?}"));
    let latest: Vec<usize> = paths.iter().map(Path::latest).collect();
    for (n, path) in paths.iter().enumerate() {
        let during = &path.states[earliest[n]..=latest[n]];
        let shown = listed.iter().filter(|&&id| id == path.id).count();
        if shown > 1 || (shown == 1 && !during.contains(&listed_state)) {
            violation(
                trace,
                format_args!(
                    "{name}: a listing of {listed_state:?} showed id {} {shown} time(s); \
                     during the listing it was only {during:?}",
                    path.id
                ),
            );
        }
        if shown == 0 && during == [listed_state] {
            violation(
                trace,
                format_args!(
                    "{name}: a listing of {listed_state:?} missed id {}, which stayed \
                     {listed_state:?} throughout",
                    path.id
                ),
            );
        }
    }
    if let Some(stranger) = listed.iter().find(|id| !paths.iter().any(|p| p.id == **id)) {
        violation(
            trace,
            format_args!(
                "{name}: a listing of {listed_state:?} showed id {stranger}, never launched"
            ),
        );
    }
}

/// The mover thread of the listing models, before it starts: it finishes
/// the pending launch of `finishes`, then relaunches `relaunches` (the same
/// id or another) with a task that ends with `relaunch_output`. Its flags
/// bracket each step it takes, for the [`Path`]s of the ids it moves.
struct Mover {
    finishes: Id,
    relaunches: Id,
    relaunch_output: Result<(), ()>,
    finish_starts: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    relaunch_starts: Arc<AtomicBool>,
    relaunch_runs: Arc<AtomicBool>,
    relaunched: Arc<AtomicBool>,
}

impl Mover {
    fn new(finishes: Id, relaunches: Id, relaunch_output: Result<(), ()>) -> Self {
        Mover {
            finishes,
            relaunches,
            relaunch_output,
            finish_starts: flag(),
            finished: flag(),
            relaunch_starts: flag(),
            relaunch_runs: flag(),
            relaunched: flag(),
        }
    }

    /// The finish of `finishes` (Working → its task's end).
    fn finish_step(&self) -> Step {
        Step {
            may_start: self.finish_starts.clone(),
            done: self.finished.clone(),
        }
    }

    /// The relaunch of `relaunches`: into `Working`, then to its task's end.
    fn relaunch_steps(&self) -> [Step; 2] {
        [
            Step {
                may_start: self.relaunch_starts.clone(),
                done: self.relaunch_runs.clone(),
            },
            // The finish follows the task, which sets `relaunch_runs` last.
            Step {
                may_start: self.relaunch_runs.clone(),
                done: self.relaunched.clone(),
            },
        ]
    }

    /// Starts the thread, which resumes `finishing` (the pending launch of
    /// `finishes`) and answers what the finish and the relaunch answered.
    fn spawn<P: Protocol>(
        self,
        protocol: &P,
        trace: &Trace,
        finishing: impl Future<Output = LaunchAnswer> + Send + 'static,
    ) -> thread::JoinHandle<[LaunchAnswer; 2]> {
        let Mover {
            finishes,
            relaunches,
            relaunch_output,
            finish_starts,
            finished,
            relaunch_starts,
            relaunch_runs,
            relaunched,
        } = self;
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || {
            finish_starts.store(true, Release);
            trace.note("M", format_args!("resumes task {finishes}"));
            let finish = block_on(finishing);
            trace.note(
                "M",
                format_args!("task {finishes} ended, launch -> {finish:?}"),
            );
            finished.store(true, Release);
            relaunch_starts.store(true, Release);
            let relaunch = launch(&protocol, &trace, "M", relaunches, async move {
                relaunch_runs.store(true, Release);
                relaunch_output
            });
            relaunched.store(true, Release);
            [finish, relaunch]
        })
    }
}

/// Ids in Success, Working and Failed; while a mover thread finishes the
/// `Working` one (Working → Success) and relaunches the `Failed` one
/// (Failed → Working → Success), the main thread lists each state. For every
/// listing and id: listed only in a state the id was in at some moment during
/// the listing, and listed whenever it stayed in the listed state throughout.
pub(super) fn listing_during_transitions<P: Protocol + Default>(trace: &Trace) {
    let protocol = P::default();
    let name = P::NAME;
    let (stays, finishes, relaunches) = (1, 2, 3);
    let setup = [
        launch(&protocol, trace, "setup", stays, async { Ok(()) }),
        launch(&protocol, trace, "setup", relaunches, async { Err(()) }),
    ];
    if setup != [Ok(Ok(())), Ok(Err(()))] {
        violation(
            trace,
            format_args!("{name}: the setup launches answered {setup:?}"),
        );
    }
    let finishing = pending_launch(&protocol, trace, finishes, Ok(()));

    let mover = Mover::new(finishes, relaunches, Ok(()));
    let paths = [
        Path {
            id: stays,
            states: vec![TaskState::Success],
            steps: vec![],
        },
        Path {
            id: finishes,
            states: vec![TaskState::Working, TaskState::Success],
            steps: vec![mover.finish_step()],
        },
        Path {
            id: relaunches,
            states: vec![TaskState::Failed, TaskState::Working, TaskState::Success],
            steps: mover.relaunch_steps().into(),
        },
    ];
    let mover = mover.spawn(&protocol, trace, finishing);
    for listed_state in [TaskState::Success, TaskState::Working, TaskState::Failed] {
        list_along(&protocol, trace, &paths, listed_state);
    }
    let launched = mover.join().unwrap();
    if launched != [Ok(Ok(())), Ok(Ok(()))] {
        violation(
            trace,
            format_args!("{name}: the finish and the relaunch answered {launched:?}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 9: failed listing ‖ relaunches
// ---------------------------------------------------------------------------

/// The failed-id index under transitions into and out of `Failed`. One id
/// stays `Failed`; another is `Working`. A mover thread finishes it with
/// `Err` (Working → Failed), then relaunches it with a task that fails again
/// (Failed → Working → Failed). Meanwhile the main thread lists `Failed`
/// (weakly consistent, each id once), then relaunches the id with a task that
/// succeeds, waiting and retrying while it is `Working`, which races its
/// relaunch against the mover's finish and relaunch. Once every operation
/// has returned, `Failed` lists exactly the ids that read `Failed`.
pub(super) fn failed_listing_during_relaunches<P: Protocol + Default>(trace: &Trace) {
    let protocol = P::default();
    let name = P::NAME;
    let (stays, cycles) = (1, 2);
    let setup = launch(&protocol, trace, "setup", stays, async { Err(()) });
    if setup != Ok(Err(())) {
        violation(
            trace,
            format_args!("{name}: the setup launch answered {setup:?}"),
        );
    }
    let finishing = pending_launch(&protocol, trace, cycles, Err(()));

    let mover = Mover::new(cycles, cycles, Err(()));
    let paths = [
        Path {
            id: stays,
            states: vec![TaskState::Failed],
            steps: vec![],
        },
        Path {
            id: cycles,
            states: vec![
                TaskState::Working,
                TaskState::Failed,
                TaskState::Working,
                TaskState::Failed,
            ],
            // The finish, then the relaunch: the steps in path order.
            steps: iter::once(mover.finish_step())
                .chain(mover.relaunch_steps())
                .collect(),
        },
    ];
    let mover = mover.spawn(&protocol, trace, finishing);

    // The listing runs before the main thread's own relaunch, so the paths
    // above are every step that can overlap it.
    list_along(&protocol, trace, &paths, TaskState::Failed);

    // Refused with `Working` at most twice: once for the first attempt, once
    // for the mover's relaunch. A fourth try would mean a wedged id.
    let mut retried = None;
    for _ in 0..4 {
        match launch(&protocol, trace, "main", cycles, async { Ok(()) }) {
            Ok(Ok(())) => {
                retried = Some(());
                break;
            }
            Err(TaskState::Working) => {
                wait(&protocol, trace, "main", cycles);
            }
            other => violation(
                trace,
                format_args!("{name}: the main thread's relaunch answered {other:?}"),
            ),
        }
    }
    if retried.is_none() {
        violation(
            trace,
            format_args!("{name}: a relaunch of id {cycles} was refused four times"),
        );
    }
    let [finish, relaunch] = mover.join().unwrap();
    if finish != Ok(Err(()))
        || !matches!(
            relaunch,
            Ok(Err(())) | Err(TaskState::Working | TaskState::Success)
        )
    {
        violation(
            trace,
            format_args!(
                "{name}: the mover's finish and relaunch answered {finish:?}, {relaunch:?}"
            ),
        );
    }

    // Quiescent: the listing must agree with the queries exactly.
    let mut listed = protocol.list(TaskState::Failed);
    listed.sort_unstable();
    trace.note("main", format_args!("at rest, list Failed -> {listed:?}"));
    let queried: Vec<Id> = [stays, cycles]
        .into_iter()
        .filter(|&id| query(&protocol, trace, "main", id) == TaskState::Failed)
        .collect();
    if listed != queried {
        violation(
            trace,
            format_args!(
                "{name}: once every operation returned, Failed lists {listed:?} \
                 but the queries say {queried:?}"
            ),
        );
    }
}
