//! Loom models of launches: concurrent launches of one id (model 1), a
//! launch and its finish against a query (2), a redundant launch on a
//! `Success` id (3), and an abandoned launch against a retry (4).

use super::calls::{
    ID, check_reads_follow, launch, owned_launch, query, state_after, succeeded, wait,
};
use super::loom_blocking::block_on;
use super::loom_harness::{Trace, violation};
use super::protocols::Protocol;
use async_tasks_recorder::TaskState;
use async_tasks_recorder_harness::support::{TaskPanic, poll_once, quiet_task_panics, task_panic};
use loom::sync::Arc;
use loom::thread;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Poll;

// ---------------------------------------------------------------------------
// Model 1: concurrent launches of one id
// ---------------------------------------------------------------------------

/// `launchers` threads launch one id with tasks that succeed: exactly one
/// launch is accepted, the others are refused with `Working` or `Success`.
pub(super) fn concurrent_launches<P: Protocol + Default>(trace: &Trace, launchers: usize) {
    let protocol = P::default();
    let others: Vec<_> = (1..launchers)
        .map(|n| {
            let (protocol, trace) = (protocol.clone(), trace.clone());
            thread::spawn(move || launch(&protocol, &trace, &format!("L{n}"), ID, async { Ok(()) }))
        })
        .collect();
    let mut results = vec![launch(&protocol, trace, "L0", ID, async { Ok(()) })];
    results.extend(others.into_iter().map(|other| other.join().unwrap()));

    let winners = results.iter().filter(|launched| launched.is_ok()).count();
    if winners != 1 {
        violation(
            trace,
            format_args!("{}: {winners} of {launchers} launches won", P::NAME),
        );
    }
    for launched in &results {
        if !matches!(
            launched,
            Ok(Ok(())) | Err(TaskState::Working | TaskState::Success)
        ) {
            violation(
                trace,
                format_args!("{}: a launch answered {launched:?}", P::NAME),
            );
        }
    }
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::Success {
        violation(
            trace,
            format_args!("{}: after every launch, the id reads {last:?}", P::NAME),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 2: launch ‖ finish ‖ query
// ---------------------------------------------------------------------------

/// One thread launches a task ending with `output` (launch and finish are two
/// steps, with the task between them) while an observer queries twice.
/// - The observer's reads follow NotFound → Working → the final state: never
///   back to `NotFound`, and only `Success` once `Success` was read.
/// - Once the launch is accepted (inside the task, and after it returned),
///   no query reads `NotFound`.
pub(super) fn launch_finish_query<P: Protocol + Default>(trace: &Trace, output: Result<(), ()>) {
    let protocol = P::default();
    let observer = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || [0, 1].map(|_| query(&protocol, &trace, "O", ID)))
    };
    let accepted_read = Arc::new(std::sync::Mutex::new(None));
    let launched = {
        let (protocol_in_task, trace_in_task) = (protocol.clone(), trace.clone());
        let accepted_read = accepted_read.clone();
        launch(&protocol, trace, "L", ID, async move {
            let read = query(&protocol_in_task, &trace_in_task, "L (task)", ID);
            *accepted_read.lock().unwrap() = Some(read);
            output
        })
    };
    let after_return = query(&protocol, trace, "L", ID);
    let reads = observer.join().unwrap();

    let name = P::NAME;
    let last = state_after(output);
    check_reads_follow(
        trace,
        name,
        &reads,
        &[TaskState::NotFound, TaskState::Working, last],
    );
    if launched != Ok(output) {
        violation(
            trace,
            format_args!("{name}: the only launch answered {launched:?}"),
        );
    }
    let in_task = accepted_read.lock().unwrap().take();
    if in_task != Some(TaskState::Working) {
        violation(
            trace,
            format_args!("{name}: the accepted launch's task read {in_task:?}, not Working"),
        );
    }
    if after_return != last {
        violation(
            trace,
            format_args!("{name}: after the launch returned, the id reads {after_return:?}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 3: redundant launch on a Success id ‖ query
// ---------------------------------------------------------------------------

/// A launch on an id that already succeeded, while an observer queries: the
/// launch is refused with `Success` and every read, then and forever, is
/// `Success`.
pub(super) fn redundant_launch<P: Protocol + Default>(trace: &Trace) {
    let protocol = succeeded::<P>(trace);
    let name = P::NAME;
    let redundant = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || launch(&protocol, &trace, "L", ID, async { Ok(()) }))
    };
    let reads = [0, 1].map(|_| query(&protocol, trace, "O", ID));
    let redundant = redundant.join().unwrap();

    // First the state once nothing runs any more: no later step can change it.
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::Success {
        violation(
            trace,
            format_args!(
                "{name}: the id reads {last:?} forever after it succeeded: \
                 every operation has returned"
            ),
        );
    }
    if redundant != Err(TaskState::Success) {
        violation(
            trace,
            format_args!("{name}: a launch on a Success id answered {redundant:?}"),
        );
    }
    if let Some(read) = reads.iter().find(|&&read| read != TaskState::Success) {
        violation(
            trace,
            format_args!("{name}: the id read {read:?} after it succeeded"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 4: an abandoned launch ‖ a retrying launch
// ---------------------------------------------------------------------------

/// How the first launch's task ends without returning.
#[derive(Clone, Copy, Debug)]
pub(super) enum Abandon {
    /// The launch future is polled once, its task pending, and dropped.
    Cancel,
    /// The task panics; the panic is caught around the launch.
    Panic,
}

/// One launch is abandoned (`how`) while another thread launches the same id
/// and, refused with `Working`, waits and retries. The abandoned attempt
/// ends `Failed` through the drop guard, so the retry is accepted and the id
/// ends `Success`: never wedged in `Working`.
pub(super) fn abandoned_launch_and_retry<P: Protocol + Default>(trace: &Trace, how: Abandon) {
    let protocol = P::default();
    let name = P::NAME;
    let retrier = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        thread::spawn(move || {
            // Two attempts always suffice: one abandoned launch can hold the
            // id only once. The third catches a wedge without looping forever.
            for _ in 0..3 {
                match launch(&protocol, &trace, "R", ID, async { Ok(()) }) {
                    Ok(Ok(())) => return,
                    Err(TaskState::Working) => {
                        wait(&protocol, &trace, "R", ID);
                    }
                    other => violation(
                        &trace,
                        format_args!("{name}: a retrying launch answered {other:?}"),
                    ),
                }
            }
            violation(
                &trace,
                format_args!("{name}: a retrying launch was refused three times"),
            );
        })
    };
    match how {
        Abandon::Cancel => {
            let mut launching = owned_launch(&protocol, ID, std::future::pending());
            match poll_once(launching.as_mut()) {
                Poll::Pending => trace.note("A", "launch accepted, task pending; dropped"),
                Poll::Ready(refused) => trace.note("A", format_args!("launch -> {refused:?}")),
            }
            drop(launching);
        }
        Abandon::Panic => {
            // The expected panics of every interleaving stay off stderr.
            quiet_task_panics();
            let launched = catch_unwind(AssertUnwindSafe(|| {
                block_on(protocol.launch_block(ID, async { task_panic() }))
            }));
            match launched {
                Ok(refused) => trace.note("A", format_args!("launch -> {refused:?}")),
                Err(payload) if payload.is::<TaskPanic>() => {
                    trace.note("A", "launch accepted, task panicked")
                }
                Err(payload) => resume_unwind(payload),
            }
        }
    }
    retrier.join().unwrap();
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::Success {
        violation(
            trace,
            format_args!(
                "{name}: after an abandoned launch ({how:?}) and a retry, the id reads {last:?}"
            ),
        );
    }
}
