//! How a statement is sent and read on PostgreSQL: bounded queries, cells read without
//! trusting their types, identifier quoting (the one way a name enters a statement), and
//! driver errors classified into [`DbError`]s that never repeat what the server sent.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::Row;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};

use crate::db::{self, DbError, Failure};

/// A driver error while `what` was being done, classified (see [`DbError`]). PostgreSQL
/// sends no error numbers, so `code` stays `None`; the SQLSTATE says it all.
pub fn query_error(what: &str, error: sqlx::Error) -> DbError {
    let sqlstate = match &error {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    };
    DbError::Query {
        what: what.to_string(),
        failure: Failure {
            class: class_of(&error, sqlstate.as_deref()),
            code: None,
            message: describe(&error, sqlstate.as_deref()),
            sqlstate,
            detail: error.to_string(),
        },
    }
}

/// The class of a driver error (see [`DbError::class`]), from the SQLSTATE where the
/// server sent one.
fn class_of(error: &sqlx::Error, sqlstate: Option<&str>) -> &'static str {
    match error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection_refused"
        }
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => "timeout",
        sqlx::Error::Io(_) => "network",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::PoolTimedOut => "timeout",
        sqlx::Error::Database(_) => server_class(sqlstate.unwrap_or_default()),
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::Configuration(_) => "config",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        _ => "protocol",
    }
}

/// The class of a server's error, from its SQLSTATE.
fn server_class(sqlstate: &str) -> &'static str {
    match sqlstate {
        // invalid_password, invalid_authorization_specification (no pg_hba.conf line),
        // insufficient_privilege (no CONNECT, no SELECT).
        "28P01" | "28000" | "42501" => "access_denied",
        // query_canceled (what statement_timeout sends), lock_not_available (lock_timeout).
        "57014" | "55P03" => "timeout",
        state if state.starts_with("08") => "network",
        _ => "server",
    }
}

/// A short message for a driver error, of headroom's own words: never the server's text,
/// which may quote names read from the database.
fn describe(error: &sqlx::Error, sqlstate: Option<&str>) -> String {
    match error {
        sqlx::Error::Database(_) => {
            let state = sqlstate.unwrap_or_default();
            format!("server error {state}: {}", sqlstate_text(state))
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

/// What a SQLSTATE means, in a few words.
fn sqlstate_text(state: &str) -> &'static str {
    match state {
        "28P01" => "password authentication failed for the monitoring user",
        "28000" => "the server refuses this user from this host (pg_hba.conf)",
        "42501" => "the monitoring user lacks a privilege (CONNECT, USAGE or SELECT)",
        "57014" => "statement stopped by the server-side time limit (query_timeout)",
        "55P03" => "a lock was not granted within the time limit (query_timeout)",
        "25006" => "the session is read-only and the statement writes",
        "3D000" => "no such database",
        "3F000" => "no such schema",
        "42P01" => "no such table",
        "42703" => "no such column",
        "42601" => "the server could not parse a statement",
        "42883" => "no such function",
        "53300" => "too many connections",
        "53400" => "a configured limit of the server was reached",
        "57P01" => "the server is shutting down",
        "57P02" | "57P03" => "the server is restarting or not yet accepting connections",
        "57P04" => "the database was dropped",
        "0A000" => "a feature the server does not support",
        state if state.starts_with("08") => "connection failure",
        state if state.starts_with("53") => "the server is out of a resource",
        state if state.starts_with("XX") => "internal error in the server",
        _ => "see the server's log",
    }
}

/// Runs `query` under `timeout`, naming `what` in any error.
pub async fn fetch_all<'q>(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'q, Postgres, PgArguments>,
    timeout: Duration,
    what: &str,
) -> Result<Vec<PgRow>, DbError> {
    db::within(timeout, what, async {
        query
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| query_error(what, e))
    })
    .await
}

/// Runs `sql` under `timeout` as one plain text query (the simple query protocol, nothing
/// prepared), for statements that differ at every call, such as a batch of dives.
pub async fn fetch_text(
    conn: &mut PgConnection,
    sql: String,
    timeout: Duration,
    what: &str,
) -> Result<Vec<PgRow>, DbError> {
    let query = sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    db::within(timeout, what, async {
        query
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| query_error(what, e))
    })
    .await
}

