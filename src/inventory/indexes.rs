//! Columns that lead a B-tree index (information_schema.STATISTICS): the only columns whose
//! MAX headroom ever reads, because there it costs one index dive instead of a table scan.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::{ColumnId, SchemaFilter};
use crate::db::{self, DbError};

/// `{filter}` is a condition on TABLE_SCHEMA. HASH indexes (MEMORY tables) cannot answer
/// MAX without a scan, so only BTREE counts.
const LEADING_SQL: &str = "\
SELECT DISTINCT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR)
FROM information_schema.STATISTICS
WHERE SEQ_IN_INDEX = 1 AND INDEX_TYPE = 'BTREE' AND {filter}";

pub(super) async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<HashSet<ColumnId>, DbError> {
    let what = "reading information_schema.STATISTICS";
    let rows = super::fetch(conn, LEADING_SQL, "TABLE_SCHEMA", filter, timeout, what).await?;
    rows.iter()
        .map(|row| {
            Ok(ColumnId {
                schema: db::text(row, 0, what)?,
                table: db::text(row, 1, what)?,
                column: db::text(row, 2, what)?,
            })
        })
        .collect()
}
