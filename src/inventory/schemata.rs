//! Which of the watched schemas the monitoring user can see (information_schema.SCHEMATA).

use std::collections::HashSet;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::SchemaFilter;
use crate::db::{self, DbError};

/// `{filter}` is a condition on SCHEMA_NAME.
const SCHEMATA_SQL: &str =
    "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE {filter}";

pub(super) async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<HashSet<String>, DbError> {
    let what = "reading information_schema.SCHEMATA";
    let rows = super::fetch(conn, SCHEMATA_SQL, "SCHEMA_NAME", filter, timeout, what).await?;
    rows.iter().map(|row| db::text(row, 0, what)).collect()
}
