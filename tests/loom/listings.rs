//! Loom models of listings: a listing against transitions of every state
//! (model 7), and a listing of `Failed` against relaunches (model 9).

use super::calls::{YieldOnce, flag, launch, owned_launch, query, wait};
use super::loom_blocking::block_on;
use super::loom_harness::{Trace, violation};
use super::protocols::{Id, Protocol};
use async_tasks_recorder::TaskState;
use async_tasks_recorder_harness::support::poll_once;
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::Ordering::{Acquire, Release};
use loom::thread;

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
    let mut finishing = owned_launch(&protocol, finishes, YieldOnce::new(Ok(())));
    if poll_once(finishing.as_mut()).is_ready() {
        violation(
            trace,
            format_args!("{name}: a launch of a fresh id did not run its task"),
        );
    }

    let (finish_starts, finished) = (flag(), flag());
    let (relaunch_starts, relaunch_runs, relaunched) = (flag(), flag(), flag());
    let paths = [
        Path {
            id: stays,
            states: vec![TaskState::Success],
            steps: vec![],
        },
        Path {
            id: finishes,
            states: vec![TaskState::Working, TaskState::Success],
            steps: vec![Step {
                may_start: finish_starts.clone(),
                done: finished.clone(),
            }],
        },
        Path {
            id: relaunches,
            states: vec![TaskState::Failed, TaskState::Working, TaskState::Success],
            steps: vec![
                Step {
                    may_start: relaunch_starts.clone(),
                    done: relaunch_runs.clone(),
                },
                // The finish follows the task, which sets `relaunch_runs` last.
                Step {
                    may_start: relaunch_runs.clone(),
                    done: relaunched.clone(),
                },
            ],
        },
    ];
    let mover = {
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
                Ok(())
            });
            relaunched.store(true, Release);
            [finish, relaunch]
        })
    };
    for listed_state in [TaskState::Success, TaskState::Working, TaskState::Failed] {
        let earliest = paths.each_ref().map(Path::earliest);
        let listed = protocol.list(listed_state);
        trace.note("main", format_args!("list {listed_state:?} -> {listed:?}"));
        let latest = paths.each_ref().map(Path::latest);
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
                format_args!("{name}: a listing showed id {stranger}, never launched"),
            );
        }
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
// Model 8: failed listing ‖ launch-fail-relaunch
// ---------------------------------------------------------------------------

/// Checks one listing of `Failed` against the ids' paths: each id listed at
/// most once, only if it was `Failed` at some moment during the listing
/// (`earliest..=latest`), and always if it was `Failed` throughout.
pub(super) fn check_failed_listing(
    trace: &Trace,
    name: &str,
    listed: &[Id],
    paths: &[Path],
    earliest: &[usize],
    latest: &[usize],
) {
    for (n, path) in paths.iter().enumerate() {
        let during = &path.states[earliest[n]..=latest[n]];
        let shown = listed.iter().filter(|&&id| id == path.id).count();
        if shown > 1 || (shown == 1 && !during.contains(&TaskState::Failed)) {
            violation(
                trace,
                format_args!(
                    "{name}: a listing of Failed showed id {} {shown} time(s); \
                     during the listing it was only {during:?}",
                    path.id
                ),
            );
        }
        if shown == 0 && during == [TaskState::Failed] {
            violation(
                trace,
                format_args!(
                    "{name}: a listing of Failed missed id {}, which stayed Failed throughout",
                    path.id
                ),
            );
        }
    }
    if let Some(stranger) = listed.iter().find(|id| !paths.iter().any(|p| p.id == **id)) {
        violation(
            trace,
            format_args!("{name}: a listing of Failed showed id {stranger}, never launched"),
        );
    }
}

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
    let mut finishing = owned_launch(&protocol, cycles, YieldOnce::new(Err(())));
    if poll_once(finishing.as_mut()).is_ready() {
        violation(
            trace,
            format_args!("{name}: a launch of a fresh id did not run its task"),
        );
    }

    let (finish_starts, finished) = (flag(), flag());
    let (relaunch_starts, relaunch_runs, relaunched) = (flag(), flag(), flag());
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
            steps: vec![
                Step {
                    may_start: finish_starts.clone(),
                    done: finished.clone(),
                },
                Step {
                    may_start: relaunch_starts.clone(),
                    done: relaunch_runs.clone(),
                },
                Step {
                    may_start: relaunch_runs.clone(),
                    done: relaunched.clone(),
                },
            ],
        },
    ];
    let mover = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || {
            finish_starts.store(true, Release);
            trace.note("M", format_args!("resumes task {cycles}"));
            let finish = block_on(finishing);
            trace.note(
                "M",
                format_args!("task {cycles} ended, launch -> {finish:?}"),
            );
            finished.store(true, Release);
            relaunch_starts.store(true, Release);
            let relaunch = launch(&protocol, &trace, "M", cycles, async move {
                relaunch_runs.store(true, Release);
                Err(())
            });
            relaunched.store(true, Release);
            [finish, relaunch]
        })
    };

    // The listing runs before the main thread's own relaunch, so the paths
    // above are every step that can overlap it.
    let earliest = paths.each_ref().map(Path::earliest);
    let listed = protocol.list(TaskState::Failed);
    trace.note("main", format_args!("list Failed -> {listed:?}"));
    let latest = paths.each_ref().map(Path::latest);
    check_failed_listing(trace, name, &listed, &paths, &earliest, &latest);

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
