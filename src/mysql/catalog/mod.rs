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

use std::collections::HashSet;
use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlRow};

use super::ServerVersion;
use super::query::{self as db, fetch_all, placeholders};
use crate::db::{DbError, overlapped};
use crate::inventory::{
    ColumnId, IntColumn, Inventory, InventoryError, Name, NameRef, SchemaFilter,
};

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
///
/// Each answer is decoded while the server works on the next query (sent first, see
/// [`crate::db::overlapped`]): on a shard of 20,000 tables the rows of one query take the client tens
/// of milliseconds to decode, and the server hundreds to answer the next.
pub async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<Inventory, InventoryError> {
    let (inventory, _) = read_sharing(conn, filter, timeout, &HashSet::new()).await?;
    Ok(inventory)
}

/// As [`read`], each column whose name is in `last` (the integer columns of an earlier
/// read) sharing that [`ColumnId`] instead of making one; returns the inventory with its
/// integer columns' names, for the next read to share.
pub async fn read_sharing(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
    last: &HashSet<ColumnId>,
) -> Result<(Inventory, HashSet<ColumnId>), InventoryError> {
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
    let column_rows = fetch(
        conn,
        columns::columns_statement(filter),
        timeout,
        columns::COLUMNS,
    )
    .await?;
    let (table_rows, columns) = overlapped(
        fetch(
            conn,
            columns::tables_statement(filter),
            timeout,
            columns::TABLES,
        ),
        || columns::decode_columns(&column_rows, last),
    )
    .await?;
    drop(column_rows);
    let server = ServerVersion::read(conn, timeout).await?;
    let (index_rows, columns) = overlapped(
        fetch(
            conn,
            indexes::statement(filter, server),
            timeout,
            indexes::WHAT,
        ),
        || columns::decode_tables(&table_rows, columns),
    )
    .await?;
    drop(table_rows);
    let known = Known::new(&columns);
    let (key_rows, (leading, primary_keys)) = overlapped(
        fetch(
            conn,
            foreign_keys::statement(filter),
            timeout,
            foreign_keys::WHAT,
        ),
        || indexes::decode(&index_rows, &known),
    )
    .await?;
    drop(index_rows);
    let foreign_keys = foreign_keys::decode(&key_rows, &known)?;
    let inventory = Inventory {
        columns,
        foreign_keys,
        leading,
        primary_keys,
    };
    Ok((inventory, known.0))
}

/// The integer columns already read, by name: a later row that names one of them shares
/// its [`ColumnId`] (a reference count) instead of making another (four allocations), and
/// compares equal to it at once.
struct Known(HashSet<ColumnId>);

impl Known {
    fn new(columns: &[IntColumn]) -> Known {
        Known(columns.iter().map(|c| c.id.clone()).collect())
    }

    /// The column named by cells `first`, `first + 1` and `first + 2` of `row`.
    fn id(&self, row: &MySqlRow, first: usize, what: &str) -> Result<ColumnId, DbError> {
        share(&self.0, row, first, what)
    }
}

/// The column named by cells `first`, `first + 1` and `first + 2` of `row`: its id in
/// `known` when there, a new one otherwise.
fn share(
    known: &HashSet<ColumnId>,
    row: &MySqlRow,
    first: usize,
    what: &str,
) -> Result<ColumnId, DbError> {
    let schema = db::str_cell(row, first, what)?;
    let table = db::str_cell(row, first + 1, what)?;
    let column = db::str_cell(row, first + 2, what)?;
    let key = NameRef::new(schema, table, column);
    Ok(match known.get(&key as &dyn Name) {
        Some(id) => id.clone(),
        None => ColumnId::new(schema, table, column),
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
/// `server` (besides `SELECT VERSION()`, sent before STATISTICS): what a benchmark replays
/// through a plain client to measure the floor under headroom's cost.
pub fn statements(filter: &SchemaFilter, server: ServerVersion) -> Vec<Statement> {
    vec![
        schemata::statement(filter),
        columns::columns_statement(filter),
        columns::tables_statement(filter),
        indexes::statement(filter, server),
        foreign_keys::statement(filter),
    ]
}

/// Runs one information_schema statement, its schema names bound, naming `what` in any
/// error.
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
