//! How fast a column (or a source) grows, and when it runs out.
//!
//! Each tracked value keeps a bounded history of `(time, current)` samples:
//! - every sample of the last [`RAW_WINDOW`] (at most [`RAW_POINTS`] of them), and
//! - older samples down-sampled to one per [`BUCKET`], back to [`RETENTION`] (a week).
//!
//! That is at most [`MAX_POINTS`] (241) samples, whatever the poll interval. They are held
//! compact: the oldest sample as it is, then for each further one the change of its time
//! step and of its value step over the previous one's (delta of delta), zigzag varints. A
//! steady series is a run of one- and two-byte numbers: a week at the default interval is
//! some 200 samples in about 450 bytes (a 16-byte sample each would be 3.2 KB). Each record
//! decodes the samples once, applies the rules below and encodes them again from the first
//! sample it changed (usually the bucket the raw window just left), keeping the bytes before.
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

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub mod file;
#[cfg(test)]
mod reference;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

/// The steps a history remembers: rare, so held behind a pointer that is null without them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Steps {
    /// The latest step kept out of the rate, until it ages past the retention.
    last_jump: Option<Step>,
    /// Set for the one interval after a step.
    pending: Option<Pending>,
}

/// The bounded history of one value, compact (see the module's documentation): 48 bytes
/// and its encoded samples. Times are milliseconds since [`epoch`], one origin for every
/// history of the process.
#[derive(Debug, Clone)]
pub struct History {
    /// The oldest sample (meaningless while `len` is 0).
    first: Point,
    /// Samples held, `first` included (at most [`MAX_POINTS`]).
    len: u16,
    /// The [`Tracker`] round that last recorded it, wrapping (only equality counts).
    round: u16,
    /// Where its hour buckets start: the moment it was made or last reset, in milliseconds
    /// since [`epoch`], modulo [`BUCKET`].
    phase: u32,
    /// The samples after `first`, oldest first, delta-of-delta encoded ([`encode`]).
    tail: Box<[u8]>,
    /// `None` while no step is remembered.
    steps: Option<Box<Steps>>,
}

/// A history decoded for one record or forecast.
#[derive(Debug, Default)]
struct Work {
    /// Oldest first.
    points: Vec<Point>,
    /// Where each decoded sample after the first starts in the encoded bytes (`offsets[i]`
    /// for `points[i + 1]`), then where they end: empty when not known.
    offsets: Vec<u32>,
    /// The samples before this index are those decoded, unchanged and in place: encoding
    /// starts again from it, keeping the bytes before (0, the default, encodes everything).
    changed_from: usize,
    last_jump: Option<Step>,
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
        exhausts_at(from, self.seconds_to_exhaustion)
    }
}

/// `from` plus `seconds_to_exhaustion`; `None` while the value does not grow (or past what
/// a date can hold).
pub fn exhausts_at(
    from: DateTime<Utc>,
    seconds_to_exhaustion: Option<u64>,
) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(seconds_to_exhaustion?).ok()?;
    from.checked_add_signed(chrono::TimeDelta::try_seconds(secs)?)
}

/// The histories of many values, keyed by `K`, updated in place: those not recorded in a
/// round are dropped at its end, so a vanished column takes its history with it.
#[derive(Debug)]
pub struct Tracker<K> {
    histories: HashMap<K, History>,
    /// Rounds recorded so far: the stamp of the keys seen in the latest.
    rounds: u16,
}

