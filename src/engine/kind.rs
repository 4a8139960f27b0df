//! Which engine a server speaks, from its URL's scheme, and whether that engine's driver
//! takes the URL: what the configuration reader needs of the engines, and nothing more, so
//! that it depends on no engine's sessions, plans or writes.

use url::Url;

use crate::mysql::connect;

/// The database engines headroom reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// MySQL 5.7+ and MariaDB 10.3+: `mysql://` or `mariadb://`.
    Mysql,
}

impl Engine {
    /// The engine of `url`, from its scheme; `None` for a scheme no engine speaks.
    pub fn of(url: &Url) -> Option<Engine> {
        let scheme = url.scheme();
        connect::SCHEMES.contains(&scheme).then_some(Engine::Mysql)
    }

    /// The schemes headroom accepts, for messages.
    pub const SCHEMES: &'static str = "mysql:// or mariadb://";

    /// Whether the engine's driver accepts the options of `url` (which holds no password).
    pub fn check_url(self, url: &Url) -> Result<(), String> {
        match self {
            Engine::Mysql => connect::check_url(url),
        }
    }
}
