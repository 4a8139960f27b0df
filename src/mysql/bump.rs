//! `headroom bump` on MySQL and MariaDB: a session that may write ([`Writer`]), the
//! counters it reads (a ticket server's table, every AUTO_INCREMENT column of a shard's
//! watched schemas through the daemon's own catalog reader and schema filter), and the
//! raise of one counter. `crate::bump` plans and reports; it meets this through
//! [`crate::engine::Writer`].
//!
//! These sessions write, so they are not the daemon's read-only ones ([`super::Connector`]);
//! each statement is still bounded by `poll.query_timeout`. Each raise is one step against
//! every other session: `LOCK TABLES ... WRITE` ([`lock_sql`]), the counter read and
//! planned again, the ALTER ([`alter_sql`]), the counter read back, `UNLOCK TABLES`. A
//! counter another session raised past the bound since the first read is seen and left
//! alone; without the lock it could move between the read and the ALTER, which would set
//! it back down (a read after the ALTER cannot see what it overwrote).

use std::time::Duration;

use sqlx::mysql::MySqlConnection;
use sqlx::{ConnectOptions, Connection, Executor};
use url::Url;

use super::ServerVersion;
use super::query::{self as db, qualified};
use crate::bump::{Action, Counter, ServerError, Step, plan};
use crate::db::DbError;
use crate::headroom::IntType;
use crate::inventory::{InventoryError, SchemaFilter};

/// The statement that sets a table's counter: names quoted by [`qualified`], the value an
/// integer formatted here (ALTER TABLE takes no bound parameters), built in one pass.
pub fn alter_sql(schema: &str, table: &str, to: u128) -> String {
    format!(
        "ALTER TABLE {} AUTO_INCREMENT = {to}",
        qualified(schema, table)
    )
}

/// The statement that locks a table against every other session while its counter is read
/// and set (`UNLOCK TABLES` ends it): names quoted by [`qualified`], built in one pass.
pub fn lock_sql(schema: &str, table: &str) -> String {
    format!("LOCK TABLES {} WRITE", qualified(schema, table))
}

/// A session that may write, and its increment and offset (read once, when it connects:
/// what an insert on it uses).
pub struct Writer {
    conn: MySqlConnection,
    step: Step,
}

