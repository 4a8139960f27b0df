//! Flickr-style ticket servers: a table such as
//! `CREATE TABLE Tickets64 (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
//! stub CHAR(1) NOT NULL UNIQUE)` fed by `REPLACE INTO Tickets64 (stub) VALUES ('a');
//! SELECT LAST_INSERT_ID()`, usually on a pair of servers with auto_increment_increment = 2
//! and offsets 1 and 2.
//!
//! REPLACE keeps one row per stub, the latest, so MAX(id) is the highest ID handed out. If
//! the rows were deleted, AUTO_INCREMENT − auto_increment_increment still says where the
//! counter stands; the reading is the larger of the two.

use std::time::Duration;

use sqlx::mysql::MySqlConnection;

use super::query::{self as db, ident};
use crate::headroom::IntType;
use crate::sources::collision::Sequence;
use crate::sources::{Reading, SourceError};

/// The ticket table's auto-increment column and its type, and the step and start of this
/// connection's session (`auto_increment_increment`, `auto_increment_offset`): a session
/// takes the global values when it connects, as the application's `REPLACE INTO` sessions
/// do.
///
/// Its counter is read by a query of its own ([`COUNTER_SQL`]), not by joining TABLES:
/// MariaDB answers a join of COLUMNS with TABLES by reading the COLUMNS of every table of
/// every schema (0.35 s on a server of 20,000 tables), each plain query by opening this
/// table alone.
pub const TICKET_COLUMN_SQL: &str = "\
SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR),
       CAST(@@SESSION.auto_increment_increment AS CHAR),
       CAST(@@SESSION.auto_increment_offset AS CHAR)
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA LIKE '%auto_increment%'";

/// The ticket table's counter (`AUTO_INCREMENT`).
pub const COUNTER_SQL: &str = "\
SELECT CAST(AUTO_INCREMENT AS CHAR)
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?";

/// `MAX()` of the ticket column, which leads the primary key: one index dive. Built in one
/// pass from quoted identifiers (the column name comes from the server).
pub fn highest_sql(database: &str, table: &str, column: &str) -> String {
    format!(
        "SELECT CAST(MAX({}) AS CHAR) FROM {}",
        ident(column),
        db::qualified(database, table)
    )
}

/// Reads one ticket server.
pub async fn read(
    conn: &mut MySqlConnection,
    database: &str,
    table: &str,
    timeout: Duration,
) -> Result<Reading, SourceError> {
    let what = format!("reading ticket table {database}.{table}");
    let query = sqlx::query(TICKET_COLUMN_SQL).bind(database).bind(table);
    let rows = db::fetch_all(conn, query, timeout, &what).await?;
    let not_found = || SourceError::NoTicketTable {
        database: database.to_string(),
        table: table.to_string(),
    };
    let row = rows.first().ok_or_else(not_found)?;
    let column = db::text(row, 0, &what)?;
    let column_type = db::text(row, 2, &what)?;
    let int_type = IntType::from_information_schema(&db::text(row, 1, &what)?, &column_type)
        .ok_or_else(not_found)?;
    let step = db::opt_int(row, 3, &what)?.unwrap_or(1).max(1);
    let offset = db::opt_int(row, 4, &what)?.unwrap_or(1).max(1);
    let query = sqlx::query(COUNTER_SQL).bind(database).bind(table);
    let rows = db::fetch_all(conn, query, timeout, &what).await?;
    // A table gone since its column was read is not found, as before its column was.
    let counter = db::opt_int(rows.first().ok_or_else(not_found)?, 0, &what)?.unwrap_or(1);
    let sequence = Sequence {
        increment: u64::try_from(step).unwrap_or(1),
        offset: u64::try_from(offset).unwrap_or(1),
    };

    let sql = highest_sql(database, table, &column);
    let rows = db::fetch_all(conn, sqlx::query(sqlx::AssertSqlSafe(sql)), timeout, &what).await?;
    let max_id = match rows.first() {
        Some(row) => db::opt_int(row, 0, &what)?,
        None => None,
    };
    Ok(Reading {
        highest: highest(max_id, counter, step),
        column_type,
        int_type,
        last_id: max_id,
        sequence,
    })
}

/// The highest ID handed out, from MAX(id) and the counter: the counter stands one step
/// past the last ID given.
pub fn highest(max_id: Option<i128>, counter: i128, step: i128) -> i128 {
    max_id.unwrap_or(0).max(counter - step).max(0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{highest, highest_sql};
    use crate::mysql::sql_lexer::{Token, hostile_ident, skeleton, tokens};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The ticket database, table and column (the last read from the server) are each
        /// one identifier, whatever they hold.
        #[test]
        fn the_ticket_read_names_exactly_its_table_and_column(
            database in hostile_ident(), table in hostile_ident(), column in hostile_ident()
        ) {
            let mut expected = skeleton("SELECT CAST(MAX(");
            expected.push(Token::Ident(column.clone()));
            expected.extend(skeleton(") AS CHAR) FROM"));
            expected.push(Token::Ident(database.clone()));
            expected.push(Token::Punct('.'));
            expected.push(Token::Ident(table.clone()));
            prop_assert_eq!(tokens(&highest_sql(&database, &table, &column)), Ok(expected));
        }
    }

    #[test]
    fn highest_id_is_max_id_or_one_step_behind_the_counter() {
        // Offset 1, increment 2: 1, 3, 5 handed out, counter at 7.
        assert_eq!(highest(Some(5), 7, 2), 5);
        // Rows deleted: the counter still knows.
        assert_eq!(highest(None, 7, 2), 5);
        // Fresh table.
        assert_eq!(highest(None, 1, 1), 0);
        assert_eq!(highest(None, 1, 2), 0);
    }
}
