//! Connections to PostgreSQL servers: one [`Connector`] per server and database (a
//! PostgreSQL session is bound to one database; [`Connector::for_database`] gives the
//! connector of another), at most one connection kept between polls, checked before reuse
//! and dropped after any failure, and a read-only session set up on every new connection,
//! its statements and lock waits limited server-side by `query_timeout`.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::time::Instant;

use super::query::query_error;
use crate::db::{self, DbError};

/// The URL schemes of this engine.
pub const SCHEMES: [&str; 2] = ["postgres", "postgresql"];

/// What every session shows in `pg_stat_activity` and the server's log.
pub const APPLICATION_NAME: &str = "headroom";

/// Whether the driver accepts the options of `url` (`sslmode=...`, `sslrootcert=...`):
/// checked when the configuration is read, so that a bad one is a problem with its key, not
/// a failure at start. The message is the driver's, which never holds the password (the
/// URL given has none).
pub fn check_url(url: &url::Url) -> Result<(), String> {
    PgConnectOptions::from_str(url.as_str())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The driver's options for `url` (which holds no password) with `password`: the host,
/// port, user and database, and TLS as the URL's `sslmode` and `sslrootcert` say.
pub fn options(url: &url::Url, password: Option<&str>) -> Result<PgConnectOptions, DbError> {
    let mut options = PgConnectOptions::from_str(url.as_str())
        .map_err(|e| query_error("reading the server's URL", e))?
        .application_name(APPLICATION_NAME)
        // Statements hold names read from the databases: never log them above debug.
        .disable_statement_logging();
    if let Some(password) = password {
        options = options.password(password);
    }
    Ok(options)
}

/// How long a connection may sit idle between polls before it is closed instead of reused.
const IDLE_LIMIT: Duration = Duration::from_secs(300);

/// Connections to one database of one server. Building it never touches the network, so a
/// server that is down at start-up is simply down at the first poll. Connecting is one
/// attempt, bounded by `query_timeout`, so the error says why (refused, denied, TLS)
/// instead of "no answer".
pub struct Connector {
    options: PgConnectOptions,
    timeout: Duration,
    /// The connection kept between polls, and since when it has been idle.
    idle: Mutex<Option<(PgConnection, Instant)>>,
}

/// A connection in use. [`Session::release`] keeps it for the next poll; dropping it
/// closes it instead: after a failed or abandoned query the protocol may be mid-stream.
pub struct Session<'a> {
    conn: Option<PgConnection>,
    home: &'a Connector,
}

impl std::ops::Deref for Session<'_> {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        // Only `release` (which consumes the session) takes the connection out.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("session already released"))
    }
}

impl std::ops::DerefMut for Session<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("session already released"))
    }
}

impl Session<'_> {
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
    /// each step bounded by `query_timeout`. The URL's path names the database; without
    /// one the server picks the database named after the user.
    pub fn new(
        url: &url::Url,
        password: Option<&str>,
        query_timeout: Duration,
    ) -> Result<Connector, DbError> {
        Ok(Connector::with_options(
            options(url, password)?,
            query_timeout,
        ))
    }

    fn with_options(options: PgConnectOptions, timeout: Duration) -> Connector {
        Connector {
            options,
            timeout,
            idle: Mutex::new(None),
        }
    }

    /// The connector of database `name` on the same server, with the same user, password,
    /// TLS and time limit, and a kept connection of its own.
    pub fn for_database(&self, name: &str) -> Connector {
        Connector::with_options(self.options.clone().database(name), self.timeout)
    }

    /// The database this connector's sessions are bound to, when the URL or
    /// [`Connector::for_database`] named one.
    pub fn database(&self) -> Option<&str> {
        self.options.get_database()
    }

    /// The time limit of every step, and of every statement on the server.
    pub fn query_timeout(&self) -> Duration {
        self.timeout
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
                // The server dropped it (restart, idle_session_timeout): connect anew.
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
            sqlx::raw_sql(sqlx::AssertSqlSafe(session_sql(self.timeout)))
                .execute(&mut conn)
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

/// The settings of a fresh session, sent as one statement after connecting (after, not in
/// the start-up packet, so that nothing in the URL's `options` nor a role's or database's
/// own settings can undo them):
/// - read-only: every transaction refuses to write;
/// - `statement_timeout` and `lock_timeout` of `query_timeout`: the server stops a
///   statement, or a wait for a lock behind someone's ALTER TABLE, on its own, even when the
///   client has already given up (a server notices a gone client only when it writes);
/// - `search_path` of `pg_catalog` first and `pg_temp` last: the catalog's tables,
///   functions and operators are always the server's own, never a same-named one that a
///   database's owner placed earlier in the path.
fn session_sql(query_timeout: Duration) -> String {
    format!(
        "SET default_transaction_read_only = on; {}",
        bounds_sql(query_timeout)
    )
}

/// The settings of every session, the one that writes (`headroom bump`) included: its
/// statements and lock waits bounded by `query_timeout` on the server, the catalog's own
/// `search_path`.
pub fn bounds_sql(query_timeout: Duration) -> String {
    let millis = query_timeout.as_millis().clamp(1, i32::MAX as u128);
    format!(
        "SET statement_timeout = {millis}; \
         SET lock_timeout = {millis}; \
         SET search_path = pg_catalog, pg_temp"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_read_only_and_bounded_in_milliseconds() {
        assert_eq!(
            session_sql(Duration::from_millis(2500)),
            "SET default_transaction_read_only = on; SET statement_timeout = 2500; \
             SET lock_timeout = 2500; SET search_path = pg_catalog, pg_temp"
        );
        // Zero would mean no limit at all on the server.
        assert!(session_sql(Duration::ZERO).contains("statement_timeout = 1;"));
    }

    #[test]
    fn tls_and_the_database_come_from_the_url_and_the_password_from_apart() {
        let url = url::Url::parse(
            "postgres://monitor@db.example:6432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem",
        )
        .expect("url");
        let options = options(&url, Some("s3cret")).expect("options");
        assert_eq!(options.get_host(), "db.example");
        assert_eq!(options.get_port(), 6432);
        assert_eq!(options.get_username(), "monitor");
        assert_eq!(options.get_database(), Some("app"));
        assert_eq!(options.get_application_name(), Some(APPLICATION_NAME));
        assert!(matches!(
            options.get_ssl_mode(),
            sqlx::postgres::PgSslMode::VerifyFull
        ));
        let connector = Connector::new(&url, None, Duration::from_secs(1)).expect("connector");
        assert_eq!(connector.database(), Some("app"));
        assert_eq!(connector.for_database("app_2").database(), Some("app_2"));
        assert_eq!(connector.database(), Some("app"));
    }

    #[test]
    fn a_bad_sslmode_is_refused_when_the_url_is_checked() {
        let url = url::Url::parse("postgres://h/db?sslmode=sometimes").expect("url");
        assert!(check_url(&url).is_err());
        assert!(check_url(&url::Url::parse("postgresql://h/db").expect("url")).is_ok());
    }
}
