//! Test helpers: settings read from a TOML text that follows one configured shard, the
//! least a configuration must name.

use super::{Settings, from_toml_str};

/// One shard, `s`: every test configuration starts with it.
pub const ONE_SHARD: &str = "[[shards]]\nname = \"s\"\nurl = \"mysql://u@h:3306/\"\n";

/// The settings of [`ONE_SHARD`] followed by `toml`, with no environment variable set; each
/// problem as its text.
pub fn read(toml: &str) -> Result<Settings, Vec<String>> {
    from_toml_str(&format!("{ONE_SHARD}{toml}"), &|_| None)
        .map_err(|problems| problems.iter().map(|p| p.to_string()).collect())
}

/// As [`read`], for a `toml` that is valid.
pub fn settings(toml: &str) -> Settings {
    read(toml).expect("settings")
}
