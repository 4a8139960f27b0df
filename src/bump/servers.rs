//! The I/O of `headroom bump`: reads every counter (ticket tables of the sources, the
//! AUTO_INCREMENT tables of every watched schema of every shard, through the daemon's own
//! inventory reader and schema filter), plans them with [`super::plan`], and with `--apply`
//! raises them. Every server is read before anything is written: one unreachable server
//! and nothing changes anywhere.
//!
//! These sessions write, so they are not the daemon's read-only ones ([`crate::mysql::Connector`]);
//! each statement is still bounded by `poll.query_timeout`. Each raise is one step against
//! every other session: `LOCK TABLES ... WRITE`, the counter read and planned again, the
//! ALTER, the counter read back, `UNLOCK TABLES`. A counter another session raised past the
//! bound since the first read is seen and left alone; without the lock it could move between
//! the read and the ALTER, which would set it back down (a read after the ALTER cannot see
//! what it overwrote).

use std::str::FromStr;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection, Executor};

use super::{Action, Counter, Row, Step, alter_sql, lock_sql, not_dev, plan, render};
use crate::config::{Endpoint, Settings, ShardSettings, SourceKind, SourceSettings};
use crate::db::DbError;
use crate::escape::escape;
use crate::headroom::IntType;
use crate::inventory::{InventoryError, SchemaFilter};
use crate::mysql::ServerVersion;
use crate::mysql::query as db;

/// What `bump` prints and how it ends.
#[derive(Debug)]
pub struct Outcome {
    /// The report (stdout); empty when nothing could be planned.
    pub output: String,
    /// Why it refused or what failed, one line each (stderr).
    pub errors: String,
    /// 0 done, 2 refused, a server unreadable, or a raise that failed.
    pub exit_code: u8,
}

/// Why one server could not be read or raised. The text is safe to print: it never holds
/// what a server sent.
#[derive(Debug, thiserror::Error)]
enum ServerError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(
        "table {database}.{table} not found, or it has no AUTO_INCREMENT integer column, or the user lacks SELECT on it"
    )]
    NoTicketTable { database: String, table: String },
    #[error("{name}: AUTO_INCREMENT is {after} after the ALTER TABLE, not {to}")]
    NotRaised { name: String, after: i128, to: u128 },
    #[error(
        "raising AUTO_INCREMENT of {name}: the user lacks ALTER on the table (server error {code})"
    )]
    AlterDenied { name: String, code: u16 },
    #[error(
        "raising AUTO_INCREMENT of {name}: the user lacks LOCK TABLES on database {schema} (server error {code}); bump locks each table while it reads and raises its counter"
    )]
    LockDenied {
        name: String,
        schema: String,
        code: u16,
    },
    #[error(
        "raising AUTO_INCREMENT of {name}: the user lacks SELECT on the table, which LOCK TABLES needs (server error {code})"
    )]
    LockSelectDenied { name: String, code: u16 },
}

/// One server's connection and the counters read on it.
struct Target {
    /// `shard shard-01` or `source tickets64 server 127.0.0.1:3306`, for errors.
    what: String,
    conn: MySqlConnection,
    rows: Vec<Row>,
}

/// Runs `headroom bump`: refuses unless every shard and source is `dev`, reads every
/// counter, plans each above `above`, and with `apply` raises them.
pub async fn run(settings: &Settings, above: u64, apply: bool) -> Outcome {
    let refused = not_dev(settings);
    if !refused.is_empty() {
        return Outcome {
            output: String::new(),
            errors: format!(
                "headroom: bump refused: it raises counters, so every [[shards]] and [[sources]] must have environment = \"dev\"; not dev: {}\n",
                escape(&refused.join(", "))
            ),
            exit_code: 2,
        };
    }
    let timeout = settings.poll.query_timeout;
    let concurrency = settings.poll.concurrency;
    let (mut targets, failed) = read_all(settings, above, timeout, concurrency).await;
    let mut errors = String::new();
    for (what, error) in &failed {
        errors.push_str(&format!(
            "headroom: {}\n",
            escape(&format!("{what}: {error}"))
        ));
    }
    if !failed.is_empty() {
        errors.push_str("headroom: nothing was changed\n");
        close(targets, timeout).await;
        return Outcome {
            output: String::new(),
            errors,
            exit_code: 2,
        };
    }
    if apply {
        // Servers in parallel (up to poll.concurrency), each one's tables one by one.
        let failures: Vec<String> = stream::iter(targets.iter_mut())
            .map(|target| raise_all(target, above, timeout))
            .buffered(concurrency)
            .concat()
            .await;
        for line in failures {
            errors.push_str(&format!("headroom: {}\n", escape(&line)));
        }
    }
    let rows: Vec<Row> = targets.iter().flat_map(|t| t.rows.clone()).collect();
    close(targets, timeout).await;
    Outcome {
        output: render(&rows, above, apply),
        exit_code: if errors.is_empty() { 0 } else { 2 },
        errors,
    }
}

