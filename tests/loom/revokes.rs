//! Loom models of revokes: a revoke against a launch and a query (model 5),
//! two revokes of one id (5), and a revoke against a listing of `Success` (8).

use super::calls::{ID, check_reads_follow, flag, launch, query, revoke, succeeded};
use super::loom_harness::{Trace, violation};
use super::protocols::Protocol;
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::RevokeRefusal;
use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use loom::thread;

// ---------------------------------------------------------------------------
// Model 5: revoke ‖ launch ‖ query, and revoke ‖ revoke
// ---------------------------------------------------------------------------

/// Where model 5's launch runs.
#[derive(Clone, Copy, Debug)]
pub(super) enum Launcher {
    /// In a thread of its own, beside the revoker and the observer.
    OwnThread,
    /// In the observer's thread, between its two queries.
    Observer,
}

/// A succeeded id is revoked while another thread launches it and an
/// observer queries.
/// - The revoke, the only one, is accepted.
/// - The launch is refused with `Success` unless it comes after the revoke
///   completed; an accepted launch's task runs only after the revoke's
///   compensation ran: one success per epoch.
/// - Reads follow Success → NotFound → Working → Success.
pub(super) fn revoke_launch_query<P: Protocol + Default>(trace: &Trace, launcher: Launcher) {
    let protocol = succeeded::<P>(trace);
    let name = P::NAME;
    let compensated = Arc::new(AtomicBool::new(false));
    let revoker = {
        let (protocol, trace, compensated) = (protocol.clone(), trace.clone(), compensated.clone());
        thread::spawn(move || {
            revoke(&protocol, &trace, "V", ID, async move {
                compensated.store(true, Release);
                Ok(())
            })
        })
    };
    let early_success = Arc::new(AtomicBool::new(false));
    let launch_once = {
        let (protocol, trace) = (protocol.clone(), trace.clone());
        let (compensated, early_success) = (compensated.clone(), early_success.clone());
        move || {
            launch(&protocol, &trace, "L", ID, async move {
                if !compensated.load(Acquire) {
                    early_success.store(true, Release);
                }
                Ok(())
            })
        }
    };
    let (reads, launched) = match launcher {
        Launcher::OwnThread => {
            let launching = thread::spawn(launch_once);
            let reads = [0, 1].map(|_| query(&protocol, trace, "O", ID));
            (reads, launching.join().unwrap())
        }
        Launcher::Observer => {
            let before = query(&protocol, trace, "O", ID);
            let launched = launch_once();
            ([before, query(&protocol, trace, "O", ID)], launched)
        }
    };
    let revoked = revoker.join().unwrap();

    if revoked != Ok(Ok(())) {
        violation(
            trace,
            format_args!("{name}: the only revoke of a Success id answered {revoked:?}"),
        );
    }
    if !matches!(launched, Ok(Ok(())) | Err(TaskState::Success)) {
        violation(
            trace,
            format_args!("{name}: a launch during a revoke answered {launched:?}, not Success"),
        );
    }
    if early_success.load(Acquire) {
        violation(
            trace,
            format_args!(
                "{name}: a launch ran its task before the revoke's compensation: \
                 two successes in one epoch"
            ),
        );
    }
    check_reads_follow(
        trace,
        name,
        &reads,
        &[
            TaskState::Success,
            TaskState::NotFound,
            TaskState::Working,
            TaskState::Success,
        ],
    );
    let expected = if launched.is_ok() {
        TaskState::Success
    } else {
        TaskState::NotFound
    };
    let last = query(&protocol, trace, "main", ID);
    if last != expected {
        violation(
            trace,
            format_args!(
                "{name}: the id ends {last:?} after revoke {revoked:?}, launch {launched:?}"
            ),
        );
    }
}

