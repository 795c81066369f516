//! The schema and the statements: one autocommit statement per operation,
//! every guard inside it, time from the database clock only.
//!
//! States are stored as `smallint`, the codes of [`state_code`] (the
//! discriminants of [`Phase`]); every statement is formatted from that
//! mapping, and no statement spells a state as a number.
//!
//! Leases are set to `clock_timestamp() + lease` and judged against
//! `clock_timestamp() + shift`, where `shift` (microseconds, a parameter)
//! is 0 except in tests: a replica with a shift judges every lease as if
//! that much time had passed, on the server's clock. `clock_timestamp()` rather than `now()`: `now()` is frozen at the
//! start of a transaction, and the fenced-finish transaction may be long.
//!
//! The guards that a known-bad statement ([`KnownBad`]) removes or weakens
//! are the fragments below; the good and the bad statement are formatted
//! by the same function from them, so neither can drift from the other.

mod code;
#[cfg(feature = "test-hooks")]
mod known_bad;

pub(crate) use code::phases_read_as;
pub use code::{phase_of, state_code, state_codes};
#[cfg(feature = "test-hooks")]
pub use known_bad::KnownBad;

use crate::store::Which;
use async_tasks_recorder::spec::Phase;

/// The SQL text of every operation on one table. Built by
/// [`Statements::new`], made known-bad by `Statements::known_bad` (with the
/// `test-hooks` feature); its
/// fields are public (and hidden from the docs) so that tests and tools can
/// read a statement's text.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Statements {
    /// DDL run by `install` when the table is absent. The fence sequence
    /// is not owned by the table: dropping the table leaves it, so a table
    /// made anew goes on with its fences instead of issuing them again.
    pub schema: String,
    /// The claim of an id the read found absent: inserts its row as
    /// Working with a new fence, or does nothing if a row appeared since.
    /// Params: id, lease µs. Returns the row's `(fence, epoch)` if granted.
    pub claim_new: String,
    /// The claim of an existing row the read found launchable:
    /// NotFound/Failed/lapsed Working -> Working with a new fence, the
    /// whole guard in its `WHERE`.
    /// Params: id, lease µs, shift µs (and the client's clock, as a fourth,
    /// for the known-bad claim that reads it).
    /// Returns the row's `(fence, epoch)` if granted.
    pub claim: String,
    /// Working(fence) -> Success or Failed. Params: id, fence, new state
    /// (the code of `Success` or `Failed`). Returns the epoch if applied.
    pub finish: String,
    /// Extends the lease of Working or Revoking (fence). Params: id, fence, lease µs.
    /// Returns the epoch if renewed.
    pub renew: String,
    /// Success or lapsed Revoking -> Revoking with a new fence. Params: id, lease µs, shift µs.
    /// Returns the row's `(fence, epoch)` if granted.
    pub revoke_begin: String,
    /// Revoking(fence) -> NotFound (epoch + 1) or Success. Params: id, fence, ok.
    /// Returns the epoch if applied.
    pub revoke_end: String,
    /// The stored record of one id, and whether its lease has run out. Params: id, shift µs.
    /// Returns `(state, epoch, fence, success_fence, lapsed)`, no row for an absent id.
    pub read: String,
    /// The sweep for one id (used by `wait`). Params: id, shift µs.
    pub expire_one: String,
    /// Working or Revoking (fence) -> Failed or Success, skipping a row
    /// another session holds: settles an attempt whose finish inside the
    /// caller's transaction rolled back. Params: id, fence. Returns the
    /// new state if applied.
    pub abandon: String,
    /// Writes the row as it is: its commit, waiting for the synchronous
    /// standby as every commit does, proves every commit before it is
    /// replicated (the log is replicated in order). Params: id.
    pub confirm: String,
    /// The sweep: every lapsed row, any replica, idempotent. Params: shift µs, limit.
    /// Returns `(id, new state)` per expired row.
    pub sweep: String,
    /// Ids in a state. Params: two state codes.
    pub list: String,
    /// The first page of ids in one or two stored states, ordered by id.
    /// Params: a state code, a second one or NULL, the page's length.
    pub page_first: String,
    /// A later page: the ids after a given one. Params: as `page_first`,
    /// then the id the previous page ended with.
    pub page_after: String,
    /// Rows in one or two stored states, each counted from the `(state,
    /// id)` index alone. Params: a state code, a second one or NULL.
    pub count: String,
    /// The table, to format a statement again as known-bad.
    table: String,
    /// The claim reads the client's clock as `$4` (a known-bad claim).
    #[cfg(feature = "test-hooks")]
    pub(crate) claim_reads_client_clock: bool,
    /// The id column's SQL type, as the DDL spells it.
    key_type: String,
    /// The first claim of a grant is sent whatever the read found: a
    /// known-bad claim whose read no longer refuses either.
    #[cfg(feature = "test-hooks")]
    pub(crate) claim_ignores_read: bool,
}

