//! Integer columns and their tables' AUTO_INCREMENT counters (information_schema.COLUMNS
//! joined with TABLES), in one query for the whole shard.

use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::{ColumnId, SchemaFilter};
use crate::db::{self, DbError};
use crate::headroom::IntType;

/// `{filter}` is a condition on c.TABLE_SCHEMA. Views are left out: they hold no IDs.
/// MariaDB lists system-versioned tables as `SYSTEM VERSIONED`; they are tables too.
const COLUMNS_SQL: &str = "\
SELECT CAST(c.TABLE_SCHEMA AS CHAR), CAST(c.TABLE_NAME AS CHAR), CAST(c.COLUMN_NAME AS CHAR),
       CAST(c.DATA_TYPE AS CHAR), CAST(c.COLUMN_TYPE AS CHAR), CAST(c.EXTRA AS CHAR),
       CAST(t.AUTO_INCREMENT AS CHAR)
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
  AND c.DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')
  AND {filter}
ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION";

/// One integer column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntColumn {
    pub id: ColumnId,
    /// As information_schema writes it, e.g. `int(10) unsigned`.
    pub column_type: String,
    pub int_type: IntType,
    /// The table's AUTO_INCREMENT (the next value handed out) when this is the table's
    /// auto-increment column; `None` otherwise.
    pub auto_increment: Option<i128>,
}

pub(super) async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<Vec<IntColumn>, DbError> {
    let what = "reading information_schema.COLUMNS";
    let rows = super::fetch(conn, COLUMNS_SQL, "c.TABLE_SCHEMA", filter, timeout, what).await?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        let data_type = db::text(row, 3, what)?;
        let column_type = db::text(row, 4, what)?;
        let Some(int_type) = IntType::from_information_schema(&data_type, &column_type) else {
            continue;
        };
        let extra = db::opt_text(row, 5, what)?.unwrap_or_default();
        let is_auto = extra.to_ascii_lowercase().contains("auto_increment");
        let counter = db::opt_int(row, 6, what)?;
        columns.push(IntColumn {
            id: ColumnId {
                schema: db::text(row, 0, what)?,
                table: db::text(row, 1, what)?,
                column: db::text(row, 2, what)?,
            },
            column_type,
            int_type,
            // A fresh table reports AUTO_INCREMENT 1; a NULL counter (some engines) is 1 too.
            auto_increment: is_auto.then(|| counter.unwrap_or(1)),
        });
    }
    Ok(columns)
}
