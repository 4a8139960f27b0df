//! `[lint]`: what `headroom lint` accepts. `allowed_auto_increment` lists the types an
//! auto-increment column may have (normalized: any case, display width dropped, `zerofill`
//! read as `unsigned`, as the server does); `allow` lists known exceptions, each with the
//! reason it is accepted.

use super::section::Section;
use crate::headroom::IntType;
use crate::policy::ColumnGlobs;

/// `[lint] allowed_auto_increment` when absent: what holds IDs for good, and signed
/// `bigint` (Rails' default key).
pub const DEFAULT_ALLOWED_AUTO_INCREMENT: [&str; 3] = ["int unsigned", "bigint unsigned", "bigint"];

/// `[lint]`.
#[derive(Debug, Clone)]
pub struct LintSettings {
    /// The types an auto-increment column may have, normalized, in file order.
    pub allowed_auto_increment: Vec<IntType>,
    /// Known exceptions: findings they match do not fail the lint.
    pub allow: Vec<Allow>,
}

impl Default for LintSettings {
    fn default() -> LintSettings {
        LintSettings {
            allowed_auto_increment: DEFAULT_ALLOWED_AUTO_INCREMENT
                .iter()
                .filter_map(|t| IntType::parse(t))
                .collect(),
            allow: Vec::new(),
        }
    }
}

/// One `[lint] allow` entry.
#[derive(Debug, Clone)]
pub struct Allow {
    /// `schema.table.column`, globs allowed; `None`: the entry accepts its shard's own
    /// findings (`not_strict`), and `shard` is then required.
    pub column: Option<ColumnGlobs>,
    /// Only on this shard; `None`: on every shard.
    pub shard: Option<String>,
    /// Why it is accepted: shown beside the finding.
    pub reason: String,
}

impl Allow {
    /// The entry as a message names it: its glob, or `shard <name>`.
    pub fn label(&self) -> String {
        match (&self.column, &self.shard) {
            (Some(globs), None) => globs.patterns.join(","),
            (Some(globs), Some(shard)) => format!("{} on shard {shard}", globs.patterns.join(",")),
            (None, shard) => format!("shard {}", shard.as_deref().unwrap_or("")),
        }
    }

    /// Whether this entry accepts a finding on `shard` about `column` (`schema`, `table`,
    /// `column`), or, `column` `None`, about the shard itself.
    pub fn matches(&self, shard: &str, column: Option<(&str, &str, &str)>) -> bool {
        let on_shard = self.shard.as_deref().is_none_or(|s| s == shard);
        on_shard
            && match (&self.column, column) {
                (Some(globs), Some((schema, table, column))) => {
                    globs.matches(schema, table, column)
                }
                (None, None) => true,
                _ => false,
            }
    }
}

/// `[lint]`.
pub(super) fn lint(s: &mut Section) -> Option<LintSettings> {
    let allowed = allowed_auto_increment(s);
    let allow = s.tables("allow", false, allow);
    s.finish();
    Some(LintSettings {
        allowed_auto_increment: allowed?,
        allow: allow.into_iter().collect::<Option<Vec<_>>>()?,
    })
}

/// `allowed_auto_increment`: each entry an integer type.
fn allowed_auto_increment(s: &mut Section) -> Option<Vec<IntType>> {
    if !s.has("allowed_auto_increment") {
        return Some(LintSettings::default().allowed_auto_increment);
    }
    let texts = s.string_list("allowed_auto_increment", true)?;
    let mut types = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match IntType::parse(text) {
            Some(t) => types.push(t),
            None => s.problem(
                &format!("allowed_auto_increment[{i}]"),
                format!("{text:?} is not an integer type such as \"int unsigned\" or \"bigint\""),
            ),
        }
    }
    (types.len() == texts.len()).then_some(types)
}

