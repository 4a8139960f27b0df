//! `environment` on `[[shards]]` and `[[sources]]`: which kind of fleet a server belongs to,
//! so that a command that writes (`headroom bump`) can refuse anything but development.

use std::fmt;

use super::section::Section;

/// The fleet a shard or source belongs to; `production` unless the configuration says
/// otherwise, so that forgetting the key is the safe mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    /// A development fleet: `headroom bump` may raise its counters.
    Dev,
    /// A staging fleet: read like production, never written.
    Staging,
    /// A production fleet (the default).
    #[default]
    Production,
}

impl Environment {
    /// The name the configuration uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The table's `environment` key; absent is `production`.
pub(super) fn read(s: &mut Section) -> Option<Environment> {
    if !s.has("environment") {
        return Some(Environment::Production);
    }
    match s.string("environment", true)?.as_str() {
        "dev" => Some(Environment::Dev),
        "staging" => Some(Environment::Staging),
        "production" => Some(Environment::Production),
        other => {
            s.problem(
                "environment",
                format!(
                    "{other:?} is not an environment: expected \"dev\", \"staging\" or \"production\""
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Environment;
    use crate::config::from_toml_str;

    const SHARD: &str = "[[shards]]\nname = \"a\"\nurl = \"mysql://monitor@db1:3306\"\n";
    const SOURCE: &str = "[[sources]]\nname = \"t\"\nkind = \"ticket_server\"\nservers = [\"mysql://monitor@t1:3306/tickets\"]\ntable = \"Tickets64\"\n";

    #[test]
    fn environment_defaults_to_production_and_reads_each_name() {
        let settings = from_toml_str(&format!("{SHARD}{SOURCE}"), &|_| None).expect("valid");
        assert_eq!(
            settings.configured_shards[0].environment,
            Environment::Production
        );
        assert_eq!(settings.sources[0].environment, Environment::Production);
        for (name, expected) in [
            ("dev", Environment::Dev),
            ("staging", Environment::Staging),
            ("production", Environment::Production),
        ] {
            let text =
                format!("{SHARD}environment = \"{name}\"\n{SOURCE}environment = \"{name}\"\n");
            let settings = from_toml_str(&text, &|_| None).expect("valid");
            assert_eq!(settings.configured_shards[0].environment, expected);
            assert_eq!(settings.sources[0].environment, expected);
        }
    }

    #[test]
    fn an_unknown_environment_is_a_problem_naming_the_key() {
        let text = format!("{SHARD}environment = \"Dev\"\n{SOURCE}environment = 1\n");
        let problems: Vec<String> = from_toml_str(&text, &|_| None)
            .expect_err("invalid")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            vec![
                "shards[0].environment: \"Dev\" is not an environment: expected \"dev\", \"staging\" or \"production\"".to_string(),
                "sources[0].environment: must be a string, not a number (1)".to_string(),
            ]
        );
    }
}
