//! The schema and the statements: one autocommit statement per operation,
//! every guard inside it, time from the database clock only.
//!
//! States are stored as `smallint`, the discriminants of
//! [`Phase`](async_tasks_recorder::spec::Phase): 0 `NotFound` (a revoked
//! row, kept so its epoch stays monotone), 1 `Working`, 2 `Failed`,
//! 3 `Success`, 4 `Revoking`.
//!
//! Leases are set to `clock_timestamp() + lease` and judged against
//! `clock_timestamp() + shift`, where `shift` (microseconds, a parameter)
//! is 0 except in tests: a replica with a shift judges every lease as if
//! that much time had passed, on the server's clock. `clock_timestamp()` rather than `now()`: `now()` is frozen at the
//! start of a transaction, and the fenced-finish transaction may be long.

/// The SQL text of every operation on one table. Built by
/// [`Statements::new`]; its fields are public (and hidden from the docs) so
/// that tests can swap in a known-bad statement and check that it is caught.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Statements {
    /// DDL run by `install`.
    pub schema: String,
    /// NotFound/Failed/lapsed Working -> Working with a new fence.
    /// Params: id, lease µs, shift µs, client clock (read by no correct statement).
    pub claim: String,
    /// Working(fence) -> Success or Failed. Params: id, fence, new state (2 or 3).
    pub finish: String,
    /// Extends the lease of Working or Revoking (fence). Params: id, fence, lease µs.
    pub renew: String,
    /// Success or lapsed Revoking -> Revoking with a new fence. Params: id, lease µs, shift µs.
    pub revoke_begin: String,
    /// Revoking(fence) -> NotFound (epoch + 1) or Success. Params: id, fence, ok.
    pub revoke_end: String,
    /// The stored record of one id, and whether its lease has run out. Params: id, shift µs.
    pub read: String,
    /// The sweep for one id (used by `wait`). Params: id, shift µs.
    pub expire_one: String,
    /// The sweep: every lapsed row, any replica, idempotent. Params: shift µs, limit.
    pub sweep: String,
    /// Ids in a state. Params: two state codes.
    pub list: String,
    /// Row counts per state.
    pub count: String,
}

/// `clock_timestamp()` moved by the shift parameter `$n` (microseconds).
fn now(n: usize) -> String {
    format!("(clock_timestamp() + ${n} * interval '1 microsecond')")
}

impl Statements {
    /// The statements for table `table` whose ids have SQL type `key_type`.
    /// `table` must be a plain identifier (checked by the caller).
    pub fn new(table: &str, key_type: &str) -> Statements {
        let t = table;
        let micros = |n: usize| format!("(${n} * interval '1 microsecond')");
        Statements {
            schema: format!(
                "CREATE SEQUENCE IF NOT EXISTS {t}_fence;
                 CREATE TABLE IF NOT EXISTS {t} (
                   id {key_type} PRIMARY KEY,
                   state smallint NOT NULL CHECK (state BETWEEN 0 AND 4),
                   epoch bigint NOT NULL DEFAULT 0,
                   fence bigint NOT NULL,
                   success_fence bigint,
                   lease_until timestamptz,
                   CHECK ((state IN (1, 4)) = (lease_until IS NOT NULL))
                 );
                 CREATE INDEX IF NOT EXISTS {t}_by_state ON {t} (state, id);
                 CREATE INDEX IF NOT EXISTS {t}_leased ON {t} (lease_until) WHERE state IN (1, 4);"
            ),
            claim: format!(
                "INSERT INTO {t} AS t (id, state, epoch, fence, lease_until)
                 VALUES ($1, 1, 0, nextval('{t}_fence'), clock_timestamp() + {lease})
                 ON CONFLICT (id) DO UPDATE
                   SET state = 1, fence = nextval('{t}_fence'), lease_until = clock_timestamp() + {lease}
                   WHERE t.state IN (0, 2) OR (t.state = 1 AND t.lease_until <= {now3})
                 RETURNING t.fence, t.epoch",
                now3 = now(3),
                lease = micros(2),
            ),
            finish: format!(
                "UPDATE {t} SET state = $3,
                   success_fence = CASE WHEN $3 = 3 THEN fence ELSE success_fence END,
                   lease_until = NULL
                 WHERE id = $1 AND state = 1 AND fence = $2
                 RETURNING epoch"
            ),
            renew: format!(
                "UPDATE {t} SET lease_until = clock_timestamp() + {lease}
                 WHERE id = $1 AND state IN (1, 4) AND fence = $2
                 RETURNING epoch",
                lease = micros(3),
            ),
            revoke_begin: format!(
                "UPDATE {t} SET state = 4, fence = nextval('{t}_fence'), lease_until = clock_timestamp() + {lease}
                 WHERE id = $1 AND (state = 3 OR (state = 4 AND lease_until <= {now3}))
                 RETURNING fence, epoch",
                now3 = now(3),
                lease = micros(2),
            ),
            revoke_end: format!(
                "UPDATE {t} SET state = CASE WHEN $3 THEN 0 ELSE 3 END,
                   epoch = epoch + CASE WHEN $3 THEN 1 ELSE 0 END,
                   lease_until = NULL
                 WHERE id = $1 AND state = 4 AND fence = $2
                 RETURNING epoch"
            ),
            read: format!(
                "SELECT state, epoch, fence, success_fence,
                   coalesce(lease_until <= {now2}, false) AS lapsed
                 FROM {t} WHERE id = $1",
                now2 = now(2),
            ),
            expire_one: format!(
                "UPDATE {t} SET state = CASE WHEN state = 1 THEN 2 ELSE 3 END, lease_until = NULL
                 WHERE id = $1 AND state IN (1, 4) AND lease_until <= {now2}
                 RETURNING state",
                now2 = now(2),
            ),
            sweep: format!(
                "UPDATE {t} SET state = CASE WHEN state = 1 THEN 2 ELSE 3 END, lease_until = NULL
                 WHERE id IN (SELECT id FROM {t}
                              WHERE state IN (1, 4) AND lease_until <= {now1}
                              ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED)
                   AND state IN (1, 4) AND lease_until <= {now1}
                 RETURNING id, state",
                now1 = now(1),
            ),
            list: format!("SELECT id FROM {t} WHERE state IN ($1, $2) ORDER BY id"),
            count: format!("SELECT state, count(*) FROM {t} GROUP BY state"),
        }
    }
}

/// Whether `name` is a plain lower-case SQL identifier, safe to splice into
/// statements (table names cannot be parameters).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 50
}
