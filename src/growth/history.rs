//! One value's bounded history, and the rules of a record: a reset when the value goes
//! down, a step kept out of the rate, one sample per bucket past the raw window.
//!
//! Each record decodes the samples once, applies the rules below and encodes them again
//! from the first sample it changed (usually the bucket the raw window just left), keeping
//! the bytes before.
//!
//! A value that goes down (a table rebuilt, a counter reset by an ALTER) starts a new
//! history: the old samples describe another column.
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

use std::time::Duration;

use tokio::time::Instant;

use super::codec::{decode, encode};
use super::rate::{last_interval_rate, rate};
use super::{
    BUCKET, Forecast, JumpAgo, Point, RAW_POINTS, RAW_WINDOW, RETENTION, STEP_FACTOR,
    STEP_MIN_POINTS, STEP_MIN_PPM_OF_MAX,
};

#[cfg(test)]
mod tests;

/// A step kept out of the rate, as the history holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Step {
    /// When it was seen (the sample that ended its interval), on the history's clock.
    pub(super) at_ms: i64,
    /// The value before and after it.
    pub(super) from: u64,
    pub(super) to: u64,
    /// By how much the samples before it are held moved up (what the rate did not
    /// predict), so that they can be shown as read; 0 when not known (a history saved
    /// before it was kept).
    pub(super) excess: u64,
}

/// The newest step while it is provisional: what re-admitting it as growth needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pending {
    /// By how much the samples before it were moved up.
    pub(super) excess: u64,
    /// The rate (IDs per second) before it.
    pub(super) base_rate: f64,
    /// The rate over its own interval.
    pub(super) step_rate: f64,
    /// The step before it, restored if this one turns out to be growth.
    pub(super) previous: Option<Step>,
}

/// The steps a history remembers: rare, so held behind a pointer that is null without them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Steps {
    /// The latest step kept out of the rate, until it ages past the retention.
    pub(super) last_jump: Option<Step>,
    /// Set for the one interval after a step.
    pub(super) pending: Option<Pending>,
}

/// The bounded history of one value, compact (its samples encoded as the module `codec`
/// says): 48 bytes and its encoded samples. Times are milliseconds since [`epoch`], one
/// origin for every history of the process.
#[derive(Debug, Clone)]
pub struct History {
    /// The oldest sample (meaningless while `len` is 0).
    pub(super) first: Point,
    /// Samples held, `first` included (at most [`MAX_POINTS`](super::MAX_POINTS)).
    pub(super) len: u16,
    /// The [`Tracker`](super::Tracker) round that last recorded it, wrapping (only equality
    /// counts).
    pub(super) round: u16,
    /// Where its hour buckets start: the moment it was made or last reset, in milliseconds
    /// since [`epoch`], modulo [`BUCKET`].
    phase: u32,
    /// The samples after `first`, oldest first, delta-of-delta encoded ([`encode`]).
    pub(super) tail: Box<[u8]>,
    /// `None` while no step is remembered.
    pub(super) steps: Option<Box<Steps>>,
}

/// A history decoded for one record or forecast.
#[derive(Debug, Default)]
pub(super) struct Work {
    /// Oldest first.
    pub(super) points: Vec<Point>,
    /// Where each decoded sample after the first starts in the encoded bytes (`offsets[i]`
    /// for `points[i + 1]`), then where they end: empty when not known.
    pub(super) offsets: Vec<u32>,
    /// The samples before this index are those decoded, unchanged and in place: encoding
    /// starts again from it, keeping the bytes before (0, the default, encodes everything).
    pub(super) changed_from: usize,
    pub(super) last_jump: Option<Step>,
    pub(super) pending: Option<Pending>,
}

