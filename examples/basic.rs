//! An upload service keyed by each file's md5: launch the uploads, poll
//! their state as a client would, retry the failed ones, and revoke one
//! upload with a compensating delete.
//!
//! Run with `cargo run --release --example basic`.

use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, TaskState};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A flaky object store: the first upload of some files fails.
#[derive(Clone, Default)]
struct Store {
    stored: Arc<Mutex<HashSet<String>>>,
    attempts: Arc<Mutex<Vec<String>>>,
}

impl Store {
    async fn upload(self, md5: String) -> Result<usize, String> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let first_try = {
            let mut attempts = self.attempts.lock().unwrap();
            let first = !attempts.contains(&md5);
            attempts.push(md5.clone());
            first
        };
        if first_try && md5.ends_with('7') {
            return Err(format!("{md5}: connection reset"));
        }
        self.stored.lock().unwrap().insert(md5.clone());
        Ok(md5.len())
    }

    async fn delete(self, md5: String) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if self.stored.lock().unwrap().remove(&md5) {
            Ok(())
        } else {
            Err(format!("{md5}: not stored"))
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let recorder: AsyncTasksRecorder<String> = AsyncTasksRecorder::new();
    let store = Store::default();
    let files: Vec<String> = (0..8)
        .map(|i| format!("d41d8cd98f00b204e980099{i}"))
        .collect();

    // 1. Launch one upload per md5. A second launch of a running upload is refused.
    for md5 in &files {
        let upload = store.clone().upload(md5.clone());
        recorder.launch(md5.clone(), upload).await.ok();
    }
    let duplicate = recorder
        .launch(files[0].clone(), store.clone().upload(files[0].clone()))
        .await;
    if let Err((state, _unrun)) = duplicate {
        println!("duplicate upload of {} refused: it is {state:?}", files[0]);
    }

    // 2. A client polls: state by state, then waits for the end without polling.
    println!(
        "{} now: {:?}",
        files[1],
        recorder.query_task_state(&files[1]).await
    );
    for md5 in &files {
        recorder.wait(md5).await;
    }
    let counts = recorder.state_counts();
    println!(
        "after the first round: {} succeeded, {} failed",
        counts.success, counts.failed
    );

    // 3. Retry every failed upload; a failed id may be launched again.
    let failed = recorder.list_tasks(TaskState::Failed);
    println!("retrying {failed:?}");
    for md5 in failed {
        let retry = store.clone().upload(md5.clone());
        match recorder.launch_block(md5.clone(), retry).await {
            Ok(Ok(bytes)) => println!("{md5}: uploaded {bytes} bytes on retry"),
            Ok(Err(error)) => println!("{md5}: failed again: {error}"),
            Err((state, _)) => println!("{md5}: retry refused, {state:?}"),
        }
    }
    assert!(recorder.list_tasks(TaskState::Failed).is_empty());

    // 4. A succeeded id succeeds at most once: launching it again is refused.
    let again = recorder
        .launch(files[2].clone(), store.clone().upload(files[2].clone()))
        .await;
    assert!(matches!(again, Err((TaskState::Success, _))));

    // 5. Revoke one upload with a compensating delete; the id is NotFound again.
    let target = files[3].clone();
    match recorder
        .revoke_task_block(target.clone(), store.clone().delete(target.clone()))
        .await
    {
        Ok(()) => println!("{target}: revoked"),
        Err(RevokeFailReason::RevokeTaskError(error)) => println!("revoke failed: {error}"),
        Err(_) => println!("{target}: not revocable now"),
    }
    println!(
        "{target} now: {:?}",
        recorder.query_task_state(&target).await
    );
    assert_eq!(
        recorder.query_task_state(&target).await,
        TaskState::NotFound
    );

    let counts = recorder.state_counts();
    println!(
        "final: {} succeeded, {} failed, {} working, {} stored",
        counts.success,
        counts.failed,
        counts.working,
        store.stored.lock().unwrap().len()
    );
}