/// Raises every counter of one server planned to be raised; a raise that fails is marked
/// [`Action::Failed`] and its error returned, and the others are still made.
async fn raise_all(target: &mut Target, above: u64, timeout: Duration) -> Vec<String> {
    let mut failures = Vec::new();
    for row in &mut target.rows {
        let Action::Raise { to } = row.action else {
            continue;
        };
        match raise(&mut target.conn, &row.counter, above, timeout).await {
            Ok((current, action)) => {
                row.counter.current = current;
                row.action = action;
            }
            Err(e) => {
                row.action = Action::Failed { to };
                failures.push(format!("{}: {e}", target.what));
            }
        }
    }
    failures
}

/// A server to read: a ticket server of a source, or a shard.
enum Job<'a> {
    Ticket(&'a SourceSettings, &'a Endpoint),
    Shard(&'a ShardSettings),
}

/// Reads one server and plans its counters; what it is, for messages.
async fn read_one(
    job: Job<'_>,
    above: u64,
    timeout: Duration,
) -> (String, Result<(MySqlConnection, Vec<Row>), ServerError>) {
    match job {
        Job::Ticket(source, endpoint) => (
            format!("source {} server {}", source.name, endpoint.label()),
            read_ticket_server(source, endpoint, above, timeout).await,
        ),
        Job::Shard(shard) => (
            format!("shard {}", shard.name),
            read_shard(shard, above, timeout).await,
        ),
    }
}

/// Every source server, then every shard of the configuration (not only this replica's
/// share), read and planned (up to `concurrency` at once), in that order; and what could
/// not be read, named.
async fn read_all(
    settings: &Settings,
    above: u64,
    timeout: Duration,
    concurrency: usize,
) -> (Vec<Target>, Vec<(String, ServerError)>) {
    let tickets = settings
        .sources
        .iter()
        .flat_map(|s| s.servers.iter().map(move |e| Job::Ticket(s, e)));
    let jobs = tickets.chain(settings.configured_shards.iter().map(Job::Shard));
    let results: Vec<_> = stream::iter(jobs)
        .map(|job| read_one(job, above, timeout))
        .buffered(concurrency)
        .collect()
        .await;
    let mut targets = Vec::new();
    let mut failed = Vec::new();
    for (what, result) in results {
        match result {
            Ok((conn, rows)) => targets.push(Target { what, conn, rows }),
            Err(e) => failed.push((what, e)),
        }
    }
    (targets, failed)
}

async fn close(targets: Vec<Target>, timeout: Duration) {
    for target in targets {
        let _ = tokio::time::timeout(timeout, target.conn.close()).await;
    }
}

/// A session that may write, each step bounded by `timeout`. On MySQL 8, information_schema
/// is told not to cache AUTO_INCREMENT (otherwise it may be a day old, and a stale counter
/// planned "up" could be a lower one).
async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<MySqlConnection, DbError> {
    let connecting = |e| db::query_error("connecting", e);
    let mut options = MySqlConnectOptions::from_str(endpoint.url.as_str())
        .map_err(connecting)?
        // Statements hold names read from the databases: never log them above debug.
        .disable_statement_logging();
    if let Some(password) = endpoint.expose_password() {
        options = options.password(password);
    }
    let mut conn = match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => return Err(connecting(error)),
        Err(_) => {
            return Err(DbError::Timeout {
                what: "connecting".to_string(),
                after: timeout,
            });
        }
    };
    let server = ServerVersion::read(&mut conn, timeout).await?;
    if !server.mariadb && server.at_least((8, 0, 0)) {
        let set = sqlx::query("SET SESSION information_schema_stats_expiry = 0");
        db::fetch_all(&mut conn, set, timeout, "setting up the session").await?;
    }
    Ok(conn)
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

