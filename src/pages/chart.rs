//! A column's history as an SVG chart drawn on the server: the samples the daemon holds
//! (value over time), the forecast line from the current value to the type maximum and the
//! date it is reached, and the step kept out of the rate, marked. No script, no inline style:
//! the classes are the stylesheet's.
//!
//! The time axis runs from the oldest sample to the exhaustion date when that is near
//! (within three times the span of the history); otherwise the forecast is drawn as far as
//! the history spans again and the date is written beside it. The value axis runs
//! from the lowest sample to the type maximum when the line reaches it, so that the
//! approach to the maximum is what the chart shows.

use chrono::{DateTime, TimeDelta, Utc};
use maud::{Markup, html};

use super::format::thousands;
use crate::growth::Samples;
use crate::measure::ColumnReport;

/// The drawing's size, in its own units (it scales to the page's width).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 280.0;
/// The plot within it: room above for labels, below for the time axis.
const LEFT: f64 = 12.0;
const RIGHT: f64 = WIDTH - 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = HEIGHT - 30.0;

/// What the chart spans.
struct Frame {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    low: f64,
    high: f64,
}

impl Frame {
    fn x(&self, t: DateTime<Utc>) -> f64 {
        let span = (self.to - self.from).num_milliseconds().max(1) as f64;
        let at = (t - self.from).num_milliseconds() as f64;
        LEFT + (RIGHT - LEFT) * (at / span).clamp(0.0, 1.0)
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.high - self.low).max(f64::MIN_POSITIVE);
        BOTTOM - (BOTTOM - TOP) * ((v - self.low) / span).clamp(0.0, 1.0)
    }
}

/// The chart of column `c`'s `samples`.
pub fn chart(c: &ColumnReport, samples: &Samples) -> Markup {
    let current = c.current.clamp(0, i128::from(u64::MAX)) as f64;
    let max = c.max as f64;
    let now = samples
        .points
        .last()
        .map_or(c.observed_at, |(t, _)| (*t).max(c.observed_at));
    let first = samples.points.first().map_or(now, |(t, _)| *t);
    let span = now - first;
    let growth = c.growth_per_second.filter(|g| *g > 0.0);
    let exhausts = c.exhausts_at().filter(|e| *e > now && growth.is_some());
    // The forecast takes at most three quarters of the width: the history stays readable.
    let near = |e: DateTime<Utc>| e - now <= span * 3;
    let reaches = exhausts.is_some_and(near);
    let to = match exhausts {
        Some(e) if reaches => e,
        Some(_) if span > TimeDelta::zero() => now + span,
        Some(_) => now + TimeDelta::minutes(1),
        None if span > TimeDelta::zero() => now + span / 10,
        None => now + TimeDelta::minutes(1),
    };
    let projected = |t: DateTime<Utc>| {
        let seconds = (t - c.observed_at).num_milliseconds() as f64 / 1000.0;
        current + growth.unwrap_or(0.0) * seconds
    };
    let values = samples.points.iter().map(|(_, v)| *v as f64);
    let low = values.clone().fold(current, f64::min);
    let mut high = values.fold(current, f64::max);
    if reaches || current >= max {
        high = high.max(max);
    } else if growth.is_some() {
        high = high.max(projected(to).min(max));
    }
    let range = if high > low {
        high - low
    } else {
        (high * 0.001).max(1.0)
    };
    let frame = Frame {
        from: first,
        to,
        low: (low - range * 0.05).max(0.0),
        high: high + range * 0.02,
    };
    let line: String = samples
        .points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", frame.x(*t), frame.y(*v as f64)))
        .collect::<Vec<_>>()
        .join(" ");
    let (cx, cy) = (frame.x(c.observed_at), frame.y(current));
    let end = if reaches { max } else { projected(to).min(max) };
    let jump = samples.last_jump.filter(|j| j.at >= first && j.at <= now);
    let title = format!(
        "{} samples of {} from {} to {}",
        samples.points.len(),
        crate::escape::escape(&c.id.to_string()),
        first.format("%Y-%m-%d %H:%M"),
        now.format("%Y-%m-%d %H:%M UTC")
    );
    let max_y = frame.y(max);
    let show_max = max <= frame.high;
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby="chart-title" {
            title id="chart-title" { (title) }
            line.axis x1=(LEFT) y1=(BOTTOM) x2=(RIGHT) y2=(BOTTOM) {}
            text x=(LEFT) y=(HEIGHT - 10.0) { (first.format("%m-%d %H:%M")) }
            text x=(RIGHT) y=(HEIGHT - 10.0) text-anchor="end" { (to.format("%Y-%m-%d %H:%M UTC")) }
            text x=(LEFT) y=(BOTTOM - 4.0) { (thousands(frame.low.round() as i128)) }
            @if show_max {
                line.max x1=(LEFT) y1=(fmt(max_y)) x2=(RIGHT) y2=(fmt(max_y)) {}
                text.max x=(LEFT) y=(fmt(max_y - 5.0)) { "type maximum " (thousands(i128::from(c.max))) }
            } @else {
                text x=(LEFT) y=(TOP - 10.0) { (thousands(frame.high.round() as i128)) " (the type maximum, " (thousands(i128::from(c.max))) ", is higher)" }
            }
            @if let Some(j) = jump {
                @let x = fmt(frame.x(j.at));
                line.step x1=(x) y1=(TOP) x2=(x) y2=(BOTTOM) {}
                text.step x=(x) y=(TOP - 4.0) text-anchor="middle" {
                    "step " (thousands(i128::from(j.from))) " → " (thousands(i128::from(j.to))) ", kept out of the rate"
                }
            }
            @if samples.points.len() > 1 {
                polyline.history points=(line) {}
            }
            @if growth.is_some() && to > c.observed_at {
                line.forecast x1=(fmt(cx)) y1=(fmt(cy)) x2=(fmt(frame.x(to))) y2=(fmt(frame.y(end))) {}
            }
            circle.dot cx=(fmt(cx)) cy=(fmt(cy)) r="3.5" {}
            @if let Some(e) = exhausts {
                @if reaches {
                    circle.end cx=(fmt(frame.x(e))) cy=(fmt(max_y)) r="4" {}
                    text.max x=(fmt(frame.x(e) - 6.0)) y=(fmt(max_y - 6.0)) text-anchor="end" { "runs out " (e.format("%Y-%m-%d %H:%M UTC")) }
                } @else {
                    text x=(RIGHT) y=(BOTTOM - 6.0) text-anchor="end" { "runs out " (e.format("%Y-%m-%d")) ", beyond the chart" }
                }
            }
            @if samples.points.is_empty() {
                text x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" { "No history held yet: the chart fills in as polls go by." }
            }
        }
    }
}

