//! Integer columns and their tables' AUTO_INCREMENT counters: information_schema.COLUMNS
//! and information_schema.TABLES read by two plain queries and joined here, in memory.
//!
//! Why not one `COLUMNS JOIN TABLES` query: MariaDB materialises both information_schema
//! tables without an index and joins them row by row, so the query's cost grows with
//! tables × tables (1,000 tables 0.44 s, 4,000 tables 6.1 s). Each plain query costs what
//! reading its own table costs; the join below is one hash lookup per column.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::Statement;
use crate::db::DbError;
use crate::headroom::IntType;
use crate::inventory::{ColumnId, IntColumn, SchemaFilter};
use crate::mysql::query as db;

/// Integer columns, around `filter`, a condition on TABLE_SCHEMA, in the order the
/// inventory lists them. Views' columns are among them: [`join`] leaves them out.
fn columns_sql(filter: &str) -> String {
    format!(
        "\
SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR),
       CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), CAST(EXTRA AS CHAR)
FROM information_schema.COLUMNS
WHERE DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint')
  AND {filter}
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    )
}

/// Tables that hold rows, around `filter`, a condition on TABLE_SCHEMA, with their
/// AUTO_INCREMENT. Views are left out: they hold no IDs. MariaDB lists system-versioned
/// tables as `SYSTEM VERSIONED`; they are tables too.
fn tables_sql(filter: &str) -> String {
    format!(
        "\
SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(AUTO_INCREMENT AS CHAR)
FROM information_schema.TABLES
WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
  AND {filter}"
    )
}

/// The COLUMNS statement as [`read`] sends it.
pub(super) fn columns_statement(filter: &SchemaFilter) -> Statement {
    Statement::new("COLUMNS", columns_sql, "TABLE_SCHEMA", filter)
}

/// The TABLES statement as [`read`] sends it.
pub(super) fn tables_statement(filter: &SchemaFilter) -> Statement {
    Statement::new("TABLES", tables_sql, "TABLE_SCHEMA", filter)
}

/// One row of the COLUMNS query, before its table is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnRow {
    pub id: ColumnId,
    pub data_type: String,
    pub column_type: String,
    /// `EXTRA`, where `auto_increment` marks the table's auto-increment column.
    pub extra: String,
}

/// Tables that hold rows, by schema then name, with their AUTO_INCREMENT (NULL for
/// engines without one, and for tables without an auto-increment column).
pub(super) type Tables = HashMap<String, HashMap<String, Option<i128>>>;

/// The columns of tables listed in `tables`, in `columns`' order; a column whose table is
/// not there (a view, or a table created or dropped between the two queries) is left out,
/// and so is a column whose type is not an integer type headroom knows.
pub(super) fn join(columns: Vec<ColumnRow>, tables: &Tables) -> Vec<IntColumn> {
    let mut out = Vec::with_capacity(columns.len());
    for row in columns {
        let Some(counter) = tables
            .get(&row.id.schema)
            .and_then(|t| t.get(&row.id.table))
        else {
            continue;
        };
        let Some(int_type) = IntType::from_information_schema(&row.data_type, &row.column_type)
        else {
            continue;
        };
        let is_auto = row.extra.to_ascii_lowercase().contains("auto_increment");
        out.push(IntColumn {
            id: row.id,
            column_type: row.column_type,
            int_type,
            // A fresh table reports AUTO_INCREMENT 1; a NULL counter (some engines) is 1 too.
            auto_increment: is_auto.then(|| counter.unwrap_or(1)),
        });
    }
    out
}

