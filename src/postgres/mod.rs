//! Everything that speaks PostgreSQL, and nothing else does: connections and their
//! read-only sessions, one database each ([`connect`]), how statements are sent and cells
//! read, identifier quoting and error classification ([`query`]), the databases a shard
//! watches ([`databases`]), one database's catalog: integer columns, sequences and the
//! columns they feed, foreign keys, leading index columns ([`catalog`]), `MAX()` dives
//! ([`dives`]), transaction-ID and MultiXact wraparound ([`wraparound`]), and what
//! `headroom plan` reads and writes ([`plan`]). The readers answer in plain data of this
//! module's own.

pub mod bump;
pub mod catalog;
pub mod connect;
pub mod databases;
pub mod dives;
pub mod inventory;
pub mod plan;
pub mod query;
pub mod shard;
pub mod source;
pub mod wraparound;

#[cfg(test)]
pub(crate) mod sql_lexer;

pub use connect::{Connector, SCHEMES, Session};
pub use query::{ident, qualified};
