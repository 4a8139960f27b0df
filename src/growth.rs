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
//! A jump is not growth: `ALTER TABLE … AUTO_INCREMENT = N` or a bulk reservation moves a
//! value in one interval by what months of growth would. Once a rate is established
//! ([`STEP_MIN_POINTS`] samples), an interval whose increase is at least [`STEP_FACTOR`] times
//! what the rate predicts for it *and* at least [`STEP_MIN_PPM_OF_MAX`] of the type's
//! maximum is a step: the older samples are moved up by its excess, so the rate does not
//! see it while `current` does. Both conditions must hold so that ordinary burstiness is
//! never taken for a step (underestimating growth pages late, the dangerous direction). A
//! step is provisional for one interval: if the next one also grows at least
//! [`STEP_FACTOR`] times faster than the old rate, and at no less than a tenth of the step's
//! own rate, the rate really changed and the step is re-admitted as growth.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause()`. A
//! history is saved ([`History::to_saved`]) with wall-clock times, so that a restart (a new
//! `Instant` origin) keeps its forecasts; [`file`](mod@file) reads and writes the file.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub mod file;

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

/// An interval is a step only when its increase is at least this many times what the rate
/// predicts for it...
pub const STEP_FACTOR: u64 = 10;
/// ...and at least this share of the type's maximum, in parts per million (0.1 %).
pub const STEP_MIN_PPM_OF_MAX: u64 = 1_000;
/// Samples needed (three intervals) before a rate is trusted to tell a step.
pub const STEP_MIN_POINTS: usize = 4;

/// One sample: milliseconds since the history's origin, and the value. Samples before a
/// step are stored moved up by its excess, so that the slope skips it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    at_ms: i64,
    value: u64,
}

/// A step kept out of the rate, as the history holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    /// When it was seen (the sample that ended its interval), on the history's clock.
    at_ms: i64,
    /// The value before and after it.
    from: u64,
    to: u64,
}

/// The newest step while it is provisional: what re-admitting it as growth needs.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pending {
    /// By how much the samples before it were moved up.
    excess: u64,
    /// The rate (IDs per second) before it.
    base_rate: f64,
    /// The rate over its own interval.
    step_rate: f64,
    /// The step before it, restored if this one turns out to be growth.
    previous: Option<Step>,
}

/// The bounded history of one value.
#[derive(Debug, Clone)]
pub struct History {
    /// Time zero of `Point::at_ms`.
    origin: Instant,
    /// Oldest first.
    points: VecDeque<Point>,
    /// The latest step kept out of the rate, until it ages past the retention.
    last_jump: Option<Step>,
    /// Set for the one interval after a step.
    pending: Option<Pending>,
}

/// A step as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Jump {
    /// When the poll that saw it ran.
    pub at: DateTime<Utc>,
    /// The value before the jump and after it.
    pub from: u64,
    pub to: u64,
}

/// A step as a forecast carries it: how long ago, so that the caller dates it on its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JumpAgo {
    pub ago: Duration,
    pub from: u64,
    pub to: u64,
}

/// What the history says about the future.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// IDs per second; `None` until two samples span some time.
    pub growth_per_second: Option<f64>,
    /// Seconds until `current` passes `max` at that rate; `None` while the value does not
    /// grow; 0 when it already has.
    pub seconds_to_exhaustion: Option<u64>,
    /// The latest jump kept out of the rate (within the retention).
    pub last_jump: Option<JumpAgo>,
}

impl Forecast {
    /// Nothing known yet.
    pub const NONE: Forecast = Forecast {
        growth_per_second: None,
        seconds_to_exhaustion: None,
        last_jump: None,
    };

