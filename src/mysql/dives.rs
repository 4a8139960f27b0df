//! `MAX(column)` of columns that lead a B-tree index: one index dive each, batched into a
//! few `UNION ALL` queries per shard. Callers only ever pass columns from
//! [`crate::inventory::Inventory::leading`]; no other column is read, so no table is ever scanned.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::query::{self as db, fetch_text, ident};
use crate::db::DbError;
use crate::inventory::ColumnId;

/// Dives per query: keeps each statement short and a failure's blast radius small.
const BATCH: usize = 50;

/// The statement for one batch: one `UNION ALL` branch per column, naming its position in
/// the batch and its `MAX()`. Built in one pass from quoted identifiers: a name is never
/// scanned again, so `{table}`, `#` or `--` inside one is only ever part of that name.
pub fn dive_sql(batch: &[ColumnId]) -> String {
    let mut sql = String::with_capacity(batch.len() * 96);
    for (n, id) in batch.iter().enumerate() {
        if n > 0 {
            sql.push_str(" UNION ALL ");
        }
        sql.push_str(&format!(
            "SELECT CAST({n} AS CHAR), CAST(MAX({}) AS CHAR) FROM {}",
            ident(&id.column),
            db::qualified(&id.schema, &id.table),
        ));
    }
    sql
}

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
        DbError::Query { .. } => matches!(error.sqlstate().as_deref(), Some("42S02" | "42S22")),
        _ => false,
    }
}

async fn read_batch(
    conn: &mut MySqlConnection,
    batch: &[ColumnId],
    timeout: Duration,
) -> Result<Vec<(ColumnId, Option<i128>)>, DbError> {
    let sql = dive_sql(batch);
    let what = match batch {
        [one] => format!("reading MAX({one})"),
        _ => format!("reading MAX() of {} indexed columns", batch.len()),
    };
    let rows = fetch_text(conn, sql, timeout, &what).await?;
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::mysql::sql_lexer::{Token, hostile_ident, skeleton, tokens};

    /// The tokens one branch must read as: exactly the three names, as identifiers.
    fn branch(n: usize, id: &ColumnId) -> Vec<Token> {
        let mut t = skeleton(&format!("SELECT CAST({n} AS CHAR), CAST(MAX("));
        t.push(Token::Ident(id.column.clone()));
        t.extend(skeleton(") AS CHAR) FROM"));
        t.push(Token::Ident(id.schema.clone()));
        t.push(Token::Punct('.'));
        t.push(Token::Ident(id.table.clone()));
        t
    }

    #[test]
    fn a_column_named_after_a_placeholder_stays_one_identifier() {
        let id = ColumnId::new(
            "s",
            ") AS CHAR) FROM s.t UNION SELECT 0,val FROM vault.k#",
            "a{table}_id",
        );
        let sql = dive_sql(std::slice::from_ref(&id));
        assert_eq!(
            sql,
            "SELECT CAST(0 AS CHAR), CAST(MAX(`a{table}_id`) AS CHAR) FROM `s`.`) AS CHAR) FROM s.t UNION SELECT 0,val FROM vault.k#`"
        );
        assert_eq!(tokens(&sql), Ok(branch(0, &id)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the names hold, the statement reads as the fixed skeleton with each
        /// name as one identifier: no comment, string, keyword or operator comes from a name.
        #[test]
        fn dives_read_exactly_the_named_columns_whatever_the_names(
            names in prop::collection::vec((hostile_ident(), hostile_ident(), hostile_ident()), 1..4)
        ) {
            let batch: Vec<ColumnId> = names
                .iter()
                .map(|(s, t, c)| ColumnId::new(s, t, c))
                .collect();
            let mut expected = Vec::new();
            for (n, id) in batch.iter().enumerate() {
                if n > 0 {
                    expected.extend(skeleton("UNION ALL"));
                }
                expected.extend(branch(n, id));
            }
            prop_assert_eq!(tokens(&dive_sql(&batch)), Ok(expected));
        }
    }
}
