//! `MAX(column)` of columns that lead a B-tree index: one index dive each, batched into a
//! few `UNION ALL` queries per database. Callers only ever pass columns from
//! [`super::catalog::Database::leading`]; no other column is read, so no table is scanned:
//! an ordinary table is read `ONLY`, without the tables that inherit it, which its index
//! does not hold.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::PgConnection;

use super::catalog::ColumnRef;
use super::query::{self as db, fetch_text, ident, qualified};
use crate::db::DbError;

/// Dives per query: keeps each statement short and a failure's blast radius small.
pub const BATCH: usize = 50;

/// Which rows of a column's table a dive reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// An ordinary table's own (`FROM ONLY`): not those of the tables that inherit it,
    /// which its index does not hold (reading them would scan each one) and which a
    /// foreign key to it never sees.
    Own,
    /// A partitioned table's, which are all its partitions' (`ONLY` would read none).
    Partitions,
}

/// The statement for one batch: one `UNION ALL` branch per column, naming its position in
/// the batch and its `MAX()` as text (so that any width decodes exactly). Built in one pass
/// from quoted identifiers: a name is never scanned again, so `{table}`, `;` or `--` inside
/// one is only ever part of that name.
pub fn dive_sql(batch: &[(ColumnRef, Rows)]) -> String {
    let mut sql = String::with_capacity(batch.len() * 96);
    for (n, (id, rows)) in batch.iter().enumerate() {
        if n > 0 {
            sql.push_str(" UNION ALL ");
        }
        let only = match rows {
            Rows::Own => "ONLY ",
            Rows::Partitions => "",
        };
        sql.push_str(&format!(
            "SELECT {n}, MAX({})::text FROM {only}{}",
            ident(&id.column),
            qualified(&id.schema, &id.table),
        ));
    }
    sql
}

/// Reads `MAX()` of every column in `columns`; an empty table gives `None`. A column
/// whose table or column has gone since the catalog was read (dropped, renamed) is left
/// out of the answer instead of failing the database: the next poll no longer lists it.
pub async fn read(
    conn: &mut PgConnection,
    columns: &[(ColumnRef, Rows)],
    timeout: Duration,
) -> Result<HashMap<ColumnRef, Option<i128>>, DbError> {
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
                            tracing::debug!(column = %id.0, "Column gone before its MAX was read");
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

/// SQLSTATE 42P01 (no such table), 42703 (no such column) or 3F000 (no such schema).
fn is_gone(error: &DbError) -> bool {
    match error {
        DbError::Query { .. } => {
            matches!(
                error.sqlstate().as_deref(),
                Some("42P01" | "42703" | "3F000")
            )
        }
        _ => false,
    }
}

async fn read_batch(
    conn: &mut PgConnection,
    batch: &[(ColumnRef, Rows)],
    timeout: Duration,
) -> Result<Vec<(ColumnRef, Option<i128>)>, DbError> {
    let sql = dive_sql(batch);
    let what = match batch {
        [(one, _)] => format!("reading MAX({one})"),
        _ => format!("reading MAX() of {} indexed columns", batch.len()),
    };
    let rows = fetch_text(conn, sql, timeout, &what).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let n = db::int4(row, 0, &what)?;
        let id = usize::try_from(n)
            .ok()
            .and_then(|n| batch.get(n))
            .ok_or_else(|| DbError::Decode {
                what: what.clone(),
                message: format!("unexpected branch number {n}"),
            })?;
        out.push((id.0.clone(), db::opt_int(row, 1, &what)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::postgres::sql_lexer::{Token, hostile_ident, skeleton, tokens};

    /// The tokens one branch must read as: exactly the three names, as identifiers.
    fn branch(n: usize, (id, rows): &(ColumnRef, Rows)) -> Vec<Token> {
        let mut t = skeleton(&format!("SELECT {n}, MAX("));
        t.push(Token::Ident(id.column.clone()));
        t.extend(skeleton(match rows {
            Rows::Own => ")::text FROM ONLY",
            Rows::Partitions => ")::text FROM",
        }));
        t.push(Token::Ident(id.schema.clone()));
        t.push(Token::Punct('.'));
        t.push(Token::Ident(id.table.clone()));
        t
    }

    #[test]
    fn a_column_named_after_a_placeholder_stays_one_identifier() {
        let id = ColumnRef::new(
            "s",
            "\") UNION SELECT 0, passwd FROM pg_shadow --",
            "a{table}_id",
        );
        let batch = [(id, Rows::Own)];
        let sql = dive_sql(&batch);
        assert_eq!(
            sql,
            "SELECT 0, MAX(\"a{table}_id\")::text FROM ONLY \"s\".\"\"\") UNION SELECT 0, passwd FROM pg_shadow --\""
        );
        assert_eq!(tokens(&sql), Ok(branch(0, &batch[0])));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the names hold, the statement reads as the fixed skeleton with each
        /// name as one identifier: no comment, string, keyword or operator comes from a name.
        #[test]
        fn dives_read_exactly_the_named_columns_whatever_the_names(
            names in prop::collection::vec((hostile_ident(), hostile_ident(), hostile_ident(), any::<bool>()), 1..4)
        ) {
            let batch: Vec<(ColumnRef, Rows)> = names
                .iter()
                .map(|(s, t, c, parted)| {
                    let rows = if *parted { Rows::Partitions } else { Rows::Own };
                    (ColumnRef::new(s, t, c), rows)
                })
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
