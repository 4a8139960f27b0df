//! How a statement is sent and read on MySQL and MariaDB: bounded queries, cells read
//! without trusting their types, identifier quoting (the one way a name enters a
//! statement), and driver errors classified into [`DbError`]s that never repeat what the
//! server sent.

use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlDatabaseError, MySqlRow};
use sqlx::{MySql, Row};

use crate::db::{self, DbError, Failure};

/// A driver error while `what` was being done, classified (see [`DbError`]).
pub fn query_error(what: &str, error: sqlx::Error) -> DbError {
    let code = match &error {
        sqlx::Error::Database(e) => e
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|e| e.number()),
        _ => None,
    };
    let sqlstate = match &error {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    };
    DbError::Query {
        what: what.to_string(),
        failure: Failure {
            class: class_of(&error),
            code,
            sqlstate,
            message: describe(&error),
            detail: error.to_string(),
        },
    }
}

/// The class of a driver error (see [`DbError::class`]).
fn class_of(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection_refused"
        }
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => "timeout",
        sqlx::Error::Io(_) => "network",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::PoolTimedOut => "timeout",
        sqlx::Error::Database(e) => match e.try_downcast_ref::<MySqlDatabaseError>() {
            Some(e) if matches!(e.number(), 1044 | 1045 | 1130 | 1142 | 1143) => "access_denied",
            _ => "server",
        },
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::Configuration(_) => "config",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        _ => "protocol",
    }
}

/// A short message for a driver error, of headroom's own words: never the server's text.
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) => {
            let state = e.code().map(|c| c.into_owned()).unwrap_or_default();
            match e.try_downcast_ref::<MySqlDatabaseError>() {
                Some(my) => format!(
                    "server error {} ({state}): {}",
                    my.number(),
                    server_error_text(my.number())
                ),
                None => format!("server error ({state})"),
            }
        }
        sqlx::Error::Io(e) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
            std::io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
            std::io::ErrorKind::UnexpectedEof => "connection closed by the server".to_string(),
            std::io::ErrorKind::TimedOut => "network timeout".to_string(),
            std::io::ErrorKind::HostUnreachable => "host unreachable".to_string(),
            std::io::ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
            std::io::ErrorKind::AddrNotAvailable => "address not available".to_string(),
            // Name resolution and other OS errors: the OS's words, which hold no SQL.
            _ => format!("network error: {e}"),
        },
        sqlx::Error::Tls(e) => format!("TLS error: {e}"),
        sqlx::Error::PoolTimedOut => "no connection in time".to_string(),
        sqlx::Error::Configuration(e) => format!("connection options: {e}"),
        sqlx::Error::Protocol(_) => "protocol error: the server answered unexpectedly".to_string(),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            "a value could not be decoded".to_string()
        }
        _ => "database driver error".to_string(),
    }
}

/// What a server error number means, in a few words (MySQL and MariaDB share them).
fn server_error_text(number: u16) -> &'static str {
    match number {
        1044 | 1045 => "access denied to the monitoring user",
        1130 => "this host may not connect",
        1142 | 1143 => "the monitoring user lacks SELECT",
        1040 | 1203 => "too many connections",
        1226 => "a resource limit of the monitoring user was reached",
        1049 => "no such database",
        1054 => "no such column",
        1146 => "no such table",
        1064 => "the server could not parse a statement",
        1317 => "query interrupted",
        1927 => "connection killed",
        1969 | 3024 => "statement stopped by the server-side time limit (query_timeout)",
        1290 | 1836 => "the server refused the statement in its current mode",
        _ => "see the server's error log",
    }
}

/// Runs `query` under `timeout`, naming `what` in any error.
pub async fn fetch_all<'q>(
    conn: &mut MySqlConnection,
    query: sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
    timeout: Duration,
    what: &str,
) -> Result<Vec<MySqlRow>, DbError> {
    db::within(timeout, what, async {
        query
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| query_error(what, e))
    })
    .await
}

/// Quotes an identifier with backticks, doubling any backtick inside it: the one way a name
/// read from a database enters a statement. Whatever else it holds (`{table}`, `#`, `--`,
/// `/*`, quotes, newlines) stays inside the quotes.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `schema`.`table`, both quoted.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

/// Runs `sql` under `timeout` as one plain text query, for statements that differ at every
/// call: a dive batch names different columns at every poll, so preparing it (sqlx
/// prepares every `sqlx::query`, and caches it) would cost the server a second pass over
/// the batch's tables, and the cache an eviction.
pub async fn fetch_text(
    conn: &mut MySqlConnection,
    sql: String,
    timeout: Duration,
    what: &str,
) -> Result<Vec<MySqlRow>, DbError> {
    let query = sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    db::within(timeout, what, async {
        query
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| query_error(what, e))
    })
    .await
}

/// A text cell (information_schema columns are read through `CAST(... AS CHAR)`, which
/// decodes the same on MySQL 5.7, 8 and MariaDB).
pub fn text(row: &MySqlRow, index: usize, what: &str) -> Result<String, DbError> {
    str_cell(row, index, what).map(str::to_string)
}

/// A nullable text cell.
pub fn opt_text(row: &MySqlRow, index: usize, what: &str) -> Result<Option<String>, DbError> {
    opt_str(row, index, what).map(|s| s.map(str::to_string))
}

/// A text cell as the row holds it, not copied: what a reader that keeps only part of a
/// row, or compares a cell, reads (a catalog holds a hundred thousand cells).
pub fn str_cell<'r>(row: &'r MySqlRow, index: usize, what: &str) -> Result<&'r str, DbError> {
    opt_str(row, index, what)?.ok_or_else(|| DbError::Decode {
        what: what.to_string(),
        message: format!("column {index} is NULL"),
    })
}

/// A nullable text cell as the row holds it, not copied.
pub fn opt_str<'r>(
    row: &'r MySqlRow,
    index: usize,
    what: &str,
) -> Result<Option<&'r str>, DbError> {
    row.try_get::<Option<&str>, _>(index)
        .map_err(|e| DbError::Decode {
            what: what.to_string(),
            message: e.to_string(),
        })
}

/// A nullable integer cell read as text, so that any width and sign decodes exactly.
pub fn opt_int(row: &MySqlRow, index: usize, what: &str) -> Result<Option<i128>, DbError> {
    opt_str(row, index, what)?
        .map(|s| parse_int(s, what))
        .transpose()
}

/// An integer written as text (surrounding blanks allowed), exactly.
pub fn parse_int(text: &str, what: &str) -> Result<i128, DbError> {
    text.trim().parse::<i128>().map_err(|_| DbError::Decode {
        what: what.to_string(),
        message: format!("{text:?} is not an integer"),
    })
}

/// `?, ?, ?` for an `IN (...)` list of `n` bind parameters.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_backticks_doubled() {
        assert_eq!(ident("Tickets64"), "`Tickets64`");
        assert_eq!(ident("we`ird"), "`we``ird`");
    }

    #[test]
    fn placeholders_match_the_count() {
        assert_eq!(placeholders(1), "?");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