async fn read_ticket_server(
    source: &SourceSettings,
    endpoint: &Endpoint,
    above: u64,
    timeout: Duration,
) -> Result<(MySqlConnection, Vec<Row>), ServerError> {
    let SourceKind::TicketServer = source.kind;
    let database = endpoint.database().unwrap_or_default();
    let mut conn = connect(endpoint, timeout).await?;
    let step = step(&mut conn, timeout).await?;
    let what = format!("reading ticket table {database}.{}", source.table);
    let query = sqlx::query(TICKET_COUNTER_SQL)
        .bind(&database)
        .bind(&source.table);
    let rows = db::fetch_all(&mut conn, query, timeout, &what).await?;
    let not_found = || ServerError::NoTicketTable {
        database: database.clone(),
        table: source.table.clone(),
    };
    let row = rows.first().ok_or_else(not_found)?;
    let column_type = db::text(row, 2, &what)?;
    let int_type = IntType::from_information_schema(&db::text(row, 1, &what)?, &column_type)
        .ok_or_else(not_found)?;
    let counter = Counter {
        server: format!("{} {}", source.name, endpoint.label()),
        schema: database.clone(),
        table: source.table.clone(),
        column: db::text(row, 0, &what)?,
        column_type,
        max: int_type.max(),
        current: db::opt_int(row, 3, &what)?.unwrap_or(1),
        step,
    };
    let action = plan(counter.current, above, step, counter.max);
    Ok((conn, vec![Row { counter, action }]))
}

/// Every AUTO_INCREMENT counter of the shard's watched schemas.
async fn read_shard(
    shard: &ShardSettings,
    above: u64,
    timeout: Duration,
) -> Result<(MySqlConnection, Vec<Row>), ServerError> {
    let mut conn = connect(&shard.endpoint, timeout).await?;
    let step = step(&mut conn, timeout).await?;
    let filter = SchemaFilter::from_config(shard.schemas.as_ref());
    let found = crate::mysql::catalog::read(&mut conn, &filter, timeout).await?;
    let rows = found
        .columns
        .into_iter()
        .filter_map(|c| {
            let current = c.auto_increment?;
            let counter = Counter {
                server: shard.name.clone(),
                schema: c.id.schema.clone(),
                table: c.id.table.clone(),
                column: c.id.column.clone(),
                column_type: c.column_type,
                max: c.int_type.max(),
                current,
                step,
            };
            let action = plan(current, above, step, counter.max);
            Some(Row { counter, action })
        })
        .collect();
    Ok((conn, rows))
}

/// The counter as the server holds it now. Under the table's write lock nothing else can
/// change it: MariaDB computes this column from the open table (exact, never cached), and
/// on MySQL 8 the session asks for no caching (see [`connect`]).
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

/// Locks the counter's table against every other session, plans the counter again from its
/// value under the lock and, if it is still to be raised, raises it and reads it back; then
/// unlocks. Returns the value it stood at and what was done.
async fn raise(
    conn: &mut MySqlConnection,
    counter: &Counter,
    above: u64,
    timeout: Duration,
) -> Result<(i128, Action), ServerError> {
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
    // Also after a failed or timed-out LOCK TABLES: the lock may still be granted once the
    // statement ends, and it must not outlast this step. Unlocking nothing is harmless.
    let unlock = "UNLOCK TABLES".to_string();
    let unlocked = execute(conn, unlock, timeout, &format!("unlocking {name}")).await;
    let done = raised?;
    unlocked?;
    Ok(done)
}

/// [`raise`] with the table locked.
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
        // 1142: the statement is denied to the user (db.rs words it for a read).
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