/// A coordinate, to a tenth.
fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::growth::{Forecast, Jump};
    use crate::headroom::{IntType, Width};
    use crate::inventory::ColumnId;

    fn column(current: i128, forecast: Forecast) -> ColumnReport {
        let int = IntType::new(Width::Int, false);
        crate::measure::fixture::column("s", ColumnId::new("a", "t", "id"), int, current)
            .forecast(forecast)
            .build()
    }

    /// Samples a minute apart ending at the column's `observed_at`.
    fn minutes(c: &ColumnReport, values: &[u64]) -> Samples {
        let n = values.len() as i64;
        Samples {
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| (c.observed_at - TimeDelta::minutes(n - 1 - i as i64), *v))
                .collect(),
            last_jump: None,
        }
    }

    #[test]
    fn a_column_running_out_soon_is_drawn_to_its_maximum_and_date() {
        let c = column(
            2_147_000_000,
            Forecast {
                growth_per_second: Some(800.0),
                seconds_to_exhaustion: Some(300),
                last_jump: None,
            },
        );
        let samples = minutes(&c, &[2_146_904_000, 2_146_952_000, 2_147_000_000]);
        let svg = chart(&c, &samples).into_string();
        assert!(
            svg.contains("<polyline class=\"history\" points=\"12.0,"),
            "{svg}"
        );
        assert!(svg.contains("<line class=\"forecast\""), "{svg}");
        assert!(svg.contains("type maximum 2,147,483,647"), "{svg}");
        let exhausts = c.exhausts_at().expect("a date");
        assert!(svg.contains(&format!(
            "runs out {}",
            exhausts.format("%Y-%m-%d %H:%M UTC")
        )));
        // The line ends at the right edge, on the maximum's line.
        assert!(svg.contains("<circle class=\"end\" cx=\"708.0\""), "{svg}");
    }

    #[test]
    fn a_column_far_from_running_out_says_when_beside_the_chart() {
        let c = column(
            1_000,
            Forecast {
                growth_per_second: Some(0.001),
                seconds_to_exhaustion: Some(2_147_482_647_000),
                last_jump: None,
            },
        );
        let svg = chart(&c, &minutes(&c, &[999, 1_000])).into_string();
        assert!(svg.contains(", beyond the chart"), "{svg}");
        assert!(svg.contains("is higher)"), "{svg}");
        assert!(!svg.contains("<circle class=\"end\""));
    }

    #[test]
    fn a_step_is_marked_and_no_history_is_said() {
        let c = column(1_000_000_460, Forecast::NONE);
        let mut samples = minutes(&c, &[100, 160, 1_000_000_400, 1_000_000_460]);
        samples.last_jump = Some(Jump {
            at: samples.points[2].0,
            from: 160,
            to: 1_000_000_400,
        });
        let svg = chart(&c, &samples).into_string();
        assert!(
            svg.contains("step 160 → 1,000,000,400, kept out of the rate"),
            "{svg}"
        );
        let empty = chart(&c, &Samples::default()).into_string();
        assert!(empty.contains("No history held yet"));
        assert!(!empty.contains("polyline"));
    }
}
