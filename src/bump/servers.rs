//! The I/O of `headroom bump`, the same for every engine: reads every counter (ticket
//! tables of the sources, the AUTO_INCREMENT tables of every watched schema of every
//! shard), plans them with [`super::plan`], and with `--apply` raises them. Every server is
//! read before anything is written: one unreachable server and nothing changes anywhere.
//! Each server is reached through its own engine's write session
//! ([`crate::engine::Writer`]), which holds the statements, the locks and the error codes.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::{Action, Row, not_dev, plan, render};
use crate::config::{Endpoint, Settings, ShardSettings, SourceKind, SourceSettings};
use crate::db::DbError;
use crate::engine::Writer;
use crate::escape::escape;
use crate::inventory::{InventoryError, SchemaFilter};

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
pub enum ServerError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(
        "table {database}.{table} not found, or it has no AUTO_INCREMENT integer column, or the user lacks SELECT on it"
    )]
    NoTicketTable { database: String, table: String },
    #[error(
        "sequence {sequence} not found in database {database}, or it counts down, or the user lacks SELECT on it"
    )]
    NoSequence { database: String, sequence: String },
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

/// One server's session and the counters read on it.
struct Target {
    /// `shard shard-01` or `source tickets64 server 127.0.0.1:3306`, for errors.
    what: String,
    writer: Writer,
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
        match target.writer.raise(&row.counter, above, timeout).await {
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
) -> (String, Result<(Writer, Vec<Row>), ServerError>) {
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
            Ok((writer, rows)) => targets.push(Target { what, writer, rows }),
            Err(e) => failed.push((what, e)),
        }
    }
    (targets, failed)
}

async fn close(targets: Vec<Target>, timeout: Duration) {
    for target in targets {
        target.writer.close(timeout).await;
    }
}

/// A session that may write on `endpoint`, each step bounded by `timeout`.
async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Writer, DbError> {
    Writer::connect(&endpoint.url, endpoint.expose_password(), timeout).await
}

async fn read_ticket_server(
    source: &SourceSettings,
    endpoint: &Endpoint,
    above: u64,
    timeout: Duration,
) -> Result<(Writer, Vec<Row>), ServerError> {
    let database = endpoint.database().unwrap_or_default();
    let mut writer = connect(endpoint, timeout).await?;
    let server = format!("{} {}", source.name, endpoint.label());
    let counter = match (source.kind, &source.sequence) {
        (SourceKind::Sequence, Some((schema, name))) => writer
            .sequence_counter(server, schema, name, timeout)
            .await?
            .ok_or_else(|| ServerError::NoSequence {
                database: database.clone(),
                sequence: format!("{schema}.{name}"),
            })?,
        _ => writer
            .ticket_counter(server, &database, &source.table, timeout)
            .await?
            .ok_or_else(|| ServerError::NoTicketTable {
                database: database.clone(),
                table: source.table.clone(),
            })?,
    };
    let action = plan(counter.current, above, counter.step, counter.max);
    Ok((writer, vec![Row { counter, action }]))
}

/// Every AUTO_INCREMENT counter of the shard's watched schemas.
async fn read_shard(
    shard: &ShardSettings,
    above: u64,
    timeout: Duration,
) -> Result<(Writer, Vec<Row>), ServerError> {
    let mut writer = connect(&shard.endpoint, timeout).await?;
    let filter = SchemaFilter::from_config(shard.schemas.as_ref());
    let rows = writer
        .counters(&shard.name, &filter, timeout)
        .await?
        .into_iter()
        .map(|counter| {
            let action = plan(counter.current, above, counter.step, counter.max);
            Row { counter, action }
        })
        .collect();
    Ok((writer, rows))
}
