//! `[inference]`: whether undeclared references are guessed (`enabled`, default true) and
//! `[[inference.rules]]`, house conventions as `column` / `parent` templates, each checked
//! here so that a bad placeholder is reported with its key.

use super::section::Section;
use super::template::{Settings, Template};

/// `[inference]`.
pub(super) fn inference(s: &mut Section) -> Option<Settings> {
    let enabled = s.boolean("enabled", true);
    let rules = s.tables("rules", false, rule);
    s.finish();
    Some(Settings {
        enabled: enabled?,
        rules: rules.into_iter().collect::<Option<Vec<_>>>()?,
    })
}

/// One `[[inference.rules]]` table.
fn rule(s: &mut Section) -> Option<Template> {
    let column = s.string("column", true);
    let parent = s.string("parent", true);
    s.finish();
    match Template::new(&column?, &parent?) {
        Ok(template) => Some(template),
        Err((key, message)) => {
            s.problem(key, message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::template::Settings;

    fn read(toml: &str) -> Result<Settings, Vec<String>> {
        crate::config::testing::read(toml).map(|s| s.inference)
    }

    #[test]
    fn inference_is_on_by_default_with_no_rules() {
        let settings = read("").expect("settings");
        assert!(settings.enabled);
        assert!(settings.rules.is_empty());
        assert!(!read("[inference]\nenabled = false\n").expect("off").enabled);
    }

    #[test]
    fn inference_rules_are_read_in_file_order() {
        let settings = read(
            "[inference]\n[[inference.rules]]\ncolumn = \"{prefix}_{table}\"\nparent = \"{table}.{table}_id\"\n\
             [[inference.rules]]\ncolumn = \"owner_{table}\"\nparent = \"core.{table}.id\"\n",
        )
        .expect("settings");
        assert_eq!(settings.rules.len(), 2);
        assert_eq!(settings.rules[0].column, "{prefix}_{table}");
        assert_eq!(settings.rules[1].parent, "core.{table}.id");
    }

    #[test]
    fn bad_inference_rules_are_all_reported_with_their_keys() {
        let problems = read(
            "[inference]\nenabled = \"yes\"\nextra = 1\n\
             [[inference.rules]]\ncolumn = \"{prefix}_{tabel}\"\nparent = \"{table}.id\"\n\
             [[inference.rules]]\ncolumn = \"x_{table}\"\nparent = \"{table}\"\n\
             [[inference.rules]]\nparent = \"{table}.id\"\n",
        )
        .expect_err("problems")
        .join("\n");
        for expected in [
            "inference.enabled: \"yes\" is not true or false",
            "inference.extra",
            "inference.rules[0].column: \"{prefix}_{tabel}\": unknown placeholder {tabel}",
            "inference.rules[1].parent: \"{table}\" must be table.column or schema.table.column",
            "inference.rules[2].column: is missing",
        ] {
            assert!(problems.contains(expected), "{expected}\n{problems}");
        }
    }
}
