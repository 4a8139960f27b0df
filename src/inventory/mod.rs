//! What exists on a shard: integer columns with their tables' AUTO_INCREMENT counters,
//! declared foreign keys, and which columns lead a B-tree index. One file per
//! information_schema query family; [`read`] runs five plain queries (no join between
//! information_schema tables: on MariaDB such a join costs tables × tables) and joins in
//! memory, a constant number of queries per shard per poll, however many tables the shard
//! holds. [`sql_mode`] reads whether the shard is strict, one more small query per poll.

pub mod column_type;
mod columns;
mod foreign_keys;
mod indexes;
pub mod maxima;
mod schemata;
pub mod sql_mode;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use crate::db::{DbError, ErrorReport, ServerVersion};

pub use columns::IntColumn;
pub use foreign_keys::ForeignKey;

/// Schemas that belong to the server, never watched unless named in `schemas`.
pub const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// A column's full name on a shard: one allocation, shared (a clone is a reference count)
/// by the plan, the growth tracker, the store's reports and the pager. Its parts are read
/// through [`ColumnName`] (`id.schema`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColumnId(Arc<ColumnName>);

/// The parts of a [`ColumnId`], as information_schema names them.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ColumnName {
    pub schema: String,
    pub table: String,
    pub column: String,
}

impl ColumnId {
    pub fn new(schema: &str, table: &str, column: &str) -> ColumnId {
        ColumnId::from_parts(schema.to_string(), table.to_string(), column.to_string())
    }

    /// The name from parts already owned (as a reader decodes them).
    pub fn from_parts(schema: String, table: String, column: String) -> ColumnId {
        ColumnId(Arc::new(ColumnName {
            schema,
            table,
            column,
        }))
    }
}

impl std::ops::Deref for ColumnId {
    type Target = ColumnName;

    fn deref(&self) -> &ColumnName {
        &self.0
    }
}

impl serde::Serialize for ColumnId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl std::fmt::Display for ColumnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// Everything one poll learns about a shard's schema.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Every integer column of every base table in the watched schemas.
    pub columns: Vec<IntColumn>,
    /// Declared foreign keys, one entry per column pair.
    pub foreign_keys: Vec<ForeignKey>,
    /// Columns that are the first column of some B-tree index: `MAX(column)` on them is one
    /// index dive. No other column is ever read.
    pub leading: HashSet<ColumnId>,
    /// Each table's primary key, by `(schema, table)`, when it is a single column (of any
    /// type): read from the `PRIMARY` index by the same STATISTICS query.
    pub primary_keys: HashMap<(String, String), String>,
}

/// Which schemas a poll looks at.
#[derive(Debug, Clone)]
pub enum SchemaFilter {
    /// Exactly these (from `schemas = [...]`).
    Only(Vec<String>),
    /// Every schema but [`SYSTEM_SCHEMAS`].
    AllButSystem,
}

impl SchemaFilter {
    pub fn from_config(schemas: Option<&Vec<String>>) -> SchemaFilter {
        match schemas {
            Some(list) => SchemaFilter::Only(list.clone()),
            None => SchemaFilter::AllButSystem,
        }
    }

    /// A SQL condition on `column` with `?` placeholders, and the values to bind.
    fn condition(&self, column: &str) -> (String, Vec<String>) {
        let (op, values): (&str, Vec<String>) = match self {
            SchemaFilter::Only(list) => ("IN", list.clone()),
            SchemaFilter::AllButSystem => (
                "NOT IN",
                SYSTEM_SCHEMAS.iter().map(|s| s.to_string()).collect(),
            ),
        };
        let sql = format!("{column} {op} ({})", crate::db::placeholders(values.len()));
        (sql, values)
    }
}

/// Why a shard's inventory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "schema {} not visible to the monitoring user: it does not exist or the user lacks SELECT on it",
        .0.join(", ")
    )]
    SchemasNotVisible(Vec<String>),
    #[error("no schema is visible to the monitoring user: grant it SELECT on the schemas to watch")]
    NothingVisible,
}

impl InventoryError {
    /// The error as it may be published.
    pub fn report(&self) -> ErrorReport {
        match self {
            InventoryError::Db(e) => e.into(),
            _ => ErrorReport {
                message: self.to_string(),
                class: "not_visible",
                code: None,
            },
        }
    }
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
        let (condition, binds) = filter.condition(schema_column);
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
    crate::db::fetch_all(conn, query, timeout, what).await
}
