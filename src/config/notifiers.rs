//! Where pages go — `[pagerduty]` (Events API v2) and `[webhook]` — and `[state]`, the file
//! that keeps their open incidents and undelivered events.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::endpoint::redact_text;
use super::section::Section;
use super::{NotifierKind, NotifierSettings, PAGERDUTY_URL, secret};
use crate::policy::Severity;

/// `[pagerduty]` and `[webhook]`, those present, in that order.
pub(super) fn every(
    root: &mut Section,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Vec<Option<NotifierSettings>> {
    let mut notifiers = Vec::new();
    if root.has("pagerduty") {
        notifiers.push(
            root.section("pagerduty")
                .and_then(|mut s| pagerduty(&mut s, lookup, base)),
        );
    }
    if root.has("webhook") {
        notifiers.push(root.section("webhook").and_then(|mut s| webhook(&mut s)));
    }
    notifiers
}

/// `[pagerduty]`.
pub(super) fn pagerduty(
    s: &mut Section,
    lookup: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Option<NotifierSettings> {
    let key = secret::read(s, "routing_key_env", "routing_key_file", lookup, base, true);
    let kind = key
        .flatten()
        .map(|routing_key| NotifierKind::PagerDuty { routing_key });
    let notifier = notifier(s, "pagerduty", kind, Some(PAGERDUTY_URL));
    s.finish();
    notifier
}

/// `[webhook]`.
pub(super) fn webhook(s: &mut Section) -> Option<NotifierSettings> {
    let notifier = notifier(s, "webhook", Some(NotifierKind::Webhook), None);
    s.finish();
    notifier
}

/// A notifier's keys: `url` (default `default_url`), `min_severity`, `blind_after`, and
/// the delivery knobs.
fn notifier(
    s: &mut Section,
    name: &'static str,
    kind: Option<NotifierKind>,
    default_url: Option<&str>,
) -> Option<NotifierSettings> {
    let url = match (s.string("url", default_url.is_none()), default_url) {
        (Some(text), _) => Some(text),
        (None, Some(d)) => Some(d.to_string()),
        (None, None) => None,
    };
    let url = url.and_then(|text| match Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
        _ => {
            s.problem(
                "url",
                format!("{} is not an http:// or https:// URL", redact_text(&text)),
            );
            None
        }
    });
    let min_severity = match s.string("min_severity", false).as_deref() {
        None | Some("critical") => Some(Severity::Critical),
        Some("warning") => Some(Severity::Warning),
        Some(other) => {
            s.problem(
                "min_severity",
                format!("{other:?} is not a severity: expected \"critical\" or \"warning\""),
            );
            None
        }
    };
    let blind_after = s.duration("blind_after", Duration::from_secs(15 * 60));
    let (retry_initial, retry_max) = retries(s);
    let rate = s.positive("max_events_per_minute", 100);
    let timeout = s.duration("timeout", Duration::from_secs(10));
    Some(NotifierSettings {
        name,
        kind: kind?,
        url: url?,
        min_severity: min_severity?,
        blind_after: blind_after?,
        retry_initial: retry_initial?,
        retry_max: retry_max?,
        max_events_per_minute: u32::try_from(rate?).unwrap_or(u32::MAX),
        timeout: timeout?,
    })
}

/// `retry_initial` and `retry_max`; the first wait may not be longer than the last.
fn retries(s: &mut Section) -> (Option<Duration>, Option<Duration>) {
    let initial = s.duration("retry_initial", Duration::from_secs(1));
    let max = s.duration("retry_max", Duration::from_secs(300));
    if let (Some(i), Some(m)) = (initial, max)
        && i > m
    {
        s.problem(
            "retry_initial",
            format!(
                "retry_initial ({}) must not be longer than retry_max ({})",
                humantime::format_duration(i),
                humantime::format_duration(m)
            ),
        );
        return (None, None);
    }
    (initial, max)
}

/// `[state] path`, relative to the configuration's folder; `headroom-state.json` there by
/// default.
pub(super) fn state_path(s: &mut Section, base: &Path) -> Option<PathBuf> {
    let path = s
        .string("path", false)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("headroom-state.json"));
    s.finish();
    Some(if path.is_absolute() {
        path
    } else {
        base.join(path)
    })
}
