//! How fast a column (or a source) grows, and when it runs out.
//!
//! Each tracked value keeps a bounded history of `(time, current)` samples:
//! - every sample of the last [`RAW_WINDOW`] (at most [`RAW_POINTS`] of them), and
//! - older samples down-sampled to one per [`BUCKET`], back to [`RETENTION`] (a week).
//!
//! That is at most [`MAX_POINTS`] (241) samples of 16 bytes: at most 3,856 bytes of samples
//! per tracked column, whatever the poll interval.
//!
//! The growth rate is a least-squares slope. Two are computed: over the whole history
//! (steady, slow to move) and over the last [`SHORT_WINDOW`] (quick to see a surge); the
//! forecast takes the faster of the two, because a page that comes early is recoverable and
//! one that comes late is not. A value that goes down (a table rebuilt, a counter reset by an
//! ALTER) starts a new history: the old samples describe another column.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause()`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Every sample younger than this is kept.
pub const RAW_WINDOW: Duration = Duration::from_secs(30 * 60);
/// At most this many raw samples (a very short poll interval is thinned).
pub const RAW_POINTS: usize = 72;
/// Older samples are kept one per bucket...
pub const BUCKET: Duration = Duration::from_secs(60 * 60);
/// ...back to this age.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Samples kept at most: raw ones plus one per bucket over the retention (whose two ends
/// may fall in partial buckets).
pub const MAX_POINTS: usize = RAW_POINTS + (RETENTION.as_secs() / BUCKET.as_secs()) as usize + 1;
/// The window of the quick estimate.
pub const SHORT_WINDOW: Duration = Duration::from_secs(60 * 60);

/// One sample: milliseconds since the history's origin, and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    at_ms: i64,
    value: u64,
}

/// The bounded history of one value.
#[derive(Debug, Clone)]
pub struct History {
    /// Time zero of `Point::at_ms`.
    origin: Instant,
    /// Oldest first.
    points: VecDeque<Point>,
}

/// What the history says about the future.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// IDs per second; `None` until two samples span some time.
    pub growth_per_second: Option<f64>,
    /// Seconds until `current` passes `max` at that rate; `None` while the value does not
    /// grow; 0 when it already has.
    pub seconds_to_exhaustion: Option<u64>,
}

impl Forecast {
    /// Nothing known yet.
    pub const NONE: Forecast = Forecast {
        growth_per_second: None,
        seconds_to_exhaustion: None,
    };

    /// The moment of exhaustion, counted from `from`.
    pub fn exhausts_at(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let secs = i64::try_from(self.seconds_to_exhaustion?).ok()?;
        from.checked_add_signed(chrono::TimeDelta::try_seconds(secs)?)
    }
}

/// The histories of many values, keyed by `K`: those not recorded in a round are dropped
/// at its end, so a vanished column takes its history with it.
#[derive(Debug)]
pub struct Tracker<K> {
    histories: HashMap<K, History>,
}

