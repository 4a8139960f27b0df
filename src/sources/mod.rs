//! ID generators whose values other columns store. Each kind reads one server and reports
//! the highest ID it has handed out; [`assess`] takes the highest over a source's servers
//! and decides its status, and the store keeps the result. [`collision`] decides whether a source's
//! servers can hand out the same ID.

pub mod assess;
pub mod collision;

use crate::db::{DbError, ErrorReport};
use crate::headroom::IntType;

/// What one server of a source said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The highest ID this server has handed out (0 if none yet).
    pub highest: i128,
    /// The type of the generating column, e.g. `bigint(20) unsigned`.
    pub column_type: String,
    pub int_type: IntType,
    /// The last ID handed out as the table shows it, `MAX(id)`; `None` when it is empty.
    pub last_id: Option<i128>,
    /// The server's `auto_increment_increment` and `auto_increment_offset`.
    pub sequence: collision::Sequence,
}

/// Why a source server could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "table {database}.{table} not found, or it has no AUTO_INCREMENT integer column, or the monitoring user lacks SELECT on it"
    )]
    NoTicketTable { database: String, table: String },
    #[error("sequence {schema}.{name} not found in database {database}")]
    NoSequence {
        database: String,
        schema: String,
        name: String,
    },
    #[error("sequence {schema}.{name} cannot be read: {why}")]
    SequenceUnreadable {
        schema: String,
        name: String,
        why: String,
    },
}

impl SourceError {
    /// The error as it may be published.
    pub fn report(&self) -> ErrorReport {
        match self {
            SourceError::Db(e) => e.into(),
            SourceError::NoTicketTable { .. } | SourceError::NoSequence { .. } => ErrorReport {
                message: self.to_string(),
                class: "not_found",
                code: None,
            },
            SourceError::SequenceUnreadable { .. } => ErrorReport {
                message: self.to_string(),
                class: "not_visible",
                code: None,
            },
        }
    }
}
