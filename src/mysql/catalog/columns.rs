//! Integer columns and their tables' AUTO_INCREMENT counters: information_schema.COLUMNS
//! and information_schema.TABLES read by two plain queries and joined here, in memory.
//!
//! Why not one `COLUMNS JOIN TABLES` query: MariaDB materialises both information_schema
//! tables without an index and joins them row by row, so the query's cost grows with
//! tables × tables (1,000 tables 0.44 s, 4,000 tables 6.1 s). Each plain query costs what
//! reading its own table costs; the join below is one hash lookup per column.

use std::collections::{HashMap, HashSet};

use sqlx::mysql::MySqlRow;

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

/// The COLUMNS statement as [`super::read`] sends it.
pub(super) fn columns_statement(filter: &SchemaFilter) -> Statement {
    Statement::new("COLUMNS", columns_sql, "TABLE_SCHEMA", filter)
}

/// The TABLES statement as [`super::read`] sends it.
pub(super) fn tables_statement(filter: &SchemaFilter) -> Statement {
    Statement::new("TABLES", tables_sql, "TABLE_SCHEMA", filter)
}

/// One row of the COLUMNS query, before its table is known: an integer column, its type
/// already parsed (a row of any other type is never kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnRow {
    pub id: ColumnId,
    pub column_type: String,
    pub int_type: IntType,
    /// Whether `EXTRA` names `auto_increment`: the table's auto-increment column.
    pub auto: bool,
}

impl ColumnRow {
    /// The row of `id` with these `DATA_TYPE`, `COLUMN_TYPE` and `EXTRA`; `None` when the
    /// type is not an integer type headroom knows.
    pub(super) fn new(
        id: ColumnId,
        data_type: &str,
        column_type: &str,
        extra: &str,
    ) -> Option<ColumnRow> {
        let int_type = IntType::from_information_schema(data_type, column_type)?;
        Some(ColumnRow {
            id,
            column_type: column_type.to_string(),
            int_type,
            auto: contains_ignoring_ascii_case(extra, "auto_increment"),
        })
    }
}

/// Whether `haystack` holds `needle` (ASCII lower case), whatever the ASCII case.
fn contains_ignoring_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Tables that hold rows, by schema then name, with their AUTO_INCREMENT (NULL for
/// engines without one, and for tables without an auto-increment column); the names as
/// the rows of the TABLES query hold them.
pub(super) type Tables<'r> = HashMap<&'r str, HashMap<&'r str, Option<i128>>>;

/// The columns of tables listed in `tables`, in `columns`' order; a column whose table is
/// not there (a view, or a table created or dropped between the two queries) is left out.
pub(super) fn join(columns: Vec<ColumnRow>, tables: &Tables) -> Vec<IntColumn> {
    let mut out = Vec::with_capacity(columns.len());
    for row in columns {
        let Some(counter) = tables
            .get(row.id.schema.as_str())
            .and_then(|t| t.get(row.id.table.as_str()))
        else {
            continue;
        };
        out.push(IntColumn {
            id: row.id,
            column_type: row.column_type,
            int_type: row.int_type,
            // A fresh table reports AUTO_INCREMENT 1; a NULL counter (some engines) is 1 too.
            auto_increment: row.auto.then(|| counter.unwrap_or(1)),
            sequence: None,
        });
    }
    out
}

/// What reading the COLUMNS query is called in errors.
pub(super) const COLUMNS: &str = "reading information_schema.COLUMNS";
/// What reading the TABLES query is called in errors.
pub(super) const TABLES: &str = "reading information_schema.TABLES";

/// The integer columns of the COLUMNS query's rows, in order, each sharing its name's
/// [`ColumnId`] in `last` when there.
pub(super) fn decode_columns(
    rows: &[MySqlRow],
    last: &HashSet<ColumnId>,
) -> Result<Vec<ColumnRow>, DbError> {
    let what = COLUMNS;
    let mut columns = Vec::with_capacity(rows.len());
    for row in rows {
        let id = super::share(last, row, 0, what)?;
        let data_type = db::str_cell(row, 3, what)?;
        let column_type = db::str_cell(row, 4, what)?;
        let extra = db::opt_str(row, 5, what)?.unwrap_or_default();
        columns.extend(ColumnRow::new(id, data_type, column_type, extra));
    }
    Ok(columns)
}

/// `columns` joined with the TABLES query's rows (see [`join`]).
pub(super) fn decode_tables(
    rows: &[MySqlRow],
    columns: Vec<ColumnRow>,
) -> Result<Vec<IntColumn>, DbError> {
    let what = TABLES;
    let mut tables = Tables::new();
    for row in rows {
        let schema = db::str_cell(row, 0, what)?;
        let table = db::str_cell(row, 1, what)?;
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
        let data_type = column_type.split(['(', ' ']).next().unwrap_or_default();
        ColumnRow::new(
            ColumnId::new("s", table, column),
            data_type,
            column_type,
            extra,
        )
        .unwrap_or_else(|| panic!("{column_type} is an integer type"))
    }

    fn tables<'a>(list: &[(&'a str, &'a str, Option<i128>)]) -> Tables<'a> {
        let mut out = Tables::new();
        for (schema, table, counter) in list {
            out.entry(*schema).or_default().insert(*table, *counter);
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
