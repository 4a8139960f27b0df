//! Declared foreign keys (information_schema.KEY_COLUMN_USAGE), one row per column pair.

use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::Statement;
use crate::db::DbError;
use crate::inventory::{ColumnId, ForeignKey, SchemaFilter};
use crate::mysql::query as db;

/// The query, around `filter`, a condition on the child's TABLE_SCHEMA; the parent may live
/// anywhere.
fn foreign_keys_sql(filter: &str) -> String {
    format!(
        "\
SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR),
       CAST(REFERENCED_TABLE_SCHEMA AS CHAR), CAST(REFERENCED_TABLE_NAME AS CHAR),
       CAST(REFERENCED_COLUMN_NAME AS CHAR)
FROM information_schema.KEY_COLUMN_USAGE
WHERE REFERENCED_TABLE_NAME IS NOT NULL AND REFERENCED_COLUMN_NAME IS NOT NULL
  AND {filter}"
    )
}

/// The statement as [`read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("KEY_COLUMN_USAGE", foreign_keys_sql, "TABLE_SCHEMA", filter)
}

pub(super) async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<Vec<ForeignKey>, DbError> {
    let what = "reading information_schema.KEY_COLUMN_USAGE";
    let rows = super::fetch(conn, statement(filter), timeout, what).await?;
    rows.iter()
        .map(|row| {
            Ok(ForeignKey {
                child: ColumnId::from_parts(
                    db::text(row, 0, what)?,
                    db::text(row, 1, what)?,
                    db::text(row, 2, what)?,
                ),
                parent: ColumnId::from_parts(
                    db::text(row, 3, what)?,
                    db::text(row, 4, what)?,
                    db::text(row, 5, what)?,
                ),
            })
        })
        .collect()
}
