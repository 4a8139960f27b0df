//! The alert policy's sections: `[thresholds]`, `[[overrides]]` and `[[silences]]`, and the
//! `schema.table.column` glob lists they (and `[[references]]`) use.

use chrono::{DateTime, Utc};
use globset::Glob;

use super::section::Section;
use crate::headroom::Thresholds;
use crate::policy::{ColumnGlobs, Limits, Override, Silence};

/// Ratio and time thresholds (`[thresholds]`, or an override's keys); absent keys take
/// `defaults`, or the built-in defaults.
pub(super) fn limits(s: &mut Section, defaults: Option<Limits>) -> Option<Limits> {
    let d = defaults.unwrap_or_default();
    let warning = s.ratio("warning", d.ratio.warning);
    let critical = s.ratio("critical", d.ratio.critical);
    let warning_within = s.duration("warning_within", d.warning_within);
    let critical_within = s.duration("critical_within", d.critical_within);
    let mut ok = true;
    if let (Some(w), Some(c)) = (warning, critical)
        && w >= c
    {
        s.problem(
            "warning",
            format!(
                "warning ({}) must be below critical ({})",
                w.as_ratio(),
                c.as_ratio()
            ),
        );
        ok = false;
    }
    if let (Some(w), Some(c)) = (warning_within, critical_within)
        && w <= c
    {
        s.problem(
            "warning_within",
            format!(
                "warning_within ({}) must be longer than critical_within ({})",
                humantime::format_duration(w),
                humantime::format_duration(c)
            ),
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(Limits {
        ratio: Thresholds {
            warning: warning?,
            critical: critical?,
        },
        warning_within: warning_within?,
        critical_within: critical_within?,
    })
}

/// One `[[overrides]]` table. With `[thresholds]` in error (`defaults` is `None`) the
/// built-in defaults stand in, so that this table's own problems are still reported.
pub(super) fn an_override(s: &mut Section, defaults: Option<Limits>) -> Option<Override> {
    let columns = globs(s, "columns", true);
    let limits = limits(s, defaults);
    s.finish();
    Some(Override {
        columns: columns?,
        limits: limits?,
    })
}

/// One `[[silences]]` table.
pub(super) fn silence(s: &mut Section) -> Option<Silence> {
    let columns = globs(s, "columns", true);
    let until =
        s.string("until", true)
            .and_then(|text| match DateTime::parse_from_rfc3339(text.trim()) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(e) => {
                    s.problem(
                        "until",
                        format!(
                            "{text:?} is not an RFC 3339 time such as 2026-12-31T00:00:00Z: {e}"
                        ),
                    );
                    None
                }
            });
    let reason = s.string("reason", true);
    if reason.as_ref().is_some_and(|r| r.trim().is_empty()) {
        s.problem(
            "reason",
            "must say why, for whoever wonders why a column does not page".to_string(),
        );
    }
    s.finish();
    Some(Silence {
        columns: columns?,
        until: until?,
        reason: reason.filter(|r| !r.trim().is_empty())?,
    })
}

/// The glob list under `key` and its `exclude` list, each glob checked.
pub(super) fn globs(s: &mut Section, key: &str, required: bool) -> Option<ColumnGlobs> {
    let columns = s.string_list(key, required);
    if columns.as_ref().is_some_and(Vec::is_empty) {
        s.problem(
            key,
            "is empty: list at least one schema.table.column glob".to_string(),
        );
    }
    let exclude = s.string_list("exclude", false).unwrap_or_default();
    let mut ok = true;
    for (k, list) in [
        (key, columns.as_deref().unwrap_or_default()),
        ("exclude", &exclude[..]),
    ] {
        for (i, pattern) in list.iter().enumerate() {
            if let Err(message) = check_glob(pattern) {
                s.problem(&format!("{k}[{i}]"), message);
                ok = false;
            }
        }
    }
    let columns = columns?;
    if !ok || columns.is_empty() {
        return None;
    }
    ColumnGlobs::new(&columns, &exclude).ok()
}

pub(super) fn check_glob(pattern: &str) -> Result<(), String> {
    if pattern.split('.').count() != 3 {
        return Err(format!(
            "{pattern:?} must have the form schema.table.column, e.g. \"etsy.*.*_id\""
        ));
    }
    Glob::new(pattern)
        .map(|_| ())
        .map_err(|e| format!("{pattern:?} is not a valid glob: {e}"))
}
