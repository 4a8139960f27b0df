//! Which of the watched schemas the monitoring user can see (information_schema.SCHEMATA).

use std::collections::HashSet;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::Statement;
use crate::db::DbError;
use crate::inventory::SchemaFilter;
use crate::mysql::query as db;

/// The query, around `filter`, a condition on SCHEMA_NAME.
fn schemata_sql(filter: &str) -> String {
    format!("SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE {filter}")
}

/// The statement as [`read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("SCHEMATA", schemata_sql, "SCHEMA_NAME", filter)
}

pub(super) async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<HashSet<String>, DbError> {
    let what = "reading information_schema.SCHEMATA";
    let rows = super::fetch(conn, statement(filter), timeout, what).await?;
    rows.iter().map(|row| db::text(row, 0, what)).collect()
}