/// One `allow` entry: `column` (a `schema.table.column` glob), `reason` (not blank),
/// `shard` (optional; required without `column`).
fn allow(s: &mut Section) -> Option<Allow> {
    let column = s.string("column", false);
    let shard = s.string("shard", false);
    let globs = match &column {
        Some(c) => match super::policy::check_glob(c) {
            Ok(()) => ColumnGlobs::new(std::slice::from_ref(c), &[])
                .ok()
                .map(Some),
            Err(message) => {
                s.problem("column", message);
                None
            }
        },
        None if shard.is_none() => {
            s.problem(
                "column",
                "is missing: name a schema.table.column glob, or a shard to accept its not_strict"
                    .to_string(),
            );
            None
        }
        None => Some(None),
    };
    let reason = s.string("reason", true);
    if reason.as_ref().is_some_and(|r| r.trim().is_empty()) {
        s.problem(
            "reason",
            "must say why the exception is accepted, for whoever reads the lint".to_string(),
        );
    }
    s.finish();
    Some(Allow {
        column: globs?,
        shard,
        reason: reason.filter(|r| !r.trim().is_empty())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::Width;

    fn read(toml: &str) -> Result<LintSettings, Vec<String>> {
        crate::config::testing::read(toml).map(|s| s.lint)
    }

    #[test]
    fn lint_allows_int_unsigned_bigint_unsigned_and_bigint_by_default() {
        let settings = read("").expect("settings");
        assert_eq!(
            settings.allowed_auto_increment,
            vec![
                IntType::new(Width::Int, true),
                IntType::new(Width::Big, true),
                IntType::new(Width::Big, false),
            ]
        );
        assert!(settings.allow.is_empty());
    }

    #[test]
    fn allowed_types_are_normalized_and_allow_entries_read() {
        let settings = read(
            "[lint]\nallowed_auto_increment = [\"BIGINT(20) UNSIGNED\", \"int(10) zerofill\"]\n\
             allow = [{ column = \"app.legacy_*.id\", reason = \"frozen since 2019\" },\n\
             { column = \"app.t.c\", reason = \"x\", shard = \"s\" },\n\
             { shard = \"s\", reason = \"a dev box\" }]\n",
        )
        .expect("settings");
        assert_eq!(
            settings.allowed_auto_increment,
            vec![
                IntType::new(Width::Big, true),
                IntType::new(Width::Int, true)
            ]
        );
        assert_eq!(settings.allow.len(), 3);
        assert_eq!(settings.allow[0].label(), "app.legacy_*.id");
        assert_eq!(settings.allow[0].reason, "frozen since 2019");
        assert!(settings.allow[0].matches("any", Some(("app", "LEGACY_users", "id"))));
        assert!(!settings.allow[0].matches("any", Some(("app", "users", "id"))));
        assert!(!settings.allow[0].matches("any", None));
        assert_eq!(settings.allow[1].label(), "app.t.c on shard s");
        assert!(settings.allow[1].matches("s", Some(("app", "t", "c"))));
        assert!(!settings.allow[1].matches("other", Some(("app", "t", "c"))));
        assert_eq!(settings.allow[2].label(), "shard s");
        assert!(settings.allow[2].matches("s", None));
        assert!(!settings.allow[2].matches("s", Some(("app", "t", "c"))));
    }

    #[test]
    fn an_allow_without_a_reason_is_refused_with_its_index() {
        let problems = read(
            "[lint]\nallow = [{ column = \"app.t.a\", reason = \"ok\" }, { column = \"app.t.b\" },\n\
             { column = \"app.t.c\", reason = \"  \" }]\n",
        )
        .expect_err("problems")
        .join("\n");
        assert!(
            problems.contains("lint.allow[1].reason: is missing"),
            "{problems}"
        );
        assert!(
            problems.contains("lint.allow[2].reason: must say why"),
            "{problems}"
        );
    }

    #[test]
    fn a_type_that_is_not_an_integer_is_refused_by_name() {
        let problems = read("[lint]\nallowed_auto_increment = [\"int unsigned\", \"varchar(20)\", \"bigint sigend\"]\n")
            .expect_err("problems")
            .join("\n");
        assert!(
            problems
                .contains("lint.allowed_auto_increment[1]: \"varchar(20)\" is not an integer type"),
            "{problems}"
        );
        assert!(
            problems.contains("lint.allowed_auto_increment[2]: \"bigint sigend\""),
            "{problems}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_globs_in_lint_are_refused() {
        let problems = read(
            "[lint]\nallowed = [\"int\"]\nallow = [{ column = \"t.c\", reason = \"r\", why = 1 }, { reason = \"r\" }]\n",
        )
        .expect_err("problems")
        .join("\n");
        for expected in [
            "lint.allowed: unknown key",
            "lint.allow[0].column: \"t.c\" must have the form schema.table.column",
            "lint.allow[0].why: unknown key",
            "lint.allow[1].column: is missing",
        ] {
            assert!(problems.contains(expected), "{expected}\n{problems}");
        }
    }
}
