//! Declared foreign keys (information_schema.KEY_COLUMN_USAGE), one row per column pair.

use sqlx::mysql::MySqlRow;

use super::{Known, Statement};
use crate::db::DbError;
use crate::inventory::{ForeignKey, SchemaFilter};

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

/// The statement as [`super::read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("KEY_COLUMN_USAGE", foreign_keys_sql, "TABLE_SCHEMA", filter)
}

/// What reading the KEY_COLUMN_USAGE query is called in errors.
pub(super) const WHAT: &str = "reading information_schema.KEY_COLUMN_USAGE";

/// The foreign keys of the KEY_COLUMN_USAGE query's rows.
pub(super) fn decode(rows: &[MySqlRow], known: &Known) -> Result<Vec<ForeignKey>, DbError> {
    rows.iter()
        .map(|row| {
            Ok(ForeignKey {
                child: known.id(row, 0, WHAT)?,
                parent: known.id(row, 3, WHAT)?,
            })
        })
        .collect()
}
