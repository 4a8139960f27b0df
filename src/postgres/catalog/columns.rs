//! Integer columns (`smallint`, `integer`, `bigint`) of ordinary and partitioned tables,
//! from `pg_attribute`: a partitioned table once, through its parent, never a partition.

use sqlx::postgres::PgRow;

use super::{Column, ColumnRef, Identity, IntType, Statement, TableKind};
use crate::db::DbError;
use crate::inventory::SchemaFilter;
use crate::postgres::query as db;

/// The statement, around `condition` on the schema `n.nspname`. Dropped columns keep a
/// row in `pg_attribute` (`attisdropped`), and system columns have `attnum <= 0`.
fn sql(condition: &str) -> String {
    format!(
        "\
SELECT n.nspname::text, c.relname::text, a.attname::text, t.typname::text,
       c.relkind::text, a.attidentity::text, a.attnum::text
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_type AS t ON t.oid = a.atttypid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
  AND t.typname IN ('int2', 'int4', 'int8') AND t.typnamespace = 'pg_catalog'::regnamespace
  AND {condition}"
    )
}

/// The statement as [`read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("columns", filter, sql)
}

/// What a failure of the statement says was being done.
pub(super) const WHAT: &str = "reading the integer columns (pg_attribute)";

/// Decodes the statement's rows.
pub(super) fn decode(rows: &[PgRow]) -> Result<Vec<Column>, DbError> {
    let what = WHAT;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        let typname = db::text_ref(row, 3, what)?;
        let int_type = IntType::from_typname(typname).ok_or_else(|| DbError::Decode {
            what: what.to_string(),
            message: format!("{typname:?} is not an integer type"),
        })?;
        let table_kind = match db::text_ref(row, 4, what)? {
            "p" => TableKind::Partitioned,
            _ => TableKind::Ordinary,
        };
        let identity = match db::opt_text_ref(row, 5, what)? {
            Some("a") => Some(Identity::Always),
            Some("d") => Some(Identity::ByDefault),
            _ => None,
        };
        let position = db::int(row, 6, what)?;
        columns.push(Column {
            id: ColumnRef {
                schema: db::text(row, 0, what)?,
                table: db::text(row, 1, what)?,
                column: db::text(row, 2, what)?,
            },
            position: i16::try_from(position).map_err(|_| DbError::Decode {
                what: what.to_string(),
                message: format!("column position {position} out of range"),
            })?,
            int_type,
            table_kind,
            identity,
        });
    }
    columns.sort_by(|a, b| {
        (&a.id.schema, &a.id.table, a.position).cmp(&(&b.id.schema, &b.id.table, b.position))
    });
    Ok(columns)
}