/// The stored code of each phase, named for formatting into statements.
struct Codes {
    not_found: i16,
    working: i16,
    failed: i16,
    success: i16,
    revoking: i16,
}

const CODES: Codes = Codes {
    not_found: state_code(Phase::NotFound),
    working: state_code(Phase::Working),
    failed: state_code(Phase::Failed),
    success: state_code(Phase::Success),
    revoking: state_code(Phase::Revoking),
};

/// The fence guard of the finish (and of renew and revoke end): only the
/// attempt holding the current fence matches its row.
const FENCE_IS_CURRENT: &str = "fence = $2";

/// The read's first column: the state as stored, never one computed from
/// the clock.
const STORED_STATE: &str = "state";

/// `clock_timestamp()` moved by the shift parameter `$n` (microseconds).
fn now(n: usize) -> String {
    format!("(clock_timestamp() + ${n} * interval '1 microsecond')")
}

/// The interval of `$n` microseconds.
fn micros(n: usize) -> String {
    format!("(${n} * interval '1 microsecond')")
}

/// The state guard of the finish: the row is `Working`.
fn finish_state_guard() -> String {
    format!("state = {}", CODES.working)
}

/// The claim's lease guard: a `Working` row's lease has run out by
/// `clock`, the database clock ([`now`]) in the good claim.
fn claim_lapsed_by(clock: &str) -> String {
    format!("t.lease_until <= {clock}")
}

/// Which existing rows a claim takes over: `NotFound`, `Failed`, or
/// `Working` whose lease has run out by `lapsed`.
fn claim_guard(lapsed: &str) -> String {
    let Codes {
        not_found,
        failed,
        working,
        ..
    } = CODES;
    format!("AND (t.state IN ({not_found}, {failed}) OR (t.state = {working} AND {lapsed}))")
}

/// A new fence from table `t`'s sequence. `nextval` parses its text
/// argument as a name, so the quoted name is cast to `regclass` once, when
/// the statement is prepared.
fn next_fence(t: &str) -> String {
    format!("nextval('{}'::regclass)", quoted(&derived(t, FENCE)))
}

/// The claim of an existing row of table `t`, taken over only if `guard`
/// (an `AND` clause, or nothing) admits the row version it locks.
fn claim(t: &str, guard: &str) -> String {
    let working = CODES.working;
    let lease = micros(2);
    let (table, fence) = (quoted(t), next_fence(t));
    format!(
        "UPDATE {table} AS t
                 SET state = {working}, fence = {fence}, lease_until = clock_timestamp() + {lease}
                 WHERE t.id = $1 {guard}
                 RETURNING t.fence, t.epoch"
    )
}

/// The finish of table `t`, matching the row only under `state_guard` and
/// `fence_guard`.
fn finish(t: &str, state_guard: &str, fence_guard: &str) -> String {
    let success = CODES.success;
    let table = quoted(t);
    format!(
        "UPDATE {table} SET state = $3,
                   success_fence = CASE WHEN $3 = {success} THEN fence ELSE success_fence END,
                   lease_until = NULL
                 WHERE id = $1 AND {state_guard} AND {fence_guard}
                 RETURNING epoch"
    )
}

/// A page of the ids of table `t` in stored state `$1` or `$2`, through
/// the `(state, id)` index: each state's ids in order, from `after` (a
/// condition on `id`, or nothing) on, merged.
fn page(t: &str, after: &str) -> String {
    format!(
        "(SELECT id FROM {table} WHERE state = $1 {after} ORDER BY id LIMIT $3)
                 UNION ALL
                 (SELECT id FROM {table} WHERE state = $2 {after} ORDER BY id LIMIT $3)
                 ORDER BY id LIMIT $3",
        table = quoted(t),
    )
}

/// The read of table `t`, reporting `state` as its first column.
fn read(t: &str, state: &str) -> String {
    format!(
        "SELECT {state}, epoch, fence, success_fence,
                   coalesce(lease_until <= {now2}, false) AS lapsed
                 FROM {table} WHERE id = $1",
        now2 = now(2),
        table = quoted(t),
    )
}

