//! Connections to monitored servers: one [`Connector`] per server (at most one connection
//! kept between polls, checked before reuse, dropped after any failure), a read-only session
//! set up on every new connection, queries bounded by `query_timeout`, the helpers that
//! read information_schema cells without trusting their types, identifier quoting, and
//! errors that say what failed without repeating what a server sent (see [`DbError`]).
//! [`budget`]: the sessions HTTP requests may open, per shard.

pub mod budget;

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlRow};
use sqlx::{ConnectOptions, Connection, Executor, MySql, Row};
use tokio::time::Instant;

/// Why a query against a monitored server failed.
///
/// The text is safe to publish (API, pages, logs): it names what headroom was doing, an
/// error class, the server's error number and SQLSTATE, and a short message of headroom's
/// own. It never carries the server's message, which may quote the statement (a 1064 does)
/// and with it names read from the database, nor a password (URLs are shown without it).
/// The driver's error is kept (not as a `source`, so that `{:#}` chains do not print it)
/// for [`DbError::driver_detail`].
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{what}: no answer within {}s", .after.as_secs_f64())]
    Timeout { what: String, after: Duration },
    #[error("{what}: {}", describe(.error))]
    Query { what: String, error: sqlx::Error },
    #[error("{what}: unexpected value: {message}")]
    Decode { what: String, message: String },
}

impl DbError {
    /// The error class, a short fixed word for APIs and metrics: `timeout`,
    /// `connection_refused`, `network`, `tls`, `access_denied`, `server`, `protocol`,
    /// `decode` or `config`.
    pub fn class(&self) -> &'static str {
        match self {
            DbError::Timeout { .. } => "timeout",
            DbError::Decode { .. } => "decode",
            DbError::Query { error, .. } => class_of(error),
        }
    }

    /// The server's error number (e.g. 1045, 1064), when the server sent one.
    pub fn code(&self) -> Option<u16> {
        match self {
            DbError::Query {
                error: sqlx::Error::Database(e),
                ..
            } => e
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|e| e.number()),
            _ => None,
        }
    }

    /// The SQLSTATE the server sent, if any (`42S02`: no such table).
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            DbError::Query {
                error: sqlx::Error::Database(e),
                ..
            } => e.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    /// The driver's own text, which may quote the statement: for debug logs only.
    pub fn driver_detail(&self) -> Option<String> {
        match self {
            DbError::Query { error, .. } => Some(error.to_string()),
            _ => None,
        }
    }
}

/// An error as it leaves the process (API, pages, logs): the safe text, the class and the
/// server's error number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub message: String,
    pub class: &'static str,
    pub code: Option<u16>,
}

impl From<&DbError> for ErrorReport {
    fn from(e: &DbError) -> ErrorReport {
        ErrorReport {
            message: e.to_string(),
            class: e.class(),
            code: e.code(),
        }
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
    ) -> Result<Connector, sqlx::Error> {
        let mut options = MySqlConnectOptions::from_str(url.as_str())?
            // Statements hold names read from the databases: never log them above debug.
            .disable_statement_logging();
        if let Some(password) = password {
            options = options.password(password);
        }
        Ok(Connector {
            options,
            timeout: query_timeout,
            idle: Mutex::new(None),
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
                Err(_) => {
                    return Err(DbError::Timeout {
                        what: "checking the connection".to_string(),
                        after: self.timeout,
                    });
                }
            }
        }
        let connect = async {
            let mut conn = self
                .options
                .connect()
                .await
                .map_err(|error| DbError::Query {
                    what: "connecting".to_string(),
                    error,
                })?;
            prepare_session(&mut conn, self.timeout)
                .await
                .map_err(|error| DbError::Query {
                    what: "setting up the session".to_string(),
                    error,
                })?;
            Ok(conn)
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(conn)) => Ok(Session {
                conn: Some(conn),
                home: self,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DbError::Timeout {
                what: "connecting".to_string(),
                after: self.timeout,
            }),
        }
    }

    /// Closes the kept connection cleanly, if any, within `grace`.
    pub async fn close(&self, grace: Duration) {
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((conn, _)) = kept {
            let _ = tokio::time::timeout(grace, conn.close()).await;
        }
    }
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

/// Runs `query` under `timeout`, naming `what` in any error.
pub async fn fetch_all<'q>(
    conn: &mut MySqlConnection,
    query: sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>,
    timeout: Duration,
    what: &str,
) -> Result<Vec<MySqlRow>, DbError> {
    match tokio::time::timeout(timeout, query.fetch_all(&mut *conn)).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(error)) => Err(DbError::Query {
            what: what.to_string(),
            error,
        }),
        Err(_) => Err(DbError::Timeout {
            what: what.to_string(),
            after: timeout,
        }),
    }
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