/// Two threads revoke one succeeded id: exactly one revoke wins and runs its
/// compensation; the other is refused; the id ends `NotFound`.
pub(super) fn concurrent_revokes<P: Protocol + Default>(trace: &Trace) {
    let protocol = succeeded::<P>(trace);
    let name = P::NAME;
    let compensations = Arc::new(AtomicUsize::new(0));
    let counted_revoke =
        |protocol: &P, trace: &Trace, thread: &str, compensations: Arc<AtomicUsize>| {
            revoke(protocol, trace, thread, ID, async move {
                compensations.fetch_add(1, AcqRel);
                Ok(())
            })
        };
    let other = {
        let (protocol, trace, compensations) =
            (protocol.clone(), trace.clone(), compensations.clone());
        thread::spawn(move || counted_revoke(&protocol, &trace, "V1", compensations))
    };
    let results = [
        counted_revoke(&protocol, trace, "V0", compensations.clone()),
        other.join().unwrap(),
    ];

    let winners = results
        .iter()
        .filter(|&&revoked| revoked == Ok(Ok(())))
        .count();
    let ran = compensations.load(Acquire);
    if winners != 1 || ran != 1 {
        violation(
            trace,
            format_args!("{name}: {winners} of 2 revokes won and {ran} compensations ran"),
        );
    }
    if let Some(refused) = results.iter().find(|revoked| {
        !matches!(
            revoked,
            Ok(Ok(())) | Err(RevokeRefusal::Revoking | RevokeRefusal::NotSuccess)
        )
    }) {
        violation(
            trace,
            format_args!("{name}: a losing revoke answered {refused:?}"),
        );
    }
    let last = query(&protocol, trace, "main", ID);
    if last != TaskState::NotFound {
        violation(
            trace,
            format_args!("{name}: after a revoke won, the id reads {last:?}"),
        );
    }
}

// ---------------------------------------------------------------------------
// Model 8: revoke ‖ listing
// ---------------------------------------------------------------------------

/// A succeeded id is revoked, with a compensation that ends with
/// `compensation`, while the main thread lists `Success`.
/// - If the revoke succeeds: a listing that begins after the revoke completed
///   must not show the id; one during the revoke may. Once the revoke
///   returned, the id reads `NotFound` and no listing shows it.
/// - If the compensation fails, the id reads `Success` throughout
///   (`Revoking` reads `Success`), so every listing shows it, and it ends
///   `Success`.
pub(super) fn listing_during_a_revoke<P: Protocol + Default>(
    trace: &Trace,
    compensation: Result<(), ()>,
) {
    let protocol = succeeded::<P>(trace);
    let name = P::NAME;
    let revoked = flag();
    let revoker = {
        let (protocol, trace, revoked) = (protocol.clone(), trace.clone(), revoked.clone());
        thread::spawn(move || {
            let answer = revoke(&protocol, &trace, "V", ID, async move { compensation });
            revoked.store(true, Release);
            answer
        })
    };
    let check = |when: &str| {
        let completed = revoked.load(Acquire);
        let listed = protocol.list(TaskState::Success);
        trace.note("main", format_args!("list Success ({when}) -> {listed:?}"));
        if compensation.is_ok() && completed && listed.contains(&ID) {
            violation(
                trace,
                format_args!(
                    "{name}: after the revoke completed, a listing of Success shows id {ID}"
                ),
            );
        }
        if compensation.is_err() && !listed.contains(&ID) {
            violation(
                trace,
                format_args!(
                    "{name}: the revoke failed, yet a listing of Success ({when}) misses id {ID}"
                ),
            );
        }
        if listed.iter().any(|&id| id != ID) {
            violation(
                trace,
                format_args!("{name}: a listing of Success shows {listed:?}"),
            );
        }
    };
    check("during the revoke");
    let answer = revoker.join().unwrap();
    if answer != Ok(compensation) {
        violation(
            trace,
            format_args!("{name}: the only revoke of a Success id answered {answer:?}"),
        );
    }
    check("after the revoke");
    let last = query(&protocol, trace, "main", ID);
    let expected = if compensation.is_ok() {
        TaskState::NotFound
    } else {
        TaskState::Success
    };
    if last != expected {
        violation(
            trace,
            format_args!("{name}: after the revoke, the id reads {last:?}"),
        );
    }
}