impl History {
    pub fn new(now: Instant) -> History {
        History {
            first: Point::default(),
            len: 0,
            round: 0,
            phase: phase_of(now),
            tail: Box::default(),
            steps: None,
        }
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held on the heap for the samples and the steps (besides the struct itself).
    pub fn heap_bytes(&self) -> usize {
        self.tail.len() + self.steps.as_ref().map_or(0, |_| size_of::<Steps>())
    }

    /// The samples and steps, decoded.
    pub(super) fn unpack(&self) -> Work {
        self.unpack_into(Vec::new(), Vec::new())
    }

    /// The samples and steps, decoded into `points` (emptied first), with where each starts
    /// in the bytes in `offsets`: a record takes this thread's [`POINTS`] and [`OFFSETS`]
    /// and gives them back, so that decoding allocates nothing.
    fn unpack_into(&self, mut points: Vec<Point>, mut offsets: Vec<u32>) -> Work {
        points.clear();
        offsets.clear();
        points.reserve(self.len() + 1);
        offsets.reserve(self.len() + 1);
        if self.len > 0 {
            points.push(self.first);
            // Encoded here from samples that held together: decoding cannot fail, and if it
            // did the history would only be shorter (and the offsets are dropped).
            if decode(&self.tail, &mut points, &mut offsets).is_none()
                || offsets.len() != points.len()
            {
                offsets.clear();
            }
        }
        let steps = self.steps.as_deref();
        Work {
            points,
            offsets,
            changed_from: usize::MAX,
            last_jump: steps.and_then(|s| s.last_jump),
            pending: steps.and_then(|s| s.pending),
        }
    }

    /// Decodes for a record or a forecast into this thread's buffers; give them back with
    /// [`Work::give_back`].
    fn unpack_here(&self) -> Work {
        self.unpack_into(
            POINTS.with_borrow_mut(std::mem::take),
            OFFSETS.with_borrow_mut(std::mem::take),
        )
    }

    /// Keeps `work` in the compact form.
    pub(super) fn pack(&mut self, work: &Work) {
        self.len = u16::try_from(work.points.len()).unwrap_or(u16::MAX);
        self.first = work.points.first().copied().unwrap_or_default();
        // The bytes of the samples before the first changed one stay: a sample's encoding
        // depends only on itself and the two before it.
        let (from, keep) = match work.changed_from.checked_sub(1) {
            Some(i) => match work.offsets.get(i).map(|&o| o as usize) {
                Some(o) if o <= self.tail.len() && i < work.points.len() => (i + 1, o),
                _ => (0, 0),
            },
            None => (0, 0),
        };
        SCRATCH.with_borrow_mut(|bytes| {
            bytes.clear();
            encode(&work.points, from, bytes);
            if self.tail.len() == keep + bytes.len() {
                self.tail[keep..].copy_from_slice(bytes);
            } else {
                let mut tail = Vec::with_capacity(keep + bytes.len());
                tail.extend_from_slice(&self.tail[..keep]);
                tail.extend_from_slice(bytes);
                self.tail = tail.into_boxed_slice();
            }
        });
        self.steps = match (work.last_jump, work.pending) {
            (None, None) => None,
            (last_jump, pending) => Some(Box::new(Steps { last_jump, pending })),
        };
    }

    /// Records `value` at `now`, resetting the history if the value went down, keeping a
    /// step out of the rate (see the module's documentation) when the type's maximum `max`
    /// says it is one, and down-sampling what has aged out of the raw window.
    pub fn record_with_max(&mut self, now: Instant, value: i128, max: u64) {
        self.record_and_forecast(now, value, max);
    }

    /// [`History::record_with_max`] then [`History::forecast`], decoding once.
    pub fn record_and_forecast(&mut self, now: Instant, value: i128, max: u64) -> Forecast {
        self.record_newer_and_forecast(now, value, max, true)
    }

    /// Records `value` read at `at` when `read_now` or when it is newer than the newest
    /// sample (to the millisecond), then forecasts as of `at`, decoding once: a value held
    /// from an earlier poll is already in the history and is not sampled again.
    pub fn record_newer_and_forecast(
        &mut self,
        at: Instant,
        value: i128,
        max: u64,
        read_now: bool,
    ) -> Forecast {
        let mut work = self.unpack_here();
        let at_ms = self.now_ms(at);
        if read_now || work.points.last().is_none_or(|last| at_ms > last.at_ms) {
            self.record_into(&mut work, at, value, max);
            self.pack(&work);
        }
        let forecast = work.forecast(at_ms, max);
        work.give_back();
        forecast
    }

    /// Records `value` at `now` with no step detection (a type maximum of `u64::MAX` makes
    /// every step too small to count).
    pub fn record(&mut self, now: Instant, value: i128) {
        self.record_with_max(now, value, u64::MAX);
    }

    /// The forecast for a column whose type maximum is `max`, as of `now`.
    pub fn forecast(&self, now: Instant, max: u64) -> Forecast {
        let work = self.unpack_here();
        let forecast = work.forecast(self.now_ms(now), max);
        work.give_back();
        forecast
    }

    /// The newest value held.
    pub fn current(&self) -> Option<u64> {
        self.unpack().points.last().map(|p| p.value)
    }

    pub(super) fn now_ms(&self, now: Instant) -> i64 {
        since_epoch_ms(now)
    }

    fn record_into(&mut self, w: &mut Work, now: Instant, value: i128, max: u64) {
        let value = value.clamp(0, i128::from(u64::MAX)) as u64;
        if w.points.last().is_some_and(|last| value < last.value) {
            w.points.clear();
            w.changed_from = 0;
            self.phase = phase_of(now);
            w.last_jump = None;
            w.pending = None;
        }
        let at_ms = self.now_ms(now);
        let Some(last) = w.points.last().copied() else {
            w.points.push(Point { at_ms, value });
            return;
        };
        if at_ms <= last.at_ms {
            // Same instant (a paused clock, a double record): keep the newest value.
            w.changed(w.points.len() - 1);
            if let Some(last) = w.points.last_mut() {
                last.value = value;
            }
            return;
        }
        w.step(last, Point { at_ms, value }, max);
        w.changed(w.points.len());
        w.points.push(Point { at_ms, value });
        w.compact(at_ms, i64::from(self.phase));
    }
}

impl Work {
    /// Notes that the sample at `index` (and those after it) changed or moved.
    fn changed(&mut self, index: usize) {
        self.changed_from = self.changed_from.min(index);
    }

