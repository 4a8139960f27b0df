//! Columns that lead a B-tree index (`pg_index`), the only columns whose `MAX()` headroom
//! reads, because there it is one index dive instead of a scan; and each table's
//! primary key when it has one column (reference inference needs it). One statement
//! reads both.
//!
//! A leading column counts only in an index that can answer `MAX()` for the whole table:
//! B-tree (`pg_am`), valid (a failed `CREATE INDEX CONCURRENTLY` leaves an invalid one),
//! not partial (`indpred`), and led by a column, not an expression (`indkey[0] = 0`,
//! which no `pg_attribute` row matches). A partitioned table's index is its parent's
//! (`relkind 'I'`), valid once every partition has it. And only where the monitoring user
//! may read it (`USAGE` on the schema, `SELECT` on the column or its table): the catalog
//! shows every table, readable or not (a table made after a one-time `GRANT SELECT ON ALL
//! TABLES` is not), and one `MAX()` refused would fail the whole shard's poll; left out,
//! the column that needed it is listed as unresolved instead.

use sqlx::postgres::PgRow;
use std::collections::BTreeSet;

use super::{ColumnRef, Statement};
use crate::db::DbError;
use crate::inventory::SchemaFilter;
use crate::postgres::query as db;

/// The statement, around `condition` on the table's schema `n.nspname`: each row is the
/// first column of an index, whether the index is a one-column primary key, and whether
/// it leads a usable B-tree index the monitoring user may read.
fn sql(condition: &str) -> String {
    format!(
        "\
SELECT n.nspname::text, c.relname::text, a.attname::text, x.primary_key::text,
       (x.leads AND has_schema_privilege(n.oid, 'USAGE')
            AND has_column_privilege(c.oid, a.attnum, 'SELECT'))::text
FROM (
    SELECT i.indrelid, i.indkey[0] AS first,
           i.indisprimary AND i.indnkeyatts = 1 AS primary_key,
           am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL AS leads
    FROM pg_index AS i
    JOIN pg_class AS ic ON ic.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = ic.relam
) AS x
JOIN pg_class AS c ON c.oid = x.indrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = x.indrelid AND a.attnum = x.first
WHERE (x.primary_key OR x.leads)
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND {condition}"
    )
}

/// The statement as [`read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("indexes", filter, sql)
}

/// What a failure of the statement says was being done.
pub(super) const WHAT: &str = "reading the indexes (pg_index)";

/// Leading columns and one-column primary keys, each sorted.
/// Decodes the statement's rows.
pub(super) fn decode(rows: &[PgRow]) -> Result<(Vec<ColumnRef>, Vec<ColumnRef>), DbError> {
    let what = WHAT;
    let mut leading = BTreeSet::new();
    let mut primary = BTreeSet::new();
    for row in rows {
        let id = ColumnRef {
            schema: db::text(row, 0, what)?,
            table: db::text(row, 1, what)?,
            column: db::text(row, 2, what)?,
        };
        if db::flag(row, 3, what)? {
            primary.insert(id.clone());
        }
        if db::flag(row, 4, what)? {
            leading.insert(id);
        }
    }
    Ok((leading.into_iter().collect(), primary.into_iter().collect()))
}
