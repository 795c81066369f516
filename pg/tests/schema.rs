//! The schema `install` makes and the names it makes it under: any name the
//! table-name check admits works, reserved words included, and no table's
//! name can be another table's derived object.

mod common;

use async_tasks_recorder_pg::{Error, Finish, Outcome, PgRecorder, Phase, TaskState, state_code};
use common::{cluster, connect_to, settings, table, within};
use std::time::Duration;
use tokio_postgres::Client;

/// A fresh schema of its own, so that a test can use fixed table names
/// (`user`, `order`) without meeting another test's.
async fn fresh_schema(admin: &Client, prefix: &str) -> String {
    let schema = table(prefix);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("a schema");
    schema
}

/// The cluster's superuser, its tables found in `schema` first.
fn config_in(schema: &str) -> tokio_postgres::Config {
    let mut config = cluster().config("postgres");
    config.options(format!("-c search_path={schema}"));
    config
}

/// A recorder on `name`, connecting as `config` says, not installed.
fn recorder_on(config: tokio_postgres::Config, name: &str) -> PgRecorder<i64> {
    PgRecorder::new(config, name, settings(Duration::from_secs(30))).expect("a recorder")
}

/// Every call a replica makes, on a fresh installed table `name` in
/// `schema`: claim and finish both ways, read, list, count, sweep, revoke.
/// `admin` writes the lapsed row the sweep expires.
async fn exercise(recorder: &PgRecorder<i64>, admin: &Client, schema: &str, name: &str) {
    let on = format!("{schema}.{name}");
    let attempt = within(30, "a claim", recorder.claim(1))
        .await
        .unwrap_or_else(|e| panic!("{on}: claim: {e}"))
        .unwrap_or_else(|refused| panic!("{on}: claim refused: {refused:?}"));
    let fence = attempt.lease().fence();
    let finished = within(30, "a finish", attempt.finish(Outcome::Ok)).await;
    assert_eq!(finished.expect("finish"), Finish::Applied, "{on}");

    let working = within(30, "a claim", recorder.claim(2))
        .await
        .expect("claim")
        .expect("granted");
    assert_eq!(
        within(30, "a list", recorder.list(TaskState::Working))
            .await
            .expect("list"),
        [2],
        "{on}"
    );
    let failed = within(30, "a finish", working.finish(Outcome::Err)).await;
    assert_eq!(failed.expect("finish"), Finish::Applied, "{on}");

    let read = within(30, "a read", recorder.read(&1)).await.expect("read");
    assert_eq!(
        (read.phase, read.success_fence),
        (Phase::Success, Some(fence)),
        "{on}"
    );
    assert_eq!(
        within(30, "a list", recorder.list(TaskState::Success))
            .await
            .expect("list"),
        [1],
        "{on}"
    );

    // A holder that died: its lease ran out a second ago.
    admin
        .batch_execute(&format!(
            "INSERT INTO {schema}.\"{name}\" (id, state, epoch, fence, lease_until)
             VALUES (3, {working}, 0, 1000000, clock_timestamp() - interval '1 second')",
            working = state_code(Phase::Working),
        ))
        .await
        .expect("a lapsed row");
    let swept = within(30, "a sweep", recorder.sweep(10))
        .await
        .expect("sweep");
    assert_eq!(swept, [(3, TaskState::Failed)], "{on}");
    assert_eq!(
        within(30, "a count", recorder.count(TaskState::Failed))
            .await
            .expect("count"),
        2,
        "{on}"
    );

    let (undone, revoked) = within(
        30,
        "a revoke",
        recorder.revoke(1, |_lease| async { Ok::<(), ()>(()) }),
    )
    .await
    .unwrap_or_else(|refused| panic!("{on}: revoke: {refused}"));
    assert_eq!(
        (undone, revoked.expect("revoke end")),
        (Ok(()), Finish::Applied)
    );
    let read = within(30, "a read", recorder.read(&1)).await.expect("read");
    assert_eq!((read.phase, read.epoch), (Phase::NotFound, 1), "{on}");
    assert_eq!(
        within(30, "a count", recorder.count(TaskState::Success))
            .await
            .expect("count"),
        0,
        "{on}"
    );
}

