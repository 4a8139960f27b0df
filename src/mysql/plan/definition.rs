//! What a widening needs to know that a poll does not read, on MySQL and MariaDB: a
//! column's full definition (information_schema.COLUMNS) and its table's size and engine
//! (information_schema.TABLES), read at plan time, one column at a time, every name bound
//! as a value; and the foreign keys that hold it: where they are from
//! information_schema.KEY_COLUMN_USAGE, what they are (columns, parent, `ON DELETE`/`ON
//! UPDATE`) from `SHOW CREATE TABLE`, both of which a user with only `SELECT` may read.
//! Called by [`super::read`] and [`super::keys`]; the data is the plan's ([`crate::plan`]).

use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use crate::db::DbError;
use crate::inventory::ColumnId;
use crate::mysql::query as db;
use crate::plan::found::{Definition, ForeignKey, TableSize};

const COLUMN_SQL: &str = "\
SELECT CAST(IS_NULLABLE AS CHAR), CAST(COLUMN_DEFAULT AS CHAR), CAST(EXTRA AS CHAR),
       CAST(COLUMN_COMMENT AS CHAR), CAST(COLUMN_TYPE AS CHAR)
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?";

const TABLE_SQL: &str = "\
SELECT CAST(TABLE_ROWS AS CHAR), CAST(DATA_LENGTH AS CHAR), CAST(INDEX_LENGTH AS CHAR),
       CAST(ENGINE AS CHAR)
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

fn count(value: Option<i128>) -> u64 {
    value.and_then(|v| u64::try_from(v).ok()).unwrap_or(0)
}

/// The column's definition and its table's size; `None` when the column is gone.
pub async fn read(
    conn: &mut MySqlConnection,
    id: &ColumnId,
    timeout: Duration,
) -> Result<Option<(Definition, TableSize)>, DbError> {
    let what = "reading a column definition from information_schema.COLUMNS";
    let query = sqlx::query(COLUMN_SQL)
        .bind(&id.schema)
        .bind(&id.table)
        .bind(&id.column);
    let rows = db::fetch_all(conn, query, timeout, what).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let definition = Definition {
        nullable: db::text(row, 0, what)?.eq_ignore_ascii_case("YES"),
        default: db::opt_text(row, 1, what)?,
        extra: db::opt_text(row, 2, what)?.unwrap_or_default(),
        comment: db::opt_text(row, 3, what)?.unwrap_or_default(),
        column_type: db::text(row, 4, what)?,
        sequence: None,
        postgres: None,
    };
    let what = "reading a table's size from information_schema.TABLES";
    let query = sqlx::query(TABLE_SQL).bind(&id.schema).bind(&id.table);
    let rows = db::fetch_all(conn, query, timeout, what).await?;
    let size = match rows.first() {
        None => TableSize::default(),
        Some(row) => TableSize {
            rows: count(db::opt_int(row, 0, what)?),
            data_bytes: count(db::opt_int(row, 1, what)?),
            index_bytes: count(db::opt_int(row, 2, what)?),
            engine: db::opt_text(row, 3, what)?.unwrap_or_default(),
        },
    };
    Ok(Some((definition, size)))
}

/// The keys information_schema.KEY_COLUMN_USAGE names with `schema`.`table` as child or
/// parent: a user with `SELECT` on a table sees its rows there (MariaDB 10.11), though not
/// the rules in REFERENTIAL_CONSTRAINTS, so this only says where to look.
const REFERENCING_SQL: &str = "\
SELECT CAST(CONSTRAINT_NAME AS CHAR), CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR),
       CAST(COLUMN_NAME AS CHAR), CAST(REFERENCED_TABLE_SCHEMA AS CHAR),
       CAST(REFERENCED_TABLE_NAME AS CHAR), CAST(REFERENCED_COLUMN_NAME AS CHAR)
FROM information_schema.KEY_COLUMN_USAGE
WHERE REFERENCED_TABLE_NAME IS NOT NULL
  AND ((TABLE_SCHEMA = ? AND TABLE_NAME = ?)
    OR (REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?))";

/// One column pair of a foreign key as KEY_COLUMN_USAGE names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyUse {
    /// `CONSTRAINT_NAME`.
    pub name: String,
    /// The child column.
    pub child: ColumnId,
    /// The parent column.
    pub parent: ColumnId,
}

/// Every column pair of a foreign key whose child or parent is `schema`.`table`, as far as
/// the user may see.
pub async fn referencing(
    conn: &mut MySqlConnection,
    schema: &str,
    table: &str,
    timeout: Duration,
) -> Result<Vec<KeyUse>, DbError> {
    let what = "reading foreign keys from information_schema.KEY_COLUMN_USAGE";
    let query = sqlx::query(REFERENCING_SQL)
        .bind(schema)
        .bind(table)
        .bind(schema)
        .bind(table);
    let rows = db::fetch_all(conn, query, timeout, what).await?;
    rows.iter()
        .map(|row| {
            Ok(KeyUse {
                name: db::text(row, 0, what)?,
                child: ColumnId::from_parts(
                    db::text(row, 1, what)?,
                    db::text(row, 2, what)?,
                    db::text(row, 3, what)?,
                ),
                parent: ColumnId::from_parts(
                    db::text(row, 4, what)?,
                    db::text(row, 5, what)?,
                    db::text(row, 6, what)?,
                ),
            })
        })
        .collect()
}

/// The foreign keys declared on `schema`.`table` (it is their child), from
/// `SHOW CREATE TABLE` (see [`super::show_create`]). `Ok(Err(why))` when the table cannot
/// be read or its text not understood — the server refused it (no privilege, no such
/// table) or a key is written in a way not known — so that the plan can say so; `Err`
/// when the shard itself failed (a timeout, the connection).
pub async fn declared(
    conn: &mut MySqlConnection,
    schema: &str,
    table: &str,
    timeout: Duration,
) -> Result<Result<Vec<ForeignKey>, String>, DbError> {
    let what = "reading SHOW CREATE TABLE";
    let sql = format!("SHOW CREATE TABLE {}", db::qualified(schema, table));
    // A plain text query: each table is asked for once, nothing to prepare.
    let rows = match db::fetch_text(conn, sql, timeout, what).await {
        Ok(rows) => rows,
        // The server answered: the session is sound, only this table is not readable.
        Err(e) if e.code().is_some() => return Ok(Err(crate::db::ErrorReport::from(&e).message)),
        Err(e) => return Err(e),
    };
    let Some(row) = rows.first() else {
        return Ok(Err(format!("{what}: no row")));
    };
    let text = db::text(row, 1, what)?;
    Ok(super::show_create::foreign_keys(schema, table, &text)
        .map_err(|e| format!("{what}: a foreign key could not be read: {e}")))
}