impl Statements {
    /// The statements for table `table` whose ids have SQL type `key_type`.
    /// `table` must pass [`is_identifier`] (checked by the caller).
    pub fn new(table: &str, key_type: &str) -> Statements {
        let t = table;
        let table = quoted(t);
        let fence = next_fence(t);
        let [sequence, primary_key, by_state, leased] =
            [FENCE, PRIMARY_KEY, BY_STATE, LEASED].map(|object| quoted(&derived(t, object)));
        let Codes {
            not_found,
            working,
            failed,
            success,
            revoking,
        } = CODES;
        Statements {
            schema: format!(
                "CREATE SEQUENCE IF NOT EXISTS {sequence} CACHE 1;
                 CREATE TABLE {table} (
                   id {key_type} CONSTRAINT {primary_key} PRIMARY KEY,
                   state smallint NOT NULL CHECK (state BETWEEN {not_found} AND {revoking}),
                   epoch bigint NOT NULL DEFAULT 0,
                   fence bigint NOT NULL,
                   success_fence bigint,
                   lease_until timestamptz,
                   CHECK ((state IN ({working}, {revoking})) = (lease_until IS NOT NULL))
                 );
                 COMMENT ON TABLE {table} IS '{SCHEMA_MARK} {SCHEMA_VERSION}';
                 CREATE INDEX IF NOT EXISTS {by_state} ON {table} (state, id);
                 CREATE INDEX IF NOT EXISTS {leased} ON {table} (lease_until) WHERE state IN ({working}, {revoking});"
            ),
            claim_new: format!(
                "INSERT INTO {table} (id, state, epoch, fence, lease_until)
                 VALUES ($1, {working}, 0, {fence}, clock_timestamp() + {lease})
                 ON CONFLICT (id) DO NOTHING
                 RETURNING fence, epoch",
                lease = micros(2),
            ),
            claim: claim(t, &claim_guard(&claim_lapsed_by(&now(3)))),
            finish: finish(t, &finish_state_guard(), FENCE_IS_CURRENT),
            renew: format!(
                "UPDATE {table} SET lease_until = clock_timestamp() + {lease}
                 WHERE id = $1 AND state IN ({working}, {revoking}) AND {FENCE_IS_CURRENT}
                 RETURNING epoch",
                lease = micros(3),
            ),
            revoke_begin: format!(
                "UPDATE {table} SET state = {revoking}, fence = {fence}, lease_until = clock_timestamp() + {lease}
                 WHERE id = $1 AND (state = {success} OR (state = {revoking} AND lease_until <= {now3}))
                 RETURNING fence, epoch",
                now3 = now(3),
                lease = micros(2),
            ),
            revoke_end: format!(
                "UPDATE {table} SET state = CASE WHEN $3 THEN {not_found} ELSE {success} END,
                   epoch = epoch + CASE WHEN $3 THEN 1 ELSE 0 END,
                   lease_until = NULL
                 WHERE id = $1 AND state = {revoking} AND {FENCE_IS_CURRENT}
                 RETURNING epoch"
            ),
            read: read(t, STORED_STATE),
            expire_one: format!(
                "UPDATE {table} SET state = CASE WHEN state = {working} THEN {failed} ELSE {success} END, lease_until = NULL
                 WHERE id = $1 AND state IN ({working}, {revoking}) AND lease_until <= {now2}
                 RETURNING state",
                now2 = now(2),
            ),
            abandon: format!(
                "UPDATE {table} SET state = CASE WHEN state = {working} THEN {failed} ELSE {success} END, lease_until = NULL
                 WHERE id IN (SELECT id FROM {table}
                              WHERE id = $1 AND state IN ({working}, {revoking}) AND {FENCE_IS_CURRENT}
                              FOR UPDATE SKIP LOCKED)
                   AND state IN ({working}, {revoking}) AND {FENCE_IS_CURRENT}
                 RETURNING state"
            ),
            confirm: format!("UPDATE {table} SET epoch = epoch WHERE id = $1"),
            sweep: format!(
                "UPDATE {table} SET state = CASE WHEN state = {working} THEN {failed} ELSE {success} END, lease_until = NULL
                 WHERE id IN (SELECT id FROM {table}
                              WHERE state IN ({working}, {revoking}) AND lease_until <= {now1}
                              ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED)
                   AND state IN ({working}, {revoking}) AND lease_until <= {now1}
                 RETURNING id, state",
                now1 = now(1),
            ),
            list: format!("SELECT id FROM {table} WHERE state IN ($1, $2) ORDER BY id"),
            page_first: page(t, ""),
            page_after: page(t, "AND id > $4"),
            count: format!(
                "SELECT (SELECT count(*) FROM {table} WHERE state = $1)
                      + (SELECT count(*) FROM {table} WHERE state = $2)"
            ),
            table: t.to_owned(),
            #[cfg(feature = "test-hooks")]
            claim_reads_client_clock: false,
            #[cfg(feature = "test-hooks")]
            claim_ignores_read: false,
            key_type: key_type.to_owned(),
        }
    }
}