    /// The latest jump, dated from `now` (the moment of the forecast).
    pub fn last_jump_at(&self, now: DateTime<Utc>) -> Option<Jump> {
        let jump = self.last_jump?;
        let ago = chrono::TimeDelta::from_std(jump.ago).ok()?;
        Some(Jump {
            at: now.checked_sub_signed(ago)?,
            from: jump.from,
            to: jump.to,
        })
    }

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
    /// Keeps only the histories whose key `keep` accepts (a reload drops removed sources).
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.histories.retain(|k, _| keep(k));
    }

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
            history.record_with_max(now, value, max);
            out.insert(key.clone(), history.forecast(now, max));
            kept.insert(key, history);
        }
        self.histories = kept;
        out
    }

    /// As [`Tracker::round`], for values read at different moments, each given with its
    /// `read_at`: a value read at `now` is recorded as `round` records it; one read earlier
    /// (held from an earlier poll) only when it is newer than its history's newest sample,
    /// so that repeating a value does not bend the rate flat. Each forecast is as of when its
    /// value was read.
    pub fn round_read(
        &mut self,
        now: Instant,
        values: impl IntoIterator<Item = (K, i128, u64, Instant)>,
    ) -> HashMap<K, Forecast> {
        let mut kept = HashMap::new();
        let mut out = HashMap::new();
        for (key, value, max, read_at) in values {
            let mut history = self
                .histories
                .remove(&key)
                .unwrap_or_else(|| History::new(now.min(read_at)));
            if read_at == now || history.is_newer(read_at) {
                history.record_with_max(read_at, value, max);
            }
            out.insert(key.clone(), history.forecast(read_at, max));
            kept.insert(key, history);
        }
        self.histories = kept;
        out
    }

    /// Every history in its saved form, as of `now` (wall clock `now_unix_ms`).
    pub fn to_saved(&self, now: Instant, now_unix_ms: i64) -> Vec<(K, SavedHistory)> {
        self.histories
            .iter()
            .filter_map(|(k, h)| Some((k.clone(), h.to_saved(now, now_unix_ms)?)))
            .collect()
    }

    /// Takes saved histories back in; they replace any held under the same key.
    pub fn restore(
        &mut self,
        saved: impl IntoIterator<Item = (K, SavedHistory)>,
        now: Instant,
        now_unix_ms: i64,
    ) {
        for (key, saved) in saved {
            if let Some(history) = History::from_saved(&saved, now, now_unix_ms) {
                self.histories.insert(key, history);
            }
        }
    }

    /// Number of histories held.
    pub fn len(&self) -> usize {
        self.histories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histories.is_empty()
    }

    /// Records one value without forgetting the others.
    pub fn record(&mut self, now: Instant, key: K, value: i128, max: u64) -> Forecast {
        let history = self
            .histories
            .entry(key)
            .or_insert_with(|| History::new(now));
        history.record_with_max(now, value, max);
        history.forecast(now, max)
    }
}

