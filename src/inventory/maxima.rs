//! `MAX(column)` of columns that lead a B-tree index: one index dive each, batched into a
//! few `UNION ALL` queries per shard. Callers only ever pass columns from
//! [`super::Inventory::leading`]; no other column is read, so no table is ever scanned.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::ColumnId;
use crate::db::{self, DbError, ident};

/// Dives per query: keeps each statement short and a failure's blast radius small.
const BATCH: usize = 50;

/// One branch of the UNION: `{n}` is the position in the batch, the rest quoted identifiers.
const DIVE_SQL: &str =
    "SELECT CAST({n} AS CHAR), CAST(MAX({column}) AS CHAR) FROM {schema}.{table}";

/// Reads `MAX()` of every column in `columns`; an empty table gives `None`. A column
/// whose table or column has gone since the inventory was read (dropped, renamed) is left
/// out of the answer instead of failing the shard: the next poll no longer lists it.
pub async fn read(
    conn: &mut MySqlConnection,
    columns: &[ColumnId],
    timeout: Duration,
) -> Result<HashMap<ColumnId, Option<i128>>, DbError> {
    let mut out = HashMap::with_capacity(columns.len());
    for batch in columns.chunks(BATCH) {
        match read_batch(conn, batch, timeout).await {
            Ok(values) => out.extend(values),
            Err(e) if is_gone(&e) => {
                // One of the batch is gone: read them one by one to keep the others.
                for id in batch {
                    match read_batch(conn, std::slice::from_ref(id), timeout).await {
                        Ok(values) => out.extend(values),
                        Err(e) if is_gone(&e) => {
                            tracing::debug!(column = %id, "Column gone before its MAX was read");
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// SQLSTATE 42S02 (no such table) or 42S22 (no such column).
fn is_gone(error: &DbError) -> bool {
    match error {
        DbError::Query {
            source: sqlx::Error::Database(e),
            ..
        } => matches!(e.code().as_deref(), Some("42S02" | "42S22")),
        _ => false,
    }
}

async fn read_batch(
    conn: &mut MySqlConnection,
    batch: &[ColumnId],
    timeout: Duration,
) -> Result<Vec<(ColumnId, Option<i128>)>, DbError> {
    let sql = batch
        .iter()
        .enumerate()
        .map(|(n, id)| {
            DIVE_SQL
                .replace("{n}", &n.to_string())
                .replace("{column}", &ident(&id.column))
                .replace("{schema}", &ident(&id.schema))
                .replace("{table}", &ident(&id.table))
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let what = match batch {
        [one] => format!("reading MAX({one})"),
        _ => format!("reading MAX() of {} indexed columns", batch.len()),
    };
    let rows = db::fetch_all(conn, sqlx::query(sqlx::AssertSqlSafe(sql)), timeout, &what).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let n = db::opt_int(row, 0, &what)?.unwrap_or(-1);
        let id = usize::try_from(n)
            .ok()
            .and_then(|n| batch.get(n))
            .ok_or_else(|| DbError::Decode {
                what: what.clone(),
                message: format!("unexpected branch number {n}"),
            })?;
        out.push((id.clone(), db::opt_int(row, 1, &what)?));
    }
    Ok(out)
}
