//! `headroom bump` on PostgreSQL: a session that may write ([`Writer`]), bound to the
//! database its URL names; the counters it reads (every ascending sequence that feeds an
//! integer column of the watched schemas, read by the daemon's own catalog reader, or a
//! sequence source's sequence); and the raise of one with `setval`, never lowering it.
//!
//! A sequence cannot be locked with `LOCK TABLE`, and `nextval` is not transactional. But
//! `ALTER SEQUENCE` blocks every other session's `nextval` and `setval` on it until the
//! transaction ends, so each raise is: `BEGIN`, an `ALTER SEQUENCE` that changes nothing
//! (its increment set to what it is), the sequence's own row read and the counter planned
//! again, `setval(…, to, false)` (the next value handed out is `to`), the row read back,
//! `COMMIT`. A sequence another session moved past the bound since the first read is seen
//! and left alone.

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{ConnectOptions, Connection};
use url::Url;

use super::catalog::{self, SequenceValue};
use super::inventory;
use super::query::{self as db, fetch_all, qualified, query_error};
use crate::bump::{Action, Counter, ServerError, Step, plan};
use crate::db::DbError;
use crate::inventory::{InventoryError, SchemaFilter};

/// A session that may write.
pub struct Writer {
    conn: PgConnection,
}

/// A sequence's step as bump plans with it: its increment, and its start modulo it (the
/// values it hands out are `start + k * increment`).
fn step(s: &catalog::Sequence) -> Step {
    let increment = u64::try_from(s.increment.max(1)).unwrap_or(u64::MAX);
    let offset = u64::try_from(s.start.rem_euclid(i128::from(increment.max(1)))).unwrap_or(0);
    Step { increment, offset }
}

/// The next value `s` hands out, when it can be read.
fn next_value(s: &catalog::Sequence) -> Option<i128> {
    match s.last {
        SequenceValue::Unused => Some(s.start),
        SequenceValue::At(v) => Some(v + s.increment),
        SequenceValue::Next(n) => Some(n),
        SequenceValue::Unreadable(_) => None,
    }
}

/// The counter of an ascending sequence `s` feeding `schema.table.column` (of type
/// `column_type` holding up to `column_max`), held by `server`; `None` for a descending or
/// unreadable one (bump raises IDs above a bound; a descending sequence runs the other way).
fn counter(
    server: &str,
    s: &catalog::Sequence,
    (schema, table, column): (&str, &str, &str),
    column_type: &str,
    column_max: i128,
) -> Option<Counter> {
    if s.descending() {
        return None;
    }
    let max = column_max.min(s.max);
    Some(Counter {
        server: server.to_string(),
        schema: schema.to_string(),
        table: table.to_string(),
        column: column.to_string(),
        column_type: column_type.to_string(),
        max: u64::try_from(max.max(0)).unwrap_or(u64::MAX),
        current: next_value(s)?,
        step: step(s),
        sequence: Some((s.id.schema.clone(), s.id.name.clone())),
    })
}