pub(super) async fn read(
    conn: &mut MySqlConnection,
    filter: &SchemaFilter,
    timeout: Duration,
) -> Result<Vec<IntColumn>, DbError> {
    let what = "reading information_schema.COLUMNS";
    let rows = super::fetch(conn, columns_statement(filter), timeout, what).await?;
    let mut columns = Vec::with_capacity(rows.len());
    for row in &rows {
        columns.push(ColumnRow {
            id: ColumnId::from_parts(
                db::text(row, 0, what)?,
                db::text(row, 1, what)?,
                db::text(row, 2, what)?,
            ),
            data_type: db::text(row, 3, what)?,
            column_type: db::text(row, 4, what)?,
            extra: db::opt_text(row, 5, what)?.unwrap_or_default(),
        });
    }
    drop(rows);

    let what = "reading information_schema.TABLES";
    let rows = super::fetch(conn, tables_statement(filter), timeout, what).await?;
    let mut tables = Tables::new();
    for row in &rows {
        let schema = db::text(row, 0, what)?;
        let table = db::text(row, 1, what)?;
        let counter = db::opt_int(row, 2, what)?;
        tables.entry(schema).or_default().insert(table, counter);
    }
    Ok(join(columns, &tables))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::Width;

    fn row(table: &str, column: &str, column_type: &str, extra: &str) -> ColumnRow {
        ColumnRow {
            id: ColumnId::new("s", table, column),
            data_type: column_type
                .split(['(', ' '])
                .next()
                .unwrap_or_default()
                .to_string(),
            column_type: column_type.to_string(),
            extra: extra.to_string(),
        }
    }

    fn tables(list: &[(&str, &str, Option<i128>)]) -> Tables {
        let mut out = Tables::new();
        for (schema, table, counter) in list {
            out.entry(schema.to_string())
                .or_default()
                .insert(table.to_string(), *counter);
        }
        out
    }

    #[test]
    fn the_join_keeps_columns_of_base_tables_in_order_and_attaches_auto_increment_to_its_column() {
        let columns = vec![
            row("orders", "id", "bigint(20) unsigned", "auto_increment"),
            row("orders", "user_id", "int(11)", ""),
            row("orders_view", "id", "bigint(20) unsigned", ""),
            row("gone", "id", "int(11)", "auto_increment"),
            row("users", "flags", "tinyint(4)", "DEFAULT_GENERATED"),
            row("users", "id", "int(10) unsigned", "AUTO_INCREMENT"),
            row("fresh", "id", "mediumint(9)", "auto_increment"),
        ];
        // `orders_view` is a view (not in TABLES), `gone` was dropped between the queries;
        // another schema's `orders` must not lend its counter.
        let tables = tables(&[
            ("s", "orders", Some(5_000_000_001)),
            ("s", "users", Some(42)),
            ("s", "fresh", None),
            ("other", "orders", Some(7)),
            ("s", "unrelated", Some(99)),
        ]);
        let got = join(columns, &tables);
        let summary: Vec<(String, String, Option<i128>)> = got
            .iter()
            .map(|c| (c.id.table.clone(), c.id.column.clone(), c.auto_increment))
            .collect();
        let own = |t: &str, c: &str, a: Option<i128>| (t.to_string(), c.to_string(), a);
        assert_eq!(
            summary,
            vec![
                own("orders", "id", Some(5_000_000_001)),
                own("orders", "user_id", None),
                own("users", "flags", None),
                own("users", "id", Some(42)),
                own("fresh", "id", Some(1)),
            ]
        );
        assert_eq!(got[0].int_type, IntType::new(Width::Big, true));
        assert_eq!(got[0].column_type, "bigint(20) unsigned");
        assert_eq!(got[3].int_type, IntType::new(Width::Int, true));
        assert_eq!(got[4].int_type, IntType::new(Width::Medium, false));
    }

    #[test]
    fn the_join_matches_table_names_exactly_not_by_case() {
        let columns = vec![
            row("T", "id", "int(11)", "auto_increment"),
            row("t", "id", "int(11)", "auto_increment"),
        ];
        let tables = tables(&[("s", "T", Some(10)), ("s", "t", Some(20))]);
        let got: Vec<Option<i128>> = join(columns, &tables)
            .iter()
            .map(|c| c.auto_increment)
            .collect();
        assert_eq!(got, vec![Some(10), Some(20)]);
    }

    #[test]
    fn each_query_reads_one_information_schema_table_without_a_join() {
        let filter = SchemaFilter::Only(vec!["a".into(), "b".into()]);
        let columns = columns_statement(&filter);
        assert_eq!(columns.binds, vec!["a".to_string(), "b".to_string()]);
        assert!(columns.sql.contains("FROM information_schema.COLUMNS\n"));
        assert!(columns.sql.contains("AND TABLE_SCHEMA IN (?, ?)\n"));
        let tables = tables_statement(&filter);
        assert!(tables.sql.contains("FROM information_schema.TABLES\n"));
        for sql in [&columns.sql, &tables.sql] {
            assert!(!sql.to_ascii_uppercase().contains("JOIN"), "{sql}");
            assert_eq!(sql.matches("information_schema.").count(), 1, "{sql}");
        }
    }
}
