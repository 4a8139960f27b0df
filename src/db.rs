//! What every database engine's code shares, and nothing engine-specific: the errors of a
//! read ([`DbError`]: what failed and how, never what a server sent), the one bound on a
//! step ([`within`]), a step overlapped with the next query's answer ([`overlapped`]), and
//! [`budget`], the sessions HTTP requests may open per shard. The
//! engines themselves live in their own modules ([`crate::mysql`]) behind [`crate::engine`].

pub mod budget;

use std::future::Future;
use std::time::Duration;

/// Why a query against a monitored server failed.
///
/// The text is safe to publish (API, pages, logs): it names what headroom was doing, an
/// error class, the server's error number and SQLSTATE, and a short message of headroom's
/// own. It never carries the server's message, which may quote the statement (a 1064 does)
/// and with it names read from the database, nor a password (URLs are shown without it).
/// The driver's own text is kept apart, for [`DbError::driver_detail`] (debug logs only).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{what}: no answer within {}s", .after.as_secs_f64())]
    Timeout { what: String, after: Duration },
    #[error("{what}: {}", .failure.message)]
    Query { what: String, failure: Failure },
    #[error("{what}: unexpected value: {message}")]
    Decode { what: String, message: String },
}

/// How a statement or a connection failed, as the engine's code classified it when the
/// driver reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// See [`DbError::class`].
    pub class: &'static str,
    /// The server's error number (MySQL's 1045, 1064, ...), when it sent one.
    pub code: Option<u16>,
    /// The SQLSTATE the server sent, if any (`42S02`: no such table).
    pub sqlstate: Option<String>,
    /// headroom's own words for it: never the server's text.
    pub message: String,
    /// The driver's text, which may quote the statement: debug logs only.
    pub detail: String,
}

impl DbError {
    /// A step that did not finish within `after`.
    pub fn timeout(what: &str, after: Duration) -> DbError {
        DbError::Timeout {
            what: what.to_string(),
            after,
        }
    }

    /// The error class, a short fixed word for APIs and metrics: `timeout`,
    /// `connection_refused`, `network`, `tls`, `access_denied`, `server`, `protocol`,
    /// `decode` or `config`.
    pub fn class(&self) -> &'static str {
        match self {
            DbError::Timeout { .. } => "timeout",
            DbError::Decode { .. } => "decode",
            DbError::Query { failure, .. } => failure.class,
        }
    }

    /// The server's error number (e.g. 1045, 1064), when the server sent one.
    pub fn code(&self) -> Option<u16> {
        match self {
            DbError::Query { failure, .. } => failure.code,
            _ => None,
        }
    }

    /// The SQLSTATE the server sent, if any (`42S02`: no such table).
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            DbError::Query { failure, .. } => failure.sqlstate.clone(),
            _ => None,
        }
    }

    /// The driver's own text, which may quote the statement: for debug logs only.
    pub fn driver_detail(&self) -> Option<String> {
        match self {
            DbError::Query { failure, .. } => Some(failure.detail.clone()),
            _ => None,
        }
    }
}

/// `step`, bounded by `limit`: past it, the step is dropped (with its connection, never
/// reused mid-protocol) and the error names `what` it was doing. The one place a time
/// limit becomes a [`DbError`].
pub async fn within<T>(
    limit: Duration,
    what: &str,
    step: impl Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    match tokio::time::timeout(limit, step).await {
        Ok(result) => result,
        Err(_) => Err(DbError::timeout(what, limit)),
    }
}

/// Runs `work` (decoding an answer already received) while the server answers `next`, a
/// query on the same connection: `next` is polled once first, which sends its statement
/// (both engines' drivers write and flush a query before their first wait)
/// (with its prepared statement cached, as at every poll but a connection's first; the
/// first sends the prepare, and the query follows once `work` is done). The error of
/// `work`, the earlier step, wins over `next`'s; then the connection is mid-answer and, as
/// after any failed step, dropped by its session.
pub async fn overlapped<T, R>(
    next: impl Future<Output = Result<T, DbError>>,
    work: impl FnOnce() -> Result<R, DbError>,
) -> Result<(T, R), DbError> {
    let mut next = std::pin::pin!(next);
    let sent = futures::poll!(next.as_mut());
    let done = work()?;
    let answer = match sent {
        std::task::Poll::Ready(answer) => answer?,
        std::task::Poll::Pending => next.await?,
    };
    Ok((answer, done))
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
