//! Declared foreign keys (`pg_constraint` 'f'), one row per column pair, paired in the
//! key's order (`conkey` with `confkey`) and grouped back into keys here.
//!
//! A key declared on a partitioned table is cloned onto each partition, and a key that
//! references a partitioned table gets a clone referencing each of its partitions; the
//! clones have a `conparentid`, so only the key as declared is read.

use sqlx::postgres::PgRow;
use std::collections::BTreeMap;

use super::{ColumnRef, ForeignKey, Statement};
use crate::db::DbError;
use crate::inventory::SchemaFilter;
use crate::postgres::query as db;

/// The statement, around `condition` on the child's schema `n.nspname`; the parent may
/// live anywhere.
fn sql(condition: &str) -> String {
    format!(
        "\
SELECT k.oid::text, k.conname::text, k.ord::text,
       n.nspname::text, c.relname::text, ca.attname::text,
       pn.nspname::text, p.relname::text, pa.attname::text
FROM (
    SELECT con.oid, con.conname, con.conrelid, con.confrelid, u.child, u.parent, u.ord
    FROM pg_constraint AS con
    CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS u(child, parent, ord)
    WHERE con.contype = 'f' AND con.conparentid = 0
) AS k
JOIN pg_class AS c ON c.oid = k.conrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS ca ON ca.attrelid = k.conrelid AND ca.attnum = k.child
JOIN pg_class AS p ON p.oid = k.confrelid
JOIN pg_namespace AS pn ON pn.oid = p.relnamespace
JOIN pg_attribute AS pa ON pa.attrelid = k.confrelid AND pa.attnum = k.parent
WHERE NOT c.relispartition AND {condition}"
    )
}

/// The statement as [`read`] sends it.
pub(super) fn statement(filter: &SchemaFilter) -> Statement {
    Statement::new("foreign_keys", filter, sql)
}

/// A key's (child, parent) column pairs by their position in the key.
type Pairs = BTreeMap<i128, (ColumnRef, ColumnRef)>;

/// What a failure of the statement says was being done.
pub(super) const WHAT: &str = "reading the foreign keys (pg_constraint)";

/// Decodes the statement's rows.
pub(super) fn decode(rows: &[PgRow]) -> Result<Vec<ForeignKey>, DbError> {
    let what = WHAT;
    // By constraint oid: its name, and its pairs by position.
    let mut keys: BTreeMap<i128, (String, Pairs)> = BTreeMap::new();
    for row in rows {
        let oid = db::int(row, 0, what)?;
        let name = db::text(row, 1, what)?;
        let ord = db::int(row, 2, what)?;
        let child = ColumnRef {
            schema: db::text(row, 3, what)?,
            table: db::text(row, 4, what)?,
            column: db::text(row, 5, what)?,
        };
        let parent = ColumnRef {
            schema: db::text(row, 6, what)?,
            table: db::text(row, 7, what)?,
            column: db::text(row, 8, what)?,
        };
        keys.entry(oid)
            .or_insert_with(|| (name, BTreeMap::new()))
            .1
            .insert(ord, (child, parent));
    }
    let mut out: Vec<ForeignKey> = keys
        .into_values()
        .map(|(name, pairs)| ForeignKey {
            name,
            columns: pairs.into_values().collect(),
        })
        .collect();
    out.sort_by(|a, b| {
        let table = |k: &ForeignKey| {
            k.columns
                .first()
                .map(|(c, _)| (c.schema.clone(), c.table.clone()))
        };
        (table(a), &a.name).cmp(&(table(b), &b.name))
    });
    Ok(out)
}
