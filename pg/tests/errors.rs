//! Errors say why, and what the database returns never panics the client:
//! a statement the server refuses is reported with the server's reason and
//! its SQLSTATE, and a table whose rows this crate cannot read is an error
//! value naming the column, not a panic.

mod common;

use async_tasks_recorder_pg::{Error, PgRecorder};
use common::{cluster, connect_to, recorder, settings, table, within};
use std::error::Error as _;
use std::time::Duration;

/// A recorder on table `name`, not installed: the tests make what the
/// table's names already hold themselves.
fn uninstalled(name: &str) -> PgRecorder<i64> {
    PgRecorder::new(
        cluster().config("postgres"),
        name,
        settings(Duration::from_secs(30)),
    )
    .expect("a recorder")
}

/// A key the server refuses: PostgreSQL's text cannot hold a NUL byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_statement_shows_the_server_reason_and_its_sqlstate() {
    let recorder = recorder::<String>("nul", settings(Duration::from_secs(30))).await;
    let claimed = within(
        30,
        "a claim of a key with a NUL byte",
        recorder.claim("a\0b".into()),
    )
    .await;
    let Err(error) = claimed else {
        panic!("the server took a NUL byte in text");
    };
    let shown = error.to_string();
    assert!(shown.contains("22021"), "no SQLSTATE in {shown:?}");
    assert!(shown.contains("0x00"), "no server message in {shown:?}");
    assert!(
        error.source().is_some(),
        "the client error is kept as the source"
    );
    assert!(
        !error.is_in_doubt(),
        "a statement the server refused with an ERROR rolled back: {shown}"
    );
}

/// A table of the recorder's name whose `state` column is text: every
/// read of a row is an error naming the column, never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_of_other_column_types_is_an_error_not_a_panic() {
    let name = table("foreign");
    let client = connect_to(&cluster().config("postgres")).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, state text NOT NULL,
               epoch bigint NOT NULL, fence bigint NOT NULL, success_fence bigint,
               lease_until timestamptz);
             INSERT INTO {name} VALUES (1, 'working', 0, 1, NULL, NULL);"
        ))
        .await
        .expect("the foreign table");
    let recorder = uninstalled(&name);
    let read = tokio::spawn(async move {
        let query = recorder.query(&1).await;
        let wait = recorder.wait(&1).await;
        (query, wait)
    });
    let (query, wait) = within(30, "reads of a foreign row", read)
        .await
        .expect("reading a foreign row does not panic");
    for (call, answer) in [("query", query), ("wait", wait)] {
        match answer {
            Err(
                error @ Error::Column {
                    column: "state", ..
                },
            ) => {
                let shown = error.to_string();
                assert!(shown.contains("column state"), "{call}: {shown:?}");
            }
            other => panic!("{call} of a foreign row answered {other:?}"),
        }
    }
}

/// Replicas start together and each installs the table: the installs of
/// one table are serialised, so none fails on the catalog's race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_replicas_install_one_table_at_once() {
    for _ in 0..5 {
        let name = table("together");
        let installs: Vec<_> = (0..6)
            .map(|_| {
                let recorder = uninstalled(&name);
                tokio::spawn(async move { recorder.install().await })
            })
            .collect();
        for install in installs {
            let installed = within(30, "an install", install).await.expect("no panic");
            if let Err(error) = installed {
                panic!("an install of {name} beside five others failed: {error}");
            }
        }
    }
}

/// Fences rise only if the sequence hands out one value at a time: an
/// existing fence sequence that caches values is refused at install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_sequence_that_caches_values_is_refused() {
    let name = table("cached");
    let client = connect_to(&cluster().config("postgres")).await;
    client
        .batch_execute(&format!("CREATE SEQUENCE \"{name}$fence\" CACHE 20"))
        .await
        .expect("a caching sequence");
    let recorder = uninstalled(&name);
    match within(30, "the install", recorder.install()).await {
        Err(error @ Error::Schema(_)) => {
            let shown = error.to_string();
            assert!(shown.contains(&format!("{name}$fence")), "{shown}");
            assert!(shown.contains("20"), "{shown}");
        }
        other => panic!("an install over a caching fence sequence answered {other:?}"),
    }
}

/// The statements' guards are argued under READ COMMITTED (P10): a
/// connection whose default is SERIALIZABLE still runs them so, and a
/// contended claim is answered, never refused with a serialization error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_claims_under_a_serializable_default_get_answers() {
    let mut config = cluster().config("postgres");
    config.options("-c default_transaction_isolation=serializable");
    let recorder =
        PgRecorder::<i64>::new(config, &table("serial"), settings(Duration::from_secs(30)))
            .expect("a recorder");
    recorder.install().await.expect("the table");
    for id in 0..20 {
        let claims: Vec<_> = (0..8)
            .map(|_| {
                let recorder = recorder.clone();
                tokio::spawn(async move { recorder.claim(id).await })
            })
            .collect();
        // Attempts are held to the end of the round: a dropped one settles
        // `Failed`, which a later claim may take.
        let mut held = Vec::new();
        for claim in claims {
            match within(30, "a contended claim", claim)
                .await
                .expect("no panic")
            {
                Ok(Ok(attempt)) => held.push(attempt),
                Ok(Err(_refused)) => {}
                Err(error) => panic!("a contended claim of {id} failed: {error}"),
            }
        }
        let granted = held.len();
        assert_eq!(granted, 1, "id {id}");
    }
}
