//! Connections to MySQL and MariaDB servers: one [`Connector`] per server (at most one
//! connection kept between polls, checked before reuse, dropped after any failure), and a
//! read-only session set up on every new connection, its statements limited server-side
//! by `query_timeout`.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection, Executor};
use tokio::time::Instant;

use super::catalog;
use super::query::{fetch_all, query_error, text};
use crate::db::{self, DbError};
use crate::inventory::{ColumnId, Inventory, InventoryError, SchemaFilter};

/// The URL schemes of this engine.
pub const SCHEMES: [&str; 2] = ["mysql", "mariadb"];

/// Whether the driver accepts the options of `url` (`ssl-mode=...`, `charset=...`): checked
/// when the configuration is read, so that a bad one is a problem with its key, not a
/// failure at start. The message is the driver's, which never holds the password (the URL
/// given has none).
pub fn check_url(url: &url::Url) -> Result<(), String> {
    MySqlConnectOptions::from_str(url.as_str())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The driver's options for `url` (which holds no password) with `password`: what every
/// connection to a MySQL server starts from, read-only sessions and bump's alike.
pub fn options(url: &url::Url, password: Option<&str>) -> Result<MySqlConnectOptions, DbError> {
    let mut options = MySqlConnectOptions::from_str(url.as_str())
        .map_err(|e| query_error("reading the server's URL", e))?
        // Statements hold names read from the databases: never log them above debug.
        .disable_statement_logging();
    if let Some(password) = password {
        options = options.password(password);
    }
    Ok(options)
}

/// How long a connection may sit idle between polls before it is closed instead of reused.
const IDLE_LIMIT: Duration = Duration::from_secs(300);

/// Connections to one server. Building it never touches the network, so a server that is
/// down at start-up is simply down at the first poll. Connecting is one attempt, bounded
/// by `query_timeout`, so the error says why (refused, denied, TLS) instead of "no answer".
pub struct Connector {
    options: MySqlConnectOptions,
    timeout: Duration,
    /// The connection kept between polls, and since when it has been idle.
    idle: Mutex<Option<(MySqlConnection, Instant)>>,
    /// The integer columns of the last catalog read through [`Session::catalog`], whose
    /// [`ColumnId`]s the next read shares: a steady shard makes no new name, and its names
    /// compare equal to the histories' at once. A failed read leaves none: the next makes
    /// its names anew.
    names: Mutex<HashSet<ColumnId>>,
}

/// A connection in use. [`Session::release`] keeps it for the next poll; dropping it
/// closes it instead: after a failed or abandoned query the protocol may be mid-stream.
pub struct Session<'a> {
    conn: Option<MySqlConnection>,
    home: &'a Connector,
}

impl std::ops::Deref for Session<'_> {
    type Target = MySqlConnection;
    fn deref(&self) -> &MySqlConnection {
        // Only `release` (which consumes the session) takes the connection out.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("session already released"))
    }
}

impl std::ops::DerefMut for Session<'_> {
    fn deref_mut(&mut self) -> &mut MySqlConnection {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("session already released"))
    }
}

impl Session<'_> {
    /// The shard's inventory, as [`catalog::read`] reads it, sharing the [`ColumnId`]s of
    /// the last inventory read through this session's connector; its own are shared by the
    /// next.
    pub async fn catalog(
        &mut self,
        filter: &SchemaFilter,
        timeout: Duration,
    ) -> Result<Inventory, InventoryError> {
        let home = self.home;
        let last = std::mem::take(&mut *home.names.lock().unwrap_or_else(|e| e.into_inner()));
        let (inventory, names) = catalog::read_sharing(self, filter, timeout, &last).await?;
        drop(last);
        *home.names.lock().unwrap_or_else(|e| e.into_inner()) = names;
        Ok(inventory)
    }

    /// Keeps the connection for the next poll (after every query succeeded).
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.home.idle.lock().unwrap_or_else(|e| e.into_inner());
            *idle = Some((conn, Instant::now()));
        }
    }
}

impl Connector {
    /// Prepares connecting to `url` (shown anywhere: it holds no password) with `password`,
    /// each step bounded by `query_timeout`.
    pub fn new(
        url: &url::Url,
        password: Option<&str>,
        query_timeout: Duration,
    ) -> Result<Connector, DbError> {
        Ok(Connector {
            options: options(url, password)?,
            timeout: query_timeout,
            idle: Mutex::new(None),
            names: Mutex::new(HashSet::new()),
        })
    }

    /// A session: the kept connection if it still answers a ping, else a new one.
    pub async fn acquire(&self) -> Result<Session<'_>, DbError> {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((mut conn, since)) = kept
            && since.elapsed() < IDLE_LIMIT
        {
            match tokio::time::timeout(self.timeout, conn.ping()).await {
                Ok(Ok(())) => {
                    return Ok(Session {
                        conn: Some(conn),
                        home: self,
                    });
                }
                // The server dropped it (restart, wait_timeout): connect anew.
                Ok(Err(_)) => {}
                // A server that does not answer a ping will not answer a connect either.
                Err(_) => return Err(DbError::timeout("checking the connection", self.timeout)),
            }
        }
        let connect = async {
            let mut conn = self
                .options
                .connect()
                .await
                .map_err(|e| query_error("connecting", e))?;
            prepare_session(&mut conn, self.timeout)
                .await
                .map_err(|e| query_error("setting up the session", e))?;
            Ok(Session {
                conn: Some(conn),
                home: self,
            })
        };
        db::within(self.timeout, "connecting", connect).await
    }

    /// Closes the kept connection cleanly, if any, within `grace`.
    pub async fn close(&self, grace: Duration) {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((conn, _)) = kept {
            let _ = tokio::time::timeout(grace, conn.close()).await;
        }
    }
}

/// The server's version, as every new session and every catalog read asks it.
pub const VERSION_SQL: &str = "SELECT CAST(VERSION() AS CHAR)";

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