impl Statements {
    /// The text of statement `which`.
    pub(crate) fn text(&self, which: Which) -> &str {
        match which {
            Which::Read => &self.read,
            Which::ClaimNew => &self.claim_new,
            Which::Claim => &self.claim,
            #[cfg(feature = "test-hooks")]
            Which::ClaimByClientClock => &self.claim,
            Which::RevokeBegin => &self.revoke_begin,
            Which::Renew => &self.renew,
            Which::Finish => &self.finish,
            Which::RevokeEnd => &self.revoke_end,
            Which::Abandon => &self.abandon,
            Which::Confirm => &self.confirm,
            Which::ExpireOne => &self.expire_one,
            Which::Sweep => &self.sweep,
            Which::List => &self.list,
            Which::PageFirst => &self.page_first,
            Which::PageAfter => &self.page_after,
            Which::Count => &self.count,
        }
    }
}

impl Statements {
    /// The table these statements run on.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// The id column's SQL type.
    pub(crate) fn key_type(&self) -> &str {
        &self.key_type
    }

    /// The sequence the table's fences are drawn from.
    pub(crate) fn fence_sequence(&self) -> String {
        derived(&self.table, FENCE)
    }
}

/// Whether `name` is a lower-case SQL identifier of at most 50 bytes,
/// safe to splice into statements once [`quoted`] (table names cannot be
/// parameters). Reserved words pass: quoted, they are names like any other.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= MAX_TABLE_NAME
}

/// The longest table name: its longest derived name (`$by_state`, 9 more)
/// stays within PostgreSQL's 63-byte identifiers, which it would otherwise
/// truncate silently.
const MAX_TABLE_NAME: usize = 50;

/// The version of the schema these statements speak: the table, its
/// columns and constraints, its derived objects. A change that an older or
/// newer release's statements or checks would misread needs a new version.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The table comment install writes when it creates the table, followed
/// by [`SCHEMA_VERSION`]. A comment rather than a row of another table:
/// it lives and dies with the table, every role can read it, and it needs
/// no further object or privilege.
pub(crate) const SCHEMA_MARK: &str = "async_tasks_recorder_pg schema";

/// The objects a table's install makes beside it, each named
/// [`derived`] from the table's name: its fence sequence, its primary key
/// (named, so that PostgreSQL's own `{table}_pkey` cannot meet another
/// table), and its two indexes.
pub(crate) const FENCE: &str = "fence";
pub(crate) const PRIMARY_KEY: &str = "pkey";
pub(crate) const BY_STATE: &str = "by_state";
pub(crate) const LEASED: &str = "leased";

/// The name of `table`'s derived `object`: `{table}${object}`. The
/// table-name check refuses `$`, so no recorder's table can bear another
/// table's derived name (`a_fence` is a table name, `a$fence` is not).
pub(crate) fn derived(table: &str, object: &str) -> String {
    format!("{table}${object}")
}

/// `name` as a quoted identifier: reserved words stay names, and `$` is
/// admitted. Neither a table name nor a derived one can hold a `"`.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_tables_derived_names_fit_in_an_identifier() {
        let longest = "t".repeat(MAX_TABLE_NAME);
        assert!(is_identifier(&longest) && !is_identifier(&format!("{longest}t")));
        for object in [FENCE, PRIMARY_KEY, BY_STATE, LEASED] {
            let name = derived(&longest, object);
            assert!(name.len() <= 63, "{name} has {} bytes", name.len());
            assert!(!is_identifier(&name), "{name} could be a table's name");
        }
    }

    #[test]
    fn every_statement_quotes_the_names_it_splices_in() {
        let sql = Statements::new("user", "bigint");
        for statement in [
            &sql.claim,
            &sql.finish,
            &sql.renew,
            &sql.revoke_begin,
            &sql.revoke_end,
            &sql.read,
            &sql.expire_one,
            &sql.sweep,
            &sql.list,
            &sql.count,
        ] {
            assert!(statement.contains("\"user\""), "{statement}");
            assert!(!statement.contains(" user "), "{statement}");
        }
        assert!(sql.claim.contains("nextval('\"user$fence\"'::regclass)"));
    }
}