/// Quotes an identifier in double quotes, doubling any double quote inside it: the one way
/// a name read from a database enters a statement. Whatever else it holds (`{table}`, `;`,
/// `--`, `/*`, `'`, `$$`, newlines) stays inside the quotes, and case is kept as written.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema`.`table`, both quoted.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

fn decode_error(what: &str, message: String) -> DbError {
    DbError::Decode {
        what: what.to_string(),
        message,
    }
}

/// A nullable text cell, borrowed from its row: for a cell read and let go at once (a
/// kind, a flag, a number), which then costs no allocation. The catalog queries cast what
/// they read to `text`, so that every cell decodes the same way whatever the server's own
/// type for it.
pub fn opt_text_ref<'r>(
    row: &'r PgRow,
    index: usize,
    what: &str,
) -> Result<Option<&'r str>, DbError> {
    row.try_get::<Option<&str>, _>(index)
        .map_err(|e| decode_error(what, e.to_string()))
}

/// A text cell that must not be NULL, borrowed from its row.
pub fn text_ref<'r>(row: &'r PgRow, index: usize, what: &str) -> Result<&'r str, DbError> {
    opt_text_ref(row, index, what)?
        .ok_or_else(|| decode_error(what, format!("column {index} is NULL")))
}

/// A nullable text cell.
pub fn opt_text(row: &PgRow, index: usize, what: &str) -> Result<Option<String>, DbError> {
    Ok(opt_text_ref(row, index, what)?.map(str::to_string))
}

/// A text cell that must not be NULL.
pub fn text(row: &PgRow, index: usize, what: &str) -> Result<String, DbError> {
    text_ref(row, index, what).map(str::to_string)
}

/// A nullable integer cell read as text, so that any width decodes exactly.
pub fn opt_int(row: &PgRow, index: usize, what: &str) -> Result<Option<i128>, DbError> {
    match opt_text_ref(row, index, what)? {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i128>()
            .map(Some)
            .map_err(|_| decode_error(what, format!("{s:?} is not an integer"))),
    }
}

/// An integer cell (read as text) that must not be NULL.
pub fn int(row: &PgRow, index: usize, what: &str) -> Result<i128, DbError> {
    opt_int(row, index, what)?.ok_or_else(|| decode_error(what, format!("column {index} is NULL")))
}

/// A boolean cell read as text (`true`/`false`, as `boolean::text` writes it).
pub fn flag(row: &PgRow, index: usize, what: &str) -> Result<bool, DbError> {
    match text_ref(row, index, what)? {
        "true" | "t" => Ok(true),
        "false" | "f" => Ok(false),
        other => Err(decode_error(what, format!("{other:?} is not a boolean"))),
    }
}

/// An `integer` cell, decoded as exactly that type (an `int4` column, such as a branch
/// number written as a literal).
pub fn int4(row: &PgRow, index: usize, what: &str) -> Result<i32, DbError> {
    row.try_get::<i32, _>(index)
        .map_err(|e| decode_error(what, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_double_quoted_and_quotes_doubled() {
        assert_eq!(ident("orders"), "\"orders\"");
        assert_eq!(ident("Orders"), "\"Orders\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(ident("`{table}`; --"), "\"`{table}`; --\"");
        assert_eq!(qualified("a\"b", "c"), "\"a\"\"b\".\"c\"");
    }

    #[test]
    fn sqlstates_give_the_class_and_a_message_of_our_own() {
        let cases = [
            ("28P01", "access_denied"),
            ("28000", "access_denied"),
            ("42501", "access_denied"),
            ("57014", "timeout"),
            ("55P03", "timeout"),
            ("08006", "network"),
            ("08001", "network"),
            ("25006", "server"),
            ("42P01", "server"),
            ("53300", "server"),
        ];
        for (state, class) in cases {
            assert_eq!(server_class(state), class, "{state}");
        }
        assert_eq!(
            sqlstate_text("57014"),
            "statement stopped by the server-side time limit (query_timeout)"
        );
        assert_eq!(sqlstate_text("08006"), "connection failure");
        assert_eq!(sqlstate_text("53100"), "the server is out of a resource");
        assert_eq!(sqlstate_text("22P02"), "see the server's log");
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = query_error("connecting", refused);
        assert_eq!(e.class(), "connection_refused");
        assert_eq!(e.code(), None);
        assert_eq!(e.sqlstate(), None);
        assert_eq!(e.to_string(), "connecting: connection refused");
        let reset = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(query_error("x", reset).class(), "network");
    }
}