impl<K: std::hash::Hash + Eq + Clone> Default for Tracker<K> {
    fn default() -> Self {
        Tracker {
            histories: HashMap::new(),
            rounds: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Tracker<K> {
    /// Keeps only the histories whose key `keep` accepts (a reload drops removed sources).
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.histories.retain(|k, _| keep(k));
    }

    /// Records a round of `(key, value, max)` at `now` and returns each key's forecast, in
    /// the order given, with the key as the tracker holds it (a column's name is then held
    /// once, by whoever kept it first); keys absent from the round are forgotten. The map
    /// is updated in place: a steady fleet allocates no entry.
    pub fn round(
        &mut self,
        now: Instant,
        values: impl IntoIterator<Item = (K, i128, u64)>,
    ) -> Vec<(K, Forecast)> {
        self.round_read(now, values.into_iter().map(|(k, v, max)| (k, v, max, now)))
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
    ) -> Vec<(K, Forecast)> {
        self.rounds = self.rounds.wrapping_add(1);
        let round = self.rounds;
        let values = values.into_iter();
        let mut out = Vec::with_capacity(values.size_hint().0);
        for (key, value, max, read_at) in values {
            let (key, history) = match self.histories.get_key_value(&key) {
                Some((held, _)) => {
                    let held = held.clone();
                    let history = self.histories.get_mut(&held);
                    (held, history)
                }
                None => {
                    let history = History::new(now.min(read_at));
                    (
                        key.clone(),
                        Some(self.histories.entry(key).or_insert(history)),
                    )
                }
            };
            let Some(history) = history else { continue };
            history.round = round;
            let forecast = history.record_newer_and_forecast(read_at, value, max, read_at == now);
            out.push((key, forecast));
        }
        self.histories.retain(|_, history| history.round == round);
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
            if let Some(mut history) = History::from_saved(&saved, now, now_unix_ms) {
                history.round = self.rounds;
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
        let round = self.rounds;
        let history = self
            .histories
            .entry(key)
            .or_insert_with(|| History::new(now));
        history.round = round;
        history.record_and_forecast(now, value, max)
    }
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
    fn unpack(&self) -> Work {
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
    fn pack(&mut self, work: &Work) {
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

    fn now_ms(&self, now: Instant) -> i64 {
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

/// IDs per second between the two newest samples.
fn last_interval_rate(points: &[Point]) -> Option<f64> {
    let [.., a, b] = points else { return None };
    let seconds = (b.at_ms - a.at_ms) as f64 / 1000.0;
    (seconds > 0.0).then(|| (b.value - a.value) as f64 / seconds)
}

/// The growth rate as of `now_ms`: the faster of the whole history's slope and the short
/// window's.
fn rate(points: &[Point], now_ms: i64) -> Option<f64> {
    let long = slope(points);
    let short_from = now_ms - SHORT_WINDOW.as_millis() as i64;
    let short = slope(&points[points.partition_point(|p| p.at_ms < short_from)..]);
    match (long, short) {
        (Some(l), Some(s)) => Some(l.max(s)),
        (l, s) => l.or(s),
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
fn since_epoch_ms(now: Instant) -> i64 {
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

/// Appends the samples after the first of `points` to `out`: for each, the change of its
/// time step (milliseconds) and of its value step over the previous sample's, each a
/// zigzag LEB128 varint. Only the samples from `from` on are written (what a record
/// changed; 0 or 1 for all of them): each against the two before it, so that the bytes
/// continue those of the samples before. The usual case (steps and their changes within
/// 64 bits) takes a 64-bit path; the 128-bit one writes the same bytes for anything larger.
fn encode(points: &[Point], from: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let from = from.max(1);
    if from >= points.len() {
        return;
    }
    out.reserve((points.len() - from) * 3);
    if encode_narrow(points, from, out).is_none() {
        out.truncate(start);
        encode_wide(points, from, out);
    }
}

/// [`encode`] in 64-bit arithmetic; `None` (having written part) when a number needs more.
fn encode_narrow(points: &[Point], from: usize, out: &mut Vec<u8>) -> Option<()> {
    let steps = |a: Point, b: Point| -> Option<(i64, i64)> {
        let dt = b.at_ms.checked_sub(a.at_ms)?;
        let dv = i64::try_from(b.value).ok()? - i64::try_from(a.value).ok()?;
        Some((dt, dv))
    };
    let (mut prev_dt, mut prev_dv) = match from {
        2.. => steps(points[from - 2], points[from - 1])?,
        _ => (0, 0),
    };
    for pair in points[from - 1..].windows(2) {
        let dt = pair[1].at_ms.checked_sub(pair[0].at_ms)?;
        let dv = i64::try_from(pair[1].value).ok()? - i64::try_from(pair[0].value).ok()?;
        put_varint_narrow(out, dt.checked_sub(prev_dt)?)?;
        put_varint_narrow(out, dv.checked_sub(prev_dv)?)?;
        (prev_dt, prev_dv) = (dt, dv);
    }
    Some(())
}

fn encode_wide(points: &[Point], from: usize, out: &mut Vec<u8>) {
    let steps = |a: Point, b: Point| {
        (
            i128::from(b.at_ms) - i128::from(a.at_ms),
            i128::from(b.value) - i128::from(a.value),
        )
    };
    let (mut prev_dt, mut prev_dv) = match from {
        2.. => steps(points[from - 2], points[from - 1]),
        _ => (0, 0),
    };
    for pair in points[from.max(1) - 1..].windows(2) {
        let dt = i128::from(pair[1].at_ms) - i128::from(pair[0].at_ms);
        let dv = i128::from(pair[1].value) - i128::from(pair[0].value);
        put_varint(out, dt - prev_dt);
        put_varint(out, dv - prev_dv);
        (prev_dt, prev_dv) = (dt, dv);
    }
}

/// The zigzag varint of `n` when it fits 63 bits (as [`put_varint`] writes it).
fn put_varint_narrow(out: &mut Vec<u8>, n: i64) -> Option<()> {
    if !(-(1i64 << 62)..(1i64 << 62)).contains(&n) {
        return None;
    }
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
    Some(())
}

/// Decodes what [`encode`] wrote after the last sample of `points` (which holds at least
/// the first). `None` when the bytes do not hold together: a truncated number, time that
/// does not move forward, a value out of range. What decoded before that stays in `points`.
/// `offsets` gets where each sample starts in `bytes`, then where the last ends.
fn decode(bytes: &[u8], points: &mut Vec<Point>, offsets: &mut Vec<u32>) -> Option<()> {
    let before = (points.len(), offsets.len());
    points.reserve(bytes.len() / 2);
    let done = match decode_narrow(bytes, points, offsets) {
        Some(true) => Some(()),
        Some(false) => {
            // A number past 64 bits: again, in 128-bit arithmetic.
            points.truncate(before.0);
            offsets.truncate(before.1);
            decode_wide(bytes, points, offsets)
        }
        None => None,
    };
    offsets.push(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
    done
}

/// [`decode`] in 64-bit arithmetic: `Some(false)` when a number needs more (some samples
/// may have been pushed), `None` when the bytes do not hold together.
fn decode_narrow(bytes: &[u8], points: &mut Vec<Point>, offsets: &mut Vec<u32>) -> Option<bool> {
    let last = *points.last()?;
    let Ok(mut value) = i64::try_from(last.value) else {
        return Some(false);
    };
    let mut at = last.at_ms;
    let (mut dt, mut dv) = (0i64, 0i64);
    let mut pos = 0;
    while pos < bytes.len() {
        offsets.push(pos as u32);
        let (ddt, ddv) = match two_short(bytes, pos) {
            Some((ddt, ddv, len)) => {
                pos += len;
                (ddt, ddv)
            }
            None => {
                let (Some(ddt), Some(ddv)) = (
                    get_varint_narrow(bytes, &mut pos)?,
                    get_varint_narrow(bytes, &mut pos)?,
                ) else {
                    return Some(false);
                };
                (ddt, ddv)
            }
        };
        let (Some(t), Some(v)) = (dt.checked_add(ddt), dv.checked_add(ddv)) else {
            return Some(false);
        };
        (dt, dv) = (t, v);
        if dt <= 0 {
            return None;
        }
        let (Some(a), Some(v)) = (at.checked_add(dt), value.checked_add(dv)) else {
            return Some(false);
        };
        (at, value) = (a, v);
        points.push(Point {
            at_ms: at,
            value: u64::try_from(value).ok()?,
        });
    }
    Some(true)
}

/// The two numbers of a sample when each takes one or two bytes (nearly every sample of a
/// steady series), with the bytes they take; `None` when one is longer or fewer than four
/// bytes are left. Read from one 32-bit word, without a branch on their lengths (which a
/// mix of lengths would mispredict).
#[inline(always)]
fn two_short(bytes: &[u8], pos: usize) -> Option<(i64, i64, usize)> {
    let word = u32::from_le_bytes(bytes.get(pos..pos.checked_add(4)?)?.try_into().ok()?);
    // One number at the bottom of `w`: its value, its length, and whether it is longer.
    let short = |w: u32| {
        let two = (w >> 7) & 1;
        let z = (w & 0x7f) | ((w >> 1) & 0x3f80 & 0u32.wrapping_sub(two));
        (z, 1 + two, two & (w >> 15))
    };
    let (a, a_len, a_long) = short(word);
    let (b, b_len, b_long) = short(word >> (8 * a_len));
    if a_long | b_long != 0 {
        return None;
    }
    let unzig = |z: u32| i64::from((z >> 1) as i32 ^ -((z & 1) as i32));
    Some((unzig(a), unzig(b), (a_len + b_len) as usize))
}

/// A zigzag varint of at most 63 bits: `Some(None)` when it is longer (read past it),
/// `None` when the bytes end inside it. Those of one and two bytes (nearly all of a steady
/// series) are read inline.
#[inline(always)]
fn get_varint_narrow(bytes: &[u8], pos: &mut usize) -> Option<Option<i64>> {
    let first = u64::from(*bytes.get(*pos)?);
    // Without a branch on the length, which a mix of one- and two-byte numbers would
    // mispredict: the second byte counts only when the first says it follows.
    let second = u64::from(bytes.get(*pos + 1).copied().unwrap_or(0x80));
    let two = first >> 7;
    if two & (second >> 7) != 0 {
        let (n, next) = get_varint_narrow_long(bytes, *pos)?;
        *pos = next;
        return Some(n);
    }
    let z = (first & 0x7f) | ((second << 7) & 0u64.wrapping_sub(two));
    *pos += 1 + two as usize;
    Some(Some(((z >> 1) as i64) ^ -((z & 1) as i64)))
}

/// [`get_varint_narrow`] for any length, from `pos`; with where the number ends.
#[inline(never)]
fn get_varint_narrow_long(bytes: &[u8], mut pos: usize) -> Option<(Option<i64>, usize)> {
    let first = *bytes.get(pos)?;
    pos += 1;
    if first < 0x80 {
        return Some((
            Some(i64::from((first >> 1) as i8 ^ -((first & 1) as i8))),
            pos,
        ));
    }
    let mut z = u64::from(first & 0x7f);
    let mut shift = 7;
    loop {
        let byte = *bytes.get(pos)?;
        pos += 1;
        if shift > 56 {
            // Past 63 bits: skip the rest of the number, and say so.
            let mut b = byte;
            while b & 0x80 != 0 {
                b = *bytes.get(pos)?;
                pos += 1;
            }
            return Some((None, pos));
        }
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((Some(((z >> 1) as i64) ^ -((z & 1) as i64)), pos));
        }
        shift += 7;
    }
}

fn decode_wide(bytes: &[u8], points: &mut Vec<Point>, offsets: &mut Vec<u32>) -> Option<()> {
    let last = *points.last()?;
    let (mut at, mut value) = (i128::from(last.at_ms), i128::from(last.value));
    let (mut dt, mut dv) = (0i128, 0i128);
    let mut pos = 0;
    while pos < bytes.len() {
        offsets.push(pos as u32);
        dt = dt.checked_add(get_varint(bytes, &mut pos)?)?;
        dv = dv.checked_add(get_varint(bytes, &mut pos)?)?;
        if dt <= 0 {
            return None;
        }
        at = at.checked_add(dt)?;
        value = value.checked_add(dv)?;
        points.push(Point {
            at_ms: i64::try_from(at).ok()?,
            value: u64::try_from(value).ok()?,
        });
    }
    Some(())
}

fn put_varint(out: &mut Vec<u8>, n: i128) {
    if (-64..64).contains(&n) {
        // The common case, one byte: zigzag without the 128-bit shifts.
        out.push((((n as i8) << 1) ^ ((n as i8) >> 7)) as u8);
        return;
    }
    let mut z = ((n << 1) ^ (n >> 127)) as u128;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<i128> {
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        // The common case, one byte.
        *pos += 1;
        return Some(i128::from((first >> 1) as i8 ^ -((first & 1) as i8)));
    }
    let mut z = 0u128;
    let mut shift = 0u32;
    loop {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        let bits = u128::from(byte & 0x7f);
        if shift > 126 || (shift == 126 && bits > 3) {
            return None;
        }
        z |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(((z >> 1) as i128) ^ -((z & 1) as i128));
        }
        shift += 7;
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
    /// Version 2: the further samples as the history holds them in memory (zigzag varints
    /// of the changes of time and value steps), base64 without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    /// Version 1 (still read): the same numbers as a JSON array, `[dt, dv, dt, dv, ...]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub d: Vec<i128>,
    /// The last jump: `[unix ms, from, to]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub j: Option<(i64, u64, u64)>,
    /// The step still provisional: `[excess, rate before it, rate over it]` (IDs a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<(u64, f64, f64)>,
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

impl History {
    /// The saved form as of `now`, whose wall-clock time is `now_unix_ms`; `None` when empty.
    pub fn to_saved(&self, now: Instant, now_unix_ms: i64) -> Option<SavedHistory> {
        if self.len == 0 {
            return None;
        }
        let now_ms = self.now_ms(now);
        let wall = |at_ms: i64| now_unix_ms.saturating_sub(now_ms.saturating_sub(at_ms));
        let steps = self.steps.as_deref();
        Some(SavedHistory {
            t: wall(self.first.at_ms),
            v: self.first.value,
            // The encoding does not depend on where time zero is: the bytes are saved as held.
            b: (!self.tail.is_empty()).then(|| BASE64.encode(&self.tail)),
            d: Vec::new(),
            j: steps
                .and_then(|s| s.last_jump)
                .map(|j| (wall(j.at_ms), j.from, j.to)),
            // Saved without the step before it: re-admitted after a restart, it leaves
            // `last_jump` empty rather than back at the one before.
            p: steps
                .and_then(|s| s.pending)
                .map(|p| (p.excess, p.base_rate, p.step_rate)),
        })
    }

    /// A history from its saved form (either version), as of `now` (wall clock
    /// `now_unix_ms`): samples keep their age, samples older than the retention are
    /// dropped. `None` when nothing is left or the saved form does not hold together (times
    /// that do not increase, values out of range, bad base64).
    pub fn from_saved(saved: &SavedHistory, now: Instant, now_unix_ms: i64) -> Option<History> {
        let bytes = match &saved.b {
            Some(b) => BASE64.decode(b).ok()?,
            None => {
                if !saved.d.len().is_multiple_of(2) {
                    return None;
                }
                let mut bytes = Vec::with_capacity(saved.d.len() * 2);
                for n in &saved.d {
                    put_varint(&mut bytes, *n);
                }
                bytes
            }
        };
        // Times are kept from the epoch, as signed milliseconds: a sample from before this
        // process started may be negative, which no `Instant` arithmetic can underflow.
        let now_ms = since_epoch_ms(now);
        let relative = |unix_ms: i64| -> Option<i64> {
            i64::try_from(i128::from(unix_ms) - i128::from(now_unix_ms) + i128::from(now_ms)).ok()
        };
        let mut points = Vec::with_capacity(bytes.len() / 2 + 1);
        points.push(Point {
            at_ms: relative(saved.t)?,
            value: saved.v,
        });
        decode(&bytes, &mut points, &mut Vec::new())?;
        if points.last()?.at_ms > now_ms {
            // Saved "in the future" (a clock set back): not a history to trust.
            return None;
        }
        let keep_from = now_ms.saturating_sub(RETENTION.as_millis() as i64);
        points.retain(|p| p.at_ms >= keep_from);
        if points.is_empty() {
            return None;
        }
        let last_jump = saved
            .j
            .and_then(|(at, from, to)| {
                Some(Step {
                    at_ms: relative(at)?,
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
        let mut history = History::new(now);
        history.pack(&Work {
            points,
            offsets: Vec::new(),
            changed_from: 0,
            last_jump,
            pending,
        });
        Some(history)
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
/// between them. Exact: integer sums over offsets from the first sample (milliseconds, and
/// IDs as `i128`), in one pass, then one division. With at most 2^8 samples spanning less
/// than 2^40 ms (35 years) every sum and product fits 128 bits (|x| < 2^40, |y| < 2^64:
/// Σxy < 2^112, n·Σxy and Σx·Σy < 2^120, n·Σxx and (Σx)² < 2^96); anything larger (never
/// held, at most [`MAX_POINTS`] within the retention) takes [`slope_f64`].
fn slope(points: &[Point]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if points.len() < 2 {
        return None;
    }
    let span_fits = last
        .at_ms
        .checked_sub(first.at_ms)
        .is_some_and(|span| (0..1 << 40).contains(&span));
    if points.len() > 1 << 8 || !span_fits {
        return slope_f64(points);
    }
    let (sx, sy, sxx, sxy) = sums_narrow(points).unwrap_or_else(|| sums(points));
    let n = points.len() as i128;
    let sx = i128::from(sx);
    let num = n * sxy - sx * sy;
    let den = n * sxx - sx * sx;
    if den <= 0 {
        return None;
    }
    // Per millisecond, to per second.
    Some(num as f64 * 1000.0 / den as f64)
}

/// Σx, Σy, Σxx and Σxy over offsets from the first sample, for [`slope`].
fn sums(points: &[Point]) -> (i64, i128, i128, i128) {
    let Some(first) = points.first() else {
        return (0, 0, 0, 0);
    };
    let (mut sx, mut sy, mut sxx, mut sxy) = (0i64, 0i128, 0i128, 0i128);
    for p in points {
        // Times increase: every offset lies within the span.
        let x = p.at_ms - first.at_ms;
        let y = i128::from(p.value) - i128::from(first.value);
        sx += x;
        sy += y;
        sxx += i128::from(x) * i128::from(x);
        sxy += i128::from(x) * y;
    }
    (sx, sy, sxx, sxy)
}

/// [`sums`] when every value is within 2^63 of the first (the usual case): the products
/// are then of two 64-bit numbers, cheaper than of 128-bit ones. `None` otherwise.
fn sums_narrow(points: &[Point]) -> Option<(i64, i128, i128, i128)> {
    let first = points.first()?;
    let (mut sx, mut sy, mut sxx, mut sxy) = (0i64, 0i128, 0i128, 0i128);
    let mut fits = true;
    for p in points {
        let x = p.at_ms - first.at_ms;
        let wide = i128::from(p.value) - i128::from(first.value);
        let y = wide as i64;
        fits &= i128::from(y) == wide;
        sx += x;
        sy += i128::from(y);
        sxx += i128::from(x) * i128::from(x);
        sxy += i128::from(x) * i128::from(y);
    }
    fits.then_some((sx, sy, sxx, sxy))
}

/// [`slope`] in floating point, two passes, for what does not fit its integer bounds.
fn slope_f64(points: &[Point]) -> Option<f64> {
    let first = points.first()?;
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let x = |p: &Point| (p.at_ms - first.at_ms) as f64 / 1000.0;
    // Converted from u64, not i128, which is several times cheaper.
    let y = |p: &Point| {
        if p.value >= first.value {
            (p.value - first.value) as f64
        } else {
            -((first.value - p.value) as f64)
        }
    };
    let (mut sx, mut sy) = (0f64, 0f64);
    for p in points {
        sx += x(p);
        sy += y(p);
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy) = (0f64, 0f64);
    for p in points {
        let (dx, dy) = (x(p) - mx, y(p) - my);
        sxx += dx * dx;
        sxy += dx * dy;
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
            h.current().map(i128::from),
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

    /// One sample of a test series: milliseconds since the previous one, the value, the
    /// type's maximum.
    type Sample = (u64, i128, u64);

    /// Feeds `series` to the compact history and to the reference model, and checks after
    /// every sample that they forecast the same within 1 %: rate, seconds to exhaustion and
    /// the jump told.
    fn same_forecasts(name: &str, series: &[Sample]) {
        let start = Instant::now();
        let mut at = start;
        let mut compact = History::new(start);
        let mut model = reference::History::new(start);
        for (i, &(after_ms, value, max)) in series.iter().enumerate() {
            at += Duration::from_millis(after_ms);
            let got = compact.record_and_forecast(at, value, max);
            model.record_with_max(at, value, max);
            let want = model.forecast(at, max);
            let within = |a: f64, b: f64| (a - b).abs() <= a.abs().max(b.abs()) / 100.0 + 1e-9;
            let rates = match (got.growth_per_second, want.growth_per_second) {
                (Some(a), Some(b)) => within(a, b),
                (a, b) => a == b,
            };
            let times = match (got.seconds_to_exhaustion, want.seconds_to_exhaustion) {
                (Some(a), Some(b)) => within(a as f64, b as f64) || a.abs_diff(b) <= 1,
                (a, b) => a == b,
            };
            assert!(rates && times, "{name}, sample {i}: {got:?} vs {want:?}");
            assert_eq!(got.last_jump, want.last_jump, "{name}, sample {i}");
            assert_eq!(compact.len(), model.len(), "{name}, sample {i}");
            // Re-encoded from the first changed sample, the bytes are those of a whole encoding.
            let mut whole = Vec::new();
            encode(&compact.unpack().points, 0, &mut whole);
            assert_eq!(&compact.tail[..], &whole[..], "{name}, sample {i}");
        }
    }

    /// A small deterministic generator (64-bit LCG), for jitter.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n.max(1)
        }
    }

    /// `count` samples `every_ms` apart (± up to 1 s of jitter: a big shard's poll takes
    /// longer some times than others), each `grow(i)` above the previous.
    fn series(
        count: usize,
        every_ms: u64,
        start: i128,
        max: u64,
        grow: impl Fn(usize) -> i128,
    ) -> Vec<Sample> {
        let mut rng = Lcg(count as u64 ^ every_ms);
        let mut value = start;
        (0..count)
            .map(|i| {
                value += grow(i);
                (every_ms - 1_000 + rng.below(2_000), value, max)
            })
            .collect()
    }

    const WEEK_AT_A_MINUTE: usize = 7 * 24 * 60;

    #[test]
    fn steady_growth_forecasts_as_the_reference_model_does() {
        let s = series(
            WEEK_AT_A_MINUTE + 24 * 60,
            60_000,
            1_000_000,
            INT_MAX,
            |_| 6_000,
        );
        same_forecasts("steady, a minute apart, 8 days", &s);
        let s = series(3 * 24 * 360, 10_000, 0, u64::MAX, |i| 500 + (i % 7) as i128);
        same_forecasts("steady with noise, 10 s apart", &s);
        let s = series(4 * 60 * 12, 5_000, 0, INT_MAX, |_| 5);
        same_forecasts("a 5 s interval, thinned", &s);
    }

    #[test]
    fn bursts_and_a_flat_column_forecast_as_the_reference_model_does() {
        let s = series(3 * 24 * 60, 60_000, 1_000, INT_MAX, |i| {
            if i % 97 == 0 {
                600_000
            } else if i % 13 == 0 {
                0
            } else {
                60
            }
        });
        same_forecasts("bursts", &s);
        let s = series(2 * 24 * 60, 60_000, 42, INT_MAX, |_| 0);
        same_forecasts("flat", &s);
        let s = series(24 * 60, 60_000, 5, INT_MAX, |i| i128::from(i % 60 == 0));
        same_forecasts("nearly flat", &s);
    }

    #[test]
    fn jumps_and_resets_forecast_as_the_reference_model_does() {
        // ALTERs of a tenth of INT every day, one step followed by a sustained faster rate
        // (re-admitted), then a table rebuilt (a reset).
        let s = series(4 * 24 * 60, 60_000, 100_000_000, INT_MAX, |i| match i {
            i if i > 0 && i % 1_440 == 0 => 214_748_364,
            i if (2_000..2_060).contains(&i) => 6_000_000,
            _ => 300_000,
        });
        same_forecasts("jumps and a faster rate", &s);
        let mut s = series(600, 60_000, 2_000_000_000, INT_MAX, |_| 1_000);
        s.extend(series(600, 60_000, 10, INT_MAX, |_| 60));
        s.extend(series(10, 60_000, 2_147_483_000, INT_MAX, |_| 100));
        same_forecasts("a reset, then exhaustion", &s);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_series() -> impl Strategy<Value = Vec<Sample>> {
            let sample = (
                prop_oneof![Just(60_000u64), 1u64..600_000, Just(0u64)],
                prop_oneof![
                    8 => 0i128..10_000,
                    1 => 0i128..3_000_000_000,
                    1 => -1_000_000i128..0,
                ],
            );
            (
                prop::collection::vec(sample, 1..600),
                prop_oneof![Just(INT_MAX), Just(u64::MAX)],
            )
                .prop_map(|(steps, max)| {
                    let mut value = 1_000_000i128;
                    steps
                        .into_iter()
                        .map(|(after, change)| {
                            value = (value + change).max(0);
                            (after, value, max)
                        })
                        .collect()
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn the_exact_slope_is_the_floating_point_one(
                steps in prop::collection::vec(
                    (1i64..4_000_000, prop_oneof![0u64..10_000, 0u64..1 << 50]),
                    1..241,
                ),
                first in prop_oneof![0u64..1_000, u64::MAX / 2..u64::MAX / 2 + 1_000],
            ) {
                let mut points = vec![Point { at_ms: -5_000, value: first }];
                for (dt, up) in steps {
                    let last = points[points.len() - 1];
                    let value = last.value.saturating_add(up);
                    points.push(Point { at_ms: last.at_ms + dt, value });
                }
                let (exact, float) = (slope(&points), slope_f64(&points));
                prop_assert!(exact.is_some() && float.is_some());
                let (a, b) = (exact.unwrap_or(0.0), float.unwrap_or(0.0));
                prop_assert!((a - b).abs() <= a.abs().max(b.abs()) * 1e-9 + 1e-9, "{} vs {}", a, b);
            }

            #[test]
            fn any_series_forecasts_as_the_reference_model_does(s in any_series()) {
                same_forecasts("generated", &s);
            }

            #[test]
            fn the_64_bit_paths_write_and_read_what_the_128_bit_ones_do(
                steps in prop::collection::vec(
                    (
                        prop_oneof![1i64..120_000, 1i64..i64::MAX / 4],
                        prop_oneof![0u64..10_000, any::<u64>()],
                    ),
                    1..40,
                ),
                first in prop_oneof![0u64..1_000, any::<u64>()],
            ) {
                let mut points = vec![Point { at_ms: -5_000, value: first }];
                for (dt, up) in steps {
                    let last = points[points.len() - 1];
                    let Some(at_ms) = last.at_ms.checked_add(dt) else { break };
                    let value = last.value.saturating_add(up);
                    points.push(Point { at_ms, value });
                }
                let (mut fast, mut wide) = (Vec::new(), Vec::new());
                encode(&points, 0, &mut fast);
                encode_wide(&points, 1, &mut wide);
                prop_assert_eq!(&fast, &wide);
                let (mut back, mut offsets) = (vec![points[0]], Vec::new());
                prop_assert!(decode(&fast, &mut back, &mut offsets).is_some());
                prop_assert_eq!(&back, &points);
                prop_assert_eq!(offsets.len(), points.len());
                // Encoding again from any sample, after the bytes of those before it.
                for from in 1..=points.len() {
                    let mut again = fast[..offsets[from - 1] as usize].to_vec();
                    encode(&points, from, &mut again);
                    prop_assert_eq!(&again, &fast, "from {}", from);
                }
                let mut back_wide = vec![points[0]];
                prop_assert!(decode_wide(&fast, &mut back_wide, &mut Vec::new()).is_some());
                prop_assert_eq!(&back_wide, &points);
            }
        }
    }

    #[test]
    fn a_line_has_its_slope_exactly() {
        let line = |n: i64| -> Vec<Point> {
            (0..n)
                .map(|i| Point {
                    at_ms: 1_000 + i * 60_000,
                    value: u64::MAX - 1_000_000 + 60 * i as u64,
                })
                .collect()
        };
        assert_eq!(slope(&line(3)), Some(1.0));
        assert_eq!(slope(&line(241)), Some(1.0));
        // Past the integer bounds: the floating-point path.
        assert_eq!(slope(&line(300)).map(|s| (s * 1e6).round()), Some(1e6));
        assert_eq!(slope(&line(1)), None);
        // Values further apart than 2^63: the 128-bit products.
        let apart = [
            Point::default(),
            Point {
                at_ms: 1_000,
                value: u64::MAX,
            },
        ];
        let rate = slope(&apart).unwrap_or(0.0);
        assert!((rate / u64::MAX as f64 - 1.0).abs() < 1e-12, "{rate}");
        let same_time = [Point::default(), Point { at_ms: 0, value: 5 }];
        assert_eq!(slope(&same_time), None);
    }

    #[test]
    fn a_week_at_the_default_interval_is_held_in_well_under_a_kilobyte() {
        let s = series(WEEK_AT_A_MINUTE, 60_000, 1_000_000_000, INT_MAX, |i| {
            5_000 + (i % 11) as i128 * 40
        });
        let start = Instant::now();
        let (mut at, mut h) = (start, History::new(start));
        for (after, value, max) in s {
            at += Duration::from_millis(after);
            h.record_with_max(at, value, max);
        }
        let bytes = size_of::<History>() + h.heap_bytes();
        assert!(
            h.len() > 190,
            "a week of buckets and the raw window: {}",
            h.len()
        );
        assert_eq!(size_of::<History>(), 48);
        // Some 200 samples: about 2 bytes for the time and 2 for the value of each.
        assert!(bytes < 900, "{} samples in {bytes} bytes", h.len());
    }

    #[test]
    fn a_saved_history_loads_back_with_the_same_samples() {
        let s = series(3 * 24 * 60, 60_000, 0, INT_MAX, |i| 60 + (i % 5) as i128);
        let start = Instant::now();
        let (mut at, mut h) = (start, History::new(start));
        for (after, value, max) in s {
            at += Duration::from_millis(after);
            h.record_with_max(at, value, max);
        }
        let wall = 1_800_000_000_000;
        let saved = h.to_saved(at, wall).expect("not empty");
        let back = History::from_saved(&saved, at, wall).expect("loads");
        assert_eq!(back.unpack().points, h.unpack().points);
        assert_eq!(back.forecast(at, INT_MAX), h.forecast(at, INT_MAX));
    }

    #[test]
    fn a_version_one_saved_history_still_loads() {
        // Three samples a minute apart, growing 60 a minute, as version 1 wrote them.
        let saved: SavedHistory =
            serde_json::from_str(r#"{"t":1799999880000,"v":100,"d":[60000,60,0,0]}"#)
                .expect("version 1");
        let now = Instant::now();
        let h = History::from_saved(&saved, now, 1_800_000_000_000).expect("loads");
        assert_eq!(h.len(), 3);
        assert_eq!(h.current(), Some(220));
        assert_eq!(h.forecast(now, INT_MAX).growth_per_second, Some(1.0));
    }
}
