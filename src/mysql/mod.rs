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

use std::str::FromStr as _;

pub use connect::{Connector, ServerVersion, Session};
pub use query::{ident, qualified};

/// The URL schemes of this engine.
pub const SCHEMES: [&str; 2] = ["mysql", "mariadb"];

/// Whether the driver accepts the options of `url` (`ssl-mode=...`, `charset=...`): checked
/// when the configuration is read, so that a bad one is a problem with its key, not a
/// failure at start. The message is the driver's, which never holds the password (the URL
/// given has none).
pub fn check_url(url: &url::Url) -> Result<(), String> {
    sqlx::mysql::MySqlConnectOptions::from_str(url.as_str())
        .map(|_| ())
        .map_err(|e| e.to_string())
}