impl<K: std::hash::Hash + Eq + Clone> Default for Tracker<K> {
    fn default() -> Self {
        Tracker {
            histories: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Tracker<K> {
    /// Records a round of `(key, value, max)` at `now` and returns each key's forecast;
    /// keys absent from the round are forgotten.
    pub fn round(
        &mut self,
        now: Instant,
        values: impl IntoIterator<Item = (K, i128, u64)>,
    ) -> HashMap<K, Forecast> {
        let mut kept = HashMap::new();
        let mut out = HashMap::new();
        for (key, value, max) in values {
            let mut history = self
                .histories
                .remove(&key)
                .unwrap_or_else(|| History::new(now));
            history.record(now, value);
            out.insert(key.clone(), history.forecast(now, max));
            kept.insert(key, history);
        }
        self.histories = kept;
        out
    }

    /// Records one value without forgetting the others.
    pub fn record(&mut self, now: Instant, key: K, value: i128, max: u64) -> Forecast {
        let history = self
            .histories
            .entry(key)
            .or_insert_with(|| History::new(now));
        history.record(now, value);
        history.forecast(now, max)
    }
}

impl History {
    pub fn new(now: Instant) -> History {
        History {
            origin: now,
            points: VecDeque::new(),
        }
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Records `value` at `now`, resetting the history if the value went down, and
    /// down-samples what has aged out of the raw window.
    pub fn record(&mut self, now: Instant, value: i128) {
        let value = value.clamp(0, i128::from(u64::MAX)) as u64;
        if self.points.back().is_some_and(|last| value < last.value) {
            self.points.clear();
            self.origin = now;
        }
        let at_ms = now.saturating_duration_since(self.origin).as_millis() as i64;
        if self.points.back().is_some_and(|last| at_ms <= last.at_ms) {
            // Same instant (a paused clock, a double record): keep the newest value.
            if let Some(last) = self.points.back_mut() {
                last.value = value;
            }
            return;
        }
        self.points.push_back(Point { at_ms, value });
        self.compact(at_ms);
    }

    fn compact(&mut self, now_ms: i64) {
        let raw_from = now_ms - RAW_WINDOW.as_millis() as i64;
        let keep_from = now_ms - RETENTION.as_millis() as i64;
        let bucket = BUCKET.as_millis() as i64;
        while self.points.front().is_some_and(|p| p.at_ms < keep_from) {
            self.points.pop_front();
        }
        // Older than the raw window: one point per bucket (the latest in it).
        let mut kept: VecDeque<Point> = VecDeque::with_capacity(self.points.len());
        let mut raw = Vec::new();
        for p in self.points.drain(..) {
            if p.at_ms >= raw_from {
                raw.push(p);
                continue;
            }
            match kept.back_mut() {
                Some(last) if last.at_ms.div_euclid(bucket) == p.at_ms.div_euclid(bucket) => {
                    *last = p
                }
                _ => kept.push_back(p),
            }
        }
        // Too many raw points (a very short interval): drop the one whose neighbours are
        // closest, which keeps the rest evenly spread.
        while raw.len() > RAW_POINTS {
            let densest = (1..raw.len() - 1)
                .min_by_key(|&i| raw[i + 1].at_ms - raw[i - 1].at_ms)
                .unwrap_or(1);
            raw.remove(densest);
        }
        kept.extend(raw);
        self.points = kept;
    }

    /// The forecast for a column whose type maximum is `max`, as of `now`.
    pub fn forecast(&self, now: Instant, max: u64) -> Forecast {
        let now_ms = now.saturating_duration_since(self.origin).as_millis() as i64;
        let long = slope(self.points.iter());
        let short_from = now_ms - SHORT_WINDOW.as_millis() as i64;
        let short = slope(self.points.iter().filter(|p| p.at_ms >= short_from));
        let growth = match (long, short) {
            (Some(l), Some(s)) => Some(l.max(s)),
            (l, s) => l.or(s),
        };
        let current = self.points.back().map(|p| p.value);
        let seconds_to_exhaustion = match (growth, current) {
            (_, Some(c)) if c > max => Some(0),
            (Some(g), Some(c)) if g > 0.0 => {
                let remaining = (max - c) as f64;
                Some((remaining / g).min(u64::MAX as f64) as u64)
            }
            _ => None,
        };
        Forecast {
            growth_per_second: growth,
            seconds_to_exhaustion,
        }
    }
}

/// "~3 days", "~5 hours": a time left as a person reads it at 3 a.m.
pub fn humanize(seconds: u64) -> String {
    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    let (n, unit) = match seconds {
        0 => return "now".to_string(),
        s if s < 2 * MIN => (s, "second"),
        s if s < 2 * HOUR => (s / MIN, "minute"),
        s if s < 2 * DAY => (s / HOUR, "hour"),
        s if s < 120 * DAY => (s / DAY, "day"),
        s if s < 730 * DAY => (s / (30 * DAY), "month"),
        s => (s / (365 * DAY), "year"),
    };
    format!("~{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Least-squares slope in units per second; `None` with fewer than two samples or no time
/// between them. Computed on offsets from the first sample so that large IDs keep their
/// precision.
fn slope<'a>(points: impl Iterator<Item = &'a Point> + Clone) -> Option<f64> {
    let first = points.clone().next()?;
    let (mut n, mut sx, mut sy) = (0f64, 0f64, 0f64);
    for p in points.clone() {
        n += 1.0;
        sx += (p.at_ms - first.at_ms) as f64 / 1000.0;
        sy += (p.value as i128 - first.value as i128) as f64;
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy) = (0f64, 0f64);
    for p in points {
        let x = (p.at_ms - first.at_ms) as f64 / 1000.0 - mx;
        let y = (p.value as i128 - first.value as i128) as f64 - my;
        sxx += x * x;
        sxy += x * y;
    }
    if sxx <= 0.0 {
        return None;
    }
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INT_MAX: u64 = 2_147_483_647;

    #[tokio::test(start_paused = true)]
    async fn a_linear_history_gives_its_rate_and_the_time_left() {
        let mut h = History::new(Instant::now());
        let mut value = 1_000_000_000i128;
        for _ in 0..120 {
            h.record(Instant::now(), value);
            tokio::time::advance(Duration::from_secs(60)).await;
            value += 6_000; // 100 IDs a second
        }
        let f = h.forecast(Instant::now(), INT_MAX);
        let g = f.growth_per_second.expect("growing");
        assert!((g - 100.0).abs() < 1e-6, "{g}");
        let last = value - 6_000;
        let expected = (i128::from(INT_MAX) - last) as f64 / 100.0;
        let got = f.seconds_to_exhaustion.expect("runs out") as f64;
        assert!((got - expected).abs() <= 1.0, "{got} vs {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flat_history_never_runs_out() {
        let mut h = History::new(Instant::now());
        for _ in 0..30 {
            h.record(Instant::now(), 42);
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        let f = h.forecast(Instant::now(), INT_MAX);
        assert_eq!(f.growth_per_second, Some(0.0));
        assert_eq!(f.seconds_to_exhaustion, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_value_that_drops_after_an_alter_starts_a_new_history() {
        let mut h = History::new(Instant::now());
        for i in 0..30 {
            h.record(Instant::now(), 2_000_000_000 + i * 1_000_000);
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        // The table is rebuilt and its counter starts low, growing slowly.
        h.record(Instant::now(), 10);
        assert_eq!(h.len(), 1);
        assert_eq!(h.forecast(Instant::now(), INT_MAX).growth_per_second, None);
        tokio::time::advance(Duration::from_secs(60)).await;
        h.record(Instant::now(), 70);
        let f = h.forecast(Instant::now(), INT_MAX);
        assert!((f.growth_per_second.unwrap_or(0.0) - 1.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_week_at_a_ten_second_interval_stays_within_the_bound() {
        let mut h = History::new(Instant::now());
        let mut value = 0i128;
        for _ in 0..(8 * 24 * 360) {
            h.record(Instant::now(), value);
            tokio::time::advance(Duration::from_secs(10)).await;
            value += 50;
        }
        assert!(h.len() <= MAX_POINTS, "{} points", h.len());
        assert!(h.len() > 160, "a week of buckets is kept: {}", h.len());
        let g = h
            .forecast(Instant::now(), u64::MAX)
            .growth_per_second
            .unwrap_or(0.0);
        assert!((g - 5.0).abs() < 1e-6, "{g}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_surge_is_seen_through_the_short_window() {
        let mut h = History::new(Instant::now());
        let mut value = 0i128;
        // A day at 1/s, then an hour at 100/s.
        for _ in 0..(24 * 60) {
            h.record(Instant::now(), value);
            tokio::time::advance(Duration::from_secs(60)).await;
            value += 60;
        }
        for _ in 0..60 {
            h.record(Instant::now(), value);
            tokio::time::advance(Duration::from_secs(60)).await;
            value += 6_000;
        }
        let g = h
            .forecast(Instant::now(), u64::MAX)
            .growth_per_second
            .unwrap_or(0.0);
        assert!(g > 90.0, "{g}");
    }

    #[test]
    fn times_left_read_like_a_person_would_say_them() {
        assert_eq!(humanize(0), "now");
        assert_eq!(humanize(45), "~45 seconds");
        assert_eq!(humanize(3 * 3600), "~3 hours");
        assert_eq!(humanize(3 * 86_400 + 100), "~3 days");
        assert_eq!(humanize(200 * 86_400), "~6 months");
        assert_eq!(humanize(5 * 365 * 86_400), "~5 years");
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_value_has_no_time_left() {
        let mut h = History::new(Instant::now());
        h.record(Instant::now(), i128::from(INT_MAX) + 5);
        assert_eq!(
            h.forecast(Instant::now(), INT_MAX).seconds_to_exhaustion,
            Some(0)
        );
    }
}
