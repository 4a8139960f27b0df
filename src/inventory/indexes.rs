//! Columns that lead a B-tree index (information_schema.STATISTICS): the only columns whose
//! MAX headroom ever reads, because there it costs one index dive instead of a table scan.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::{ColumnId, SchemaFilter, Statement};
use crate::db::{self, DbError, ServerVersion};

/// The query, around `filter`, a condition on TABLE_SCHEMA; `usable` leaves out indexes the
/// optimizer will not use. HASH indexes (MEMORY tables) cannot answer MAX without a scan, so
/// only BTREE counts; functional key parts (MySQL 8) have no column.
fn leading_sql(usable: &str, filter: &str) -> String {
    format!(
        "\
SELECT DISTINCT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR)
FROM information_schema.STATISTICS
WHERE SEQ_IN_INDEX = 1 AND INDEX_TYPE = 'BTREE' AND COLUMN_NAME IS NOT NULL{usable}
  AND {filter}"
    )
}

/// The condition that leaves out indexes the optimizer ignores: IGNORED indexes on MariaDB
/// 10.6+, invisible ones on MySQL 8.
fn usable(server: ServerVersion) -> &'static str {
    if server.mariadb && server.at_least((10, 6, 0)) {
        " AND IGNORED = 'NO'"
    } else if !server.mariadb && server.at_least((8, 0, 0)) {
        " AND IS_VISIBLE = 'YES'"
    } else {
        ""
    }
}

/// The statement as [`read`] sends it to a server of version `server`.
pub(super) fn statement(filter: &SchemaFilter, server: ServerVersion) -> Statement {
    let sql = |condition: &str| leading_sql(usable(server), condition);
    Statement::new("STATISTICS", sql, "TABLE_SCHEMA", filter)
}

pub(super) async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    server: ServerVersion,
    timeout: Duration,
) -> Result<HashSet<ColumnId>, DbError> {
    let what = "reading information_schema.STATISTICS";
    let rows = super::fetch(conn, statement(filter, server), timeout, what).await?;
    rows.iter()
        .map(|row| {
            Ok(ColumnId::from_parts(
                db::text(row, 0, what)?,
                db::text(row, 1, what)?,
                db::text(row, 2, what)?,
            ))
        })
        .collect()
}
