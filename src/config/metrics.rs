//! `[metrics]`: how many per-column series `/metrics` writes.

use super::section::Section;
use crate::headroom::Ppm;

/// Which columns get their per-column series on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricColumns {
    /// Every measured column (the default).
    #[default]
    All,
    /// Only the columns at risk: at warning or worse, type-mismatched, forecast to run out
    /// within their `warning_within`, or at `min_ratio` or above.
    AtRisk,
}

/// `[metrics]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `columns = "all" | "at_risk"`.
    pub columns: MetricColumns,
    /// With `at_risk`, a column at this used ratio or above is exported too; 0 turns it off.
    pub min_ratio: Ppm,
    /// Whether `headroom_column_used_ratio` is written. Off by default: it is
    /// `headroom_column_current / headroom_column_max`, derived in PromQL, and a third of
    /// the per-column bytes.
    pub used_ratio: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            columns: MetricColumns::All,
            min_ratio: Ppm::ZERO,
            used_ratio: false,
        }
    }
}

/// `[metrics]`.
pub(super) fn metrics(s: &mut Section) -> Option<MetricsSettings> {
    let columns = match s.string("columns", false).as_deref() {
        None | Some("all") => Some(MetricColumns::All),
        Some("at_risk") => Some(MetricColumns::AtRisk),
        Some(other) => {
            s.problem(
                "columns",
                format!("{other:?} is not a choice: expected \"all\" or \"at_risk\""),
            );
            None
        }
    };
    let min_ratio = s.ratio_from("min_ratio", Ppm::ZERO, true);
    let used_ratio = s.boolean("used_ratio", false);
    s.finish();
    Some(MetricsSettings {
        columns: columns?,
        min_ratio: min_ratio?,
        used_ratio: used_ratio?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml: &str) -> Result<MetricsSettings, Vec<String>> {
        crate::config::testing::read(toml).map(|s| s.metrics)
    }

    #[test]
    fn metrics_default_to_every_column_and_no_min_ratio() {
        assert_eq!(read(""), Ok(MetricsSettings::default()));
        assert_eq!(MetricsSettings::default().columns, MetricColumns::All);
        assert_eq!(MetricsSettings::default().min_ratio.get(), 0);
        assert!(!MetricsSettings::default().used_ratio);
        assert!(read("[metrics]\nused_ratio = true\n").unwrap().used_ratio);
    }

    #[test]
    fn metrics_at_risk_with_a_min_ratio_is_read() {
        let settings = read("[metrics]\ncolumns = \"at_risk\"\nmin_ratio = 0.5\n").unwrap();
        assert_eq!(settings.columns, MetricColumns::AtRisk);
        assert_eq!(settings.min_ratio.get(), 500_000);
        assert_eq!(
            read("[metrics]\nmin_ratio = 0.0\n")
                .unwrap()
                .min_ratio
                .get(),
            0
        );
    }

    #[test]
    fn metrics_bad_values_are_all_reported_with_their_keys() {
        let problems = read(
            "[metrics]\ncolumns = \"some\"\nmin_ratio = 1.5\nextra = 1\nused_ratio = \"yes\"\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(problems.contains("metrics.columns"), "{problems}");
        assert!(problems.contains("metrics.min_ratio"), "{problems}");
        assert!(problems.contains("metrics.extra"), "{problems}");
        assert!(
            problems.contains("metrics.used_ratio: \"yes\" is not true or false"),
            "{problems}"
        );
    }
}