impl Writer {
    /// Connects to `url` (it holds no password) with `password`, each step bounded by
    /// `timeout`, and reads the session's step. On MySQL 8, information_schema is told not
    /// to cache AUTO_INCREMENT (otherwise it may be a day old, and a stale counter planned
    /// "up" could be a lower one).
    pub async fn connect(
        url: &Url,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Writer, DbError> {
        let options = super::connect::options(url, password)?;
        let connect = async {
            options
                .connect()
                .await
                .map_err(|e| db::query_error("connecting", e))
        };
        let mut conn = crate::db::within(timeout, "connecting", connect).await?;
        let server = ServerVersion::read(&mut conn, timeout).await?;
        if !server.mariadb && server.at_least((8, 0, 0)) {
            let set = sqlx::query("SET SESSION information_schema_stats_expiry = 0");
            db::fetch_all(&mut conn, set, timeout, "setting up the session").await?;
        }
        let step = step(&mut conn, timeout).await?;
        Ok(Writer { conn, step })
    }

    /// The counter of the ticket table `database`.`table`, held by `server`; `None` when
    /// the table is not found, has no AUTO_INCREMENT integer column, or is not visible.
    pub async fn ticket_counter(
        &mut self,
        server: String,
        database: &str,
        table: &str,
        timeout: Duration,
    ) -> Result<Option<Counter>, DbError> {
        let what = format!("reading ticket table {database}.{table}");
        let query = sqlx::query(TICKET_COUNTER_SQL).bind(database).bind(table);
        let rows = db::fetch_all(&mut self.conn, query, timeout, &what).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let column_type = db::text(row, 2, &what)?;
        let Some(int_type) =
            IntType::from_information_schema(&db::text(row, 1, &what)?, &column_type)
        else {
            return Ok(None);
        };
        Ok(Some(Counter {
            server,
            schema: database.to_string(),
            table: table.to_string(),
            column: db::text(row, 0, &what)?,
            column_type,
            max: int_type.max(),
            current: db::opt_int(row, 3, &what)?.unwrap_or(1),
            step: self.step,
            sequence: None,
        }))
    }

    /// Every AUTO_INCREMENT counter of the schemas `filter` names, held by `server`.
    pub async fn counters(
        &mut self,
        server: &str,
        filter: &SchemaFilter,
        timeout: Duration,
    ) -> Result<Vec<Counter>, InventoryError> {
        let found = super::catalog::read(&mut self.conn, filter, timeout).await?;
        let step = self.step;
        Ok(found
            .columns
            .into_iter()
            .filter_map(|c| {
                Some(Counter {
                    server: server.to_string(),
                    current: c.auto_increment?,
                    schema: c.id.schema.clone(),
                    table: c.id.table.clone(),
                    column: c.id.column.clone(),
                    column_type: c.column_type,
                    max: c.int_type.max(),
                    step,
                    sequence: None,
                })
            })
            .collect())
    }

    /// Locks the counter's table against every other session, plans the counter again from
    /// its value under the lock and, if it is still to be raised, raises it and reads it
    /// back; then unlocks. Returns the value it stood at and what was done.
    pub async fn raise(
        &mut self,
        counter: &Counter,
        above: u64,
        timeout: Duration,
    ) -> Result<(i128, Action), ServerError> {
        let conn = &mut self.conn;
        let name = format!("{}.{}", counter.schema, counter.table);
        let lock = lock_sql(&counter.schema, &counter.table);
        let locked = execute(conn, lock, timeout, &format!("locking {name}")).await;
        let raised = match locked {
            Ok(_) => raise_locked(conn, counter, above, timeout, &name).await,
            // 1044: no LOCK TABLES on the database; 1142: no SELECT on the table.
            Err(e) => Err(match e.code() {
                Some(code @ 1044) => ServerError::LockDenied {
                    name: name.clone(),
                    schema: counter.schema.clone(),
                    code,
                },
                Some(code @ 1142) => ServerError::LockSelectDenied {
                    name: name.clone(),
                    code,
                },
                _ => e.into(),
            }),
        };
        // Also after a failed or timed-out LOCK TABLES: the lock may still be granted once
        // the statement ends, and it must not outlast this step. Unlocking nothing is
        // harmless.
        let unlock = "UNLOCK TABLES".to_string();
        let unlocked = execute(conn, unlock, timeout, &format!("unlocking {name}")).await;
        let done = raised?;
        unlocked?;
        Ok(done)
    }

    /// Closes the connection cleanly, within `timeout`.
    pub async fn close(self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.conn.close()).await;
    }
}

/// The session's increment and offset: what an insert on this connection uses.
const STEP_SQL: &str = "SELECT CAST(@@SESSION.auto_increment_increment AS CHAR), \
CAST(@@SESSION.auto_increment_offset AS CHAR)";

async fn step(conn: &mut MySqlConnection, timeout: Duration) -> Result<Step, DbError> {
    let what = "reading auto_increment_increment and auto_increment_offset";
    let rows = db::fetch_all(conn, sqlx::query(STEP_SQL), timeout, what).await?;
    let value = |i| -> Result<u64, DbError> {
        let n = match rows.first() {
            Some(row) => db::opt_int(row, i, what)?,
            None => None,
        };
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(1).max(1))
    };
    Ok(Step {
        increment: value(0)?,
        offset: value(1)?,
    })
}

/// The ticket table's auto-increment column, its type and its counter.
const TICKET_COUNTER_SQL: &str = "\
SELECT CAST(c.COLUMN_NAME AS CHAR), CAST(c.DATA_TYPE AS CHAR), CAST(c.COLUMN_TYPE AS CHAR),
       CAST(t.AUTO_INCREMENT AS CHAR)
FROM information_schema.TABLES t
JOIN information_schema.COLUMNS c
  ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME
WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ? AND c.EXTRA LIKE '%auto_increment%'";

