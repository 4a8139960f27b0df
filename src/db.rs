//! Connections to monitored servers: one small pool per endpoint, a read-only session set up
//! on every new connection, queries bounded by `query_timeout`, and the helpers that read
//! information_schema cells without trusting their types.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::{Executor, MySql, Row};

use crate::config::Endpoint;

/// Why a query against a monitored server failed. The text never contains a password: sqlx
/// errors carry no credentials and URLs are shown without them.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{what}: no answer within {}s", .after.as_secs_f64())]
    Timeout { what: String, after: Duration },
    #[error("{what}: {source}")]
    Query {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{what}: unexpected value: {message}")]
    Decode { what: String, message: String },
}

/// A pool of at most two connections to one server, created lazily: building it never
/// touches the network, so a server that is down at start-up is simply down at the first
/// poll.
pub fn pool(endpoint: &Endpoint, query_timeout: Duration) -> Result<MySqlPool, sqlx::Error> {
    let mut options = MySqlConnectOptions::from_str(endpoint.url.as_str())?;
    if let Some(password) = endpoint.expose_password() {
        options = options.password(password);
    }
    Ok(MySqlPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .acquire_timeout(query_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                prepare_session(conn, query_timeout).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
}

const VERSION_SQL: &str = "SELECT CAST(VERSION() AS CHAR)";

/// A server's product and version, from `SELECT VERSION()` (e.g. `10.11.6-MariaDB-0+deb12u1`
/// or `8.0.36`): what decides which session settings and information_schema columns exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersion {
    pub mariadb: bool,
    pub version: (u32, u32, u32),
}

impl ServerVersion {
    pub fn parse(text: &str) -> ServerVersion {
        let mut parts = text
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        ServerVersion {
            mariadb: text.to_ascii_lowercase().contains("mariadb"),
            version,
        }
    }

    /// Reads the version of the server behind `conn`, under `timeout`.
    pub async fn read(
        conn: &mut MySqlConnection,
        timeout: Duration,
    ) -> Result<ServerVersion, DbError> {
        let what = "reading the server version";
        let rows = fetch_all(conn, sqlx::query(VERSION_SQL), timeout, what).await?;
        match rows.first() {
            Some(row) => Ok(ServerVersion::parse(&text(row, 0, what)?)),
            None => Err(DbError::Decode {
                what: what.to_string(),
                message: "no row".to_string(),
            }),
        }
    }

    pub fn at_least(&self, version: (u32, u32, u32)) -> bool {
        self.version >= version
    }
}

/// Sets up a fresh session: read-only, a server-side statement limit where the server has
/// one (MariaDB `max_statement_time`, MySQL 5.7.8+ `max_execution_time`), and on MySQL 8 no
/// caching of information_schema statistics (otherwise AUTO_INCREMENT may be a day old).
async fn prepare_session(
    conn: &mut MySqlConnection,
    statement_timeout: Duration,
) -> Result<(), sqlx::Error> {
    let version: String = sqlx::query_scalar(VERSION_SQL)
        .fetch_one(&mut *conn)
        .await?;
    let server = ServerVersion::parse(&version);
    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
    if server.mariadb {
        let secs = statement_timeout.as_secs_f64().max(0.001);
        conn.execute(sqlx::AssertSqlSafe(format!(
            "SET SESSION max_statement_time = {secs:.3}"
        )))
        .await?;
    } else {
        if server.at_least((8, 0, 0)) {
            conn.execute("SET SESSION information_schema_stats_expiry = 0")
                .await?;
        }
        if server.at_least((5, 7, 8)) {
            let millis = statement_timeout.as_millis().max(1);
            conn.execute(sqlx::AssertSqlSafe(format!(
                "SET SESSION max_execution_time = {millis}"
            )))
            .await?;
        }
    }
    Ok(())
}

/// Takes a connection from `pool` within `timeout`. After any failed query the caller
/// should [`discard`] it: a query cut off by a timeout leaves the protocol mid-stream.
pub async fn acquire(
    pool: &MySqlPool,
    timeout: Duration,
    what: &str,
) -> Result<PoolConnection<MySql>, DbError> {
    // The pool's own acquire_timeout is `timeout`; it covers connecting and the handshake.
    match pool.acquire().await {
        Ok(conn) => Ok(conn),
        Err(sqlx::Error::PoolTimedOut) => Err(DbError::Timeout {
            what: format!("{what}: connecting"),
            after: timeout,
        }),
        Err(source) => Err(DbError::Query {
            what: format!("{what}: connecting"),
            source,
        }),
    }
}

/// Closes a connection instead of returning it to the pool.
pub fn discard(conn: PoolConnection<MySql>) {
    drop(conn.detach());
}

/// Runs `query` under `timeout`, naming `what` in any error.
pub async fn fetch_all<'q>(
    conn: &mut MySqlConnection,
    query: sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
    timeout: Duration,
    what: &str,
) -> Result<Vec<MySqlRow>, DbError> {
    match tokio::time::timeout(timeout, query.fetch_all(&mut *conn)).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(source)) => Err(DbError::Query {
            what: what.to_string(),
            source,
        }),
        Err(_) => Err(DbError::Timeout {
            what: what.to_string(),
            after: timeout,
        }),
    }
}

/// Quotes an identifier with backticks, doubling any backtick inside it.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A text cell (information_schema columns are read through `CAST(... AS CHAR)`, which
/// decodes the same on MySQL 5.7, 8 and MariaDB).
pub fn text(row: &MySqlRow, index: usize, what: &str) -> Result<String, DbError> {
    opt_text(row, index, what)?.ok_or_else(|| DbError::Decode {
        what: what.to_string(),
        message: format!("column {index} is NULL"),
    })
}

/// A nullable text cell.
pub fn opt_text(row: &MySqlRow, index: usize, what: &str) -> Result<Option<String>, DbError> {
    row.try_get::<Option<String>, _>(index)
        .map_err(|e| DbError::Decode {
            what: what.to_string(),
            message: e.to_string(),
        })
}

/// A nullable integer cell read as text, so that any width and sign decodes exactly.
pub fn opt_int(row: &MySqlRow, index: usize, what: &str) -> Result<Option<i128>, DbError> {
    match opt_text(row, index, what)? {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i128>()
            .map(Some)
            .map_err(|_| DbError::Decode {
                what: what.to_string(),
                message: format!("{s:?} is not an integer"),
            }),
    }
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
    fn server_versions_parse_for_both_products() {
        let maria = ServerVersion::parse("10.11.6-MariaDB-0+deb12u1");
        assert!(maria.mariadb);
        assert_eq!(maria.version, (10, 11, 6));
        let mysql = ServerVersion::parse("8.0.36-0ubuntu0.22.04.1");
        assert!(!mysql.mariadb && mysql.at_least((8, 0, 0)));
        let old = ServerVersion::parse("5.7.7-log");
        assert!(!old.at_least((5, 7, 8)));
        assert_eq!(ServerVersion::parse("").version, (0, 0, 0));
    }

    #[test]
    fn placeholders_match_the_count() {
        assert_eq!(placeholders(1), "?");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