impl History {
    pub fn new(now: Instant) -> History {
        History {
            origin: now,
            points: VecDeque::new(),
            last_jump: None,
            pending: None,
        }
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether `at` is later than the newest sample (to the millisecond), or there is none.
    fn is_newer(&self, at: Instant) -> bool {
        let at_ms = at.saturating_duration_since(self.origin).as_millis() as i64;
        self.points.back().is_none_or(|last| at_ms > last.at_ms)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Records `value` at `now`, resetting the history if the value went down, and
    /// down-samples what has aged out of the raw window.
    /// Records `value` at `now`, resetting the history if the value went down, keeping a
    /// step out of the rate (see the module's documentation) when the type's maximum `max`
    /// says it is one, and down-sampling what has aged out of the raw window.
    pub fn record_with_max(&mut self, now: Instant, value: i128, max: u64) {
        let value = value.clamp(0, i128::from(u64::MAX)) as u64;
        if self.points.back().is_some_and(|last| value < last.value) {
            self.points.clear();
            self.origin = now;
            self.last_jump = None;
            self.pending = None;
        }
        let at_ms = now.saturating_duration_since(self.origin).as_millis() as i64;
        let Some(last) = self.points.back().copied() else {
            self.points.push_back(Point { at_ms, value });
            return;
        };
        if at_ms <= last.at_ms {
            // Same instant (a paused clock, a double record): keep the newest value.
            if let Some(last) = self.points.back_mut() {
                last.value = value;
            }
            return;
        }
        let increase = value - last.value;
        let seconds = (at_ms - last.at_ms) as f64 / 1000.0;
        if let Some(pending) = self.pending.take()
            && increase > 0
            && increase as f64 >= STEP_FACTOR as f64 * pending.base_rate * seconds
            && increase as f64 * STEP_FACTOR as f64 >= pending.step_rate * seconds
        {
            // The rate stayed high: the step was the start of faster growth.
            for p in self.points.iter_mut().filter(|p| p.at_ms < last.at_ms) {
                p.value = p.value.saturating_sub(pending.excess);
            }
            self.last_jump = pending.previous;
        }
        // Large for the type first: it is cheap, and rarely true.
        let large =
            u128::from(increase) * 1_000_000 >= u128::from(max) * u128::from(STEP_MIN_PPM_OF_MAX);
        if large && self.points.len() >= STEP_MIN_POINTS {
            // The faster of the forecast's rate and the last interval's, so that a rate
            // that has just changed (a re-admitted step) is not taken for another step.
            let rate = self
                .rate(last.at_ms)
                .unwrap_or(0.0)
                .max(self.last_interval_rate().unwrap_or(0.0))
                .max(0.0);
            let predicted = rate * seconds;
            if increase as f64 >= STEP_FACTOR as f64 * predicted {
                let excess = increase.saturating_sub(predicted.round() as u64);
                for p in self.points.iter_mut() {
                    p.value = p.value.saturating_add(excess);
                }
                self.pending = Some(Pending {
                    excess,
                    base_rate: rate,
                    step_rate: increase as f64 / seconds,
                    previous: self.last_jump,
                });
                self.last_jump = Some(Step {
                    at_ms,
                    from: last.value,
                    to: value,
                });
            }
        }
        self.points.push_back(Point { at_ms, value });
        self.compact(at_ms);
    }

    /// Records `value` at `now` with no step detection (a type maximum of `u64::MAX` makes
    /// every step too small to count).
    pub fn record(&mut self, now: Instant, value: i128) {
        self.record_with_max(now, value, u64::MAX);
    }

    fn compact(&mut self, now_ms: i64) {
        let raw_from = now_ms - RAW_WINDOW.as_millis() as i64;
        let keep_from = now_ms - RETENTION.as_millis() as i64;
        let bucket = BUCKET.as_millis() as i64;
        while self.points.front().is_some_and(|p| p.at_ms < keep_from) {
            self.points.pop_front();
        }
        if self.last_jump.is_some_and(|j| j.at_ms < keep_from) {
            self.last_jump = None;
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

    /// IDs per second between the two newest samples.
    fn last_interval_rate(&self) -> Option<f64> {
        let n = self.points.len();
        let (a, b) = (self.points.get(n.checked_sub(2)?)?, self.points.get(n - 1)?);
        let seconds = (b.at_ms - a.at_ms) as f64 / 1000.0;
        (seconds > 0.0).then(|| (b.value - a.value) as f64 / seconds)
    }

    /// The growth rate as of `now_ms`: the faster of the whole history's slope and the
    /// short window's.
    fn rate(&self, now_ms: i64) -> Option<f64> {
        let long = slope(self.points.iter());
        let short_from = now_ms - SHORT_WINDOW.as_millis() as i64;
        let short = slope(self.points.iter().filter(|p| p.at_ms >= short_from));
        match (long, short) {
            (Some(l), Some(s)) => Some(l.max(s)),
            (l, s) => l.or(s),
        }
    }

    /// The forecast for a column whose type maximum is `max`, as of `now`.
    pub fn forecast(&self, now: Instant, max: u64) -> Forecast {
        let now_ms = now.saturating_duration_since(self.origin).as_millis() as i64;
        let growth = self.rate(now_ms);
        let current = self.points.back().map(|p| p.value);
        let seconds_to_exhaustion = match (growth, current) {
            (_, Some(c)) if c > max => Some(0),
            (Some(g), Some(c)) if g > 0.0 => {
                let remaining = (max - c) as f64;
                Some((remaining / g).min(u64::MAX as f64) as u64)
            }
            _ => None,
        };
        let last_jump = self.last_jump.map(|j| JumpAgo {
            ago: Duration::from_millis(now_ms.saturating_sub(j.at_ms).max(0) as u64),
            from: j.from,
            to: j.to,
        });
        Forecast {
            growth_per_second: growth,
            seconds_to_exhaustion,
            last_jump,
        }
    }
}

/// A history as the history file holds it: wall-clock times, and both times and values
/// delta-of-delta encoded, so that a steady series is a run of small numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedHistory {
    /// Unix milliseconds of the oldest sample.
    pub t: i64,
    /// The oldest sample's value (moved up by the steps after it, as held).
    pub v: u64,
    /// For each further sample, the change of its time step (milliseconds) and of its value
    /// step over the previous sample's: `[dt, dv, dt, dv, ...]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub d: Vec<i128>,
    /// The last jump: `[unix ms, from, to]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub j: Option<(i64, u64, u64)>,
    /// The step still provisional: `[excess, rate before it, rate over it]` (IDs a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<(u64, f64, f64)>,
}

impl History {
    /// The saved form as of `now`, whose wall-clock time is `now_unix_ms`; `None` when empty.
    pub fn to_saved(&self, now: Instant, now_unix_ms: i64) -> Option<SavedHistory> {
        let now_ms = now.saturating_duration_since(self.origin).as_millis() as i64;
        let wall = |at_ms: i64| now_unix_ms.saturating_sub(now_ms.saturating_sub(at_ms));
        let first = self.points.front()?;
        let mut d = Vec::with_capacity(2 * self.points.len());
        let (mut prev, mut prev_dt, mut prev_dv) = (*first, 0i128, 0i128);
        for p in self.points.iter().skip(1) {
            let dt = i128::from(p.at_ms) - i128::from(prev.at_ms);
            let dv = i128::from(p.value) - i128::from(prev.value);
            d.push(dt - prev_dt);
            d.push(dv - prev_dv);
            (prev, prev_dt, prev_dv) = (*p, dt, dv);
        }
        Some(SavedHistory {
            t: wall(first.at_ms),
            v: first.value,
            d,
            j: self.last_jump.map(|j| (wall(j.at_ms), j.from, j.to)),
            // Saved without the step before it: re-admitted after a restart, it leaves
            // `last_jump` empty rather than back at the one before.
            p: self.pending.map(|p| (p.excess, p.base_rate, p.step_rate)),
        })
    }

    /// A history from its saved form, as of `now` (wall clock `now_unix_ms`): samples keep
    /// their age, samples older than the retention are dropped. `None` when nothing is
    /// left or the saved form does not hold together (times that do not increase, values
    /// out of range).
    pub fn from_saved(saved: &SavedHistory, now: Instant, now_unix_ms: i64) -> Option<History> {
        if !saved.d.len().is_multiple_of(2) {
            return None;
        }
        // Times are kept relative to `now`: a sample from before this process started has
        // a negative offset, which no `Instant` arithmetic can underflow.
        let relative = |unix_ms: i128| -> Option<i64> {
            i64::try_from(unix_ms - i128::from(now_unix_ms)).ok()
        };
        let mut points = VecDeque::with_capacity(saved.d.len() / 2 + 1);
        let (mut at, mut value) = (i128::from(saved.t), i128::from(saved.v));
        let (mut dt, mut dv) = (0i128, 0i128);
        points.push_back(Point {
            at_ms: relative(at)?,
            value: saved.v,
        });
        for pair in saved.d.chunks_exact(2) {
            dt = dt.checked_add(pair[0])?;
            dv = dv.checked_add(pair[1])?;
            if dt <= 0 {
                return None;
            }
            at = at.checked_add(dt)?;
            value = value.checked_add(dv)?;
            points.push_back(Point {
                at_ms: relative(at)?,
                value: u64::try_from(value).ok()?,
            });
        }
        let newest = points.back()?.at_ms;
        if newest > 0 {
            // Saved "in the future" (a clock set back): not a history to trust.
            return None;
        }
        let keep_from = -(RETENTION.as_millis() as i64);
        points.retain(|p| p.at_ms >= keep_from);
        if points.is_empty() {
            return None;
        }
        let last_jump = saved
            .j
            .and_then(|(at, from, to)| {
                Some(Step {
                    at_ms: relative(i128::from(at))?,
                    from,
                    to,
                })
            })
            .filter(|j| j.at_ms >= keep_from);
        let pending = saved
            .p
            .filter(|(_, base, step)| [base, step].iter().all(|r| r.is_finite() && **r >= 0.0))
            .map(|(excess, base_rate, step_rate)| Pending {
                excess,
                base_rate,
                step_rate,
                previous: None,
            });
        Some(History {
            origin: now,
            points,
            last_jump,
            pending,
        })
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

    /// The limits headroom applies when the configuration sets none.
    fn default_limits() -> crate::policy::Limits {
        let toml = "[[shards]]\nname = \"s\"\nurl = \"mysql://u@h:3306/\"\n";
        crate::config::from_toml_str(toml, &|_| None)
            .expect("minimal configuration")
            .policy
            .default
    }

    /// Records `minutes` polls a minute apart, the value growing by `per_minute` each.
    async fn grow(h: &mut History, value: &mut i128, minutes: usize, per_minute: i128, max: u64) {
        for _ in 0..minutes {
            tokio::time::advance(Duration::from_secs(60)).await;
            *value += per_minute;
            h.record_with_max(Instant::now(), *value, max);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_jump_of_a_tenth_of_the_type_keeps_the_rate_and_pages_nothing_by_time() {
        use crate::headroom::{Headroom, Status};
        let limits = default_limits();
        let mut h = History::new(Instant::now());
        let mut value = 200_000_000i128;
        h.record_with_max(Instant::now(), value, INT_MAX);
        // Six hours at 100 IDs a second.
        grow(&mut h, &mut value, 360, 6_000, INT_MAX).await;
        let before = value;
        // ALTER TABLE … AUTO_INCREMENT = current + 10 % of INT, within one interval.
        tokio::time::advance(Duration::from_secs(60)).await;
        value += 6_000 + 214_748_364;
        h.record_with_max(Instant::now(), value, INT_MAX);
        let after = value;
        let check = |h: &History, value: i128, when: &str| {
            let f = h.forecast(Instant::now(), INT_MAX);
            let g = f.growth_per_second.unwrap_or(0.0);
            assert!((g - 100.0).abs() <= 10.0, "{when}: {g} IDs/s");
            let status = limits.status(Headroom::new(value, INT_MAX), f.seconds_to_exhaustion);
            assert_eq!(status, Status::Ok, "{when}: {f:?}");
            assert_eq!(
                limits.time_status(f.seconds_to_exhaustion),
                Status::Ok,
                "{when}"
            );
            f
        };
        let f = check(&h, value, "at the jump");
        let jump = f.last_jump.expect("the jump is reported");
        assert_eq!((jump.from, jump.to), (before as u64, after as u64));
        assert_eq!(jump.ago, Duration::ZERO);
        for (minutes, when) in [
            (1, "a poll later"),
            (29, "half an hour later"),
            (90, "two hours later"),
        ] {
            grow(&mut h, &mut value, minutes, 6_000, INT_MAX).await;
            check(&h, value, when);
        }
        let f = h.forecast(Instant::now(), INT_MAX);
        assert_eq!(
            f.last_jump.map(|j| (j.from, j.to, j.ago)),
            Some((before as u64, after as u64, Duration::from_secs(120 * 60)))
        );
        assert_eq!(
            h.points.back().map(|p| i128::from(p.value)),
            Some(value),
            "current still counts the jump"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sustained_tenfold_rate_is_picked_up_within_the_short_window() {
        for factor in [10, 20] {
            let mut h = History::new(Instant::now());
            let mut value = 100_000_000i128;
            h.record_with_max(Instant::now(), value, INT_MAX);
            // A day at 5,000 IDs a second (300,000 a minute), then `factor` times faster:
            // millions a minute, above 0.1 % of INT.
            grow(&mut h, &mut value, 24 * 60, 300_000, INT_MAX).await;
            grow(&mut h, &mut value, 60, 300_000 * factor, INT_MAX).await;
            let g = h
                .forecast(Instant::now(), INT_MAX)
                .growth_per_second
                .unwrap_or(0.0);
            let expected = 5_000.0 * factor as f64;
            assert!(
                (g - expected).abs() <= expected / 100.0,
                "{factor}x within the hour: {g}"
            );
            assert_eq!(h.forecast(Instant::now(), INT_MAX).last_jump, None);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_followed_by_the_same_high_rate_is_readmitted_as_growth() {
        let mut with = History::new(Instant::now());
        let mut without = History::new(Instant::now());
        let mut value = 100_000_000i128;
        let mut before = 0;
        for (i, (minutes, per_minute)) in [(24 * 60, 300_000), (1, 6_000_000), (1, 6_000_000)]
            .into_iter()
            .enumerate()
        {
            for _ in 0..minutes {
                tokio::time::advance(Duration::from_secs(60)).await;
                before = value;
                value += per_minute;
                with.record_with_max(Instant::now(), value, INT_MAX);
                without.record(Instant::now(), value);
            }
            let f = with.forecast(Instant::now(), INT_MAX);
            if i == 1 {
                assert_eq!(
                    f.last_jump.map(|j| (j.from, j.to)),
                    Some((before as u64, value as u64)),
                    "provisional step"
                );
                assert!(f.growth_per_second.unwrap_or(0.0) < 5_001.0, "{f:?}");
            }
        }
        // Re-admitted: exactly as if no step had been told.
        let f = with.forecast(Instant::now(), INT_MAX);
        assert_eq!(f.last_jump, None);
        assert_eq!(f, without.forecast(Instant::now(), INT_MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn a_jump_on_an_idle_column_stays_a_jump_when_inserts_resume_slowly() {
        let mut h = History::new(Instant::now());
        let mut value = 1_000i128;
        h.record_with_max(Instant::now(), value, INT_MAX);
        // An hour without inserts, then ALTER TABLE … AUTO_INCREMENT = 1000000000, then a
        // few rows a minute.
        grow(&mut h, &mut value, 60, 0, INT_MAX).await;
        grow(&mut h, &mut value, 1, 999_999_000, INT_MAX).await;
        grow(&mut h, &mut value, 30, 3, INT_MAX).await;
        let f = h.forecast(Instant::now(), INT_MAX);
        assert_eq!(
            f.last_jump.map(|j| (j.from, j.to)),
            Some((1_000, 1_000_000_000))
        );
        assert!(f.growth_per_second.unwrap_or(1.0) < 0.1, "{f:?}");
        assert_eq!(
            default_limits().time_status(f.seconds_to_exhaustion),
            crate::headroom::Status::Ok
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_small_for_the_type_are_growth_not_steps() {
        let mut with = History::new(Instant::now());
        let mut without = History::new(Instant::now());
        let mut value = 1_000i128;
        for (minutes, per_minute) in [(60, 60), (1, 600_000), (1, 60)] {
            for _ in 0..minutes {
                tokio::time::advance(Duration::from_secs(60)).await;
                value += per_minute;
                with.record_with_max(Instant::now(), value, INT_MAX);
                without.record(Instant::now(), value);
            }
        }
        // 10,000 times the rate, but 0.03 % of INT: growth as it would be with no step
        // detection at all.
        let f = with.forecast(Instant::now(), INT_MAX);
        assert_eq!(f.last_jump, None);
        assert_eq!(f, without.forecast(Instant::now(), INT_MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn no_step_is_told_before_a_rate_is_established() {
        let mut h = History::new(Instant::now());
        let mut value = 1_000i128;
        h.record_with_max(Instant::now(), value, INT_MAX);
        grow(&mut h, &mut value, 2, 60, INT_MAX).await;
        grow(&mut h, &mut value, 1, 500_000_000, INT_MAX).await;
        assert_eq!(h.forecast(Instant::now(), INT_MAX).last_jump, None);
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
