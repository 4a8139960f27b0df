//! Today's growth history before it was made compact, kept as the reference model of the
//! tests: a `VecDeque` of 16-byte samples, re-built on every record. The compact
//! [`super::History`] must forecast within 1 % of it on the same input (see the comparison
//! tests of `history`, in `history/tests.rs`).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    BUCKET, Forecast, JumpAgo, RAW_POINTS, RAW_WINDOW, RETENTION, SHORT_WINDOW, STEP_FACTOR,
    STEP_MIN_POINTS, STEP_MIN_PPM_OF_MAX,
};

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