impl Writer {
    /// Connects to `url` (it holds no password) with `password`, each statement and lock
    /// wait bounded by `timeout` on the server too.
    pub async fn connect(
        url: &Url,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Writer, DbError> {
        let options = super::connect::options(url, password)?;
        let connect = async {
            let mut conn = options
                .connect()
                .await
                .map_err(|e| query_error("connecting", e))?;
            let setup = super::connect::bounds_sql(timeout);
            sqlx::raw_sql(sqlx::AssertSqlSafe(setup))
                .execute(&mut conn)
                .await
                .map_err(|e| query_error("setting up the session", e))?;
            Ok(conn)
        };
        let conn = crate::db::within(timeout, "connecting", connect).await?;
        Ok(Writer { conn })
    }

    /// The sequence source's sequence `schema.name`, held by `server`; `None` when there is
    /// none, or it is descending or unreadable.
    pub async fn sequence_counter(
        &mut self,
        server: String,
        schema: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Counter>, DbError> {
        let Some(s) = catalog::sequence(&mut self.conn, schema, name, timeout).await? else {
            return Ok(None);
        };
        let t = inventory::int_type(s.int_type);
        Ok(counter(
            &server,
            &s,
            (schema, name, ""),
            s.int_type.name(),
            i128::from(t.max()),
        ))
    }

    /// Every ascending sequence feeding an integer column of the schemas `filter` names,
    /// once (at the first column it feeds), held by `server`.
    pub async fn counters(
        &mut self,
        server: &str,
        filter: &SchemaFilter,
        timeout: Duration,
    ) -> Result<Vec<Counter>, InventoryError> {
        let found = catalog::read(&mut self.conn, filter, timeout).await?;
        let mut out: Vec<Counter> = Vec::new();
        for c in &found.columns {
            let Some(feed) = found.feeds.iter().find(|f| f.column == c.id) else {
                continue;
            };
            let Some(s) = found.sequence(&feed.sequence) else {
                continue;
            };
            let seen = out
                .iter()
                .any(|o| o.sequence.as_ref() == Some(&(s.id.schema.clone(), s.id.name.clone())));
            if seen {
                continue;
            }
            let name = (
                c.id.schema.as_str(),
                c.id.table.as_str(),
                c.id.column.as_str(),
            );
            if let Some(counter) = counter(server, s, name, c.int_type.name(), c.int_type.max()) {
                out.push(counter);
            }
        }
        Ok(out)
    }

    /// Raises `counter`'s sequence above `above` unless another session did since it was
    /// read, no other session able to move it meanwhile (see the module's documentation).
    /// Returns the next value it stood at and what was done.
    pub async fn raise(
        &mut self,
        counter: &Counter,
        above: u64,
        timeout: Duration,
    ) -> Result<(i128, Action), ServerError> {
        let Some((schema, name)) = &counter.sequence else {
            return Err(ServerError::Db(DbError::Decode {
                what: "raising a counter".to_string(),
                message: format!("{}.{} has no sequence", counter.schema, counter.table),
            }));
        };
        let conn = &mut self.conn;
        exec(conn, "BEGIN".to_string(), timeout).await?;
        let raised = raise_in_transaction(conn, counter, (schema, name), above, timeout).await;
        let end = if raised.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = exec(conn, end.to_string(), timeout).await;
        let done = raised?;
        ended?;
        Ok(done)
    }

    /// Closes the connection cleanly, within `timeout`.
    pub async fn close(self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.conn.close()).await;
    }
}

async fn exec(conn: &mut PgConnection, sql: String, timeout: Duration) -> Result<(), DbError> {
    let what = format!(
        "running {}",
        sql.split_whitespace().next().unwrap_or("a statement")
    );
    fetch_all(conn, sqlx::query(sqlx::AssertSqlSafe(sql)), timeout, &what)
        .await
        .map(|_| ())
}

/// The sequence's next value, read from its own row.
async fn next_of(
    conn: &mut PgConnection,
    seq: &str,
    increment: u64,
    timeout: Duration,
) -> Result<i128, DbError> {
    let what = format!("reading sequence {seq}");
    let sql = format!("SELECT last_value::text, is_called::text FROM {seq}");
    let rows = fetch_all(conn, sqlx::query(sqlx::AssertSqlSafe(sql)), timeout, &what).await?;
    let Some(row) = rows.first() else {
        return Err(DbError::Decode {
            what,
            message: "no row".to_string(),
        });
    };
    let last = db::int(row, 0, &what)?;
    let called = db::flag(row, 1, &what)?;
    Ok(if called {
        last + i128::from(increment)
    } else {
        last
    })
}

async fn raise_in_transaction(
    conn: &mut PgConnection,
    counter: &Counter,
    (schema, name): (&str, &str),
    above: u64,
    timeout: Duration,
) -> Result<(i128, Action), ServerError> {
    let seq = qualified(schema, name);
    let increment = counter.step.increment;
    // Changes nothing, and holds off every other nextval and setval until COMMIT.
    exec(
        conn,
        format!("ALTER SEQUENCE {seq} INCREMENT BY {increment}"),
        timeout,
    )
    .await?;
    let current = next_of(conn, &seq, increment, timeout).await?;
    let action = plan(current, above, counter.step, counter.max);
    let Action::Raise { to } = action else {
        return Ok((current, action));
    };
    exec(
        conn,
        format!("SELECT setval('{}', {to}, false)", seq.replace('\'', "''")),
        timeout,
    )
    .await?;
    let after = next_of(conn, &seq, increment, timeout).await?;
    if after != i128::try_from(to).unwrap_or(i128::MAX) {
        return Err(ServerError::NotRaised {
            name: format!("{schema}.{name}"),
            after,
            to,
        });
    }
    Ok((current, action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::catalog::{IntType, SequenceRef};

    fn seq(start: i128, increment: i128, last: SequenceValue) -> catalog::Sequence {
        catalog::Sequence {
            id: SequenceRef::new("app", "s"),
            int_type: IntType::Bigint,
            start,
            increment,
            min: 1,
            max: i64::MAX.into(),
            cycle: false,
            last,
        }
    }

    #[test]
    fn a_counter_is_the_next_value_its_sequence_hands_out_bounded_by_the_column() {
        let c = counter(
            "pg",
            &seq(1, 1, SequenceValue::At(41)),
            ("app", "t", "id"),
            "integer",
            i32::MAX.into(),
        )
        .expect("ascending");
        assert_eq!(c.current, 42);
        assert_eq!(c.max, 2_147_483_647);
        assert_eq!(c.sequence, Some(("app".to_string(), "s".to_string())));
        let unused = counter(
            "pg",
            &seq(5, 2, SequenceValue::Unused),
            ("a", "t", "id"),
            "bigint",
            i64::MAX.into(),
        )
        .expect("ascending");
        assert_eq!(unused.current, 5);
        assert_eq!((unused.step.increment, unused.step.offset), (2, 1));
        assert!(
            counter(
                "pg",
                &seq(-1, -1, SequenceValue::Unused),
                ("a", "t", "id"),
                "bigint",
                1
            )
            .is_none()
        );
    }
}