/// For tests of statements built from names: a tokenizer that reads SQL as MySQL and
/// MariaDB do (quoted identifiers, strings, every comment form), and a proptest strategy
/// of hostile identifiers.
#[cfg(test)]
pub(crate) mod sql_lexer {
    use proptest::prelude::*;

    /// One token of a statement.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Token {
        /// A backtick-quoted identifier, unquoted.
        Ident(String),
        /// A bare word or number, upper-cased.
        Word(String),
        /// A quoted string: none is ever expected in the statements tested.
        Str(String),
        /// `#`, `-- ` or `/* */`: never expected either.
        Comment(String),
        Punct(char),
    }

    /// Tokenizes `sql`; `Err` on an unterminated quote or comment.
    pub fn tokens(sql: &str) -> Result<Vec<Token>, String> {
        let chars: Vec<char> = sql.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if c.is_whitespace() {
                i += 1;
            } else if c == '`' || c == '\'' || c == '"' {
                let (text, end) = quoted(&chars, i, c)?;
                out.push(if c == '`' {
                    Token::Ident(text)
                } else {
                    Token::Str(text)
                });
                i = end;
            } else if c == '#'
                || (c == '-'
                    && next == Some('-')
                    && chars
                        .get(i + 2)
                        .is_none_or(|c| c.is_whitespace() || c.is_control()))
            {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                out.push(Token::Comment(chars[i..end].iter().collect()));
                i = end;
            } else if c == '/' && next == Some('*') {
                let body = &chars[i + 2..];
                let close = body
                    .windows(2)
                    .position(|w| w == ['*', '/'])
                    .ok_or("unterminated comment")?;
                out.push(Token::Comment(body[..close].iter().collect()));
                i += close + 4;
            } else if c.is_alphanumeric() || c == '_' || c == '$' {
                let end = chars[i..]
                    .iter()
                    .position(|&c| !(c.is_alphanumeric() || c == '_' || c == '$'))
                    .map_or(chars.len(), |p| i + p);
                out.push(Token::Word(
                    chars[i..end].iter().collect::<String>().to_uppercase(),
                ));
                i = end;
            } else {
                out.push(Token::Punct(c));
                i += 1;
            }
        }
        Ok(out)
    }

    /// The text of the quoted token starting at `start`, and the index after it. A doubled
    /// quote is one quote; in strings a backslash escapes the next character.
    fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), String> {
        let mut text = String::new();
        let mut i = start + 1;
        loop {
            match chars.get(i) {
                None => return Err(format!("unterminated {quote}")),
                Some('\\') if quote != '`' => {
                    text.extend(chars.get(i + 1));
                    i += 2;
                }
                Some(&c) if c == quote => {
                    if chars.get(i + 1) == Some(&quote) {
                        text.push(quote);
                        i += 2;
                    } else {
                        return Ok((text, i + 1));
                    }
                }
                Some(&c) => {
                    text.push(c);
                    i += 1;
                }
            }
        }
    }

    /// Words and punctuation of a fixed statement skeleton, for building expectations.
    pub fn skeleton(sql: &str) -> Vec<Token> {
        tokens(sql).unwrap_or_default()
    }

    /// Identifiers as a hostile user would create them: pieces that mean something to SQL
    /// or to a template, quotes, newlines, control and bidi characters, multi-byte text,
    /// and anything else, up to MySQL's 64 characters.
    pub fn hostile_ident() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("`".to_string()),
            Just("``".to_string()),
            Just("{table}".to_string()),
            Just("{column}".to_string()),
            Just("{schema}".to_string()),
            Just("{n}".to_string()),
            Just("{filter}".to_string()),
            Just("#".to_string()),
            Just("-- ".to_string()),
            Just("--".to_string()),
            Just("/*".to_string()),
            Just("*/".to_string()),
            Just("/*!".to_string()),
            Just("'".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just(";".to_string()),
            Just(") UNION SELECT 0,val FROM vault.k#".to_string()),
            Just("\u{1b}[31m".to_string()),
            Just("\u{202e}".to_string()),
            Just("ñandú".to_string()),
            Just("日本".to_string()),
            "[a-z_]{1,8}",
            any::<char>()
                .prop_filter("no NUL", |c| *c != '\0')
                .prop_map(String::from),
        ];
        prop::collection::vec(piece, 1..8)
            .prop_map(|pieces| pieces.concat().chars().take(64).collect::<String>())
    }
}
