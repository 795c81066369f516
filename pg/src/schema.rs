//! Is the schema what `install` makes? `CREATE … IF NOT EXISTS` keeps
//! whatever already bears a name, so install creates the table's objects
//! only when the table is absent, and then reads back from the catalog
//! what the statements will reach: the table (its schema version, its
//! columns' names, types and nullability), its fence sequence, and its
//! indexes. Anything else is [`Error::Schema`], naming the object and what
//! is wrong with it, before a statement can misread a row or a fence can
//! go backwards.
//!
//! Names are resolved as the statements resolve them, through the
//! session's `search_path` (`to_regclass`), so the objects checked are
//! the objects used. The catalogs read here are readable by every role:
//! on an existing table install needs no privilege beyond the schema's
//! `USAGE`.

use crate::db::column;
use crate::error::Error;
use crate::sql::{
    BY_STATE, LEASED, PRIMARY_KEY, SCHEMA_MARK, SCHEMA_VERSION, Statements, derived, quoted,
};
use tokio_postgres::Transaction;
use tokio_postgres::types::{Oid, Type};

/// Creates the table's objects if the table is absent, then checks what
/// the statements reach. Runs in `tx`, under the caller's lock on the
/// table's name.
///
/// An existing table is never added to: a missing fence sequence created
/// beside it would hand out fences below the ones its rows hold (P11), and
/// a missing index would need the table's owner. Both are refused instead.
pub(crate) async fn install(
    tx: &Transaction<'_>,
    sql: &Statements,
    key_type: &Type,
) -> Result<(), Error> {
    if find(tx, &quoted(sql.table())).await?.is_none() {
        tx.batch_execute(&sql.schema).await?;
    }
    check(tx, sql, key_type).await
}

/// A relation found in the catalog.
struct Found {
    oid: Oid,
    /// `pg_class.relkind`.
    kind: String,
    namespace: Oid,
    schema: String,
}

/// The relation a statement naming `name` (quoted) would reach, if any.
async fn find(tx: &Transaction<'_>, name: &str) -> Result<Option<Found>, Error> {
    let row = tx
        .query_opt(
            "SELECT c.oid, c.relkind::text, c.relnamespace, n.nspname::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = to_regclass($1)",
            &[&name],
        )
        .await?;
    row.map(|row| {
        Ok(Found {
            oid: column(&row, 0, "oid")?,
            kind: column(&row, 1, "relkind")?,
            namespace: column(&row, 2, "relnamespace")?,
            schema: column(&row, 3, "nspname")?,
        })
    })
    .transpose()
}

/// What a `pg_class.relkind` stands for, for messages.
fn kind_name(kind: &str) -> &str {
    match kind {
        "r" => "a table",
        "i" => "an index",
        "S" => "a sequence",
        "v" => "a view",
        "m" => "a materialized view",
        "c" => "a composite type",
        "f" => "a foreign table",
        "p" => "a partitioned table",
        "I" => "a partitioned index",
        other => other,
    }
}

/// Checks the table, its columns, its fence sequence and its indexes:
/// every problem found, in one [`Error::Schema`].
async fn check(tx: &Transaction<'_>, sql: &Statements, key_type: &Type) -> Result<(), Error> {
    let name = quoted(sql.table());
    let table = match find(tx, &name).await? {
        None => return Err(Error::Schema(format!("no table {name} after install"))),
        Some(found) if found.kind != "r" => {
            return Err(Error::Schema(format!(
                "{name} is {}, not a table",
                kind_name(&found.kind)
            )));
        }
        Some(found) => found,
    };
    let mut problems = Vec::from_iter(version(tx, &table).await?);
    problems.extend(columns(tx, &table, sql.key_type(), key_type).await?);
    problems.extend(sequence(tx, &table, sql).await?);
    for (object, expect) in [
        (PRIMARY_KEY, Index::PRIMARY_KEY),
        (BY_STATE, Index::BY_STATE),
        (LEASED, Index::LEASED),
    ] {
        problems.extend(index(tx, &table, &derived(sql.table(), object), expect).await?);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Schema(format!(
            "table {name} in schema {}: {}",
            table.schema,
            problems.join("; ")
        )))
    }
}

/// What is wrong with the table's schema version, read from its comment.
async fn version(tx: &Transaction<'_>, table: &Found) -> Result<Option<String>, Error> {
    let row = tx
        .query_one("SELECT obj_description($1, 'pg_class')", &[&table.oid])
        .await?;
    let comment: Option<String> = column(&row, 0, "obj_description")?;
    Ok(version_problem(comment.as_deref()))
}

