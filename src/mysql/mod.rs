//! Everything that speaks MySQL and MariaDB, and nothing else does: connections and their
//! read-only sessions ([`connect`]), how statements are sent and cells read, identifier
//! quoting and error classification ([`query`]), the information_schema readers of a
//! shard's catalog ([`catalog`]), strict mode ([`sql_mode`]), `MAX()` dives ([`dives`]),
//! ticket servers ([`ticket`]), what `headroom plan` reads and the statements it writes
//! ([`plan`]), and `headroom bump`'s write sessions, counters and raises ([`bump`]). The
//! rest of the daemon meets it through [`crate::engine`], which hands back plain data.

pub mod bump;
pub mod catalog;
pub mod connect;
pub mod dives;
pub mod plan;
pub mod query;
pub mod sql_mode;
pub mod ticket;

#[cfg(test)]
pub(crate) mod sql_lexer;

pub use connect::{Connector, SCHEMES, ServerVersion, Session};
pub use query::{ident, qualified};