/// Reserved words pass the table-name check, so they must work as names:
/// every identifier a statement splices in is quoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_named_by_reserved_words_install_and_work() {
    let admin = connect_to(&cluster().config("postgres")).await;
    let schema = fresh_schema(&admin, "reserved").await;
    for name in ["user", "order"] {
        let recorder = recorder_on(config_in(&schema), name);
        within(30, "the install", recorder.install())
            .await
            .unwrap_or_else(|e| panic!("install of {name}: {e}"));
        exercise(&recorder, &admin, &schema, name).await;
    }
}

/// A table whose name is another table's name plus a derived object's
/// suffix (`a_fence`, `a_by_state`, `a_leased`, `a_pkey`) installs and
/// works beside it, whichever is installed first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_named_like_another_tables_derived_objects_works_beside_it() {
    let admin = connect_to(&cluster().config("postgres")).await;
    for base_first in [true, false] {
        let schema = fresh_schema(&admin, "beside").await;
        let base = "a".to_owned();
        let mut names: Vec<String> = ["fence", "by_state", "leased", "pkey"]
            .iter()
            .map(|suffix| format!("{base}_{suffix}"))
            .collect();
        if base_first {
            names.insert(0, base);
        } else {
            names.push(base);
        }
        let recorders: Vec<_> = names
            .iter()
            .map(|name| recorder_on(config_in(&schema), name))
            .collect();
        for (name, recorder) in names.iter().zip(&recorders) {
            within(30, "an install", recorder.install())
                .await
                .unwrap_or_else(|e| panic!("install of {name} (base first: {base_first}): {e}"));
        }
        for (name, recorder) in names.iter().zip(&recorders) {
            exercise(recorder, &admin, &schema, name).await;
        }
    }
}

/// What `install` of `name` (in the public schema) answers, as text if it
/// refused the schema; any other answer fails the test.
async fn refused_install(name: &str) -> String {
    let recorder = recorder_on(cluster().config("postgres"), name);
    match within(30, "the install", recorder.install()).await {
        Err(error @ Error::Schema(_)) => error.to_string(),
        other => panic!("the install of {name} answered {other:?}, not a schema refusal"),
    }
}

/// `CREATE TABLE IF NOT EXISTS` keeps a table of that name whatever its
/// columns: install reads them from the catalog and names what differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_state_is_text_is_refused_at_install() {
    let name = table("textstate");
    let admin = connect_to(&cluster().config("postgres")).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE {name} (id bigint PRIMARY KEY, state text NOT NULL,
               epoch bigint NOT NULL, fence bigint NOT NULL, success_fence bigint,
               lease_until timestamptz)"
        ))
        .await
        .expect("the foreign table");
    let shown = refused_install(&name).await;
    assert!(shown.contains("column state is text"), "{shown}");
    assert!(shown.contains("smallint"), "{shown}");
}

/// Every column that differs in name, type or nullability is named, not
/// only the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_that_differs_is_named() {
    let name = table("columns");
    let admin = connect_to(&cluster().config("postgres")).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE {name} (id text PRIMARY KEY, state smallint NOT NULL,
               epoch integer NOT NULL, fence bigint, success_fence bigint NOT NULL,
               note text)"
        ))
        .await
        .expect("the foreign table");
    let shown = refused_install(&name).await;
    for wrong in [
        "column id is text, not bigint",
        "column epoch is integer, not bigint",
        "column fence admits NULL",
        "column success_fence is NOT NULL",
        "no column lease_until",
        "column note",
    ] {
        assert!(shown.contains(wrong), "{wrong:?} not in {shown}");
    }
    assert!(!shown.contains("column state"), "{shown}");
}

/// A derived name taken by an object install did not make there (a table
/// where the fence sequence belongs, an index on another table) is
/// refused, naming the object and what it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrelated_object_under_a_derived_name_is_refused() {
    let admin = connect_to(&cluster().config("postgres")).await;

    let name = table("seqtable");
    admin
        .batch_execute(&format!("CREATE TABLE \"{name}$fence\" (n bigint)"))
        .await
        .expect("a table where the sequence belongs");
    let shown = refused_install(&name).await;
    assert!(
        shown.contains(&format!("\"{name}$fence\" is a table, not a sequence")),
        "{shown}"
    );

    let (name, other) = (table("index"), table("other"));
    admin
        .batch_execute(&format!(
            "CREATE TABLE {other} (state smallint, id bigint);
             CREATE INDEX \"{name}$by_state\" ON {other} (state, id)"
        ))
        .await
        .expect("an index on another table");
    let shown = refused_install(&name).await;
    assert!(
        shown.contains(&format!("index \"{name}$by_state\" is on {other}")),
        "{shown}"
    );
}