/// What is wrong with a table whose comment is `comment`: `None` if it
/// marks [`SCHEMA_VERSION`]. Install writes the mark only on a table it
/// creates, so a table without one was made by hand or by something else.
fn version_problem(comment: Option<&str>) -> Option<String> {
    let speaks = SCHEMA_VERSION;
    let Some(comment) = comment else {
        return Some(format!(
            "no schema version (no table comment; install marks a table it creates \
             '{SCHEMA_MARK} {speaks}'), this crate speaks {speaks}"
        ));
    };
    match comment.strip_prefix(SCHEMA_MARK).map(str::trim) {
        Some(version) if version == speaks.to_string() => None,
        Some(version) => Some(format!(
            "schema version {version}, this crate speaks {speaks}"
        )),
        None => Some(format!(
            "no schema version (its comment is {comment:?}), this crate speaks {speaks}"
        )),
    }
}

/// The columns the statements read and write: name, type (as
/// `format_type` spells it), and whether it is `NOT NULL`. The id's type is
/// the key's.
fn expected_columns<'a>(
    key_sql: &'a str,
    key_type: &'a Type,
) -> [(&'static str, &'a Type, &'a str, bool); 6] {
    let timestamptz = "timestamp with time zone";
    [
        ("id", key_type, key_sql, true),
        ("state", &Type::INT2, "smallint", true),
        ("epoch", &Type::INT8, "bigint", true),
        ("fence", &Type::INT8, "bigint", true),
        ("success_fence", &Type::INT8, "bigint", false),
        ("lease_until", &Type::TIMESTAMPTZ, timestamptz, false),
    ]
}

/// What differs between the table's columns and [`expected_columns`]:
/// a missing one, another type, other nullability, or one this crate does
/// not make.
async fn columns(
    tx: &Transaction<'_>,
    table: &Found,
    key_sql: &str,
    key_type: &Type,
) -> Result<Vec<String>, Error> {
    let rows = tx
        .query(
            "SELECT attname::text, atttypid, format_type(atttypid, atttypmod), attnotnull
             FROM pg_attribute
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped
             ORDER BY attnum",
            &[&table.oid],
        )
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = column(row, 0, "attname")?;
        let type_oid: Oid = column(row, 1, "atttypid")?;
        let type_name: String = column(row, 2, "format_type")?;
        let not_null: bool = column(row, 3, "attnotnull")?;
        found.push((name, type_oid, type_name, not_null));
    }
    let expected = expected_columns(key_sql, key_type);
    let mut problems = Vec::new();
    for (name, pg_type, type_name, not_null) in expected {
        let Some((_, found_oid, found_name, found_not_null)) =
            found.iter().find(|(found, ..)| found == name)
        else {
            problems.push(format!("no column {name}"));
            continue;
        };
        if *found_oid != pg_type.oid() {
            problems.push(format!("column {name} is {found_name}, not {type_name}"));
        }
        match (not_null, *found_not_null) {
            (true, false) => problems.push(format!("column {name} admits NULL")),
            (false, true) => problems.push(format!(
                "column {name} is NOT NULL, and this crate stores NULL in it"
            )),
            _ => {}
        }
    }
    for (name, ..) in &found {
        if !expected.iter().any(|(expected, ..)| expected == name) {
            problems.push(format!("column {name} is not one this crate makes"));
        }
    }
    Ok(problems)
}

/// What is wrong with the fence sequence the statements reach: it must be
/// a sequence in the table's schema whose values rise one at a time and
/// never wrap, so that every grant's fence exceeds every earlier one (P11):
/// increment positive, minimum at least 1 (fence 0 stands for no row), no
/// `CYCLE`, and `CACHE 1` (a cache gives each session its own block, so a
/// later grant could draw a smaller fence).
async fn sequence(
    tx: &Transaction<'_>,
    table: &Found,
    sql: &Statements,
) -> Result<Vec<String>, Error> {
    let name = quoted(&sql.fence_sequence());
    let Some(found) = find(tx, &name).await? else {
        return Ok(vec![format!(
            "no fence sequence {name}; a new one must start above every fence \
             the table holds (CREATE SEQUENCE {name} CACHE 1 START WITH max(fence) + 1)"
        )]);
    };
    if found.kind != "S" {
        return Ok(vec![format!(
            "{name} is {}, not a sequence",
            kind_name(&found.kind)
        )]);
    }
    if found.namespace != table.namespace {
        return Ok(vec![format!(
            "the fence sequence {name} is in schema {}, the table in {}",
            found.schema, table.schema
        )]);
    }
    let row = tx
        .query_one(
            "SELECT seqincrement, seqmin, seqcycle, seqcache FROM pg_sequence WHERE seqrelid = $1",
            &[&found.oid],
        )
        .await?;
    let increment: i64 = column(&row, 0, "seqincrement")?;
    let min: i64 = column(&row, 1, "seqmin")?;
    let cycle: bool = column(&row, 2, "seqcycle")?;
    let cache: i64 = column(&row, 3, "seqcache")?;
    let mut problems = Vec::new();
    if increment <= 0 {
        problems.push(format!(
            "the fence sequence {name} steps by {increment}; fences must rise"
        ));
    }
    if min < 1 {
        problems.push(format!(
            "the fence sequence {name} may hand out {min}; fences start at 1"
        ));
    }
    if cycle {
        problems.push(format!(
            "the fence sequence {name} cycles; fences must never repeat"
        ));
    }
    if cache != 1 {
        problems.push(format!(
            "the fence sequence {name} caches {cache} values per session; \
             fences rise only with CACHE 1 (ALTER SEQUENCE {name} CACHE 1)"
        ));
    }
    Ok(problems)
}

