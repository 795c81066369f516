//! The protocols in `tests/common/protocols.rs` and the mutants of
//! `tests/common/mutants.rs` behave as their documentation says on
//! sequential runs: the real recorder and the mutants agree on the simple
//! paths, and the 2.0.2 wedges show up even without concurrency.

#[path = "common/mutants.rs"]
mod mutants;
#[path = "common/protocols.rs"]
mod protocols;

use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::RevokeRefusal;
use async_tasks_recorder_harness::bounded::within;
use mutants::{FailedRevokeRemoves, Faithful, LostWakeup, SplitLaunch};
use protocols::{AllSet202, Protocol, ThreeSets, recorder};

async fn ok() -> Result<(), ()> {
    Ok(())
}

async fn err() -> Result<(), ()> {
    Err(())
}

async fn launch_fail_retry<P: Protocol>(protocol: P) {
    assert_eq!(protocol.query(1), TaskState::NotFound, "{}", P::NAME);
    assert_eq!(protocol.launch_block(1, err()).await, Ok(Err(())));
    assert_eq!(protocol.query(1), TaskState::Failed);
    assert_eq!(within(1, protocol.wait(1)).await, TaskState::Failed);
    assert_eq!(protocol.list(TaskState::Failed), vec![1]);
    assert_eq!(protocol.launch_block(1, ok()).await, Ok(Ok(())));
    assert_eq!(protocol.query(1), TaskState::Success);
    assert_eq!(protocol.list(TaskState::Success), vec![1]);
}

#[tokio::test]
async fn every_protocol_runs_a_sequential_launch_fail_retry() {
    launch_fail_retry(recorder()).await;
    launch_fail_retry(ThreeSets::default()).await;
    launch_fail_retry(AllSet202::default()).await;
    launch_fail_retry(Faithful::default()).await;
    launch_fail_retry(SplitLaunch::default()).await;
    launch_fail_retry(LostWakeup::default()).await;
    launch_fail_retry(FailedRevokeRemoves::default()).await;
}

async fn refused_launch_then_revoke<P: Protocol>(
    protocol: &P,
) -> (TaskState, Result<Result<(), ()>, RevokeRefusal>) {
    protocol.launch_block(1, ok()).await.unwrap().unwrap();
    assert_eq!(
        protocol.launch_block(1, ok()).await,
        Err(TaskState::Success)
    );
    (protocol.query(1), protocol.revoke_block(1, ok()).await)
}

#[tokio::test]
async fn the_published_202_wedges_after_a_refused_launch_and_ours_does_not() {
    assert_eq!(
        refused_launch_then_revoke(&recorder()).await,
        (TaskState::Success, Ok(Ok(())))
    );
    assert_eq!(
        refused_launch_then_revoke(&Faithful::default()).await,
        (TaskState::Success, Ok(Ok(())))
    );
    let published = AllSet202::default();
    let (state, _) = refused_launch_then_revoke(&published).await;
    assert_eq!(
        state,
        TaskState::Working,
        "2.0.2 reads Working after success"
    );
    assert_eq!(published.list(TaskState::Working), vec![1]);
}

#[tokio::test]
async fn the_published_202_wedges_revoke_after_a_refused_revoke() {
    let published = AllSet202::default();
    assert_eq!(
        published.revoke_block(1, ok()).await,
        Err(RevokeRefusal::NotSuccess)
    );
    published.launch_block(1, ok()).await.unwrap().unwrap();
    assert_eq!(
        published.revoke_block(1, ok()).await,
        Err(RevokeRefusal::Revoking)
    );

    let ours = recorder();
    assert_eq!(
        ours.revoke_block(1, ok()).await,
        Err(RevokeRefusal::NotSuccess)
    );
    Protocol::launch_block(&ours, 1, ok())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ours.revoke_block(1, ok()).await, Ok(Ok(())));
    assert_eq!(ours.query(1), TaskState::NotFound);
}

#[tokio::test]
async fn the_failed_revoke_removal_mutant_forgets_a_success_and_the_base_does_not() {
    async fn failed_revoke_then_read<P: Protocol>(protocol: &P) -> (TaskState, Vec<u32>) {
        protocol.launch_block(1, ok()).await.unwrap().unwrap();
        assert_eq!(protocol.revoke_block(1, err()).await, Ok(Err(())));
        (protocol.query(1), protocol.list(TaskState::Success))
    }
    assert_eq!(
        failed_revoke_then_read(&Faithful::default()).await,
        (TaskState::Success, vec![1])
    );
    assert_eq!(
        failed_revoke_then_read(&FailedRevokeRemoves::default()).await,
        (TaskState::NotFound, Vec::<u32>::new())
    );
}
