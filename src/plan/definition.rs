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
