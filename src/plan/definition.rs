//! What a widening needs to know that a poll does not read: a column's full definition
//! (information_schema.COLUMNS) and its table's size and engine (information_schema.TABLES),
//! read at plan time, one column at a time, every name bound as a value.

use std::time::Duration;

use serde::Serialize;
use sqlx::mysql::MySqlConnection;

use super::rule::Definition;
use crate::db::{self, DbError};
use crate::inventory::ColumnId;

const COLUMN_SQL: &str = "\
SELECT CAST(IS_NULLABLE AS CHAR), CAST(COLUMN_DEFAULT AS CHAR), CAST(EXTRA AS CHAR),
       CAST(COLUMN_COMMENT AS CHAR), CAST(COLUMN_TYPE AS CHAR)
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?";

const TABLE_SQL: &str = "\
SELECT CAST(TABLE_ROWS AS CHAR), CAST(DATA_LENGTH AS CHAR), CAST(INDEX_LENGTH AS CHAR),
       CAST(ENGINE AS CHAR)
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

/// A table's size as information_schema.TABLES estimates it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TableSize {
    /// `TABLE_ROWS`: exact for MyISAM, an estimate for InnoDB.
    pub rows: u64,
    /// `DATA_LENGTH`.
    pub data_bytes: u64,
    /// `INDEX_LENGTH`: a rebuild writes every index again.
    pub index_bytes: u64,
    /// `ENGINE`, e.g. `InnoDB`; empty when the server gives none.
    pub engine: String,
}

impl TableSize {
    /// Data and indexes: what a rebuild copies.
    pub fn bytes(&self) -> u64 {
        self.data_bytes.saturating_add(self.index_bytes)
    }
}

fn count(value: Option<i128>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// The column's definition and its table's size; `None` when the column is gone.
pub async fn read(
    conn: &mut MySqlConnection,
    id: &ColumnId,
    timeout: Duration,
) -> Result<Option<(Definition, TableSize)>, DbError> {
    let what = "reading a column definition from information_schema.COLUMNS";
    let query = sqlx::query(COLUMN_SQL)
        .bind(&id.schema)
        .bind(&id.table)
        .bind(&id.column);
    let rows = db::fetch_all(conn, query, timeout, what).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let definition = Definition {
        nullable: db::text(row, 0, what)?.eq_ignore_ascii_case("YES"),
        default: db::opt_text(row, 1, what)?,
        extra: db::opt_text(row, 2, what)?.unwrap_or_default(),
        comment: db::opt_text(row, 3, what)?.unwrap_or_default(),
        column_type: db::text(row, 4, what)?,
    };
    let what = "reading a table's size from information_schema.TABLES";
    let query = sqlx::query(TABLE_SQL).bind(&id.schema).bind(&id.table);
    let rows = db::fetch_all(conn, query, timeout, what).await?;
    let size = match rows.first() {
        None => TableSize::default(),
        Some(row) => TableSize {
            rows: count(db::opt_int(row, 0, what)?),
            data_bytes: count(db::opt_int(row, 1, what)?),
            index_bytes: count(db::opt_int(row, 2, what)?),
            engine: db::opt_text(row, 3, what)?.unwrap_or_default(),
        },
    };
    Ok(Some((definition, size)))
}

const FOREIGN_KEYS_SQL: &str = "\
SELECT CAST(k.CONSTRAINT_NAME AS CHAR), CAST(k.TABLE_SCHEMA AS CHAR), CAST(k.TABLE_NAME AS CHAR),
       CAST(k.COLUMN_NAME AS CHAR), CAST(k.REFERENCED_TABLE_SCHEMA AS CHAR),
       CAST(k.REFERENCED_TABLE_NAME AS CHAR), CAST(k.REFERENCED_COLUMN_NAME AS CHAR),
       CAST(r.UPDATE_RULE AS CHAR), CAST(r.DELETE_RULE AS CHAR)
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
 AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.REFERENCED_TABLE_NAME IS NOT NULL
  AND ((k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ?)
    OR (k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ?))
ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION";

pub use super::rule::ForeignKey;

/// Every foreign key whose child or parent is `schema`.`table`.
pub async fn foreign_keys(
    conn: &mut MySqlConnection,
    schema: &str,
    table: &str,
    timeout: Duration,
) -> Result<Vec<ForeignKey>, DbError> {
    let what = "reading foreign keys from information_schema.KEY_COLUMN_USAGE";
    let query = sqlx::query(FOREIGN_KEYS_SQL)
        .bind(schema)
        .bind(table)
        .bind(schema)
        .bind(table);
    let rows = db::fetch_all(conn, query, timeout, what).await?;
    let mut out: Vec<ForeignKey> = Vec::new();
    for row in &rows {
        let name = db::text(row, 0, what)?;
        let (schema, table) = (db::text(row, 1, what)?, db::text(row, 2, what)?);
        let column = db::text(row, 3, what)?;
        let parent_column = db::text(row, 6, what)?;
        if let Some(last) = out.last_mut()
            && last.name == name
            && last.schema == schema
            && last.table == table
        {
            last.columns.push(column);
            last.parent_columns.push(parent_column);
            continue;
        }
        out.push(ForeignKey {
            name,
            schema,
            table,
            columns: vec![column],
            parent_schema: db::text(row, 4, what)?,
            parent_table: db::text(row, 5, what)?,
            parent_columns: vec![parent_column],
            on_update: db::text(row, 7, what)?,
            on_delete: db::text(row, 8, what)?,
        });
    }
    Ok(out)
}
