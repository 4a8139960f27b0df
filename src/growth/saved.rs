//! A history's saved form ([`SavedHistory`]), and a history to it and back.
//!
//! A history is saved ([`History::to_saved`]) with wall-clock times, so that a restart (a new
//! `Instant` origin) keeps its forecasts; [`file`](mod@super::file) reads and writes the file.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::codec::{decode, put_varint};
use super::history::{History, Pending, Step, Work, since_epoch_ms};
use super::{Point, RETENTION};

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
    /// The last jump's excess: by how much the samples before it are held moved up
    /// (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<u64>,
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
            x: steps.and_then(|s| s.last_jump).map(|j| j.excess),
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
                    excess: saved.x.unwrap_or(0),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::growth::test_series::{INT_MAX, series};

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
