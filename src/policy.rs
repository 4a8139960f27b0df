//! The alert policy: a column's status is the worse of its ratio thresholds and its time
//! thresholds (how soon it runs out at its growth rate); `[[overrides]]` give some columns
//! other limits, and `[[silences]]` keep columns from paging until a date, while they are
//! still measured and shown. On a shard without strict mode, a column at its exact type
//! maximum is exhausted ([`clamped`]). Pure: no I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::growth::Forecast;
use crate::headroom::{Headroom, Ppm, Status, Thresholds};

/// How urgent a page is. `warning` pages only where a notifier's `min_severity` says so.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// The severity a status pages with: none for `ok`; `exhausted` pages as critical.
    pub fn of(status: Status) -> Option<Severity> {
        match status {
            Status::Ok => None,
            Status::Warning => Some(Severity::Warning),
            Status::Critical | Status::Exhausted => Some(Severity::Critical),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The limits that decide a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Used-ratio thresholds.
    pub ratio: Thresholds,
    /// `warning` when the column runs out within this.
    pub warning_within: Duration,
    /// `critical` when the column runs out within this.
    pub critical_within: Duration,
}

impl Default for Limits {
    /// The built-in `[thresholds]`: warning at 70 % used or 90 days left, critical at 85 %
    /// used or 14 days left.
    fn default() -> Limits {
        let ratio = |r| Ppm::from_ratio(r).expect("a ratio within 0..=1");
        Limits {
            ratio: Thresholds {
                warning: ratio(0.70),
                critical: ratio(0.85),
            },
            warning_within: Duration::from_secs(90 * 86_400),
            critical_within: Duration::from_secs(14 * 86_400),
        }
    }
}

impl Limits {
    /// The worse of the ratio status and the time status.
    pub fn status(&self, headroom: Headroom, seconds_to_exhaustion: Option<u64>) -> Status {
        headroom
            .status(self.ratio)
            .max(self.time_status(seconds_to_exhaustion))
    }

    /// The status by the time rule alone: `warning`/`critical` when the column runs out
    /// within `warning_within`/`critical_within`, `ok` otherwise.
    pub fn time_status(&self, seconds_to_exhaustion: Option<u64>) -> Status {
        match seconds_to_exhaustion {
            Some(s) if s <= self.critical_within.as_secs() => Status::Critical,
            Some(s) if s <= self.warning_within.as_secs() => Status::Warning,
            _ => Status::Ok,
        }
    }
}

/// `[[overrides]]`: other limits for the columns its globs match.
#[derive(Debug, Clone)]
pub struct Override {
    pub columns: ColumnGlobs,
    pub limits: Limits,
}

/// `[[silences]]`: matching columns do not page until `until`.
#[derive(Debug, Clone, Serialize)]
pub struct Silence {
    #[serde(skip)]
    pub columns: ColumnGlobs,
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// Limits for every column, and silences.
#[derive(Debug, Clone)]
pub struct Policy {
    pub default: Limits,
    /// First match wins.
    pub overrides: Vec<Override>,
    pub silences: Vec<Silence>,
}

impl Policy {
    /// The limits of `schema.table.column`.
    pub fn limits(&self, schema: &str, table: &str, column: &str) -> Limits {
        self.overrides
            .iter()
            .find(|o| o.columns.matches(schema, table, column))
            .map_or(self.default, |o| o.limits)
    }

    /// The status of an ID source: the default limits (overrides and silences name
    /// columns, not sources), by ratio and by its forecast.
    pub fn source_status(&self, headroom: Headroom, forecast: &Forecast) -> Status {
        self.default
            .status(headroom, forecast.seconds_to_exhaustion)
    }

    /// The silence in force for `schema.table.column` at `now`, if any (the one that lasts
    /// longest when several match).
    pub fn silence(
        &self,
        schema: &str,
        table: &str,
        column: &str,
        now: DateTime<Utc>,
    ) -> Option<&Silence> {
        self.silences
            .iter()
            .filter(|s| s.until > now && s.columns.matches(schema, table, column))
            .max_by_key(|s| s.until)
    }
}

/// Why a column at its exact maximum on a shard without strict mode is `exhausted`.
pub const CLAMPED_REASON: &str = "at its exact type maximum on a shard without strict mode \
(sql_mode has neither STRICT_TRANS_TABLES nor STRICT_ALL_TABLES): larger values were \
probably clamped to it, silently storing wrong IDs";

/// Whether a column's values were probably clamped: its shard is known not to be strict
/// (`strict_mode` is `Some(false)`; unknown before the shard's first poll) and its current
/// value is exactly its type maximum. A strict shard refuses a value past the maximum; a
/// lax one stores the maximum instead, so a column sitting exactly there has most likely
/// swallowed larger values: it is exhausted, not merely critical.
pub fn clamped(strict_mode: Option<bool>, headroom: Headroom) -> bool {
    strict_mode == Some(false) && headroom.current == i128::from(headroom.max)
}

/// `schema.table.column` globs with exclusions; matching ignores case, as MySQL does for
/// column names.
#[derive(Debug, Clone)]
pub struct ColumnGlobs {
    /// The globs as written, for messages.
    pub patterns: Vec<String>,
    include: GlobSet,
    exclude: GlobSet,
}

impl ColumnGlobs {
    pub fn new(columns: &[String], exclude: &[String]) -> Result<ColumnGlobs, String> {
        Ok(ColumnGlobs {
            patterns: columns.to_vec(),
            include: glob_set(columns)?,
            exclude: glob_set(exclude)?,
        })
    }

    /// Whether `schema.table.column` is matched and not excluded.
    pub fn matches(&self, schema: &str, table: &str, column: &str) -> bool {
        thread_local! {
            /// Where the name is written: every column of every poll is matched.
            static NAME: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        NAME.with_borrow_mut(|name| {
            name.clear();
            for (i, part) in [schema, table, column].into_iter().enumerate() {
                if i > 0 {
                    name.push('.');
                }
                name.push_str(part);
            }
            // One candidate for both sets, and none at all for an empty one.
            let candidate = globset::Candidate::new(name.as_str());
            self.include.is_match_candidate(&candidate)
                && (self.exclude.is_empty() || !self.exclude.is_match_candidate(&candidate))
        })
    }
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| format!("{pattern:?}: {e}"))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headroom::Ppm;

    fn limits(w: f64, c: f64, warn_days: u64, crit_days: u64) -> Limits {
        Limits {
            ratio: Thresholds {
                warning: Ppm::from_ratio(w).unwrap(),
                critical: Ppm::from_ratio(c).unwrap(),
            },
            warning_within: Duration::from_secs(warn_days * 86_400),
            critical_within: Duration::from_secs(crit_days * 86_400),
        }
    }

    const DAY: u64 = 86_400;

    #[test]
    fn status_is_the_worse_of_ratio_and_time() {
        let l = limits(0.70, 0.85, 90, 14);
        let low = Headroom::new(10, 100);
        assert_eq!(l.status(low, None), Status::Ok);
        assert_eq!(l.status(low, Some(100 * DAY)), Status::Ok);
        assert_eq!(l.status(low, Some(90 * DAY)), Status::Warning);
        assert_eq!(l.status(low, Some(3 * DAY)), Status::Critical);
        let high = Headroom::new(90, 100);
        assert_eq!(l.status(high, Some(365 * DAY)), Status::Critical);
        assert_eq!(
            l.status(Headroom::new(101, 100), Some(0)),
            Status::Exhausted
        );
    }

    #[test]
    fn the_time_status_ignores_the_ratio() {
        let l = limits(0.70, 0.85, 90, 14);
        assert_eq!(l.time_status(None), Status::Ok);
        assert_eq!(l.time_status(Some(91 * DAY)), Status::Ok);
        assert_eq!(l.time_status(Some(90 * DAY)), Status::Warning);
        assert_eq!(l.time_status(Some(14 * DAY)), Status::Critical);
        assert_eq!(l.time_status(Some(0)), Status::Critical);
    }

    #[test]
    fn only_a_column_exactly_at_its_maximum_on_a_lax_shard_is_clamped() {
        let int_max = 2_147_483_647u64;
        let at_max = Headroom::new(i128::from(int_max), int_max);
        assert!(clamped(Some(false), at_max));
        // Strict, or not known yet: the maximum is a value like any other.
        assert!(!clamped(Some(true), at_max));
        assert!(!clamped(None, at_max));
        // One below, or past (already exhausted by the ratio rule): not clamping.
        assert!(!clamped(
            Some(false),
            Headroom::new(i128::from(int_max) - 1, int_max)
        ));
        assert!(!clamped(
            Some(false),
            Headroom::new(i128::from(int_max) + 1, int_max)
        ));
        let big = Headroom::new(i128::from(u64::MAX), u64::MAX);
        assert!(clamped(Some(false), big));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Clamped exactly when the shard is lax and current equals max, whatever the
            /// type's maximum.
            #[test]
            fn clamped_iff_lax_and_exactly_at_max(
                max in any::<u64>(), delta in -3i128..=3, strict in proptest::option::of(any::<bool>())
            ) {
                let h = Headroom::new(i128::from(max) + delta, max);
                prop_assert_eq!(clamped(strict, h), strict == Some(false) && delta == 0);
            }
        }
    }

    #[test]
    fn overrides_apply_first_match_and_silences_expire() {
        let now = Utc::now();
        let policy = Policy {
            default: limits(0.70, 0.85, 90, 14),
            overrides: vec![Override {
                columns: ColumnGlobs::new(&["etsy.logs.*".to_string()], &[]).unwrap(),
                limits: limits(0.90, 0.99, 30, 3),
            }],
            silences: vec![
                Silence {
                    columns: ColumnGlobs::new(&["etsy.a.*".to_string()], &[]).unwrap(),
                    until: now + chrono::Duration::days(1),
                    reason: "migration".to_string(),
                },
                Silence {
                    columns: ColumnGlobs::new(&["etsy.b.*".to_string()], &[]).unwrap(),
                    until: now - chrono::Duration::days(1),
                    reason: "over".to_string(),
                },
            ],
        };
        assert_eq!(
            policy.limits("etsy", "logs", "id").ratio.warning.get(),
            900_000
        );
        assert_eq!(
            policy.limits("etsy", "other", "id").ratio.warning.get(),
            700_000
        );
        assert_eq!(
            policy
                .silence("etsy", "a", "x", now)
                .map(|s| s.reason.as_str()),
            Some("migration")
        );
        assert!(policy.silence("etsy", "b", "x", now).is_none());
    }
}
