//! How fast a column (or a source) grows, and when it runs out.
//!
//! Each tracked value keeps a bounded history of `(time, current)` samples:
//! - every sample of the last [`RAW_WINDOW`] (at most [`RAW_POINTS`] of them), and
//! - older samples down-sampled to one per [`BUCKET`], back to [`RETENTION`] (a week).
//!
//! That is at most [`MAX_POINTS`] (241) samples, whatever the poll interval.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause()`.
//!
//! # Layout
//! - here: the bounds above and the thresholds of a step, the sample every part shares, the
//!   [`Forecast`] with its date ([`exhausts_at`]) or words ([`humanize`]), and the
//!   [`Tracker`] of many histories;
//! - `history`: one value's [`History`] and the rules of a record: a reset, a step kept
//!   out of the rate, one sample per bucket past the raw window;
//! - `samples`: a history's samples as a person reads them (wall-clock times, values as
//!   read), for the column page and its JSON;
//! - `codec`: the compact bytes of its samples (delta of delta, zigzag varints);
//! - `rate`: the growth rate, the faster of two least-squares slopes;
//! - `saved`: a history's saved form ([`SavedHistory`]), with wall-clock times;
//! - [`file`](mod@file): the history file, beside the state file;
//! - `reference` and `test_series`, for the tests only: the model the history is checked
//!   against, and the series both are fed.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

mod codec;
pub mod file;
mod history;
mod rate;
#[cfg(test)]
mod reference;
mod samples;
mod saved;
#[cfg(test)]
mod test_series;

pub use history::History;
pub use samples::Samples;
pub use saved::SavedHistory;

/// Every shard's column histories, by shard name: the poller records into them at each
/// poll; the store holds the handle ([`crate::state::Store::histories`]), so that a request
/// can read a column's samples and a reload hands them to the next poller in place.
pub type ColumnHistories =
    std::sync::Arc<std::sync::Mutex<HashMap<String, Tracker<crate::inventory::ColumnId>>>>;

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
            // One look-up per key; an entry already held keeps its key.
            let (key, history) = match self.histories.entry(key) {
                Entry::Occupied(held) => (held.key().clone(), held.into_mut()),
                Entry::Vacant(new) => {
                    let key = new.key().clone();
                    (key, new.insert(History::new(now.min(read_at))))
                }
            };
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

    /// The history held under `key`.
    pub fn get(&self, key: &K) -> Option<&History> {
        self.histories.get(key)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_left_read_like_a_person_would_say_them() {
        assert_eq!(humanize(0), "now");
        assert_eq!(humanize(45), "~45 seconds");
        assert_eq!(humanize(3 * 3600), "~3 hours");
        assert_eq!(humanize(3 * 86_400 + 100), "~3 days");
        assert_eq!(humanize(200 * 86_400), "~6 months");
        assert_eq!(humanize(5 * 365 * 86_400), "~5 years");
    }
}