    /// Returns the buffers taken by [`History::unpack_here`] to this thread.
    fn give_back(self) {
        POINTS.with_borrow_mut(|b| *b = self.points);
        OFFSETS.with_borrow_mut(|b| *b = self.offsets);
    }

    /// Tells whether the interval from `last` to `next` re-admits the pending step or is a
    /// step itself, and moves the older samples accordingly.
    fn step(&mut self, last: Point, next: Point, max: u64) {
        let (at_ms, value) = (next.at_ms, next.value);
        let increase = value - last.value;
        let seconds = (at_ms - last.at_ms) as f64 / 1000.0;
        if let Some(pending) = self.pending.take()
            && increase > 0
            && increase as f64 >= STEP_FACTOR as f64 * pending.base_rate * seconds
            && increase as f64 * STEP_FACTOR as f64 >= pending.step_rate * seconds
        {
            // The rate stayed high: the step was the start of faster growth.
            self.changed_from = 0;
            for p in self.points.iter_mut().filter(|p| p.at_ms < last.at_ms) {
                p.value = p.value.saturating_sub(pending.excess);
            }
            self.last_jump = pending.previous;
        }
        // Large for the type first: it is cheap, and rarely true.
        let large =
            u128::from(increase) * 1_000_000 >= u128::from(max) * u128::from(STEP_MIN_PPM_OF_MAX);
        if !large || self.points.len() < STEP_MIN_POINTS {
            return;
        }
        // The faster of the forecast's rate and the last interval's, so that a rate that has
        // just changed (a re-admitted step) is not taken for another step.
        let rate = rate(&self.points, last.at_ms)
            .unwrap_or(0.0)
            .max(last_interval_rate(&self.points).unwrap_or(0.0))
            .max(0.0);
        let predicted = rate * seconds;
        if (increase as f64) < STEP_FACTOR as f64 * predicted {
            return;
        }
        let excess = increase.saturating_sub(predicted.round() as u64);
        self.changed_from = 0;
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
            excess,
        });
    }

    /// Drops what is older than the retention, keeps one sample per bucket (the latest in
    /// it) before the raw window, and thins the raw window to [`RAW_POINTS`]; in place.
    fn compact(&mut self, now_ms: i64, phase: i64) {
        let raw_from = now_ms - RAW_WINDOW.as_millis() as i64;
        let keep_from = now_ms - RETENTION.as_millis() as i64;
        let bucket = BUCKET.as_millis() as i64;
        let points = &mut self.points;
        let stale = points.partition_point(|p| p.at_ms < keep_from);
        // The samples before this one keep their encoding.
        let mut changed = usize::MAX;
        if stale > 0 {
            points.drain(..stale);
            changed = 0;
        }
        if self.last_jump.is_some_and(|j| j.at_ms < keep_from) {
            self.last_jump = None;
        }
        // Older than the raw window: one point per bucket (the latest in it).
        let old = points.partition_point(|p| p.at_ms < raw_from);
        // Times increase: a sample is in the bucket of the last one kept when it is before
        // that bucket's end.
        let (mut kept, mut end) = (0, i64::MIN);
        for i in 0..old {
            let p = points[i];
            if kept > 0 && p.at_ms < end {
                changed = changed.min(kept - 1);
                points[kept - 1] = p;
            } else {
                if kept != i {
                    changed = changed.min(kept);
                }
                points[kept] = p;
                kept += 1;
                end = phase + ((p.at_ms - phase).div_euclid(bucket) + 1) * bucket;
            }
        }
        if kept < old {
            changed = changed.min(kept);
            points.drain(kept..old);
        }
        self.changed(changed);
        // Too many raw points (a very short interval): drop the one whose neighbours are
        // closest, which keeps the rest evenly spread.
        while self.points.len() - kept > RAW_POINTS {
            let raw = &self.points[kept..];
            let densest = (1..raw.len() - 1)
                .min_by_key(|&i| raw[i + 1].at_ms - raw[i - 1].at_ms)
                .unwrap_or(1);
            self.points.remove(kept + densest);
            self.changed(kept + densest);
        }
    }

    /// The forecast as of `now_ms` for a type maximum of `max`.
    fn forecast(&self, now_ms: i64, max: u64) -> Forecast {
        let growth = rate(&self.points, now_ms);
        let current = self.points.last().map(|p| p.value);
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

/// Time zero of every history's samples: the first `Instant` a history was made with.
fn epoch(now: Instant) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| now)
}

/// Where the hour buckets of a history made (or reset) at `now` start.
fn phase_of(now: Instant) -> u32 {
    let bucket = BUCKET.as_millis() as i64;
    u32::try_from(since_epoch_ms(now).rem_euclid(bucket)).unwrap_or(0)
}

/// Milliseconds from [`epoch`] to `now`, negative before it.
pub(super) fn since_epoch_ms(now: Instant) -> i64 {
    let epoch = epoch(now);
    match now.checked_duration_since(epoch) {
        Some(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        None => {
            -i64::try_from(epoch.saturating_duration_since(now).as_millis()).unwrap_or(i64::MAX)
        }
    }
}

thread_local! {
    /// Where a history is decoded for a record or a forecast.
    static POINTS: std::cell::RefCell<Vec<Point>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Where a history is encoded before it is copied into a box of the exact size.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Where the decoded samples start in their bytes, beside [`POINTS`].
    static OFFSETS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}
