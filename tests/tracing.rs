//! With the `tracing` feature, every transition of the recorder is a
//! `step` span naming the operation and the spec's answer, and every read
//! a span of its own, nested in the caller's span (which carries the id:
//! the recorder asks no `Debug` of its keys).
#![cfg(feature = "tracing")]

use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing::Instrument;
use tracing_subscriber::fmt::format::FmtSpan;

/// Where the subscriber writes: a buffer the test reads afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_operation_logs_its_step_and_answer_inside_the_callers_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(
            async {
                let recorder = AsyncTasksRecorder::new();
                let ok = async { Ok::<_, ()>(()) };
                assert!(recorder.launch_block("p-1", ok).await.is_ok());
                let again = recorder.launch_block("p-1", async { Ok::<_, ()>(()) });
                assert!(again.await.is_err());
                assert_eq!(recorder.query_task_state("p-1").await, TaskState::Success);
                let refund = async { Ok::<_, ()>(()) };
                assert!(recorder.revoke_task_block("p-1", refund).await.is_ok());
                assert_eq!(recorder.wait("p-1").await, TaskState::NotFound);
                assert!(recorder.list_tasks(TaskState::Failed).is_empty());
                assert_eq!(recorder.count_tasks(TaskState::Success), 0);
            }
            .instrument(tracing::info_span!("payment", id = "p-1")),
        )
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "payment{id=\"p-1\"}:step{op=Launch}: async_tasks_recorder::table: return=Accepted",
        "payment{id=\"p-1\"}:step{op=Finish(Ok)}: async_tasks_recorder::table: close",
        "payment{id=\"p-1\"}:step{op=Launch}: async_tasks_recorder::table: return=LaunchRefused(Success)",
        "payment{id=\"p-1\"}:query: async_tasks_recorder::recorder: return=Success",
        "payment{id=\"p-1\"}:step{op=BeginRevoke}: async_tasks_recorder::table: return=Accepted",
        "payment{id=\"p-1\"}:step{op=FinishRevoke(Ok)}: async_tasks_recorder::table: close",
        "payment{id=\"p-1\"}:wait: async_tasks_recorder::recorder: return=NotFound",
        "payment{id=\"p-1\"}:list{state=Failed}: async_tasks_recorder::recorder: close",
        "payment{id=\"p-1\"}:count{state=Success}: async_tasks_recorder::recorder: return=0",
    ] {
        assert!(
            text.contains(expected),
            "no line has {expected:?} in:\n{text}"
        );
    }
}