/// A fence sequence dropped from beside its table is not made anew: a new
/// one would hand out fences below those the rows hold, and a zombie's
/// fence could then become current again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_fence_sequence_beside_its_table_is_refused_not_made_anew() {
    let name = table("dropped");
    let recorder = recorder_on(cluster().config("postgres"), &name);
    within(30, "the install", recorder.install())
        .await
        .expect("install");
    for id in 0..3 {
        let attempt = within(30, "a claim", recorder.claim(id))
            .await
            .expect("claim")
            .expect("granted");
        within(30, "a finish", attempt.finish(Outcome::Err))
            .await
            .expect("finish");
    }
    let admin = connect_to(&cluster().config("postgres")).await;
    admin
        .batch_execute(&format!("DROP SEQUENCE \"{name}$fence\""))
        .await
        .expect("drop the sequence");
    let shown = refused_install(&name).await;
    assert!(
        shown.contains(&format!("no fence sequence \"{name}$fence\"")),
        "{shown}"
    );
}

/// A role that can log in and holds only `USAGE` on `schema`; its name is
/// fresh. Returns the name and a configuration that connects as it.
async fn limited_role(admin: &Client, schema: &str) -> (String, tokio_postgres::Config) {
    let role = table("role");
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {role}"
        ))
        .await
        .expect("a role");
    let mut config = config_in(schema);
    config.user(&role);
    (role, config)
}

/// The privileges `lib.rs` documents are enough: the superuser installs,
/// then a role with `SELECT, INSERT, UPDATE` on the table and `USAGE` on
/// the fence sequence, and nothing else, installs again (an install of an
/// existing table only reads the catalogs) and makes every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_only_the_run_time_grants_installs_and_makes_every_call() {
    let admin = connect_to(&cluster().config("postgres")).await;
    let schema = fresh_schema(&admin, "granted").await;
    within(
        30,
        "the install",
        recorder_on(config_in(&schema), "tasks").install(),
    )
    .await
    .expect("the superuser's install");
    let (role, config) = limited_role(&admin, &schema).await;
    admin
        .batch_execute(&format!(
            "GRANT SELECT, INSERT, UPDATE ON {schema}.tasks TO {role};
             GRANT USAGE ON SEQUENCE {schema}.\"tasks$fence\" TO {role}"
        ))
        .await
        .expect("the grants");
    let recorder = recorder_on(config, "tasks");
    within(30, "the role's install", recorder.install())
        .await
        .unwrap_or_else(|e| panic!("an install of an existing table by {role}: {e}"));
    exercise(&recorder, &admin, &schema, "tasks").await;
}

/// `answer`, what `call` answered, is the server's permission refusal
/// (SQLSTATE 42501) saying `what` was refused.
fn assert_denied<T>(call: &str, answer: Result<T, Error>, what: &str) {
    match answer {
        Err(error) => {
            let shown = error.to_string();
            assert!(shown.contains("42501"), "{call}: {shown}");
            assert!(shown.contains(what), "{call}: {what:?} not in {shown}");
        }
        Ok(_) => panic!("{call} without the grants succeeded"),
    }
}

