//! Which engine a server speaks, from its URL's scheme, and whether that engine's driver
//! takes the URL: what the configuration reader needs of the engines, and nothing more, so
//! that it depends on no engine's sessions, plans or writes.

use url::Url;

use crate::{mysql, postgres};

/// The database engines headroom reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// MySQL 5.7+ and MariaDB 10.3+: `mysql://` or `mariadb://`.
    Mysql,
    /// PostgreSQL 11+: `postgres://` or `postgresql://`.
    Postgres,
}

impl Engine {
    /// The engine of `url`, from its scheme; `None` for a scheme no engine speaks.
    pub fn of(url: &Url) -> Option<Engine> {
        let scheme = url.scheme();
        if mysql::connect::SCHEMES.contains(&scheme) {
            Some(Engine::Mysql)
        } else if postgres::connect::SCHEMES.contains(&scheme) {
            Some(Engine::Postgres)
        } else {
            None
        }
    }

    /// The schemes headroom accepts, for messages.
    pub const SCHEMES: &'static str = "mysql://, mariadb://, postgres:// or postgresql://";

    /// Whether the engine's driver accepts the options of `url` (which holds no password).
    pub fn check_url(self, url: &Url) -> Result<(), String> {
        match self {
            Engine::Mysql => mysql::connect::check_url(url),
            Engine::Postgres => postgres::connect::check_url(url),
        }
    }

    /// Whether `patterns` (a shard's `databases`) are valid database name globs.
    pub fn check_databases(patterns: &[String]) -> Result<(), String> {
        postgres::databases::Patterns::new(patterns).map(|_| ())
    }

    /// The engine's name, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Mysql => "MySQL",
            Engine::Postgres => "PostgreSQL",
        }
    }
}
