//! Listings in pages and counts per state: what the server does with them
//! (the `(state, id)` index, no scan of the table), and text ids. The walk
//! while ids come and go is the shared check, in `harness.rs`.

mod common;

use async_tasks_recorder_pg::{Outcome, Phase, Statements, TaskState, state_code};
use common::{cluster, connect_to, recorder_on, settings, table, within};
use std::time::Duration;

/// The plan of `sql` with `params` (SQL literals), custom and generic: a
/// prepared statement is planned once for its parameters, and after five
/// runs may keep a plan made for none.
async fn plans(sql: &str, types: &str, params: &str) -> [String; 2] {
    let client = connect_to(&cluster().config("postgres")).await;
    let mut plans = Vec::new();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        let text = client
            .simple_query(&format!(
                "SET plan_cache_mode = {mode}; DEALLOCATE ALL; \
                 PREPARE planned ({types}) AS {sql}; EXPLAIN EXECUTE planned ({params})"
            ))
            .await
            .unwrap();
        let plan: Vec<String> = text
            .iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .collect();
        plans.push(plan.join("\n"));
    }
    plans.try_into().unwrap()
}

/// A count of one state reads only the index (an index-only scan of its
/// state's entries), and a page reads the index from its cursor on: no
/// plan, custom or generic, scans the table. (The count failed before: one
/// `GROUP BY state` over every row, a sequential scan.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_and_a_page_read_the_state_index_not_the_table() {
    let name = table("indexed");
    let _recorder = recorder_on::<i64>(&name, settings(Duration::from_secs(30))).await;
    let (failed, success, revoking) = (
        state_code(Phase::Failed),
        state_code(Phase::Success),
        state_code(Phase::Revoking),
    );
    cluster()
        .psql(
            "postgres",
            &format!(
                "INSERT INTO {name} (id, state, epoch, fence, success_fence)
                 SELECT g, CASE WHEN g % 1000 = 0 THEN {failed} ELSE {success} END, 0, g, g
                 FROM generate_series(1, 20000) g"
            ),
        )
        .unwrap();
    cluster()
        .psql("postgres", &format!("VACUUM ANALYZE {name}"))
        .unwrap();
    let sql = Statements::new(&name, "bigint");
    let counted = plans(&sql.count, "smallint, smallint", &format!("{failed}, NULL")).await;
    for plan in &counted {
        assert!(plan.contains("Index Only Scan"), "count:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "count:\n{plan}");
    }
    let paged = plans(
        &sql.page_after,
        "smallint, smallint, bigint, bigint",
        &format!("{success}, {revoking}, 1000, 5000"),
    )
    .await;
    for plan in &paged {
        assert!(plan.contains("Index"), "page:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "page:\n{plan}");
    }
}

/// Text ids page in the column's order, each once, and `Success` counts
/// its revoking ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_ids_page_in_order_and_counts_match() {
    within(60, "pages of text ids", async {
        let name = table("texts");
        let recorder = recorder_on::<String>(&name, settings(Duration::from_secs(30))).await;
        let mut ids: Vec<String> = (0..25).map(|n| format!("upload-{n:02}")).collect();
        ids.reverse();
        for id in &ids {
            let attempt = recorder.claim(id.clone()).await.unwrap().unwrap();
            attempt.finish(Outcome::Ok).await.unwrap();
        }
        let revoking = recorder
            .revoke_begin("upload-07".to_owned())
            .await
            .unwrap()
            .unwrap();
        let mut walked = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..=25 / 4 + 1 {
            let page = recorder
                .list_page(TaskState::Success, after.as_ref(), 4)
                .await
                .unwrap();
            walked.extend(page.ids);
            after = page.next;
            if after.is_none() {
                break;
            }
        }
        assert_eq!(after, None, "the walk of 25 ids did not end");
        ids.sort();
        assert_eq!(walked, ids);
        assert_eq!(recorder.count(TaskState::Success).await.unwrap(), 25);
        assert_eq!(recorder.count(TaskState::Failed).await.unwrap(), 0);
        drop(revoking);
    })
    .await
}