/// What one of the table's indexes must be.
#[derive(Clone, Copy)]
struct Index {
    columns: &'static [&'static str],
    primary: bool,
    partial: bool,
}

impl Index {
    /// The primary key: the claim's `ON CONFLICT (id)` needs it.
    const PRIMARY_KEY: Index = Index {
        columns: &["id"],
        primary: true,
        partial: false,
    };
    /// The index that lists and counts read.
    const BY_STATE: Index = Index {
        columns: &["state", "id"],
        primary: false,
        partial: false,
    };
    /// The leased rows, which the sweep reads.
    const LEASED: Index = Index {
        columns: &["lease_until"],
        primary: false,
        partial: true,
    };
}

/// What is wrong with the index named `name` in the table's schema
/// (an index lives in its table's schema): it must be an index on this
/// table, over `expect`'s columns.
async fn index(
    tx: &Transaction<'_>,
    table: &Found,
    name: &str,
    expect: Index,
) -> Result<Vec<String>, Error> {
    let quoted_name = quoted(name);
    let row = tx
        .query_opt(
            "SELECT c.relkind::text, coalesce(i.indrelid = $2, false),
                    i.indrelid::regclass::text, coalesce(i.indisprimary, false),
                    i.indpred IS NOT NULL,
                    ARRAY(SELECT a.attname::text
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          ORDER BY k.n)
             FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
             WHERE c.relnamespace = $1 AND c.relname::text = $3",
            &[&table.namespace, &table.oid, &name],
        )
        .await?;
    let Some(row) = row else {
        return Ok(vec![format!("no index {quoted_name}")]);
    };
    let kind: String = column(&row, 0, "relkind")?;
    if kind != "i" {
        return Ok(vec![format!(
            "{quoted_name} is {}, not an index",
            kind_name(&kind)
        )]);
    }
    let on_table: bool = column(&row, 1, "on_table")?;
    if !on_table {
        let other: String = column(&row, 2, "indrelid")?;
        return Ok(vec![format!(
            "index {quoted_name} is on {other}, not on this table"
        )]);
    }
    let primary: bool = column(&row, 3, "indisprimary")?;
    let partial: bool = column(&row, 4, "indpred")?;
    let columns: Vec<String> = column(&row, 5, "indkey")?;
    let mut problems = Vec::new();
    if columns != expect.columns {
        problems.push(format!(
            "index {quoted_name} is on ({}), not ({})",
            columns.join(", "),
            expect.columns.join(", ")
        ));
    }
    if primary != expect.primary {
        problems.push(match expect.primary {
            true => format!("index {quoted_name} is not the table's primary key"),
            false => format!("index {quoted_name} is the table's primary key"),
        });
    }
    if partial != expect.partial {
        problems.push(match expect.partial {
            true => format!("index {quoted_name} covers every row, not only leased ones"),
            false => format!("index {quoted_name} is partial"),
        });
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_mark_of_this_version_passes() {
        let ours = format!("{SCHEMA_MARK} {SCHEMA_VERSION}");
        assert_eq!(version_problem(Some(&ours)), None);
        let later = format!("{SCHEMA_MARK} {}", SCHEMA_VERSION + 1);
        let refused = version_problem(Some(&later)).expect("refused");
        assert!(refused.contains(&format!("schema version {}", SCHEMA_VERSION + 1)));
        for other in [None, Some("the job queue"), Some("")] {
            let refused = version_problem(other).expect("refused");
            assert!(refused.contains("no schema version"), "{refused}");
        }
    }
}