/// A role short of a grant gets the server's refusal as an error value
/// with its SQLSTATE, never a panic: no table grants, then `SELECT` alone
/// on the sequence (`nextval` needs `USAGE` or `UPDATE`), then no `CREATE`
/// on the schema for a new table. `UPDATE` on the sequence does for
/// `nextval` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_the_grants_gets_a_permission_error() {
    let admin = connect_to(&cluster().config("postgres")).await;
    let schema = fresh_schema(&admin, "denied").await;
    within(
        30,
        "the install",
        recorder_on(config_in(&schema), "tasks").install(),
    )
    .await
    .expect("the superuser's install");
    let (role, config) = limited_role(&admin, &schema).await;
    let recorder = recorder_on(config.clone(), "tasks");
    within(30, "the role's install", recorder.install())
        .await
        .expect("an install of an existing table reads only the catalogs");

    let claim = within(30, "a claim", recorder.claim(1)).await;
    assert_denied("claim", claim, "permission denied for table tasks");
    let query = within(30, "a query", recorder.query(&1)).await;
    assert_denied("query", query, "permission denied for table tasks");

    admin
        .batch_execute(&format!(
            "GRANT SELECT, INSERT, UPDATE ON {schema}.tasks TO {role};
             GRANT SELECT ON SEQUENCE {schema}.\"tasks$fence\" TO {role}"
        ))
        .await
        .expect("the table grants");
    let claim = within(30, "a claim", recorder.claim(1)).await;
    assert_denied("claim", claim, "permission denied for sequence tasks$fence");

    admin
        .batch_execute(&format!(
            "GRANT UPDATE ON SEQUENCE {schema}.\"tasks$fence\" TO {role}"
        ))
        .await
        .expect("UPDATE on the sequence");
    let attempt = within(30, "a claim", recorder.claim(1))
        .await
        .expect("a claim with UPDATE on the sequence")
        .expect("granted");
    let finished = within(30, "a finish", attempt.finish(Outcome::Ok)).await;
    assert_eq!(finished.expect("finish"), Finish::Applied);

    let install = within(30, "an install", recorder_on(config, "fresh").install()).await;
    assert_denied(
        "install of a new table",
        install,
        &format!("permission denied for schema {schema}"),
    );
}

/// The installed table's comment: where install records the schema version.
async fn comment_of(admin: &Client, name: &str) -> Option<String> {
    admin
        .query_one(
            "SELECT obj_description(to_regclass($1), 'pg_class')",
            &[&format!("\"{name}\"")],
        )
        .await
        .expect("the comment")
        .get(0)
}

/// A table install did not mark with a schema version (made by hand, or
/// by an earlier release) is refused, though its columns and objects are
/// right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_schema_version_is_refused() {
    let name = table("unversioned");
    let recorder = recorder_on(cluster().config("postgres"), &name);
    within(30, "the install", recorder.install())
        .await
        .expect("install");
    let admin = connect_to(&cluster().config("postgres")).await;
    assert_eq!(
        comment_of(&admin, &name).await.as_deref(),
        Some("async_tasks_recorder_pg schema 1")
    );
    admin
        .batch_execute(&format!("COMMENT ON TABLE {name} IS NULL"))
        .await
        .expect("the version removed");
    let shown = refused_install(&name).await;
    assert!(shown.contains("no schema version"), "{shown}");
    assert!(shown.contains("this crate speaks 1"), "{shown}");

    admin
        .batch_execute(&format!("COMMENT ON TABLE {name} IS 'the job queue'"))
        .await
        .expect("another comment");
    let shown = refused_install(&name).await;
    assert!(shown.contains("\"the job queue\""), "{shown}");
    assert!(shown.contains("this crate speaks 1"), "{shown}");
}

/// A table of another schema version is refused, naming both versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_another_schema_version_is_refused() {
    let name = table("version");
    let recorder = recorder_on(cluster().config("postgres"), &name);
    within(30, "the install", recorder.install())
        .await
        .expect("install");
    let admin = connect_to(&cluster().config("postgres")).await;
    admin
        .batch_execute(&format!(
            "COMMENT ON TABLE {name} IS 'async_tasks_recorder_pg schema 2'"
        ))
        .await
        .expect("a later version");
    let shown = refused_install(&name).await;
    assert!(
        shown.contains("schema version 2, this crate speaks 1"),
        "{shown}"
    );
}

/// A table dropped and installed again keeps drawing from its fence
/// sequence, which dropping the table leaves: fences go on rising past
/// those an external store may still hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_made_anew_goes_on_with_the_fences_of_the_old_one() {
    let name = table("anew");
    let admin = connect_to(&cluster().config("postgres")).await;
    let mut last = 0;
    for round in 0..2 {
        let recorder = recorder_on(cluster().config("postgres"), &name);
        within(30, "the install", recorder.install())
            .await
            .expect("install");
        let attempt = within(30, "a claim", recorder.claim(1))
            .await
            .expect("claim")
            .expect("granted");
        let fence = attempt.lease().fence();
        assert!(fence > last, "round {round}: fence {fence} after {last}");
        last = fence;
        within(30, "a finish", attempt.finish(Outcome::Ok))
            .await
            .expect("finish");
        admin
            .batch_execute(&format!("DROP TABLE {name}"))
            .await
            .expect("drop the table");
    }
}
