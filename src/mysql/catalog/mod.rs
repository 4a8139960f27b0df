//! The catalog of a MySQL or MariaDB shard: integer columns with their tables'
//! AUTO_INCREMENT counters, declared foreign keys, and which columns lead a B-tree index.
//! One file per information_schema query family; [`read`] runs five plain queries (no join
//! between information_schema tables: on MariaDB such a join costs tables × tables) and
//! joins in memory, a constant number of queries per shard per poll, however many tables
//! the shard holds.

mod columns;
mod foreign_keys;
mod indexes;
mod schemata;

use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::ServerVersion;
use super::query::{fetch_all, placeholders};
use crate::db::DbError;
use crate::inventory::{Inventory, InventoryError, SchemaFilter};

/// Schemas that belong to the server, never watched unless named in `schemas`.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// A SQL condition of `filter` on `column` with `?` placeholders, and the values to bind.
fn condition(filter: &SchemaFilter, column: &str) -> (String, Vec<String>) {
    let (op, values): (&str, Vec<String>) = match filter {
        SchemaFilter::Only(list) => ("IN", list.clone()),
        SchemaFilter::AllButSystem => (
            "NOT IN",
            SYSTEM_SCHEMAS.iter().map(|s| s.to_string()).collect(),
        ),
    };
    let sql = format!("{column} {op} ({})", placeholders(values.len()));
    (sql, values)
}

/// Reads a shard's inventory with five information_schema queries and the server's
/// version, each under `timeout`.
pub async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<Inventory, InventoryError> {
    let visible = schemata::read(conn, filter, timeout).await?;
    match filter {
        SchemaFilter::Only(wanted) => {
            let missing: Vec<String> = wanted
                .iter()
                .filter(|s| !visible.contains(*s))
                .cloned()
                .collect();
            if !missing.is_empty() {
                return Err(InventoryError::SchemasNotVisible(missing));
            }
        }
        SchemaFilter::AllButSystem => {
            if visible.is_empty() {
                return Err(InventoryError::NothingVisible);
            }
        }
    }
    let columns = columns::read(conn, filter, timeout).await?;
    let foreign_keys = foreign_keys::read(conn, filter, timeout).await?;
    let server = ServerVersion::read(conn, timeout).await?;
    let (leading, primary_keys) = indexes::read(conn, filter, server, timeout).await?;
    Ok(Inventory {
        columns,
        foreign_keys,
        leading,
        primary_keys,
    })
}

/// One information_schema statement as [`read`] sends it: its text, with `?` placeholders
/// for the schema names of the filter, and the values bound to them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The information_schema table it reads, e.g. `COLUMNS`.
    pub family: &'static str,
    pub sql: String,
    pub binds: Vec<String>,
}

impl Statement {
    /// `sql` writes the statement around a condition on `schema_column` (built here from `?`
    /// placeholders, with the schema names to bind).
    fn new(
        family: &'static str,
        sql: impl FnOnce(&str) -> String,
        schema_column: &str,
        filter: &SchemaFilter,
    ) -> Statement {
        let (condition, binds) = condition(filter, schema_column);
        Statement {
            family,
            sql: sql(&condition),
            binds,
        }
    }
}

/// Every information_schema statement one [`read`] sends, in order, for a server of version
/// `server` (besides `SELECT VERSION()`): what a benchmark replays through a plain client to
/// measure the floor under headroom's cost.
pub fn statements(filter: &SchemaFilter, server: ServerVersion) -> Vec<Statement> {
    vec![
        schemata::statement(filter),
        columns::columns_statement(filter),
        columns::tables_statement(filter),
        foreign_keys::statement(filter),
        indexes::statement(filter, server),
    ]
}

/// Runs one information_schema statement, its schema names bound.
async fn fetch(
    conn: &mut MySqlConnection,
    statement: Statement,
    timeout: Duration,
    what: &str,
) -> Result<Vec<sqlx::mysql::MySqlRow>, DbError> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.sql));
    for value in statement.binds {
        query = query.bind(value);
    }
    fetch_all(conn, query, timeout, what).await
}
