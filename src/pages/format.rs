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

/// A name from a database, as text.
pub fn name(text: &str) -> Markup {
    html! { bdi { (crate::escape::escape(text)) } }
}

/// `shard · schema.table.column`.
pub fn column_name(c: &ColumnReport) -> Markup {
    html! {
        (name(&c.shard)) " · " (name(&c.id.schema)) "." (name(&c.id.table)) "." (name(&c.id.column))
    }
}

/// A status, coloured by its class.
pub fn status(s: Status) -> Markup {
    html! { span class={ "st st-" (s.as_str()) } { (s.as_str()) } }
}

/// When a column runs out: its date and how far from `now`, or why there is none.
pub fn runs_out(c: &ColumnReport, now: DateTime<Utc>) -> Markup {
    match c.exhausts_at() {
        Some(_) if c.seconds_to_exhaustion == Some(0) => html! { "already out" },
        Some(at) => html! { (date(at)) br; span.muted { (relative(now, at)) } },
        None if c.growth_per_second.is_none() => html! { span.muted { "growth not measured yet" } },
        None => html! { span.muted { "not growing" } },
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