/// The counter as the server holds it now. Under the table's write lock nothing else can
/// change it: MariaDB computes this column from the open table (exact, never cached), and
/// on MySQL 8 the session asks for no caching (see [`Writer::connect`]).
const COUNTER_SQL: &str = "SELECT CAST(AUTO_INCREMENT AS CHAR) FROM information_schema.TABLES \
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

/// The table's AUTO_INCREMENT now.
async fn counter_now(
    conn: &mut MySqlConnection,
    counter: &Counter,
    timeout: Duration,
) -> Result<i128, DbError> {
    let what = format!(
        "reading AUTO_INCREMENT of {}.{}",
        counter.schema, counter.table
    );
    let query = sqlx::query(COUNTER_SQL)
        .bind(&counter.schema)
        .bind(&counter.table);
    let rows = db::fetch_all(conn, query, timeout, &what).await?;
    match rows.first() {
        Some(row) => Ok(db::opt_int(row, 0, &what)?.unwrap_or(1)),
        None => Err(DbError::Decode {
            what,
            message: "the table is gone".to_string(),
        }),
    }
}

/// [`Writer::raise`] with the table locked.
async fn raise_locked(
    conn: &mut MySqlConnection,
    counter: &Counter,
    above: u64,
    timeout: Duration,
    name: &str,
) -> Result<(i128, Action), ServerError> {
    let current = counter_now(conn, counter, timeout).await?;
    let action = plan(current, above, counter.step, counter.max);
    let Action::Raise { to } = action else {
        return Ok((current, action));
    };
    let what = format!("raising AUTO_INCREMENT of {name}");
    let alter = alter_sql(&counter.schema, &counter.table, to);
    if let Err(e) = execute(conn, alter, timeout, &what).await {
        // 1142: the statement is denied to the user (query.rs words it for a read).
        return Err(match e.code() {
            Some(code @ 1142) => ServerError::AlterDenied {
                name: name.to_string(),
                code,
            },
            _ => e.into(),
        });
    }
    let after = counter_now(conn, counter, timeout).await?;
    if u128::try_from(after).is_ok_and(|after| after >= to) {
        Ok((current, action))
    } else {
        Err(ServerError::NotRaised {
            name: name.to_string(),
            after,
            to,
        })
    }
}

/// Runs one statement that names a table under `timeout`, as plain text: a different
/// statement for every table, so preparing it (sqlx prepares and caches every
/// `sqlx::query`) would cost a round trip and a cache eviction for each.
async fn execute(
    conn: &mut MySqlConnection,
    sql: String,
    timeout: Duration,
    what: &str,
) -> Result<(), DbError> {
    let statement = sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    crate::db::within(timeout, what, async {
        conn.execute(statement)
            .await
            .map(|_| ())
            .map_err(|e| db::query_error(what, e))
    })
    .await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::mysql::sql_lexer::{Token, hostile_ident, skeleton, tokens};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// The schema and table, whatever they hold, are each one quoted identifier, and the
        /// value is one number.
        #[test]
        fn the_alter_names_exactly_its_table(
            schema in hostile_ident(), table in hostile_ident(), to in any::<u64>()
        ) {
            let mut expected = skeleton("ALTER TABLE");
            expected.push(Token::Ident(schema.clone()));
            expected.push(Token::Punct('.'));
            expected.push(Token::Ident(table.clone()));
            expected.extend(skeleton("AUTO_INCREMENT ="));
            expected.push(Token::Word(to.to_string()));
            prop_assert_eq!(tokens(&alter_sql(&schema, &table, u128::from(to))), Ok(expected));
        }

        /// The lock names exactly one table, whatever its schema and name hold.
        #[test]
        fn the_lock_names_exactly_its_table(schema in hostile_ident(), table in hostile_ident()) {
            let mut expected = skeleton("LOCK TABLES");
            expected.push(Token::Ident(schema.clone()));
            expected.push(Token::Punct('.'));
            expected.push(Token::Ident(table.clone()));
            expected.extend(skeleton("WRITE"));
            prop_assert_eq!(tokens(&lock_sql(&schema, &table)), Ok(expected));
        }
    }
}
