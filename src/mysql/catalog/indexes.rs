//! Columns that lead a B-tree index (information_schema.STATISTICS): the only columns whose
//! MAX headroom ever reads, because there it costs one index dive instead of a table scan.
//! The same statement also returns the columns of every `PRIMARY` index, from which each
//! table's single-column primary key is known (reference inference needs it).

use std::collections::{HashMap, HashSet};

use sqlx::mysql::MySqlRow;

use super::{Known, Statement};
use crate::db::DbError;
use crate::inventory::{ColumnId, SchemaFilter};
use crate::mysql::ServerVersion;
use crate::mysql::query as db;

/// The query, around `filter`, a condition on TABLE_SCHEMA; `usable` leaves out indexes the
/// optimizer will not use. HASH indexes (MEMORY tables) cannot answer MAX without a scan, so
/// only BTREE counts; functional key parts (MySQL 8) have no column.
/// Each row says whether the column is part of the primary key and whether it leads a
/// usable B-tree index.
fn leading_sql(usable: &str, filter: &str) -> String {
    let leads =
        format!("SEQ_IN_INDEX = 1 AND INDEX_TYPE = 'BTREE' AND COLUMN_NAME IS NOT NULL{usable}");
    format!(
        "\
SELECT DISTINCT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR),
       CAST(INDEX_NAME = 'PRIMARY' AS CHAR), CAST(({leads}) AS CHAR)
FROM information_schema.STATISTICS
WHERE (({leads}) OR INDEX_NAME = 'PRIMARY')
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

/// The statement as [`super::read`] sends it to a server of version `server`.
pub(super) fn statement(filter: &SchemaFilter, server: ServerVersion) -> Statement {
    let sql = |condition: &str| leading_sql(usable(server), condition);
    Statement::new("STATISTICS", sql, "TABLE_SCHEMA", filter)
}

/// Leading columns, and each table's primary key when it has exactly one column.
pub(super) type Indexes = (HashSet<ColumnId>, HashMap<(String, String), String>);

/// What reading the STATISTICS query is called in errors.
pub(super) const WHAT: &str = "reading information_schema.STATISTICS";

/// The leading columns and single-column primary keys of the STATISTICS query's rows.
pub(super) fn decode(rows: &[MySqlRow], known: &Known) -> Result<Indexes, DbError> {
    let what = WHAT;
    let mut leading = HashSet::new();
    let mut primary: Vec<ColumnId> = Vec::new();
    for row in rows {
        let id = known.id(row, 0, what)?;
        if db::opt_str(row, 3, what)? == Some("1") {
            primary.push(id.clone());
        }
        if db::opt_str(row, 4, what)? == Some("1") {
            leading.insert(id);
        }
    }
    Ok((leading, single_column_keys(primary)))
}

/// The primary keys made of one column, by `(schema, table)`, from every primary-key
/// column listed (a table whose key has several columns is left out).
pub(super) fn single_column_keys(primary: Vec<ColumnId>) -> HashMap<(String, String), String> {
    // Counted on the names as `primary` holds them; only the keys kept are copied.
    let mut count: HashMap<(&str, &str), (usize, &str)> = HashMap::with_capacity(primary.len());
    for id in &primary {
        let entry = count
            .entry((id.schema.as_str(), id.table.as_str()))
            .or_insert((0, id.column.as_str()));
        entry.0 += 1;
    }
    count
        .into_iter()
        .filter(|(_, (n, _))| *n == 1)
        .map(|((schema, table), (_, column))| {
            ((schema.to_string(), table.to_string()), column.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_column_primary_keys_are_kept() {
        let keys = single_column_keys(vec![
            ColumnId::new("s", "users", "id"),
            ColumnId::new("s", "pairs", "a"),
            ColumnId::new("s", "pairs", "b"),
        ]);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[&("s".to_string(), "users".to_string())], "id");
    }
}
