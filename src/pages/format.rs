//! How the pages write numbers, times and names: the same values as the JSON (each exact
//! figure also in a `data-value` or `datetime` attribute, so the two can be compared), in a
//! form a person reads at a glance. Names from databases are text: maud escapes them, and
//! control and bidi characters are shown as visible escapes (as in a terminal), inside a
//! `<bdi>` so that a right-to-left name cannot reorder what is around it.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

use crate::growth::humanize;
use crate::headroom::Status;
use crate::measure::ColumnReport;

/// `n` with a comma every three digits: `2,147,483,647`.
pub fn thousands(n: i128) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A rate per second as a rate per day: `69,120,000/day`, `0.5/day`; `—` when unknown.
pub fn per_day(per_second: Option<f64>) -> String {
    match per_second {
        None => "—".to_string(),
        Some(g) => {
            let day = g * 86_400.0;
            if day.abs() >= 100.0 {
                format!("{}/day", thousands(day.round() as i128))
            } else if day == 0.0 {
                "0/day".to_string()
            } else {
                format!("{day:.2}/day")
            }
        }
    }
}

/// `t` as RFC 3339, as the JSON writes it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `t` to the minute, in UTC, in a `<time>` element that holds it exactly.
pub fn date(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(rfc3339(t)) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

/// `t` as seen from `now`: `in ~9 days`, `~12 seconds ago`, `now`.
pub fn relative(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let seconds = (t - now).num_seconds();
    match seconds {
        0 => "now".to_string(),
        s if s > 0 => format!("in {}", humanize(s.unsigned_abs())),
        s => format!("{} ago", humanize(s.unsigned_abs())),
    }
}

/// Text that holds names from a database, line by line: control and bidi characters as
/// visible escapes, its own line breaks kept.
pub fn lines(text: &str) -> String {
    text.split('\n')
        .map(crate::escape::escape)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Bytes as a person reads them: `512 B`, `96 KB`, `1.5 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A name from a database, as text.
pub fn name(text: &str) -> Markup {
    html! { bdi { (crate::escape::escape(text)) } }
}

/// `shard · schema.table.column`, and `shard · database.schema.table.column` for a
/// PostgreSQL column (two databases may hold the same names).
pub fn column_name(c: &ColumnReport) -> Markup {
    html! {
        (name(&c.shard)) " · "
        @if let Some(database) = c.id.database() { (name(database)) "." }
        (name(&c.id.schema)) "." (name(&c.id.table)) "." (name(&c.id.column))
    }
}

/// A status, coloured by its class.
pub fn status(s: Status) -> Markup {
    html! { span class={ "st st-" (s.as_str()) } { (s.as_str()) } }
}

/// When a column runs out: its date and how far from `now`, or why there is none.
pub fn runs_out(c: &ColumnReport, now: DateTime<Utc>) -> Markup {
    exhaustion(
        c.seconds_to_exhaustion,
        c.exhausts_at(),
        c.growth_per_second,
        now,
    )
}

/// When something runs out, from its forecast: the date and how far from `now`; only how
/// far when that is past any date (a BIGINT growing slowly); or why there is none.
pub fn exhaustion(
    seconds: Option<u64>,
    at: Option<DateTime<Utc>>,
    growth_per_second: Option<f64>,
    now: DateTime<Utc>,
) -> Markup {
    match (seconds, at) {
        (Some(0), _) => html! { "already out" },
        (Some(_), Some(at)) => html! { (date(at)) br; span.muted { (relative(now, at)) } },
        (Some(s), None) => html! { "in " (humanize(s)) },
        (None, _) if growth_per_second.is_none() => {
            html! { span.muted { "growth not measured yet" } }
        }
        (None, _) => html! { span.muted { "not growing" } },
    }
}

/// The share used as a bar (an SVG rectangle: no inline style, which the page's policy
/// forbids) and a percentage.
pub fn used_bar(ratio: f64, s: Status) -> Markup {
    let width = (ratio.clamp(0.0, 1.0) * 100.0 * 10.0).round() / 10.0;
    html! {
        svg.bar viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true" {
            rect.track width="100" height="6" {}
            rect class=(s.as_str()) width=(width) height="6" {}
        }
        (crate::headroom::percent(ratio))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_a_comma_every_three_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(-2_147_483_648), "-2,147,483,648");
        assert_eq!(
            thousands(i128::from(u64::MAX)),
            "18,446,744,073,709,551,615"
        );
    }

    #[test]
    fn rates_are_per_day() {
        assert_eq!(per_day(None), "—");
        assert_eq!(per_day(Some(800.0)), "69,120,000/day");
        assert_eq!(per_day(Some(0.0)), "0/day");
        assert_eq!(per_day(Some(1.0 / 172_800.0)), "0.50/day");
    }

    #[test]
    fn sizes_are_in_the_unit_that_reads_best() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(98_304), "96 KB");
        assert_eq!(bytes(60 << 20), "60 MB");
        assert_eq!(bytes(3 << 29), "1.5 GB");
    }

    #[test]
    fn text_of_several_lines_keeps_its_line_breaks_and_escapes_the_rest() {
        assert_eq!(lines("a\nb"), "a\nb");
        assert_eq!(lines("a\u{202e}\nb\tc"), "a\\u{202e}\nb\\tc");
    }

    #[test]
    fn times_are_relative_to_now() {
        let now = Utc::now();
        assert_eq!(relative(now, now), "now");
        assert_eq!(
            relative(now, now + chrono::TimeDelta::days(9)),
            "in ~9 days"
        );
        assert_eq!(
            relative(now, now - chrono::TimeDelta::seconds(12)),
            "~12 seconds ago"
        );
    }

    #[test]
    fn a_hostile_name_is_escaped_text() {
        let got = name("<script>alert(1)</script>\u{202e}\u{1b}[31m\"'").into_string();
        assert_eq!(
            got,
            "<bdi>&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}\\u{1b}[31m&quot;'</bdi>"
        );
    }
}
